package ginauth_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/apitoken-go/apitoken/ginauth"
)

// BenchmarkMiddleware measures what the middleware adds to a route: the Gin
// route bare and behind ginauth.Middleware, and beside it the same handler
// in net/http bare and behind the core's Issuer.Middleware, each served with
// ServeHTTP into an httptest.ResponseRecorder. The cost ginauth adds is
// gin/ginauth - gin/bare, the core's nethttp/apitoken - nethttp/bare; from
// this folder:
//
//	GOWORK=off go test -run '^$' -bench BenchmarkMiddleware -benchmem -benchtime 200ms -count 10 . > bench.txt
//	benchstat -col /mw bench.txt
func BenchmarkMiddleware(b *testing.B) {
	fx := newFixture(b)
	ok := func(w http.ResponseWriter) {
		w.WriteHeader(http.StatusNoContent)
	}
	bareGin := gin.New()
	bareGin.GET(pathWhoami, func(c *gin.Context) { ok(c.Writer) })
	authGin := gin.New()
	authGin.Use(ginauth.Middleware(fx.iss))
	authGin.GET(pathWhoami, func(c *gin.Context) { ok(c.Writer) })
	bareStd := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { ok(w) })
	authStd := fx.iss.Middleware(bareStd)

	requests := []struct {
		name, authz string
		status      int
	}{
		{"valid", "Bearer " + fx.secret, http.StatusNoContent},
		{"none", "", http.StatusUnauthorized},
	}
	stacks := []struct {
		name string
		h    http.Handler
		auth bool
	}{
		{"stack=gin/mw=bare", bareGin, false},
		{"stack=gin/mw=ginauth", authGin, true},
		{"stack=nethttp/mw=bare", bareStd, false},
		{"stack=nethttp/mw=apitoken", authStd, true},
	}
	for _, q := range requests {
		r := httptest.NewRequest(http.MethodGet, pathWhoami, nil)
		if q.authz != "" {
			r.Header.Set("Authorization", q.authz)
			r.Header.Set("X-Account-ID", acctA)
		}
		for _, s := range stacks {
			want := http.StatusNoContent
			if s.auth {
				want = q.status
			}
			b.Run("req="+q.name+"/"+s.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					rec := httptest.NewRecorder()
					s.h.ServeHTTP(rec, r)
					if rec.Code != want {
						b.Fatalf("status %d, want %d", rec.Code, want)
					}
				}
			})
		}
	}
}
