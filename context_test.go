package apitoken_test

import (
	"context"
	"net/http"
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
