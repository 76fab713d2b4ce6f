package main

import (
	"errors"
	"fmt"

	"github.com/go-sql-driver/mysql"

	"github.com/apitoken-go/apitoken/internal/dsn"
	"github.com/apitoken-go/apitoken/sqlstore"
)

// A database is what a --db value names: the database/sql driver, the DSN
// to give it and sqlstore's dialect.
type database struct {
	driver, dsn string
	dialect     sqlstore.Dialect
}

// dsnForms lists the --db forms, for errors and help.
const dsnForms = dsn.Forms

// dialects maps the dialects of package dsn to sqlstore's.
var dialects = map[dsn.Dialect]sqlstore.Dialect{
	dsn.SQLite:   sqlstore.SQLite,
	dsn.Postgres: sqlstore.Postgres,
	dsn.MySQL:    sqlstore.MySQL,
}

// parseDSN recognises a --db value with dsn.Parse, a MySQL DSN checked by
// go-sql-driver/mysql. No error holds the value, which may hold a password.
func parseDSN(s string) (database, error) {
	db, err := dsn.Parse(s, checkMySQL)
	switch {
	case errors.Is(err, dsn.ErrEmpty):
		return database{}, errors.New("no database: set --db or APITOKEN_DB to " + dsnForms)
	case err != nil:
		return database{}, fmt.Errorf("--db: %w", err)
	}
	return database{db.Driver, db.DSN, dialects[db.Dialect]}, nil
}

// checkMySQL checks a MySQL DSN as the driver will parse it.
func checkMySQL(s string) error {
	_, err := mysql.ParseDSN(s)
	return err
}
