package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/apitoken-go/apitoken"
)

// CreateLimited implements apitoken.LimitedCreator: it counts the account's
// tokens and inserts in one transaction, under a lock on the account
// (PostgreSQL: an advisory lock; MySQL: GET_LOCK; SQLite: the write lock).
// In a Store made by WithTx it needs PostgreSQL and a *sql.Tx at read
// committed or serializable isolation, and returns an error wrapping
// errors.ErrUnsupported otherwise: MySQL's and SQLite's locks cannot be held
// to the end of the caller's transaction, and under repeatable read the
// count would not see what the lock's last holder committed.
func (s *Store) CreateLimited(ctx context.Context, rec apitoken.Record, max int) error {
	args, err := s.createArgs(rec)
	if err != nil {
		return err
	}
	s.replica.created(rec.AccountID, rec.Hash)
	q := s.script.queries
	// count and insert run under the lock.
	insert := func(db execQuerier) error {
		var n int
		if err := db.QueryRowContext(ctx, q["count-account"], rec.AccountID).Scan(&n); err != nil {
			return err
		}
		if n >= max {
			return errLimitReached
		}
		return s.created(db.ExecContext(ctx, q["create"], args...))
	}
	if s.tx != nil {
		// The account's lock must be held to the end of a transaction.
		if _, inTx := s.tx.(*sql.Tx); !inTx || s.dialect != Postgres {
			return fmt.Errorf("sqlstore: a token limit in the caller's transaction needs PostgreSQL and a *sql.Tx: %w", errors.ErrUnsupported)
		}
		// Under repeatable read the count would see the snapshot taken
		// before the lock was granted, not what its last holder committed.
		var level string
		if err := s.tx.QueryRowContext(ctx, q["isolation"]).Scan(&level); err != nil {
			return createError(err)
		}
		if level == "repeatable read" {
			return fmt.Errorf("sqlstore: a token limit in the caller's transaction needs read committed or serializable isolation: %w", errors.ErrUnsupported)
		}
		if _, err := s.tx.ExecContext(ctx, q["lock-account"], rec.AccountID); err != nil {
			return createError(err)
		}
		return createError(insert(s.tx))
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return createError(err)
	}
	defer conn.Close()
	switch s.dialect {
	case Postgres:
		err = inTx(ctx, conn, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, q["lock-account"], rec.AccountID); err != nil {
				return err
			}
			return insert(tx)
		})
	case MySQL:
		// Three round trips: the lock, one INSERT that counts the account's
		// tokens and goes in only below the limit, the unlock.
		err = s.detached(ctx, rec.AccountID, rec.ID, func(ctx context.Context) error {
			return withNamedLock(ctx, conn, q["lock-account"], q["unlock-account"], []any{rec.AccountID}, func() error {
				res, err := conn.ExecContext(ctx, q["create-limited"], append(args, rec.AccountID, max)...)
				if err != nil {
					return s.created(res, err)
				}
				if n, err := res.RowsAffected(); err != nil {
					return err
				} else if n == 0 {
					return errLimitReached
				}
				return nil
			})
		})
	case SQLite:
		err = inImmediateTx(ctx, conn, q, func() error { return insert(conn) })
	}
	return createError(err)
}
