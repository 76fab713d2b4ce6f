package apitoken

import (
	"context"
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

// fetch returns the record of h: from the cache when it holds h at now,
// otherwise from lookup, shared with the concurrent lookups of h begun at
// the same generation. On a nil cache (no WithCache) it calls lookup.
func (c *cache) fetch(ctx context.Context, h Hash, now time.Time, lookup func(context.Context) (Record, Hash, error)) (fetched, error) {
	if c == nil {
		rec, want, err := lookup(ctx)
		return fetched{rec: rec, want: want}, err
	}
	if rec, ok := c.get(h, now); ok {
		return fetched{rec: rec, want: h, cached: true}, nil
	}
	f := fetched{gen: c.generation()}
	var err error
	f.rec, f.want, f.shared, err = c.lookup(ctx, h, f.gen, lookup)
	return f, err
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
	c.mu.RLock()
	defer c.mu.RUnlock()
	r, i, ok := c.recs.GetAux(h)
	if !ok || now.Sub(c.base) >= c.ring[i].deadline {
		return Record{}, false
	}
	return Record{Token: Token(r.Token), Hash: r.Hash}, true
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
// empty, every token of the account, and makes the fills of those tokens
// under way drop their result.
func (c *cache) invalidate(accountID, id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
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
