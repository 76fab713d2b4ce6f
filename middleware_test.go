package apitoken_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken-go/apitoken"
	"github.com/apitoken-go/apitoken/memstore"
)

// Challenges of the default realm.
const (
	chBare             = `Bearer realm="api"`
	chInvalidToken     = `Bearer realm="api", error="invalid_token"`
	chInvalidRequest   = `Bearer realm="api", error="invalid_request"`
	problemContentType = "application/problem+json"
)

// mwClock is a settable clock for apitoken.WithClock.
type mwClock struct{ ns atomic.Int64 }

func newMWClock() *mwClock {
	c := &mwClock{}
	c.ns.Store(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC).UnixNano())
	return c
}

func (c *mwClock) now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *mwClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// mwFixture is an Issuer over a memstore holding a valid token of acctA and
// acctB, a deleted token and an expired one of acctA, and a well-formed
// secret that this store never saw.
type mwFixture struct {
	iss                     *apitoken.Issuer
	clock                   *mwClock
	tok                     apitoken.Token
	secret                  string // acctA's valid token, scopes read and write
	otherSecret             string // acctB's valid token
	deleted, expired, alien string // all of acctA except alien
}

const (
	acctA = "acct_A"
	acctB = "acct_B"
)

func newMWFixture(t *testing.T) *mwFixture {
	t.Helper()
	ctx := context.Background()
	fx := &mwFixture{clock: newMWClock()}
	iss, err := apitoken.NewIssuer(memstore.New(), apitoken.WithClock(fx.clock.now))
	require.NoError(t, err)
	fx.iss = iss
	fx.secret, fx.tok, err = iss.Issue(ctx, apitoken.IssueParams{AccountID: acctA, Name: "ci", Scopes: []string{"read", "write"}})
	require.NoError(t, err)
	fx.otherSecret, _, err = iss.Issue(ctx, apitoken.IssueParams{AccountID: acctB})
	require.NoError(t, err)
	var del apitoken.Token
	fx.deleted, del, err = iss.Issue(ctx, apitoken.IssueParams{AccountID: acctA})
	require.NoError(t, err)
	require.NoError(t, iss.Delete(ctx, acctA, del.ID))
	fx.expired, _, err = iss.Issue(ctx, apitoken.IssueParams{AccountID: acctA, ExpiresAt: fx.clock.now().Add(time.Hour)})
	require.NoError(t, err)
	fx.clock.advance(2 * time.Hour)

	other, err := apitoken.NewIssuer(memstore.New())
	require.NoError(t, err)
	fx.alien, _, err = other.Issue(ctx, apitoken.IssueParams{AccountID: acctA})
	require.NoError(t, err)
	return fx
}

// mwRequest describes a request: each Authorization and account header value
// is added in turn (nil: no such header).
type mwRequest struct {
	authz, account []string
	query          string
	header         http.Header // more headers
}

func (q mwRequest) build(ctx context.Context) *http.Request {
	r := httptest.NewRequestWithContext(ctx, http.MethodGet, "/api/v1/whoami"+q.query, nil)
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
	return r
}

// bearer is a Bearer request with the account header.
func bearer(secret, account string) mwRequest {
	return mwRequest{authz: []string{"Bearer " + secret}, account: []string{account}}
}

func basicValue(userPass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(userPass))
}

func basic(userPass string) mwRequest {
	return mwRequest{authz: []string{basicValue(userPass)}}
}

// whoami writes the token from the context as JSON, and counts its calls.
type whoami struct{ calls atomic.Int64 }

func (h *whoami) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.calls.Add(1)
	tok, ok := apitoken.FromContext(r.Context())
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"ok": ok, "id": tok.ID, "account": tok.AccountID, "scopes": tok.Scopes})
}

// serve runs one request through h and reports whether next ran.
func serve(h http.Handler, next *whoami, r *http.Request) (*httptest.ResponseRecorder, bool) {
	before := next.calls.Load()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec, next.calls.Load() > before
}

// Variations of a secret that keep it a b64token, so that only Verify can
// refuse them.
func flipCase(s string) string {
	b := []byte(s)
	for i := strings.IndexByte(s, '_') + 1; i < len(b); i++ {
		if c := b[i]; 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' {
			b[i] ^= 0x20
			return string(b)
		}
	}
	panic("no letter in secret")
}

func changeChecksum(s string) string {
	last := s[len(s)-1]
	if last == 'a' {
		return s[:len(s)-1] + "b"
	}
	return s[:len(s)-1] + "a"
}

// assertProblem checks a refusal by the default ErrorHandler: status, exact
// challenge, problem+json body with no-store, and nothing of the input in
// the body.
func assertProblem(t *testing.T, rec *httptest.ResponseRecorder, status int, challenge string, secrets ...string) {
	t.Helper()
	assert.Equal(t, status, rec.Code, "status")
	assert.Equal(t, challenge, rec.Header().Get("WWW-Authenticate"), "challenge")
	// A Bearer challenge at most, and a Basic one after it on a 401 only.
	if vals := rec.Header().Values("WWW-Authenticate"); len(vals) > 1 {
		assert.Len(t, vals, 2, "one Bearer and one Basic challenge at most")
		assert.Equal(t, http.StatusUnauthorized, status, "a Basic challenge on a 401 only")
		assert.Regexp(t, `^Basic realm="[^"]*", charset="UTF-8"$`, vals[1])
	} else {
		assert.Len(t, vals, min(len(challenge), 1), "one challenge at most")
	}
	assert.Equal(t, problemContentType, rec.Header().Get("Content-Type"))
	assert.Equal(t, "no-store", rec.Header().Get("Cache-Control"), "every failure must carry Cache-Control: no-store")
	body := rec.Body.String()
	assert.Less(t, len(body), 300, "a refusal body is short and constant")
	var p struct {
		Type, Title, Detail string
		Status              int
	}
	if assert.NoError(t, json.Unmarshal(rec.Body.Bytes(), &p), "body %q", body) {
		assert.Equal(t, "about:blank", p.Type)
		assert.Equal(t, http.StatusText(status), p.Title)
		assert.Equal(t, status, p.Status)
		assert.NotEmpty(t, p.Detail)
	}
	for _, s := range secrets {
		assert.NotContains(t, body, s, "the body must not echo input")
	}
}

// echoes lists the parts of a request that must never come back in a
// response: values long enough not to be words of the constant bodies.
func (q mwRequest) echoes() []string {
	var out []string
	add := func(s string) {
		if len(s) >= 8 {
			out = append(out, s)
		}
	}
	for _, v := range q.authz {
		add(v)
		if _, cred, ok := strings.Cut(v, " "); ok {
			add(strings.TrimSpace(cred))
		}
	}
	for _, v := range q.account {
		add(v)
	}
	return out
}

// TestMiddleware throws the inputs of SECURITY.md at Issuer.Middleware.
func TestMiddleware(t *testing.T) {
	fx := newMWFixture(t)
	s := fx.secret
	mid := len(s) / 2
	// Everything logged during the table, at every level, must be free of
	// the secrets.
	var logs bytes.Buffer
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	defer slog.SetDefault(prev)

	b64 := base64.StdEncoding.EncodeToString([]byte(acctA + ":" + s))
	withAccount := func(authz string, account ...string) mwRequest {
		return mwRequest{authz: []string{authz}, account: account}
	}
	tests := []struct {
		name      string
		req       mwRequest
		status    int
		challenge string
	}{
		// Accepted.
		{"ok, Bearer with account header", bearer(s, acctA), 200, ""},
		{"ok, lower-case scheme bearer", withAccount("bearer "+s, acctA), 200, ""},
		{"ok, upper-case scheme BEARER", withAccount("BEARER "+s, acctA), 200, ""},
		{"ok, mixed-case scheme bEaReR", withAccount("bEaReR "+s, acctA), 200, ""},
		{"ok, Basic", basic(acctA + ":" + s), 200, ""},
		{"ok, lower-case scheme basic", mwRequest{authz: []string{"basic " + b64}}, 200, ""},
		{"ok, Basic ignores the account header", mwRequest{authz: basic(acctA + ":" + s).authz, account: []string{acctB}}, 200, ""},
		{"ok, unrelated query", mwRequest{authz: []string{"Bearer " + s}, account: []string{acctA}, query: "?page=2&sort=access_tokens_count"}, 200, ""},
		{"ok, unrelated percent-encoded query", mwRequest{authz: []string{"Bearer " + s}, account: []string{acctA}, query: "?q=%61ccess&%61ccess_tokens=2&x%zz=1"}, 200, ""},

		// No credentials: a bare challenge.
		{"nok, no Authorization header", mwRequest{}, 401, chBare},
		{"nok, account header only", mwRequest{account: []string{acctA}}, 401, chBare},
		{"nok, scheme Token is not read", withAccount("Token "+s, acctA), 401, chBare},
		{"nok, scheme Bearerx is not Bearer", withAccount("Bearerx "+s, acctA), 401, chBare},
		{"nok, scheme Digest is not read", mwRequest{authz: []string{`Digest username="acct_A"`}}, 401, chBare},
		{"nok, empty Authorization", withAccount("", acctA), 401, chBare},
		{"nok, secret in an unread header", mwRequest{account: []string{acctA}, header: http.Header{"X-Api-Key": {s}}}, 401, chBare},

		// Malformed Bearer: 400.
		{"nok, Bearer alone", withAccount("Bearer", acctA), 400, chInvalidRequest},
		{"nok, Bearer and a space", withAccount("Bearer ", acctA), 400, chInvalidRequest},
		{"nok, Bearer and two spaces", withAccount("Bearer  "+s, acctA), 400, chInvalidRequest},
		{"nok, Bearer and a tab", withAccount("Bearer\t"+s, acctA), 400, chInvalidRequest},
		{"nok, Bearer with a second word", withAccount("Bearer "+s+" x", acctA), 400, chInvalidRequest},
		{"nok, Bearer with a quoted token", withAccount(`Bearer "`+s+`"`, acctA), 400, chInvalidRequest},
		{"nok, Bearer with a comma", withAccount("Bearer,"+s, acctA), 400, chInvalidRequest},
		{"nok, Bearer as auth-params", withAccount("Bearer token="+s, acctA), 400, chInvalidRequest},
		{"nok, U+200B inserted", withAccount("Bearer "+s[:mid]+"\u200b"+s[mid:], acctA), 400, chInvalidRequest},
		{"nok, trailing CR", withAccount("Bearer "+s+"\r", acctA), 400, chInvalidRequest},
		{"nok, trailing LF", withAccount("Bearer "+s+"\n", acctA), 400, chInvalidRequest},
		{"nok, trailing CRLF", withAccount("Bearer "+s+"\r\n", acctA), 400, chInvalidRequest},
		{"nok, trailing NUL", withAccount("Bearer "+s+"\x00", acctA), 400, chInvalidRequest},
		{"nok, non-UTF-8 token", withAccount("Bearer \xff\xfe"+s, acctA), 400, chInvalidRequest},
		{"nok, padding before the end", withAccount("Bearer ab=c", acctA), 400, chInvalidRequest},
		{"nok, 8 KB token", withAccount("Bearer "+strings.Repeat("a", 8<<10), acctA), 400, chInvalidRequest},
		{"nok, 1 MB token", withAccount("Bearer "+strings.Repeat("a", 1<<20), acctA), 400, chInvalidRequest},
		{"nok, 1 MB value of another scheme", withAccount("Token "+strings.Repeat("a", 1<<20), acctA), 400, chInvalidRequest},

		// Ambiguous: 400.
		{"nok, two Authorization headers", mwRequest{authz: []string{"Bearer " + s, "Bearer " + s}, account: []string{acctA}}, 400, chInvalidRequest},
		{"nok, Bearer and Basic headers", mwRequest{authz: []string{"Bearer " + s, basicValue(acctA + ":" + s)}, account: []string{acctA}}, 400, chInvalidRequest},
		{"nok, Authorization plus ?access_token=", mwRequest{authz: []string{"Bearer " + s}, account: []string{acctA}, query: "?access_token=" + s}, 400, chInvalidRequest},
		{"nok, ?access_token= alone", mwRequest{account: []string{acctA}, query: "?x=1&access_token=" + s}, 400, chInvalidRequest},
		{"nok, ?ACCESS_TOKEN= in capitals", mwRequest{account: []string{acctA}, query: "?ACCESS_TOKEN=" + s}, 400, chInvalidRequest},
		{"nok, ?access%5Ftoken= percent-encoded", mwRequest{account: []string{acctA}, query: "?access%5Ftoken=" + s}, 400, chInvalidRequest},
		{"nok, empty ?access_token", mwRequest{query: "?access_token"}, 400, chInvalidRequest},
		{"nok, ?acc%65ss_token= with a letter percent-encoded", mwRequest{account: []string{acctA}, query: "?acc%65ss_token=" + s}, 400, chInvalidRequest},
		{"nok, ?%61ccess_token= with the first letter percent-encoded", mwRequest{account: []string{acctA}, query: "?%61ccess_token=" + s}, 400, chInvalidRequest},
		{"nok, ?%41CCESS%5FTOKEN= encoded and in capitals", mwRequest{account: []string{acctA}, query: "?page=1&%41CCESS%5FTOKEN=" + s}, 400, chInvalidRequest},
		{"nok, ?access_token= after a ';'", mwRequest{account: []string{acctA}, query: "?x=1;access_token=" + s}, 400, chInvalidRequest},
		{"nok, ?access_token= beside a bad escape", mwRequest{account: []string{acctA}, query: "?x%zz=1&%61ccess_token=" + s}, 400, chInvalidRequest},

		// The account header with a Bearer token: 400.
		{"nok, account header missing", mwRequest{authz: []string{"Bearer " + s}}, 400, chInvalidRequest},
		{"nok, account header empty", withAccount("Bearer "+s, ""), 400, chInvalidRequest},
		{"nok, account header repeated", withAccount("Bearer "+s, acctA, acctA), 400, chInvalidRequest},
		{"nok, account header over 1 KB", withAccount("Bearer "+s, strings.Repeat("a", 1025)), 400, chInvalidRequest},
		{"nok, account header over 128 bytes", withAccount("Bearer "+s, strings.Repeat("a", 129)), 400, chInvalidRequest},
		{"nok, account header with a control character", withAccount("Bearer "+s, "acct\x00A"), 400, chInvalidRequest},
		{"nok, account header with a colon", withAccount("Bearer "+s, "acct:A"), 400, chInvalidRequest},
		{"nok, account header not UTF-8", withAccount("Bearer "+s, "acct\xffA"), 400, chInvalidRequest},
		{"nok, account header with surrounding space", withAccount("Bearer "+s, " "+acctA), 400, chInvalidRequest},

		// Malformed Basic: 400.
		{"nok, Basic alone", mwRequest{authz: []string{"Basic"}}, 400, chInvalidRequest},
		{"nok, Basic and a space", mwRequest{authz: []string{"Basic "}}, 400, chInvalidRequest},
		{"nok, Basic ===", mwRequest{authz: []string{"Basic ==="}}, 400, chInvalidRequest},
		{"nok, Basic without colon (Zm9v)", mwRequest{authz: []string{"Basic Zm9v"}}, 400, chInvalidRequest},
		{"nok, Basic of a colon alone", basic(":"), 400, chInvalidRequest},
		{"nok, Basic without account", basic(":" + s), 400, chInvalidRequest},
		{"nok, Basic without secret", basic(acctA + ":"), 400, chInvalidRequest},
		{"nok, Basic with NUL in the account", basic("acct\x00:" + s), 400, chInvalidRequest},
		{"nok, Basic with a non-UTF-8 account", basic("acct\xff:" + s), 400, chInvalidRequest},
		{"nok, Basic of raw non-UTF-8 bytes", mwRequest{authz: []string{"Basic \xff\xfe\xfd"}}, 400, chInvalidRequest},
		{"nok, Basic without padding", mwRequest{authz: []string{"Basic " + base64.RawStdEncoding.EncodeToString([]byte(acctA+":"+s+"x"))}}, 400, chInvalidRequest},
		{"nok, Basic in URL-safe base64", mwRequest{authz: []string{"Basic " + base64.URLEncoding.EncodeToString([]byte(acctA+":"+s+"\xfb\xff"))}}, 400, chInvalidRequest},
		{"nok, Basic with a line break", mwRequest{authz: []string{"Basic " + b64[:4] + "\r\n" + b64[4:]}}, 400, chInvalidRequest},
		{"nok, Basic and two spaces", mwRequest{authz: []string{"Basic  " + b64}}, 400, chInvalidRequest},

		// Well-formed but refused by Verify: 401 invalid_token.
		{"nok, one letter's case flipped", bearer(flipCase(s), acctA), 401, chInvalidToken},
		{"nok, one character dropped", bearer(s[:mid]+s[mid+1:], acctA), 401, chInvalidToken},
		{"nok, one character added", bearer(s[:mid]+"x"+s[mid:], acctA), 401, chInvalidToken},
		{"nok, checksum changed", bearer(changeChecksum(s), acctA), 401, chInvalidToken},
		{"nok, _ replaced by -", bearer(strings.Replace(s, "_", "-", 1), acctA), 401, chInvalidToken},
		{"nok, padded token", bearer(s+"==", acctA), 401, chInvalidToken},
		{"nok, short token", bearer("tok", acctA), 401, chInvalidToken},
		{"nok, unknown token", bearer(fx.alien, acctA), 401, chInvalidToken},
		{"nok, wrong account", bearer(fx.otherSecret, acctA), 401, chInvalidToken},
		{"nok, token of another account claimed by its own header", bearer(s, acctB), 401, chInvalidToken},
		{"nok, deleted token", bearer(fx.deleted, acctA), 401, chInvalidToken},
		{"nok, expired token", bearer(fx.expired, acctA), 401, chInvalidToken},
		{"nok, Basic acct:tok:x keeps the colon in the secret", basic(acctA + ":" + s + ":x"), 401, chInvalidToken},
		{"nok, Basic with a wrong account", basic(acctB + ":" + s), 401, chInvalidToken},
		{"nok, Basic with a non-UTF-8 secret", basic(acctA + ":" + s + "\xff"), 401, chInvalidToken},
		{"nok, Basic with an expired token", basic(acctA + ":" + fx.expired), 401, chInvalidToken},
	}
	next := &whoami{}
	h := fx.iss.Middleware(next)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec, ran := serve(h, next, tt.req.build(context.Background()))
			if tt.status == http.StatusOK {
				require.Equal(t, http.StatusOK, rec.Code, "body: %s", rec.Body)
				assert.True(t, ran, "the handler must run for valid credentials")
				var got struct {
					OK          bool
					ID, Account string
				}
				require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &got))
				assert.Equal(t, struct {
					OK          bool
					ID, Account string
				}{true, fx.tok.ID, acctA}, got)
				assert.Empty(t, rec.Header().Get("WWW-Authenticate"))
				return
			}
			assert.False(t, ran, "the handler must not run on a refusal")
			assertProblem(t, rec, tt.status, tt.challenge, append(tt.req.echoes(), s, s[len(s)-20:])...)
		})
	}
	for _, secret := range []string{s, fx.otherSecret, fx.deleted, fx.expired, fx.alien} {
		assert.NotContains(t, logs.String(), secret, "no secret may reach a log")
	}
	assert.Empty(t, logs.String(), "refusals are answers, not failures to log")
}

// TestMiddlewareRefusalsAreIndistinguishable proves item 7 of SECURITY.md:
// a client cannot learn whether a token exists, was deleted, expired or
// belongs to another account.
func TestMiddlewareRefusalsAreIndistinguishable(t *testing.T) {
	fx := newMWFixture(t)
	next := &whoami{}
	h := fx.iss.Middleware(next)
	reqs := []struct {
		name string
		req  mwRequest
	}{
		{"unknown", bearer(fx.alien, acctA)},
		{"wrong account", bearer(fx.otherSecret, acctA)},
		{"deleted", bearer(fx.deleted, acctA)},
		{"expired", bearer(fx.expired, acctA)},
		{"Basic, unknown", basic(acctA + ":" + fx.alien)},
		{"Basic, wrong account", basic(acctA + ":" + fx.otherSecret)},
		{"Basic, deleted", basic(acctA + ":" + fx.deleted)},
		{"Basic, expired", basic(acctA + ":" + fx.expired)},
	}
	type response struct {
		Status int
		Header http.Header
		Body   string
	}
	var first response
	for i, tt := range reqs {
		rec, ran := serve(h, next, tt.req.build(context.Background()))
		require.False(t, ran, tt.name)
		got := response{rec.Code, rec.Header(), rec.Body.String()}
		if i == 0 {
			first = got
			assert.Equal(t, http.StatusUnauthorized, got.Status)
			continue
		}
		assert.Equal(t, first, got, "%q must be answered byte for byte as %q", tt.name, reqs[0].name)
	}
}

// mwFailStore is a spyStore whose Lookups fail with err, or, with a nil
// err, wait for the caller's context to end.
type mwFailStore struct {
	*spyStore
	lookups atomic.Int64
}

func newMWFailStore(err error) *mwFailStore {
	s := &mwFailStore{spyStore: newSpy()}
	s.onLookup = func(ctx context.Context, _ apitoken.Hash, _ func(context.Context, apitoken.Hash) (apitoken.Record, error)) (apitoken.Record, error) {
		s.lookups.Add(1)
		if err != nil {
			return apitoken.Record{}, err
		}
		select {
		case <-ctx.Done():
			return apitoken.Record{}, ctx.Err()
		case <-time.After(10 * time.Second):
			return apitoken.Record{}, errors.New("test store: the context never ended")
		}
	}
	return s
}

var errDBDown = errors.New("db down")

// newFailing returns an Issuer over a failing store and a well-formed secret
// whose lookup fails.
func newFailing(t *testing.T, err error) (*apitoken.Issuer, *mwFailStore, string) {
	t.Helper()
	st := newMWFailStore(err)
	iss, e := apitoken.NewIssuer(st)
	require.NoError(t, e)
	secret, _, e := iss.Issue(context.Background(), apitoken.IssueParams{AccountID: acctA})
	require.NoError(t, e)
	return iss, st, secret
}

func TestMiddlewareStoreFailureIs503(t *testing.T) {
	expired, cancelExpired := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancelExpired()
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name    string
		err     error // of the store; nil: the context's
		ctx     context.Context
		wantErr error
		basic   bool
	}{
		{"nok, store error", errDBDown, context.Background(), errDBDown, false},
		{"nok, store error with Basic", errDBDown, context.Background(), errDBDown, true},
		{"nok, context deadline exceeded", nil, expired, context.DeadlineExceeded, false},
		{"nok, context canceled", nil, canceled, context.Canceled, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			iss, st, secret := newFailing(t, tt.err)
			var logs bytes.Buffer
			var got error
			mw, err := iss.NewMiddleware(apitoken.MiddlewareConfig{
				Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
			})
			require.NoError(t, err)
			next := &whoami{}
			req := bearer(secret, acctA)
			if tt.basic {
				req = basic(acctA + ":" + secret)
			}
			rec, ran := serve(mw(next), next, req.build(tt.ctx))
			assert.False(t, ran, "the handler must not run when the store fails")
			assert.Equal(t, int64(1), st.lookups.Load(), "the store was asked")
			assertProblem(t, rec, http.StatusServiceUnavailable, "", append(req.echoes(), secret)...)

			// Logged once at Error, without anything of the request.
			out := logs.String()
			assert.Equal(t, 1, strings.Count(out, "\n"), "one log line: %s", out)
			assert.Contains(t, out, "level=ERROR")
			assert.Contains(t, out, `msg="apitoken: credentials could not be checked"`)
			assert.Contains(t, out, tt.wantErr.Error())
			for _, s := range append(req.echoes(), secret, secret[len(secret)-20:], acctA) {
				assert.NotContains(t, out, s, "nothing from the request may be logged")
			}

			// A custom ErrorHandler sees the store's error, not a refusal.
			mw, err = iss.NewMiddleware(apitoken.MiddlewareConfig{
				Logger: slog.New(slog.DiscardHandler),
				ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
					got = err
					w.WriteHeader(http.StatusTeapot)
				},
			})
			require.NoError(t, err)
			rec, ran = serve(mw(next), next, req.build(tt.ctx))
			assert.False(t, ran)
			assert.Equal(t, http.StatusTeapot, rec.Code)
			assert.ErrorIs(t, got, tt.wantErr)
			for _, sentinel := range []error{apitoken.ErrInvalidToken, apitoken.ErrNoCredentials, apitoken.ErrInvalidRequest} {
				assert.NotErrorIs(t, got, sentinel, "a store failure must never look like a refusal")
			}
		})
	}
}

func TestNewMiddleware(t *testing.T) {
	fx := newMWFixture(t)
	s := fx.secret

	t.Run("ok, custom extractor FromHeader(X-API-Key, X-Tenant)", func(t *testing.T) {
		mw, err := fx.iss.NewMiddleware(apitoken.MiddlewareConfig{Extractor: apitoken.FromHeader("X-API-Key", "X-Tenant")})
		require.NoError(t, err)
		next := &whoami{}
		h := mw(next)
		hdr := func(kv ...string) mwRequest {
			q := mwRequest{header: http.Header{}}
			for i := 0; i < len(kv); i += 2 {
				q.header.Add(kv[i], kv[i+1])
			}
			return q
		}
		tests := []struct {
			name      string
			req       mwRequest
			status    int
			challenge string
		}{
			{"ok, key and tenant", hdr("X-API-Key", s, "X-Tenant", acctA), 200, ""},
			{"ok, header names in any case", hdr("x-api-key", s, "x-tenant", acctA), 200, ""},
			{"nok, Bearer is not read", bearer(s, acctA), 401, chBare},
			{"nok, key without tenant", hdr("X-API-Key", s), 400, chInvalidRequest},
			{"nok, key with X-Account-ID instead of tenant", hdr("X-API-Key", s, "X-Account-ID", acctA), 400, chInvalidRequest},
			{"nok, key repeated", hdr("X-API-Key", s, "X-API-Key", s, "X-Tenant", acctA), 400, chInvalidRequest},
			{"nok, tenant repeated", hdr("X-API-Key", s, "X-Tenant", acctA, "X-Tenant", acctA), 400, chInvalidRequest},
			{"nok, empty key", hdr("X-API-Key", "", "X-Tenant", acctA), 400, chInvalidRequest},
			{"nok, key with a space", hdr("X-API-Key", "Bearer "+s, "X-Tenant", acctA), 400, chInvalidRequest},
			{"nok, 8 KB key", hdr("X-API-Key", strings.Repeat("a", 8<<10), "X-Tenant", acctA), 400, chInvalidRequest},
			{"nok, wrong key", hdr("X-API-Key", flipCase(s), "X-Tenant", acctA), 401, chInvalidToken},
			{"nok, wrong tenant", hdr("X-API-Key", s, "X-Tenant", acctB), 401, chInvalidToken},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				rec, ran := serve(h, next, tt.req.build(context.Background()))
				if tt.status == http.StatusOK {
					assert.Equal(t, http.StatusOK, rec.Code, "body: %s", rec.Body)
					assert.True(t, ran)
					return
				}
				assert.False(t, ran)
				assertProblem(t, rec, tt.status, tt.challenge, s)
			})
		}
	})

	t.Run("ok, custom realm appears in every challenge", func(t *testing.T) {
		mw, err := fx.iss.NewMiddleware(apitoken.MiddlewareConfig{Realm: "prefs API"})
		require.NoError(t, err)
		next := &whoami{}
		h := mw(next)
		for _, tc := range []struct {
			req       mwRequest
			status    int
			challenge string
		}{
			{mwRequest{}, 401, `Bearer realm="prefs API"`},
			{bearer(fx.alien, acctA), 401, `Bearer realm="prefs API", error="invalid_token"`},
			{mwRequest{authz: []string{"Bearer"}}, 400, `Bearer realm="prefs API", error="invalid_request"`},
		} {
			rec, _ := serve(h, next, tc.req.build(context.Background()))
			assertProblem(t, rec, tc.status, tc.challenge)
		}
		rec, ran := serve(h, next, bearer(s, acctA).build(context.Background()))
		assert.Equal(t, http.StatusOK, rec.Code)
		assert.True(t, ran)
	})

	t.Run("nok, bad realms are refused", func(t *testing.T) {
		for _, realm := range []string{`a"b`, `a\b`, "a\nb", "a\rb", "a\x00b", "a\tb", "a\x7fb", "caf\u00e9", strings.Repeat("r", 65)} {
			mw, err := fx.iss.NewMiddleware(apitoken.MiddlewareConfig{Realm: realm})
			assert.ErrorIs(t, err, apitoken.ErrInvalidInput, "realm %q", realm)
			assert.Nil(t, mw)
			if err != nil {
				assert.NotContains(t, err.Error(), realm)
			}
		}
		mw, err := fx.iss.NewMiddleware(apitoken.MiddlewareConfig{Realm: strings.Repeat("r", 64)})
		assert.NoError(t, err, "64 bytes is allowed")
		assert.NotNil(t, mw)
	})

	t.Run("nok, nil Issuer is refused", func(t *testing.T) {
		var iss *apitoken.Issuer
		mw, err := iss.NewMiddleware(apitoken.MiddlewareConfig{})
		assert.ErrorIs(t, err, apitoken.ErrInvalidInput)
		assert.Nil(t, mw)
	})

	t.Run("ok, custom ErrorHandler receives errors.Is-able errors and writes alone", func(t *testing.T) {
		var got []error
		mw, err := fx.iss.NewMiddleware(apitoken.MiddlewareConfig{
			ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
				got = append(got, err)
				w.WriteHeader(http.StatusTeapot)
				_, _ = io.WriteString(w, "custom")
			},
		})
		require.NoError(t, err)
		next := &whoami{}
		h := mw(next)
		tests := []struct {
			req  mwRequest
			want error
		}{
			{mwRequest{}, apitoken.ErrNoCredentials},
			{mwRequest{authz: []string{"Bearer"}}, apitoken.ErrInvalidRequest},
			{mwRequest{query: "?access_token=x"}, apitoken.ErrInvalidRequest},
			{bearer(fx.deleted, acctA), apitoken.ErrInvalidToken},
		}
		for _, tt := range tests {
			got = nil
			rec, ran := serve(h, next, tt.req.build(context.Background()))
			assert.False(t, ran)
			assert.Equal(t, http.StatusTeapot, rec.Code)
			assert.Equal(t, "custom", rec.Body.String())
			assert.Empty(t, rec.Header().Values("WWW-Authenticate"), "the custom handler writes the whole response")
			assert.Empty(t, rec.Header().Values("Cache-Control"), "the custom handler writes the whole response")
			if assert.Len(t, got, 1) {
				assert.ErrorIs(t, got[0], tt.want)
				assert.True(t, strings.HasPrefix(got[0].Error(), "apitoken: "), "%q", got[0])
				assert.NotContains(t, got[0].Error(), fx.deleted)
			}
		}
		// RequireScope answers through the same handler.
		got = nil
		rec, ran := serve(mw(apitoken.RequireScope("admin")(next)), next, bearer(s, acctA).build(context.Background()))
		assert.False(t, ran)
		assert.Equal(t, http.StatusTeapot, rec.Code)
		if assert.Len(t, got, 1) {
			assert.ErrorIs(t, got[0], apitoken.ErrInsufficientScope)
		}
	})

	t.Run("ok, zero config equals Middleware", func(t *testing.T) {
		mw, err := fx.iss.NewMiddleware(apitoken.MiddlewareConfig{})
		require.NoError(t, err)
		next := &whoami{}
		for _, req := range []mwRequest{bearer(s, acctA), basic(acctA + ":" + s), {}, bearer(fx.alien, acctA), {authz: []string{"Bearer"}}} {
			a, _ := serve(mw(next), next, req.build(context.Background()))
			b, _ := serve(fx.iss.Middleware(next), next, req.build(context.Background()))
			assert.Equal(t, b.Code, a.Code)
			assert.Equal(t, b.Header(), a.Header())
			assert.Equal(t, b.Body.String(), a.Body.String())
		}
	})

	t.Run("nok, Middleware of a nil Issuer fails closed", func(t *testing.T) {
		var iss *apitoken.Issuer
		next := &whoami{}
		prev := slog.Default()
		slog.SetDefault(slog.New(slog.DiscardHandler))
		defer slog.SetDefault(prev)
		rec, ran := serve(iss.Middleware(next), next, bearer(s, acctA).build(context.Background()))
		assert.False(t, ran)
		assertProblem(t, rec, http.StatusServiceUnavailable, "", s)
	})
}

func TestRequireScope(t *testing.T) {
	fx := newMWFixture(t) // fx.secret has scopes read and write
	s := fx.secret
	tests := []struct {
		name      string
		scopes    []string
		status    int
		challenge string
	}{
		{"ok, one scope held", []string{"read"}, 200, ""},
		{"ok, every scope held", []string{"write", "read"}, 200, ""},
		{"ok, no scope listed", nil, 200, ""},
		{"nok, a missing scope", []string{"admin"}, 403, `Bearer realm="api", error="insufficient_scope", scope="admin"`},
		{"nok, one of two missing", []string{"read", "admin"}, 403, `Bearer realm="api", error="insufficient_scope", scope="read admin"`},
		{"nok, scope matched case-sensitively", []string{"READ"}, 403, `Bearer realm="api", error="insufficient_scope", scope="READ"`},
		{"nok, an unquotable scope is left out of the challenge", []string{`a"b`}, 403, `Bearer realm="api", error="insufficient_scope"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			next := &whoami{}
			h := fx.iss.Middleware(apitoken.RequireScope(tt.scopes...)(next))
			rec, ran := serve(h, next, bearer(s, acctA).build(context.Background()))
			if tt.status == http.StatusOK {
				assert.Equal(t, http.StatusOK, rec.Code)
				assert.True(t, ran)
				return
			}
			assert.False(t, ran)
			assertProblem(t, rec, tt.status, tt.challenge, s)
		})
	}

	t.Run("nok, without the middleware it fails closed with 401", func(t *testing.T) {
		next := &whoami{}
		h := apitoken.RequireScope("read")(next)
		for _, req := range []mwRequest{{}, bearer(s, acctA), basic(acctA + ":" + s)} {
			rec, ran := serve(h, next, req.build(context.Background()))
			assert.False(t, ran)
			assertProblem(t, rec, http.StatusUnauthorized, chBare, s)
		}
		rec, ran := serve(apitoken.RequireScope()(next), next, bearer(s, acctA).build(context.Background()))
		assert.False(t, ran, "even with no scope listed, a token is required")
		assert.Equal(t, http.StatusUnauthorized, rec.Code)
	})

	t.Run("ok, the realm of NewMiddleware is carried into the challenge", func(t *testing.T) {
		mw, err := fx.iss.NewMiddleware(apitoken.MiddlewareConfig{Realm: "prefs"})
		require.NoError(t, err)
		next := &whoami{}
		rec, ran := serve(mw(apitoken.RequireScope("admin", "read")(next)), next, bearer(s, acctA).build(context.Background()))
		assert.False(t, ran)
		assertProblem(t, rec, http.StatusForbidden, `Bearer realm="prefs", error="insufficient_scope", scope="admin read"`, s)
	})

	t.Run("ok, the listed scopes are copied", func(t *testing.T) {
		scopes := []string{"read"}
		next := &whoami{}
		h := fx.iss.Middleware(apitoken.RequireScope(scopes...)(next))
		scopes[0] = "admin"
		rec, ran := serve(h, next, bearer(s, acctA).build(context.Background()))
		assert.Equal(t, http.StatusOK, rec.Code)
		assert.True(t, ran)
	})
}

func TestAuthenticate(t *testing.T) {
	fx := newMWFixture(t)
	s := fx.secret
	tests := []struct {
		name    string
		req     mwRequest
		wantErr error // nil: the token
	}{
		{"ok, Bearer", bearer(s, acctA), nil},
		{"ok, Basic", basic(acctA + ":" + s), nil},
		{"nok, no credentials", mwRequest{}, apitoken.ErrNoCredentials},
		{"nok, malformed Bearer", mwRequest{authz: []string{"Bearer  " + s}, account: []string{acctA}}, apitoken.ErrInvalidRequest},
		{"nok, token without account", mwRequest{authz: []string{"Bearer " + s}}, apitoken.ErrInvalidRequest},
		{"nok, token in the query", mwRequest{query: "?access_token=" + s}, apitoken.ErrInvalidRequest},
		{"nok, deleted token", bearer(fx.deleted, acctA), apitoken.ErrInvalidToken},
		{"nok, wrong account", bearer(s, acctB), apitoken.ErrInvalidToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := fx.iss.Authenticate(tt.req.build(context.Background()))
			if tt.wantErr == nil {
				require.NoError(t, err)
				assert.Equal(t, fx.tok.ID, tok.ID)
				assert.Equal(t, []string{"read", "write"}, tok.Scopes)
				return
			}
			require.ErrorIs(t, err, tt.wantErr)
			assert.Zero(t, tok)
			assert.NotContains(t, err.Error(), s)
		})
	}

	t.Run("nok, store failure is none of the refusals", func(t *testing.T) {
		iss, _, secret := newFailing(t, errDBDown)
		_, err := iss.Authenticate(bearer(secret, acctA).build(context.Background()))
		require.ErrorIs(t, err, errDBDown)
		for _, sentinel := range []error{apitoken.ErrInvalidToken, apitoken.ErrNoCredentials, apitoken.ErrInvalidRequest} {
			assert.NotErrorIs(t, err, sentinel)
		}
	})

	t.Run("nok, nil request or Issuer never panics", func(t *testing.T) {
		_, err := fx.iss.Authenticate(nil)
		assert.ErrorIs(t, err, apitoken.ErrNoCredentials)
		var iss *apitoken.Issuer
		_, err = iss.Authenticate(bearer(s, acctA).build(context.Background()))
		assert.Error(t, err)
		assert.NotErrorIs(t, err, apitoken.ErrInvalidToken)
	})
}

// TestMiddlewareRealServer runs the middleware behind a real listener, as a
// client sees it.
func TestMiddlewareRealServer(t *testing.T) {
	fx := newMWFixture(t)
	var mu sync.Mutex
	calls := 0
	srv := httptest.NewServer(fx.iss.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls++
		mu.Unlock()
		tok, ok := apitoken.FromContext(r.Context())
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"ok": ok, "id": tok.ID, "account": tok.AccountID})
	})))
	defer srv.Close()

	do := func(t *testing.T, query string, set func(h http.Header)) (*http.Response, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, srv.URL+"/api/v1/whoami"+query, nil)
		require.NoError(t, err)
		set(req.Header)
		resp, err := srv.Client().Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp, string(body)
	}
	called := func() int { mu.Lock(); defer mu.Unlock(); return calls }

	t.Run("ok, valid Bearer", func(t *testing.T) {
		before := called()
		resp, body := do(t, "", func(h http.Header) {
			h.Set("Authorization", "Bearer "+fx.secret)
			h.Set("X-Account-ID", acctA)
		})
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		assert.JSONEq(t, fmt.Sprintf(`{"ok":true,"id":%q,"account":%q}`, fx.tok.ID, acctA), body)
		assert.Equal(t, before+1, called())
	})
	t.Run("ok, valid Basic", func(t *testing.T) {
		resp, body := do(t, "", func(h http.Header) {
			h.Set("Authorization", basicValue(acctA+":"+fx.secret))
		})
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Contains(t, body, fx.tok.ID)
	})
	refusals := []struct {
		name      string
		query     string
		set       func(h http.Header)
		status    int
		challenge string
	}{
		{"nok, invalid token", "", func(h http.Header) {
			h.Set("Authorization", "Bearer "+fx.alien)
			h.Set("X-Account-ID", acctA)
		}, 401, chInvalidToken},
		{"nok, no credentials", "", func(http.Header) {}, 401, chBare},
		{"nok, two Authorization headers sent for real", "", func(h http.Header) {
			h.Add("Authorization", "Bearer "+fx.secret)
			h.Add("Authorization", "Bearer "+fx.secret)
			h.Set("X-Account-ID", acctA)
		}, 400, chInvalidRequest},
		{"nok, two account headers sent for real", "", func(h http.Header) {
			h.Set("Authorization", "Bearer "+fx.secret)
			h.Add("X-Account-ID", acctA)
			h.Add("X-Account-ID", acctA)
		}, 400, chInvalidRequest},
		{"nok, token in the query", "?access_token=" + fx.secret, func(h http.Header) {
			h.Set("Authorization", "Bearer "+fx.secret)
			h.Set("X-Account-ID", acctA)
		}, 400, chInvalidRequest},
	}
	for _, tt := range refusals {
		t.Run(tt.name, func(t *testing.T) {
			before := called()
			resp, body := do(t, tt.query, tt.set)
			assert.Equal(t, tt.status, resp.StatusCode)
			assert.Equal(t, tt.challenge, resp.Header.Get("WWW-Authenticate"))
			assert.Equal(t, problemContentType, resp.Header.Get("Content-Type"))
			assert.Equal(t, "no-store", resp.Header.Get("Cache-Control"))
			assert.NotContains(t, body, fx.secret)
			assert.NotContains(t, body, fx.alien)
			assert.Equal(t, before, called(), "the handler must not run")
		})
	}
}
