package ginauth_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/stretchr/testify/assert"

	"github.com/apitoken-go/apitoken"
	"github.com/apitoken-go/apitoken/ginauth"
)

// TestRequireScope checks the scopes of a token of scopes read and write, on
// a Gin app and on the same net/http app.
func TestRequireScope(t *testing.T) {
	fx := newFixture(t)
	valid := bearer(fx.secret, acctA)
	tests := []struct {
		name      string
		scopes    []string
		req       request
		status    int
		challenge string
	}{
		{"ok, one scope", []string{"read"}, valid, 200, ""},
		{"ok, every scope", []string{"read", "write"}, valid, 200, ""},
		{"ok, none listed, any token", nil, valid, 200, ""},
		{"nok, one scope missing", []string{"read", "admin"}, valid, 403, `Bearer realm="api", error="insufficient_scope", scope="read admin"`},
		{"nok, scopes compare exactly", []string{"READ"}, valid, 403, `Bearer realm="api", error="insufficient_scope", scope="READ"`},
		{"nok, a token of no scope", []string{"read"}, bearer(fx.other, acctB), 403, `Bearer realm="api", error="insufficient_scope", scope="read"`},
		{"nok, no credentials", []string{"read"}, request{}, 401, `Bearer realm="api"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &who{}
			e := gin.New()
			e.GET(pathWhoami, ginauth.Middleware(fx.iss), ginauth.RequireScope(tt.scopes...), h.Gin)
			g := &stack{srv: httptest.NewServer(e), who: h}
			t.Cleanup(g.srv.Close)
			sh := &who{}
			std := &stack{srv: httptest.NewServer(fx.iss.Middleware(apitoken.RequireScope(tt.scopes...)(sh))), who: sh}
			t.Cleanup(std.srv.Close)

			got, called := g.send(t, tt.req)
			assert.Equal(t, tt.status, got.status, "body %q", got.body)
			assert.Equal(t, tt.challenge, got.header.Get("WWW-Authenticate"))
			assert.Equal(t, tt.status == 200, called, "handler called")
			want, _ := std.send(t, tt.req)
			assert.Equal(t, want, got, "the Gin answer must be the net/http answer")
			assertClean(t, got, fx.secrets())
		})
	}
}

// TestRequireScopeWithoutMiddleware fails closed: no middleware ran, no
// token, 401.
func TestRequireScopeWithoutMiddleware(t *testing.T) {
	fx := newFixture(t)
	h := &who{}
	e := gin.New()
	e.GET(pathWhoami, ginauth.RequireScope(), h.Gin)
	g := &stack{srv: httptest.NewServer(e), who: h}
	t.Cleanup(g.srv.Close)

	got, called := g.send(t, bearer(fx.secret, acctA))
	assert.Equal(t, http.StatusUnauthorized, got.status)
	assert.Equal(t, `Bearer realm="api"`, got.header.Get("WWW-Authenticate"))
	assert.False(t, called)
}

// TestRequireScopeAnswersWithTheConfig wants a scope refusal answered with
// the realm and the ErrorHandler of the middleware that verified the token,
// by ginauth.RequireScope and by apitoken.RequireScope in a wrapped net/http
// handler alike, as in net/http.
func TestRequireScopeAnswersWithTheConfig(t *testing.T) {
	fx := newFixture(t)
	var scopeRefusals atomic.Int64 // the ErrorHandler runs on the server's goroutines
	cfg := apitoken.MiddlewareConfig{
		Realm: "billing",
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if errors.Is(err, apitoken.ErrInsufficientScope) {
				scopeRefusals.Add(1)
				w.Header().Set("WWW-Authenticate", `Bearer realm="billing", error="insufficient_scope"`)
				http.Error(w, "billing: not allowed", http.StatusForbidden)
				return
			}
			http.Error(w, "billing: refused", http.StatusUnauthorized)
		},
	}
	g, std := pair(t, fx.iss, &cfg)
	tests := []struct {
		name string
		path string
	}{
		{"nok, ginauth.RequireScope", pathAdmin},
		{"nok, apitoken.RequireScope in gin.WrapH", pathWrappedAdmin},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := scopeRefusals.Load()
			got, called := g.send(t, bearer(fx.secret, acctA).to(tt.path))
			assert.False(t, called)
			assert.Equal(t, http.StatusForbidden, got.status)
			assert.Equal(t, "billing: not allowed\n", got.body, "the config's ErrorHandler answers")
			assert.Equal(t, before+1, scopeRefusals.Load(), "one ErrInsufficientScope for the ErrorHandler")
			want, _ := std.send(t, bearer(fx.secret, acctA).to(tt.path))
			assert.Equal(t, want, got)
		})
	}
}
