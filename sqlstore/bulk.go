package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/apitoken-go/apitoken"
)

// DeleteAccount implements apitoken.AccountDeleter. The account's
// revocation is logged in the same transaction (see Bus).
func (s *Store) DeleteAccount(ctx context.Context, accountID string) (int, error) {
	if !storable(accountID) {
		return 0, nil
	}
	var n int
	err := s.revoking(ctx, func(db execer) (_ []revocation, err error) {
		n, err = execCount(ctx, db, s.script.queries["delete-account"], accountID)
		return revokedIf(n, accountID, ""), err
	})
	if err != nil {
		return 0, fmt.Errorf("sqlstore: delete account: %w", err)
	}
	return n, nil
}

// DeleteExpired implements apitoken.ExpiredDeleter. The database scans the
// table for it: a job for a quiet moment, not the request path.
func (s *Store) DeleteExpired(ctx context.Context, before time.Time) (int, error) {
	if !storableTime(before) {
		return 0, fmt.Errorf("sqlstore: %w: before is outside the years %d to %d", apitoken.ErrInvalidInput, minYear, maxYear)
	}
	res, err := s.exec(ctx, &s.stmts.deleteExpired, s.timeArg(before))
	if err != nil {
		return 0, fmt.Errorf("sqlstore: delete expired: %w", err)
	}
	return rowsAffected("delete expired", res)
}
