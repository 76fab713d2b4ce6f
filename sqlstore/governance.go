package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/apitoken-go/apitoken"
)

// Limits of the columns that migration 2 added, as the Issuer fills them.
const (
	maxHintLen    = 4
	maxAllowedIPs = 32
)

// SetDisabled implements apitoken.Disabler: one UPDATE, and, when it
// changed no row, a count to tell a token that already had the value (MySQL
// counts changed rows only) from a missing one. Disabling logs the token's
// revocation in the same transaction (see Bus).
func (s *Store) SetDisabled(ctx context.Context, accountID, id string, disabled bool) error {
	if !storable(accountID) || !storable(id) {
		return errNotFound
	}
	var n int
	err := s.revoking(ctx, func(db execer) (_ []revocation, err error) {
		n, err = execCount(ctx, db, s.script.queries["set-disabled"], disabled, id, accountID)
		if !disabled {
			return nil, err
		}
		return revokedIf(n, accountID, id), err
	})
	if err != nil {
		return fmt.Errorf("sqlstore: set disabled: %w", err)
	}
	if n > 0 {
		return nil
	}
	row, err := s.queryRow(ctx, &s.stmts.exists, id, accountID)
	if err == nil {
		err = row.Scan(&n)
	}
	if err != nil {
		return fmt.Errorf("sqlstore: set disabled: %w", err)
	}
	if n == 0 {
		return errNotFound
	}
	return nil
}

// DeleteMember implements apitoken.MemberDeleter: one DELETE, through the
// account index, and the account's revocation in the revocation log in the
// same transaction (see Bus).
func (s *Store) DeleteMember(ctx context.Context, accountID, memberID string) (int, error) {
	if !storable(accountID) || !storable(memberID) {
		return 0, nil
	}
	var n int
	err := s.revoking(ctx, func(db execer) (_ []revocation, err error) {
		n, err = execCount(ctx, db, s.script.queries["delete-member"], accountID, memberID)
		return revokedIf(n, accountID, ""), err
	})
	if err != nil {
		return 0, fmt.Errorf("sqlstore: delete member: %w", err)
	}
	return n, nil
}

// DeleteUnused implements apitoken.UnusedDeleter: one DELETE of at most
// limit rows, found through the last-use index, so that each call is short
// and locks only the rows it deletes. A call that deleted logs, in the same
// transaction, a revocation of every token (see Bus): the caches forget
// everything.
func (s *Store) DeleteUnused(ctx context.Context, since time.Time, limit int) (int, error) {
	if limit < 1 {
		return 0, fmt.Errorf("sqlstore: %w: limit is %d, want at least 1", apitoken.ErrInvalidInput, limit)
	}
	if !storableTime(since) {
		return 0, fmt.Errorf("sqlstore: %w: since is outside the years %d to %d", apitoken.ErrInvalidInput, minYear, maxYear)
	}
	at := s.timeArg(since)
	if s.dialect == MySQL {
		return s.deleteUnusedMySQL(ctx, at, limit)
	}
	args := []any{at, at, limit}
	if s.dialect == Postgres {
		args = []any{at, limit} // $1 is used twice
	}
	var n int
	err := s.revoking(ctx, func(db execer) (_ []revocation, err error) {
		n, err = execCount(ctx, db, s.script.queries["delete-unused"], args...)
		// The tokens are not known by id: the Bus tells every cache to
		// forget everything (deliver(nil)), once per call that deleted.
		return revokedIf(n, "", ""), err
	})
	if err != nil {
		return 0, fmt.Errorf("sqlstore: delete unused: %w", err)
	}
	return n, nil
}

// deleteUnusedMySQL is DeleteUnused on MySQL: a plain read of the hashes,
// which locks nothing however the optimizer reads, then a DELETE by primary
// key of those rows still unused, which locks only them. A DELETE with the
// condition alone would lock every row it scans, and the optimizer scans a
// table where most tokens are unused: Issue would wait behind it.
func (s *Store) deleteUnusedMySQL(ctx context.Context, at any, limit int) (int, error) {
	var db interface {
		QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	} = s.db
	if s.tx != nil {
		db = s.tx
	}
	total := 0
	// A token used between the read and the delete stays, and the batch
	// comes up short: read again, so that a short batch still means that
	// none is left. Each round removes a token or ends, so the bound is a
	// safety net.
	for range 8 {
		want := limit - total
		rows, err := db.QueryContext(ctx, s.script.queries["select-unused"], at, at, want)
		if err != nil {
			return total, fmt.Errorf("sqlstore: delete unused: %w", schemaHint(err))
		}
		var hashes []any
		for rows.Next() {
			var h []byte
			if err := rows.Scan(&h); err != nil {
				rows.Close()
				return total, fmt.Errorf("sqlstore: delete unused: %w", err)
			}
			hashes = append(hashes, h)
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return total, fmt.Errorf("sqlstore: delete unused: %w", err)
		}
		if len(hashes) == 0 {
			return total, nil
		}
		q := strings.Replace(s.script.queries["delete-unused"], "IN (?)", "IN (?"+strings.Repeat(", ?", len(hashes)-1)+")", 1)
		var n int
		err = s.revoking(ctx, func(db execer) (_ []revocation, err error) {
			n, err = execCount(ctx, db, q, append([]any{at, at}, hashes...)...)
			// As on the other databases: every cache forgets everything.
			return revokedIf(n, "", ""), err
		})
		if err != nil {
			return total, fmt.Errorf("sqlstore: delete unused: %w", err)
		}
		total += n
		if len(hashes) < want || total >= limit {
			return total, nil
		}
	}
	return total, nil
}

// ListExpiring implements apitoken.ExpiringLister: one page of the expiry
// index.
func (s *Store) ListExpiring(ctx context.Context, after time.Time, afterID string, before time.Time, limit int) ([]apitoken.Token, error) {
	if limit < 1 {
		return nil, fmt.Errorf("sqlstore: %w: limit is %d, want at least 1", apitoken.ErrInvalidInput, limit)
	}
	// Times outside the columns' range: clamped, as no stored time is
	// beyond them.
	if first := time.Date(minYear, time.January, 1, 0, 0, 0, 0, time.UTC); after.Before(first) {
		after, afterID = first, ""
	}
	if last := time.Date(maxYear, time.December, 31, 23, 59, 59, 999999000, time.UTC); before.After(last) {
		before = last
	}
	if !after.Before(before) || !storable(afterID) {
		return []apitoken.Token{}, nil
	}
	args := []any{s.timeArg(before), s.timeArg(after), afterID, limit}
	if s.dialect == MySQL {
		args = []any{s.timeArg(before), s.timeArg(after), s.timeArg(after), afterID, limit}
	}
	rows, err := s.query(ctx, &s.stmts.listExpiring, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list expiring: %w", err)
	}
	defer rows.Close()
	toks := []apitoken.Token{}
	for rows.Next() {
		var t apitoken.Token
		if err := scanToken(rows, &t); err != nil {
			return nil, fmt.Errorf("sqlstore: list expiring: %w", err)
		}
		toks = append(toks, t)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, fmt.Errorf("sqlstore: list expiring: %w", err)
	}
	return toks, nil
}
