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
)

// Store is an in-memory apitoken.Store: a lookup by hash is one map read
// under a read lock, and List reads a per-account index. The zero value is
// not usable; call New.
type Store struct {
	mu        sync.RWMutex
	byHash    map[apitoken.Hash]*apitoken.Record
	byID      map[string]*apitoken.Record
	byAccount map[string]map[string]*apitoken.Record // account id → token id → record
}

var (
	_ apitoken.Store           = (*Store)(nil)
	_ apitoken.AccountDeleter  = (*Store)(nil)
	_ apitoken.ExpiredDeleter  = (*Store)(nil)
	_ apitoken.ExpiryUpdater   = (*Store)(nil)
	_ apitoken.LimitedCreator  = (*Store)(nil)
	_ apitoken.LastUseRecorder = (*Store)(nil)
	_ apitoken.Rehasher        = (*Store)(nil)
)

// errNotFound is one value, so that a miss (the path of a guessing client)
// allocates nothing.
var errNotFound = fmt.Errorf("memstore: %w", apitoken.ErrNotFound)

var errLimitReached = fmt.Errorf("memstore: %w", apitoken.ErrLimitReached)

// Format prints a summary of the store for every verb, never its records:
// fmt cannot redact the hashes it would reach through unexported fields.
func (s *Store) Format(f fmt.State, _ rune) {
	s.mu.RLock()
	n := len(s.byID)
	s.mu.RUnlock()
	fmt.Fprintf(f, "memstore.Store(%d tokens)", n)
}

// New returns an empty Store.
func New() *Store {
	return &Store{
		byHash:    make(map[apitoken.Hash]*apitoken.Record),
		byID:      make(map[string]*apitoken.Record),
		byAccount: make(map[string]map[string]*apitoken.Record),
	}
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
	rec.Scopes = cloneScopes(rec.Scopes)
	s.mu.Lock()
	defer s.mu.Unlock()
	if max > 0 && len(s.byAccount[rec.AccountID]) >= max {
		return errLimitReached
	}
	if _, ok := s.byID[rec.ID]; ok {
		return fmt.Errorf("memstore: %w: id", apitoken.ErrDuplicate)
	}
	if _, ok := s.byHash[rec.Hash]; ok {
		return fmt.Errorf("memstore: %w: hash", apitoken.ErrDuplicate)
	}
	r := &rec
	s.byHash[r.Hash] = r
	s.byID[r.ID] = r
	acct := s.byAccount[r.AccountID]
	if acct == nil {
		acct = make(map[string]*apitoken.Record)
		s.byAccount[r.AccountID] = acct
	}
	acct[r.ID] = r
	return nil
}

// Lookup implements apitoken.Store.
func (s *Store) Lookup(_ context.Context, h apitoken.Hash) (apitoken.Record, error) {
	s.mu.RLock()
	r, ok := s.byHash[h]
	var rec apitoken.Record
	if ok {
		rec = *r
	}
	s.mu.RUnlock()
	if !ok {
		return apitoken.Record{}, errNotFound
	}
	rec.Scopes = cloneScopes(rec.Scopes)
	return rec, nil
}

// List implements apitoken.Store.
func (s *Store) List(_ context.Context, accountID string) ([]apitoken.Token, error) {
	s.mu.RLock()
	acct := s.byAccount[accountID]
	toks := make([]apitoken.Token, 0, len(acct))
	for _, r := range acct {
		t := r.Token
		t.Scopes = cloneScopes(t.Scopes)
		toks = append(toks, t)
	}
	s.mu.RUnlock()
	slices.SortFunc(toks, func(a, b apitoken.Token) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	return toks, nil
}

// Delete implements apitoken.Store.
func (s *Store) Delete(_ context.Context, accountID, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.byAccount[accountID][id]
	if !ok {
		return errNotFound
	}
	s.remove(r)
	return nil
}

// remove drops r from every index. The caller holds the write lock.
func (s *Store) remove(r *apitoken.Record) {
	delete(s.byHash, r.Hash)
	delete(s.byID, r.ID)
	if acct := s.byAccount[r.AccountID]; len(acct) == 1 {
		delete(s.byAccount, r.AccountID)
	} else {
		delete(acct, r.ID)
	}
}

// cloneScopes copies scopes so that no caller shares the Store's slice.
func cloneScopes(scopes []string) []string {
	if len(scopes) == 0 {
		return nil
	}
	return slices.Clone(scopes)
}

// DeleteAccount implements apitoken.AccountDeleter.
func (s *Store) DeleteAccount(_ context.Context, accountID string) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	acct := s.byAccount[accountID]
	for id, r := range acct {
		delete(s.byHash, r.Hash)
		delete(s.byID, id)
	}
	delete(s.byAccount, accountID)
	return len(acct), nil
}

// DeleteExpired implements apitoken.ExpiredDeleter. It reads every record
// under the write lock: a job for a quiet moment, not the request path.
func (s *Store) DeleteExpired(_ context.Context, before time.Time) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, r := range s.byID {
		if !r.ExpiresAt.IsZero() && !r.ExpiresAt.After(before) {
			s.remove(r)
			n++
		}
	}
	return n, nil
}

// SetExpiry implements apitoken.ExpiryUpdater.
func (s *Store) SetExpiry(_ context.Context, accountID, id string, from, to time.Time) error {
	if to.IsZero() || to.Equal(from) {
		return fmt.Errorf("memstore: %w: the new expiry is zero or the old one", apitoken.ErrInvalidInput)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.byAccount[accountID][id]
	if !ok || !r.ExpiresAt.Equal(from) {
		return errNotFound
	}
	r.ExpiresAt = to
	return nil
}

// RecordLastUse implements apitoken.LastUseRecorder.
func (s *Store) RecordLastUse(_ context.Context, uses []apitoken.LastUse) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range uses {
		if r, ok := s.byID[u.ID]; ok && u.At.After(r.LastUsedAt) {
			r.LastUsedAt = u.At
		}
	}
	return nil
}

// Rehash implements apitoken.Rehasher.
func (s *Store) Rehash(_ context.Context, accountID, id string, from, to apitoken.Hash) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.byAccount[accountID][id]
	if !ok || r.Hash != from {
		return errNotFound
	}
	if _, taken := s.byHash[to]; taken {
		return fmt.Errorf("memstore: %w: hash", apitoken.ErrDuplicate)
	}
	delete(s.byHash, from)
	r.Hash = to
	s.byHash[to] = r
	return nil
}
