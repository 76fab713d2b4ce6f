package ginauth_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/stretchr/testify/assert"

	"github.com/apitoken-go/apitoken"
	"github.com/apitoken-go/apitoken/ginauth"
)

func TestFromContext(t *testing.T) {
	tok := apitoken.Token{ID: "tok_1", AccountID: acctA, Scopes: []string{"read"}}
	withRequest := func(r *http.Request) *gin.Context {
		c, _ := gin.CreateTestContext(httptest.NewRecorder())
		c.Request = r
		return c
	}
	plain := httptest.NewRequestWithContext(t.Context(), http.MethodGet, pathWhoami, nil)
	tests := []struct {
		name string
		c    *gin.Context
		ok   bool
	}{
		{"ok, token in the request context", withRequest(plain.WithContext(apitoken.NewContext(plain.Context(), tok))), true},
		{"nok, nil context", nil, false},
		{"nok, no request", withRequest(nil), false},
		{"nok, no token", withRequest(plain), false},
		{"nok, a token in the Gin keys is not read", func() *gin.Context {
			c := withRequest(plain)
			c.Set("token", tok)
			return c
		}(), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := ginauth.FromContext(tt.c)
			assert.Equal(t, tt.ok, ok)
			if !tt.ok {
				assert.Zero(t, got)
				return
			}
			assert.Equal(t, tok, got)
			got.Scopes[0] = "admin"
			again, _ := ginauth.FromContext(tt.c)
			assert.Equal(t, []string{"read"}, again.Scopes, "Scopes are a copy")
		})
	}
}

// TestGinContextWithFallback finds the token through the *gin.Context
// itself, as a context.Context, when the engine has ContextWithFallback: Gin
// then asks the request context.
func TestGinContextWithFallback(t *testing.T) {
	fx := newFixture(t)
	tests := []struct {
		name     string
		fallback bool
		found    bool
	}{
		{"ok, ContextWithFallback", true, true},
		{"nok, without ContextWithFallback", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &who{}
			e := gin.New()
			e.ContextWithFallback = tt.fallback
			e.GET(pathWhoami, ginauth.Middleware(fx.iss), func(c *gin.Context) {
				h.calls.Add(1)
				tok, ok := apitoken.FromContext(c)
				writeWho(c.Writer, tok, ok)
			})
			s := &stack{srv: httptest.NewServer(e), who: h}
			t.Cleanup(s.srv.Close)
			got, called := s.send(t, bearer(fx.secret, acctA))
			assert.True(t, called)
			ok, id, _ := whoBody(t, got.body)
			assert.Equal(t, tt.found, ok)
			assert.Equal(t, tt.found, id == fx.tok.ID)
		})
	}
}
