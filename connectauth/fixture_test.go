package connectauth_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/apitoken-go/apitoken"
	"github.com/apitoken-go/apitoken/connectauth"
	"github.com/apitoken-go/apitoken/internal/logcheck"
	"github.com/apitoken-go/apitoken/memstore"
)

const (
	acctA = "acct_A"
	acctB = "acct_B"
)

// The procedures of the test service: whoami needs a verified token, read
// the scope read (which the valid token has), admin the scope admin (which
// no token has), ping is public, and stream is a server stream that needs a
// verified token.
const (
	procWho    = "/test.v1.Who/Whoami"
	procRead   = "/test.v1.Who/Read"
	procAdmin  = "/test.v1.Who/Admin"
	procPing   = "/test.v1.Who/Ping"
	procStream = "/test.v1.Who/Stream"
)

// The Connect errors' messages, as clients see them.
const (
	msgUnauthenticated = "connectauth: missing or invalid credentials"
	msgUnavailable     = "connectauth: the credentials could not be checked; try again later"
	msgLogged          = "connectauth: credentials could not be checked"
)

// options are the middleware's options on every test server.
func options(log *slog.Logger) []connectauth.Option {
	return []connectauth.Option{
		connectauth.WithProcedureScopes(map[string][]string{procRead: {"read"}, procAdmin: {"read", "admin"}}),
		connectauth.WithPublicProcedures(procPing),
		connectauth.WithLogger(log),
	}
}

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
	t.Cleanup(func() { _ = iss.Close() })
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

// failStore is a Store whose Lookup fails: with err, or, when err is nil,
// with the error of the context once it ends. It records whether the
// context of its last Lookup had a deadline, and how far.
type failStore struct {
	err      error
	lookups  atomic.Int64
	deadline atomic.Int64 // time.Until(deadline) of the last Lookup; -1: none
}

var errDBDown = errors.New("db down")

func (s *failStore) Create(context.Context, apitoken.Record) error { return nil }
func (s *failStore) Lookup(ctx context.Context, _ apitoken.Hash) (apitoken.Record, error) {
	s.lookups.Add(1)
	s.deadline.Store(-1)
	if d, ok := ctx.Deadline(); ok {
		s.deadline.Store(int64(time.Until(d)))
	}
	if s.err != nil {
		return apitoken.Record{}, s.err
	}
	select {
	case <-ctx.Done():
		return apitoken.Record{}, ctx.Err()
	case <-time.After(10 * time.Second):
		return apitoken.Record{}, errors.New("test store: the context never ended")
	}
}
func (s *failStore) List(context.Context, string) ([]apitoken.Token, error) { return nil, nil }
func (s *failStore) Delete(context.Context, string, string) error           { return nil }

// failing returns an Issuer over a failStore of err.
func failing(t testing.TB, err error) (*apitoken.Issuer, *failStore) {
	t.Helper()
	s := &failStore{err: err}
	iss, e := apitoken.NewIssuer(s, apitoken.WithLastUseInterval(0))
	require.NoError(t, e)
	t.Cleanup(func() { _ = iss.Close() })
	return iss, s
}

// server is the test service served on loopback, over HTTP/1.1 and
// unencrypted HTTP/2 (h2c, which gRPC needs), behind a middleware.
type server struct {
	srv    *httptest.Server
	client *http.Client     // speaks h2c only
	calls  atomic.Int64     // of every handler
	logs   *logcheck.Buffer // the middleware's logger (WithLogger)
}

// serve serves the test service behind the middleware of iss with opts, or
// with options(logger) when opts is nil. wrap, when not nil, wraps the
// middleware: it is given the middleware with the service behind it.
func serve(t testing.TB, iss *apitoken.Issuer, opts []connectauth.Option, wrap func(s *server, mux http.Handler) http.Handler) *server {
	t.Helper()
	s := &server{logs: &logcheck.Buffer{}}
	if opts == nil {
		opts = options(slog.New(slog.NewJSONHandler(s.logs, nil)))
	}
	mw, err := connectauth.NewMiddleware(iss, opts...)
	require.NoError(t, err)
	h := mw(s.mux())
	if wrap != nil {
		h = wrap(s, h)
	}
	return s.start(t, h)
}

// start serves h on loopback, over HTTP/1.1 and h2c, with a client that
// speaks h2c.
func (s *server) start(t testing.TB, h http.Handler) *server {
	t.Helper()
	s.srv = httptest.NewUnstartedServer(h)
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	s.srv.Config.Protocols = &p
	s.srv.Start()
	t.Cleanup(s.srv.Close)
	var cp http.Protocols
	cp.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: &cp}
	t.Cleanup(tr.CloseIdleConnections)
	s.client = &http.Client{Transport: tr}
	return s
}

// mux is the test service: each unary procedure answers with who(ctx), the
// stream with it twice.
func (s *server) mux() *http.ServeMux {
	mux := http.NewServeMux()
	unary := func(ctx context.Context, _ *connect.Request[wrapperspb.StringValue]) (*connect.Response[wrapperspb.StringValue], error) {
		s.calls.Add(1)
		return connect.NewResponse(wrapperspb.String(who(ctx))), nil
	}
	for _, proc := range []string{procWho, procRead, procAdmin, procPing} {
		mux.Handle(proc, connect.NewUnaryHandler(proc, unary, connect.WithIdempotency(connect.IdempotencyNoSideEffects)))
	}
	mux.Handle(procStream, connect.NewServerStreamHandler(procStream,
		func(ctx context.Context, _ *connect.Request[wrapperspb.StringValue], st *connect.ServerStream[wrapperspb.StringValue]) error {
			s.calls.Add(1)
			for range 2 {
				if err := st.Send(wrapperspb.String(who(ctx))); err != nil {
					return err
				}
			}
			return nil
		}))
	return mux
}

// who describes the token of ctx: "none", or its id, account and scopes.
func who(ctx context.Context) string {
	tok, ok := apitoken.FromContext(ctx)
	if !ok {
		return "none"
	}
	return fmt.Sprintf("%s %s %s", tok.ID, tok.AccountID, strings.Join(tok.Scopes, ","))
}

// A protocol is how a client calls: Connect (POST or GET), gRPC or
// gRPC-Web.
type protocol struct {
	name string
	opts []connect.ClientOption
}

var protocols = []protocol{
	{"connect", nil},
	{"connect-get", []connect.ClientOption{connect.WithHTTPGet(), connect.WithIdempotency(connect.IdempotencyNoSideEffects)}},
	{"grpc", []connect.ClientOption{connect.WithGRPC()}},
	{"grpcweb", []connect.ClientOption{connect.WithGRPCWeb()}},
}

// creds are the credential headers of a call: each value is added in turn.
type creds struct {
	authz, account []string
	header         http.Header
}

func bearer(secret, account string) creds {
	return creds{authz: []string{"Bearer " + secret}, account: []string{account}}
}

func basic(account, secret string) creds {
	return creds{authz: []string{"Basic " + base64.StdEncoding.EncodeToString([]byte(account+":"+secret))}}
}

func (c creds) set(h http.Header) {
	for _, v := range c.authz {
		h.Add("Authorization", v)
	}
	for _, v := range c.account {
		h.Add("X-Account-ID", v)
	}
	for k, vs := range c.header {
		for _, v := range vs {
			h.Add(k, v)
		}
	}
}

// call makes a unary call of proc to s in protocol p, and returns the
// answer or the Connect error, and whether a handler ran.
func (s *server) call(ctx context.Context, t testing.TB, p protocol, proc string, c creds) (string, *connect.Error, bool) {
	t.Helper()
	client := connect.NewClient[wrapperspb.StringValue, wrapperspb.StringValue](s.client, s.srv.URL+proc, p.opts...)
	req := connect.NewRequest(wrapperspb.String("hi"))
	c.set(req.Header())
	before := s.calls.Load()
	resp, err := client.CallUnary(ctx, req)
	called := s.calls.Load() > before
	if err != nil {
		var cerr *connect.Error
		require.ErrorAs(t, err, &cerr)
		return "", cerr, called
	}
	return resp.Msg.GetValue(), nil, called
}

// assertClean fails if any secret is in the Connect error: its message,
// details or metadata.
func assertClean(t testing.TB, err *connect.Error, secrets []string) {
	t.Helper()
	if err == nil {
		return
	}
	var dump strings.Builder
	dump.WriteString(err.Error())
	for _, d := range err.Details() {
		dump.WriteString(d.Type() + string(d.Bytes()))
	}
	for k, vs := range err.Meta() {
		dump.WriteString(k + ": " + strings.Join(vs, ", ") + "\n")
	}
	for _, s := range secrets {
		assert.NotContains(t, dump.String(), s, "an error must not echo a secret")
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

// pathServer serves the test service under an outer mux, all of it behind
// the middleware: the service at its own paths and under /api, and a
// private catch-all, counted in private, for every other path.
func pathServer(t testing.TB, fx *fixture, private *atomic.Int64) *server {
	t.Helper()
	s := &server{logs: &logcheck.Buffer{}}
	mw, err := connectauth.NewMiddleware(fx.iss, options(slog.New(slog.NewJSONHandler(s.logs, nil)))...)
	require.NoError(t, err)
	svc := s.mux()
	outer := http.NewServeMux()
	outer.Handle("/api/", http.StripPrefix("/api", svc))
	outer.Handle("/test.v1.Who/", svc)
	outer.HandleFunc("/{rest...}", func(w http.ResponseWriter, _ *http.Request) {
		private.Add(1)
		_, _ = w.Write([]byte("private"))
	})
	return s.start(t, mw(outer))
}
