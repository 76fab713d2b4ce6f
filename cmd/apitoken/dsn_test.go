package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken-go/apitoken/sqlstore"
)

func TestParseDSN(t *testing.T) {
	for _, tc := range []struct {
		name, in, driver, dsn string
		dialect               sqlstore.Dialect
	}{
		{"ok, SQLite path", "/var/lib/app/tokens.db", "sqlite", "file:/var/lib/app/tokens.db?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)", sqlstore.SQLite},
		{"ok, SQLite relative path", "tokens.db", "sqlite", "file:tokens.db?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)", sqlstore.SQLite},
		{"ok, SQLite file: URI, as given", "file:tokens.db?mode=ro", "sqlite", "file:tokens.db?mode=ro", sqlstore.SQLite},
		{"ok, postgres URL", "postgres://app:pw@db:5432/app?sslmode=require", "pgx", "postgres://app:pw@db:5432/app?sslmode=require", sqlstore.Postgres},
		{"ok, postgresql URL", "postgresql://db/app", "pgx", "postgresql://db/app", sqlstore.Postgres},
		{"ok, libpq keyword/value", "host=db user=app password=pw dbname=app sslmode=disable", "pgx", "host=db user=app password=pw dbname=app sslmode=disable", sqlstore.Postgres},
		{"ok, libpq with spaces around =", "  user = app host=db", "pgx", "  user = app host=db", sqlstore.Postgres},
		{"ok, go-sql-driver DSN", "app:pw@tcp(db:3306)/app?parseTime=true", "mysql", "app:pw@tcp(db:3306)/app?parseTime=true", sqlstore.MySQL},
		{"ok, go-sql-driver DSN without a user", "tcp(127.0.0.1:3306)/app", "mysql", "tcp(127.0.0.1:3306)/app", sqlstore.MySQL},
		{"ok, go-sql-driver unix socket", "app@unix(/run/mysqld/mysqld.sock)/app", "mysql", "app@unix(/run/mysqld/mysqld.sock)/app", sqlstore.MySQL},
		{"ok, mysql URL", "mysql://app:p%40ss@db/app?parseTime=true", "mysql", "app:p@ss@tcp(db:3306)/app?parseTime=true", sqlstore.MySQL},
		{"ok, mysql URL with a port", "mysql://root@127.0.0.1:3307/test", "mysql", "root@tcp(127.0.0.1:3307)/test", sqlstore.MySQL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseDSN(tc.in)
			require.NoError(t, err)
			assert.Equal(t, database{tc.driver, tc.dsn, tc.dialect}, got)
		})
	}
	for _, tc := range []struct{ name, in, want string }{
		{"nok, empty", "", "no database: set --db or APITOKEN_DB"},
		{"nok, blank", "  ", "no database"},
		{"nok, another scheme", "redis://:s3cret@cache:6379", "a redis:// URL is not a database"},
		{"nok, a scheme that is not one", "%%%://s3cret", "a this:// URL"},
		{"nok, key=value that is not libpq's", "server=db;password=s3cret", "not a form this command knows"},
		{"nok, user@host with no protocol", "app:s3cret@db/app", "not a form this command knows"},
		{"nok, a bad go-sql-driver DSN", "app:s3cret@tcp(db:3306)app", "not a valid MySQL DSN"},
		{"nok, a mysql URL without a host", "mysql:///app?password=s3cret", "must be mysql://user:pass@host:3306/db"},
		{"nok, a mysql URL with a path", "mysql://u:s3cret@db/app/x", "must be mysql://"},
		{"nok, a mysql URL with unknown parameters", "mysql://u:s3cret@db/app?parseTime=maybe", "not go-sql-driver/mysql's"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseDSN(tc.in)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.NotContains(t, err.Error(), "s3cret", "an error never holds the DSN, which may hold a password")
		})
	}
}
