package apitoken_test

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apitoken-go/apitoken"
	"github.com/apitoken-go/apitoken/memstore"
)

// spyStore is the programmable store of this package's tests: a memstore
// (with every capability) that counts the calls of the four Store methods,
// can fail them all (failWith) or the next Creates (createErrs), and runs a
// hook in place of a method whose hook is set, with the memstore's method as
// next, so that a hook can fail before, after or instead of the real call.
type spyStore struct {
	*memstore.Store
	calls      atomic.Int64 // Create, Lookup, List and Delete calls
	createErrs []error      // returned by the next Create calls, in order, before delegating
	failWith   error        // returned by every call of the four methods when set
	mu         sync.Mutex

	onCreate        func(ctx context.Context, rec apitoken.Record, next func(context.Context, apitoken.Record) error) error
	onLookup        func(ctx context.Context, h apitoken.Hash, next func(context.Context, apitoken.Hash) (apitoken.Record, error)) (apitoken.Record, error)
	onDelete        func(ctx context.Context, accountID, id string, next func(context.Context, string, string) error) error
	onDeleteAccount func(ctx context.Context, accountID string, next func(context.Context, string) (int, error)) (int, error)
	onDeleteExpired func(ctx context.Context, before time.Time, next func(context.Context, time.Time) (int, error)) (int, error)
	onSetExpiry     func(ctx context.Context, accountID, id string, from, to time.Time, next func(context.Context, string, string, time.Time, time.Time) error) error
	onRecordLastUse func(ctx context.Context, uses []apitoken.LastUse, next func(context.Context, []apitoken.LastUse) error) error
	onDeleteMember  func(ctx context.Context, accountID, memberID string, next func(context.Context, string, string) (int, error)) (int, error)
	onDeleteUnused  func(ctx context.Context, since time.Time, limit int, next func(context.Context, time.Time, int) (int, error)) (int, error)
	onListExpiring  func(ctx context.Context, after time.Time, afterID string, before time.Time, limit int,
		next func(context.Context, time.Time, string, time.Time, int) ([]apitoken.Token, error)) ([]apitoken.Token, error)
}

func newSpy() *spyStore { return &spyStore{Store: memstore.New()} }

func (s *spyStore) Create(ctx context.Context, rec apitoken.Record) error {
	s.calls.Add(1)
	s.mu.Lock()
	if len(s.createErrs) > 0 {
		err := s.createErrs[0]
		s.createErrs = s.createErrs[1:]
		s.mu.Unlock()
		return err
	}
	s.mu.Unlock()
	if s.failWith != nil {
		return s.failWith
	}
	if s.onCreate != nil {
		return s.onCreate(ctx, rec, s.Store.Create)
	}
	return s.Store.Create(ctx, rec)
}

func (s *spyStore) Lookup(ctx context.Context, h apitoken.Hash) (apitoken.Record, error) {
	s.calls.Add(1)
	if s.failWith != nil {
		return apitoken.Record{}, s.failWith
	}
	if s.onLookup != nil {
		return s.onLookup(ctx, h, s.Store.Lookup)
	}
	return s.Store.Lookup(ctx, h)
}

func (s *spyStore) List(ctx context.Context, accountID string) ([]apitoken.Token, error) {
	s.calls.Add(1)
	if s.failWith != nil {
		return nil, s.failWith
	}
	return s.Store.List(ctx, accountID)
}

func (s *spyStore) Delete(ctx context.Context, accountID, id string) error {
	s.calls.Add(1)
	if s.failWith != nil {
		return s.failWith
	}
	if s.onDelete != nil {
		return s.onDelete(ctx, accountID, id, s.Store.Delete)
	}
	return s.Store.Delete(ctx, accountID, id)
}

func (s *spyStore) DeleteAccount(ctx context.Context, accountID string) (int, error) {
	if s.onDeleteAccount != nil {
		return s.onDeleteAccount(ctx, accountID, s.Store.DeleteAccount)
	}
	return s.Store.DeleteAccount(ctx, accountID)
}

func (s *spyStore) DeleteExpired(ctx context.Context, before time.Time) (int, error) {
	if s.onDeleteExpired != nil {
		return s.onDeleteExpired(ctx, before, s.Store.DeleteExpired)
	}
	return s.Store.DeleteExpired(ctx, before)
}

func (s *spyStore) SetExpiry(ctx context.Context, accountID, id string, from, to time.Time) error {
	if s.onSetExpiry != nil {
		return s.onSetExpiry(ctx, accountID, id, from, to, s.Store.SetExpiry)
	}
	return s.Store.SetExpiry(ctx, accountID, id, from, to)
}

func (s *spyStore) RecordLastUse(ctx context.Context, uses []apitoken.LastUse) error {
	if s.onRecordLastUse != nil {
		return s.onRecordLastUse(ctx, uses, s.Store.RecordLastUse)
	}
	return s.Store.RecordLastUse(ctx, uses)
}

func (s *spyStore) DeleteMember(ctx context.Context, accountID, memberID string) (int, error) {
	if s.onDeleteMember != nil {
		return s.onDeleteMember(ctx, accountID, memberID, s.Store.DeleteMember)
	}
	return s.Store.DeleteMember(ctx, accountID, memberID)
}

func (s *spyStore) DeleteUnused(ctx context.Context, since time.Time, limit int) (int, error) {
	if s.onDeleteUnused != nil {
		return s.onDeleteUnused(ctx, since, limit, s.Store.DeleteUnused)
	}
	return s.Store.DeleteUnused(ctx, since, limit)
}

func (s *spyStore) ListExpiring(ctx context.Context, after time.Time, afterID string, before time.Time, limit int) ([]apitoken.Token, error) {
	if s.onListExpiring != nil {
		return s.onListExpiring(ctx, after, afterID, before, limit, s.Store.ListExpiring)
	}
	return s.Store.ListExpiring(ctx, after, afterID, before, limit)
}

// failingBulk returns a spyStore whose bulk deletions and expiry updates
// fail with err.
func failingBulk(err error) *spyStore {
	s := newSpy()
	s.onDeleteAccount = func(context.Context, string, func(context.Context, string) (int, error)) (int, error) { return 0, err }
	s.onDeleteExpired = func(context.Context, time.Time, func(context.Context, time.Time) (int, error)) (int, error) {
		return 0, err
	}
	s.onSetExpiry = func(context.Context, string, string, time.Time, time.Time, func(context.Context, string, string, time.Time, time.Time) error) error {
		return err
	}
	return s
}
