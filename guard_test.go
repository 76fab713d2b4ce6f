package apitoken_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken-go/apitoken"
)

// TestGuardAuthenticateUsesTheConfiguredExtractor checks that a Guard reads
// the convention it was configured with, not the default one.
func TestGuardAuthenticateUsesTheConfiguredExtractor(t *testing.T) {
	fx := newMWFixture(t)
	g, err := fx.iss.NewGuard(apitoken.MiddlewareConfig{Extractor: apitoken.FromHeader("X-Key", "X-Tenant")})
	require.NoError(t, err)
	header := func(kv ...string) mwRequest {
		h := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			h.Add(kv[i], kv[i+1])
		}
		return mwRequest{header: h}
	}
	tests := []struct {
		name    string
		req     mwRequest
		wantErr error // nil: fx.tok
	}{
		{"ok, the configured headers", header("X-Key", fx.secret, "X-Tenant", acctA), nil},
		{"nok, Bearer is not configured", bearer(fx.secret, acctA), apitoken.ErrNoCredentials},
		{"nok, Basic is not configured", basic(acctA + ":" + fx.secret), apitoken.ErrNoCredentials},
		{"nok, key without its tenant header", header("X-Key", fx.secret), apitoken.ErrInvalidRequest},
		{"nok, another account", header("X-Key", fx.secret, "X-Tenant", acctB), apitoken.ErrInvalidToken},
		{"nok, deleted token", header("X-Key", fx.deleted, "X-Tenant", acctA), apitoken.ErrInvalidToken},
		{"nok, token in the query", mwRequest{query: "?access_token=" + fx.secret}, apitoken.ErrInvalidRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := g.Authenticate(tt.req.build(context.Background()))
			if tt.wantErr == nil {
				require.NoError(t, err)
				assert.Equal(t, fx.tok.ID, tok.ID)
				return
			}
			require.ErrorIs(t, err, tt.wantErr)
			assert.Zero(t, tok)
			assert.NotContains(t, err.Error(), fx.secret)
		})
	}

	t.Run("nok, store failure is none of the refusals", func(t *testing.T) {
		iss, _, secret := newFailing(t, errDBDown)
		g, err := iss.NewGuard(apitoken.MiddlewareConfig{})
		require.NoError(t, err)
		_, err = g.Authenticate(bearer(secret, acctA).build(context.Background()))
		require.ErrorIs(t, err, errDBDown)
		assert.False(t, errors.Is(err, apitoken.ErrInvalidToken) || errors.Is(err, apitoken.ErrNoCredentials))
	})
}

func TestNewGuardRefusesBadConfig(t *testing.T) {
	var nilIssuer *apitoken.Issuer
	_, err := nilIssuer.NewGuard(apitoken.MiddlewareConfig{})
	require.ErrorIs(t, err, apitoken.ErrInvalidInput)
	fx := newMWFixture(t)
	_, err = fx.iss.NewGuard(apitoken.MiddlewareConfig{Realm: `a"b`})
	require.ErrorIs(t, err, apitoken.ErrInvalidInput)
}

// TestGuardWriteErrorMatchesTheMiddleware checks that an adapter answering
// with WriteError sends byte for byte what the middleware sends.
func TestGuardWriteErrorMatchesTheMiddleware(t *testing.T) {
	fx := newMWFixture(t)
	failing, _, failingSecret := newFailing(t, errDBDown)
	tests := []struct {
		name string
		iss  *apitoken.Issuer
		req  mwRequest
		want int
	}{
		{"no credentials", fx.iss, mwRequest{}, http.StatusUnauthorized},
		{"invalid token", fx.iss, bearer(fx.deleted, acctA), http.StatusUnauthorized},
		{"malformed", fx.iss, mwRequest{authz: []string{"Bearer " + fx.secret}}, http.StatusBadRequest},
		{"store down", failing, bearer(failingSecret, acctA), http.StatusServiceUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := apitoken.MiddlewareConfig{Realm: "prefs", Logger: slog.New(slog.DiscardHandler)}
			g, err := tt.iss.NewGuard(cfg)
			require.NoError(t, err)
			next := &whoami{}
			viaMiddleware, ran := serve(g.Middleware(next), next, tt.req.build(context.Background()))
			require.False(t, ran)

			_, err = g.Authenticate(tt.req.build(context.Background()))
			require.Error(t, err)
			viaAdapter := httptest.NewRecorder()
			g.WriteError(viaAdapter, tt.req.build(context.Background()), err)

			assert.Equal(t, tt.want, viaAdapter.Code)
			assert.Equal(t, viaMiddleware.Code, viaAdapter.Code)
			assert.Equal(t, viaMiddleware.Header(), viaAdapter.Header())
			assert.Equal(t, viaMiddleware.Body.String(), viaAdapter.Body.String())
		})
	}

	t.Run("a failure is logged, a refusal is not", func(t *testing.T) {
		var logs bytes.Buffer
		g, err := failing.NewGuard(apitoken.MiddlewareConfig{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		require.NoError(t, err)
		r := bearer(failingSecret, acctA).build(context.Background())
		g.WriteError(httptest.NewRecorder(), r, apitoken.ErrInvalidToken)
		assert.Empty(t, logs.String())
		g.WriteError(httptest.NewRecorder(), r, errDBDown)
		assert.Contains(t, logs.String(), "credentials could not be checked")
		assert.NotContains(t, logs.String(), failingSecret)
	})

	t.Run("the configured ErrorHandler answers", func(t *testing.T) {
		var got error
		g, err := fx.iss.NewGuard(apitoken.MiddlewareConfig{ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			got = err
			w.WriteHeader(http.StatusTeapot)
		}})
		require.NoError(t, err)
		rec := httptest.NewRecorder()
		g.WriteError(rec, mwRequest{}.build(context.Background()), apitoken.ErrNoCredentials)
		assert.Equal(t, http.StatusTeapot, rec.Code)
		assert.ErrorIs(t, got, apitoken.ErrNoCredentials)
	})
}

func TestMiddlewareOptional(t *testing.T) {
	fx := newMWFixture(t)
	mw, err := fx.iss.NewMiddleware(apitoken.MiddlewareConfig{Optional: true})
	require.NoError(t, err)
	failing, _, failingSecret := newFailing(t, errDBDown)
	failingMW, err := failing.NewMiddleware(apitoken.MiddlewareConfig{Optional: true, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	tests := []struct {
		name       string
		mw         func(http.Handler) http.Handler
		req        mwRequest
		wantStatus int
		wantRan    bool
		wantToken  bool
	}{
		{"ok, no credentials reach the handler without a token", mw, mwRequest{}, http.StatusOK, true, false},
		{"ok, a valid token reaches it with the token", mw, bearer(fx.secret, acctA), http.StatusOK, true, true},
		{"nok, an invalid token is still 401", mw, bearer(fx.deleted, acctA), http.StatusUnauthorized, false, false},
		{"nok, another account's token is still 401", mw, bearer(fx.secret, acctB), http.StatusUnauthorized, false, false},
		{"nok, malformed credentials are still 400", mw, mwRequest{authz: []string{"Bearer " + fx.secret}}, http.StatusBadRequest, false, false},
		{"nok, a token in the query is still 400", mw, mwRequest{query: "?access_token=x"}, http.StatusBadRequest, false, false},
		{"nok, a store outage is still 503", failingMW, bearer(failingSecret, acctA), http.StatusServiceUnavailable, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			next := &whoami{}
			rec, ran := serve(tt.mw(next), next, tt.req.build(context.Background()))
			assert.Equal(t, tt.wantStatus, rec.Code)
			assert.Equal(t, tt.wantRan, ran)
			if ran {
				assert.Contains(t, rec.Body.String(), map[bool]string{true: `"ok":true`, false: `"ok":false`}[tt.wantToken])
			}
		})
	}

	t.Run("nok, without Optional no credentials is 401", func(t *testing.T) {
		next := &whoami{}
		rec, ran := serve(fx.iss.Middleware(next), next, mwRequest{}.build(context.Background()))
		assert.False(t, ran)
		assertProblem(t, rec, http.StatusUnauthorized, chBare)
	})
}

func TestMiddlewareSkip(t *testing.T) {
	fx := newMWFixture(t)
	preflight := func(r *http.Request) bool {
		return r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""
	}
	mw, err := fx.iss.NewMiddleware(apitoken.MiddlewareConfig{Skip: preflight})
	require.NoError(t, err)
	build := func(method string, q mwRequest) *http.Request {
		r := q.build(context.Background())
		r.Method = method
		return r
	}
	withPreflight := func(q mwRequest) mwRequest {
		q.header = http.Header{"Access-Control-Request-Method": {"POST"}}
		return q
	}
	tests := []struct {
		name       string
		r          *http.Request
		wantStatus int
		wantRan    bool
	}{
		{"ok, a CORS preflight passes without credentials", build(http.MethodOptions, withPreflight(mwRequest{})), http.StatusOK, true},
		{"ok, a skipped request's credentials are not read", build(http.MethodOptions, withPreflight(bearer(fx.deleted, acctA))), http.StatusOK, true},
		{"nok, OPTIONS that is no preflight is authenticated", build(http.MethodOptions, mwRequest{}), http.StatusUnauthorized, false},
		{"nok, GET is authenticated", build(http.MethodGet, withPreflight(mwRequest{})), http.StatusUnauthorized, false},
		{"ok, GET with a valid token", build(http.MethodGet, bearer(fx.secret, acctA)), http.StatusOK, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			next := &whoami{}
			rec, ran := serve(mw(next), next, tt.r)
			assert.Equal(t, tt.wantStatus, rec.Code)
			assert.Equal(t, tt.wantRan, ran)
		})
	}

	t.Run("a skipped request gets no token, even with valid credentials", func(t *testing.T) {
		next := &whoami{}
		rec, ran := serve(mw(next), next, build(http.MethodOptions, withPreflight(bearer(fx.secret, acctA))))
		require.True(t, ran)
		assert.Contains(t, rec.Body.String(), `"ok":false`)
	})
}
