package bench

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/apitoken-go/apitoken"
	"github.com/apitoken-go/apitoken/memstore"
)

// BenchmarkMiddlewarePeers sets the cost apitoken's middleware adds to a
// route against the cost Echo v4's KeyAuth adds to one doing the same work:
// its Validator calls the same Issuer's Verify, so the two differ only in
// what wraps the verification (reading the credentials, handing the token
// to the handler). Each is measured against its own bare route, and Verify
// alone beside them, in one run, at 1,000 and 100,000 tokens:
//
//	middleware's added cost = op=http-apitoken - op=http-bare
//	KeyAuth's added cost    = op=echo-keyauth - op=echo-bare
//
//	go test -run '^$' -bench '^BenchmarkMiddlewarePeers$' -benchmem -count 6 ./internal/bench
func BenchmarkMiddlewarePeers(b *testing.B) {
	for _, size := range []int{1000, 100_000} {
		b.Run(fmt.Sprintf("size=%d", size), func(b *testing.B) {
			f := newPeerFixture(b, size)
			body := []byte("ok\n")
			handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/plain; charset=utf-8")
				_, _ = w.Write(body)
			})
			echoHandler := func(c echo.Context) error { return c.Blob(http.StatusOK, "text/plain; charset=utf-8", body) }
			bare := echo.New()
			bare.GET("/v1/things", echoHandler)
			keyauth := echo.New()
			keyauth.GET("/v1/things", echoHandler, middleware.KeyAuthWithConfig(middleware.KeyAuthConfig{
				// Echo's defaults: "header:Authorization" with the Bearer scheme.
				Validator: func(key string, c echo.Context) (bool, error) {
					r := c.Request()
					tok, err := f.iss.Verify(r.Context(), r.Header.Get("X-Account-ID"), key)
					if errors.Is(err, apitoken.ErrInvalidToken) {
						return false, nil
					}
					if err != nil {
						return false, err
					}
					c.Set("token", tok)
					return true, nil
				},
			}))
			serve := func(h http.Handler) func(*testing.B) {
				return func(b *testing.B) {
					i := 0
					for b.Loop() {
						rec := httptest.NewRecorder()
						h.ServeHTTP(rec, f.reqs[i])
						if rec.Code != http.StatusOK {
							b.Fatalf("status %d", rec.Code)
						}
						if i++; i == len(f.reqs) {
							i = 0
						}
					}
				}
			}
			b.Run("op=verify", func(b *testing.B) {
				ctx := context.Background()
				i := 0
				for b.Loop() {
					if _, err := f.iss.Verify(ctx, f.accounts[i], f.secrets[i]); err != nil {
						b.Fatal(err)
					}
					if i++; i == len(f.secrets) {
						i = 0
					}
				}
			})
			b.Run("op=http-bare", serve(handler))
			b.Run("op=http-apitoken", serve(f.iss.Middleware(handler)))
			b.Run("op=echo-bare", serve(bare))
			b.Run("op=echo-keyauth", serve(keyauth))
		})
	}
}

// A peerFixture is a memstore of size tokens, up to 65,536 of them issued
// through the Issuer (the probes, in random order, each with one scope as
// tokens usually have), the rest created directly with random hashes, and
// one Bearer request per probe, built once: the handlers derive new ones.
type peerFixture struct {
	iss               *apitoken.Issuer
	secrets, accounts []string
	reqs              []*http.Request
}

func newPeerFixture(b *testing.B, size int) *peerFixture {
	b.Helper()
	ctx := context.Background()
	store := memstore.New()
	iss, err := apitoken.NewIssuer(store)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = iss.Close() })
	f := &peerFixture{iss: iss}
	scopes := []string{"tokens:read"}
	n := min(size, 1<<16)
	for i := range n {
		acct := fmt.Sprintf("acct-%d", i%1000)
		secret, _, err := iss.Issue(ctx, apitoken.IssueParams{AccountID: acct, Name: "bench", Scopes: scopes})
		if err != nil {
			b.Fatal(err)
		}
		f.secrets, f.accounts = append(f.secrets, secret), append(f.accounts, acct)
	}
	mrand.Shuffle(n, func(i, j int) {
		f.secrets[i], f.secrets[j] = f.secrets[j], f.secrets[i]
		f.accounts[i], f.accounts[j] = f.accounts[j], f.accounts[i]
	})
	now := time.Now().UTC().Truncate(time.Microsecond)
	for i := n; i < size; i++ {
		rec := apitoken.Record{Token: apitoken.Token{
			ID: uuid.Must(uuid.NewV7()).String(), AccountID: fmt.Sprintf("acct-%d", i%1000),
			Name: "bench", Scopes: scopes, CreatedAt: now,
		}}
		rand.Read(rec.Hash[:])
		if err := store.Create(ctx, rec); err != nil {
			b.Fatal(err)
		}
	}
	for i := range f.secrets {
		r := httptest.NewRequest(http.MethodGet, "/v1/things", nil)
		r.Header.Set("Authorization", "Bearer "+f.secrets[i])
		r.Header.Set("X-Account-ID", f.accounts[i])
		f.reqs = append(f.reqs, r)
	}
	// Each token used once, and its last use written: the steady state,
	// where Verify finds a recent LastUsedAt.
	for i := range f.secrets {
		if _, err := iss.Verify(ctx, f.accounts[i], f.secrets[i]); err != nil {
			b.Fatal(err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for a := range min(n, 1000) {
		for {
			toks, err := iss.List(ctx, fmt.Sprintf("acct-%d", a))
			if err != nil {
				b.Fatal(err)
			}
			written := true
			for _, t := range toks {
				issued := !t.CreatedAt.Equal(now)
				written = written && (!issued || !t.LastUsedAt.IsZero())
			}
			if written {
				break
			}
			if time.Now().After(deadline) {
				b.Fatal("the fixture's last uses were not written within 30 s")
			}
			time.Sleep(time.Millisecond)
		}
	}
	return f
}
