package sqlstore

import (
	"fmt"
	"io/fs"
	"strings"
	"testing/fstest"

	"github.com/apitoken-go/apitoken"
)

// A Layout is how MigrationFiles lays the schema versions out in files: the
// layout of the migration tool that applies them.
type Layout int

// The layouts of MigrationFiles.
const (
	// Goose is github.com/pressly/goose's: one file per version,
	// NNNNN_name.sql, with a "-- +goose Up" and a "-- +goose Down" part.
	Goose Layout = iota + 1

	// UpDown is github.com/golang-migrate/migrate's, and that of the other
	// tools that read pairs of files: two files per version,
	// NNNNN_name.up.sql and NNNNN_name.down.sql.
	UpDown
)

// MigrationFiles returns the schema of dialect d as versioned migration
// files in the given layout, for an app that applies its schema with its
// own migration tool instead of Migrate: point the tool at the returned
// fs.FS (goose.NewProvider(goose.DialectPostgres, db, fsys), or
// golang-migrate's iofs.New(fsys, ".")). The files are made from the SQL
// that Migrate runs, and the only option that matters is WithTablePrefix,
// which renames the tables as in New.
//
// Each version's up file creates the version table if need be, applies the
// version and records it there, exactly as Migrate does; its down file undoes
// the version and removes its record (version 1's drops the tables). So the
// two ways agree: a database migrated by the tool is current for Migrate, and
// one migrated by Migrate only needs the tool told which versions it holds.
//
// An unknown dialect or layout, or a bad option, is an error wrapping
// apitoken.ErrInvalidInput.
func MigrationFiles(d Dialect, layout Layout, opts ...Option) (fs.FS, error) {
	if d != Postgres && d != MySQL && d != SQLite {
		return nil, fmt.Errorf("sqlstore: %w: unknown dialect %v", apitoken.ErrInvalidInput, d)
	}
	if layout != Goose && layout != UpDown {
		return nil, fmt.Errorf("sqlstore: %w: unknown migration file layout %d", apitoken.ErrInvalidInput, int(layout))
	}
	cfg := config{prefix: defaultPrefix}
	for _, opt := range opts {
		if opt == nil {
			return nil, fmt.Errorf("sqlstore: %w: option is nil", apitoken.ErrInvalidInput)
		}
		if err := opt(&cfg); err != nil {
			return nil, err
		}
	}
	sc, err := loadScript(d, cfg.prefix)
	if err != nil {
		return nil, err
	}
	fsys := fstest.MapFS{}
	for i, stmts := range sc.migrations {
		v := i + 1
		up := statementsText(append([]string{sc.queries["version-table"]}, stmts...)) +
			literalVersion(sc.queries["set-version"], d, v) + ";\n"
		down := statementsText(sc.downs[i]) + fmt.Sprintf("DELETE FROM %sschema_version WHERE version = %d;\n", cfg.prefix, v)
		if v == 1 {
			down += fmt.Sprintf("DROP TABLE IF EXISTS %sschema_version;\n", cfg.prefix)
		}
		base := fmt.Sprintf("%05d_%s", v, sc.names[i])
		switch layout {
		case Goose:
			fsys[base+".sql"] = &fstest.MapFile{Data: []byte("-- +goose Up\n" + up + "\n-- +goose Down\n" + down), Mode: 0o444}
		case UpDown:
			fsys[base+".up.sql"] = &fstest.MapFile{Data: []byte(up), Mode: 0o444}
			fsys[base+".down.sql"] = &fstest.MapFile{Data: []byte(down), Mode: 0o444}
		}
	}
	return fsys, nil
}

// statementsText writes statements one after the other, each ending with
// ";" at the end of a line, as migration tools split them.
func statementsText(stmts []string) string {
	var b strings.Builder
	for _, s := range stmts {
		b.WriteString(s)
		b.WriteString(";\n")
	}
	return b.String()
}

// literalVersion is the set-version query with version v in place of its
// one placeholder.
func literalVersion(query string, d Dialect, v int) string {
	placeholder := "?"
	if d == Postgres {
		placeholder = "$1"
	}
	return strings.Replace(query, placeholder, fmt.Sprint(v), 1)
}
