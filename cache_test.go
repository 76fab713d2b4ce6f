package apitoken_test

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken-go/apitoken"
	"github.com/apitoken-go/apitoken/internal/logcheck"
	"github.com/apitoken-go/apitoken/memstore"
)

// The cache's tests run one or more Issuers ("nodes", the instances of an
// app) over one shared memstore, one settable clock and, when they use
// WithCacheBus, one in-memory bus. Each node's store counts its Lookups, and
// can fail them or pause them, so that a test sees exactly which
// verifications reached the store.

// cacheT0 is the start of every cache test's clock, on a whole microsecond
// like the times stores keep.
var cacheT0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// cacheTTL is the nodes' TTL unless a test sets another.
const cacheTTL = time.Minute

// errStoreDown is the error of a store that cannot be reached.
var errStoreDown = errors.New("store down")

// cacheStore wraps the shared memstore (embedded, so that its optional
// capabilities stay visible to the Issuer), counts Lookups, and can fail
// them, or pause them after the record was read until released.
type cacheStore struct {
	*memstore.Store
	lookups   atomic.Int64 // calls to Lookup
	paused    atomic.Int64 // Lookups that waited at a gate
	panicOnce atomic.Bool  // the next Lookup panics

	mu     sync.Mutex
	fail   error
	gate   chan struct{} // non-nil: Lookups wait for it to close
	hashes []apitoken.Hash
}

func (s *cacheStore) Lookup(ctx context.Context, h apitoken.Hash) (apitoken.Record, error) {
	s.lookups.Add(1)
	s.mu.Lock()
	fail, gate := s.fail, s.gate
	s.hashes = append(s.hashes, h)
	s.mu.Unlock()
	if fail != nil {
		return apitoken.Record{}, fail
	}
	if s.panicOnce.CompareAndSwap(true, false) {
		panic("store bug")
	}
	// Read first, then wait: the record is what the store held when the
	// fill began, whatever happens while it is paused.
	rec, err := s.Store.Lookup(ctx, h)
	if gate != nil {
		s.paused.Add(1)
		select {
		case <-gate:
		case <-ctx.Done():
			return apitoken.Record{}, ctx.Err()
		}
	}
	return rec, err
}

// setFail makes every Lookup fail with err, or, with nil, work again.
func (s *cacheStore) setFail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = err
}

// pause makes the Lookups that begin from now on wait, after reading the
// record, until release is called.
func (s *cacheStore) pause() (release func()) {
	gate := make(chan struct{})
	s.mu.Lock()
	s.gate = gate
	s.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			s.gate = nil
			s.mu.Unlock()
			close(gate)
		})
	}
}

// lookedUp returns the hashes Lookup was called with.
func (s *cacheStore) lookedUp() []apitoken.Hash {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]apitoken.Hash(nil), s.hashes...)
}

// fakeHub is an in-memory bus: each fakeBus joined to it is one instance's
// view, and a message published on any of them reaches the subscribers of
// all of them, through a buffered channel each, so that every subscriber
// gets its messages from one goroutine, as Bus requires.
type fakeHub struct {
	mu   sync.Mutex
	subs map[*fakeBus]chan []byte
}

func newFakeHub() *fakeHub { return &fakeHub{subs: make(map[*fakeBus]chan []byte)} }

func (h *fakeHub) join() *fakeBus { return &fakeBus{hub: h, drop: make(chan error, 1)} }

func (h *fakeHub) send(to *fakeBus, msg []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for b, ch := range h.subs {
		if to == nil || to == b {
			select {
			case ch <- msg:
			default:
				b.lost.Add(1) // never in these tests: the buffers are large
			}
		}
	}
}

// fakeBus is one instance's Bus on a fakeHub. Its counters let tests wait
// for what happened in the background.
type fakeBus struct {
	hub *fakeHub

	publishErr atomic.Pointer[error] // Publish fails with it when set
	noHello    atomic.Bool           // Subscribe does not call deliver(nil) when it starts
	slowReturn atomic.Int64          // nanoseconds Subscribe takes to return once ctx ended
	drop       chan error            // a value ends the running Subscribe with that error

	published  atomic.Int64 // Publish calls
	subscribes atomic.Int64 // Subscribe calls
	listening  atomic.Bool  // a Subscribe is running
	delivered  atomic.Int64 // messages handed to deliver, the starting nil excluded
	ctxEnded   atomic.Int64 // Subscribes that saw their ctx end
	ended      atomic.Int64 // Subscribes that returned
	lost       atomic.Int64

	mu           sync.Mutex
	subscribedAt []time.Time
}

func (b *fakeBus) Publish(_ context.Context, msg []byte) error {
	b.published.Add(1)
	if err := b.publishErr.Load(); err != nil {
		return *err
	}
	b.hub.send(nil, append([]byte(nil), msg...))
	return nil
}

func (b *fakeBus) Subscribe(ctx context.Context, deliver func(msg []byte)) error {
	b.subscribes.Add(1)
	defer b.ended.Add(1)
	b.mu.Lock()
	b.subscribedAt = append(b.subscribedAt, time.Now())
	b.mu.Unlock()
	ch := make(chan []byte, 256)
	b.hub.mu.Lock()
	b.hub.subs[b] = ch
	b.hub.mu.Unlock()
	defer func() {
		b.hub.mu.Lock()
		delete(b.hub.subs, b)
		b.hub.mu.Unlock()
	}()
	if !b.noHello.Load() {
		deliver(nil) // messages may have been missed before now
	}
	b.listening.Store(true)
	defer b.listening.Store(false)
	for {
		select {
		case <-ctx.Done():
			b.ctxEnded.Add(1)
			time.Sleep(time.Duration(b.slowReturn.Load()))
			return nil
		case err := <-b.drop:
			return err
		case msg := <-ch:
			deliver(msg)
			b.delivered.Add(1)
		}
	}
}

// inject hands msg to this instance's subscriber only, as a bus would
// deliver it, and waits until it was delivered.
func (b *fakeBus) inject(t *testing.T, msg []byte) {
	t.Helper()
	before := b.delivered.Load()
	b.hub.send(b, msg)
	require.Eventually(t, func() bool { return b.delivered.Load() > before }, time.Second, time.Millisecond, "the message was not delivered")
}

// waitDelivered waits until the subscriber got n messages in all.
func (b *fakeBus) waitDelivered(t *testing.T, n int64) {
	t.Helper()
	require.Eventually(t, func() bool { return b.delivered.Load() >= n }, time.Second, time.Millisecond,
		"the subscriber got %d messages, want %d", b.delivered.Load(), n)
}

func (b *fakeBus) subscribeTimes() []time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]time.Time(nil), b.subscribedAt...)
}

// cacheEnv is what the nodes of one test share.
type cacheEnv struct {
	mem   *memstore.Store
	clock *clock
	hub   *fakeHub

	mu      sync.Mutex
	secrets []string
	nodes   []*cacheNode
}

// newCacheEnv returns an environment whose cleanup checks that no node's
// audit log holds a secret, nor the hash of one.
func newCacheEnv(t *testing.T) *cacheEnv {
	e := &cacheEnv{mem: memstore.New(), clock: &clock{t: cacheT0}, hub: newFakeHub()}
	t.Cleanup(func() {
		// Runs after the nodes' cleanups: every Issuer is closed.
		e.mu.Lock()
		defer e.mu.Unlock()
		for i, n := range e.nodes {
			logs := n.logs.String()
			assert.Empty(t, logcheck.Leak(logs), "node %d logged something that looks like a secret", i)
			for _, s := range e.secrets {
				assert.NotContains(t, logs, s, "node %d logged a secret", i)
			}
			for _, h := range n.store.lookedUp() {
				assert.NotContains(t, logs, hex.EncodeToString(h[:]), "node %d logged a hash", i)
				assert.NotContains(t, logs, base64.StdEncoding.EncodeToString(h[:]), "node %d logged a hash", i)
			}
		}
	})
	return e
}

// at sets the clock to t0+d.
func (e *cacheEnv) at(d time.Duration) {
	e.clock.mu.Lock()
	defer e.clock.mu.Unlock()
	e.clock.t = cacheT0.Add(d)
}

// cacheNode is one instance: an Issuer with its own counting store over the
// shared memstore, its own audit log and, when asked, its own view of the
// shared bus.
type cacheNode struct {
	env   *cacheEnv
	store *cacheStore
	bus   *fakeBus // nil without WithCacheBus
	logs  *logcheck.Buffer
	iss   *apitoken.Issuer
}

// node starts an instance with WithCache(100, cacheTTL) and, when withBus,
// WithCacheBus, whose subscription it waits for. opts come after those, so
// they can replace them.
func (e *cacheEnv) node(t *testing.T, withBus bool, opts ...apitoken.Option) *cacheNode {
	t.Helper()
	n := &cacheNode{env: e, store: &cacheStore{Store: e.mem}, logs: &logcheck.Buffer{}}
	logger := slog.New(slog.NewJSONHandler(n.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	all := []apitoken.Option{
		apitoken.WithClock(e.clock.Now),
		// One buffer for the audit records and the background failures.
		apitoken.WithAuditLogger(logger),
		apitoken.WithLogger(logger),
		apitoken.WithCache(100, cacheTTL),
	}
	if withBus {
		n.bus = e.hub.join()
		all = append(all, apitoken.WithCacheBus(n.bus))
	}
	n.iss = newIssuer(t, n.store, append(all, opts...)...)
	t.Cleanup(func() { closeWithin(t, n.iss, 2*time.Second) })
	if withBus {
		require.Eventually(t, n.bus.listening.Load, time.Second, time.Millisecond, "the Issuer did not subscribe")
	}
	e.mu.Lock()
	e.nodes = append(e.nodes, n)
	e.mu.Unlock()
	return n
}

// closeWithin closes iss, and fails the test rather than hang if Close
// does not return within d.
func closeWithin(t *testing.T, iss *apitoken.Issuer, d time.Duration) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- iss.Close() }()
	select {
	case err := <-done:
		assert.NoError(t, err)
	case <-time.After(d):
		t.Errorf("Close did not return within %v", d)
	}
}

// issue issues a token for account through this node.
func (n *cacheNode) issue(t *testing.T, p apitoken.IssueParams) (string, apitoken.Token) {
	t.Helper()
	secret, tok, err := n.iss.Issue(t.Context(), p)
	require.NoError(t, err)
	n.env.mu.Lock()
	n.env.secrets = append(n.env.secrets, secret)
	n.env.mu.Unlock()
	return secret, tok
}

// verify verifies and returns the token, how many store Lookups it cost,
// and the error.
func (n *cacheNode) verify(t *testing.T, account, secret string) (apitoken.Token, int64, error) {
	before := n.store.lookups.Load()
	tok, err := n.iss.Verify(t.Context(), account, secret)
	return tok, n.store.lookups.Load() - before, err
}

// requireHit checks that secret verifies as tok without a store call.
func (n *cacheNode) requireHit(t *testing.T, tok apitoken.Token, secret, why string) {
	t.Helper()
	got, cost, err := n.verify(t, tok.AccountID, secret)
	require.NoError(t, err, why)
	require.Equal(t, tok.ID, got.ID, why)
	require.Zero(t, cost, "%s: want a cache hit, but the store was asked", why)
}

// requireMiss checks that secret verifies as tok and that the store was
// asked.
func (n *cacheNode) requireMiss(t *testing.T, tok apitoken.Token, secret, why string) {
	t.Helper()
	got, cost, err := n.verify(t, tok.AccountID, secret)
	require.NoError(t, err, why)
	require.Equal(t, tok.ID, got.ID, why)
	require.NotZero(t, cost, "%s: want the store asked, but it was a cache hit", why)
}

// requireRefused checks that secret is refused for account.
func (n *cacheNode) requireRefused(t *testing.T, account, secret, why string) {
	t.Helper()
	_, _, err := n.verify(t, account, secret)
	require.ErrorIs(t, err, apitoken.ErrInvalidToken, why)
}

// refused reports whether secret is refused for account now.
func (n *cacheNode) refused(t *testing.T, account, secret string) bool {
	_, _, err := n.verify(t, account, secret)
	return errors.Is(err, apitoken.ErrInvalidToken)
}

// strangerSecret returns a well-formed secret (default prefix and hash key)
// that no store of the test holds.
func strangerSecret(t *testing.T) string {
	t.Helper()
	secret, _, err := newIssuer(t, memstore.New()).Issue(t.Context(), apitoken.IssueParams{AccountID: "acme"})
	require.NoError(t, err)
	return secret
}

// logRecords parses a JSON log.
func logRecords(t *testing.T, logs string) []map[string]any {
	t.Helper()
	var recs []map[string]any
	for line := range strings.Lines(logs) {
		var rec map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &rec))
		recs = append(recs, rec)
	}
	return recs
}

// countRecords counts the records of a log with that level and message.
func countRecords(t *testing.T, logs, level, msg string) int {
	n := 0
	for _, rec := range logRecords(t, logs) {
		if rec["level"] == level && rec["msg"] == msg {
			n++
		}
	}
	return n
}

func TestCacheOptions(t *testing.T) {
	bus := newFakeHub().join()
	for _, tc := range []struct {
		name string
		opts []apitoken.Option
		ok   bool
	}{
		{"nok, size 0", []apitoken.Option{apitoken.WithCache(0, time.Minute)}, false},
		{"nok, negative size", []apitoken.Option{apitoken.WithCache(-1, time.Minute)}, false},
		{"nok, TTL 0", []apitoken.Option{apitoken.WithCache(10, 0)}, false},
		{"nok, negative TTL", []apitoken.Option{apitoken.WithCache(10, -time.Second)}, false},
		{"nok, nil bus", []apitoken.Option{apitoken.WithCache(10, time.Minute), apitoken.WithCacheBus(nil)}, false},
		{"nok, bus without cache", []apitoken.Option{apitoken.WithCacheBus(bus)}, false},
		{"ok, size 1 and TTL 1ns", []apitoken.Option{apitoken.WithCache(1, time.Nanosecond)}, true},
		{"ok, cache then bus", []apitoken.Option{apitoken.WithCache(10, time.Minute), apitoken.WithCacheBus(bus)}, true},
		{"ok, bus then cache", []apitoken.Option{apitoken.WithCacheBus(bus), apitoken.WithCache(10, time.Minute)}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			iss, err := apitoken.NewIssuer(memstore.New(), tc.opts...)
			if !tc.ok {
				require.ErrorIs(t, err, apitoken.ErrInvalidInput)
				require.Nil(t, iss)
				return
			}
			require.NoError(t, err)
			require.NoError(t, iss.Close())
		})
	}
}

func TestCacheHitCostsNoStoreCall(t *testing.T) {
	for _, tc := range []struct {
		name        string
		opts        []apitoken.Option
		wantLookups int64
	}{
		// The control shows that the counting store counts.
		{"no cache: every Verify asks the store", []apitoken.Option{apitoken.WithLastUseInterval(0)}, 5},
		{"cache: only the first one does", []apitoken.Option{apitoken.WithLastUseInterval(0), apitoken.WithCache(10, time.Hour)}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := &cacheStore{Store: memstore.New()}
			iss := newIssuer(t, store, tc.opts...)
			t.Cleanup(func() { _ = iss.Close() })
			secret, tok, err := iss.Issue(t.Context(), apitoken.IssueParams{AccountID: "acme", Name: "ci", Scopes: []string{"read", "write"}})
			require.NoError(t, err)
			for range 5 {
				got, err := iss.Verify(t.Context(), "acme", secret)
				require.NoError(t, err)
				require.Equal(t, tok, got, "a hit returns the token as the store had it")
			}
			assert.Equal(t, tc.wantLookups, store.lookups.Load())
		})
	}
}

func TestCacheHitNeverExtendsLife(t *testing.T) {
	env := newCacheEnv(t)
	n := env.node(t, false)
	secret, tok := n.issue(t, apitoken.IssueParams{AccountID: "acme"})

	n.requireMiss(t, tok, secret, "the first Verify fills the cache at t0")
	for _, at := range []time.Duration{time.Nanosecond, cacheTTL / 2, cacheTTL - time.Microsecond, cacheTTL - time.Nanosecond} {
		env.at(at)
		n.requireHit(t, tok, secret, fmt.Sprintf("t0+%v is within the TTL of the fill", at))
	}
	env.at(cacheTTL)
	n.requireMiss(t, tok, secret, "at t0+TTL the entry has ended, however often it was hit")
}

// TestCacheRefillsAnEntryPastItsTTL: once an entry's TTL ended, the next
// Verify asks the store and fills the cache again for another TTL.
func TestCacheRefillsAnEntryPastItsTTL(t *testing.T) {
	env := newCacheEnv(t)
	n := env.node(t, false)
	secret, tok := n.issue(t, apitoken.IssueParams{AccountID: "acme"})

	n.requireMiss(t, tok, secret, "fill at t0")
	env.at(cacheTTL)
	n.requireMiss(t, tok, secret, "the entry ended at t0+TTL: refill")
	env.at(cacheTTL + time.Second)
	n.requireHit(t, tok, secret, "the entry filled again at t0+TTL lives until t0+2TTL")
	env.at(2*cacheTTL - time.Nanosecond)
	n.requireHit(t, tok, secret, "the entry filled again at t0+TTL lives until t0+2TTL")
	env.at(2 * cacheTTL)
	n.requireMiss(t, tok, secret, "the second entry ended at t0+2TTL")
}

// TestCacheTTLForever: the longest TTL (a cache that relies on the bus
// alone) still caches.
func TestCacheTTLForever(t *testing.T) {
	env := newCacheEnv(t)
	n := env.node(t, false, apitoken.WithCache(10, math.MaxInt64))
	secret, tok := n.issue(t, apitoken.IssueParams{AccountID: "acme"})
	n.requireMiss(t, tok, secret, "fill")
	n.requireHit(t, tok, secret, "a TTL of 292 years has not ended")
}

func TestCacheChecksExpiryOnEveryHit(t *testing.T) {
	env := newCacheEnv(t)
	n := env.node(t, false, apitoken.WithCache(10, time.Hour))
	secret, tok := n.issue(t, apitoken.IssueParams{AccountID: "acme", ExpiresAt: cacheT0.Add(30 * time.Second)})

	n.requireMiss(t, tok, secret, "fill at t0, an hour's TTL")
	env.at(30*time.Second - time.Nanosecond)
	n.requireHit(t, tok, secret, "the token is valid until its expiry")
	for _, at := range []time.Duration{30 * time.Second, 31 * time.Second, 59 * time.Minute} {
		env.at(at)
		_, cost, err := n.verify(t, "acme", secret)
		require.ErrorIs(t, err, apitoken.ErrInvalidToken, "at t0+%v the token has expired, though its entry has not", at)
		require.Equal(t, int64(1), cost, "the expiry is checked on the hit, and the refusal costs a store read, as an unknown secret's does")
		env.at(at + 500*time.Millisecond)
		_, cost, err = n.verify(t, "acme", secret)
		require.ErrorIs(t, err, apitoken.ErrInvalidToken)
		require.Zero(t, cost, "the same refusal within the refusal TTL is answered from memory")
	}
}

func TestCacheInvalidatedByThisIssuer(t *testing.T) {
	for _, tc := range []struct {
		name string
		// op changes old through n at the clock's time and returns the secret
		// and token that replace it, if any.
		op func(t *testing.T, n *cacheNode, old apitoken.Token) (string, apitoken.Token)
		// oldEnds is when old stops verifying, after op at t0.
		oldEnds time.Duration
		// siblingGone: the other token of the account goes too.
		siblingGone bool
	}{
		{name: "Delete", op: func(t *testing.T, n *cacheNode, old apitoken.Token) (string, apitoken.Token) {
			require.NoError(t, n.iss.Delete(t.Context(), old.AccountID, old.ID))
			return "", apitoken.Token{}
		}},
		{name: "DeleteAll", siblingGone: true, op: func(t *testing.T, n *cacheNode, old apitoken.Token) (string, apitoken.Token) {
			got, err := n.iss.DeleteAll(t.Context(), old.AccountID)
			require.NoError(t, err)
			require.Equal(t, 2, got)
			return "", apitoken.Token{}
		}},
		{name: "Rotate, grace 0", op: func(t *testing.T, n *cacheNode, old apitoken.Token) (string, apitoken.Token) {
			secret, tok, err := n.iss.Rotate(t.Context(), old.AccountID, old.ID, 0)
			require.NoError(t, err)
			return secret, tok
		}},
		{name: "Rotate, grace 10s", oldEnds: 10 * time.Second, op: func(t *testing.T, n *cacheNode, old apitoken.Token) (string, apitoken.Token) {
			secret, tok, err := n.iss.Rotate(t.Context(), old.AccountID, old.ID, 10*time.Second)
			require.NoError(t, err)
			return secret, tok
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newCacheEnv(t)
			n := env.node(t, false, apitoken.WithCache(10, time.Hour))
			// The old token expires in a day: a cached copy would outlive a
			// grace of 10s by far.
			oldSecret, old := n.issue(t, apitoken.IssueParams{AccountID: "acme", ExpiresAt: cacheT0.Add(24 * time.Hour)})
			sibSecret, sib := n.issue(t, apitoken.IssueParams{AccountID: "acme"})
			otherSecret, other := n.issue(t, apitoken.IssueParams{AccountID: "globex"})
			for _, s := range []struct {
				secret string
				tok    apitoken.Token
			}{{oldSecret, old}, {sibSecret, sib}, {otherSecret, other}} {
				n.requireMiss(t, s.tok, s.secret, "fill")
				n.requireHit(t, s.tok, s.secret, "cached")
			}

			newSecret, newTok := tc.op(t, n, old)

			if tc.oldEnds > 0 {
				env.at(tc.oldEnds - time.Microsecond)
				_, _, err := n.verify(t, "acme", oldSecret)
				require.NoError(t, err, "the old token lives through its grace")
				n.requireHit(t, old, oldSecret, "and is cached again")
				env.at(tc.oldEnds)
			}
			n.requireRefused(t, "acme", oldSecret, "the old token must stop at once (at the end of its grace), not at its cached expiry")
			if newSecret != "" {
				n.requireMiss(t, newTok, newSecret, "the successor verifies")
			}
			if tc.siblingGone {
				n.requireRefused(t, "acme", sibSecret, "DeleteAll: every token of the account stops at once")
			} else {
				n.requireHit(t, sib, sibSecret, "the account's other token is still cached")
			}
			n.requireHit(t, other, otherSecret, "another account's token is still cached")
		})
	}
}

// TestCacheInvalidatedByThisIssuerWhenTheStoreHadNothing: a token this
// Issuer still has cached, but that was already deleted in the store (by
// an instance without a bus, or whose message was lost), stops verifying
// when this Issuer is told to delete it: Delete answers ErrNotFound and
// DeleteAll 0, but the intent (for a compromised account, at once) is the
// same.
func TestCacheInvalidatedByThisIssuerWhenTheStoreHadNothing(t *testing.T) {
	for _, tc := range []struct {
		name string
		op   func(t *testing.T, n *cacheNode, tok apitoken.Token)
	}{
		{"Delete", func(t *testing.T, n *cacheNode, tok apitoken.Token) {
			require.ErrorIs(t, n.iss.Delete(t.Context(), tok.AccountID, tok.ID), apitoken.ErrNotFound)
		}},
		{"DeleteAll", func(t *testing.T, n *cacheNode, tok apitoken.Token) {
			got, err := n.iss.DeleteAll(t.Context(), tok.AccountID)
			require.NoError(t, err)
			require.Zero(t, got)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newCacheEnv(t)
			a, b := env.node(t, false), env.node(t, false)
			secret, tok := a.issue(t, apitoken.IssueParams{AccountID: "acme"})
			a.requireMiss(t, tok, secret, "fill")
			require.NoError(t, b.iss.Delete(t.Context(), "acme", tok.ID), "deleted through another instance, no bus")
			a.requireHit(t, tok, secret, "documented: A does not know yet")

			tc.op(t, a, tok)
			a.requireRefused(t, "acme", secret, "A was told to delete the token: it must stop on A at once")
		})
	}
}

func TestCacheDeleteRacingAFill(t *testing.T) {
	for _, tc := range []struct {
		name string
		bus  bool
	}{
		{"deleted through this Issuer", false},
		{"deleted through another instance, told over the bus", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newCacheEnv(t)
			b := env.node(t, tc.bus) // the one whose fill is paused
			deleter := b
			if tc.bus {
				deleter = env.node(t, true)
			}
			secret, tok := b.issue(t, apitoken.IssueParams{AccountID: "acme"})

			release := b.store.pause()
			defer release()
			type result struct {
				tok apitoken.Token
				err error
			}
			first := make(chan result, 1)
			go func() {
				tok, err := b.iss.Verify(context.Background(), "acme", secret)
				first <- result{tok, err}
			}()
			require.Eventually(t, func() bool { return b.store.paused.Load() == 1 }, time.Second, time.Millisecond,
				"the fill did not reach the store")

			// The paused fill has read the record; now the token goes.
			require.NoError(t, deleter.iss.Delete(t.Context(), "acme", tok.ID))
			if tc.bus {
				b.bus.waitDelivered(t, 1)
			}
			release()
			r := <-first
			if r.err == nil {
				assert.Equal(t, tok.ID, r.tok.ID, "the Verify that began before the Delete may succeed")
			} else {
				assert.ErrorIs(t, r.err, apitoken.ErrInvalidToken)
			}

			b.requireRefused(t, "acme", secret, "a fill that began before the Delete must not bring the token back")
		})
	}
}

// verifyMany runs n Verifies of secret at once while the store is paused,
// releases it once they all had time to start, and returns their results.
func verifyMany(t *testing.T, node *cacheNode, n int, account, secret string) ([]apitoken.Token, []error) {
	t.Helper()
	release := node.store.pause()
	defer release()
	toks, errs := make([]apitoken.Token, n), make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { toks[i], errs[i] = node.iss.Verify(context.Background(), account, secret) })
	}
	require.Eventually(t, func() bool { return node.store.paused.Load() >= 1 }, time.Second, time.Millisecond)
	// The others are started by now and wait for the first lookup: without
	// one shared lookup they would be at the gate too.
	time.Sleep(50 * time.Millisecond)
	release()
	wg.Wait()
	return toks, errs
}

func TestCacheConcurrentMisses(t *testing.T) {
	const goroutines = 50

	t.Run("known token: one store call, every caller gets the token", func(t *testing.T) {
		env := newCacheEnv(t)
		n := env.node(t, false)
		secret, tok := n.issue(t, apitoken.IssueParams{AccountID: "acme", Scopes: []string{"read"}})
		toks, errs := verifyMany(t, n, goroutines, "acme", secret)
		for i := range goroutines {
			require.NoError(t, errs[i])
			require.Equal(t, tok, toks[i])
		}
		assert.Equal(t, int64(1), n.store.lookups.Load(), "concurrent misses for one secret make one store call")
		n.requireHit(t, tok, secret, "and the result was cached")
	})

	t.Run("unknown token: one store call, every caller refused", func(t *testing.T) {
		env := newCacheEnv(t)
		n := env.node(t, false)
		unknown := strangerSecret(t)
		_, errs := verifyMany(t, n, goroutines, "acme", unknown)
		for i := range goroutines {
			require.ErrorIs(t, errs[i], apitoken.ErrInvalidToken)
		}
		assert.Equal(t, int64(1), n.store.lookups.Load(), "concurrent misses for one secret make one store call")
	})

	t.Run("a refusal is remembered for its account id for the refusal TTL only", func(t *testing.T) {
		env := newCacheEnv(t)
		n := env.node(t, false)
		unknown := strangerSecret(t)
		expSecret, _ := n.issue(t, apitoken.IssueParams{AccountID: "acme", ExpiresAt: cacheT0.Add(time.Second)})
		for _, tc := range []struct{ name, account, secret string }{
			{"unknown", "acme", unknown},
			{"expired", "acme", expSecret},
		} {
			t.Run(tc.name, func(t *testing.T) {
				env.at(time.Second)
				steps := []struct {
					at      time.Duration
					account string
					cost    int64
					why     string
				}{
					{time.Second, tc.account, 1, "the first refusal asks the store"},
					{time.Second, tc.account, 0, "the same one again is answered from memory"},
					{2*time.Second - time.Nanosecond, tc.account, 0, "until the refusal TTL ends"},
					{2 * time.Second, tc.account, 1, "then the store is asked again"},
					{2 * time.Second, "globex", 1, "another account id is refused after a store read of its own"},
				}
				for _, st := range steps {
					env.at(st.at)
					_, cost, err := n.verify(t, st.account, tc.secret)
					require.ErrorIs(t, err, apitoken.ErrInvalidToken)
					require.Equal(t, st.cost, cost, st.why)
				}
			})
		}
	})

	// A token used with another account is refused whether cached or not,
	// at the cost of an unknown secret: a store read the first time, none
	// while the refusal is remembered. The refusal does not fill the cache
	// (only verified tokens are kept) and does not evict the owner's entry,
	// nor refuse the owner.
	t.Run("wrong account", func(t *testing.T) {
		env := newCacheEnv(t)
		n := env.node(t, false)
		secret, tok := n.issue(t, apitoken.IssueParams{AccountID: "acme"})
		unknown := strangerSecret(t)
		probe := func(account string, want int64, why string) {
			t.Helper()
			for _, s := range []string{secret, unknown} {
				_, cost, err := n.verify(t, account, s)
				require.ErrorIs(t, err, apitoken.ErrInvalidToken)
				require.Equal(t, want, cost, "%s (the live token and an unknown one alike)", why)
			}
		}
		probe("globex", 1, "not cached: the store is asked")
		probe("globex", 0, "the refusal is remembered")
		n.requireMiss(t, tok, secret, "the refusals did not fill the cache, nor refuse the owner")
		n.requireHit(t, tok, secret, "the owner's Verify did")
		probe("globex", 0, "a cached token with a remembered refusal: from memory, as the unknown one")
		probe("initech", 1, "a cached token with another account id costs a store read, as an unknown secret does")
		env.at(2 * time.Second)
		n.requireHit(t, tok, secret, "the refusals did not evict the owner's entry")
		probe("globex", 1, "past the refusal TTL, a cached token's refusal asks the store again")
	})
}

func TestCacheFollowerOutlivesLeaderCancel(t *testing.T) {
	env := newCacheEnv(t)
	n := env.node(t, false)
	secret, tok := n.issue(t, apitoken.IssueParams{AccountID: "acme"})

	release := n.store.pause()
	defer release()
	type result struct {
		tok apitoken.Token
		err error
	}
	leaderCtx, cancel := context.WithCancel(context.Background())
	defer cancel()
	leader, follower := make(chan result, 1), make(chan result, 1)
	go func() {
		tok, err := n.iss.Verify(leaderCtx, "acme", secret)
		leader <- result{tok, err}
	}()
	require.Eventually(t, func() bool { return n.store.paused.Load() == 1 }, time.Second, time.Millisecond)
	go func() {
		tok, err := n.iss.Verify(context.Background(), "acme", secret)
		follower <- result{tok, err}
	}()
	time.Sleep(50 * time.Millisecond)
	require.Equal(t, int64(1), n.store.paused.Load(), "the follower waits for the leader's lookup, not at the store")

	cancel()
	r := <-leader
	require.ErrorIs(t, r.err, context.Canceled, "the leader's context ended")
	require.NotErrorIs(t, r.err, apitoken.ErrInvalidToken)
	release()
	r = <-follower
	require.NoError(t, r.err, "the follower's context is alive: the leader's cancellation is not its error")
	assert.Equal(t, tok.ID, r.tok.ID)
}

// TestCacheStorePanicDoesNotWedgeTheToken: a Store that panics (a bug in
// a custom store, recovered by net/http for that one request) must not
// leave its secret's lookup unfinished, so that every later Verify of that
// secret waits for it until its context ends.
func TestCacheStorePanicDoesNotWedgeTheToken(t *testing.T) {
	env := newCacheEnv(t)
	n := env.node(t, false)
	secret, tok := n.issue(t, apitoken.IssueParams{AccountID: "acme"})

	n.store.panicOnce.Store(true)
	func() {
		defer func() { assert.NotNil(t, recover(), "the store's panic reaches the caller, as without the cache") }()
		_, _ = n.iss.Verify(t.Context(), "acme", secret)
	}()

	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	got, err := n.iss.Verify(ctx, "acme", secret)
	require.NoError(t, err, "the next Verify must ask the store again, not wait for the lookup that panicked")
	assert.Equal(t, tok.ID, got.ID)
}

func TestCacheStoreOutage(t *testing.T) {
	env := newCacheEnv(t)
	n := env.node(t, false)
	cachedSecret, cached := n.issue(t, apitoken.IssueParams{AccountID: "acme"})
	uncachedSecret, uncached := n.issue(t, apitoken.IssueParams{AccountID: "acme"})
	unknown := strangerSecret(t)
	n.requireMiss(t, cached, cachedSecret, "fill at t0")

	requireStoreError := func(t *testing.T, secret, why string) {
		t.Helper()
		_, _, err := n.verify(t, "acme", secret)
		require.ErrorIs(t, err, errStoreDown, why)
		require.NotErrorIs(t, err, apitoken.ErrInvalidToken, "%s: an outage is not an invalid token (503, not 401)", why)
	}

	n.store.setFail(errStoreDown)
	env.at(cacheTTL / 2)
	n.requireHit(t, cached, cachedSecret, "a cached token keeps verifying during the outage")
	requireStoreError(t, uncachedSecret, "a token not cached gets the store's error")
	requireStoreError(t, unknown, "an unknown token gets the store's error")

	env.at(cacheTTL - time.Nanosecond)
	n.requireHit(t, cached, cachedSecret, "until its TTL ends")
	env.at(cacheTTL)
	requireStoreError(t, cachedSecret, "a cached token whose TTL ended gets the store's error")

	n.store.setFail(nil)
	n.requireMiss(t, cached, cachedSecret, "the store is back")
	n.requireMiss(t, uncached, uncachedSecret, "the store is back")
	n.requireRefused(t, "acme", unknown, "the store is back: unknown is invalid again")
	n.requireHit(t, uncached, uncachedSecret, "and the cache works again")
}

// twoNodes returns two instances joined by the bus over one store, and
// a token of "acme" cached by both.
func twoNodes(t *testing.T) (env *cacheEnv, a, b *cacheNode, secret string, tok apitoken.Token) {
	t.Helper()
	env = newCacheEnv(t)
	a, b = env.node(t, true), env.node(t, true)
	secret, tok = a.issue(t, apitoken.IssueParams{AccountID: "acme", ExpiresAt: cacheT0.Add(24 * time.Hour)})
	for _, n := range []*cacheNode{a, b} {
		n.requireMiss(t, tok, secret, "fill")
		n.requireHit(t, tok, secret, "cached")
	}
	return env, a, b, secret, tok
}

func TestCacheBus(t *testing.T) {
	const soon = time.Second // how long a message may take, at most

	t.Run("without a bus, another instance keeps verifying until its TTL", func(t *testing.T) {
		// The control: what the bus is for.
		env := newCacheEnv(t)
		a, b := env.node(t, false), env.node(t, false)
		secret, tok := a.issue(t, apitoken.IssueParams{AccountID: "acme"})
		b.requireMiss(t, tok, secret, "fill")
		require.NoError(t, a.iss.Delete(t.Context(), "acme", tok.ID))
		b.requireHit(t, tok, secret, "B does not know")
		env.at(cacheTTL)
		b.requireRefused(t, "acme", secret, "B's entry ended")
	})

	for _, tc := range []struct {
		name string
		op   func(t *testing.T, a *cacheNode, tok apitoken.Token) (newSecret string, newTok apitoken.Token)
	}{
		{"Delete", func(t *testing.T, a *cacheNode, tok apitoken.Token) (string, apitoken.Token) {
			require.NoError(t, a.iss.Delete(t.Context(), "acme", tok.ID))
			return "", apitoken.Token{}
		}},
		{"DeleteAll", func(t *testing.T, a *cacheNode, tok apitoken.Token) (string, apitoken.Token) {
			_, err := a.iss.DeleteAll(t.Context(), "acme")
			require.NoError(t, err)
			return "", apitoken.Token{}
		}},
		{"Rotate, grace 0", func(t *testing.T, a *cacheNode, tok apitoken.Token) (string, apitoken.Token) {
			s, nt, err := a.iss.Rotate(t.Context(), "acme", tok.ID, 0)
			require.NoError(t, err)
			return s, nt
		}},
	} {
		t.Run(tc.name+" on A: B refuses at once", func(t *testing.T) {
			_, a, b, secret, tok := twoNodes(t)
			sibSecret, sib := a.issue(t, apitoken.IssueParams{AccountID: "acme"})
			otherSecret, other := a.issue(t, apitoken.IssueParams{AccountID: "globex"})
			for _, s := range []struct {
				secret string
				tok    apitoken.Token
			}{{sibSecret, sib}, {otherSecret, other}} {
				b.requireMiss(t, s.tok, s.secret, "fill")
			}

			newSecret, newTok := tc.op(t, a, tok)
			require.Eventually(t, func() bool { return b.refused(t, "acme", secret) }, soon, time.Millisecond,
				"B kept verifying a token changed on A")
			a.requireRefused(t, "acme", secret, "and A, at once")
			if newSecret != "" {
				b.requireMiss(t, newTok, newSecret, "the successor verifies on B")
			}
			if tc.name == "DeleteAll" {
				b.requireRefused(t, "acme", sibSecret, "the whole account")
			} else {
				b.requireHit(t, sib, sibSecret, "the account's other token is still cached on B")
			}
			b.requireHit(t, other, otherSecret, "another account's token is still cached on B")
			assert.Zero(t, b.bus.lost.Load()+a.bus.lost.Load())
		})
	}

	t.Run("PruneUnused on A: every cache forgets every token, A's at once and B's through the bus", func(t *testing.T) {
		// PruneUnused does not learn which tokens it removed.
		env := newCacheEnv(t)
		a := env.node(t, true, apitoken.WithLastUseInterval(time.Second))
		b := env.node(t, true)
		secret, tok := a.issue(t, apitoken.IssueParams{AccountID: "acme"})
		otherSecret, other := a.issue(t, apitoken.IssueParams{AccountID: "globex"})
		for _, n := range []*cacheNode{a, b} {
			n.requireMiss(t, tok, secret, "fill")
			n.requireMiss(t, other, otherSecret, "fill")
		}
		env.at(10 * time.Second) // within the TTL
		n, err := a.iss.PruneUnused(t.Context(), cacheT0.Add(5*time.Second))
		require.NoError(t, err)
		require.Equal(t, 2, n, "neither was used after it was created")
		a.requireRefused(t, "acme", secret, "A forgets at once")
		a.requireRefused(t, "globex", otherSecret, "every account")
		require.Eventually(t, func() bool { return b.refused(t, "acme", secret) }, soon, time.Millisecond,
			"B kept verifying a pruned token")
		b.requireRefused(t, "globex", otherSecret, "every account on B too")
	})

	t.Run("Rotate with a grace on A: B's cached old token stops at the end of the grace", func(t *testing.T) {
		env, a, b, secret, tok := twoNodes(t)
		before := b.bus.delivered.Load()
		_, _, err := a.iss.Rotate(t.Context(), "acme", tok.ID, 10*time.Second)
		require.NoError(t, err)
		b.bus.waitDelivered(t, before+1)
		env.at(10*time.Second - time.Microsecond)
		_, _, err = b.verify(t, "acme", secret)
		require.NoError(t, err, "the old token lives through its grace")
		env.at(10 * time.Second)
		b.requireRefused(t, "acme", secret, "B must stop the old token at now+grace, not at its cached expiry a day later")
	})

	for _, tc := range []struct {
		name string
		msg  []byte
	}{
		{"nil (messages may have been lost)", nil},
		{"empty", []byte{}},
		{"garbage", []byte("garbage")},
		{"one byte", []byte{1}},
		{"a future version", append([]byte{2, 't', 4}, "acme0190"...)},
	} {
		t.Run("a message "+tc.name+" empties the cache", func(t *testing.T) {
			_, _, b, secret, tok := twoNodes(t)
			b.bus.inject(t, tc.msg)
			b.requireMiss(t, tok, secret, "the cache was emptied, so the store is asked")
			b.requireHit(t, tok, secret, "and filled again")
		})
	}

	t.Run("a message for another token empties nothing", func(t *testing.T) {
		_, a, b, secret, tok := twoNodes(t)
		other, otherTok := a.issue(t, apitoken.IssueParams{AccountID: "acme"})
		before := b.bus.delivered.Load()
		require.NoError(t, a.iss.Delete(t.Context(), "acme", otherTok.ID))
		b.bus.waitDelivered(t, before+1)
		b.requireHit(t, tok, secret, "only the deleted token's entry goes")
		b.requireRefused(t, "acme", other, "deleted")
	})

	t.Run("Publish fails: Delete succeeds, is logged, and B refuses after its TTL", func(t *testing.T) {
		env, a, b, secret, tok := twoNodes(t)
		busDown := errors.New("bus down")
		a.bus.publishErr.Store(&busDown)
		require.NoError(t, a.iss.Delete(t.Context(), "acme", tok.ID), "the token is gone from the store: Delete succeeded")
		left, err := env.mem.List(t.Context(), "acme")
		require.NoError(t, err)
		require.Empty(t, left, "deleted in the store")
		a.requireRefused(t, "acme", secret, "A refuses at once")

		var warn map[string]any
		for _, rec := range logRecords(t, a.logs.String()) {
			if rec["msg"] == "apitoken: cache invalidation not sent" {
				warn = rec
			}
		}
		require.NotNil(t, warn, "the failed Publish is logged")
		assert.Equal(t, "WARN", warn["level"])
		assert.Equal(t, "acme", warn["account_id"])
		assert.Equal(t, tok.ID, warn["token_id"])
		assert.Contains(t, warn["err"], "bus down")

		b.requireHit(t, tok, secret, "B was not told: its entry lives on, as documented")
		env.at(cacheTTL)
		b.requireRefused(t, "acme", secret, "B refuses once its entry's TTL ended")
	})

	t.Run("Subscribe fails: the cache keeps serving, Subscribe is called again after a pause", func(t *testing.T) {
		_, a, b, secret, tok := twoNodes(t)
		// The next Subscribe does not say it listens (no deliver(nil)), so
		// that only the Issuer's own reaction to the failure could empty the
		// cache: it must not, as the store may be down too.
		b.bus.noHello.Store(true)
		failed := time.Now()
		b.bus.drop <- errors.New("bus gave up")
		time.Sleep(50 * time.Millisecond)
		_, cost, err := b.verify(t, "acme", secret)
		require.NoError(t, err)
		assert.Zero(t, cost, "a failed subscription must not empty the cache")
		require.Eventually(t, func() bool { return b.bus.subscribes.Load() == 2 && b.bus.listening.Load() }, 3*time.Second, 5*time.Millisecond,
			"Subscribe must be called again")
		times := b.bus.subscribeTimes()
		assert.GreaterOrEqual(t, times[1].Sub(failed), 900*time.Millisecond, "after a pause, not in a hot loop")
		assert.Equal(t, 1, countRecords(t, b.logs.String(), "WARN", "apitoken: cache bus subscription ended; retrying"))

		before := b.bus.delivered.Load()
		require.NoError(t, a.iss.Delete(t.Context(), "acme", tok.ID))
		b.bus.waitDelivered(t, before+1)
		b.requireRefused(t, "acme", secret, "the new subscription works")
	})

	t.Run("Close stops the subscription, waits for it, and is idempotent", func(t *testing.T) {
		_, _, b, secret, _ := twoNodes(t)
		b.bus.slowReturn.Store(int64(100 * time.Millisecond))
		closeWithin(t, b.iss, 2*time.Second)
		require.False(t, t.Failed(), "Close must cancel the subscription's ctx")
		assert.Equal(t, int64(1), b.bus.ctxEnded.Load(), "Subscribe's ctx was cancelled")
		assert.Equal(t, int64(1), b.bus.ended.Load(), "Close waited for Subscribe to return")
		require.NoError(t, b.iss.Close(), "a second Close")
		time.Sleep(20 * time.Millisecond)
		assert.Equal(t, int64(1), b.bus.subscribes.Load(), "no Subscribe after Close")
		_, _, err := b.verify(t, "acme", secret)
		require.ErrorIs(t, err, apitoken.ErrClosed)
	})
}

func TestCacheSizeBound(t *testing.T) {
	for _, tc := range []struct{ size, extra int }{
		{1, 1},
		{3, 2},
		{8, 8},
	} {
		t.Run(fmt.Sprintf("size %d, %d more", tc.size, tc.extra), func(t *testing.T) {
			env := newCacheEnv(t)
			n := env.node(t, false, apitoken.WithCache(tc.size, time.Hour))
			secrets := make([]string, tc.size+tc.extra)
			toks := make([]apitoken.Token, len(secrets))
			for i := range secrets {
				secrets[i], toks[i] = n.issue(t, apitoken.IssueParams{AccountID: "acme"})
				n.requireMiss(t, toks[i], secrets[i], "fill")
			}
			// Newest first: a miss would refill, and evict the next oldest.
			for i := len(secrets) - 1; i >= tc.extra; i-- {
				n.requireHit(t, toks[i], secrets[i], fmt.Sprintf("token %d is among the %d newest", i, tc.size))
			}
			for i := range tc.extra {
				n.requireMiss(t, toks[i], secrets[i], fmt.Sprintf("token %d is among the %d oldest: evicted", i, tc.extra))
			}
		})
	}
}

func TestCacheScopesAreTheCallers(t *testing.T) {
	scopes := []string{"read", "write"}

	t.Run("sequential", func(t *testing.T) {
		env := newCacheEnv(t)
		n := env.node(t, false)
		secret, _ := n.issue(t, apitoken.IssueParams{AccountID: "acme", Scopes: scopes})
		for i := range 3 { // a miss, then hits
			tok, err := n.iss.Verify(t.Context(), "acme", secret)
			require.NoError(t, err)
			require.Equal(t, scopes, tok.Scopes, "Verify %d: the caller before changed its own copy only", i)
			tok.Scopes[0] = "admin"
			_ = append(tok.Scopes[:1], "admin")
		}
	})

	t.Run("concurrent callers sharing one lookup", func(t *testing.T) {
		env := newCacheEnv(t)
		n := env.node(t, false)
		secret, _ := n.issue(t, apitoken.IssueParams{AccountID: "acme", Scopes: scopes})
		release := n.store.pause()
		defer release()
		const goroutines = 20
		got := make([][]string, goroutines)
		var wg sync.WaitGroup
		for i := range goroutines {
			wg.Go(func() {
				tok, err := n.iss.Verify(context.Background(), "acme", secret)
				if err != nil {
					return
				}
				got[i] = append([]string(nil), tok.Scopes...)
				tok.Scopes[0] = "admin" // each caller owns what it got
			})
		}
		require.Eventually(t, func() bool { return n.store.paused.Load() == 1 }, time.Second, time.Millisecond)
		time.Sleep(50 * time.Millisecond)
		release()
		wg.Wait()
		for i := range goroutines {
			assert.Equal(t, scopes, got[i], "caller %d saw another caller's change", i)
		}
		tok, err := n.iss.Verify(t.Context(), "acme", secret)
		require.NoError(t, err)
		assert.Equal(t, scopes, tok.Scopes)
	})
}

// TestCachePreviousKeyRehashedOnce: concurrent Verifies of a token still
// under a previous hash key share one lookup, and the token is re-hashed
// once, without a failed re-hash logged for each other caller.
func TestCachePreviousKeyRehashedOnce(t *testing.T) {
	oldKey := []byte("the previous application hash key, 32+ bytes")
	newKey := []byte("the current application hash key, 32+ bytes long")
	env := newCacheEnv(t)
	old := env.node(t, false, apitoken.WithHashKey(oldKey))
	secret, tok := old.issue(t, apitoken.IssueParams{AccountID: "acme"})
	n := env.node(t, false, apitoken.WithHashKey(newKey), apitoken.WithPreviousHashKeys(oldKey))

	toks, errs := verifyMany(t, n, 10, "acme", secret)
	for i := range toks {
		require.NoError(t, errs[i])
		require.Equal(t, tok.ID, toks[i].ID)
	}
	logs := n.logs.String()
	assert.Equal(t, 1, countRecords(t, logs, "INFO", "apitoken: token re-hashed"))
	assert.Zero(t, countRecords(t, logs, "WARN", "apitoken: token not re-hashed"),
		"the callers that shared the lookup must not each re-hash the token: all but one fail, and are logged")
	n.requireHit(t, tok, secret, "cached under the current hash")
}

// TestCacheLogsNoSecret runs the cache's paths that log (hits, misses,
// refusals, deletes, a failed Publish, a failed subscription) and checks
// that they logged, without a secret or its hash. Every other cache test
// checks the same in its cleanup (newCacheEnv), and TestMain checks the
// default logger.
func TestCacheLogsNoSecret(t *testing.T) {
	env, a, b, secret, tok := twoNodes(t)
	unknown := strangerSecret(t)
	env.mu.Lock()
	env.secrets = append(env.secrets, unknown)
	env.mu.Unlock()
	other, otherTok := a.issue(t, apitoken.IssueParams{AccountID: "acme"})
	b.requireMiss(t, otherTok, other, "fill")

	b.requireRefused(t, "globex", secret, "wrong account, from the cache")
	b.requireRefused(t, "acme", unknown, "unknown")
	busDown := errors.New("bus down")
	a.bus.publishErr.Store(&busDown)
	require.NoError(t, a.iss.Delete(t.Context(), "acme", otherTok.ID))
	a.bus.publishErr.Store(nil)
	require.NoError(t, a.iss.Delete(t.Context(), "acme", tok.ID))
	require.Eventually(t, func() bool { return b.refused(t, "acme", secret) }, time.Second, time.Millisecond)
	b.bus.drop <- errors.New("bus gave up")
	require.Eventually(t, func() bool { return b.bus.ended.Load() == 1 }, time.Second, time.Millisecond)
	require.Eventually(t, func() bool {
		return countRecords(t, b.logs.String(), "WARN", "apitoken: cache bus subscription ended; retrying") == 1
	}, time.Second, time.Millisecond)

	for _, want := range []struct{ node *cacheNode }{{a}, {b}} {
		logs := want.node.logs.String()
		require.NotEmpty(t, logs)
		assert.Empty(t, logcheck.Leak(logs))
		for _, s := range []string{secret, other, unknown} {
			assert.NotContains(t, logs, s)
		}
	}
	for _, msg := range []struct {
		node       *cacheNode
		level, msg string
	}{
		{a, "WARN", "apitoken: cache invalidation not sent"},
		{a, "INFO", "apitoken: token deleted"},
		{b, "DEBUG", "apitoken: token verified"},
		{b, "WARN", "apitoken: token refused"},
		{b, "WARN", "apitoken: cache bus subscription ended; retrying"},
	} {
		assert.NotZero(t, countRecords(t, msg.node.logs.String(), msg.level, msg.msg), "no %s %q record", msg.level, msg.msg)
	}
}

// A Verify that begins after Delete returned must not take the answer of a
// lookup that began before it (README: "also while a lookup for it is under
// way"): it looks up again. A Verify begun after the delete of another token
// takes the answer.
func TestCacheVerifyAfterDeleteDoesNotTakeEarlierLookup(t *testing.T) {
	for _, tc := range []struct {
		name        string
		deleteOther bool
		lookups     int64
	}{
		{"after a delete of its token", false, 2},
		{"after a delete of another token", true, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newCacheEnv(t)
			n := env.node(t, false)
			secret, tok := n.issue(t, apitoken.IssueParams{AccountID: "acme"})
			_, other := n.issue(t, apitoken.IssueParams{AccountID: "acme"})
			release := n.store.pause()
			defer release()
			first := make(chan error, 1)
			go func() { _, err := n.iss.Verify(context.Background(), "acme", secret); first <- err }()
			require.Eventually(t, func() bool { return n.store.paused.Load() == 1 }, time.Second, time.Millisecond)
			deleted := tok.ID
			if tc.deleteOther {
				deleted = other.ID
			}
			require.NoError(t, n.iss.Delete(t.Context(), "acme", deleted))
			second := make(chan error, 1)
			go func() { _, err := n.iss.Verify(context.Background(), "acme", secret); second <- err }()
			time.Sleep(10 * time.Millisecond) // the second Verify joins the lookup under way
			release()
			require.NoError(t, <-first, "begun before the delete")
			err := <-second
			if tc.deleteOther {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, apitoken.ErrInvalidToken)
			}
			assert.Equal(t, tc.lookups, n.store.lookups.Load())
			if tc.deleteOther {
				_, err := n.iss.Verify(t.Context(), "acme", secret)
				require.NoError(t, err)
				assert.Equal(t, tc.lookups, n.store.lookups.Load(), "the fill begun before another token's delete was kept")
			}
		})
	}
}

// A Delete whose store call fails after it took effect must not leave the
// token cached.
func TestCacheForgetsOnAnAmbiguousDelete(t *testing.T) {
	// Delete deletes, then reports a failure (a commit whose answer was lost).
	st := newSpy()
	st.onDelete = func(ctx context.Context, a, id string, next func(context.Context, string, string) error) error {
		if err := next(ctx, a, id); err != nil {
			return err
		}
		return context.DeadlineExceeded
	}
	iss, err := apitoken.NewIssuer(st, apitoken.WithCache(10, time.Hour))
	require.NoError(t, err)
	defer iss.Close()
	secret, tok, err := iss.Issue(t.Context(), apitoken.IssueParams{AccountID: "acme"})
	require.NoError(t, err)
	_, err = iss.Verify(t.Context(), "acme", secret)
	require.NoError(t, err)
	require.Error(t, iss.Delete(t.Context(), "acme", tok.ID))
	left, _ := st.List(t.Context(), "acme")
	require.Empty(t, left, "gone from the store")
	_, err = iss.Verify(t.Context(), "acme", secret)
	require.ErrorIs(t, err, apitoken.ErrInvalidToken)
}
