package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"
)

// Migrate creates the store's tables, or upgrades them to the schema this
// version of the package uses. It is idempotent, and safe to run from
// several processes at once: they take turns under a database lock
// (PostgreSQL: an advisory lock; MySQL: GET_LOCK; SQLite: the write lock,
// so set busy_timeout). Each schema version is applied in one transaction
// where the database allows it (PostgreSQL, SQLite; MySQL commits DDL at
// once, and the version's statements are safe to run again). It refuses a
// database whose schema is newer than this package knows, and a database of
// another dialect than the Store's, naming the right one (an error wrapping
// apitoken.ErrInvalidInput).
func (s *Store) Migrate(ctx context.Context) (err error) {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("sqlstore: migrate: %w", err)
	}
	defer conn.Close()
	q := s.script.queries
	switch s.dialect {
	case Postgres:
		err = inTx(ctx, conn, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, q["lock"]); err != nil {
				return err
			}
			return s.migrate(ctx, tx)
		})
	case MySQL:
		err = withNamedLock(ctx, conn, q["lock"], q["unlock"], nil, func() error { return s.migrate(ctx, conn) })
	case SQLite:
		err = inImmediateTx(ctx, conn, q, func() error { return s.migrate(ctx, conn) })
	}
	if err != nil {
		return s.mismatch(ctx, "migrate", err)
	}
	return nil
}

// execQuerier is what migrate needs of a *sql.Conn or a *sql.Tx.
type execQuerier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// migrate applies the schema versions the database lacks, under the lock.
func (s *Store) migrate(ctx context.Context, db execQuerier) error {
	q := s.script.queries
	if _, err := db.ExecContext(ctx, q["version-table"]); err != nil {
		return err
	}
	var version int
	if err := db.QueryRowContext(ctx, q["version"]).Scan(&version); err != nil {
		return err
	}
	if version > len(s.script.migrations) {
		return fmt.Errorf("the database has schema version %d; this package knows versions up to %d: upgrade it", version, len(s.script.migrations))
	}
	for v := version + 1; v <= len(s.script.migrations); v++ {
		for _, stmt := range s.script.migrations[v-1] {
			if _, err := db.ExecContext(ctx, stmt); err != nil && !s.alreadyApplied(err) {
				return fmt.Errorf("version %d: %w", v, err)
			}
		}
		if _, err := db.ExecContext(ctx, q["set-version"], v); err != nil {
			return fmt.Errorf("version %d: %w", v, err)
		}
	}
	return nil
}

// inTx runs fn in a transaction on conn, committed if fn succeeds.
func inTx(ctx context.Context, conn *sql.Conn, fn func(*sql.Tx) error) error {
	// Read committed, whatever the database's default: after waiting for
	// the lock, the version must be read as another process committed it.
	tx, err := conn.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelReadCommitted})
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		return errors.Join(err, ignoreDone(tx.Rollback()))
	}
	return tx.Commit()
}

// inImmediateTx runs fn in an SQLite transaction that takes the write lock
// at once (BEGIN IMMEDIATE, which database/sql cannot start) on conn.
func inImmediateTx(ctx context.Context, conn *sql.Conn, q map[string]string, fn func() error) error {
	_, err := conn.ExecContext(ctx, q["lock"])
	began := err == nil
	if began {
		if err = fn(); err == nil {
			_, err = conn.ExecContext(ctx, q["unlock"])
		}
	}
	if err == nil {
		return nil
	}
	// Rolled back with a live context, and also after a BEGIN that reported
	// an error, which may have taken effect all the same (a cancelled
	// context). A connection that may still be in the transaction is
	// discarded, never handed back to the pool.
	if _, rbErr := conn.ExecContext(context.WithoutCancel(ctx), q["rollback"]); rbErr != nil {
		_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		if began {
			err = errors.Join(err, rbErr)
		}
	}
	return err
}

// ignoreDone drops the error of a rollback that the ended context already
// made.
func ignoreDone(err error) error {
	if errors.Is(err, sql.ErrTxDone) {
		return nil
	}
	return err
}

// withNamedLock runs fn holding a MySQL named lock, taken by lock (which
// returns 1 when it got the lock) and released by unlock on conn, both with
// args.
func withNamedLock(ctx context.Context, conn *sql.Conn, lock, unlock string, args []any, fn func() error) error {
	var got sql.NullInt64
	if err := conn.QueryRowContext(ctx, lock, args...).Scan(&got); err != nil {
		return err
	}
	if got.Int64 != 1 {
		return errors.New("did not get the lock in time (is a database selected?)")
	}
	err := fn()
	// Released even if ctx has ended. A connection that may still hold the
	// lock is discarded, never pooled: the lock ends with it, and fn's
	// outcome stands.
	var released sql.NullInt64
	if relErr := conn.QueryRowContext(context.WithoutCancel(ctx), unlock, args...).Scan(&released); relErr != nil || released.Int64 != 1 {
		_ = conn.Raw(func(any) error { return driver.ErrBadConn })
	}
	return err
}

// MySQL's error numbers for a column or an index that exists.
const (
	mysqlDuplicateColumn = 1060
	mysqlDuplicateIndex  = 1061
)

// alreadyApplied reports whether err says that a schema change exists
// already, so that a version's statements are safe to run again (after its
// row was lost, or, on MySQL, which commits each DDL statement at once,
// after a failure halfway): MySQL has no IF NOT EXISTS for columns and
// indexes, SQLite none for columns.
func (s *Store) alreadyApplied(err error) bool {
	switch s.dialect {
	case MySQL:
		n := mysqlErrorNumber(err)
		return n == mysqlDuplicateColumn || n == mysqlDuplicateIndex
	case SQLite:
		// Both drivers report it with SQLite's generic error code.
		return strings.Contains(err.Error(), "duplicate column name")
	}
	return false
}
