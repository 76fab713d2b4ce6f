package apitoken

import (
	"encoding/binary"
	"fmt"
	"os"
	"runtime"
	"slices"
	"testing"
	"time"
)

// BenchmarkCacheGC fills a cache with 10,000 tokens (1,000,000 with
// APITOKEN_BENCH_LARGE=1) and times forced collections, beside the floor of
// memstore's BenchmarkGC: a map of hashes to indexes into a slice of fixed
// fields, no text. gc-ms is the median of runtime.GC(), heap-MiB the heap
// the entries hold.
//
//	APITOKEN_BENCH_LARGE=1 go test -run '^$' -bench CacheGC -count 3 .
func BenchmarkCacheGC(b *testing.B) {
	n := 10_000
	if os.Getenv("APITOKEN_BENCH_LARGE") == "1" {
		n = 1_000_000
	}
	created := time.Date(2026, time.January, 1, 0, 0, 0, 0, time.UTC)
	rec := func(i int) Record {
		var h Hash
		for j := range 4 {
			binary.LittleEndian.PutUint64(h[8*j:], uint64(i)<<8|uint64(j)*0x9e3779b97f4a7c15)
		}
		return Record{Token: Token{
			ID:        fmt.Sprintf("0190b9a6-2f4c-7d3e-9a1b-%012x", i),
			AccountID: fmt.Sprintf("acct-%07d", i/10),
			Name:      "deploy key",
			Scopes:    []string{"read", "write"},
			CreatedAt: created,
		}, Hash: h}
	}
	type fixed struct {
		h                         Hash
		created, expires, lastUse int64
	}
	for _, tc := range []struct {
		name string
		load func() any
	}{
		{"floor", func() any {
			idx, slots := make(map[Hash]uint32, n), make([]fixed, 0, n)
			for i := range n {
				r := rec(i)
				idx[r.Hash] = uint32(len(slots))
				slots = append(slots, fixed{h: r.Hash, created: r.CreatedAt.UnixMicro(), expires: r.ExpiresAt.UnixMicro(), lastUse: r.LastUsedAt.UnixMicro()})
			}
			return []any{idx, slots}
		}},
		{"cache", func() any {
			c := newCache(n, time.Hour, created)
			for i := range n {
				c.put(rec(i), c.generation(), created)
			}
			if c.recs.Len() != n {
				b.Fatalf("the cache holds %d entries, want %d", c.recs.Len(), n)
			}
			return c
		}},
	} {
		b.Run(fmt.Sprintf("n=%d/%s", n, tc.name), func(b *testing.B) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			kept := tc.load()
			runtime.GC()
			runtime.ReadMemStats(&after)
			var gcs []time.Duration
			for b.Loop() {
				start := time.Now()
				runtime.GC()
				gcs = append(gcs, time.Since(start))
			}
			runtime.KeepAlive(kept)
			slices.Sort(gcs)
			b.ReportMetric(float64(gcs[len(gcs)/2])/float64(time.Millisecond), "gc-ms")
			b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), "heap-MiB")
			b.ReportMetric(float64(after.HeapObjects-before.HeapObjects), "objects")
		})
	}
}
