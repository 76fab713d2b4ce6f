package dbtest_test

import (
	"crypto/rand"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/stretchr/testify/require"
	_ "modernc.org/sqlite"

	"github.com/apitoken-go/apitoken/sqlstore"
)

// The environment variables that point the tests at real servers. .ci/run
// sets both; without them, the PostgreSQL and MySQL tests skip.
const (
	pgDSNVar    = "APITOKEN_PG_DSN"    // e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable
	mysqlDSNVar = "APITOKEN_MYSQL_DSN" // e.g. root@tcp(127.0.0.1:3306)/test?parseTime=true
)

// dsnForms says, for a skipped test, what each variable holds.
var dsnForms = map[string]string{
	pgDSNVar:    "a PostgreSQL URL, e.g. " + "postgres://postgres@127.0.0.1:5432/test?sslmode=disable",
	mysqlDSNVar: "a go-sql-driver/mysql DSN with parseTime=true, e.g. " + "root@tcp(127.0.0.1:3306)/test?parseTime=true",
}

// dialects are the databases every test runs against.
var dialects = []sqlstore.Dialect{sqlstore.SQLite, sqlstore.Postgres, sqlstore.MySQL}

// openDB returns a handle on a new, empty database of dialect d that is
// dropped when the test ends: an SQLite file in a temporary folder, a
// PostgreSQL schema, or a MySQL database. It skips the test, naming the
// variable to set, when d's server is not configured.
func openDB(tb testing.TB, d sqlstore.Dialect) *sql.DB {
	tb.Helper()
	return sharedDB(tb, d, nil)()
}

// sharedDB creates a new, empty database of dialect d, dropped when the test
// ends, and returns a function that opens another handle (its own pool) on
// it at each call, as a separate process would. edit, if not nil, adjusts
// the MySQL configuration.
func sharedDB(tb testing.TB, d sqlstore.Dialect, edit func(*mysql.Config)) func() *sql.DB {
	tb.Helper()
	var open func() (*sql.DB, error)
	switch d {
	case sqlstore.SQLite:
		dsn := "file:" + filepath.Join(tb.TempDir(), "tokens.db") +
			"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)"
		open = func() (*sql.DB, error) { return sql.Open("sqlite", dsn) }
	case sqlstore.Postgres:
		dsn, schema := newPostgresSchema(tb)
		open = func() (*sql.DB, error) { return openPostgres(tb, dsn, schema), nil }
	case sqlstore.MySQL:
		cfg, err := mysql.ParseDSN(serverDSN(tb, mysqlDSNVar))
		require.NoError(tb, err)
		admin, err := sql.Open("mysql", cfg.FormatDSN())
		require.NoError(tb, err)
		tb.Cleanup(func() { admin.Close() })
		name := newName()
		_, err = admin.ExecContext(tb.Context(), "CREATE DATABASE "+name)
		require.NoError(tb, err)
		tb.Cleanup(func() {
			_, err := admin.Exec("DROP DATABASE " + name)
			require.NoError(tb, err)
		})
		cfg.DBName = name
		if edit != nil {
			edit(cfg)
		}
		connector, err := mysql.NewConnector(cfg)
		require.NoError(tb, err)
		open = func() (*sql.DB, error) { return sql.OpenDB(connector), nil }
	default:
		tb.Fatalf("no database for dialect %v", d)
	}
	return func() *sql.DB {
		tb.Helper()
		db, err := open()
		require.NoError(tb, err)
		// Registered after the drop: closed before it.
		tb.Cleanup(func() { db.Close() })
		require.NoError(tb, db.PingContext(tb.Context()), "%v", d)
		return db
	}
}

// newPostgresSchema creates a schema on the server of APITOKEN_PG_DSN,
// dropped when the test ends, and returns the DSN and the schema's name.
func newPostgresSchema(tb testing.TB) (dsn, schema string) {
	tb.Helper()
	dsn = serverDSN(tb, pgDSNVar)
	admin := openPostgres(tb, dsn, "")
	schema = newName()
	_, err := admin.ExecContext(tb.Context(), "CREATE SCHEMA "+schema)
	require.NoError(tb, err)
	tb.Cleanup(func() {
		_, err := admin.Exec("DROP SCHEMA " + schema + " CASCADE")
		require.NoError(tb, err)
	})
	return dsn, schema
}

// newName returns a new name for a test's schema or database.
func newName() string { return "apitoken_test_" + strings.ToLower(rand.Text()[:12]) }

// openPostgres opens dsn through pgx, with search_path set to schema when
// it is not empty.
func openPostgres(tb testing.TB, dsn, schema string) *sql.DB {
	tb.Helper()
	cfg, err := pgx.ParseConfig(dsn)
	require.NoError(tb, err)
	if schema != "" {
		cfg.RuntimeParams["search_path"] = schema
	}
	db := stdlib.OpenDB(*cfg)
	tb.Cleanup(func() { db.Close() })
	return db
}

// serverDSN returns the DSN in the environment variable, or skips.
func serverDSN(tb testing.TB, variable string) string {
	tb.Helper()
	dsn := os.Getenv(variable)
	if dsn == "" {
		tb.Skipf("%s is not set: set it to %s to run this test against that server", variable, dsnForms[variable])
	}
	return dsn
}

// newStore returns a migrated Store on a new database of dialect d.
func newStore(tb testing.TB, d sqlstore.Dialect, opts ...sqlstore.Option) *sqlstore.Store {
	tb.Helper()
	s, err := sqlstore.New(openDB(tb, d), d, opts...)
	require.NoError(tb, err)
	tb.Cleanup(func() { require.NoError(tb, s.Close()) })
	require.NoError(tb, s.Migrate(tb.Context()))
	return s
}
