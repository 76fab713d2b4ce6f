package apitoken

import (
	"sync/atomic"
	"testing"
)

// BenchmarkStatsCounters measures one count per iteration on every core
// at once: into the striped counters Verify uses, into one shared atomic
// counter (whose cache line every core then writes), and nothing (the
// floor of the loop). The striped counter should cost a few nanoseconds,
// the shared one many times that once several cores count.
func BenchmarkStatsCounters(b *testing.B) {
	b.Run("op=none", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
			}
		})
	})
	b.Run("op=single-atomic", func(b *testing.B) {
		var n atomic.Uint64
		b.RunParallel(func(pb *testing.PB) {
			var stripe byte // as op=striped computes it, unused
			for pb.Next() {
				n.Add(uint64(stripe) | 1)
				stripe += 37
			}
		})
	})
	b.Run("op=striped", func(b *testing.B) {
		c := newCounters()
		b.RunParallel(func(pb *testing.PB) {
			var stripe byte // each goroutine its own walk over the tokens' hashes
			for pb.Next() {
				c.verified(stripe, true)
				stripe += 37
			}
		})
	})
}
