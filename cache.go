package apitoken

import (
	"context"
	"crypto/sha256"
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apitoken-go/apitoken/internal/table"
)

// maxCacheSize bounds WithCache's size: ring positions are uint32, and the
// ring (3 GiB at this size) is allocated up front.
const maxCacheSize = 1 << 26

// A cache keeps verified records by hash. Its entries are filled in
// order and kept for one TTL each, so that the oldest entry is also the one
// that expires first: a ring of hashes in fill order gives both the
// eviction order and each entry's deadline, without a pointer per entry.
type cache struct {
	ttl time.Duration
	// base is when the cache was made: deadlines are durations since then,
	// so that with time.Now they follow the monotonic clock, and a step of
	// the wall clock neither lengthens nor shortens an entry's life.
	base time.Time

	mu   sync.RWMutex
	recs *table.Table // each record's aux is its ring entry
	ring []ringEntry  // fills, oldest first from head
	head int          // the next ring entry to fill
	gen  uint64       // invalidations so far: the clock that fills are dated by
	inv  invalidations
	no   refusals // guarded by mu

	// dropped counts the fills dropped because their token was invalidated
	// while they were under way.
	dropped atomic.Uint64

	evictions uint64 // entries pushed out before their TTL, for Stats

	flightMu sync.Mutex
	flights  map[Hash]*flight
}

type ringEntry struct {
	h        Hash
	deadline time.Duration // since the cache's base
	used     bool
}

// A flight is one store lookup that concurrent misses for a hash share.
type flight struct {
	gen  uint64 // of the cache when it began: a follower begun after an invalidation of its token looks up again
	done chan struct{}
	rec  Record
	want Hash // the hash rec was found by
	err  error
}

func newCache(size int, ttl time.Duration, base time.Time) *cache {
	return &cache{
		ttl:     ttl,
		base:    base,
		recs:    table.New(),
		ring:    make([]ringEntry, size),
		flights: make(map[Hash]*flight),
		inv:     newInvalidations(invalidationWindow),
		no:      newRefusals(min(size, maxRefusals), min(ttl, maxRefusalTTL)),
	}
}

// A fetched record is what Verify obtained for a hash, with what keep needs
// to know of how it was obtained.
type fetched struct {
	rec    Record
	want   Hash   // the hash rec must have: h, or the previous-key hash it was found by
	cached bool   // it came from the cache: nothing to keep
	shared bool   // it came from another caller's lookup, which re-hashes it
	gen    uint64 // the cache's generation when the lookup began
}

// fetch returns the record of h, presented with accountID: from the cache
// when it holds h at now and the record verifies for accountID, otherwise
// from lookup, shared with the concurrent lookups of h. On a nil cache (no
// WithCache) it calls lookup.
//
// A refusal costs the same whether the token is live or not: a cached token
// presented with another account id, or expired, is looked up in the store
// as an unknown secret is (a hit would answer in a microsecond, a store
// read in tens), unless the same hash and account id were refused within
// the refusal TTL, which answers both kinds from memory (ErrNotFound when
// the cache does not hold h).
func (c *cache) fetch(ctx context.Context, h Hash, accountID string, now time.Time, lookup func(context.Context) (Record, Hash, error)) (fetched, error) {
	var f fetched
	err := c.fetchInto(ctx, h, accountID, now, lookup, &f)
	return f, err
}

// fetchInto is fetch writing into f, which spares Verify the copies of a
// large result on every cache hit.
func (c *cache) fetchInto(ctx context.Context, h Hash, accountID string, now time.Time, lookup func(context.Context) (Record, Hash, error), f *fetched) error {
	if c == nil {
		var err error
		f.rec, f.want, err = lookup(ctx)
		return err
	}
	ok := c.getInto(h, now, &f.rec)
	if ok && f.rec.AccountID == accountID && (f.rec.ExpiresAt.IsZero() || now.Before(f.rec.ExpiresAt)) {
		f.want, f.cached = h, true
		return nil
	}
	if c.refusedRecently(h, accountID, now) {
		f.want, f.cached = h, true
		if ok {
			return nil
		}
		f.rec = Record{}
		return ErrNotFound
	}
	f.rec = Record{}
	f.gen = c.generation()
	var err error
	f.rec, f.want, f.shared, err = c.lookup(ctx, h, f.gen, lookup)
	return err
}

// keep caches rec, which f fetched and Verify accepted at now (re-hashed, if
// it was found under a previous key), unless it came from the cache or an
// invalidation came since its lookup began. On a nil cache it does nothing.
func (c *cache) keep(f fetched, rec Record, now time.Time) {
	if c == nil || f.cached {
		return
	}
	c.put(rec, f.gen, now)
}

// get returns the record cached for h, unless it is missing or past its
// TTL at now.
func (c *cache) get(h Hash, now time.Time) (Record, bool) {
	var rec Record
	ok := c.getInto(h, now, &rec)
	return rec, ok
}

// getInto is get writing into dst; it leaves dst's Token in an unspecified
// state when it reports false.
func (c *cache) getInto(h Hash, now time.Time, dst *Record) bool {
	c.mu.RLock()
	i, ok := c.recs.GetTokenAux(h, (*table.Token)(&dst.Token))
	ok = ok && now.Sub(c.base) < c.ring[i].deadline
	c.mu.RUnlock()
	dst.Hash = h
	return ok
}

// refusedRecently reports whether Verify refused h for accountID, after a
// store read, within the refusal TTL before now.
func (c *cache) refusedRecently(h Hash, accountID string, now time.Time) bool {
	k := refusalKey(h, accountID)
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.no.has(k, now.Sub(c.base))
}

// refuse notes that Verify refused h for accountID at now after asking the
// store. On a nil cache it does nothing.
func (c *cache) refuse(h Hash, accountID string, now time.Time) {
	if c == nil {
		return
	}
	k := refusalKey(h, accountID)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.no.add(k, now.Sub(c.base))
}

// generation returns the number of invalidations so far; a fill begun at
// one generation is kept only if no invalidation came since.
func (c *cache) generation() uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.gen
}

// put keeps rec from now for the TTL, unless its token (or its account's
// tokens, or the whole cache) was invalidated since the lookup that found it
// began (at generation gen): a token deleted meanwhile must not come back.
// Invalidations of other tokens drop nothing.
func (c *cache) put(rec Record, gen uint64, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.inv.since(gen, c.gen, rec.AccountID, rec.ID) {
		c.dropped.Add(1)
		return
	}
	if p, ok := c.recs.Aux(rec.Hash); ok {
		if now.Sub(c.base) < c.ring[p].deadline {
			return // a concurrent fill got here first
		}
		c.evict(rec.Hash, p) // past its TTL: filled again below
	}
	i := c.head
	if e := c.ring[i]; e.used && c.evict(e.h, uint32(i)) && now.Sub(c.base) < e.deadline {
		c.evictions++ // pushed out before its TTL
	}
	if !c.recs.Put(table.Record{Token: table.Token(rec.Token), Hash: rec.Hash}) {
		return // its id is cached under another hash: a stale entry; leave it
	}
	deadline := time.Duration(math.MaxInt64) // a TTL of centuries
	if d := now.Sub(c.base); d < math.MaxInt64-c.ttl {
		deadline = d + c.ttl
	}
	c.ring[i] = ringEntry{h: rec.Hash, deadline: deadline, used: true}
	c.recs.SetAux(rec.Hash, uint32(i))
	c.head = (i + 1) % len(c.ring)
}

// evict drops the entry of ring position i, if h is still there, and
// reports whether it did. c.mu is held.
func (c *cache) evict(h Hash, i uint32) bool {
	if p, ok := c.recs.Aux(h); !ok || p != i {
		return false // invalidated, or filled again elsewhere in the ring
	}
	if r, ok := c.recs.Get(h); ok {
		return c.recs.Delete(r.AccountID, r.ID)
	}
	return false
}

// invalidate drops the token of the account with that id, or, when id is
// empty, every token of the account, or, when both are empty, every entry,
// and makes the fills of those tokens under way drop their result.
func (c *cache) invalidate(accountID, id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if accountID == "" {
		c.clearLocked()
		return
	}
	c.gen++
	c.inv.add(c.gen, accountID, id)
	ids := []string{id}
	if id == "" {
		ids = ids[:0]
		for _, t := range c.recs.Account(accountID) {
			ids = append(ids, t.ID)
		}
	}
	for _, id := range ids {
		c.recs.Delete(accountID, id)
	}
}

// clear drops every entry, and makes the fills under way drop their
// result.
func (c *cache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.clearLocked()
}

// clearLocked is clear with c.mu held.
func (c *cache) clearLocked() {
	c.gen++
	c.inv.clear(c.gen)
	c.recs = table.New()
	clear(c.ring)
	c.head = 0
}

// lookup finds the record of h with fn, sharing the call with concurrent
// lookups of the same hash: a Verify that begins (at generation gen) after
// an invalidation of the token found never takes the answer of a lookup
// that began before it, and looks up again. A caller whose context is still
// live does not take the context error of the caller that made the call.
func (c *cache) lookup(ctx context.Context, h Hash, gen uint64, fn func(context.Context) (Record, Hash, error)) (Record, Hash, bool, error) {
	c.flightMu.Lock()
	f, ok := c.flights[h]
	if !ok {
		f = &flight{gen: gen, done: make(chan struct{})}
		c.flights[h] = f
	}
	c.flightMu.Unlock()
	if !ok {
		func() {
			defer func() {
				c.flightMu.Lock()
				if c.flights[h] == f {
					delete(c.flights, h)
				}
				c.flightMu.Unlock()
				close(f.done)
			}()
			f.err = errLookupPanicked // until fn returns
			f.rec, f.want, f.err = fn(ctx)
		}()
		rec := f.rec
		rec.Scopes = cloneScopes(rec.Scopes) // followers read f.rec
		return rec, f.want, false, f.err
	}
	select {
	case <-f.done:
	case <-ctx.Done():
		return Record{}, Hash{}, true, ctx.Err()
	}
	if (isContextError(f.err) || f.err == errLookupPanicked || f.err == nil && c.invalidatedSince(f.gen, f.rec)) && ctx.Err() == nil {
		rec, want, err := fn(ctx)
		return rec, want, false, err
	}
	rec := f.rec
	rec.Scopes = cloneScopes(rec.Scopes) // each caller owns its Token
	return rec, f.want, true, f.err
}

// invalidatedSince reports whether rec's token was invalidated after
// generation gen.
func (c *cache) invalidatedSince(gen uint64, rec Record) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.inv.since(gen, c.gen, rec.AccountID, rec.ID)
}

// fillsDropped returns how many fills were dropped because their token was
// invalidated while they were under way.
func (c *cache) fillsDropped() uint64 { return c.dropped.Load() }

// errLookupPanicked is a flight's error while its lookup runs: if the
// lookup panics, the followers look up for themselves.
var errLookupPanicked = errors.New("apitoken: the store lookup panicked")

func isContextError(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

func cloneScopes(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return append([]string(nil), s...)
}

// Bounds of the refusals a cache remembers: how many (the cache's size, at
// most this), and for how long (the cache's TTL, at most this). A hash is
// unknown until an Issue creates it, and Issue hands its secret to no one
// before the store has it, so a refusal can only be wrong for a store that
// does not see its own writes at once (a lagging replica), or for a secret
// issued through InTx and verified through the parent before the commit:
// the refusal TTL bounds how long such a token is refused after its first
// refusal.
const (
	maxRefusals   = 1 << 16
	maxRefusalTTL = time.Second
)

// refusals remembers, for a short TTL, the pairs of a hash and an account id
// that Verify refused after asking the store, in a ring like the cache's:
// the oldest is dropped first, and none holds a pointer. A pair, not the
// hash alone, so that a live token refused for one account id is not
// answered faster than an unknown one for the next, and its owner's
// account id is never refused by it.
type refusals struct {
	ttl  time.Duration
	at   map[[32]byte]uint32 // key → ring position
	ring []refusedPair
	head int
}

type refusedPair struct {
	key      [32]byte
	deadline time.Duration // since the cache's base
	used     bool
}

func newRefusals(size int, ttl time.Duration) refusals {
	return refusals{ttl: ttl, at: make(map[[32]byte]uint32), ring: make([]refusedPair, size)}
}

// refusalKey is the SHA-256 of h and accountID: fixed size, and no pair
// collides with another.
func refusalKey(h Hash, accountID string) [32]byte {
	var buf [len(Hash{}) + maxTextLen]byte // Verify bounds accountID
	n := copy(buf[:], h[:])
	n += copy(buf[n:], accountID)
	return sha256.Sum256(buf[:n])
}

// has reports whether k was refused less than the TTL before now.
func (r *refusals) has(k [32]byte, now time.Duration) bool {
	i, ok := r.at[k]
	return ok && now < r.ring[i].deadline
}

// add remembers k from now for the TTL, dropping the oldest refusal when
// the ring is full.
func (r *refusals) add(k [32]byte, now time.Duration) {
	if i, ok := r.at[k]; ok {
		r.ring[i].deadline = now + r.ttl // refused again: kept from now
		return
	}
	i := r.head
	if e := r.ring[i]; e.used {
		delete(r.at, e.key)
	}
	r.ring[i] = refusedPair{key: k, deadline: now + r.ttl, used: true}
	r.at[k] = uint32(i)
	r.head = (i + 1) % len(r.ring)
}
