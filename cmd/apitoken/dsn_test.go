package main

import (
	"net/url"
	"testing"

	"github.com/go-sql-driver/mysql"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken-go/apitoken/sqlstore"
)

// TestMySQLURLAsTheDriverReadsIt checks, against go-sql-driver/mysql itself
// (which package dsn may not import), that the DSN a mysql:// URL becomes
// is read back by the driver as the URL's user, password, address and
// database, also when the password holds the DSN's separators.
func TestMySQLURLAsTheDriverReadsIt(t *testing.T) {
	for _, tc := range []struct{ name, user, pass, host, addr, db string }{
		{"plain", "app", "pw", "db:3307", "db:3307", "app"},
		{"default port", "app", "pw", "db", "db:3306", "app"},
		{"no password", "root", "", "127.0.0.1", "127.0.0.1:3306", "test"},
		{"separators in the password", "app", "p@s:s/w?o(r)d &=%", "db", "db:3306", "app"},
		{"a database to escape", "app", "pw", "[::1]", "[::1]:3306", "my db?"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := url.URL{Scheme: "mysql", Host: tc.host, Path: "/" + tc.db, RawQuery: "parseTime=true"}
			u.User = url.UserPassword(tc.user, tc.pass)
			if tc.pass == "" {
				u.User = url.User(tc.user)
			}
			d, err := parseDSN(u.String())
			require.NoError(t, err)
			assert.Equal(t, sqlstore.MySQL, d.dialect)
			assert.Equal(t, "mysql", d.driver)
			cfg, err := mysql.ParseDSN(d.dsn)
			require.NoError(t, err)
			assert.Equal(t, []string{"tcp", tc.addr, tc.user, tc.pass, tc.db}, []string{cfg.Net, cfg.Addr, cfg.User, cfg.Passwd, cfg.DBName})
			assert.True(t, cfg.ParseTime, "the URL's parameters are kept")
		})
	}
}
