package ginauth_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken-go/apitoken"
	"github.com/apitoken-go/apitoken/ginauth"
	"github.com/apitoken-go/apitoken/internal/logcheck"
	"github.com/apitoken-go/apitoken/memstore"
)

func TestMain(m *testing.M) { logcheck.Main(m) }

func init() { gin.SetMode(gin.TestMode) }

const (
	acctA = "acct_A"
	acctB = "acct_B"
)

// clock is a settable clock for apitoken.WithClock.
type clock struct{ ns atomic.Int64 }

func (c *clock) now() time.Time { return time.Unix(0, c.ns.Load()).UTC() }

// fixture is an Issuer over a memstore with a valid token of acctA (scopes
// read and write) and of acctB, a deleted and an expired token of acctA, and
// a well-formed secret of acctA that this store never saw.
type fixture struct {
	iss                     *apitoken.Issuer
	tok                     apitoken.Token // of secret
	secret, other           string
	deleted, expired, alien string
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	ctx := context.Background()
	clk := &clock{}
	clk.ns.Store(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC).UnixNano())
	iss, err := apitoken.NewIssuer(memstore.New(), apitoken.WithClock(clk.now))
	require.NoError(t, err)
	fx := &fixture{iss: iss}
	fx.secret, fx.tok, err = iss.Issue(ctx, apitoken.IssueParams{AccountID: acctA, Name: "ci", Scopes: []string{"read", "write"}})
	require.NoError(t, err)
	fx.other, _, err = iss.Issue(ctx, apitoken.IssueParams{AccountID: acctB})
	require.NoError(t, err)
	var del apitoken.Token
	fx.deleted, del, err = iss.Issue(ctx, apitoken.IssueParams{AccountID: acctA})
	require.NoError(t, err)
	require.NoError(t, iss.Delete(ctx, acctA, del.ID))
	fx.expired, _, err = iss.Issue(ctx, apitoken.IssueParams{AccountID: acctA, ExpiresAt: clk.now().Add(time.Hour)})
	require.NoError(t, err)
	clk.ns.Add(int64(2 * time.Hour))

	stranger, err := apitoken.NewIssuer(memstore.New())
	require.NoError(t, err)
	fx.alien, _, err = stranger.Issue(ctx, apitoken.IssueParams{AccountID: acctA})
	require.NoError(t, err)
	return fx
}

// secrets are every secret of the fixture, none of which may come back in a
// response or a log.
func (fx *fixture) secrets() []string {
	return []string{fx.secret, fx.other, fx.deleted, fx.expired, fx.alien}
}

// failStore is a Store whose Lookup fails, as a database that is down.
type failStore struct{ lookups atomic.Int64 }

var errDBDown = errors.New("db down")

func (s *failStore) Create(context.Context, apitoken.Record) error { return nil }
func (s *failStore) Lookup(context.Context, apitoken.Hash) (apitoken.Record, error) {
	s.lookups.Add(1)
	return apitoken.Record{}, errDBDown
}
func (s *failStore) List(context.Context, string) ([]apitoken.Token, error) { return nil, nil }
func (s *failStore) Delete(context.Context, string, string) error           { return nil }

// who is the protected handler: it answers with the token of the request
// context as JSON, and counts its calls.
type who struct{ calls atomic.Int64 }

// ServeHTTP is the net/http handler, reading apitoken.FromContext.
func (h *who) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.calls.Add(1)
	tok, ok := apitoken.FromContext(r.Context())
	writeWho(w, tok, ok)
}

// Gin is the Gin handler, reading ginauth.FromContext; it answers 500 if
// apitoken.FromContext of the request context disagrees.
func (h *who) Gin(c *gin.Context) {
	h.calls.Add(1)
	tok, ok := ginauth.FromContext(c)
	core, coreOK := apitoken.FromContext(c.Request.Context())
	if ok != coreOK || tok.ID != core.ID {
		c.Status(http.StatusInternalServerError)
		return
	}
	writeWho(c.Writer, tok, ok)
}

func writeWho(w http.ResponseWriter, tok apitoken.Token, ok bool) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"ok": ok, "id": tok.ID, "account": tok.AccountID, "scopes": tok.Scopes})
}

// stack is one app served on loopback: its handler and its access log.
type stack struct {
	srv    *httptest.Server
	who    *who
	access *logcheck.Buffer // Gin's access log; empty for net/http
}

// The routes of both apps: whoami behind the middleware only, read and
// admin behind RequireScope too, and wrapped and wrapped-admin, a net/http
// handler behind apitoken.RequireScope("write") or ("admin"), inside the Gin
// app with gin.WrapH.
const (
	pathWhoami       = "/api/v1/whoami"
	pathRead         = "/api/v1/read"
	pathAdmin        = "/api/v1/admin"
	pathWrapped      = "/api/v1/wrapped"
	pathWrappedAdmin = "/api/v1/wrapped-admin"
)

// ginStack serves a Gin engine behind mw with the routes, and Gin's access
// logger in front of it.
func ginStack(t testing.TB, mw gin.HandlerFunc) *stack {
	t.Helper()
	s := &stack{who: &who{}, access: &logcheck.Buffer{}}
	e := gin.New()
	e.Use(gin.LoggerWithConfig(gin.LoggerConfig{Output: s.access, SkipQueryString: true}), mw)
	e.GET(pathWhoami, s.who.Gin)
	e.OPTIONS(pathWhoami, s.who.Gin)
	e.GET(pathRead, ginauth.RequireScope("read"), s.who.Gin)
	admin := e.Group("/api/v1", ginauth.RequireScope("admin"))
	admin.GET("/admin", s.who.Gin)
	e.GET(pathWrapped, gin.WrapH(apitoken.RequireScope("write")(s.who)))
	e.GET(pathWrappedAdmin, gin.WrapH(apitoken.RequireScope("admin")(s.who)))
	s.srv = httptest.NewServer(e)
	t.Cleanup(s.srv.Close)
	return s
}

// stdStack serves the same routes with net/http behind mw.
func stdStack(t testing.TB, mw func(http.Handler) http.Handler) *stack {
	t.Helper()
	s := &stack{who: &who{}, access: &logcheck.Buffer{}}
	mux := http.NewServeMux()
	mux.Handle(pathWhoami, s.who)
	mux.Handle(pathRead, apitoken.RequireScope("read")(s.who))
	mux.Handle(pathAdmin, apitoken.RequireScope("admin")(s.who))
	mux.Handle(pathWrapped, apitoken.RequireScope("write")(s.who))
	mux.Handle(pathWrappedAdmin, apitoken.RequireScope("admin")(s.who))
	s.srv = httptest.NewServer(mw(mux))
	t.Cleanup(s.srv.Close)
	return s
}

// pair is the Gin and the net/http app of one configuration: nil means the
// zero-config forms ginauth.Middleware and Issuer.Middleware.
func pair(t testing.TB, iss *apitoken.Issuer, cfg *apitoken.MiddlewareConfig) (g, std *stack) {
	t.Helper()
	if cfg == nil {
		return ginStack(t, ginauth.Middleware(iss)), stdStack(t, iss.Middleware)
	}
	gmw, err := ginauth.New(iss, *cfg)
	require.NoError(t, err)
	smw, err := iss.NewMiddleware(*cfg)
	require.NoError(t, err)
	return ginStack(t, gmw), stdStack(t, smw)
}

// request describes a request: each Authorization and account header value
// is added in turn.
type request struct {
	method, path   string // "" means GET and pathWhoami
	authz, account []string
	header         http.Header
}

func bearer(secret, account string) request {
	return request{authz: []string{"Bearer " + secret}, account: []string{account}}
}

func basic(account, secret string) request {
	return request{authz: []string{"Basic " + base64.StdEncoding.EncodeToString([]byte(account+":"+secret))}}
}

func (q request) to(path string) request { q.path = path; return q }

// answer is what a response was, less its Date header.
type answer struct {
	status int
	header http.Header
	body   string
}

// send makes the request to s with a real client and reads the answer, and
// reports whether the handler ran.
func (s *stack) send(t testing.TB, q request) (answer, bool) {
	t.Helper()
	method, path := q.method, q.path
	if method == "" {
		method = http.MethodGet
	}
	if path == "" {
		path = pathWhoami
	}
	r, err := http.NewRequestWithContext(t.Context(), method, s.srv.URL+path, nil)
	require.NoError(t, err)
	for _, v := range q.authz {
		r.Header.Add("Authorization", v)
	}
	for _, v := range q.account {
		r.Header.Add("X-Account-ID", v)
	}
	for k, vs := range q.header {
		for _, v := range vs {
			r.Header.Add(k, v)
		}
	}
	before := s.who.calls.Load()
	resp, err := s.srv.Client().Do(r)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	resp.Header.Del("Date")
	return answer{resp.StatusCode, resp.Header, string(body)}, s.who.calls.Load() > before
}

// whoBody decodes the body that who writes.
func whoBody(t testing.TB, body string) (ok bool, id, account string) {
	t.Helper()
	var v struct {
		OK          bool
		ID, Account string
	}
	require.NoError(t, json.Unmarshal([]byte(body), &v), "body %q", body)
	return v.OK, v.ID, v.Account
}

// assertClean fails if any secret is in the answer.
func assertClean(t testing.TB, a answer, secrets []string) {
	t.Helper()
	var dump strings.Builder
	dump.WriteString(a.body)
	for k, vs := range a.header {
		dump.WriteString(k + ": " + strings.Join(vs, ", ") + "\n")
	}
	for _, s := range secrets {
		assert.NotContains(t, dump.String(), s, "a response must not echo a secret")
	}
}

// assertNoSecretLogged fails if a log holds a secret or a credential.
func assertNoSecretLogged(t testing.TB, logs string, secrets []string) {
	t.Helper()
	assert.Empty(t, logcheck.Leak(logs), "log holds a credential")
	for _, s := range secrets {
		assert.NotContains(t, logs, s, "log holds a secret")
	}
}

// textLogger is a slog.Logger writing text to buf at every level.
func textLogger(buf io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
