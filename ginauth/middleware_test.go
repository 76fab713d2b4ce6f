package ginauth_test

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken-go/apitoken"
	"github.com/apitoken-go/apitoken/ginauth"
)

// challenges are the WWW-Authenticate values of the default ErrorHandler for
// a realm.
type challenges struct{ bare, invalidToken, invalidRequest, scope string }

func challengesOf(realm string) challenges {
	bare := `Bearer realm="` + realm + `"`
	return challenges{
		bare:           bare,
		invalidToken:   bare + `, error="invalid_token"`,
		invalidRequest: bare + `, error="invalid_request"`,
		scope:          bare + `, error="insufficient_scope"`,
	}
}

// TestMiddleware sends each request to a Gin app behind ginauth and to the
// same app in net/http behind the core middleware, on loopback, and wants
// the expected status, challenge and handler call from both, and answers
// that are the same byte for byte: status, every header and body.
func TestMiddleware(t *testing.T) {
	fx := newFixture(t)
	s := fx.secret
	configs := []struct {
		name  string
		cfg   *apitoken.MiddlewareConfig
		realm string
	}{
		{"Middleware", nil, "api"},
		{"New, realm billing", &apitoken.MiddlewareConfig{Realm: "billing"}, "billing"},
	}
	for _, c := range configs {
		t.Run(c.name, func(t *testing.T) {
			ch := challengesOf(c.realm)
			g, std := pair(t, fx.iss, c.cfg)
			tests := []struct {
				name      string
				req       request
				status    int
				challenge string
				called    bool
			}{
				{"ok, Bearer with account header", bearer(s, acctA), 200, "", true},
				{"ok, Basic", basic(acctA, s), 200, "", true},
				{"ok, scope read", bearer(s, acctA).to(pathRead), 200, "", true},
				{"ok, net/http handler behind apitoken.RequireScope", bearer(s, acctA).to(pathWrapped), 200, "", true},
				{"nok, no credentials", request{}, 401, ch.bare, false},
				{"nok, no credentials before RequireScope", request{path: pathAdmin}, 401, ch.bare, false},
				{"nok, invalid token", bearer(fx.alien, acctA), 401, ch.invalidToken, false},
				{"nok, expired", bearer(fx.expired, acctA), 401, ch.invalidToken, false},
				{"nok, deleted", bearer(fx.deleted, acctA), 401, ch.invalidToken, false},
				{"nok, other account", bearer(fx.other, acctA), 401, ch.invalidToken, false},
				{"nok, other account in Basic", basic(acctA, fx.other), 401, ch.invalidToken, false},
				{"nok, malformed Bearer", request{authz: []string{"Bearer"}, account: []string{acctA}}, 400, ch.invalidRequest, false},
				{"nok, malformed, no account header", request{authz: []string{"Bearer " + s}}, 400, ch.invalidRequest, false},
				{"nok, two credentials", request{authz: []string{"Bearer " + s, basic(acctA, s).authz[0]}, account: []string{acctA}}, 400, ch.invalidRequest, false},
				{"nok, two account headers", request{authz: []string{"Bearer " + s}, account: []string{acctA, acctB}}, 400, ch.invalidRequest, false},
				{"nok, token in the query", request{path: pathWhoami + "?access_token=" + s}, 400, ch.invalidRequest, false},
				{"nok, missing scope", bearer(s, acctA).to(pathAdmin), 403, ch.scope + `, scope="admin"`, false},
				{"nok, missing scope in a wrapped net/http handler", bearer(s, acctA).to(pathWrappedAdmin), 403, ch.scope + `, scope="admin"`, false},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					got, called := g.send(t, tt.req)
					want, stdCalled := std.send(t, tt.req)

					assert.Equal(t, tt.status, got.status, "status; body %q", got.body)
					assert.Equal(t, tt.challenge, got.header.Get("WWW-Authenticate"), "challenge")
					assert.Equal(t, tt.called, called, "handler called")
					assert.Equal(t, want, got, "the Gin answer must be the net/http answer")
					assert.Equal(t, stdCalled, called)
					assertClean(t, got, fx.secrets())
					if tt.called {
						ok, id, account := whoBody(t, got.body)
						assert.True(t, ok, "the handler must find the token")
						assert.Equal(t, fx.tok.ID, id)
						assert.Equal(t, acctA, account)
					} else {
						assert.Equal(t, "application/problem+json", got.header.Get("Content-Type"))
						assert.Equal(t, "no-store", got.header.Get("Cache-Control"))
					}
				})
			}
			assertNoSecretLogged(t, g.access.String(), fx.secrets())
			assert.Contains(t, g.access.String(), pathWhoami, "the access log ran")
		})
	}
}

// TestMiddlewareStoreDown wants 503 from a store that fails, the handler not
// called, the failure logged without the secret, as net/http does.
func TestMiddlewareStoreDown(t *testing.T) {
	st := &failStore{}
	iss, err := apitoken.NewIssuer(st)
	require.NoError(t, err)
	secret, _, err := iss.Issue(t.Context(), apitoken.IssueParams{AccountID: acctA})
	require.NoError(t, err)

	var logs bytes.Buffer
	cfg := apitoken.MiddlewareConfig{Logger: textLogger(&logs)}
	g, std := pair(t, iss, &cfg)
	tests := []struct {
		name string
		req  request
	}{
		{"nok, Bearer", bearer(secret, acctA)},
		{"nok, Basic", basic(acctA, secret)},
		{"nok, Bearer before RequireScope", bearer(secret, acctA).to(pathAdmin)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs.Reset()
			before := st.lookups.Load()
			got, called := g.send(t, tt.req)
			require.Greater(t, st.lookups.Load(), before, "the store was asked")

			assert.Equal(t, http.StatusServiceUnavailable, got.status)
			assert.False(t, called, "the handler must not run on a store failure")
			assert.Empty(t, got.header.Get("WWW-Authenticate"), "an outage is no challenge")
			assert.Contains(t, logs.String(), "apitoken: credentials could not be checked")
			assert.Contains(t, logs.String(), errDBDown.Error())
			assert.Equal(t, 1, strings.Count(logs.String(), "\n"), "one record per failure")
			assertNoSecretLogged(t, logs.String(), []string{secret})
			assertClean(t, got, []string{secret})

			want, _ := std.send(t, tt.req)
			assert.Equal(t, want, got, "the Gin answer must be the net/http answer")
		})
	}
}

// TestMiddlewareOptional lets a request without credentials through with no
// token, and still refuses bad credentials, as net/http does.
func TestMiddlewareOptional(t *testing.T) {
	fx := newFixture(t)
	ch := challengesOf("api")
	g, std := pair(t, fx.iss, &apitoken.MiddlewareConfig{Optional: true})
	tests := []struct {
		name      string
		req       request
		status    int
		challenge string
		called    bool
		token     bool
	}{
		{"ok, no credentials, no token", request{}, 200, "", true, false},
		{"ok, valid, the token", bearer(fx.secret, acctA), 200, "", true, true},
		{"nok, invalid token", bearer(fx.alien, acctA), 401, ch.invalidToken, false, false},
		{"nok, expired", bearer(fx.expired, acctA), 401, ch.invalidToken, false, false},
		{"nok, malformed", request{authz: []string{"Bearer"}, account: []string{acctA}}, 400, ch.invalidRequest, false, false},
		{"nok, no credentials before RequireScope", request{path: pathAdmin}, 401, ch.bare, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, called := g.send(t, tt.req)
			assert.Equal(t, tt.status, got.status, "body %q", got.body)
			assert.Equal(t, tt.challenge, got.header.Get("WWW-Authenticate"))
			assert.Equal(t, tt.called, called)
			if tt.called {
				ok, id, _ := whoBody(t, got.body)
				assert.Equal(t, tt.token, ok, "token in the context")
				assert.Equal(t, tt.token, id == fx.tok.ID)
			}
			want, _ := std.send(t, tt.req)
			assert.Equal(t, want, got, "the Gin answer must be the net/http answer")
			assertClean(t, got, fx.secrets())
		})
	}
}

// TestMiddlewareSkip lets a CORS preflight through untouched, its
// credentials unread, as net/http does.
func TestMiddlewareSkip(t *testing.T) {
	fx := newFixture(t)
	ch := challengesOf("api")
	preflight := func(r *http.Request) bool {
		return r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""
	}
	g, std := pair(t, fx.iss, &apitoken.MiddlewareConfig{Skip: preflight})
	acrm := http.Header{"Access-Control-Request-Method": {"DELETE"}}
	tests := []struct {
		name      string
		req       request
		status    int
		challenge string
		called    bool
	}{
		{"ok, preflight without credentials", request{method: http.MethodOptions, header: acrm}, 200, "", true},
		{"ok, preflight with an invalid token, unread", request{method: http.MethodOptions, authz: []string{"Bearer " + fx.alien}, account: []string{acctA}, header: acrm}, 200, "", true},
		{"ok, preflight with malformed credentials, unread", request{method: http.MethodOptions, authz: []string{"Bearer"}, header: acrm}, 200, "", true},
		{"nok, OPTIONS that is no preflight", request{method: http.MethodOptions}, 401, ch.bare, false},
		{"nok, GET without credentials", request{header: acrm}, 401, ch.bare, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, called := g.send(t, tt.req)
			assert.Equal(t, tt.status, got.status, "body %q", got.body)
			assert.Equal(t, tt.challenge, got.header.Get("WWW-Authenticate"))
			assert.Equal(t, tt.called, called)
			if tt.called {
				ok, _, _ := whoBody(t, got.body)
				assert.False(t, ok, "a skipped request has no token")
			}
			want, _ := std.send(t, tt.req)
			assert.Equal(t, want, got, "the Gin answer must be the net/http answer")
		})
	}
}

// TestMiddlewareNilIssuer fails closed: 503 and no handler, as net/http.
func TestMiddlewareNilIssuer(t *testing.T) {
	fx := newFixture(t)
	g, std := ginStack(t, ginauth.Middleware(nil)), stdStack(t, (*apitoken.Issuer)(nil).Middleware)
	got, called := g.send(t, bearer(fx.secret, acctA))
	assert.Equal(t, http.StatusServiceUnavailable, got.status)
	assert.False(t, called)
	want, _ := std.send(t, bearer(fx.secret, acctA))
	assert.Equal(t, want, got)
}

// TestNew refuses what NewMiddleware refuses.
func TestNew(t *testing.T) {
	fx := newFixture(t)
	tests := []struct {
		name string
		iss  *apitoken.Issuer
		cfg  apitoken.MiddlewareConfig
		ok   bool
	}{
		{"ok, zero config", fx.iss, apitoken.MiddlewareConfig{}, true},
		{"ok, realm", fx.iss, apitoken.MiddlewareConfig{Realm: "billing"}, true},
		{"nok, nil Issuer", nil, apitoken.MiddlewareConfig{}, false},
		{"nok, realm with a quote", fx.iss, apitoken.MiddlewareConfig{Realm: `a"b`}, false},
		{"nok, realm too long", fx.iss, apitoken.MiddlewareConfig{Realm: strings.Repeat("r", 65)}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mw, err := ginauth.New(tt.iss, tt.cfg)
			if tt.ok {
				require.NoError(t, err)
				assert.NotNil(t, mw)
				return
			}
			require.ErrorIs(t, err, apitoken.ErrInvalidInput)
			assert.Nil(t, mw)
			assert.True(t, strings.HasPrefix(err.Error(), "apitoken: "), "message %q", err)
		})
	}
}
