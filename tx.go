package apitoken

import (
	"context"
	"fmt"
	"sync"
)

// InTx returns an Issuer that works through store, a Store bound to one of
// the app's own transactions (sqlstore's Store.WithTx), with everything else
// of iss: prefix, hash keys, clock, token limit, audit log and logger. So a
// token issued through it verifies through iss once the transaction
// commits, and the limit holds inside the transaction as outside. Use it
// for the length of the transaction only.
//
// It has no cache and records no last use: a Verify through it reads the
// transaction. Its Delete, DeleteAll and Rotate make iss's cache forget the
// tokens at once; call Committed after the transaction commits, so that
// iss's cache forgets them again (a Verify through iss may have cached them
// from the rows still committed meanwhile) and the other instances' caches
// learn of them through iss's bus. After a rollback, do not call Committed:
// forgetting costs the caches only a lookup, but there is nothing to
// announce.
//
// A nil store is an error wrapping ErrInvalidInput; a store that lacks a
// capability iss's options need (see Store) one wrapping
// errors.ErrUnsupported; a closed iss gives ErrClosed.
func (iss *Issuer) InTx(store Store) (*Issuer, error) {
	if iss.closed.Load() {
		return nil, ErrClosed
	}
	if isNilStore(store) {
		return nil, fmt.Errorf("%w: store is nil", ErrInvalidInput)
	}
	parent := iss
	if iss.tx != nil {
		parent = iss.tx.parent
	}
	caps := findCapabilities(store)
	if err := caps.check(needs{maxTokens: iss.maxTokens, previousKeys: len(iss.keys.previous)}); err != nil {
		return nil, err
	}
	return &Issuer{
		store:    store,
		caps:     caps,
		settings: iss.settings,
		keys:     iss.keys,
		tx:       &txState{parent: parent},
		stop:     func() {},
	}, nil
}

// Committed announces to the caches of the Issuer that InTx was called on,
// and through its bus to every instance's, the tokens deleted, deleted by
// account or rotated through this Issuer since InTx or the last Committed.
// Call it right after the transaction committed. On an Issuer not made by
// InTx it does nothing.
func (iss *Issuer) Committed(ctx context.Context) {
	if iss.tx == nil {
		return
	}
	for _, inv := range iss.tx.take() {
		iss.tx.parent.announce(ctx, inv.accountID, inv.id)
	}
}

// txState is what an Issuer made by InTx keeps beyond its store: the Issuer
// whose caches it tells, and what to tell them once the transaction commits.
type txState struct {
	parent *Issuer

	mu      sync.Mutex
	pending []invalidation
}

// An invalidation names the token id of an account whose cached entries
// must go, or, with an empty id, every token of the account.
type invalidation struct{ accountID, id string }

func (t *txState) note(accountID, id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.pending = append(t.pending, invalidation{accountID, id})
}

func (t *txState) take() []invalidation {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.pending
	t.pending = nil
	return p
}
