// Package dsn recognises the database a DSN names, for the programs of this
// repository (cmd/apitoken and examples/accountprefs): the database/sql
// driver to open it with, the DSN to give that driver and the SQL dialect.
//
// It imports the standard library only, so that the root module stays free
// of drivers; a caller checks a MySQL DSN against go-sql-driver/mysql
// through the function it gives Parse.
package dsn

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
)

// A Dialect is the SQL a database speaks. Callers map it to
// sqlstore.Dialect.
type Dialect int

// The dialects Parse tells apart.
const (
	SQLite Dialect = iota + 1
	Postgres
	MySQL
)

// String names d, as a log or an error may print it.
func (d Dialect) String() string {
	switch d {
	case SQLite:
		return "SQLite"
	case Postgres:
		return "PostgreSQL"
	case MySQL:
		return "MySQL"
	}
	return "unknown database"
}

// A DB is what a DSN names: the database/sql driver, the DSN to give it and
// the dialect.
type DB struct {
	Driver, DSN string
	Dialect     Dialect
}

// Forms lists the forms Parse knows, for errors and help.
const Forms = `an SQLite file path (tokens.db) or file: URI, a PostgreSQL URL (postgres://user:pass@host:5432/db) ` +
	`or libpq string ("host=db user=app dbname=app"), or a MySQL DSN (user:pass@tcp(host:3306)/db) or URL (mysql://user:pass@host:3306/db)`

// ErrEmpty is Parse's error for an empty or blank DSN: the caller says
// where to set one.
var ErrEmpty = errors.New("no database given; give " + Forms)

// sqlitePragmas are the SQLite settings of a path: WAL lets readers run
// beside a writer, busy_timeout makes a writer wait for another instead of
// failing, and synchronous(NORMAL) is WAL's safe setting (a power loss may
// lose the last commits, never corrupt the file).
const sqlitePragmas = "?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)"

// Parse recognises s:
//
//   - postgres://… or postgresql://…, or a libpq keyword/value string
//     ("host=db user=app dbname=app sslmode=disable"): PostgreSQL, through
//     pgx, as given;
//   - go-sql-driver's DSN (user:pass@tcp(host:3306)/db, tcp(host)/db,
//     …@unix(/path)/db), as given, or mysql://user:pass@host:3306/db,
//     turned into go-sql-driver's form (port 3306 by default): MySQL or
//     MariaDB;
//   - file:…, as given, or a path without a URL scheme, '=' or '@', with
//     sqlitePragmas: an SQLite file, through modernc.org/sqlite.
//
// checkMySQL, if not nil, checks a MySQL DSN (go-sql-driver/mysql's
// ParseDSN); its error is reported without its text, which may echo part
// of the DSN.
//
// An empty s is ErrEmpty; another form is an error naming the known ones.
// No error holds s, which may hold a password; callers prefix the flag.
func Parse(s string, checkMySQL func(dsn string) error) (DB, error) {
	scheme, _, isURL := strings.Cut(s, "://")
	switch {
	case strings.TrimSpace(s) == "":
		return DB{}, ErrEmpty
	case isURL && (scheme == "postgres" || scheme == "postgresql"):
		return DB{"pgx", s, Postgres}, nil
	case isURL && scheme == "mysql":
		dsn, err := mysqlURL(s)
		if err == nil && checkMySQL != nil && checkMySQL(dsn) != nil {
			err = errors.New("the parameters of the mysql:// URL are not go-sql-driver/mysql's")
		}
		if err != nil {
			return DB{}, err
		}
		return DB{"mysql", dsn, MySQL}, nil
	case isURL:
		if !isScheme(scheme) {
			return DB{}, errors.New("this URL is not of a database; give " + Forms)
		}
		return DB{}, fmt.Errorf("a %s:// URL is not a database this program opens; give %s", scheme, Forms)
	case strings.HasPrefix(s, "file:"):
		return DB{"sqlite", s, SQLite}, nil
	case libpqKeywordValue(s):
		return DB{"pgx", s, Postgres}, nil
	case strings.Contains(s, "tcp(") || strings.Contains(s, "unix("):
		if checkMySQL != nil && checkMySQL(s) != nil {
			return DB{}, errors.New("not a valid MySQL DSN; give user:pass@tcp(host:3306)/db")
		}
		return DB{"mysql", s, MySQL}, nil
	case strings.ContainsAny(s, "=@"):
		return DB{}, errors.New("not a form this program knows; give " + Forms)
	}
	return DB{"sqlite", "file:" + s + sqlitePragmas, SQLite}, nil
}

// Describe names the database of s for a log line: an SQLite file by its
// path, a server by its dialect only, since its DSN may hold a password.
func Describe(s string) string {
	db, err := Parse(s, nil)
	switch {
	case err != nil:
		return "an unrecognised database"
	case db.Dialect == SQLite:
		return s
	}
	return db.Dialect.String()
}

// isScheme reports whether s is a URL scheme, so that an error may name it.
func isScheme(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for i, r := range s {
		if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || i > 0 && ('0' <= r && r <= '9' || r == '+' || r == '-' || r == '.')) {
			return false
		}
	}
	return true
}

// libpqKeywords are the connection parameters a libpq keyword/value string
// most often starts with.
var libpqKeywords = map[string]bool{
	"host": true, "hostaddr": true, "port": true, "dbname": true, "user": true, "password": true,
	"sslmode": true, "service": true, "passfile": true, "connect_timeout": true, "application_name": true,
	"options": true, "target_session_attrs": true, "sslrootcert": true, "sslcert": true, "sslkey": true,
}

// libpqKeywordValue reports whether s is a libpq keyword/value string:
// keyword=value pairs, the first keyword one of libpq's.
func libpqKeywordValue(s string) bool {
	key, rest, ok := strings.Cut(strings.TrimLeft(s, " \t"), "=")
	key = strings.TrimRight(key, " \t")
	return ok && libpqKeywords[key] && rest != ""
}

// mysqlURL turns mysql://user:pass@host:port/db?params into go-sql-driver's
// DSN, user:pass@tcp(host:port)/db?params (port 3306 by default), as
// go-sql-driver's Config.FormatDSN writes it. Its errors never hold the URL.
func mysqlURL(s string) (string, error) {
	bad := errors.New("a mysql:// URL must be mysql://user:pass@host:3306/db")
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return "", bad
	}
	db := strings.TrimPrefix(u.Path, "/")
	if strings.Contains(db, "/") {
		return "", bad
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "3306")
	}
	var b strings.Builder
	if user := u.User.Username(); user != "" {
		b.WriteString(user)
		if pass, _ := u.User.Password(); pass != "" {
			b.WriteString(":" + pass)
		}
		b.WriteString("@")
	}
	b.WriteString("tcp(" + addr + ")/" + url.PathEscape(db))
	if u.RawQuery != "" {
		b.WriteString("?" + u.RawQuery)
	}
	return b.String(), nil
}
