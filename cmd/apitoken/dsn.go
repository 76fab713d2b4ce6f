package main

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/go-sql-driver/mysql"

	"github.com/apitoken-go/apitoken/sqlstore"
)

// A database is what a --db value names: the database/sql driver, the DSN
// to give it and sqlstore's dialect.
type database struct {
	driver, dsn string
	dialect     sqlstore.Dialect
}

// dsnForms lists the --db forms, for errors and help.
const dsnForms = `an SQLite file path (tokens.db), a PostgreSQL URL (postgres://user:pass@host:5432/db) ` +
	`or libpq string ("host=db user=app dbname=app"), or a MySQL DSN (user:pass@tcp(host:3306)/db) or URL (mysql://user:pass@host:3306/db)`

// parseDSN recognises a --db value:
//
//   - postgres://… or postgresql://…, or a libpq keyword/value string
//     ("host=db user=app dbname=app sslmode=disable"): PostgreSQL, through
//     pgx;
//   - go-sql-driver's DSN (user:pass@tcp(host:3306)/db, …@unix(/path)/db)
//     or mysql://user:pass@host:3306/db: MySQL or MariaDB;
//   - file:… or a path without a URL scheme, '=' or '@': an SQLite file.
//
// Another form is an error naming the known ones; no error holds the value,
// which may hold a password.
func parseDSN(s string) (database, error) {
	scheme, _, isURL := strings.Cut(s, "://")
	switch {
	case strings.TrimSpace(s) == "":
		return database{}, errors.New("no database: set --db or APITOKEN_DB to " + dsnForms)
	case isURL && (scheme == "postgres" || scheme == "postgresql"):
		return database{"pgx", s, sqlstore.Postgres}, nil
	case isURL && scheme == "mysql":
		dsn, err := mysqlURL(s)
		return database{"mysql", dsn, sqlstore.MySQL}, err
	case isURL:
		if !isScheme(scheme) {
			scheme = "this"
		}
		return database{}, fmt.Errorf("--db: a %s:// URL is not a database this command opens; give %s", scheme, dsnForms)
	case strings.HasPrefix(s, "file:"):
		return database{"sqlite", s, sqlstore.SQLite}, nil
	case libpqKeywordValue(s):
		return database{"pgx", s, sqlstore.Postgres}, nil
	case strings.Contains(s, "tcp(") || strings.Contains(s, "unix("):
		if _, err := mysql.ParseDSN(s); err != nil {
			return database{}, errors.New("--db: not a valid MySQL DSN; give user:pass@tcp(host:3306)/db")
		}
		return database{"mysql", s, sqlstore.MySQL}, nil
	case strings.ContainsAny(s, "=@"):
		return database{}, errors.New("--db: not a form this command knows; give " + dsnForms)
	}
	// WAL lets the app read while this command writes; busy_timeout makes
	// one wait for the other instead of failing.
	return database{"sqlite", "file:" + s + "?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)", sqlstore.SQLite}, nil
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
// starts with.
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
// DSN (port 3306 by default). Its errors never hold the URL.
func mysqlURL(s string) (string, error) {
	bad := errors.New("--db: a mysql:// URL must be mysql://user:pass@host:3306/db")
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return "", bad
	}
	cfg := mysql.NewConfig()
	if u.User != nil {
		cfg.User = u.User.Username()
		cfg.Passwd, _ = u.User.Password()
	}
	cfg.Net, cfg.Addr = "tcp", u.Host
	if u.Port() == "" {
		cfg.Addr = net.JoinHostPort(u.Hostname(), "3306")
	}
	cfg.DBName = strings.TrimPrefix(u.Path, "/")
	if strings.Contains(cfg.DBName, "/") {
		return "", bad
	}
	dsn := cfg.FormatDSN()
	if u.RawQuery != "" {
		dsn += "?" + u.RawQuery
	}
	if _, err := mysql.ParseDSN(dsn); err != nil {
		return "", errors.New("--db: the parameters of the mysql:// URL are not go-sql-driver/mysql's")
	}
	return dsn, nil
}
