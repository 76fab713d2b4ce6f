// Package memstore keeps tokens in memory, for tests, examples and
// single-process apps that can afford to lose their tokens on restart.
package memstore

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/apitoken-go/apitoken"
	"github.com/apitoken-go/apitoken/internal/table"
)

// Store is an in-memory apitoken.Store: a lookup by hash is one map read
// under a read lock, and List reads a per-account index. The zero value is
// not usable; call New.
//
// Records are kept without a pointer each (fixed fields in one slice, texts
// in one byte array, indexes keyed by value), so that a million resident
// tokens add little to the program's garbage collections. A read allocates
// only the Scopes slice it returns (nothing for a token without scopes): the
// strings it returns view the store's text arena, whose bytes are never
// written again, so they stay valid and unchanged whatever the store does
// next. A string kept from a read keeps the arena it views in memory, as a
// substring keeps its string: after many deletions, until it is dropped.
// Times are kept to the microsecond.
type Store struct {
	mu sync.RWMutex
	t  *table.Table
}

var (
	_ apitoken.Store           = (*Store)(nil)
	_ apitoken.AccountDeleter  = (*Store)(nil)
	_ apitoken.ExpiredDeleter  = (*Store)(nil)
	_ apitoken.ExpiryUpdater   = (*Store)(nil)
	_ apitoken.LimitedCreator  = (*Store)(nil)
	_ apitoken.LastUseRecorder = (*Store)(nil)
	_ apitoken.Rehasher        = (*Store)(nil)
	_ apitoken.Disabler        = (*Store)(nil)
	_ apitoken.MemberDeleter   = (*Store)(nil)
	_ apitoken.UnusedDeleter   = (*Store)(nil)
	_ apitoken.ExpiringLister  = (*Store)(nil)
)

// errNotFound is one value, so that a miss (the path of a guessing client)
// allocates nothing.
var errNotFound = fmt.Errorf("memstore: %w", apitoken.ErrNotFound)

var errLimitReached = fmt.Errorf("memstore: %w", apitoken.ErrLimitReached)

// Format prints a summary of the store for every verb, never its records:
// fmt cannot redact the hashes it would reach through unexported fields.
func (s *Store) Format(f fmt.State, _ rune) {
	s.mu.RLock()
	n := s.t.Len()
	s.mu.RUnlock()
	fmt.Fprintf(f, "memstore.Store(%d tokens)", n)
}

// New returns an empty Store.
func New() *Store {
	return &Store{t: table.New()}
}

// Create implements apitoken.Store.
func (s *Store) Create(_ context.Context, rec apitoken.Record) error {
	return s.create(rec, 0)
}

// CreateLimited implements apitoken.LimitedCreator.
func (s *Store) CreateLimited(_ context.Context, rec apitoken.Record, max int) error {
	return s.create(rec, max)
}

// create stores rec if the account has fewer than max tokens (0: no limit).
func (s *Store) create(rec apitoken.Record, max int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if max > 0 && s.t.AccountLen(rec.AccountID) >= max {
		return errLimitReached
	}
	if s.t.HasID(rec.ID) {
		return fmt.Errorf("memstore: %w: id", apitoken.ErrDuplicate)
	}
	if s.t.Has(rec.Hash) {
		return fmt.Errorf("memstore: %w: hash", apitoken.ErrDuplicate)
	}
	// The table copies the record's texts: it retains nothing of rec.
	s.t.Put(table.Record{Token: table.Token(rec.Token), Hash: rec.Hash})
	return nil
}

// Lookup implements apitoken.Store.
func (s *Store) Lookup(_ context.Context, h apitoken.Hash) (apitoken.Record, error) {
	rec := apitoken.Record{Hash: h}
	s.mu.RLock()
	ok := s.t.GetToken(h, (*table.Token)(&rec.Token))
	s.mu.RUnlock()
	if !ok {
		return apitoken.Record{}, errNotFound
	}
	return rec, nil
}

// List implements apitoken.Store.
func (s *Store) List(_ context.Context, accountID string) ([]apitoken.Token, error) {
	s.mu.RLock()
	toks := s.t.Account(accountID)
	s.mu.RUnlock()
	out := make([]apitoken.Token, len(toks))
	for i, t := range toks {
		out[i] = apitoken.Token(t)
	}
	slices.SortFunc(out, func(a, b apitoken.Token) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}

// Delete implements apitoken.Store.
func (s *Store) Delete(_ context.Context, accountID, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.t.Delete(accountID, id) {
		return errNotFound
	}
	return nil
}

// DeleteAccount implements apitoken.AccountDeleter.
func (s *Store) DeleteAccount(_ context.Context, accountID string) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.t.DeleteAccount(accountID), nil
}

// DeleteExpired implements apitoken.ExpiredDeleter. It reads every record
// under the write lock: a job for a quiet moment, not the request path.
func (s *Store) DeleteExpired(_ context.Context, before time.Time) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.t.DeleteExpired(before), nil
}

// SetExpiry implements apitoken.ExpiryUpdater.
func (s *Store) SetExpiry(_ context.Context, accountID, id string, from, to time.Time) error {
	if to.IsZero() || to.Equal(from) {
		return fmt.Errorf("memstore: %w: the new expiry is zero or the old one", apitoken.ErrInvalidInput)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.t.SetExpiry(accountID, id, from, to) {
		return errNotFound
	}
	return nil
}

// RecordLastUse implements apitoken.LastUseRecorder.
func (s *Store) RecordLastUse(_ context.Context, uses []apitoken.LastUse) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range uses {
		s.t.SetLastUsed(u.ID, u.At, u.IP)
	}
	return nil
}

// Rehash implements apitoken.Rehasher.
func (s *Store) Rehash(_ context.Context, accountID, id string, from, to apitoken.Hash) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if h, ok := s.t.HashOf(accountID, id); !ok || h != from {
		return errNotFound
	}
	if s.t.Has(to) {
		return fmt.Errorf("memstore: %w: hash", apitoken.ErrDuplicate)
	}
	s.t.Rehash(accountID, id, from, to)
	return nil
}

// SetDisabled implements apitoken.Disabler.
func (s *Store) SetDisabled(_ context.Context, accountID, id string, disabled bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.t.SetDisabled(accountID, id, disabled) {
		return errNotFound
	}
	return nil
}

// DeleteMember implements apitoken.MemberDeleter: it reads the account's
// tokens only.
func (s *Store) DeleteMember(_ context.Context, accountID, memberID string) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.t.DeleteMember(accountID, memberID), nil
}

// DeleteUnused implements apitoken.UnusedDeleter. Like DeleteExpired, it
// reads the records under the write lock, up to limit removed.
func (s *Store) DeleteUnused(_ context.Context, since time.Time, limit int) (int, error) {
	if limit < 1 {
		return 0, fmt.Errorf("memstore: %w: limit is %d, want at least 1", apitoken.ErrInvalidInput, limit)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.t.DeleteUnused(since, limit), nil
}

// ListExpiring implements apitoken.ExpiringLister. Each page reads every
// record under the read lock, and holds at most limit of them.
func (s *Store) ListExpiring(_ context.Context, after time.Time, afterID string, before time.Time, limit int) ([]apitoken.Token, error) {
	if limit < 1 {
		return nil, fmt.Errorf("memstore: %w: limit is %d, want at least 1", apitoken.ErrInvalidInput, limit)
	}
	s.mu.RLock()
	toks := s.t.Expiring(after, afterID, before, limit)
	s.mu.RUnlock()
	out := make([]apitoken.Token, len(toks))
	for i, t := range toks {
		out[i] = apitoken.Token(t)
	}
	return out, nil
}
