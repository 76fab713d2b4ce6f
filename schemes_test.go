package apitoken_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken-go/apitoken"
	"github.com/apitoken-go/apitoken/memstore"
)

// chBasic is the Basic challenge of the default realm.
const chBasic = `Basic realm="api", charset="UTF-8"`

// problemDetail returns the detail of a problem+json body.
func problemDetail(t *testing.T, rec *httptest.ResponseRecorder) string {
	t.Helper()
	var p struct{ Detail string }
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &p), rec.Body.String())
	return p.Detail
}

// TestChallengesOfferBasic checks that every 401 of a Guard that reads
// Basic credentials also challenges for Basic, as a WWW-Authenticate value
// of its own after the Bearer one, and that other answers and Guards
// without Basic do not.
func TestChallengesOfferBasic(t *testing.T) {
	fx := newMWFixture(t)
	newMW := func(cfg apitoken.MiddlewareConfig) func(http.Handler) http.Handler {
		mw, err := fx.iss.NewMiddleware(cfg)
		require.NoError(t, err)
		return mw
	}
	defaultMW := fx.iss.Middleware
	bearerOnly := newMW(apitoken.MiddlewareConfig{Extractor: apitoken.FromBearer("")})
	basicOnly := newMW(apitoken.MiddlewareConfig{Extractor: apitoken.FromBasic()})
	realm := newMW(apitoken.MiddlewareConfig{Realm: "prefs", Extractor: apitoken.Chain(apitoken.FromHeader("", ""), apitoken.FromBasic())})
	scoped := func(next http.Handler) http.Handler { return fx.iss.Middleware(apitoken.RequireScope("admin")(next)) }
	tests := []struct {
		name   string
		mw     func(http.Handler) http.Handler
		req    mwRequest
		status int
		want   []string
	}{
		{"default, no credentials", defaultMW, mwRequest{}, 401, []string{chBare, chBasic}},
		{"default, invalid token", defaultMW, bearer(fx.deleted, acctA), 401, []string{chInvalidToken, chBasic}},
		{"default, wrong Basic password", defaultMW, basic(acctA + ":" + fx.alien), 401, []string{chInvalidToken, chBasic}},
		{"default, another scheme", defaultMW, mwRequest{authz: []string{"Token " + fx.secret}}, 401, []string{chBare, chBasic}},
		{"default, malformed is 400 without Basic", defaultMW, mwRequest{authz: []string{"Bearer " + fx.secret}}, 400, []string{chInvalidRequest}},
		{"default, insufficient scope is 403 without Basic", scoped, bearer(fx.secret, acctA), 403, []string{`Bearer realm="api", error="insufficient_scope", scope="admin"`}},
		{"Bearer only, no Basic challenge", bearerOnly, mwRequest{}, 401, []string{chBare}},
		{"Basic only", basicOnly, mwRequest{}, 401, []string{chBare, chBasic}},
		{"custom realm", realm, bearer(fx.deleted, acctA), 401, []string{`Bearer realm="prefs"`, `Basic realm="prefs", charset="UTF-8"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			next := &whoami{}
			rec, ran := serve(tt.mw(next), next, tt.req.build(context.Background()))
			assert.False(t, ran)
			assert.Equal(t, tt.status, rec.Code)
			assert.Equal(t, tt.want, rec.Header().Values("WWW-Authenticate"))
		})
	}
}

// TestUnsupportedScheme checks the answer to an Authorization header of a
// scheme the middleware does not read: 401 naming the accepted forms,
// audited, ErrNoCredentials for adapters, and accepted once FromScheme
// reads it.
func TestUnsupportedScheme(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	iss := newIssuer(t, memstore.New(), apitoken.WithAuditLogger(logger))
	secret, _, err := iss.Issue(t.Context(), apitoken.IssueParams{AccountID: acctA})
	require.NoError(t, err)
	buf.Reset()

	for _, scheme := range []string{"token", "Token", "ApiKey", "Bearerx"} {
		t.Run("nok, default middleware, "+scheme, func(t *testing.T) {
			next := &whoami{}
			req := mwRequest{authz: []string{scheme + " " + secret}, account: []string{acctA}}
			rec, ran := serve(iss.Middleware(next), next, req.build(context.Background()))
			assert.False(t, ran)
			assertProblem(t, rec, http.StatusUnauthorized, chBare, secret, scheme+" ")
			assert.Equal(t, "The Authorization scheme is not one this API accepts; use Bearer (with X-Account-ID) or Basic.", problemDetail(t, rec))
			assert.Equal(t, []map[string]any{{"level": "WARN", "msg": "apitoken: request refused", "reason": "unsupported scheme"}}, auditRecords(t, &buf))
		})
	}

	t.Run("nok, a bare secret is not logged", func(t *testing.T) {
		next := &whoami{}
		rec, _ := serve(iss.Middleware(next), next, mwRequest{authz: []string{secret}}.build(context.Background()))
		assert.Equal(t, http.StatusUnauthorized, rec.Code)
		assert.NotContains(t, buf.String(), secret)
		assert.Len(t, auditRecords(t, &buf), 1)
	})

	t.Run("nok, adapters see ErrNoCredentials", func(t *testing.T) {
		r := mwRequest{authz: []string{"token " + secret}, account: []string{acctA}}.build(context.Background())
		_, err := iss.Authenticate(r)
		assert.ErrorIs(t, err, apitoken.ErrNoCredentials)
		buf.Reset()
	})

	t.Run("ok, FromScheme accepts token as a synonym of Bearer", func(t *testing.T) {
		mw, err := iss.NewMiddleware(apitoken.MiddlewareConfig{
			Extractor: apitoken.Chain(apitoken.FromBearer(""), apitoken.FromScheme("token", ""), apitoken.FromBasic()),
		})
		require.NoError(t, err)
		for _, v := range []string{"token " + secret, "Token " + secret, "Bearer " + secret} {
			next := &whoami{}
			rec, ran := serve(mw(next), next, mwRequest{authz: []string{v}, account: []string{acctA}}.build(context.Background()))
			assert.Equal(t, http.StatusOK, rec.Code, v[:6])
			assert.True(t, ran)
		}
		next := &whoami{}
		rec, _ := serve(mw(next), next, mwRequest{authz: []string{"ApiKey " + secret}, account: []string{acctA}}.build(context.Background()))
		assert.Equal(t, "The Authorization scheme is not one this API accepts; use Bearer (with X-Account-ID) or token (with X-Account-ID) or Basic.", problemDetail(t, rec))
		rec, _ = serve(mw(next), next, mwRequest{authz: []string{"token " + secret}}.build(context.Background()))
		assertProblem(t, rec, http.StatusBadRequest, chInvalidRequest, secret)
		rec, _ = serve(mw(next), next, mwRequest{authz: []string{"token a b"}, account: []string{acctA}}.build(context.Background()))
		assertProblem(t, rec, http.StatusBadRequest, chInvalidRequest)
		assert.Equal(t, "The Authorization header must be the word token, one space and the token.", problemDetail(t, rec))
		buf.Reset()
	})

	t.Run("nok, a header-only middleware says it does not read Authorization", func(t *testing.T) {
		mw, err := iss.NewMiddleware(apitoken.MiddlewareConfig{Extractor: apitoken.FromHeader("X-Key", "X-Tenant")})
		require.NoError(t, err)
		next := &whoami{}
		rec, _ := serve(mw(next), next, bearer(secret, acctA).build(context.Background()))
		assertProblem(t, rec, http.StatusUnauthorized, chBare, secret)
		assert.Equal(t, "This API does not read the Authorization header; send the token in the X-Key header (with X-Tenant).", problemDetail(t, rec))
		buf.Reset()
	})

	t.Run("ok, Optional lets another scheme through, unrecorded", func(t *testing.T) {
		mw, err := iss.NewMiddleware(apitoken.MiddlewareConfig{Optional: true})
		require.NoError(t, err)
		next := &whoami{}
		rec, ran := serve(mw(next), next, mwRequest{authz: []string{"Digest x"}}.build(context.Background()))
		assert.True(t, ran)
		assert.Contains(t, rec.Body.String(), `"ok":false`)
		assert.Empty(t, buf.String())
	})

	t.Run("ok, a custom extractor alone keeps the plain answer", func(t *testing.T) {
		mw, err := iss.NewMiddleware(apitoken.MiddlewareConfig{Extractor: func(*http.Request) (apitoken.Credentials, bool, error) {
			return apitoken.Credentials{}, false, nil
		}})
		require.NoError(t, err)
		next := &whoami{}
		rec, _ := serve(mw(next), next, mwRequest{authz: []string{"token x"}}.build(context.Background()))
		assertProblem(t, rec, http.StatusUnauthorized, chBare)
		assert.Equal(t, "The request carries no credentials.", problemDetail(t, rec))
		assert.Empty(t, buf.String())
	})
}

// TestMissingAccountNamesTheFix checks that a token without its account
// header is answered with the header's name, and the Basic form when the
// middleware reads it.
func TestMissingAccountNamesTheFix(t *testing.T) {
	fx := newMWFixture(t)
	for _, tt := range []struct {
		name   string
		ex     apitoken.Extractor
		req    mwRequest
		detail string
	}{
		{"default", nil, mwRequest{authz: []string{"Bearer " + fx.secret}},
			"The token must come with its account id in the X-Account-ID header, or both as Authorization: Basic base64(<account id>:<token>)."},
		{"custom header, no Basic", apitoken.FromBearer("X-Tenant"), mwRequest{authz: []string{"Bearer " + fx.secret}},
			"The token must come with its account id in the X-Tenant header."},
		{"FromHeader with Basic", apitoken.Chain(apitoken.FromHeader("", "X-Org"), apitoken.FromBasic()), mwRequest{header: http.Header{"X-Api-Key": {fx.secret}}},
			"The token must come with its account id in the X-Org header, or both as Authorization: Basic base64(<account id>:<token>)."},
	} {
		t.Run(tt.name, func(t *testing.T) {
			mw, err := fx.iss.NewMiddleware(apitoken.MiddlewareConfig{Extractor: tt.ex})
			require.NoError(t, err)
			next := &whoami{}
			rec, ran := serve(mw(next), next, tt.req.build(context.Background()))
			assert.False(t, ran)
			assertProblem(t, rec, http.StatusBadRequest, chInvalidRequest, fx.secret)
			assert.Equal(t, tt.detail, problemDetail(t, rec))
		})
	}
}

// TestExtractorConfiguration checks that NewGuard and NewMiddleware refuse
// an extractor of this package configured with a name no request can
// carry, also inside Chain.
func TestExtractorConfiguration(t *testing.T) {
	fx := newMWFixture(t)
	for _, tt := range []struct {
		name    string
		ex      apitoken.Extractor
		wantErr string
	}{
		{"FromBearer with a space in the header", apitoken.FromBearer("X Account"), `account header "X Account" is not a valid header name`},
		{"FromBearer with a colon, in a Chain", apitoken.Chain(apitoken.FromBasic(), apitoken.FromBearer("X-Account:")), `account header "X-Account:" is not a valid header name`},
		{"FromHeader with a bad secret header", apitoken.FromHeader("X Key", ""), `secret header "X Key" is not a valid header name`},
		{"FromHeader with a bad account header", apitoken.FromHeader("", "é"), `account header "é" is not a valid header name`},
		{"FromScheme without a scheme", apitoken.FromScheme("", ""), "FromScheme needs a scheme"},
		{"FromScheme with a space", apitoken.FromScheme("api key", ""), `FromScheme scheme "api key" is not a valid auth-scheme`},
		{"FromScheme Basic", apitoken.FromScheme("Basic", ""), "use FromBasic"},
		{"FromScheme with a bad header", apitoken.FromScheme("token", "X Account"), `account header "X Account" is not a valid header name`},
	} {
		t.Run("nok, "+tt.name, func(t *testing.T) {
			_, err := fx.iss.NewGuard(apitoken.MiddlewareConfig{Extractor: tt.ex})
			require.ErrorIs(t, err, apitoken.ErrInvalidInput)
			assert.Contains(t, err.Error(), tt.wantErr)
			_, err = fx.iss.NewMiddleware(apitoken.MiddlewareConfig{Extractor: tt.ex})
			require.ErrorIs(t, err, apitoken.ErrInvalidInput)
		})
	}
	t.Run("ok, valid names", func(t *testing.T) {
		for _, ex := range []apitoken.Extractor{apitoken.FromBearer("x-tenant_id"), apitoken.FromScheme("Bearer", ""), apitoken.FromScheme("ApiKey", "X-Org"), apitoken.FromHeader("X-Key", "X-Org")} {
			_, err := fx.iss.NewGuard(apitoken.MiddlewareConfig{Extractor: ex})
			assert.NoError(t, err)
		}
	})
	t.Run("ok, a custom extractor that panics without its app's context", func(t *testing.T) {
		type sessionKey struct{}
		custom := func(r *http.Request) (apitoken.Credentials, bool, error) {
			_ = r.Context().Value(sessionKey{}).(string) // panics without the session middleware
			return apitoken.Credentials{}, false, nil
		}
		g, err := fx.iss.NewGuard(apitoken.MiddlewareConfig{Extractor: apitoken.Chain(apitoken.FromBasic(), custom)})
		require.NoError(t, err)
		rec := httptest.NewRecorder()
		g.WriteError(rec, httptest.NewRequest("GET", "/", nil), apitoken.ErrNoCredentials)
		assert.Equal(t, []string{chBare, chBasic}, rec.Header().Values("WWW-Authenticate"), "Basic, read before the panic, is still offered")
	})
	t.Run("ok, FromScheme(Bearer) reads Bearer", func(t *testing.T) {
		c, found, err := apitoken.FromScheme("Bearer", "")(bearer(fx.secret, acctA).build(context.Background()))
		require.NoError(t, err)
		assert.True(t, found)
		assert.Equal(t, apitoken.Credentials{AccountID: acctA, Secret: fx.secret}, c)
	})
}
