package sqlstore

import (
	"fmt"
	"strings"
)

// Dialect is the SQL dialect of a database: Postgres, MySQL or SQLite.
type Dialect int

// The dialects sqlstore speaks.
const (
	// Postgres is PostgreSQL 11 or later, through pgx's database/sql
	// driver (github.com/jackc/pgx/v5/stdlib) or github.com/lib/pq.
	Postgres Dialect = iota + 1

	// MySQL is MySQL 8 or MariaDB 10.5 or later, through
	// github.com/go-sql-driver/mysql.
	MySQL

	// SQLite is SQLite 3.35 or later, through modernc.org/sqlite (pure Go)
	// or github.com/mattn/go-sqlite3.
	SQLite
)

// String returns the dialect's name.
func (d Dialect) String() string {
	switch d {
	case Postgres:
		return "Postgres"
	case MySQL:
		return "MySQL"
	case SQLite:
		return "SQLite"
	}
	return fmt.Sprintf("Dialect(%d)", int(d))
}

// file is the name of the dialect's SQL file, without ".sql".
func (d Dialect) file() string { return strings.ToLower(d.String()) }
