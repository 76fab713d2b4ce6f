package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/apitoken-go/apitoken"
)

// SetExpiry implements apitoken.ExpiryUpdater.
func (s *Store) SetExpiry(ctx context.Context, accountID, id string, from, to time.Time) error {
	if !storableTime(to) || to.Equal(from) {
		return fmt.Errorf("sqlstore: %w: the new expiry is zero, the old one, or outside the years %d to %d", apitoken.ErrInvalidInput, minYear, maxYear)
	}
	if !storable(accountID) || !storable(id) || !from.IsZero() && !storableTime(from) {
		return errNotFound
	}
	res, err := s.exec(ctx, &s.stmts.setExpiry, s.timeArg(to), id, accountID, s.timeArg(from))
	if err != nil {
		return fmt.Errorf("sqlstore: set expiry: %w", err)
	}
	// to differs from from, so even MySQL, which counts changed rows only,
	// counts the row.
	n, err := rowsAffected("set expiry", res)
	if err != nil || n > 0 {
		return err
	}
	return errNotFound
}

// Rehash implements apitoken.Rehasher: one UPDATE of the primary key.
func (s *Store) Rehash(ctx context.Context, accountID, id string, from, to apitoken.Hash) error {
	if !storable(accountID) || !storable(id) {
		return errNotFound
	}
	res, err := s.exec(ctx, &s.stmts.rehash, to[:], id, accountID, from[:])
	if err != nil {
		if s.dialect == MySQL && mysqlErrorNumber(err) == mysqlDuplicateEntry {
			return errDuplicate
		}
		return fmt.Errorf("sqlstore: rehash: %w", err)
	}
	n, err := rowsAffected("rehash", res)
	if err != nil {
		return err
	}
	if n == 0 {
		return errNotFound
	}
	return nil
}
