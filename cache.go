package apitoken

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/apitoken-go/apitoken/internal/table"
)

// A Bus carries cache invalidations between the Issuers of several
// instances of an app that share one store, so that a token deleted or
// rotated through one instance stops verifying on the others at once, not
// only when their cache entries reach the TTL of WithCache. Package pgnotify
// implements it with PostgreSQL's LISTEN/NOTIFY; Redis pub/sub or NATS fit
// it as well. Messages are small (under 300 bytes) and hold ids, never a
// secret nor a hash.
type Bus interface {
	// Publish sends msg to the subscribers of every instance, this one's
	// included.
	Publish(ctx context.Context, msg []byte) error

	// Subscribe calls deliver with each message published, from one
	// goroutine, until ctx ends; it then returns. Whenever messages may have
	// been missed before, it calls deliver(nil), and the Issuer empties its
	// cache: when it starts listening, and when it listens again after a
	// lost connection (not when the connection is lost: the cache keeps
	// serving through an outage, and its TTL bounds what was missed). It
	// returns an error only when it gives up; the Issuer then calls it again
	// after a pause.
	Subscribe(ctx context.Context, deliver func(msg []byte)) error
}

// WithCache keeps up to size verified tokens in memory, each for ttl from
// the Verify that asked the store for it, so that a token verified again within
// ttl costs no store call: Verify through a SQL store then costs about what
// it costs on memstore. The cache is off by default, because with several
// instances of an app on one store, a token deleted through one instance
// keeps verifying on the others until their entries reach ttl; WithCacheBus
// tells them at once. Through this Issuer, Delete, DeleteAll and Rotate
// take effect at once.
//
// A hit never lengthens an entry's life, and the token's expiry is checked
// on every hit. Only tokens that verified are kept; an unknown secret always
// asks the store, and concurrent misses for one secret make one store call.
// When the store fails, the cached tokens keep verifying until their ttl
// ends, and the others get the store's error (503 from the middleware);
// when it is back, everything works again. LastUsedAt, as Verify returns
// it, is the one the store had when the entry was filled.
//
// A full cache drops its oldest entries first, so size it for every token
// used within one ttl, not only the busiest: each token beyond that makes a
// store call per ttl, and pushes out an older entry. An entry takes about
// 400 bytes, texts included, in a layout without pointers that adds next to
// nothing to garbage collection; 48 bytes of it per entry are allocated up
// front. size is at most 1<<26.
func WithCache(size int, ttl time.Duration) Option {
	return func(c *config) error {
		if size < 1 || size > maxCacheSize {
			return fmt.Errorf("%w: cache size is %d, want 1 to %d", ErrInvalidInput, size, maxCacheSize)
		}
		if ttl <= 0 {
			return fmt.Errorf("%w: cache TTL is %v, want more than 0", ErrInvalidInput, ttl)
		}
		c.cacheSize, c.cacheTTL = size, ttl
		return nil
	}
}

// WithCacheBus sends the invalidations of this Issuer's cache (Delete,
// DeleteAll, Rotate) to the Issuers of the other instances over bus, and
// applies theirs, so that a token deleted anywhere stops verifying
// everywhere as soon as the message arrives (milliseconds on PostgreSQL)
// while the bus is connected, and within the cache's TTL at worst. Each time
// the bus may have missed messages, the cache is emptied. A message that
// cannot be sent does not fail the Delete that sent it (the token is gone
// from the store); it is logged, at Warn, to the audit logger or else
// slog.Default. It needs WithCache; Close stops the subscription.
func WithCacheBus(bus Bus) Option {
	return func(c *config) error {
		if bus == nil {
			return fmt.Errorf("%w: cache bus is nil", ErrInvalidInput)
		}
		c.bus = bus
		return nil
	}
}

// Bounds of the cache and of its background work.
const (
	maxCacheSize     = 1 << 26 // positions are uint32; 3 GiB of ring up front
	publishTimeout   = 5 * time.Second
	resubscribePause = time.Second
)

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
	gen  uint64       // invalidations so far: a fill that began before one is dropped

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
	gen  uint64 // of the cache when it began
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
	}
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

// put keeps rec from now for the TTL, unless an invalidation came since
// the lookup that found it began (at generation gen): a token deleted
// meanwhile must not come back.
func (c *cache) put(rec Record, gen uint64, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return
	}
	if p, ok := c.recs.Aux(rec.Hash); ok {
		if now.Sub(c.base) < c.ring[p].deadline {
			return // a concurrent fill got here first
		}
		c.evict(rec.Hash, p) // past its TTL: filled again below
	}
	i := c.head
	if e := c.ring[i]; e.used {
		c.evict(e.h, uint32(i))
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

// evict drops the entry of ring position i, if h is still there. c.mu is
// held.
func (c *cache) evict(h Hash, i uint32) {
	if p, ok := c.recs.Aux(h); !ok || p != i {
		return // invalidated, or filled again elsewhere in the ring
	}
	if r, ok := c.recs.Get(h); ok {
		c.recs.Delete(r.AccountID, r.ID)
	}
}

// invalidate drops the token of the account with that id, or, when id is
// empty, every token of the account, and makes the fills under way drop
// their result.
func (c *cache) invalidate(accountID, id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
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
	c.recs = table.New()
	clear(c.ring)
	c.head = 0
}

// lookup finds the record of h with fn, sharing the call with concurrent
// lookups of the same hash begun at the same generation gen: a Verify that
// begins after an invalidation never takes the answer of a lookup that
// began before it. A caller whose context is still live does not take the
// context error of the caller that made the call.
func (c *cache) lookup(ctx context.Context, h Hash, gen uint64, fn func(context.Context) (Record, Hash, error)) (Record, Hash, bool, error) {
	c.flightMu.Lock()
	f, ok := c.flights[h]
	if !ok || f.gen != gen {
		ok = false
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
	if (isContextError(f.err) || f.err == errLookupPanicked) && ctx.Err() == nil {
		rec, want, err := fn(ctx)
		return rec, want, false, err
	}
	rec := f.rec
	rec.Scopes = cloneScopes(rec.Scopes) // each caller owns its Token
	return rec, f.want, true, f.err
}

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

// Invalidation messages: a version, a kind, the account id (at most 128
// bytes, so its length fits a byte) and, for one token, its id.
const (
	msgVersion = 1
	msgToken   = 't'
	msgAccount = 'a'
)

func encodeInvalidation(accountID, id string) []byte {
	kind := byte(msgToken)
	if id == "" {
		kind = msgAccount
	}
	msg := make([]byte, 0, 3+len(accountID)+len(id))
	msg = append(msg, msgVersion, kind, byte(len(accountID)))
	msg = append(msg, accountID...)
	return append(msg, id...)
}

// decodeInvalidation reads a message; ok is false for one it cannot read.
func decodeInvalidation(msg []byte) (accountID, id string, ok bool) {
	if len(msg) < 3 || msg[0] != msgVersion {
		return "", "", false
	}
	n := int(msg[2])
	if len(msg) < 3+n || n == 0 {
		return "", "", false
	}
	accountID, id = string(msg[3:3+n]), string(msg[3+n:])
	switch msg[1] {
	case msgToken:
		return accountID, id, id != ""
	case msgAccount:
		return accountID, "", id == ""
	}
	return "", "", false
}

// invalidate drops a token (or, with an empty id, every token of the
// account) from this Issuer's cache and tells the other instances. A
// message that cannot be sent is logged: the change is in the store, and
// the other instances' entries end with their TTL.
func (iss *Issuer) invalidate(ctx context.Context, accountID, id string) {
	if iss.cache == nil {
		return
	}
	iss.cache.invalidate(accountID, id)
	if iss.bus == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), publishTimeout)
	defer cancel()
	if err := iss.bus.Publish(ctx, encodeInvalidation(accountID, id)); err != nil {
		iss.logger().LogAttrs(ctx, slog.LevelWarn, "apitoken: cache invalidation not sent",
			slog.String("account_id", accountID), slog.String("token_id", id), slog.Any("err", err))
	}
}

// subscribe applies the other instances' invalidations until Close.
func (iss *Issuer) subscribe(ctx context.Context) {
	defer iss.background.Done()
	deliver := func(msg []byte) {
		accountID, id, ok := decodeInvalidation(msg)
		if !ok { // nil (messages may be lost) or unreadable
			iss.cache.clear()
			return
		}
		iss.cache.invalidate(accountID, id)
	}
	for {
		err := iss.bus.Subscribe(ctx, deliver)
		if ctx.Err() != nil {
			return
		}
		// No clear here: the next Subscribe empties the cache once it
		// listens, and until then the cache keeps serving (the store may be
		// down too).
		iss.logger().LogAttrs(ctx, slog.LevelWarn, "apitoken: cache bus subscription ended; retrying", slog.Any("err", err))
		select {
		case <-ctx.Done():
			return
		case <-time.After(resubscribePause):
		}
	}
}

// logger is where the Issuer logs what goes wrong in the background.
func (iss *Issuer) logger() *slog.Logger {
	if iss.auditLog != nil {
		return iss.auditLog
	}
	return slog.Default()
}
