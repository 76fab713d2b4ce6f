package apitoken_test

// Benchmarks of the public API, each beside a floor measured in the same
// run, because the machine is shared and noisy: compare ratios, not times.
// BENCHMARKS.md has the commands and the figures.
//
// The floor of a verification is what no design can avoid: one SHA-256 of
// the secret and one lookup in a map of the same size as the store. A keyed
// floor (a reused HMAC-SHA-256 instead of the SHA-256) shows how much of the
// distance to it is the keyed hash itself, which the issue requires. The
// floor of a refused malformed secret is the CRC32 of its bytes.

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"hash"
	"hash/crc32"
	mrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/apitoken-go/apitoken"
	"github.com/apitoken-go/apitoken/memstore"
)

// benchAccounts is how many accounts the tokens of a fixture belong to.
const benchAccounts = 1000

// maxProbes bounds how many tokens a fixture issues through the Issuer: the
// probes whose secrets the benchmarks verify. 65,536 records spread over a
// large map do not fit in the caches, so a probe chosen at random misses
// them the way a request among many clients would.
const maxProbes = 1 << 16

// probe is one issued token and the inputs derived from it.
type probe struct {
	account   string // the token's account
	secret    string // as issued
	bytes     []byte // the secret's bytes, so the floor pays no conversion
	other     string // another account: Verify must refuse the pair
	malformed string // the secret with a wrong checksum character
	unknown   string // a well-formed secret that no store holds
}

// benchHashKey is the application key of the fixtures' Issuers, so that the
// keyed floor computes the very digests the store holds.
var benchHashKey = []byte("apitoken benchmarks: 32+ bytes of hash key")

// fixture is a memstore of size tokens and, for the floors, three maps of
// the same size: one keyed by the plain SHA-256 of each secret, the same with
// pointer values as memstore keeps its records, and one keyed by the
// HMAC-SHA-256 under benchHashKey.
type fixture struct {
	size   int
	iss    *apitoken.Issuer
	store  *memstore.Store // iss's
	probes []probe         // issued tokens, in random order
	floor  map[[32]byte]apitoken.Token
	keyed  map[apitoken.Hash]apitoken.Token
	ptrs   map[[32]byte]*apitoken.Token // the floor with memstore's indirection
	macs   sync.Pool                    // of *benchMAC
	mu     sync.RWMutex                 // guards nothing: the floor of memstore's read lock
}

var (
	fixtureMu sync.Mutex
	current   *fixture // the one fixture kept: see fixtureOf
)

// fixtureOf returns the fixture of that size, building it when the last one
// built had another size. Only one is kept: a resident store of a million
// records (pointer-heavy) makes every GC cycle long, and would slow the
// allocating benchmarks that run after it (the middleware, Issue) for
// reasons that have nothing to do with them. Rebuilding the small fixture
// costs a few milliseconds.
func fixtureOf(b *testing.B, size int) *fixture {
	b.Helper()
	fixtureMu.Lock()
	defer fixtureMu.Unlock()
	if current != nil && current.size == size {
		return current
	}
	current = nil
	runtime.GC()
	f, err := newFixture(size)
	if err != nil {
		b.Fatal(err)
	}
	current = f
	runtime.GC() // start the benchmark without the garbage of the setup
	return f
}

func newFixture(size int) (*fixture, error) {
	ctx := context.Background()
	store := memstore.New()
	iss, err := apitoken.NewIssuer(store, apitoken.WithHashKey(benchHashKey))
	if err != nil {
		return nil, err
	}
	// Unknown secrets come from another Issuer with the same prefix: they
	// pass the format check and miss the store.
	strangers, err := apitoken.NewIssuer(memstore.New())
	if err != nil {
		return nil, err
	}
	accounts := benchAccountNames
	scopes := []string{"tokens:read"} // tokens usually carry a scope: its copy is one alloc
	f := &fixture{
		size:  size,
		iss:   iss,
		store: store,
		floor: make(map[[32]byte]apitoken.Token),
		keyed: make(map[apitoken.Hash]apitoken.Token),
		ptrs:  make(map[[32]byte]*apitoken.Token),
		macs:  sync.Pool{New: func() any { return &benchMAC{h: hmac.New(sha256.New, benchHashKey)} }},
	}

	n := min(size, maxProbes)
	f.probes = make([]probe, n)
	for i := range f.probes {
		acct := accounts[i%benchAccounts]
		secret, tok, err := iss.Issue(ctx, apitoken.IssueParams{AccountID: acct, Name: "bench", Scopes: scopes})
		if err != nil {
			return nil, err
		}
		unknown, _, err := strangers.Issue(ctx, apitoken.IssueParams{AccountID: acct})
		if err != nil {
			return nil, err
		}
		bad := []byte(secret)
		if bad[len(bad)-1] == '0' {
			bad[len(bad)-1] = '1'
		} else {
			bad[len(bad)-1] = '0'
		}
		f.probes[i] = probe{
			account:   acct,
			secret:    secret,
			bytes:     []byte(secret),
			other:     accounts[(i+1)%benchAccounts],
			malformed: string(bad),
			unknown:   unknown,
		}
		f.floor[sha256.Sum256([]byte(secret))] = tok
		f.keyed[f.mac(f.probes[i].bytes)] = tok
		f.ptrs[sha256.Sum256([]byte(secret))] = &tok
	}
	mrand.Shuffle(len(f.probes), func(i, j int) { f.probes[i], f.probes[j] = f.probes[j], f.probes[i] })
	if err := f.warm(ctx, store); err != nil {
		return nil, err
	}

	// The rest of the store: records created directly, with random hashes,
	// shaped like issued ones (UUIDv7 id, one scope).
	now := time.Now().UTC().Truncate(time.Microsecond)
	for i := n; i < size; i++ {
		rec := apitoken.Record{Token: apitoken.Token{
			ID:        uuid.Must(uuid.NewV7()).String(),
			AccountID: accounts[i%benchAccounts],
			Name:      "bench",
			Scopes:    scopes,
			CreatedAt: now,
		}}
		rand.Read(rec.Hash[:])
		if err := store.Create(ctx, rec); err != nil {
			return nil, err
		}
		f.floor[rec.Hash] = rec.Token
		f.keyed[rec.Hash] = rec.Token
		f.ptrs[rec.Hash] = &rec.Token
	}
	return f, nil
}

// warm verifies every probe once and waits until the store has its last
// use: the steady state of tokens in use, where Verify finds a recent
// LastUsedAt and leaves the last-use coalescer alone. Without it, what the
// benchmarks measure would depend on when the background write lands.
func (f *fixture) warm(ctx context.Context, store *memstore.Store) error {
	for _, p := range f.probes {
		if _, err := f.iss.Verify(ctx, p.account, p.secret); err != nil {
			return err
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, p := range f.probes {
		for {
			rec, err := store.Lookup(ctx, f.mac(p.bytes))
			if err != nil {
				return err
			}
			if !rec.LastUsedAt.IsZero() {
				break
			}
			if time.Now().After(deadline) {
				return errors.New("bench: the last uses of the fixture were not written within 30 s")
			}
			time.Sleep(time.Millisecond)
		}
	}
	return nil
}

// next returns the probe after i, wrapping around, so that a loop visits the
// probes in their shuffled order.
func (f *fixture) next(i *int) *probe {
	p := &f.probes[*i]
	if *i++; *i == len(f.probes) {
		*i = 0
	}
	return p
}

// floorLookup is the floor of a verification: SHA-256 of the secret's bytes
// and one map read. The account comparison keeps the result live and checks
// the fixture.
func (f *fixture) floorLookup(b *testing.B, p *probe) {
	tok, ok := f.floor[sha256.Sum256(p.bytes)]
	if !ok || tok.AccountID != p.account {
		b.Fatal("floor: probe not in the map")
	}
}

// benchMAC is a keyed HMAC-SHA-256 with a buffer for its sum, which would
// escape to the heap if it were a local passed to Sum through the interface.
type benchMAC struct {
	h   hash.Hash
	sum [sha256.Size]byte
}

// ptrFloorLookup is the floor with the record behind a pointer, as memstore
// keeps it, and the Token copied out of it: it shows what that indirection
// costs once the records no longer fit in the caches.
func (f *fixture) ptrFloorLookup(b *testing.B, p *probe) {
	r, ok := f.ptrs[sha256.Sum256(p.bytes)]
	if !ok {
		b.Fatal("pointer floor: probe not in the map")
	}
	if tok := *r; tok.AccountID != p.account {
		b.Fatal("pointer floor: wrong account")
	}
}

// mac returns the HMAC-SHA-256 of b under benchHashKey, with a pooled,
// reset instance as the Issuer does.
func (f *fixture) mac(b []byte) apitoken.Hash {
	m := f.macs.Get().(*benchMAC)
	m.h.Reset()
	m.h.Write(b)
	h := apitoken.Hash(m.h.Sum(m.sum[:0]))
	f.macs.Put(m)
	return h
}

// keyedFloorLookup is the floor with the keyed hash the issue requires in
// place of the plain SHA-256.
func (f *fixture) keyedFloorLookup(b *testing.B, p *probe) {
	tok, ok := f.keyed[f.mac(p.bytes)]
	if !ok || tok.AccountID != p.account {
		b.Fatal("keyed floor: probe not in the map")
	}
}

func (f *fixture) verifyValid(b *testing.B, ctx context.Context, p *probe) {
	tok, err := f.iss.Verify(ctx, p.account, p.secret)
	if err != nil || tok.AccountID != p.account {
		b.Fatalf("Verify of an issued token: %v", err)
	}
}

// BenchmarkVerify measures Verify on each kind of input beside its floor, in
// a store of 1,000 tokens (so that it measures computation, not cache
// misses; BenchmarkVerifyBySize covers those).
func BenchmarkVerify(b *testing.B) {
	ctx := context.Background()
	f := fixtureOf(b, 1000)

	b.Run("case=floor-sha256+map", func(b *testing.B) {
		i := 0
		for b.Loop() {
			f.floorLookup(b, f.next(&i))
		}
	})
	b.Run("case=floor-sha256-conv+map", func(b *testing.B) {
		// The same with the string-to-bytes copy a naive caller pays.
		i := 0
		for b.Loop() {
			p := f.next(&i)
			if _, ok := f.floor[sha256.Sum256([]byte(p.secret))]; !ok {
				b.Fatal("floor: probe not in the map")
			}
		}
	})
	b.Run("case=floor-hmac+map", func(b *testing.B) {
		i := 0
		for b.Loop() {
			f.keyedFloorLookup(b, f.next(&i))
		}
	})
	b.Run("case=valid", func(b *testing.B) {
		i := 0
		for b.Loop() {
			f.verifyValid(b, ctx, f.next(&i))
		}
	})
	b.Run("case=cache-hit", func(b *testing.B) {
		// The same Verify through WithCache, every probe cached: what a
		// cache in front of a SQL store costs on a hit, beside a memstore
		// Verify (case=valid), which it should match.
		cached, err := apitoken.NewIssuer(f.store, apitoken.WithHashKey(benchHashKey), apitoken.WithCache(2*len(f.probes), time.Hour))
		if err != nil {
			b.Fatal(err)
		}
		for _, p := range f.probes {
			if _, err := cached.Verify(ctx, p.account, p.secret); err != nil {
				b.Fatal(err)
			}
		}
		i := 0
		for b.Loop() {
			p := f.next(&i)
			if tok, err := cached.Verify(ctx, p.account, p.secret); err != nil || tok.AccountID != p.account {
				b.Fatalf("Verify through the cache: %v", err)
			}
		}
	})
	b.Run("case=wrong-account", func(b *testing.B) {
		i := 0
		for b.Loop() {
			p := f.next(&i)
			if _, err := f.iss.Verify(ctx, p.other, p.secret); err != apitoken.ErrInvalidToken {
				b.Fatalf("Verify with another account: %v", err)
			}
		}
	})
	b.Run("case=unknown", func(b *testing.B) {
		i := 0
		for b.Loop() {
			p := f.next(&i)
			if _, err := f.iss.Verify(ctx, p.account, p.unknown); err != apitoken.ErrInvalidToken {
				b.Fatalf("Verify of an unknown token: %v", err)
			}
		}
	})
	b.Run("case=floor-crc32", func(b *testing.B) {
		// The floor of the format check: CRC32 of the bytes the checksum
		// covers (all but its own six characters).
		i := 0
		var sink uint32
		for b.Loop() {
			p := f.next(&i)
			sink += crc32.ChecksumIEEE(p.bytes[:len(p.bytes)-6])
		}
		_ = sink
	})
	b.Run("case=malformed-checksum", func(b *testing.B) {
		i := 0
		for b.Loop() {
			p := f.next(&i)
			if _, err := f.iss.Verify(ctx, p.account, p.malformed); err != apitoken.ErrInvalidToken {
				b.Fatalf("Verify of a malformed token: %v", err)
			}
		}
	})
}

// BenchmarkVerifyBySize measures Verify of a valid token, chosen at random
// among up to 65,536 issued, in stores of 1,000 to 1,000,000 tokens, beside
// the floor at the same size. The floor grows with the size too (cache and
// TLB misses); what should stay flat is the ratio.
func BenchmarkVerifyBySize(b *testing.B) {
	ctx := context.Background()
	for _, size := range []int{1000, 100_000, 1_000_000} {
		b.Run("size="+strconv.Itoa(size), func(b *testing.B) {
			f := fixtureOf(b, size)
			b.Run("op=floor", func(b *testing.B) {
				i := 0
				for b.Loop() {
					f.floorLookup(b, f.next(&i))
				}
			})
			b.Run("op=floor-ptr", func(b *testing.B) {
				i := 0
				for b.Loop() {
					f.ptrFloorLookup(b, f.next(&i))
				}
			})
			b.Run("op=floor-hmac", func(b *testing.B) {
				i := 0
				for b.Loop() {
					f.keyedFloorLookup(b, f.next(&i))
				}
			})
			b.Run("op=verify", func(b *testing.B) {
				i := 0
				for b.Loop() {
					f.verifyValid(b, ctx, f.next(&i))
				}
			})
		})
	}
}

// BenchmarkVerifyParallel runs Verify of a valid token on every core, beside
// the floor with and without a shared RWMutex read lock (what memstore takes
// per lookup), to show what the lock's shared reader count costs under
// contention. b.Loop does not apply to RunParallel: it uses pb.Next.
func BenchmarkVerifyParallel(b *testing.B) {
	ctx := context.Background()
	f := fixtureOf(b, 1000)
	run := func(b *testing.B, op func(*probe)) {
		b.RunParallel(func(pb *testing.PB) {
			i := mrand.IntN(len(f.probes)) // each goroutine its own walk
			for pb.Next() {
				op(f.next(&i))
			}
		})
	}
	b.Run("op=floor", func(b *testing.B) {
		run(b, func(p *probe) { f.floorLookup(b, p) })
	})
	b.Run("op=floor-rwmutex", func(b *testing.B) {
		run(b, func(p *probe) {
			f.mu.RLock()
			f.floorLookup(b, p)
			f.mu.RUnlock()
		})
	})
	b.Run("op=verify", func(b *testing.B) {
		run(b, func(p *probe) { f.verifyValid(b, ctx, p) })
	})
}

// BenchmarkIssue measures Issue into a memstore beside its floor: the random
// bytes of a secret, a UUIDv7 and one SHA-256, which no design avoids.
// op=issue lets the store grow by every iteration (hundreds of thousands of
// tokens by the end, so map growth and GC of a growing heap are in the
// figure); op=issue+delete deletes each token again, keeping a store of
// 1,000 tokens in a steady state.
func BenchmarkIssue(b *testing.B) {
	ctx := context.Background()
	b.Run("op=floor", func(b *testing.B) {
		var buf [32]byte
		var sink [32]byte
		for b.Loop() {
			rand.Read(buf[:])
			id := uuid.Must(uuid.NewV7())
			sink = sha256.Sum256(buf[:])
			sink[0] ^= id[0]
		}
		_ = sink
	})
	b.Run("op=issue", func(b *testing.B) {
		iss, err := apitoken.NewIssuer(memstore.New())
		if err != nil {
			b.Fatal(err)
		}
		p := apitoken.IssueParams{Name: "bench", Scopes: []string{"tokens:read"}}
		i := 0
		for b.Loop() {
			p.AccountID = benchAccountName(i)
			i++
			if _, _, err := iss.Issue(ctx, p); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("op=issue+delete", func(b *testing.B) {
		iss, err := apitoken.NewIssuer(memstore.New())
		if err != nil {
			b.Fatal(err)
		}
		p := apitoken.IssueParams{Name: "bench", Scopes: []string{"tokens:read"}}
		for i := range 1000 {
			p.AccountID = benchAccountName(i)
			if _, _, err := iss.Issue(ctx, p); err != nil {
				b.Fatal(err)
			}
		}
		i := 0
		for b.Loop() {
			p.AccountID = benchAccountName(i)
			i++
			_, tok, err := iss.Issue(ctx, p)
			if err != nil {
				b.Fatal(err)
			}
			if err := iss.Delete(ctx, tok.AccountID, tok.ID); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// benchAccountNames are the account ids of the fixtures, made once so that
// the benchmarks do not measure strconv.
var benchAccountNames = func() []string {
	a := make([]string, benchAccounts)
	for i := range a {
		a[i] = "acct-" + strconv.Itoa(i)
	}
	return a
}()

// benchAccountName returns the account of the i-th token of a fixture.
func benchAccountName(i int) string { return benchAccountNames[i%benchAccounts] }

// BenchmarkMiddleware serves a request through httptest.NewRecorder to a bare
// handler and to the same handler behind iss.Middleware (Bearer with
// X-Account-ID, and Basic), with Verify alone in the same run so that the
// middleware's added cost (op=bearer minus op=bare) can be set against
// Verify's, Authenticate (parsing plus Verify) to split that cost, and the
// least any such middleware does (op=floor-middleware) as its floor. Every op gets a new recorder per request, so the floor pays what
// the wrapped handler pays. The requests are built once per probe and
// reused: the middleware derives a new request (WithContext) and leaves
// them unchanged.
func BenchmarkMiddleware(b *testing.B) {
	ctx := context.Background()
	f := fixtureOf(b, 1000)
	body := []byte("ok\n")
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write(body)
	})
	wrapped := f.iss.Middleware(handler)
	minimal := f.minimalMiddleware(handler)

	bearer := make([]*http.Request, len(f.probes))
	basic := make([]*http.Request, len(f.probes))
	for i, p := range f.probes {
		bearer[i] = httptest.NewRequest(http.MethodGet, "/v1/things", nil)
		bearer[i].Header.Set("Authorization", "Bearer "+p.secret)
		bearer[i].Header.Set("X-Account-ID", p.account)
		basic[i] = httptest.NewRequest(http.MethodGet, "/v1/things", nil)
		basic[i].SetBasicAuth(p.account, p.secret)
	}
	// The middleware must accept both forms and hand the token on, or the
	// figures would measure a refusal.
	check := f.iss.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := apitoken.FromContext(r.Context()); !ok {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	for _, r := range []*http.Request{bearer[0], basic[0]} {
		rec := httptest.NewRecorder()
		check.ServeHTTP(rec, r)
		if rec.Code != http.StatusOK {
			b.Fatalf("middleware answered %d to a valid request", rec.Code)
		}
	}

	serve := func(h http.Handler, reqs []*http.Request) func(*testing.B) {
		return func(b *testing.B) {
			i := 0
			for b.Loop() {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, reqs[i])
				if rec.Code != http.StatusOK {
					b.Fatalf("status %d", rec.Code)
				}
				if i++; i == len(reqs) {
					i = 0
				}
			}
		}
	}
	b.Run("op=bare", serve(handler, bearer))
	b.Run("op=verify", func(b *testing.B) {
		i := 0
		for b.Loop() {
			f.verifyValid(b, ctx, f.next(&i))
		}
	})
	b.Run("op=authenticate", func(b *testing.B) {
		// Header parsing and Verify, without the context and the request
		// copy that hand the token to the handler.
		i := 0
		for b.Loop() {
			if _, err := f.iss.Authenticate(bearer[i]); err != nil {
				b.Fatal(err)
			}
			if i++; i == len(bearer) {
				i = 0
			}
		}
	})
	b.Run("op=floor-middleware", serve(minimal, bearer))
	b.Run("op=bearer", serve(wrapped, bearer))
	b.Run("op=basic", serve(wrapped, basic))
}

// floorKey is the context key of minimalMiddleware.
type floorKey struct{}

// minimalMiddleware is the floor of an authentication middleware: it reads
// "Bearer <secret>" and X-Account-ID without the checks a real one needs,
// looks the plain SHA-256 up in the floor map, compares the account and
// hands the token on with WithValue and WithContext, as any net/http
// middleware must.
func (f *fixture) minimalMiddleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		secret, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		tok, ok := f.floor[sha256.Sum256([]byte(secret))]
		if !ok || tok.AccountID != r.Header.Get("X-Account-ID") {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), floorKey{}, &tok)))
	})
}
