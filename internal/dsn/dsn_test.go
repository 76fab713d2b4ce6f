package dsn_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken-go/apitoken/internal/dsn"
)

const pragmas = "?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)"

// checkMySQL stands for go-sql-driver's ParseDSN (which the root module
// may not import): it refuses a DSN without ")/" or with parseTime=maybe,
// with an error that echoes the DSN, as a driver's may. It records what it
// was given.
func checkMySQL(checked *[]string) func(string) error {
	return func(s string) error {
		*checked = append(*checked, s)
		if !strings.Contains(s, ")/") || strings.Contains(s, "parseTime=maybe") {
			return errors.New("invalid DSN " + s)
		}
		return nil
	}
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name, in, driver, dsn string
		dialect               dsn.Dialect
	}{
		{"ok, SQLite path", "/var/lib/app/tokens.db", "sqlite", "file:/var/lib/app/tokens.db" + pragmas, dsn.SQLite},
		{"ok, SQLite relative path", "tokens.db", "sqlite", "file:tokens.db" + pragmas, dsn.SQLite},
		{"ok, SQLite file: URI, as given", "file:tokens.db?mode=ro", "sqlite", "file:tokens.db?mode=ro", dsn.SQLite},
		{"ok, SQLite file: URI without parameters", "file:tokens.db", "sqlite", "file:tokens.db", dsn.SQLite},
		{"ok, postgres URL", "postgres://app:pw@db:5432/app?sslmode=require", "pgx", "postgres://app:pw@db:5432/app?sslmode=require", dsn.Postgres},
		{"ok, postgresql URL", "postgresql://db/app", "pgx", "postgresql://db/app", dsn.Postgres},
		{"ok, libpq keyword/value", "host=db user=app password=pw dbname=app sslmode=disable", "pgx", "host=db user=app password=pw dbname=app sslmode=disable", dsn.Postgres},
		{"ok, libpq with spaces around =", "  user = app host=db", "pgx", "  user = app host=db", dsn.Postgres},
		{"ok, go-sql-driver DSN", "app:pw@tcp(db:3306)/app?parseTime=true", "mysql", "app:pw@tcp(db:3306)/app?parseTime=true", dsn.MySQL},
		{"ok, go-sql-driver DSN without a user", "tcp(127.0.0.1:3306)/app", "mysql", "tcp(127.0.0.1:3306)/app", dsn.MySQL},
		{"ok, go-sql-driver unix socket", "app@unix(/run/mysqld/mysqld.sock)/app", "mysql", "app@unix(/run/mysqld/mysqld.sock)/app", dsn.MySQL},
		{"ok, mysql URL", "mysql://app:p%40ss@db/app?parseTime=true", "mysql", "app:p@ss@tcp(db:3306)/app?parseTime=true", dsn.MySQL},
		{"ok, mysql URL with a port", "mysql://root@127.0.0.1:3307/test", "mysql", "root@tcp(127.0.0.1:3307)/test", dsn.MySQL},
		{"ok, mysql URL without a user", "mysql://db:3307/test", "mysql", "tcp(db:3307)/test", dsn.MySQL},
		{"ok, mysql URL with a database to escape", "mysql://app:pw@db/my%20db", "mysql", "app:pw@tcp(db:3306)/my%20db", dsn.MySQL},
		{"ok, mysql URL with an IPv6 host", "mysql://app@[::1]/app", "mysql", "app@tcp([::1]:3306)/app", dsn.MySQL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var checked []string
			got, err := dsn.Parse(tc.in, checkMySQL(&checked))
			require.NoError(t, err)
			assert.Equal(t, dsn.DB{Driver: tc.driver, DSN: tc.dsn, Dialect: tc.dialect}, got)
			if tc.dialect == dsn.MySQL {
				assert.Equal(t, []string{tc.dsn}, checked, "the driver's check is given the DSN it will open")
			} else {
				assert.Empty(t, checked, "only a MySQL DSN is checked")
			}
			withoutCheck, err := dsn.Parse(tc.in, nil)
			require.NoError(t, err)
			assert.Equal(t, got, withoutCheck, "without a check, the same DB")
		})
	}
	for _, tc := range []struct{ name, in, want string }{
		{"nok, empty", "", "no database given"},
		{"nok, blank", " \t", "no database given"},
		{"nok, another scheme", "redis://:s3cret@cache:6379", "a redis:// URL is not a database this program opens"},
		{"nok, another scheme, with a user", "sqlserver://sa:s3cret@db/app", "a sqlserver:// URL is not a database"},
		{"nok, a scheme that is not one", "%%%://s3cret", "this URL is not of a database"},
		{"nok, key=value that is not libpq's", "server=db;password=s3cret", "not a form this program knows"},
		{"nok, libpq keyword without a value", "host=", "not a form this program knows"},
		{"nok, user@host with no protocol", "app:s3cret@db/app", "not a form this program knows"},
		{"nok, a bad go-sql-driver DSN", "app:s3cret@tcp(db:3306)app", "not a valid MySQL DSN; give user:pass@tcp(host:3306)/db"},
		{"nok, a mysql URL without a host", "mysql:///app?password=s3cret", "must be mysql://user:pass@host:3306/db"},
		{"nok, a mysql URL with a path", "mysql://u:s3cret@db/app/x", "must be mysql://"},
		{"nok, a mysql URL that does not parse", "mysql://u:s3cret@db:port/app", "must be mysql://"},
		{"nok, a mysql URL with bad parameters", "mysql://u:s3cret@db/app?parseTime=maybe", "the parameters of the mysql:// URL are not go-sql-driver/mysql's"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var checked []string
			_, err := dsn.Parse(tc.in, checkMySQL(&checked))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.NotContains(t, err.Error(), "s3cret", "an error never holds the DSN, which may hold a password")
			if !strings.Contains(tc.want, "mysql") && !strings.Contains(tc.want, "MySQL") {
				assert.Contains(t, err.Error(), "give "+dsn.Forms, "the error names the forms Parse knows")
			}
		})
	}
	_, err := dsn.Parse("", nil)
	assert.ErrorIs(t, err, dsn.ErrEmpty, "a caller tells an empty DSN apart, to say where to set one")
}

func TestDescribe(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"/var/lib/app/tokens.db", "/var/lib/app/tokens.db"},
		{"file:tokens.db?mode=ro", "file:tokens.db?mode=ro"},
		{"postgres://app:s3cret@db:5432/app", "PostgreSQL"},
		{"host=db user=app password=s3cret", "PostgreSQL"},
		{"app:s3cret@tcp(db:3306)/app", "MySQL"},
		{"mysql://app:s3cret@db/app", "MySQL"},
		{"redis://:s3cret@cache:6379", "an unrecognised database"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			assert.Equal(t, tc.want, dsn.Describe(tc.in))
		})
	}
}

func TestDialectString(t *testing.T) {
	assert.Equal(t, "SQLite", dsn.SQLite.String())
	assert.Equal(t, "PostgreSQL", dsn.Postgres.String())
	assert.Equal(t, "MySQL", dsn.MySQL.String())
	assert.Equal(t, "unknown database", dsn.Dialect(0).String())
}
