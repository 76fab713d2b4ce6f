package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/apitoken-go/apitoken"
)

// SetExpiry implements apitoken.ExpiryUpdater. The token's revocation is
// logged in the same transaction (see Bus).
func (s *Store) SetExpiry(ctx context.Context, accountID, id string, from, to time.Time) error {
	if !storableTime(to) || to.Equal(from) {
		return fmt.Errorf("sqlstore: %w: the new expiry is zero, the old one, or outside the years %d to %d", apitoken.ErrInvalidInput, minYear, maxYear)
	}
	if !storable(accountID) || !storable(id) || !from.IsZero() && !storableTime(from) {
		return errNotFound
	}
	var n int
	err := s.revoking(ctx, func(db execer) (_ []revocation, err error) {
		n, err = execCount(ctx, db, s.script.queries["set-expiry"], s.timeArg(to), id, accountID, s.timeArg(from))
		return revokedIf(n, accountID, id), err
	})
	if err != nil {
		return fmt.Errorf("sqlstore: set expiry: %w", err)
	}
	// to differs from from, so even MySQL, which counts changed rows only,
	// counts the row.
	if n == 0 {
		return errNotFound
	}
	return nil
}

// Rehash implements apitoken.Rehasher: one UPDATE of the primary key, and
// the token's revocation logged in the same transaction (see Bus).
func (s *Store) Rehash(ctx context.Context, accountID, id string, from, to apitoken.Hash) error {
	if !storable(accountID) || !storable(id) {
		return errNotFound
	}
	s.replica.created(accountID, to) // found on the primary at once
	var n int
	err := s.revoking(ctx, func(db execer) (_ []revocation, err error) {
		n, err = execCount(ctx, db, s.script.queries["rehash"], to[:], id, accountID, from[:])
		return revokedIf(n, accountID, id), err
	})
	if err != nil {
		if s.dialect == MySQL && mysqlErrorNumber(err) == mysqlDuplicateEntry {
			return errDuplicate
		}
		return fmt.Errorf("sqlstore: rehash: %w", err)
	}
	if n == 0 {
		return errNotFound
	}
	return nil
}
