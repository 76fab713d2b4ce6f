package sqlstore

import (
	"embed"
	"fmt"
	"strconv"
	"strings"
)

// files holds one file of SQL per dialect: its schema migrations and every
// statement the store runs.
//
//go:embed sql/*.sql
var files embed.FS

// defaultPrefix is the table name prefix written in the SQL files.
const defaultPrefix = "apitoken_"

// script is a dialect's SQL file, parsed, with the table prefix applied.
type script struct {
	queries    map[string]string // "query: name" sections
	migrations [][]string        // "migration: N name" sections: migrations[N-1] holds its statements
	names      []string          // names[N-1] is migration N's name
	downs      [][]string        // "down: N" sections: downs[N-1] undoes migration N
}

// loadScript reads the SQL file of dialect d and renames its tables from
// defaultPrefix to prefix, which has been validated as an identifier.
func loadScript(d Dialect, prefix string) (*script, error) {
	b, err := files.ReadFile("sql/" + d.file() + ".sql")
	if err != nil {
		return nil, err
	}
	sc, err := parseScript(strings.ReplaceAll(string(b), defaultPrefix, prefix))
	if err != nil {
		return nil, err
	}
	if err := sc.check(d); err != nil {
		return nil, err
	}
	return sc, nil
}

// check reports a query that dialect d's Store runs but the script lacks.
func (sc *script) check(d Dialect) error {
	need := []string{"lock", "version-table", "version", "set-version", "create", "lookup", "list", "delete", "delete-account", "delete-expired", "set-expiry", "count-account", "set-last-used", "rehash",
		"revoke", "revocations-after", "revocations-in", "revocations-since", "revocations-last", "revocations-prune",
		"set-disabled", "exists", "delete-member", "delete-unused", "list-expiring"}
	switch d {
	case Postgres:
		need = append(need, "lock-account", "isolation")
	case MySQL:
		need = append(need, "unlock", "lock-account", "unlock-account", "create-limited", "select-unused")
	case SQLite:
		need = append(need, "unlock", "rollback")
	}
	for _, name := range need {
		if sc.queries[name] == "" {
			return fmt.Errorf("sqlstore: %s.sql has no query %q", d.file(), name)
		}
	}
	return nil
}

// parseScript splits a SQL file into its sections. A section starts at a
// line "-- query: name", "-- migration: N name" (schema version N) or
// "-- down: N" (what undoes version N, for other migration tools, right
// after it) and runs to the next one; in it, a statement ends with ";" at
// the end of a line. Lines that are only a comment are left out.
func parseScript(text string) (*script, error) {
	s := &script{queries: make(map[string]string)}
	var (
		section string   // the current section's header, "" before the first
		stmts   []string // the current section's statements
		stmt    strings.Builder
		finish  = func() error {
			if strings.TrimSpace(stmt.String()) != "" {
				return fmt.Errorf("sqlstore: section %q: statement without a final ';'", section)
			}
			if section == "" {
				return nil
			}
			if name, ok := strings.CutPrefix(section, "query: "); ok {
				if len(stmts) != 1 {
					return fmt.Errorf("sqlstore: query %q has %d statements, want 1", name, len(stmts))
				}
				if _, dup := s.queries[name]; dup {
					return fmt.Errorf("sqlstore: query %q is defined twice", name)
				}
				s.queries[name] = stmts[0]
				return nil
			}
			if down, ok := strings.CutPrefix(section, "down: "); ok {
				n, err := strconv.Atoi(down)
				if err != nil || n != len(s.migrations) || len(s.downs) != n-1 || len(stmts) == 0 {
					return fmt.Errorf("sqlstore: section %q: want the statements that undo migration %d, right after it", section, len(s.migrations))
				}
				s.downs = append(s.downs, stmts)
				return nil
			}
			number, name, _ := strings.Cut(strings.TrimPrefix(section, "migration: "), " ")
			n, err := strconv.Atoi(number)
			switch {
			case err != nil || n != len(s.migrations)+1 || len(stmts) == 0:
				return fmt.Errorf("sqlstore: section %q: want migration %d with statements", section, len(s.migrations)+1)
			case !validMigrationName(name):
				return fmt.Errorf("sqlstore: section %q: want a name of [a-z0-9_] after the number", section)
			case len(s.downs) != len(s.migrations):
				return fmt.Errorf("sqlstore: section %q: migration %d has no down section", section, n-1)
			}
			s.names = append(s.names, name)
			s.migrations = append(s.migrations, stmts)
			return nil
		}
	)
	for line := range strings.Lines(text) {
		trimmed := strings.TrimSpace(line)
		if header, ok := strings.CutPrefix(trimmed, "-- "); ok &&
			(strings.HasPrefix(header, "query: ") || strings.HasPrefix(header, "migration: ") || strings.HasPrefix(header, "down: ")) {
			if err := finish(); err != nil {
				return nil, err
			}
			section, stmts = header, nil
			continue
		}
		if section == "" || trimmed == "" || strings.HasPrefix(trimmed, "--") {
			continue
		}
		stmt.WriteString(line)
		if strings.HasSuffix(trimmed, ";") {
			// Without its final ";", which some drivers refuse in a
			// prepared statement.
			stmts = append(stmts, strings.TrimSuffix(strings.TrimSpace(stmt.String()), ";"))
			stmt.Reset()
		}
	}
	if err := finish(); err != nil {
		return nil, err
	}
	if len(s.downs) != len(s.migrations) {
		return nil, fmt.Errorf("sqlstore: migration %d has no down section", len(s.migrations))
	}
	return s, nil
}

// validMigrationName reports whether name, part of a migration's file
// name, is a non-empty word of [a-z0-9_].
func validMigrationName(name string) bool {
	if name == "" {
		return false
	}
	for i := range len(name) {
		if c := name[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}
