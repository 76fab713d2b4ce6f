package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"

	"github.com/apitoken-go/apitoken"
)

// lastUseChunk is how many last uses one transaction writes: enough to
// spare a commit (a log flush) per token, few enough that a transaction
// holds few row locks and a deadlock's victim has little to run again.
const lastUseChunk = 100

// RecordLastUse implements apitoken.LastUseRecorder: one UPDATE per token,
// in the order of the tokens' ids, lastUseChunk of them per transaction
// (the Issuer calls it in the background, at most once per token per
// interval). Every writer takes the rows' locks in that one order, so the
// last-use writes of several instances cannot close a lock cycle among
// themselves, nor with a Delete or Rotate, which lock one token; a
// DeleteAll, which locks an account's tokens in another order, can meet
// one, and the database's victim (either side) runs again; a chunk that
// keeps losing is written one token at a time. In a Store made
// by WithTx the UPDATEs run in the caller's transaction, in the same order.
func (s *Store) RecordLastUse(ctx context.Context, uses []apitoken.LastUse) error {
	uses = slices.DeleteFunc(slices.Clone(uses), func(u apitoken.LastUse) bool { return !storable(u.ID) || u.At.IsZero() })
	slices.SortFunc(uses, func(a, b apitoken.LastUse) int { return cmp.Compare(a.ID, b.ID) })
	for part := range slices.Chunk(uses, lastUseChunk) {
		var err error
		if s.tx != nil {
			err = s.writeLastUses(ctx, s.tx, part)
		} else {
			err = retry(ctx, func() error { return s.writeLastUsesInTx(ctx, part) })
			if retryable(err) {
				// Still the victim of each lock cycle (a stream of
				// deletes that lock an account's rows in their order):
				// write the chunk one token at a time, each holding one
				// row's locks, and each run again if it loses all the
				// same.
				for _, u := range part {
					if err = retry(ctx, func() error { return s.writeLastUsesInTx(ctx, []apitoken.LastUse{u}) }); err != nil {
						break
					}
				}
			}
		}
		if err != nil {
			return fmt.Errorf("sqlstore: record last use: %w", err)
		}
	}
	return nil
}

// writeLastUsesInTx writes uses in a transaction of its own.
func (s *Store) writeLastUsesInTx(ctx context.Context, uses []apitoken.LastUse) error {
	stmt, err := s.stmts.setLastUsed.get(ctx)
	if err != nil {
		return err
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	var db execer = tx
	if stmt != nil { // nil while another caller prepares it
		db = stmtExecer{tx.StmtContext(ctx, stmt)}
	}
	if err := s.writeLastUses(ctx, db, uses); err != nil {
		return errors.Join(err, ignoreDone(tx.Rollback()))
	}
	return tx.Commit()
}

// writeLastUses runs the set-last-used statement for each of uses through
// db.
func (s *Store) writeLastUses(ctx context.Context, db execer, uses []apitoken.LastUse) error {
	q := s.stmts.setLastUsed.query
	for _, u := range uses {
		at := s.timeArg(u.At)
		args := []any{at, addrArg(u.IP), u.ID, at}
		if s.dialect == Postgres {
			args = []any{at, u.ID, addrArg(u.IP)} // $1 is used twice
		}
		if _, err := db.ExecContext(ctx, q, args...); err != nil {
			return err
		}
	}
	return nil
}

// stmtExecer runs a prepared statement as an execer, ignoring the query
// text it is given, which is the statement's.
type stmtExecer struct{ stmt *sql.Stmt }

func (e stmtExecer) ExecContext(ctx context.Context, _ string, args ...any) (sql.Result, error) {
	return e.stmt.ExecContext(ctx, args...)
}
