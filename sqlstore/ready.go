package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/apitoken-go/apitoken"
)

// ErrSchema is wrapped by the errors of a Store whose database lacks the
// tables this package uses, or has them at another schema version: Migrate
// was not run (or was run by another version of the package). Ready
// reports it, and so does every other method that finds a table or column
// missing; the fix is to run Store.Migrate (or to apply the schema with
// your migration tool). An outage never wraps it.
var ErrSchema = errors.New("sqlstore: schema missing or outdated")

// Ready reports whether the Store can serve: nil when the database answers
// and holds the schema this package uses, an error wrapping ErrSchema when
// the schema is missing or at another version (run Migrate), an error
// wrapping apitoken.ErrInvalidInput and naming the right dialect when the
// database is not of the Store's dialect, and any other error when the
// database cannot be reached. It asks the server which it is, reads the
// schema version and looks up one token that does not exist (three or four
// round trips), on the *sql.DB given to New, for a health or readiness
// endpoint:
//
//	if err := store.Ready(ctx); errors.Is(err, sqlstore.ErrSchema) {
//		// a deployment mistake: run Migrate, do not just retry
//	}
func (s *Store) Ready(ctx context.Context) error {
	if server := serverDialect(ctx, s.db); server != 0 && server != s.dialect {
		return s.mismatch(ctx, "ready", errors.New("the statements are another dialect's"))
	}
	var version int
	if err := s.db.QueryRowContext(ctx, s.script.queries["version"]).Scan(&version); err != nil {
		if missingSchema(err) {
			return &schemaError{msg: "sqlstore: ready: no schema in the database: run Store.Migrate", err: err}
		}
		return s.mismatch(ctx, "ready", err)
	}
	if want := len(s.script.migrations); version != want {
		if version > want {
			return &schemaError{msg: fmt.Sprintf("sqlstore: ready: the database has schema version %d; this package knows versions up to %d: upgrade it", version, want)}
		}
		return &schemaError{msg: fmt.Sprintf("sqlstore: ready: the database has schema version %d, this package needs %d: run Store.Migrate", version, want)}
	}
	ro := *s
	ro.tx = s.db
	if _, err := ro.Lookup(ctx, apitoken.Hash{}); err != nil && !errors.Is(err, apitoken.ErrNotFound) {
		if errors.Is(err, ErrSchema) {
			return err
		}
		return s.mismatch(ctx, "ready", err)
	}
	return nil
}

// A schemaError is an error of a database without the schema: it wraps
// ErrSchema and the database's own error.
type schemaError struct {
	msg string
	err error // the database's error, or nil
}

func (e *schemaError) Error() string {
	if e.err == nil {
		return e.msg
	}
	return e.msg + ": " + e.err.Error()
}

func (e *schemaError) Is(target error) bool { return target == ErrSchema }

func (e *schemaError) Unwrap() error { return e.err }

// schemaHint returns err with the fix when it says a table or column is
// missing, and err as it is otherwise (nil included). It runs on error
// paths only.
func schemaHint(err error) error {
	if err == nil || errors.Is(err, ErrSchema) || !missingSchema(err) {
		return err
	}
	return &schemaError{msg: "the token table is missing or outdated: run Store.Migrate", err: err}
}

// Error codes of a missing table or column: PostgreSQL's SQLSTATEs
// undefined_table and undefined_column, MySQL's ER_NO_SUCH_TABLE and
// ER_BAD_FIELD_ERROR.
const (
	pgUndefinedTable   = "42P01"
	pgUndefinedColumn  = "42703"
	mysqlNoSuchTable   = 1146
	mysqlUnknownColumn = 1054
)

// missingSchema reports whether err is the database saying that a table or
// a column does not exist. It reads the drivers' errors by reflection (the
// Code of pgx's *pgconn.PgError and lib/pq's *pq.Error, the Number of
// go-sql-driver's *mysql.MySQLError) and SQLite's message, so that the
// library imports no driver.
func missingSchema(err error) bool {
	if code := pgErrorCode(err); code == pgUndefinedTable || code == pgUndefinedColumn {
		return true
	}
	if n := mysqlErrorNumber(err); n == mysqlNoSuchTable || n == mysqlUnknownColumn {
		return true
	}
	msg := err.Error() // SQLite's drivers: "no such table: apitoken_tokens"
	return strings.Contains(msg, "no such table: ") || strings.Contains(msg, "no such column: ")
}

// pgErrorCode returns the SQLSTATE of a PostgreSQL driver's error in err's
// chain (a string field Code), or "".
func pgErrorCode(err error) string {
	for ; err != nil; err = errors.Unwrap(err) {
		v := reflect.ValueOf(err)
		if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
			continue
		}
		if f := v.Elem().FieldByName("Code"); f.IsValid() && f.Kind() == reflect.String && len(f.String()) == 5 {
			return f.String()
		}
	}
	return ""
}

// mismatch returns err of the operation op, naming the dialect of the
// server when it is not the Store's: a MySQL database given sqlstore.Postgres
// fails with "function pg_advisory_xact_lock does not exist", which says
// nothing of the cause. It asks the server which it is, on an error path
// only.
func (s *Store) mismatch(ctx context.Context, op string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("sqlstore: %s: %w", op, err)
	}
	server := serverDialect(ctx, s.db)
	if server == 0 || server == s.dialect {
		return fmt.Errorf("sqlstore: %s: %w", op, err)
	}
	return fmt.Errorf("sqlstore: %s: %w: the database is %s, but the Store was made with sqlstore.%v: pass sqlstore.%v to sqlstore.New (%w)",
		op, apitoken.ErrInvalidInput, server.server(), s.dialect, server, err)
}

// serverDialect asks the database which it is, or returns 0 when it cannot
// tell. version() is PostgreSQL's and MySQL's (PostgreSQL's starts with its
// name), sqlite_version() SQLite's alone.
func serverDialect(ctx context.Context, db *sql.DB) Dialect {
	var v string
	if err := db.QueryRowContext(ctx, "SELECT version()").Scan(&v); err == nil {
		if strings.HasPrefix(v, "PostgreSQL") {
			return Postgres
		}
		return MySQL
	}
	if err := db.QueryRowContext(ctx, "SELECT sqlite_version()").Scan(&v); err == nil {
		return SQLite
	}
	return 0
}

// server names the kind of server of a dialect, for errors.
func (d Dialect) server() string {
	switch d {
	case Postgres:
		return "PostgreSQL"
	case MySQL:
		return "MySQL or MariaDB"
	}
	return d.String()
}
