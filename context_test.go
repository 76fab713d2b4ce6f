package apitoken_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken-go/apitoken"
)

type ctxKey struct{}

func TestNewContext(t *testing.T) {
	fx := newMWFixture(t)
	tok, err := fx.iss.Verify(context.Background(), acctA, fx.secret)
	require.NoError(t, err)

	t.Run("ok, FromContext returns the token", func(t *testing.T) {
		parent := context.WithValue(context.Background(), ctxKey{}, "kept")
		ctx := apitoken.NewContext(parent, tok)
		got, ok := apitoken.FromContext(ctx)
		require.True(t, ok)
		assert.Equal(t, tok, got)
		assert.Equal(t, "kept", ctx.Value(ctxKey{}), "the parent's values stay reachable")
	})

	t.Run("ok, the parent's cancellation carries through", func(t *testing.T) {
		parent, cancel := context.WithCancel(context.Background())
		ctx := apitoken.NewContext(parent, tok)
		cancel()
		<-ctx.Done()
		assert.ErrorIs(t, ctx.Err(), context.Canceled)
	})

	t.Run("ok, the scopes are the caller's no more", func(t *testing.T) {
		mine := tok
		mine.Scopes = []string{"read", "write"}
		ctx := apitoken.NewContext(context.Background(), mine)
		mine.Scopes[0] = "admin"
		got, _ := apitoken.FromContext(ctx)
		assert.Equal(t, []string{"read", "write"}, got.Scopes)
	})

	t.Run("ok, RequireScope checks a token NewContext put there", func(t *testing.T) {
		next := &whoami{}
		r := mwRequest{}.build(apitoken.NewContext(context.Background(), tok))
		_, ran := serve(apitoken.RequireScope("read")(next), next, r)
		assert.True(t, ran)

		rec, ran := serve(apitoken.RequireScope("admin")(next), next, r)
		assert.False(t, ran)
		assertProblem(t, rec, http.StatusForbidden, `Bearer realm="api", error="insufficient_scope", scope="admin"`)
	})

	t.Run("nok, a nil parent panics as context.WithValue does", func(t *testing.T) {
		var nilCtx context.Context
		assert.Panics(t, func() { apitoken.NewContext(nilCtx, tok) })
	})
}

func TestFromContext(t *testing.T) {
	fx := newMWFixture(t)

	t.Run("nok, plain and nil contexts", func(t *testing.T) {
		_, ok := apitoken.FromContext(context.Background())
		assert.False(t, ok)
		var nilCtx context.Context
		assert.NotPanics(t, func() { _, ok = apitoken.FromContext(nilCtx) })
		assert.False(t, ok)
		type principalKey struct{} // the name the package uses, but not its type
		ctx := context.WithValue(context.Background(), principalKey{}, fx.tok)
		_, ok = apitoken.FromContext(ctx)
		assert.False(t, ok, "only the middleware can put a token in the context")
	})

	t.Run("nok, client headers cannot put anything there", func(t *testing.T) {
		var ok bool
		var tok apitoken.Token
		ran := false
		h := fx.iss.Middleware(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
			ran = true
			tok, ok = apitoken.FromContext(r.Context())
		}))
		// Headers that name the token and account, but no credentials.
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.Header = http.Header{"X-Token-Id": {fx.tok.ID}, "Principal": {acctA}, "Apitoken": {fx.tok.ID}, "X-Account-Id": {acctA}}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		assert.Equal(t, http.StatusUnauthorized, rec.Code)
		assert.False(t, ran, "the handler must not run without credentials")
		assert.False(t, ok)
		assert.Zero(t, tok)
	})

	t.Run("ok, the verified token, with its scopes copied", func(t *testing.T) {
		var first, second apitoken.Token
		var ok bool
		h := fx.iss.Middleware(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
			first, ok = apitoken.FromContext(r.Context())
			first.Scopes[0] = "admin"
			second, _ = apitoken.FromContext(r.Context())
		}))
		h.ServeHTTP(httptest.NewRecorder(), bearer(fx.secret, acctA).build(context.Background()))
		require.True(t, ok)
		assert.Equal(t, fx.tok.ID, second.ID)
		assert.Equal(t, []string{"read", "write"}, second.Scopes, "a handler cannot change the scopes RequireScope sees")
	})
}
