package dbtest_test

// BenchmarkVerifyCached measures Verify through sqlstore with the Issuer's
// cache (apitoken.WithCache) warm, beside its floor, Verify on a memstore
// holding the same tokens, and beside Verify through sqlstore without the
// cache, on each dialect and for stores of 1,000 to 100,000 tokens
// (1,000,000 with APITOKEN_BENCH_LARGE=1). BENCHMARKS.md ("Scale (issue
// 6)") has the commands and the figures.
//
// A hot set of 1,000 tokens is verified in turn, so that the figure is not
// that of one hot key. They are issued once, into the memstore of the
// floor, and the same records are written into the SQL store, which bench
// fill has filled with the rest of its tokens. Last use is off
// (WithLastUseInterval(0)), so that only verification is measured.
//
// A cache hit and a memstore lookup both cost a few hundred nanoseconds, and
// the machine is shared: store=paired verifies the same tokens through the
// memstore and through the cache in alternating batches, timing each, and
// reports their ratio, as BenchmarkVerify's op=paired does for round trips.

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/apitoken-go/apitoken"
	"github.com/apitoken-go/apitoken/memstore"
	"github.com/apitoken-go/apitoken/sqlstore"
)

const (
	// cachedHot is the number of tokens BenchmarkVerifyCached verifies in
	// turn.
	cachedHot = 1000
	// cachedBatch is the number of verifications store=paired times at
	// once: a clock read costs tens of nanoseconds, too much around a
	// single Verify of a few hundred.
	cachedBatch = 100
)

// countingStore counts the lookups that reach the SQL store, so that the
// cached benchmark can show that it measured cache hits only. Embedding
// keeps the store's optional capabilities.
type countingStore struct {
	*sqlstore.Store
	lookups atomic.Int64
}

func (s *countingStore) Lookup(ctx context.Context, h apitoken.Hash) (apitoken.Record, error) {
	s.lookups.Add(1)
	return s.Store.Lookup(ctx, h)
}

// hotToken is a token of the hot set, as a request presents it.
type hotToken struct {
	accountID, secret, id string
}

// cachedFixture is a SQL store of some size that holds the hot set, and a
// memstore that holds the hot set alone, with an Issuer over each.
type cachedFixture struct {
	floor  *apitoken.Issuer // memstore
	cached *apitoken.Issuer // sqlstore, WithCache
	direct *apitoken.Issuer // sqlstore, no cache
	store  *countingStore   // under cached
	hot    []hotToken
}

// newCachedIssuer returns an Issuer over store with the benchmarks' hash key
// and last use off, closed when b ends.
func newCachedIssuer(b *testing.B, store apitoken.Store, opts ...apitoken.Option) *apitoken.Issuer {
	b.Helper()
	opts = append([]apitoken.Option{apitoken.WithHashKey(benchHashKey), apitoken.WithLastUseInterval(0)}, opts...)
	iss, err := apitoken.NewIssuer(store, opts...)
	require.NoError(b, err)
	b.Cleanup(func() { require.NoError(b, iss.Close()) })
	return iss
}

func newCachedFixture(b *testing.B, d sqlstore.Dialect, size int) *cachedFixture {
	b.Helper()
	ctx := b.Context()
	s := newBenchStore(b, d)
	if size > cachedHot {
		s.fill(b, size-cachedHot)
	}
	f := &cachedFixture{
		floor: newCachedIssuer(b, memstore.New()),
		store: &countingStore{Store: s.store},
		hot:   make([]hotToken, cachedHot),
	}
	// The hot set, issued into the memstore, then written into the SQL
	// store in one transaction (one commit, not a thousand).
	tx, err := s.db.BeginTx(ctx, nil)
	require.NoError(b, err)
	txStore := s.store.WithTx(tx)
	for i := range f.hot {
		secret, tok, err := f.floor.Issue(ctx, apitoken.IssueParams{
			AccountID: "hot-" + strconv.Itoa(i/100), MemberID: "member", Name: "bench", Scopes: []string{"tokens:read"},
		})
		require.NoError(b, err)
		m := hmac.New(sha256.New, benchHashKey)
		m.Write([]byte(secret))
		rec := apitoken.Record{Token: tok}
		copy(rec.Hash[:], m.Sum(nil))
		require.NoError(b, txStore.Create(ctx, rec))
		f.hot[i] = hotToken{accountID: tok.AccountID, secret: secret, id: tok.ID}
	}
	require.NoError(b, tx.Commit())
	// Big enough for the hot set; the TTL outlasts any run.
	f.cached = newCachedIssuer(b, f.store, apitoken.WithCache(2*cachedHot, time.Hour))
	f.direct = newCachedIssuer(b, s.store)
	return f
}

// verify verifies the i-th token of the hot set (round robin) through iss.
func (f *cachedFixture) verify(b *testing.B, ctx context.Context, iss *apitoken.Issuer, i int) {
	t := &f.hot[i%len(f.hot)]
	tok, err := iss.Verify(ctx, t.accountID, t.secret)
	if err != nil || tok.ID != t.id {
		b.Fatalf("Verify of a hot token: %v", err)
	}
}

// warm verifies the whole hot set once through the cached Issuer, and
// returns the store's lookup count afterwards.
func (f *cachedFixture) warm(b *testing.B, ctx context.Context) int64 {
	for i := range f.hot {
		f.verify(b, ctx, f.cached, i)
	}
	return f.store.lookups.Load()
}

// hitsOnly fails b if the cached Issuer asked the store since warm
// returned before: the benchmark must have measured cache hits.
func (f *cachedFixture) hitsOnly(b *testing.B, before int64) {
	if n := f.store.lookups.Load() - before; n != 0 {
		b.Fatalf("%d store lookups during the timed loop: the cache was not warm", n)
	}
}

// BenchmarkVerifyCached: see the top of this file.
func BenchmarkVerifyCached(b *testing.B) {
	for _, d := range dialects {
		b.Run("db="+d.String(), func(b *testing.B) {
			for _, size := range benchSizes() {
				b.Run("tokens="+strconv.Itoa(size), func(b *testing.B) {
					f := newCachedFixture(b, d, size)
					ctx := b.Context()
					b.Run("store=memstore", func(b *testing.B) {
						b.ReportAllocs()
						i := 0
						for b.Loop() {
							f.verify(b, ctx, f.floor, i)
							i++
						}
					})
					b.Run("store=sqlstore+cache", func(b *testing.B) {
						b.ReportAllocs()
						before := f.warm(b, ctx)
						i := 0
						for b.Loop() {
							f.verify(b, ctx, f.cached, i)
							i++
						}
						f.hitsOnly(b, before)
					})
					b.Run("store=sqlstore", func(b *testing.B) {
						b.ReportAllocs()
						i := 0
						for b.Loop() {
							f.verify(b, ctx, f.direct, i)
							i++
						}
					})
					b.Run("store=paired", func(b *testing.B) {
						// The memstore and the cache in turn, a batch each,
						// over the same tokens, a different one first in
						// each iteration.
						issuers := [2]*apitoken.Issuer{f.floor, f.cached}
						before := f.warm(b, ctx)
						var spent [2]time.Duration
						n, next := 0, 0
						for b.Loop() {
							for k := range 2 {
								op := (n + k) % 2
								start := time.Now()
								for j := range cachedBatch {
									f.verify(b, ctx, issuers[op], next+j)
								}
								spent[op] += time.Since(start)
							}
							next += cachedBatch
							n++
						}
						f.hitsOnly(b, before)
						verifies := float64(n * cachedBatch)
						b.ReportMetric(float64(spent[0].Nanoseconds())/verifies, "memstore-ns/verify")
						b.ReportMetric(float64(spent[1].Nanoseconds())/verifies, "cached-ns/verify")
						b.ReportMetric(float64(spent[1])/float64(spent[0]), "cached/memstore")
					})
				})
			}
		})
	}
}
