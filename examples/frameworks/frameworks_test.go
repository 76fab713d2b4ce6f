package frameworks_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken-go/apitoken"
	"github.com/apitoken-go/apitoken/internal/logcheck"
	"github.com/apitoken-go/apitoken/memstore"
)

// TestMain fails the run if a record logged through the default slog
// logger holds a secret or a credential.
func TestMain(m *testing.M) { logcheck.Main(m) }

const acct = "acct_42"

// Routes of both apps: whoami needs a verified token, admin the scope
// "admin" too.
const (
	pathWhoami = "/api/v1/whoami"
	pathAdmin  = "/api/v1/admin/report"
)

// whoami is the token of the request context, as the handlers answer it.
type whoami struct {
	OK      bool   `json:"ok"`
	ID      string `json:"id"`
	Account string `json:"account"`
}

// echoApp is an Echo app behind the core middleware, wrapped by
// echo.WrapMiddleware; admin is in a group behind apitoken.RequireScope.
func echoApp(iss *apitoken.Issuer, calls *atomic.Int64) http.Handler {
	h := func(c echo.Context) error {
		calls.Add(1)
		tok, ok := apitoken.FromContext(c.Request().Context())
		return c.JSON(http.StatusOK, whoami{ok, tok.ID, tok.AccountID})
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.Use(echo.WrapMiddleware(iss.Middleware))
	e.GET(pathWhoami, h)
	admin := e.Group("/api/v1/admin", echo.WrapMiddleware(apitoken.RequireScope("admin")))
	admin.GET("/report", h)
	return e
}

// chiApp is a chi router using the core middleware as it is, with admin in
// a route group behind apitoken.RequireScope.
func chiApp(iss *apitoken.Issuer, calls *atomic.Int64) http.Handler {
	h := func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		tok, ok := apitoken.FromContext(r.Context())
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(whoami{ok, tok.ID, tok.AccountID})
	}
	r := chi.NewRouter()
	r.Use(iss.Middleware)
	r.Get(pathWhoami, h)
	r.Group(func(r chi.Router) {
		r.Use(apitoken.RequireScope("admin"))
		r.Get(pathAdmin, h)
	})
	return r
}

// failStore is a Store whose Lookup fails, as a database that is down.
type failStore struct{}

var errDBDown = errors.New("db down")

func (failStore) Create(context.Context, apitoken.Record) error { return nil }
func (failStore) Lookup(context.Context, apitoken.Hash) (apitoken.Record, error) {
	return apitoken.Record{}, errDBDown
}
func (failStore) List(context.Context, string) ([]apitoken.Token, error) { return nil, nil }
func (failStore) Delete(context.Context, string, string) error           { return nil }

// issue returns an Issuer over st and a token of acct with the scope read.
func issue(t *testing.T, st apitoken.Store) (*apitoken.Issuer, string, apitoken.Token) {
	t.Helper()
	iss, err := apitoken.NewIssuer(st)
	require.NoError(t, err)
	secret, tok, err := iss.Issue(t.Context(), apitoken.IssueParams{AccountID: acct, Scopes: []string{"read"}})
	require.NoError(t, err)
	return iss, secret, tok
}

func TestFrameworks(t *testing.T) {
	frameworks := []struct {
		name string
		app  func(*apitoken.Issuer, *atomic.Int64) http.Handler
	}{
		{"echo", echoApp},
		{"chi", chiApp},
	}
	for _, fw := range frameworks {
		t.Run(fw.name, func(t *testing.T) {
			var calls atomic.Int64
			iss, secret, tok := issue(t, memstore.New())
			up := httptest.NewServer(fw.app(iss, &calls))
			t.Cleanup(up.Close)
			downIss, downSecret, _ := issue(t, failStore{})
			down := httptest.NewServer(fw.app(downIss, &calls))
			t.Cleanup(down.Close)

			tests := []struct {
				name      string
				srv       *httptest.Server
				path      string
				secret    string // "" sends no credentials
				status    int
				challenge string
			}{
				{"ok, valid token", up, pathWhoami, secret, 200, ""},
				{"nok, no credentials", up, pathWhoami, "", 401, `Bearer realm="api"`},
				{"nok, store down", down, pathWhoami, downSecret, 503, ""},
				{"nok, missing scope in the group", up, pathAdmin, secret, 403, `Bearer realm="api", error="insufficient_scope", scope="admin"`},
				{"nok, no credentials in the group", up, pathAdmin, "", 401, `Bearer realm="api"`},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					r, err := http.NewRequestWithContext(t.Context(), http.MethodGet, tt.srv.URL+tt.path, nil)
					require.NoError(t, err)
					if tt.secret != "" {
						r.Header.Set("Authorization", "Bearer "+tt.secret)
						r.Header.Set("X-Account-ID", acct)
					}
					before := calls.Load()
					resp, err := tt.srv.Client().Do(r)
					require.NoError(t, err)
					defer resp.Body.Close()
					body, err := io.ReadAll(resp.Body)
					require.NoError(t, err)

					assert.Equal(t, tt.status, resp.StatusCode, "body %q", body)
					assert.Equal(t, tt.challenge, resp.Header.Get("WWW-Authenticate"))
					assert.NotContains(t, string(body), secret, "no secret in a response")
					assert.NotContains(t, string(body), downSecret, "no secret in a response")
					if tt.status != http.StatusOK {
						assert.Equal(t, before, calls.Load(), "the handler must not run")
						assert.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"))
						assert.True(t, strings.HasPrefix(string(body), `{"type":"about:blank"`), "body %q", body)
						return
					}
					assert.Equal(t, before+1, calls.Load(), "the handler runs once")
					var got whoami
					require.NoError(t, json.Unmarshal(body, &got))
					assert.Equal(t, whoami{true, tok.ID, acct}, got, "the handler finds the token")
				})
			}
		})
	}
}
