package dbtest_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken-go/apitoken/sqlstore"
)

// readmeHeadings are the headings of the README sections that show each
// dialect's schema.
var readmeHeadings = map[sqlstore.Dialect]string{
	sqlstore.Postgres: "## PostgreSQL",
	sqlstore.MySQL:    "## MySQL and MariaDB",
	sqlstore.SQLite:   "## SQLite",
}

// TestREADMESchema keeps README.md honest: the section of each dialect must
// show, verbatim, every statement that Migrate runs to create the schema
// (the version table and every migration of sql/<dialect>.sql) and the row
// that records each version, so that a user who applies the schema with
// their own tool gets what Migrate would create.
func TestREADMESchema(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	for _, d := range dialects {
		t.Run(d.String(), func(t *testing.T) {
			file := filepath.Join("../../sql", strings.ToLower(d.String())+".sql")
			b, err := os.ReadFile(file)
			require.NoError(t, err)
			sqlText := string(b)
			section, ok := readmeSection(string(readme), readmeHeadings[d])
			require.True(t, ok, "README.md must have a section %q", readmeHeadings[d])

			// Each change to the SQL file must be caught while the README is
			// unchanged; the first case is the real file.
			tableStart := "CREATE TABLE IF NOT EXISTS apitoken_tokens (\n"
			versionStart := "CREATE TABLE IF NOT EXISTS apitoken_schema_version (\n"
			next := strings.Count(sqlText, "\n-- migration: ") + 1 // the number of a new migration
			tests := []struct {
				name      string
				edit      func(string) string
				wantMiss  []string // statements the README lacks; nil: none
				wantError bool
			}{
				{
					name: "ok, the README shows every schema statement",
					edit: func(s string) string { return s },
				},
				{
					name: "nok, a column added to the tokens table",
					edit: func(s string) string {
						return strings.Replace(s, tableStart, tableStart+"    note TEXT NOT NULL,\n", 1)
					},
					wantMiss: []string{"note TEXT NOT NULL"},
				},
				{
					name: "nok, a column added to the version table",
					edit: func(s string) string {
						return strings.Replace(s, versionStart, versionStart+"    note TEXT NOT NULL,\n", 1)
					},
					wantMiss: []string{"note TEXT NOT NULL"},
				},
				{
					name: "nok, a new migration",
					edit: func(s string) string {
						return s + fmt.Sprintf("\n-- migration: %d notes\n-- A note per token.\nALTER TABLE apitoken_tokens ADD COLUMN note TEXT;\n", next)
					},
					wantMiss: []string{
						"ALTER TABLE apitoken_tokens ADD COLUMN note TEXT;",
						fmt.Sprintf("INSERT INTO apitoken_schema_version (version) VALUES (%d);", next),
					},
				},
				{
					name:      "nok, the migrations cannot be found",
					edit:      func(s string) string { return strings.ReplaceAll(s, "-- migration: ", "-- version: ") },
					wantError: true,
				},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					edited := tt.edit(sqlText)
					if tt.wantMiss != nil || tt.wantError {
						require.NotEqual(t, sqlText, edited, "the edit must change %s", file)
					}
					missing, err := missingFromREADME(edited, section)
					if tt.wantError {
						require.Error(t, err)
						return
					}
					require.NoError(t, err, file)
					if tt.wantMiss == nil {
						assert.Empty(t, missing, "README.md, section %q, must show these statements of %s verbatim (with the default prefix)", readmeHeadings[d], file)
						return
					}
					require.Len(t, missing, len(tt.wantMiss), "missing: %q", missing)
					for i, want := range tt.wantMiss {
						assert.Contains(t, missing[i], want)
					}
				})
			}
		})
	}
}

// readmeSection returns the lines of readme from the line heading to the
// next "## " heading.
func readmeSection(readme, heading string) (string, bool) {
	var b strings.Builder
	in := false
	for line := range strings.Lines(readme) {
		switch {
		case strings.TrimRight(line, "\r\n") == heading:
			in = true
		case in && strings.HasPrefix(line, "## "):
			return b.String(), true
		case in:
			b.WriteString(line)
		}
	}
	return b.String(), in
}

// missingFromREADME returns the schema statements of the SQL file sqlText
// that section does not contain verbatim: those of the "query:
// version-table" section and of every "migration: N" section, each ending
// with its ";", and for each version N the row that records it.
func missingFromREADME(sqlText, section string) ([]string, error) {
	stmts, versions, err := schemaStatements(sqlText)
	if err != nil {
		return nil, err
	}
	for v := 1; v <= versions; v++ {
		stmts = append(stmts, fmt.Sprintf("INSERT INTO apitoken_schema_version (version) VALUES (%d);", v))
	}
	var missing []string
	for _, s := range stmts {
		if !strings.Contains(section, s) {
			missing = append(missing, s)
		}
	}
	return missing, nil
}

// schemaStatements returns the statements of the version table and of the
// migrations of a SQL file, in order, and the number of migrations. A
// section starts at a line "-- query: name" or "-- migration: N"; comment
// lines and blank lines are left out; a statement ends with a line that
// ends with ";".
func schemaStatements(sqlText string) (stmts []string, versions int, err error) {
	var (
		keep, versionTable bool
		stmt               []string
	)
	for line := range strings.Lines(sqlText) {
		line = strings.TrimRight(line, " \t\r\n")
		trimmed := strings.TrimSpace(line)
		if header, ok := strings.CutPrefix(trimmed, "-- query: "); ok {
			keep = header == "version-table"
			versionTable = versionTable || keep
			continue
		}
		if strings.HasPrefix(trimmed, "-- down: ") {
			keep = false // for other migration tools; the README shows the schema
			continue
		}
		if strings.HasPrefix(trimmed, "-- migration: ") {
			keep = true
			versions++
			continue
		}
		if !keep || trimmed == "" || strings.HasPrefix(trimmed, "--") {
			continue
		}
		stmt = append(stmt, line)
		if strings.HasSuffix(trimmed, ";") {
			stmts = append(stmts, strings.Join(stmt, "\n"))
			stmt = nil
		}
	}
	switch {
	case len(stmt) > 0:
		return nil, 0, fmt.Errorf("a statement does not end with ';': %q", strings.Join(stmt, "\n"))
	case !versionTable:
		return nil, 0, errors.New(`no "-- query: version-table" section`)
	case versions == 0:
		return nil, 0, errors.New(`no "-- migration: N" section`)
	}
	return stmts, versions, nil
}
