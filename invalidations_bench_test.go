package apitoken

import (
	"context"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkCacheUnderDeletes measures the cache's hit rate while other
// tokens are deleted 1,000 times a second, with invalidations told apart by
// token (per-token) and, in the same run, with one generation for all
// (global: any invalidation drops every fill under way, the cache's
// behaviour before). Each op is one verification of a token drawn at random
// among 5,000, through the cache's fetch and keep as Verify calls them; a
// miss costs a store lookup of 1 ms. Entries live 500 ms, so the cache fills
// again all the time, as it does in a fleet whose TTL is short. Metrics:
// hit-% (verifications served from the cache), dropped-fills/op, and
// deletes/s (the rate reached).
func BenchmarkCacheUnderDeletes(b *testing.B) {
	const (
		tokens  = 5000
		lookup  = time.Millisecond
		ttl     = 500 * time.Millisecond
		deletes = 1000 // per second
	)
	recs := make([]Record, tokens)
	for i := range recs {
		recs[i] = Record{Token: Token{ID: "tok-" + strconv.Itoa(i), AccountID: "acct-" + strconv.Itoa(i%100)}}
		recs[i].Hash[0], recs[i].Hash[1] = byte(i), byte(i>>8)
	}
	for _, mode := range []struct {
		name   string
		window int
	}{{"invalidation=per-token", invalidationWindow}, {"invalidation=global", 0}} {
		b.Run(mode.name, func(b *testing.B) {
			c := newCache(2*tokens, ttl, time.Now())
			c.inv = newInvalidations(mode.window)
			var hits, total, deleted atomic.Int64
			stop := make(chan struct{})
			var wg sync.WaitGroup
			wg.Go(func() { // deletes of other tokens, at 1,000 a second by the wall clock
				start := time.Now()
				for i := 0; ; i++ {
					next := start.Add(time.Duration(i) * time.Second / deletes)
					select {
					case <-stop:
						return
					case <-time.After(time.Until(next)):
					}
					c.invalidate("acct-"+strconv.Itoa(i%100), "gone-"+strconv.Itoa(i))
					deleted.Add(1)
				}
			})
			ctx := context.Background()
			b.SetParallelism(8) // lookups sleep: many verifications wait at once, as requests do
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					rec := recs[rand.IntN(tokens)]
					now := time.Now()
					f, err := c.fetch(ctx, rec.Hash, rec.AccountID, now, func(context.Context) (Record, Hash, error) {
						time.Sleep(lookup)
						return rec, rec.Hash, nil
					})
					if err != nil {
						b.Error(err)
						return
					}
					if f.cached {
						hits.Add(1)
					}
					total.Add(1)
					c.keep(f, f.rec, now)
				}
			})
			elapsed := time.Since(start)
			close(stop)
			wg.Wait()
			b.ReportMetric(100*float64(hits.Load())/float64(total.Load()), "hit-%")
			b.ReportMetric(float64(c.fillsDropped())/float64(total.Load()), "dropped-fills/op")
			b.ReportMetric(float64(deleted.Load())/elapsed.Seconds(), "deletes/s")
		})
	}
}
