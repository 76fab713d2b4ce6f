package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// A revocation is what the revocation log records of a change: the
// account's token with that id stops verifying as caches hold it (deleted,
// its expiry brought forward, re-hashed), or, with an empty tokenID, every
// token of the account does.
type revocation struct{ accountID, tokenID string }

// execer runs a statement: the caller's transaction in a Store made by
// WithTx, or a transaction of the Store's own.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// revoking runs change, whose statements may revoke tokens, and writes the
// revocations it returns to the revocation log in the same transaction: the
// caller's, in a Store made by WithTx (so the log's rows commit or roll back
// with the app's transaction), or one of the Store's own, committed only if
// change and the log's writes succeed. The Bus thus announces a change
// exactly when it commits, never after a rollback. Every store write that
// revokes goes through it.
func (s *Store) revoking(ctx context.Context, change func(db execer) ([]revocation, error)) error {
	if s.tx != nil {
		revs, err := change(s.tx)
		if err == nil {
			err = s.logRevocations(ctx, s.tx, revs)
		}
		return schemaHint(err)
	}
	if s.stmts.closed.Load() {
		return errClosed
	}
	// Outside the caller's transaction, a deadlock's victim runs again.
	var revs []revocation
	err := schemaHint(retry(ctx, func() error {
		tx, err := s.db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		revs, err = change(tx)
		if err == nil {
			err = s.logRevocations(ctx, tx, revs)
		}
		if err != nil {
			if rbErr := ignoreDone(tx.Rollback()); rbErr != nil {
				return errors.Join(err, rbErr)
			}
			return err // as it is, so that retry reads it
		}
		return tx.Commit()
	}))
	// The replica lags behind the commit, not behind the statement: the
	// window of primary reads starts again now (a slow commit would
	// otherwise end it before the replica has the change). Also after an
	// error: the commit may have happened.
	for _, r := range revs {
		s.replica.revoked(r.accountID, r.tokenID)
	}
	return err
}

// logRevocations writes revs to the revocation log through db.
func (s *Store) logRevocations(ctx context.Context, db execer, revs []revocation) error {
	at := s.timeArg(time.Now().UTC().Truncate(time.Microsecond))
	for _, r := range revs {
		s.replica.revoked(r.accountID, r.tokenID)
		if _, err := db.ExecContext(ctx, s.script.queries["revoke"], r.accountID, r.tokenID, at); err != nil {
			return err
		}
	}
	return nil
}

// revokedIf returns the revocation of the account's token (every token, with
// an empty id) if the change changed rows, none otherwise.
func revokedIf(n int, accountID, id string) []revocation {
	if n == 0 {
		return nil
	}
	return []revocation{{accountID, id}}
}
