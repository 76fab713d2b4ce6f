package sqlstore_test

import (
	"crypto/rand"
	"database/sql"
	"os"
	"path/filepath"
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

// dialects are the databases every test runs against.
var dialects = []sqlstore.Dialect{sqlstore.SQLite, sqlstore.Postgres, sqlstore.MySQL}

// openDB returns a handle on a new, empty database of dialect d that is
// dropped when the test ends: an SQLite file in a temporary folder, a
// PostgreSQL schema, or a MySQL database. It skips the test, naming the
// variable to set, when d's server is not configured.
func openDB(tb testing.TB, d sqlstore.Dialect) *sql.DB {
	tb.Helper()
	name := "apitoken_test_" + rand.Text()[:12]
	var db *sql.DB
	switch d {
	case sqlstore.SQLite:
		dsn := "file:" + filepath.Join(tb.TempDir(), "tokens.db") +
			"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)"
		var err error
		db, err = sql.Open("sqlite", dsn)
		require.NoError(tb, err)
	case sqlstore.Postgres:
		dsn := serverDSN(tb, pgDSNVar)
		admin := openPostgres(tb, dsn, "")
		_, err := admin.ExecContext(tb.Context(), "CREATE SCHEMA "+name)
		require.NoError(tb, err)
		tb.Cleanup(func() {
			_, err := admin.Exec("DROP SCHEMA " + name + " CASCADE")
			require.NoError(tb, err)
		})
		db = openPostgres(tb, dsn, name)
	case sqlstore.MySQL:
		cfg, err := mysql.ParseDSN(serverDSN(tb, mysqlDSNVar))
		require.NoError(tb, err)
		admin, err := sql.Open("mysql", cfg.FormatDSN())
		require.NoError(tb, err)
		tb.Cleanup(func() { admin.Close() })
		_, err = admin.ExecContext(tb.Context(), "CREATE DATABASE "+name)
		require.NoError(tb, err)
		tb.Cleanup(func() {
			_, err := admin.Exec("DROP DATABASE " + name)
			require.NoError(tb, err)
		})
		cfg.DBName = name
		db, err = sql.Open("mysql", cfg.FormatDSN())
		require.NoError(tb, err)
	default:
		tb.Fatalf("no database for dialect %v", d)
	}
	// Closed before the cleanups above drop the database.
	tb.Cleanup(func() { db.Close() })
	require.NoError(tb, db.PingContext(tb.Context()), "%v", d)
	return db
}

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
		tb.Skipf("%s is not set: set it to a database's DSN to run this test against that server", variable)
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
