package apitoken

import (
	"math/bits"
	"runtime"
	"sync/atomic"
)

// Stats is a snapshot of an Issuer's counters since NewIssuer, for metrics
// read at scrape time (see Issuer.Stats). Counters only grow; the other
// fields are the state at the time of the snapshot.
type Stats struct {
	Verifications VerifyStats
	Cache         CacheStats
	Bus           BusStats
	LastUses      LastUseStats
}

// VerifyStats counts Verify's answers by outcome.
type VerifyStats struct {
	// Verified is how many verifications succeeded.
	Verified uint64
	// Refused is how many were refused (ErrInvalidToken), every reason
	// together; RefusedFor tells them apart.
	Refused uint64
	// StoreFailed is how many could not be checked because the store
	// failed (an error other than ErrInvalidToken: 503 from the
	// middleware).
	StoreFailed uint64

	refused [numReasons]uint64
}

// RefusedFor returns how many verifications were refused for reason r.
func (v VerifyStats) RefusedFor(r Reason) uint64 {
	if r >= numReasons {
		return 0
	}
	return v.refused[r]
}

// CacheStats describes the cache of WithCache; it is zero without one.
type CacheStats struct {
	// Size is the most entries the cache holds, Entries how many it holds.
	Size, Entries int
	// Hits and Misses count the verifications the cache answered and those
	// that asked the store (a malformed secret asks neither).
	Hits, Misses uint64
	// DroppedFills counts the records a lookup found and did not keep,
	// because their token (or its account, or the whole cache) was
	// invalidated while it ran: a token deleted meanwhile must not come back.
	// Invalidations of other tokens drop nothing.
	DroppedFills uint64
	// Evictions counts the entries pushed out before their TTL by a full
	// cache: a cache too small for the tokens in use evicts steadily.
	Evictions uint64
}

// HitRatio returns Hits / (Hits + Misses), or 0 before any lookup.
func (c CacheStats) HitRatio() float64 {
	if c.Hits+c.Misses == 0 {
		return 0
	}
	return float64(c.Hits) / float64(c.Hits+c.Misses)
}

// LastUseStats describes the last uses of WithLastUseInterval.
type LastUseStats struct {
	// Pending is how many last uses wait to be written.
	Pending int
	// Written and Failed count the last uses written to the store, and those
	// whose write failed.
	Written, Failed uint64
}

// Stats returns a snapshot of the Issuer's counters: verifications by
// outcome, the cache, the cache bus and the last uses. It is cheap enough
// for every scrape of a metrics endpoint: it takes the cache's read lock
// once, and the counters cost Verify no shared memory write (they are
// striped across cores). On an Issuer made by InTx, it returns those of
// the Issuer InTx was called on, which its Verify calls are counted with.
func (iss *Issuer) Stats() Stats {
	if iss.tx != nil {
		return iss.tx.parent.Stats()
	}
	var s Stats
	counts := iss.stats.sum()
	s.Verifications.Verified = counts[outcomeVerified][0] + counts[outcomeVerified][1]
	s.Verifications.StoreFailed = counts[outcomeStoreFailed][0] + counts[outcomeStoreFailed][1]
	for r := Reason(1); r < numReasons; r++ {
		n := counts[r][0] + counts[r][1]
		s.Verifications.refused[r] = n
		s.Verifications.Refused += n
	}
	if iss.cache != nil {
		s.Cache = iss.cache.stats()
		for o := range counts {
			if o != int(ReasonMalformed) {
				s.Cache.Hits += counts[o][1]
				s.Cache.Misses += counts[o][0]
			}
		}
	}
	if iss.lastUses != nil {
		s.LastUses = iss.lastUses.stats()
	}
	s.Bus = iss.busState.stats(iss.bus != nil, iss.now())
	return s
}

// The outcomes a verification is counted under: success, each Reason of a
// refusal (by its value), and a store failure.
const (
	outcomeVerified    = 0
	outcomeStoreFailed = int(numReasons)
	numOutcomes        = outcomeStoreFailed + 1
)

// counters are Verify's counts by outcome and by whether the cache answered,
// striped: each Verify adds one to the stripe that the first byte of its
// secret's hash picks (uniform across tokens, and free: Verify has the hash
// already), so that two cores verifying different tokens rarely write the
// same cache line, where one shared counter would move its line between
// them on every request (BenchmarkStatsCounters measures both). Requests
// with one token on every core share a stripe, as they share that token's
// cache entry.
type counters struct {
	stripes []stripe
	mask    uint32
}

// A stripe is one set of counts, 128 bytes (two cache lines: a CPU that
// fetches lines in pairs still sees no neighbour in it).
type stripe struct {
	n [numOutcomes][2]atomic.Uint64 // [outcome][cached]
}

// maxStripes bounds the stripes of a process with many cores: 64 stripes
// are 8 KiB per Issuer. It is at most 256, as a byte picks the stripe.
const maxStripes = 64

func newCounters() *counters {
	n := min(1<<bits.Len(uint(4*runtime.GOMAXPROCS(0)-1)), maxStripes)
	return &counters{stripes: make([]stripe, n), mask: uint32(n - 1)}
}

// verified counts a verification that succeeded, of a secret whose hash
// begins with the byte stripe.
func (c *counters) verified(stripe byte, cached bool) { c.add(stripe, outcomeVerified, cached) }

// count counts a refusal for reason r.
func (c *counters) count(stripe byte, r Reason, cached bool) { c.add(stripe, int(r), cached) }

// storeFailed counts a verification the store failed.
func (c *counters) storeFailed(stripe byte) { c.add(stripe, outcomeStoreFailed, false) }

func (c *counters) add(stripe byte, outcome int, cached bool) {
	i := 0
	if cached {
		i = 1
	}
	c.stripes[uint32(stripe)&c.mask].n[outcome][i].Add(1)
}

// sum adds up the stripes.
func (c *counters) sum() [numOutcomes][2]uint64 {
	var s [numOutcomes][2]uint64
	for i := range c.stripes {
		for o := range s {
			s[o][0] += c.stripes[i].n[o][0].Load()
			s[o][1] += c.stripes[i].n[o][1].Load()
		}
	}
	return s
}

// stats returns the cache's share of Stats: its size and entries, and the
// counts kept under its lock.
func (c *cache) stats() CacheStats {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return CacheStats{Size: len(c.ring), Entries: c.recs.Len(), DroppedFills: c.dropped.Load(), Evictions: c.evictions}
}

// stats returns the last uses' share of Stats.
func (l *lastUses) stats() LastUseStats {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return LastUseStats{Pending: len(l.pending), Written: l.written, Failed: l.failed}
}
