package memstore_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/apitoken-go/apitoken"
	"github.com/apitoken-go/apitoken/memstore"
)

// These benchmarks load a Store with many tokens and measure what the
// garbage collector pays for it: the heap it holds, and the wall time of a
// forced runtime.GC(). Beside the Store they measure, in the same run, the
// floor (a map of hashes to indexes into a slice of the fixed fields, with no
// text at all) and the layout memstore had before (a *Record per token in
// three maps).
//
// They use 10,000 tokens; with APITOKEN_BENCH_LARGE=1, 1,000,000:
//
//	APITOKEN_BENCH_LARGE=1 go test -run '^$' -bench 'GC|LookupLarge' -benchmem -count 3 ./memstore/

// benchTokens is the number of tokens loaded; tokensPerAccount of them share
// an account.
func benchTokens() int {
	if os.Getenv("APITOKEN_BENCH_LARGE") == "1" {
		return 1_000_000
	}
	return 10_000
}

const tokensPerAccount = 10

// splitmix64 spreads i over 64 bits, so that hashes and ids look random
// while staying a function of the token's index.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

func benchHash(i int) apitoken.Hash {
	var h apitoken.Hash
	for j := range 4 {
		binary.LittleEndian.PutUint64(h[8*j:], splitmix64(uint64(i)<<2|uint64(j)))
	}
	return h
}

// benchRecord returns token i shaped as the Issuer makes it: a UUIDv7 id,
// its own strings, two scopes, times in UTC to the microsecond.
func benchRecord(i int) apitoken.Record {
	var id uuid.UUID
	binary.LittleEndian.PutUint64(id[:8], splitmix64(uint64(i)|1<<62))
	binary.LittleEndian.PutUint64(id[8:], splitmix64(uint64(i)|1<<63))
	id[6] = id[6]&0x0f | 0x70
	id[8] = id[8]&0x3f | 0x80
	created := time.Date(2026, time.January, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Millisecond)
	return apitoken.Record{
		Token: apitoken.Token{
			ID:        id.String(),
			AccountID: fmt.Sprintf("acct-%07d", i/tokensPerAccount),
			MemberID:  fmt.Sprintf("member-%d", i%1000),
			Name:      "deploy key",
			Scopes:    []string{"read", "write"},
			CreatedAt: created,
			ExpiresAt: created.Add(90 * 24 * time.Hour),
		},
		Hash: benchHash(i),
	}
}

// layout is one way to hold the tokens: load fills it, lookup reads one.
type layout struct {
	name   string
	load   func(n int) any
	lookup func(s any, h apitoken.Hash) bool
}

var layouts = []layout{
	{"floor", func(n int) any {
		f := &floor{byHash: make(map[apitoken.Hash]uint32)}
		for i := range n {
			f.add(benchRecord(i))
		}
		return f
	}, func(s any, h apitoken.Hash) bool { return s.(*floor).lookup(h) }},
	{"memstore", func(n int) any {
		s := memstore.New()
		for i := range n {
			if err := s.Create(context.Background(), benchRecord(i)); err != nil {
				panic(err)
			}
		}
		return s
	}, func(s any, h apitoken.Hash) bool {
		_, err := s.(*memstore.Store).Lookup(context.Background(), h)
		return err == nil
	}},
	{"pointers", func(n int) any {
		s := newPointerStore()
		for i := range n {
			s.create(benchRecord(i))
		}
		return s
	}, func(s any, h apitoken.Hash) bool {
		_, ok := s.(*pointerStore).lookup(h)
		return ok
	}},
}

// floorGCs and floorHeaps are the floor's gc-ms and heap-MiB of each run so
// far (with -count, the floor's runs come first), for the ratios the other
// layouts report: their median, as one floor run is easily twice another on
// a shared machine.
var floorGCs, floorHeaps []float64

// BenchmarkGC loads each layout and times forced collections: ns/op is the
// mean of runtime.GC(), gc-ms its median, heap-MiB the heap the tokens hold,
// objects the heap objects they make, and x-floor-gc and x-floor-heap the
// ratios to the floor measured in the same command.
func BenchmarkGC(b *testing.B) {
	n := benchTokens()
	for _, l := range layouts {
		b.Run(fmt.Sprintf("n=%d/%s", n, l.name), func(b *testing.B) {
			runtime.GC()
			before := memStats()
			s := l.load(n)
			runtime.GC()
			after := memStats()
			heap := float64(after.HeapAlloc-before.HeapAlloc) / (1 << 20)
			objects := float64(after.HeapObjects - before.HeapObjects)

			var gcs []time.Duration
			for b.Loop() {
				start := time.Now()
				runtime.GC()
				gcs = append(gcs, time.Since(start))
			}
			gc := float64(median(gcs)) / float64(time.Millisecond)
			runtime.KeepAlive(s)

			b.ReportMetric(gc, "gc-ms")
			b.ReportMetric(heap, "heap-MiB")
			b.ReportMetric(objects, "objects")
			if l.name == "floor" {
				floorGCs, floorHeaps = append(floorGCs, gc), append(floorHeaps, heap)
			} else if len(floorGCs) > 0 {
				b.ReportMetric(gc/median(floorGCs), "x-floor-gc")
				b.ReportMetric(heap/median(floorHeaps), "x-floor-heap")
			}
		})
	}
}

// BenchmarkLookupLarge looks up random tokens among those loaded (1,000,000 with
// APITOKEN_BENCH_LARGE=1): what a Lookup costs, allocations included, when
// the store is too large for the caches.
func BenchmarkLookupLarge(b *testing.B) {
	n := benchTokens()
	hashes := make([]apitoken.Hash, 1<<16)
	for i := range hashes {
		hashes[i] = benchHash(int(splitmix64(uint64(i)) % uint64(n)))
	}
	for _, l := range layouts {
		b.Run(fmt.Sprintf("n=%d/%s", n, l.name), func(b *testing.B) {
			s := l.load(n)
			runtime.GC()
			i := 0
			for b.Loop() {
				if !l.lookup(s, hashes[i%len(hashes)]) {
					b.Fatal("a loaded token was not found")
				}
				i++
			}
		})
	}
}

func memStats() runtime.MemStats {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m
}

// median returns the median of xs, sorting a copy.
func median[T time.Duration | float64](xs []T) T {
	xs = slices.Clone(xs)
	slices.Sort(xs)
	return xs[len(xs)/2]
}

// floor keeps only what no layout can do without: the fixed fields of each
// token in a slice without pointers, and a map from hash to index.
type floor struct {
	byHash map[apitoken.Hash]uint32
	slots  []floorSlot
}

type floorSlot struct {
	hash                       apitoken.Hash
	created, expires, lastUsed int64
}

func (f *floor) add(r apitoken.Record) {
	f.byHash[r.Hash] = uint32(len(f.slots))
	f.slots = append(f.slots, floorSlot{r.Hash, r.CreatedAt.UnixMicro(), r.ExpiresAt.UnixMicro(), r.LastUsedAt.UnixMicro()})
}

func (f *floor) lookup(h apitoken.Hash) bool {
	i, ok := f.byHash[h]
	return ok && f.slots[i].hash == h
}

// pointerStore is the layout memstore had before internal/table: one
// *Record per token, in three maps.
type pointerStore struct {
	mu        sync.RWMutex
	byHash    map[apitoken.Hash]*apitoken.Record
	byID      map[string]*apitoken.Record
	byAccount map[string]map[string]*apitoken.Record
}

func newPointerStore() *pointerStore {
	return &pointerStore{
		byHash:    make(map[apitoken.Hash]*apitoken.Record),
		byID:      make(map[string]*apitoken.Record),
		byAccount: make(map[string]map[string]*apitoken.Record),
	}
}

func (s *pointerStore) create(rec apitoken.Record) {
	rec.Scopes = slices.Clone(rec.Scopes)
	r := &rec
	s.byHash[r.Hash] = r
	s.byID[r.ID] = r
	acct := s.byAccount[r.AccountID]
	if acct == nil {
		acct = make(map[string]*apitoken.Record)
		s.byAccount[r.AccountID] = acct
	}
	acct[r.ID] = r
}

func (s *pointerStore) lookup(h apitoken.Hash) (apitoken.Record, bool) {
	s.mu.RLock()
	r, ok := s.byHash[h]
	var rec apitoken.Record
	if ok {
		rec = *r
	}
	s.mu.RUnlock()
	if !ok {
		return apitoken.Record{}, false
	}
	rec.Scopes = slices.Clone(rec.Scopes)
	return rec, true
}
