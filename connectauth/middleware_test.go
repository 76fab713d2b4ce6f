package connectauth_test

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/apitoken-go/apitoken/connectauth"
)

// TestMiddleware calls every procedure kind with every kind of credentials,
// in every protocol, with real Connect clients over loopback.
func TestMiddleware(t *testing.T) {
	fx := newFixture(t)
	up := serve(t, fx.iss, nil, nil)
	downIss, downStore := failing(t, errDBDown)
	down := serve(t, downIss, nil, nil)

	twoSecrets := bearer(fx.secret, acctA)
	twoSecrets.authz = append(twoSecrets.authz, basic(acctA, fx.secret).authz...)
	twoAccounts := bearer(fx.secret, acctA)
	twoAccounts.account = append(twoAccounts.account, acctB)
	inQuery := bearer(fx.secret, acctA)
	tests := []struct {
		name   string
		srv    *server
		proc   string
		creds  creds
		code   connect.Code // 0: the call succeeds with want
		want   string
		msg    string // the error message, when not ""
		logged bool   // a failure to check is logged
	}{
		{name: "ok, Bearer", proc: procWho, creds: bearer(fx.secret, acctA), want: fx.tok.ID + " " + acctA + " read,write"},
		{name: "ok, Basic", proc: procWho, creds: basic(acctA, fx.secret), want: fx.tok.ID + " " + acctA + " read,write"},
		{name: "ok, the scope the procedure requires", proc: procRead, creds: bearer(fx.secret, acctA), want: fx.tok.ID + " " + acctA + " read,write"},
		{name: "ok, public procedure without credentials", proc: procPing, want: "none"},
		{name: "ok, public procedure: invalid credentials are not read", proc: procPing, creds: bearer(fx.alien, acctA), want: "none"},
		{name: "ok, public procedure: malformed credentials are not read", proc: procPing, creds: creds{authz: []string{"Bearer"}}, want: "none"},
		{name: "ok, public procedure with the store down", srv: down, proc: procPing, creds: bearer(fx.secret, acctA), want: "none"},
		{name: "nok, no credentials", proc: procWho, code: connect.CodeUnauthenticated, msg: msgUnauthenticated},
		{name: "nok, unknown token", proc: procWho, creds: bearer(fx.alien, acctA), code: connect.CodeUnauthenticated, msg: msgUnauthenticated},
		{name: "nok, not a token", proc: procWho, creds: bearer("not-a-token", acctA), code: connect.CodeUnauthenticated, msg: msgUnauthenticated},
		{name: "nok, expired token", proc: procWho, creds: bearer(fx.expired, acctA), code: connect.CodeUnauthenticated, msg: msgUnauthenticated},
		{name: "nok, deleted token", proc: procWho, creds: bearer(fx.deleted, acctA), code: connect.CodeUnauthenticated, msg: msgUnauthenticated},
		{name: "nok, token of another account", proc: procWho, creds: bearer(fx.other, acctA), code: connect.CodeUnauthenticated, msg: msgUnauthenticated},
		{name: "nok, Basic with a token of another account", proc: procWho, creds: basic(acctA, fx.other), code: connect.CodeUnauthenticated, msg: msgUnauthenticated},
		{name: "nok, unknown token on a scoped procedure", proc: procAdmin, creds: bearer(fx.alien, acctA), code: connect.CodeUnauthenticated, msg: msgUnauthenticated},
		{name: "nok, malformed: Bearer without account", proc: procWho, creds: creds{authz: []string{"Bearer " + fx.secret}},
			code: connect.CodeInvalidArgument, msg: "connectauth: malformed credentials: apitoken: invalid request: token without account"},
		{name: "nok, malformed: Basic that is not base64", proc: procWho, creds: creds{authz: []string{"Basic " + fx.secret + "!"}},
			code: connect.CodeInvalidArgument, msg: "connectauth: malformed credentials: apitoken: invalid request: malformed Basic credentials"},
		{name: "nok, two credentials: two Authorization headers", proc: procWho, creds: twoSecrets,
			code: connect.CodeInvalidArgument, msg: "connectauth: malformed credentials: apitoken: invalid request: more than one Authorization header"},
		{name: "nok, two account headers", proc: procWho, creds: twoAccounts,
			code: connect.CodeInvalidArgument, msg: "connectauth: malformed credentials: apitoken: invalid request: more than one account header"},
		{name: "nok, malformed: token in the query", proc: procWho + "?access_token=" + fx.secret, creds: inQuery,
			code: connect.CodeInvalidArgument, msg: "connectauth: malformed credentials: apitoken: invalid request: access token in the URL query"},
		{name: "nok, missing scope", proc: procAdmin, creds: bearer(fx.secret, acctA),
			code: connect.CodePermissionDenied, msg: "connectauth: the access token lacks a required scope: requires read admin"},
		{name: "nok, store down", srv: down, proc: procWho, creds: bearer(fx.secret, acctA), code: connect.CodeUnavailable, msg: msgUnavailable, logged: true},
		{name: "nok, store down, Basic", srv: down, proc: procRead, creds: basic(acctA, fx.secret), code: connect.CodeUnavailable, msg: msgUnavailable, logged: true},
	}
	for _, p := range protocols {
		for _, tt := range tests {
			t.Run(p.name+"/"+tt.name, func(t *testing.T) {
				s := tt.srv
				if s == nil {
					s = up
				}
				if p.name == "connect-get" && strings.Contains(tt.proc, "?") {
					t.Skip("a GET carries its message in the query")
				}
				lookups := downStore.lookups.Load()
				logs := len(s.logs.String())
				got, err, called := s.call(t.Context(), t, p, tt.proc, tt.creds)
				assertClean(t, err, fx.secrets())
				if tt.code == 0 {
					require.Nil(t, err)
					assert.True(t, called, "the handler runs")
					assert.Equal(t, tt.want, got)
					return
				}
				require.NotNil(t, err, "the call is refused")
				assert.False(t, called, "a refused call never reaches the handler")
				assert.Equal(t, tt.code, err.Code())
				assert.Equal(t, tt.msg, err.Message())
				newLogs := s.logs.String()[logs:]
				if tt.logged {
					assert.Equal(t, lookups+1, downStore.lookups.Load(), "the store was asked")
					assert.Equal(t, 1, strings.Count(newLogs, msgLogged), "logged once: %s", newLogs)
					assert.Contains(t, newLogs, errDBDown.Error())
				} else {
					assert.Empty(t, newLogs)
				}
				assertNoSecretLogged(t, newLogs, fx.secrets())
			})
		}
	}
}

// TestStream refuses a server stream, in every streaming protocol, before
// its handler runs.
func TestStream(t *testing.T) {
	fx := newFixture(t)
	up := serve(t, fx.iss, nil, nil)
	downIss, _ := failing(t, errDBDown)
	down := serve(t, downIss, nil, nil)
	tests := []struct {
		name  string
		srv   *server
		creds creds
		code  connect.Code
	}{
		{"ok, valid token", up, bearer(fx.secret, acctA), 0},
		{"nok, no credentials", up, creds{}, connect.CodeUnauthenticated},
		{"nok, deleted token", up, bearer(fx.deleted, acctA), connect.CodeUnauthenticated},
		{"nok, malformed", up, creds{authz: []string{"Bearer " + fx.secret}}, connect.CodeInvalidArgument},
		{"nok, store down", down, bearer(fx.secret, acctA), connect.CodeUnavailable},
	}
	for _, p := range protocols {
		if p.name == "connect-get" {
			continue // GET is for unary calls
		}
		for _, tt := range tests {
			t.Run(p.name+"/"+tt.name, func(t *testing.T) {
				client := connect.NewClient[wrapperspb.StringValue, wrapperspb.StringValue](tt.srv.client, tt.srv.srv.URL+procStream, p.opts...)
				req := connect.NewRequest(wrapperspb.String("hi"))
				tt.creds.set(req.Header())
				before := tt.srv.calls.Load()
				st, err := client.CallServerStream(t.Context(), req)
				require.NoError(t, err)
				defer st.Close()
				var got []string
				for st.Receive() {
					got = append(got, st.Msg().GetValue())
				}
				called := tt.srv.calls.Load() > before
				if tt.code == 0 {
					require.NoError(t, st.Err())
					assert.True(t, called)
					assert.Equal(t, []string{fx.tok.ID + " " + acctA + " read,write", fx.tok.ID + " " + acctA + " read,write"}, got)
					return
				}
				assert.Equal(t, tt.code, connect.CodeOf(st.Err()))
				assert.False(t, called, "a refused stream never reaches the handler")
				assert.Empty(t, got)
				var cerr *connect.Error
				require.ErrorAs(t, st.Err(), &cerr)
				assertClean(t, cerr, fx.secrets())
			})
		}
	}
}

// TestOneMessageForEveryUnauthenticatedCall checks that no caller can tell
// a missing token from an unknown, expired, deleted or foreign one, in any
// protocol.
func TestOneMessageForEveryUnauthenticatedCall(t *testing.T) {
	fx := newFixture(t)
	s := serve(t, fx.iss, nil, nil)
	for _, p := range protocols {
		t.Run("ok, "+p.name, func(t *testing.T) {
			seen := map[string]bool{}
			for _, c := range []creds{{}, bearer(fx.alien, acctA), bearer(fx.expired, acctA), bearer(fx.deleted, acctA), bearer(fx.other, acctA), basic(acctB, fx.secret)} {
				_, err, _ := s.call(t.Context(), t, p, procWho, c)
				require.NotNil(t, err)
				seen[err.Code().String()+": "+err.Message()+" "+strings.Join(metaKeys(err), ",")] = true
			}
			assert.Len(t, seen, 1, "one answer for all: %v", seen)
		})
	}
}

func metaKeys(err *connect.Error) []string {
	var keys []string
	for k := range err.Meta() {
		if k != "Date" && k != "Content-Length" {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

// TestPlainHTTP answers a request in no RPC protocol with the core's plain
// HTTP answer, and a Connect request over plain HTTP with Connect's JSON
// error and its HTTP status.
func TestPlainHTTP(t *testing.T) {
	fx := newFixture(t)
	up := serve(t, fx.iss, nil, nil)
	downIss, _ := failing(t, errDBDown)
	down := serve(t, downIss, nil, nil)
	strict := serve(t, fx.iss, append(options(nil), connectauth.WithHandlerOptions(connect.WithRequireConnectProtocolHeader())), nil)
	const problem = "application/problem+json"
	tests := []struct {
		name                 string
		srv                  *server
		method, path, ctype  string
		header               http.Header
		creds                creds
		status               int
		contentType, wwwAuth string
		body                 string // a substring of the body
	}{
		{name: "nok, text/plain POST without credentials", srv: up, method: http.MethodPost, path: procWho, ctype: "text/plain",
			status: 401, contentType: problem, wwwAuth: `Bearer realm="api"`, body: "The request carries no credentials."},
		{name: "nok, CORS preflight", srv: up, method: http.MethodOptions, path: procWho,
			header: http.Header{"Origin": {"https://app.example"}, "Access-Control-Request-Method": {"POST"}},
			status: 401, contentType: problem, wwwAuth: `Bearer realm="api"`},
		{name: "nok, plain request with an invalid token", srv: up, method: http.MethodPut, path: procWho, creds: bearer(fx.deleted, acctA),
			status: 401, contentType: problem, wwwAuth: `Bearer realm="api", error="invalid_token"`, body: "The access token is invalid."},
		{name: "nok, plain request with malformed credentials", srv: up, method: http.MethodDelete, path: procWho, creds: creds{authz: []string{"Bearer " + fx.secret}},
			status: 400, contentType: problem, wwwAuth: `Bearer realm="api", error="invalid_request"`, body: "account id"},
		{name: "nok, plain request without a scope", srv: up, method: http.MethodPut, path: procAdmin, creds: bearer(fx.secret, acctA),
			status: 403, contentType: problem, wwwAuth: `Bearer realm="api", error="insufficient_scope"`},
		{name: "nok, plain request with the store down", srv: down, method: http.MethodPut, path: procWho, creds: bearer(fx.secret, acctA),
			status: 503, contentType: problem, body: "could not be checked"},
		{name: "nok, Connect JSON POST without credentials: Connect's answer", srv: up, method: http.MethodPost, path: procWho, ctype: "application/json",
			status: 401, contentType: "application/json", body: `{"code":"unauthenticated","message":"` + msgUnauthenticated + `"}`},
		{name: "nok, GET without credentials: a Connect GET", srv: up, method: http.MethodGet, path: procWho,
			status: 401, contentType: "application/json", body: `"code":"unauthenticated"`},
		{name: "nok, Connect JSON POST with the store down", srv: down, method: http.MethodPost, path: procWho, ctype: "application/json", creds: bearer(fx.secret, acctA),
			status: 503, contentType: "application/json", body: `"code":"unavailable"`},
		{name: "nok, WithRequireConnectProtocolHeader: GET without connect=v1 is plain", srv: strict, method: http.MethodGet, path: procWho,
			status: 401, contentType: problem, wwwAuth: `Bearer realm="api"`},
		{name: "nok, WithRequireConnectProtocolHeader: GET with connect=v1 is Connect", srv: strict, method: http.MethodGet, path: procWho + "?connect=v1&encoding=json&message=%7B%7D",
			status: 401, contentType: "application/json", body: `"code":"unauthenticated"`},
		{name: "nok, WithRequireConnectProtocolHeader: JSON POST without the version header is plain", srv: strict, method: http.MethodPost, path: procWho, ctype: "application/json",
			status: 401, contentType: problem, wwwAuth: `Bearer realm="api"`},
		{name: "nok, WithRequireConnectProtocolHeader: JSON POST with the version header is Connect", srv: strict, method: http.MethodPost, path: procWho, ctype: "application/json",
			header: http.Header{"Connect-Protocol-Version": {"1"}}, status: 401, contentType: "application/json", body: `"code":"unauthenticated"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs := len(tt.srv.logs.String())
			var payload io.Reader
			if tt.method != http.MethodGet && tt.method != http.MethodOptions {
				payload = strings.NewReader("{}")
			}
			r, err := http.NewRequestWithContext(t.Context(), tt.method, tt.srv.srv.URL+tt.path, payload)
			require.NoError(t, err)
			if tt.ctype != "" {
				r.Header.Set("Content-Type", tt.ctype)
			}
			tt.creds.set(r.Header)
			for k, vs := range tt.header {
				r.Header[k] = vs
			}
			before := tt.srv.calls.Load()
			resp, err := tt.srv.client.Do(r)
			require.NoError(t, err)
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			assert.False(t, tt.srv.calls.Load() > before, "the handler never runs")
			assert.Equal(t, tt.status, resp.StatusCode)
			assert.Equal(t, tt.contentType, resp.Header.Get("Content-Type"))
			assert.Equal(t, tt.wwwAuth, resp.Header.Get("WWW-Authenticate"))
			assert.Contains(t, string(body), tt.body)
			if tt.contentType == problem {
				assert.Equal(t, "no-store", resp.Header.Get("Cache-Control"))
				var v map[string]any
				require.NoError(t, json.Unmarshal(body, &v), "a problem+json body: %s", body)
			}
			for _, s := range fx.secrets() {
				assert.NotContains(t, string(body), s)
			}
			newLogs := tt.srv.logs.String()[logs:]
			if tt.status == http.StatusServiceUnavailable {
				assert.Equal(t, 1, strings.Count(newLogs, msgLogged), "logged once, by connectauth: %s", newLogs)
			} else {
				assert.Empty(t, newLogs)
			}
			assertNoSecretLogged(t, newLogs, fx.secrets())
		})
	}
}

// TestPaths checks how a request's path names its procedure: the scopes of
// a procedure hold under a prefix, and a public procedure is public only by
// its exact, unescaped path.
func TestPaths(t *testing.T) {
	fx := newFixture(t)
	var private atomic.Int64
	s := pathServer(t, fx, &private)
	connectProto := protocols[0]
	tests := []struct {
		name  string
		path  string
		creds creds
		code  connect.Code
	}{
		{"ok, public procedure", procPing, creds{}, 0},
		{"ok, a prefixed procedure with a token", "/api" + procWho, bearer(fx.secret, acctA), 0},
		{"nok, a prefixed scoped procedure keeps its scopes", "/api" + procAdmin, bearer(fx.secret, acctA), connect.CodePermissionDenied},
		{"ok, a prefixed scoped procedure with its scope", "/api" + procRead, bearer(fx.secret, acctA), 0},
		{"nok, a prefixed public procedure needs a token", "/api" + procPing, creds{}, connect.CodeUnauthenticated},
		{"nok, an escaped public procedure needs a token", "/test.v1.Who/P%69ng", creds{}, connect.CodeUnauthenticated},
		{"nok, an escaped slash is not the public procedure", "/test.v1.Who%2FPing", creds{}, connect.CodeUnauthenticated},
		{"nok, a public procedure's path with a trailing slash needs a token", procPing + "/", creds{}, connect.CodeUnauthenticated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			privateBefore := private.Load()
			_, err, called := s.call(t.Context(), t, connectProto, tt.path, tt.creds)
			assert.Equal(t, privateBefore, private.Load(), "the private handler never runs")
			if tt.code == 0 {
				require.Nil(t, err)
				assert.True(t, called)
				return
			}
			require.NotNil(t, err)
			assert.Equal(t, tt.code, err.Code())
			assert.False(t, called)
		})
	}
}

// TestBodyNotRead checks that a refused request's body is never read: the
// middleware decides on the headers alone.
func TestBodyNotRead(t *testing.T) {
	fx := newFixture(t)
	var reads atomic.Int64
	s := serve(t, fx.iss, nil, func(_ *server, h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			r.Body = countingBody{r.Body, &reads}
			h.ServeHTTP(w, r)
		})
	})
	tests := []struct {
		name  string
		creds creds
		read  bool
	}{
		{"ok, a verified call's body is read by the handler", bearer(fx.secret, acctA), true},
		{"nok, an unauthenticated call's body is not read", creds{}, false},
		{"nok, a malformed call's body is not read", creds{authz: []string{"Bearer " + fx.secret}}, false},
		{"nok, a call without a scope: its body is not read", bearer(fx.secret, acctA), false},
	}
	for _, p := range protocols {
		if p.name == "connect-get" {
			continue // no body
		}
		for _, tt := range tests {
			t.Run(p.name+"/"+tt.name, func(t *testing.T) {
				proc := procWho
				if strings.Contains(tt.name, "scope") {
					proc = procAdmin
				}
				before := reads.Load()
				_, err, called := s.call(t.Context(), t, p, proc, tt.creds)
				assert.Equal(t, tt.read, err == nil && called)
				assert.Equal(t, tt.read, reads.Load() > before)
			})
		}
	}
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b countingBody) Read(p []byte) (int, error) {
	b.n.Add(1)
	return b.ReadCloser.Read(p)
}
