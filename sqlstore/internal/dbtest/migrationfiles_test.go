package dbtest_test

import (
	"database/sql"
	"io/fs"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/pressly/goose/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken-go/apitoken"
	"github.com/apitoken-go/apitoken/sqlstore"
	"github.com/apitoken-go/apitoken/storetest"
)

// gooseDialects are goose's names of the dialects.
var gooseDialects = map[sqlstore.Dialect]goose.Dialect{
	sqlstore.Postgres: goose.DialectPostgres,
	sqlstore.MySQL:    goose.DialectMySQL,
	sqlstore.SQLite:   goose.DialectSQLite3,
}

// migrationsTablePrefix is the table prefix of the tests of MigrationFiles,
// so that they also check that the files carry it.
const migrationsTablePrefix = "mig_"

// gooseUp applies MigrationFiles' goose files to db with goose, as a library.
func gooseUp(t *testing.T, d sqlstore.Dialect, db *sql.DB) *goose.Provider {
	t.Helper()
	fsys, err := sqlstore.MigrationFiles(d, sqlstore.Goose, sqlstore.WithTablePrefix(migrationsTablePrefix))
	require.NoError(t, err)
	p, err := goose.NewProvider(gooseDialects[d], db, fsys)
	require.NoError(t, err)
	res, err := p.Up(t.Context())
	require.NoError(t, err)
	require.NotEmpty(t, res)
	return p
}

// TestMigrationFilesGoose applies the schema with goose on each database,
// then runs the store conformance suite on it: the files are a complete
// schema. Migrate then has nothing left to do, and goose's down migrations
// leave no table behind.
func TestMigrationFilesGoose(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.String(), func(t *testing.T) {
			storetest.Run(t, func(t *testing.T) apitoken.Store {
				db := openDB(t, d)
				gooseUp(t, d, db)
				s, err := sqlstore.New(db, d, sqlstore.WithTablePrefix(migrationsTablePrefix))
				require.NoError(t, err)
				t.Cleanup(func() { s.Close() })
				return s
			})

			t.Run("Migrate agrees, and down removes everything", func(t *testing.T) {
				db := openDB(t, d)
				p := gooseUp(t, d, db)
				s, err := sqlstore.New(db, d, sqlstore.WithTablePrefix(migrationsTablePrefix))
				require.NoError(t, err)
				defer s.Close()
				before := schemaTables(t, d, db)
				require.NoError(t, s.Migrate(t.Context()), "the version table says the schema is current")
				assert.Equal(t, before, schemaTables(t, d, db))
				var versions int
				require.NoError(t, db.QueryRowContext(t.Context(), "SELECT COUNT(*) FROM "+migrationsTablePrefix+"schema_version").Scan(&versions))
				assert.Equal(t, len(fileNames(t, d, sqlstore.Goose)), versions, "one row per version, as Migrate writes")

				_, err = p.DownTo(t.Context(), 0)
				require.NoError(t, err)
				left := slices.DeleteFunc(schemaTables(t, d, db), func(n string) bool { return !strings.HasPrefix(n, migrationsTablePrefix) })
				assert.Empty(t, left, "the down migrations drop every table of the store")
			})
		})
	}
}

// TestMigrationFilesUpDown applies the .up.sql files in order, statement
// by statement as golang-migrate does, then runs the store conformance
// suite on it; the .down.sql files, in reverse order, remove it again.
func TestMigrationFilesUpDown(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.String(), func(t *testing.T) {
			names := fileNames(t, d, sqlstore.UpDown)
			fsys, err := sqlstore.MigrationFiles(d, sqlstore.UpDown, sqlstore.WithTablePrefix(migrationsTablePrefix))
			require.NoError(t, err)
			var ups, downs []string
			for _, n := range names {
				require.Regexp(t, regexp.MustCompile(`^\d{5}_[a-z0-9_]+\.(up|down)\.sql$`), n)
				if strings.HasSuffix(n, ".up.sql") {
					ups = append(ups, n)
				} else {
					downs = append(downs, n)
				}
			}
			require.Len(t, downs, len(ups), "a down file per version")
			run := func(t *testing.T, db *sql.DB, files []string) {
				for _, n := range files {
					b, err := fs.ReadFile(fsys, n)
					require.NoError(t, err)
					for _, stmt := range strings.SplitAfter(string(b), ";\n") {
						if strings.TrimSpace(stmt) != "" {
							_, err := db.ExecContext(t.Context(), stmt)
							require.NoError(t, err, "%s: %s", n, stmt)
						}
					}
				}
			}
			storetest.Run(t, func(t *testing.T) apitoken.Store {
				db := openDB(t, d)
				run(t, db, ups)
				s, err := sqlstore.New(db, d, sqlstore.WithTablePrefix(migrationsTablePrefix))
				require.NoError(t, err)
				t.Cleanup(func() { s.Close() })
				return s
			})
			t.Run("down removes everything", func(t *testing.T) {
				db := openDB(t, d)
				run(t, db, ups)
				slices.Reverse(downs)
				run(t, db, downs)
				assert.Empty(t, schemaTables(t, d, db))
			})
		})
	}
}

// TestMigrationFilesRefused checks MigrationFiles' bad input.
func TestMigrationFilesRefused(t *testing.T) {
	for _, tc := range []struct {
		name   string
		d      sqlstore.Dialect
		layout sqlstore.Layout
		opts   []sqlstore.Option
	}{
		{"unknown dialect", sqlstore.Dialect(9), sqlstore.Goose, nil},
		{"unknown layout", sqlstore.Postgres, sqlstore.Layout(9), nil},
		{"bad prefix", sqlstore.Postgres, sqlstore.Goose, []sqlstore.Option{sqlstore.WithTablePrefix("no-dashes")}},
		{"nil option", sqlstore.Postgres, sqlstore.Goose, []sqlstore.Option{nil}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := sqlstore.MigrationFiles(tc.d, tc.layout, tc.opts...)
			require.ErrorIs(t, err, apitoken.ErrInvalidInput)
		})
	}
}

// fileNames returns the names of the files of MigrationFiles, sorted.
func fileNames(t *testing.T, d sqlstore.Dialect, layout sqlstore.Layout) []string {
	t.Helper()
	fsys, err := sqlstore.MigrationFiles(d, layout, sqlstore.WithTablePrefix(migrationsTablePrefix))
	require.NoError(t, err)
	entries, err := fs.ReadDir(fsys, ".")
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	require.NotEmpty(t, names)
	return names
}

// schemaTables returns the names of the tables of db's schema (or database),
// sorted, goose's own left out.
func schemaTables(t *testing.T, d sqlstore.Dialect, db *sql.DB) []string {
	t.Helper()
	q := map[sqlstore.Dialect]string{
		sqlstore.Postgres: "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()",
		sqlstore.MySQL:    "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE()",
		sqlstore.SQLite:   "SELECT name FROM sqlite_master WHERE type = 'table'",
	}[d]
	rows, err := db.QueryContext(t.Context(), q)
	require.NoError(t, err)
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		require.NoError(t, rows.Scan(&n))
		if n != "goose_db_version" && n != "sqlite_sequence" {
			names = append(names, n)
		}
	}
	require.NoError(t, rows.Err())
	slices.Sort(names)
	return names
}
