package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apitoken-go/apitoken"
)

// DefaultReplicaFallbacks is how many Lookups a second may read the primary
// after missing on the replica, unless WithReplicaFallbacks sets another
// limit.
const DefaultReplicaFallbacks = 100

// WithReplica makes Lookup and List read replica, a *sql.DB on a read
// replica of the database given to New (same dialect, same table prefix),
// and everything else (writes, last use, the limit's count, Migrate, the
// Bus's polls) use the primary. The Store does not own replica.
//
// maxLag is the longest the replica may lag behind the primary (at least 1
// ms). For that long after this Store wrote a token, or its Bus (NewBus)
// read the revocation of one, reads of it go to the primary: a Lookup that
// finds on the replica a token deleted, expired or re-hashed meanwhile reads
// the primary again, so that a lagging replica never puts a revoked token
// back into a cache, and a List of an account written meanwhile reads the
// primary, so that a token issued a moment ago is listed. Revocations made
// through other instances are known only through the Bus of this package:
// with another bus, such a token may verify, and be cached, from a lagging
// replica.
//
// A Lookup that misses on the replica reads the primary, so that a token
// issued a moment ago through another instance verifies at once; such
// fallbacks are capped (WithReplicaFallbacks), so that well-formed forged
// secrets cannot turn into unbounded primary reads: past the cap, a miss on
// the replica is the answer. A replica that fails is read around: the
// primary answers. ReplicaStats counts all of it.
func WithReplica(replica *sql.DB, maxLag time.Duration) Option {
	return func(c *config) error {
		if replica == nil {
			return fmt.Errorf("sqlstore: %w: replica is nil", apitoken.ErrInvalidInput)
		}
		if maxLag < time.Millisecond {
			return fmt.Errorf("sqlstore: %w: the replica's maximum lag must be at least 1ms", apitoken.ErrInvalidInput)
		}
		c.replica, c.maxLag = replica, maxLag
		return nil
	}
}

// WithReplicaFallbacks sets how many Lookups a second may read the primary
// after missing on the replica of WithReplica (in bursts of as many),
// DefaultReplicaFallbacks unless set. 0 means none: a token verifies only
// once the replica has it, unless issued through this Store.
func WithReplicaFallbacks(perSecond int) Option {
	return func(c *config) error {
		if perSecond < 0 {
			return fmt.Errorf("sqlstore: %w: replica fallbacks per second must not be negative", apitoken.ErrInvalidInput)
		}
		c.fallbacks = perSecond
		return nil
	}
}

// ReplicaStats counts what a Store with WithReplica read where, since New.
type ReplicaStats struct {
	// ReplicaReads counts the Lookups and Lists sent to the replica.
	ReplicaReads uint64
	// Fallbacks counts the Lookups that missed on the replica and read the
	// primary, within the cap of WithReplicaFallbacks.
	Fallbacks uint64
	// FallbacksRefused counts the Lookups that missed on the replica past
	// the cap, and answered not found without reading the primary.
	FallbacksRefused uint64
	// Recent counts the Lookups and Lists that read the primary because
	// their token or account was written within the replica's maximum lag.
	Recent uint64
	// ReplicaErrors counts the reads of the replica that failed, and were
	// answered by the primary.
	ReplicaErrors uint64
}

// ReplicaStats returns the counts of reads of a Store with WithReplica (of
// the Store that WithTx was called on, for one made by it); zero without
// it.
func (s *Store) ReplicaStats() ReplicaStats {
	r := s.replica
	if r == nil {
		return ReplicaStats{}
	}
	return ReplicaStats{
		ReplicaReads: r.reads.Load(), Fallbacks: r.fallbacks.Load(), FallbacksRefused: r.refused.Load(),
		Recent: r.recentReads.Load(), ReplicaErrors: r.errors.Load(),
	}
}

// replica is what WithReplica adds to a Store.
type replica struct {
	lookupStmt, listStmt preparedStmt // on the replica
	maxLag               time.Duration
	limit                fallbackLimit
	recent               recentWrites

	reads, fallbacks, refused, recentReads, errors atomic.Uint64
}

func newReplica(db *sql.DB, sc *script, maxLag time.Duration, fallbacks int) *replica {
	r := &replica{maxLag: maxLag, limit: fallbackLimit{perSecond: fallbacks, tokens: float64(fallbacks)}}
	r.recent.init()
	r.lookupStmt.db, r.lookupStmt.query = db, sc.queries["lookup"]
	r.listStmt.db, r.listStmt.query = db, sc.queries["list"]
	return r
}

func (r *replica) close() error { return errors.Join(r.lookupStmt.close(), r.listStmt.close()) }

// created records that a token of the account, of hash h, was created now
// (or is being created): for maxLag, Lookups of h and Lists of the account
// read the primary. On a nil replica it does nothing.
func (r *replica) created(accountID string, h apitoken.Hash) {
	if r == nil {
		return
	}
	until := time.Now().Add(r.maxLag)
	r.recent.add(until, "a", accountID)
	r.recent.add(until, "h", string(h[:]))
}

// revoked records that the account's token with that id (every token of
// the account, with an empty id; every token of every account, with both
// empty) was revoked now: for maxLag, Lookups that
// find it on the replica, and Lists of the account, read the primary. On a
// nil replica it does nothing.
func (r *replica) revoked(accountID, id string) {
	if r == nil {
		return
	}
	until := time.Now().Add(r.maxLag)
	r.recent.add(until, "a", accountID)
	if id == "" {
		r.recent.add(until, "r", accountID)
	} else {
		r.recent.add(until, "t", id)
	}
}

// lookup is s.Lookup with the replica.
func (r *replica) lookup(ctx context.Context, s *Store, h apitoken.Hash) (apitoken.Record, error) {
	now := time.Now()
	if r.recent.has(now, "h", string(h[:])) {
		r.recentReads.Add(1)
		return s.lookupOn(ctx, &s.stmts.lookup, h)
	}
	r.reads.Add(1)
	rec, err := s.lookupOn(ctx, &r.lookupStmt, h)
	switch {
	case err == nil:
		// An empty account id stands for every account (a prune).
		if !r.recent.has(now, "t", rec.ID) && !r.recent.has(now, "r", rec.AccountID) && !r.recent.has(now, "r", "") {
			return rec, nil
		}
		// Changed within the lag: the replica's copy may be gone on the
		// primary.
		r.recentReads.Add(1)
	case errors.Is(err, apitoken.ErrNotFound):
		if !r.limit.allow(now) {
			r.refused.Add(1)
			return apitoken.Record{}, errNotFound
		}
		r.fallbacks.Add(1)
	default:
		if ctx.Err() != nil {
			return apitoken.Record{}, err
		}
		r.errors.Add(1)
	}
	return s.lookupOn(ctx, &s.stmts.lookup, h)
}

// listOn returns the statement that lists the account: the replica's,
// unless the account was written within the lag.
func (r *replica) listOn(accountID string, primary *preparedStmt) *preparedStmt {
	if now := time.Now(); r.recent.has(now, "a", accountID) || r.recent.has(now, "a", "") {
		r.recentReads.Add(1)
		return primary
	}
	r.reads.Add(1)
	return &r.listStmt
}

// recentWrites holds keys (account ids written "a" or revoked "r", token
// ids revoked "t", hashes created "h") with the time until which they count
// as recent. Expired keys are
// swept once the map doubled since the last sweep.
type recentWrites struct {
	mu    sync.Mutex
	until map[string]time.Time
	sweep int // the size at which the next sweep runs
}

func (w *recentWrites) init() { w.until, w.sweep = make(map[string]time.Time), 1024 }

func (w *recentWrites) add(until time.Time, kind, key string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.until[kind+key] = until
	if len(w.until) >= w.sweep {
		now := time.Now()
		for k, u := range w.until {
			if now.After(u) {
				delete(w.until, k)
			}
		}
		w.sweep = max(1024, 2*len(w.until))
	}
}

func (w *recentWrites) has(now time.Time, kind, key string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	u, ok := w.until[kind+key]
	return ok && !now.After(u)
}

// fallbackLimit is a token bucket of perSecond tokens a second, holding as
// many at most.
type fallbackLimit struct {
	mu        sync.Mutex
	perSecond int
	tokens    float64
	last      time.Time
}

func (l *fallbackLimit) allow(now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.last.IsZero() {
		l.tokens = min(float64(l.perSecond), l.tokens+now.Sub(l.last).Seconds()*float64(l.perSecond))
	}
	l.last = now
	if l.tokens < 1 {
		return false
	}
	l.tokens--
	return true
}
