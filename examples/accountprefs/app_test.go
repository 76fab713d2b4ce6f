package main

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken-go/apitoken"
	"github.com/apitoken-go/apitoken/internal/logcheck"
	"github.com/apitoken-go/apitoken/sqlstore"
)

// env is the app on a test server over an SQLite store, with its log in a
// buffer. Every secret the tests see is recorded, and at cleanup the log
// must contain none of them.
type env struct {
	app     *app
	srv     *httptest.Server
	store   *flakyStore
	clock   *testClock
	logs    *logcheck.Buffer
	mu      sync.Mutex
	secrets []string
}

func newEnv(t *testing.T) *env { return newEnvAt(t, nil, "") }

// newEnvAt is newEnv with the server on ln (nil: a free port) and the app's
// base URL (""; the server's URL).
func newEnvAt(t *testing.T, ln net.Listener, baseURL string) *env {
	t.Helper()
	store, closeStore, err := openStore(t.Context(), filepath.Join(t.TempDir(), "tokens.db"))
	require.NoError(t, err)
	t.Cleanup(closeStore)
	e := &env{store: &flakyStore{Store: store}, clock: &testClock{}, logs: &logcheck.Buffer{}}
	iss, err := apitoken.NewIssuer(e.store, apitoken.WithClock(e.clock.Now))
	require.NoError(t, err)
	e.srv = httptest.NewUnstartedServer(nil)
	if ln != nil {
		e.srv.Listener.Close()
		e.srv.Listener = ln
	}
	if baseURL == "" {
		baseURL = "http://" + e.srv.Listener.Addr().String()
	}
	e.app, err = newApp(iss, slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})), baseURL)
	require.NoError(t, err)
	e.app.now = e.clock.Now
	e.srv.Config.Handler = e.app.routes()
	e.srv.Start()
	t.Cleanup(func() {
		e.srv.Close()
		logs := e.logs.String()
		require.Contains(t, logs, "status=", "the app must log its requests")
		e.mu.Lock()
		defer e.mu.Unlock()
		for _, s := range e.secrets {
			basic := base64.StdEncoding.EncodeToString([]byte(demoAccount + ":" + s))
			assert.NotContains(t, logs, s, "a secret reached the log")
			assert.NotContains(t, logs, basic, "Basic credentials reached the log")
		}
	})
	return e
}

// testClock is the app's clock, moved by tests; atomic because the server
// reads it on its own goroutines.
type testClock struct{ offset atomic.Int64 }

func (c *testClock) Now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *testClock) Advance(d time.Duration) { c.offset.Add(int64(d)) }

// flakyStore fails every call while fail is set, as a database that is down,
// and delays Create by delay, as a slow one.
type flakyStore struct {
	*sqlstore.Store // its capabilities too, such as recording last uses
	fail            atomic.Bool
	delay           atomic.Int64 // a time.Duration
}

var errDown = errors.New("database is down")

func (s *flakyStore) Create(ctx context.Context, rec apitoken.Record) error {
	time.Sleep(time.Duration(s.delay.Load()))
	if s.fail.Load() {
		return errDown
	}
	return s.Store.Create(ctx, rec)
}

func (s *flakyStore) Lookup(ctx context.Context, h apitoken.Hash) (apitoken.Record, error) {
	if s.fail.Load() {
		return apitoken.Record{}, errDown
	}
	return s.Store.Lookup(ctx, h)
}

func (s *flakyStore) List(ctx context.Context, accountID string) ([]apitoken.Token, error) {
	if s.fail.Load() {
		return nil, errDown
	}
	return s.Store.List(ctx, accountID)
}

func (s *flakyStore) Delete(ctx context.Context, accountID, id string) error {
	if s.fail.Load() {
		return errDown
	}
	return s.Store.Delete(ctx, accountID, id)
}

// client returns a browser-like client with its own cookies that does not
// follow redirects, so tests see them.
func (e *env) client(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	return &http.Client{
		Jar:           jar,
		Timeout:       5 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// signedIn returns a client signed in as member.
func (e *env) signedIn(t *testing.T, member string) *http.Client {
	t.Helper()
	c := e.client(t)
	resp, _ := e.do(t, c, "POST", "/signin", url.Values{"member": {member}}, nil)
	require.Equal(t, http.StatusSeeOther, resp.StatusCode, "sign-in as %q", member)
	return c
}

// do sends a request (a form post when form is not nil) and returns the
// response with its body read.
func (e *env) do(t *testing.T, c *http.Client, method, path string, form url.Values, header http.Header) (*http.Response, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(t.Context(), method, e.srv.URL+path, body)
	require.NoError(t, err)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(b)
}

var (
	nonceRE   = regexp.MustCompile(`name="nonce" value="([^"]+)"`)
	secretRE  = regexp.MustCompile(`<code id="new-token" class="secret"[^>]*>([^<]*)</code>`)
	accountRE = regexp.MustCompile(`<code id="new-account" class="secret"[^>]*>([^<]*)</code>`)
	patternRE = regexp.MustCompile(`^` + apitoken.Pattern + `$`)
)

// nonce loads the preferences page and returns its generate form's nonce.
func (e *env) nonce(t *testing.T, c *http.Client) string {
	t.Helper()
	resp, body := e.do(t, c, "GET", prefsPath, nil, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	m := nonceRE.FindStringSubmatch(body)
	require.NotNil(t, m, "the page has no generate form with a nonce")
	return m[1]
}

// generate posts the generate form with a fresh nonce and the given fields.
func (e *env) generate(t *testing.T, c *http.Client, fields url.Values) (*http.Response, string) {
	t.Helper()
	form := url.Values{"nonce": {e.nonce(t, c)}}
	for k, v := range fields {
		form[k] = v
	}
	return e.do(t, c, "POST", "/account/tokens", form, nil)
}

// secretIn returns the secret shown in the dialog of body, and records it
// for the log check.
func (e *env) secretIn(t *testing.T, body string) string {
	t.Helper()
	m := secretRE.FindStringSubmatch(body)
	require.NotNil(t, m, "the page shows no new token")
	require.Regexp(t, patternRE, m[1], "the dialog shows something that is not a token")
	e.mu.Lock()
	e.secrets = append(e.secrets, m[1])
	e.mu.Unlock()
	return m[1]
}

// newToken generates a token named name and returns its secret.
func (e *env) newToken(t *testing.T, c *http.Client, name string) string {
	t.Helper()
	resp, body := e.generate(t, c, url.Values{"name": {name}})
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	return e.secretIn(t, body)
}

// tokens lists the demo account's tokens through the Issuer.
func (e *env) tokens(t *testing.T, account string) []apitoken.Token {
	t.Helper()
	toks, err := e.app.iss.List(t.Context(), account)
	require.NoError(t, err)
	return toks
}

// whoami calls the API with Basic credentials and returns the status and
// the decoded body (on 200).
func (e *env) whoami(t *testing.T, secret string) (int, whoamiResponse) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "GET", e.srv.URL+whoamiPath, nil)
	require.NoError(t, err)
	req.SetBasicAuth(demoAccount, secret)
	resp, err := e.srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var got whoamiResponse
	if resp.StatusCode == http.StatusOK {
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&got))
	}
	return resp.StatusCode, got
}

func TestHome(t *testing.T) {
	e := newEnv(t)

	t.Run("ok, signed out: the sign-in form, which says it is a demo", func(t *testing.T) {
		resp, body := e.do(t, e.client(t), "GET", "/", nil, nil)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Contains(t, body, `action="/signin"`)
		assert.Contains(t, body, "A real app plugs in its own sign-in")
	})
	t.Run("ok, signed in: to the preferences", func(t *testing.T) {
		resp, _ := e.do(t, e.signedIn(t, "alice"), "GET", "/", nil, nil)
		require.Equal(t, http.StatusSeeOther, resp.StatusCode)
		assert.Equal(t, prefsPath, resp.Header.Get("Location"))
	})
	for _, path := range []string{"/nope", "/static/", "/static", "/static/nope.js", "/static/app.js/"} {
		t.Run("nok, no page at "+path+": the error page, no listing", func(t *testing.T) {
			resp, body := e.do(t, e.client(t), "GET", path, nil, nil)
			assert.Equal(t, http.StatusNotFound, resp.StatusCode)
			assert.Equal(t, "text/html; charset=utf-8", resp.Header.Get("Content-Type"))
			assert.Contains(t, body, "Page not found")
			assert.NotContains(t, body, `href="app.js"`, "a folder listing")
		})
	}
	t.Run("ok, static files with their types", func(t *testing.T) {
		for path, ctype := range map[string]string{"/static/app.js": "text/javascript", "/static/app.css": "text/css"} {
			resp, body := e.do(t, e.client(t), "GET", path, nil, nil)
			require.Equal(t, http.StatusOK, resp.StatusCode, path)
			assert.Contains(t, resp.Header.Get("Content-Type"), ctype, path)
			assert.NotEmpty(t, body, path)
		}
	})
}

func TestSignIn(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name   string
		form   url.Values
		status int
		want   string // in the body of the page it leads to
	}{
		{"ok, a plain name", url.Values{"member": {"alice"}}, http.StatusSeeOther, "Signed in as <strong>alice</strong>"},
		{"ok, spaces trimmed", url.Values{"member": {"  bob  "}}, http.StatusSeeOther, "Signed in as <strong>bob</strong>"},
		{"ok, 64 characters of 2 bytes", url.Values{"member": {strings.Repeat("é", 64)}}, http.StatusSeeOther, strings.Repeat("é", 64)},
		{"ok, HTML in the name is escaped", url.Values{"member": {"<b>eve</b>"}}, http.StatusSeeOther, "&lt;b&gt;eve&lt;/b&gt;"},
		{"nok, missing name", url.Values{}, http.StatusBadRequest, "Enter a member name."},
		{"nok, blank name", url.Values{"member": {"   "}}, http.StatusBadRequest, "Enter a member name."},
		{"nok, 65 characters", url.Values{"member": {strings.Repeat("a", 65)}}, http.StatusBadRequest, "Use at most 64 characters."},
		{"nok, 33 characters of 4 bytes", url.Values{"member": {strings.Repeat("😀", 33)}}, http.StatusBadRequest, "Use at most 128 bytes"},
		{"nok, control character", url.Values{"member": {"al\x00ice"}}, http.StatusBadRequest, "Use printable characters only."},
		{"nok, not UTF-8", url.Values{"member": {"al\xffice"}}, http.StatusBadRequest, "Use printable characters only."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := e.client(t)
			resp, body := e.do(t, c, "POST", "/signin", tt.form, nil)
			require.Equal(t, tt.status, resp.StatusCode, body)
			if tt.status == http.StatusSeeOther {
				assert.Equal(t, prefsPath, resp.Header.Get("Location"))
				var session *http.Cookie
				for _, ck := range resp.Cookies() {
					if ck.Name == cookieName {
						session = ck
					}
				}
				require.NotNil(t, session, "no session cookie")
				assert.True(t, session.HttpOnly, "the session cookie must be HttpOnly")
				assert.Equal(t, http.SameSiteLaxMode, session.SameSite)
				_, body = e.do(t, c, "GET", prefsPath, nil, nil)
			} else {
				r, _ := e.do(t, c, "GET", prefsPath, nil, nil)
				assert.Equal(t, http.StatusSeeOther, r.StatusCode, "a refused sign-in must not sign in")
			}
			assert.Contains(t, body, tt.want)
		})
	}

	t.Run("nok, oversized form body", func(t *testing.T) {
		resp, _ := e.do(t, e.client(t), "POST", "/signin", url.Values{"member": {strings.Repeat("a", maxFormBytes)}}, nil)
		assert.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
	})
}

func TestSession(t *testing.T) {
	e := newEnv(t)

	// sessionCookie signs in as member and returns the cookie's value.
	sessionCookie := func(t *testing.T, e *env, member string) string {
		c := e.signedIn(t, member)
		u, _ := url.Parse(e.srv.URL)
		for _, ck := range c.Jar.Cookies(u) {
			if ck.Name == cookieName {
				return ck.Value
			}
		}
		t.Fatal("no session cookie")
		return ""
	}
	withCookie := func(v string) http.Header {
		return http.Header{"Cookie": {(&http.Cookie{Name: cookieName, Value: v}).String()}}
	}
	forged := func(v string) string {
		_, rest, _ := strings.Cut(v, ".")
		return base64.RawURLEncoding.EncodeToString([]byte("mallory")) + "." + rest
	}

	other := newEnv(t) // another process: another key
	tests := []struct {
		name   string
		cookie func(t *testing.T) string
		ok     bool
	}{
		{"ok, genuine cookie", func(t *testing.T) string { return sessionCookie(t, e, "alice") }, true},
		{"nok, no cookie", func(*testing.T) string { return "" }, false},
		{"nok, member changed, signature kept", func(t *testing.T) string { return forged(sessionCookie(t, e, "alice")) }, false},
		{"nok, signature cut", func(t *testing.T) string { v := sessionCookie(t, e, "alice"); return v[:len(v)-2] }, false},
		{"nok, signed by another process", func(t *testing.T) string { return sessionCookie(t, other, "alice") }, false},
		{"nok, garbage", func(*testing.T) string { return "a.b.c" }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := tt.cookie(t)
			h := http.Header{}
			if v != "" {
				h = withCookie(v)
			}
			before := len(e.tokens(t, demoAccount))
			resp, _ := e.do(t, e.client(t), "GET", prefsPath, nil, h)
			if tt.ok {
				require.Equal(t, http.StatusOK, resp.StatusCode)
				return
			}
			require.Equal(t, http.StatusSeeOther, resp.StatusCode, "the page must send a stranger to sign in")
			assert.Equal(t, "/", resp.Header.Get("Location"))
			resp, _ = e.do(t, e.client(t), "POST", "/account/tokens", url.Values{"name": {"x"}}, h)
			assert.Equal(t, http.StatusSeeOther, resp.StatusCode)
			assert.Len(t, e.tokens(t, demoAccount), before, "a stranger generated a token")
		})
	}

	t.Run("nok, expired session", func(t *testing.T) {
		e := newEnv(t)
		c := e.signedIn(t, "alice")
		e.clock.Advance(sessionMaxAge + time.Second)
		resp, _ := e.do(t, c, "GET", prefsPath, nil, nil)
		assert.Equal(t, http.StatusSeeOther, resp.StatusCode)
	})

	t.Run("ok, sign out", func(t *testing.T) {
		c := e.signedIn(t, "alice")
		resp, _ := e.do(t, c, "POST", "/signout", url.Values{}, nil)
		require.Equal(t, http.StatusSeeOther, resp.StatusCode)
		resp, _ = e.do(t, c, "GET", prefsPath, nil, nil)
		assert.Equal(t, http.StatusSeeOther, resp.StatusCode, "still signed in after signing out")
	})

	secure := func(resp *http.Response) (set, secure bool) {
		for _, ck := range resp.Cookies() {
			if ck.Name == cookieName {
				return true, ck.Secure
			}
		}
		return false, false
	}
	t.Run("ok, Secure cookies when the base URL is https, though the request came over http", func(t *testing.T) {
		e := newEnvAt(t, nil, "https://prefs.example")
		c := e.client(t)
		resp, _ := e.do(t, c, "POST", "/signin", url.Values{"member": {"alice"}}, nil)
		require.Equal(t, http.StatusSeeOther, resp.StatusCode)
		set, sec := secure(resp)
		require.True(t, set)
		assert.True(t, sec, "the session cookie is not Secure")
		resp, _ = e.do(t, c, "POST", "/signout", url.Values{}, nil)
		set, sec = secure(resp)
		require.True(t, set)
		assert.True(t, sec, "the cookie that signs out is not Secure")
	})
	t.Run("ok, no Secure cookie when the base URL is http", func(t *testing.T) {
		resp, _ := e.do(t, e.client(t), "POST", "/signin", url.Values{"member": {"alice"}}, nil)
		set, sec := secure(resp)
		require.True(t, set)
		assert.False(t, sec, "a Secure cookie never comes back over http")
	})
}

func TestPreferences(t *testing.T) {
	e := newEnv(t)
	c := e.signedIn(t, "alice")

	resp, body := e.do(t, c, "GET", prefsPath, nil, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, body, "This account has no tokens yet.")
	assert.Contains(t, body, `curl -u "acct_demo:$TOKEN" '`+e.srv.URL+whoamiPath+`'`)
	assert.Contains(t, body, `curl -H "Authorization: Bearer $TOKEN" -H "X-Account-ID: acct_demo" '`+e.srv.URL+whoamiPath+`'`)
	assert.NotContains(t, body, "new-token-dialog", "the page shows a dialog with no new token")

	// Three tokens, then another account's: the list shows the three,
	// oldest first, each with its creation time, hint (the end of its
	// secret) and the member who created it.
	var secrets []string
	for _, name := range []string{"first", "second", "third"} {
		secrets = append(secrets, e.newToken(t, c, name))
	}
	_, _, err := e.app.iss.Issue(t.Context(), apitoken.IssueParams{AccountID: "acct_other", Name: "not yours"})
	require.NoError(t, err)

	_, body = e.do(t, c, "GET", prefsPath, nil, nil)
	toks := e.tokens(t, demoAccount)
	require.Len(t, toks, 3)
	last := -1
	for j, tok := range toks {
		i := strings.Index(body, `action="/account/tokens/`+tok.ID+`/delete"`)
		require.Greater(t, i, last, "token %q is not listed (with its Delete button) after the one before it", tok.Name)
		assert.Contains(t, body, `<time datetime="`+tok.CreatedAt.UTC().Format(time.RFC3339)+`">`, "no creation time for %q", tok.Name)
		assert.Contains(t, body, "<code title=\"The last characters of the token, as you see them at the end of yours\">…"+secrets[j][len(secrets[j])-4:]+"</code>",
			"the hint of %q is not the end of its secret", tok.Name)
		assert.Contains(t, body, `<td data-label="Created by"><bdi>alice</bdi></td>`, "the member who created %q", tok.Name)
		assert.Contains(t, body, "<bdi>"+tok.Name+"</bdi>", "a name can turn its row right to left")
		last = i
	}
	assert.NotContains(t, body, "not yours", "another account's token is listed")
	assert.Equal(t, 3, strings.Count(body, `<span class="muted">not yet</span>`), "no token was used yet")

	// A call to the API is recorded, in the background, as the first
	// token's last use.
	status, _ := e.whoami(t, secrets[0])
	require.Equal(t, http.StatusOK, status)
	require.Eventually(t, func() bool { return !e.tokens(t, demoAccount)[0].LastUsedAt.IsZero() }, 5*time.Second, 10*time.Millisecond)
	_, body = e.do(t, c, "GET", prefsPath, nil, nil)
	assert.Equal(t, 2, strings.Count(body, `<span class="muted">not yet</span>`), "the used token shows its last use")

	t.Run("nok, forged Host: the curl commands keep the app's own URL", func(t *testing.T) {
		for _, host := range []string{"evil.example", "evil.example:1", "evil.example';$(id)"} {
			req, err := http.NewRequestWithContext(t.Context(), "GET", e.srv.URL+prefsPath, nil)
			require.NoError(t, err)
			req.Host = host
			for _, ck := range c.Jar.Cookies(req.URL) {
				req.AddCookie(ck)
			}
			resp, err := c.Do(req)
			require.NoError(t, err)
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			require.NoError(t, err)
			require.Equal(t, http.StatusOK, resp.StatusCode)
			body := string(b)
			assert.NotContains(t, body, "evil.example", "the page used the Host header")
			assert.NotContains(t, body, "$(id)", "the page used the Host header")
			assert.Equal(t, 2, strings.Count(body, ` '`+e.srv.URL+whoamiPath+`'</code>`), "Host %q", host)
		}
	})

	t.Run("ok, flash after delete", func(t *testing.T) {
		_, body := e.do(t, c, "GET", prefsPath+"?deleted=aB3z", nil, nil)
		assert.Contains(t, body, "Token …aB3z was deleted.")
	})
	t.Run("nok, flash with anything but a hint is ignored", func(t *testing.T) {
		_, body := e.do(t, c, "GET", prefsPath+"?deleted=%3Cb%3Ehi", nil, nil)
		assert.NotContains(t, body, "was deleted")
	})
	t.Run("nok, store down: 503, nothing listed", func(t *testing.T) {
		e.store.fail.Store(true)
		defer e.store.fail.Store(false)
		resp, body := e.do(t, c, "GET", prefsPath, nil, nil)
		assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
		assert.NotContains(t, body, errDown.Error())
	})
}

func TestGenerate(t *testing.T) {
	e := newEnv(t)
	// The app and the Issuer run at noon UTC today: "today" and "tomorrow"
	// stay right even if the test runs across midnight.
	noon := time.Now().UTC().Truncate(24 * time.Hour).Add(12 * time.Hour)
	e.clock.Advance(time.Until(noon))
	c := e.signedIn(t, "alice")
	today := e.clock.Now().UTC().Format(time.DateOnly)
	tomorrow := e.clock.Now().UTC().AddDate(0, 0, 1).Format(time.DateOnly)
	day := func(s string) time.Time { d, _ := time.Parse(time.DateOnly, s); return d }

	tests := []struct {
		name    string
		fields  url.Values
		status  int
		want    string    // in the body
		expires time.Time // of the token, when ok; approximate for "days"
		days    int
	}{
		{"ok, name, never expires", url.Values{"name": {"CI deploy"}, "expiry": {"never"}}, http.StatusOK, "CI deploy", time.Time{}, 0},
		{"ok, no name, no expiry field", url.Values{}, http.StatusOK, "(unnamed)", time.Time{}, 0},
		{"ok, 128-byte name", url.Values{"name": {strings.Repeat("n", 128)}}, http.StatusOK, strings.Repeat("n", 128), time.Time{}, 0},
		{"ok, 30 days", url.Values{"name": {"month"}, "expiry": {"30"}}, http.StatusOK, "month", time.Time{}, 30},
		{"ok, on a date", url.Values{"name": {"dated"}, "expiry": {"date"}, "date": {tomorrow}}, http.StatusOK, "dated", day(tomorrow), 0},
		{"nok, 129-byte name", url.Values{"name": {strings.Repeat("n", 129)}}, http.StatusBadRequest, "The name is too long: use at most 128 bytes.", time.Time{}, 0},
		{"nok, control character in name", url.Values{"name": {"a\tb"}}, http.StatusBadRequest, "The name has invalid characters: use printable text only.", time.Time{}, 0},
		{"nok, name not UTF-8", url.Values{"name": {"a\xffb"}}, http.StatusBadRequest, "The name has invalid characters: use printable text only.", time.Time{}, 0},
		{"nok, unknown expiry", url.Values{"expiry": {"5"}}, http.StatusBadRequest, "Choose an expiry from the list.", time.Time{}, 0},
		{"nok, date choice without a date", url.Values{"expiry": {"date"}}, http.StatusBadRequest, "Choose an expiry date (YYYY-MM-DD).", time.Time{}, 0},
		{"nok, malformed date", url.Values{"expiry": {"date"}, "date": {"2030-13-01"}}, http.StatusBadRequest, "Choose an expiry date (YYYY-MM-DD).", time.Time{}, 0},
		{"nok, past date", url.Values{"expiry": {"date"}, "date": {"2020-01-01"}}, http.StatusBadRequest, "Choose an expiry date in the future.", time.Time{}, 0},
		{"nok, today is already past midnight", url.Values{"expiry": {"date"}, "date": {today}}, http.StatusBadRequest, "Choose an expiry date in the future.", time.Time{}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.tokens(t, demoAccount)
			start := e.clock.Now()
			resp, body := e.generate(t, c, tt.fields)
			require.Equal(t, tt.status, resp.StatusCode, body)
			assert.Contains(t, body, escaped(tt.want))
			assert.Equal(t, "no-store", resp.Header.Get("Cache-Control"))
			after := e.tokens(t, demoAccount)
			if tt.status != http.StatusOK {
				assert.Len(t, after, len(before), "a refused form generated a token")
				assert.NotRegexp(t, secretRE, body, "a refused form shows a token")
				assert.Contains(t, body, `id="form-error"`)
				return
			}
			require.Len(t, after, len(before)+1)
			tok := after[len(after)-1]
			secret := e.secretIn(t, body)
			assert.Equal(t, 1, strings.Count(body, secret), "the secret must appear once, in the dialog")
			acct := accountRE.FindStringSubmatch(body)
			require.NotNil(t, acct, "the dialog shows no account id")
			assert.Equal(t, demoAccount, acct[1])
			assert.Contains(t, body, "only once")

			got, err := e.app.iss.Verify(t.Context(), demoAccount, secret)
			require.NoError(t, err, "the shown secret does not verify")
			assert.Equal(t, tok.ID, got.ID)
			assert.Equal(t, "alice", got.MemberID)
			assert.Equal(t, []string{"whoami"}, got.Scopes)
			switch {
			case tt.days > 0:
				want := start.AddDate(0, 0, tt.days)
				assert.WithinDuration(t, want, got.ExpiresAt, 5*time.Second)
			default:
				assert.True(t, tt.expires.Equal(got.ExpiresAt), "ExpiresAt %v, want %v", got.ExpiresAt, tt.expires)
			}
			hint := secret[len(secret)-4:]
			assert.Equal(t, hint, tok.Hint)
			assert.Contains(t, body, " …"+hint+"</span>", "the dialog shows the hint, the end of the secret it shows")
		})
	}

	t.Run("nok, replayed post: one token, then 409", func(t *testing.T) {
		before := len(e.tokens(t, demoAccount))
		form := url.Values{"nonce": {e.nonce(t, c)}, "name": {"once"}}
		resp, body := e.do(t, c, "POST", "/account/tokens", form, nil)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		e.secretIn(t, body)
		resp, body = e.do(t, c, "POST", "/account/tokens", form, nil)
		assert.Equal(t, http.StatusConflict, resp.StatusCode)
		// The browser may have dropped the first answer: the page says
		// where that token is, and lists it.
		assert.Contains(t, body, escaped("This form was already used. If a token was generated from it, it is in the list below: delete it if you do not have its secret."))
		assert.Contains(t, body, "<bdi>once</bdi>")
		assert.Regexp(t, nonceRE, body, "no fresh form")
		assert.NotRegexp(t, secretRE, body)
		assert.Len(t, e.tokens(t, demoAccount), before+1)
	})

	t.Run("nok, double post at once: one token, one 409", func(t *testing.T) {
		before := len(e.tokens(t, demoAccount))
		form := url.Values{"nonce": {e.nonce(t, c)}, "name": {"twice"}}
		e.store.delay.Store(int64(300 * time.Millisecond))
		defer e.store.delay.Store(0)
		statuses := make(chan int, 2)
		for range 2 {
			go func() {
				req, err := http.NewRequest("POST", e.srv.URL+"/account/tokens", strings.NewReader(form.Encode()))
				if err != nil {
					statuses <- 0
					return
				}
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				for _, ck := range c.Jar.Cookies(req.URL) {
					req.AddCookie(ck)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					statuses <- 0
					return
				}
				resp.Body.Close()
				statuses <- resp.StatusCode
			}()
		}
		got := []int{<-statuses, <-statuses}
		assert.ElementsMatch(t, []int{http.StatusOK, http.StatusConflict}, got)
		assert.Len(t, e.tokens(t, demoAccount), before+1, "one form, one token")
	})

	t.Run("nok, refused forms use up their nonce too", func(t *testing.T) {
		form := url.Values{"nonce": {e.nonce(t, c)}, "expiry": {"5"}}
		resp, _ := e.do(t, c, "POST", "/account/tokens", form, nil)
		require.Equal(t, http.StatusBadRequest, resp.StatusCode)
		form.Set("expiry", "never")
		resp, _ = e.do(t, c, "POST", "/account/tokens", form, nil)
		assert.Equal(t, http.StatusConflict, resp.StatusCode)
	})

	t.Run("ok, another member's reloads keep this form alive", func(t *testing.T) {
		n := e.nonce(t, c)
		bob := e.signedIn(t, "bob")
		for range maxMemberNonces + 5 {
			e.nonce(t, bob)
		}
		before := len(e.tokens(t, demoAccount))
		resp, body := e.do(t, c, "POST", "/account/tokens", url.Values{"nonce": {n}}, nil)
		require.Equal(t, http.StatusOK, resp.StatusCode, body)
		e.secretIn(t, body)
		assert.Len(t, e.tokens(t, demoAccount), before+1)
	})

	nonceTests := []struct {
		name  string
		nonce func(t *testing.T) string
	}{
		{"nok, missing nonce", func(*testing.T) string { return "" }},
		{"nok, made-up nonce", func(*testing.T) string { return "AAAAAAAAAAAAAAAAAAAAAA" }},
		{"nok, another member's nonce", func(t *testing.T) string { return e.nonce(t, e.signedIn(t, "bob")) }},
		{"nok, expired nonce", func(t *testing.T) string {
			n := e.nonce(t, c)
			e.clock.Advance(nonceMaxAge)
			t.Cleanup(func() { e.clock.Advance(-nonceMaxAge) })
			return n
		}},
	}
	for _, tt := range nonceTests {
		t.Run(tt.name+": 400, reload", func(t *testing.T) {
			before := len(e.tokens(t, demoAccount))
			resp, body := e.do(t, c, "POST", "/account/tokens", url.Values{"nonce": {tt.nonce(t)}, "name": {"x"}}, nil)
			assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
			assert.Contains(t, body, "This form has expired or is invalid, so no token was generated. Reload the page")
			assert.Len(t, e.tokens(t, demoAccount), before)
		})
	}

	t.Run("nok, store down: 503, no secret shown", func(t *testing.T) {
		n := e.nonce(t, c)
		e.store.fail.Store(true)
		defer e.store.fail.Store(false)
		resp, body := e.do(t, c, "POST", "/account/tokens", url.Values{"nonce": {n}}, nil)
		assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
		assert.NotRegexp(t, secretRE, body)
	})
}

// escaped escapes s as html/template does in text.
func escaped(s string) string {
	return strings.NewReplacer(`"`, "&#34;", "'", "&#39;", "<", "&lt;", ">", "&gt;").Replace(s)
}

func TestDelete(t *testing.T) {
	e := newEnv(t)
	c := e.signedIn(t, "alice")

	t.Run("ok, deleted: gone from the list, 401 at once, flash", func(t *testing.T) {
		secret := e.newToken(t, c, "to delete")
		keep := e.newToken(t, c, "to keep")
		status, got := e.whoami(t, secret)
		require.Equal(t, http.StatusOK, status)

		resp, _ := e.do(t, c, "POST", "/account/tokens/"+got.TokenID+"/delete", url.Values{}, nil)
		require.Equal(t, http.StatusSeeOther, resp.StatusCode)
		loc := resp.Header.Get("Location")
		hint := secret[len(secret)-4:]
		assert.True(t, strings.HasPrefix(loc, prefsPath+"?deleted="+hint+"."), loc)

		status, _ = e.whoami(t, secret)
		assert.Equal(t, http.StatusUnauthorized, status, "a deleted token still works")
		status, _ = e.whoami(t, keep)
		assert.Equal(t, http.StatusOK, status, "deleting one token broke another")
		_, body := e.do(t, c, "GET", loc, nil, nil)
		assert.Contains(t, body, "Token “to delete” (…"+hint+") was deleted.", "the message names the token")
		assert.NotContains(t, body, got.TokenID)
		assert.Contains(t, body, "to keep")

		// The name is signed: a link from elsewhere cannot choose it.
		forged := strings.Replace(loc, "dG8gZGVsZXRl", "SGFja2Vk", 1)
		require.NotEqual(t, loc, forged)
		_, body = e.do(t, c, "GET", forged, nil, nil)
		assert.NotContains(t, body, "was deleted")
	})

	t.Run("ok, an unnamed token's message names its hint", func(t *testing.T) {
		secret := e.newToken(t, c, "")
		_, got := e.whoami(t, secret)
		resp, _ := e.do(t, c, "POST", "/account/tokens/"+got.TokenID+"/delete", url.Values{}, nil)
		require.Equal(t, http.StatusSeeOther, resp.StatusCode)
		loc := resp.Header.Get("Location")
		hint := secret[len(secret)-4:]
		assert.Equal(t, prefsPath+"?deleted="+hint, loc)
		_, body := e.do(t, c, "GET", loc, nil, nil)
		assert.Contains(t, body, "Token …"+hint+" was deleted.")
	})

	otherSecret, other, err := e.app.iss.Issue(t.Context(), apitoken.IssueParams{AccountID: "acct_other", Name: "not yours"})
	require.NoError(t, err)
	mine := e.newToken(t, c, "mine")
	_, mineTok := e.whoami(t, mine)

	tests := []struct {
		name   string
		path   string
		header http.Header
		status int
	}{
		{"nok, another account's token", "/account/tokens/" + other.ID + "/delete", nil, http.StatusNotFound},
		{"nok, unknown id", "/account/tokens/01a21eee-5c03-7775-910c-47bca0e9d422/delete", nil, http.StatusNotFound},
		{"nok, oversized id", "/account/tokens/" + strings.Repeat("x", 200) + "/delete", nil, http.StatusNotFound},
		{"nok, cross-site post", "/account/tokens/" + mineTok.TokenID + "/delete", http.Header{"Sec-Fetch-Site": {"cross-site"}}, http.StatusForbidden},
		{"nok, post from another origin", "/account/tokens/" + mineTok.TokenID + "/delete", http.Header{"Origin": {"http://evil.example"}}, http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, _ := e.do(t, c, "POST", tt.path, url.Values{}, tt.header)
			assert.Equal(t, tt.status, resp.StatusCode)
			_, err := e.app.iss.Verify(t.Context(), "acct_other", otherSecret)
			assert.NoError(t, err, "another account's token stopped working")
			status, _ := e.whoami(t, mine)
			assert.Equal(t, http.StatusOK, status, "a refused delete deleted a token")
		})
	}

	t.Run("nok, GET does not delete", func(t *testing.T) {
		resp, body := e.do(t, c, "GET", "/account/tokens/"+mineTok.TokenID+"/delete", nil, nil)
		assert.Equal(t, http.StatusNotFound, resp.StatusCode)
		assert.Contains(t, body, "Page not found")
		status, _ := e.whoami(t, mine)
		assert.Equal(t, http.StatusOK, status)
	})

	t.Run("nok, replayed delete: 404", func(t *testing.T) {
		path := "/account/tokens/" + mineTok.TokenID + "/delete"
		resp, _ := e.do(t, c, "POST", path, url.Values{}, nil)
		require.Equal(t, http.StatusSeeOther, resp.StatusCode)
		resp, body := e.do(t, c, "POST", path, url.Values{}, nil)
		assert.Equal(t, http.StatusNotFound, resp.StatusCode)
		assert.Contains(t, body, "no such token")
	})

	t.Run("nok, store down: 503", func(t *testing.T) {
		secret := e.newToken(t, c, "survivor")
		_, tok := e.whoami(t, secret)
		e.store.fail.Store(true)
		resp, _ := e.do(t, c, "POST", "/account/tokens/"+tok.TokenID+"/delete", url.Values{}, nil)
		e.store.fail.Store(false)
		assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
		status, _ := e.whoami(t, secret)
		assert.Equal(t, http.StatusOK, status)
	})
}

func TestCrossOrigin(t *testing.T) {
	e := newEnv(t)
	c := e.signedIn(t, "alice")
	tests := []struct {
		name   string
		header http.Header
		status int
	}{
		{"ok, same origin", http.Header{"Sec-Fetch-Site": {"same-origin"}}, http.StatusOK},
		{"ok, no browser headers (curl)", nil, http.StatusOK},
		{"nok, cross-site", http.Header{"Sec-Fetch-Site": {"cross-site"}}, http.StatusForbidden},
		{"nok, same-site but another origin", http.Header{"Sec-Fetch-Site": {"same-site"}}, http.StatusForbidden},
		{"nok, foreign Origin", http.Header{"Origin": {"http://evil.example"}}, http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name+", generate", func(t *testing.T) {
			before := len(e.tokens(t, demoAccount))
			form := url.Values{"nonce": {e.nonce(t, c)}, "name": {"x"}}
			resp, body := e.do(t, c, "POST", "/account/tokens", form, tt.header)
			require.Equal(t, tt.status, resp.StatusCode)
			if tt.status == http.StatusOK {
				e.secretIn(t, body)
				assert.Len(t, e.tokens(t, demoAccount), before+1)
				return
			}
			assert.Contains(t, body, "sent from another site")
			assert.Len(t, e.tokens(t, demoAccount), before)
		})
		t.Run(tt.name+", sign-in", func(t *testing.T) {
			resp, _ := e.do(t, e.client(t), "POST", "/signin", url.Values{"member": {"mallory"}}, tt.header)
			if tt.status == http.StatusOK {
				assert.Equal(t, http.StatusSeeOther, resp.StatusCode)
				assert.NotEmpty(t, resp.Header.Values("Set-Cookie"))
				return
			}
			assert.Equal(t, tt.status, resp.StatusCode)
			assert.Empty(t, resp.Header.Values("Set-Cookie"), "a cross-site sign-in set a cookie")
		})
		t.Run(tt.name+", sign-out", func(t *testing.T) {
			c := e.signedIn(t, "alice")
			resp, _ := e.do(t, c, "POST", "/signout", url.Values{}, tt.header)
			if tt.status == http.StatusOK {
				assert.Equal(t, http.StatusSeeOther, resp.StatusCode)
				assert.NotEmpty(t, resp.Header.Values("Set-Cookie"))
				return
			}
			assert.Equal(t, tt.status, resp.StatusCode)
			assert.Empty(t, resp.Header.Values("Set-Cookie"), "a cross-site sign-out touched the cookie")
			resp, _ = e.do(t, c, "GET", prefsPath, nil, nil)
			assert.Equal(t, http.StatusOK, resp.StatusCode, "a cross-site post signed the member out")
		})
	}
}

func TestSecurityHeaders(t *testing.T) {
	e := newEnv(t)
	c := e.signedIn(t, "alice")
	pages := []struct {
		name string
		do   func(t *testing.T) (*http.Response, string)
	}{
		{"sign-in page", func(t *testing.T) (*http.Response, string) { return e.do(t, e.client(t), "GET", "/", nil, nil) }},
		{"refused sign-in", func(t *testing.T) (*http.Response, string) {
			return e.do(t, e.client(t), "POST", "/signin", url.Values{}, nil)
		}},
		{"preferences", func(t *testing.T) (*http.Response, string) { return e.do(t, c, "GET", prefsPath, nil, nil) }},
		{"new token dialog", func(t *testing.T) (*http.Response, string) {
			resp, body := e.generate(t, c, url.Values{"name": {"h"}})
			e.secretIn(t, body)
			return resp, body
		}},
		{"error page", func(t *testing.T) (*http.Response, string) {
			return e.do(t, c, "POST", "/account/tokens/nope/delete", url.Values{}, nil)
		}},
	}
	for _, p := range pages {
		t.Run("ok, "+p.name, func(t *testing.T) {
			resp, body := p.do(t)
			h := resp.Header
			assert.Equal(t, contentPolicy, h.Get("Content-Security-Policy"))
			assert.Contains(t, h.Get("Content-Security-Policy"), "default-src 'self'")
			assert.Equal(t, "nosniff", h.Get("X-Content-Type-Options"))
			assert.Equal(t, "no-referrer", h.Get("Referrer-Policy"))
			assert.Equal(t, "no-store", h.Get("Cache-Control"))
			assert.Equal(t, "text/html; charset=utf-8", h.Get("Content-Type"))
			// The policy forbids inline code: the pages must not need it.
			assert.NotRegexp(t, `<script>|<script [^>]*>[^<]`, body, "inline script")
			assert.NotRegexp(t, `<style|\sstyle=|\son[a-z]+=`, body, "inline style or handler")
		})
	}
}

func TestWhoami(t *testing.T) {
	e := newEnv(t)
	c := e.signedIn(t, "alice")
	secret := e.newToken(t, c, "api")
	tok := e.tokens(t, demoAccount)[0]

	tests := []struct {
		name      string
		path      string
		set       func(r *http.Request)
		status    int
		challenge string
	}{
		{"ok, basic", whoamiPath, func(r *http.Request) { r.SetBasicAuth(demoAccount, secret) }, http.StatusOK, ""},
		{"ok, bearer and account header", whoamiPath, func(r *http.Request) {
			r.Header.Set("Authorization", "Bearer "+secret)
			r.Header.Set("X-Account-ID", demoAccount)
		}, http.StatusOK, ""},
		{"nok, no credentials", whoamiPath, func(*http.Request) {}, http.StatusUnauthorized, `Bearer realm="api"`},
		{"nok, wrong account", whoamiPath, func(r *http.Request) { r.SetBasicAuth("acct_other", secret) }, http.StatusUnauthorized, `error="invalid_token"`},
		{"nok, session cookie is no API credential", whoamiPath, func(r *http.Request) {
			for _, ck := range c.Jar.Cookies(must(url.Parse(e.srv.URL))) {
				r.AddCookie(ck)
			}
		}, http.StatusUnauthorized, `Bearer realm="api"`},
		{"nok, unknown API path without a token", "/api/v1/nope", func(*http.Request) {}, http.StatusUnauthorized, `Bearer realm="api"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), "GET", e.srv.URL+tt.path, nil)
			require.NoError(t, err)
			tt.set(req)
			resp, err := e.srv.Client().Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			require.Equal(t, tt.status, resp.StatusCode, string(body))
			assert.NotContains(t, string(body), secret)
			assert.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"))
			if tt.status != http.StatusOK {
				assert.Contains(t, resp.Header.Get("WWW-Authenticate"), tt.challenge)
				return
			}
			assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
			var got whoamiResponse
			require.NoError(t, json.Unmarshal(body, &got))
			// The last use, written in the background, is there from the
			// second call on.
			assert.False(t, !got.LastUsedAt.IsZero() && got.LastUsedAt.Before(tok.CreatedAt), "last used before its creation")
			got.LastUsedAt = time.Time{}
			assert.Equal(t, whoamiResponse{
				AccountID: demoAccount, MemberID: "alice", TokenID: tok.ID, TokenName: "api",
				Scopes: []string{"whoami"}, CreatedAt: tok.CreatedAt,
			}, got)
		})
	}

	t.Run("nok, store down: 503, not 401", func(t *testing.T) {
		e.store.fail.Store(true)
		defer e.store.fail.Store(false)
		status, _ := e.whoami(t, secret)
		assert.Equal(t, http.StatusServiceUnavailable, status)
	})
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestNonces(t *testing.T) {
	now := time.Now()

	t.Run("ok, once per form; a replay is told from a made-up value", func(t *testing.T) {
		var n nonces
		v := n.issue("alice", now)
		assert.NoError(t, n.use(v, "alice", now))
		assert.ErrorIs(t, n.use(v, "alice", now), errFormUsed, "a nonce was accepted twice")
		assert.ErrorIs(t, n.use("made-up", "alice", now), errFormInvalid)
	})
	t.Run("nok, another member's", func(t *testing.T) {
		var n nonces
		v := n.issue("alice", now)
		assert.ErrorIs(t, n.use(v, "bob", now), errFormInvalid)
		assert.NoError(t, n.use(v, "alice", now), "a refused use used it up")
	})
	t.Run("nok, expired", func(t *testing.T) {
		var n nonces
		v := n.issue("alice", now)
		assert.ErrorIs(t, n.use(v, "alice", now.Add(nonceMaxAge)), errFormInvalid)
	})
	t.Run("ok, expired nonces are dropped", func(t *testing.T) {
		var n nonces
		n.issue("alice", now)
		n.issue("bob", now)
		n.issue("carol", now.Add(nonceMaxAge))
		assert.Len(t, n.m, 1)
		assert.Len(t, n.byMember, 1)
	})
	t.Run("ok, one member's reload loop drops only their own oldest forms", func(t *testing.T) {
		var n nonces
		bob := n.issue("bob", now)
		var alice []string
		for range maxNonces + 100 {
			alice = append(alice, n.issue("alice", now))
		}
		assert.NoError(t, n.use(bob, "bob", now), "alice's reloads dropped bob's form")
		assert.Len(t, n.byMember["alice"], maxMemberNonces)
		assert.ErrorIs(t, n.use(alice[len(alice)-maxMemberNonces-1], "alice", now), errFormInvalid, "more than the cap kept")
		assert.NoError(t, n.use(alice[len(alice)-maxMemberNonces], "alice", now), "the cap dropped a newer form")
		assert.LessOrEqual(t, n.order.Len(), maxNonces)
	})
	t.Run("ok, bounded: many members cannot fill memory", func(t *testing.T) {
		var n nonces
		for i := range maxNonces + 100 {
			n.issue(strconv.Itoa(i), now)
		}
		assert.LessOrEqual(t, len(n.m), maxNonces)
		assert.LessOrEqual(t, len(n.byMember), maxNonces)
		assert.LessOrEqual(t, n.order.Len(), maxNonces)
		v := n.issue("alice", now)
		assert.NoError(t, n.use(v, "alice", now), "the newest nonce was dropped")
	})
}

func TestCheckBaseURL(t *testing.T) {
	tests := []struct {
		name, in, want string // want "" for an error
	}{
		{"ok, http with a port", "http://127.0.0.1:8080", "http://127.0.0.1:8080"},
		{"ok, https, trailing slash dropped", "https://prefs.example.com/", "https://prefs.example.com"},
		{"ok, IPv6", "http://[::1]:8080", "http://[::1]:8080"},
		{"nok, empty", "", ""},
		{"nok, no scheme", "prefs.example.com", ""},
		{"nok, another scheme", "ftp://prefs.example.com", ""},
		{"nok, no host", "https://", ""},
		{"nok, a path", "https://prefs.example.com/app", ""},
		{"nok, a query", "https://prefs.example.com?x=1", ""},
		{"nok, an empty query", "https://prefs.example.com?", ""},
		{"nok, a fragment", "https://prefs.example.com#x", ""},
		{"nok, user info", "https://u:p@prefs.example.com", ""},
		{"nok, a quote in the host", "https://prefs'.example.com", ""},
		{"nok, shell in the host", "https://$(id).example.com", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := checkBaseURL(tt.in)
			if tt.want == "" {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

// TestOlderTokensWithoutHint lists a token as a store keeps one issued
// before hints existed: the list says it has none, and its delete works
// and says so without a hint.
func TestOlderTokensWithoutHint(t *testing.T) {
	e := newEnv(t)
	c := e.signedIn(t, "alice")
	var h apitoken.Hash
	h[0] = 1
	old := apitoken.Record{Hash: h, Token: apitoken.Token{
		ID: "01900000-0000-7000-8000-000000000001", AccountID: demoAccount, Name: "legacy",
		CreatedAt: time.Now().UTC().Add(-time.Hour).Truncate(time.Microsecond),
	}}
	require.NoError(t, e.store.Create(t.Context(), old))
	_, body := e.do(t, c, "GET", prefsPath, nil, nil)
	assert.Contains(t, body, "none (older token)", "the list says an older token has no hint")
	assert.Contains(t, body, `<span class="muted">unknown</span>`, "and no member")
	resp, _ := e.do(t, c, "POST", "/account/tokens/"+old.ID+"/delete", url.Values{}, nil)
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	_, body = e.do(t, c, "GET", resp.Header.Get("Location"), nil, nil)
	assert.Contains(t, body, "Token “legacy” was deleted.")
}

// TestFavicon checks that /favicon.ico, which browsers ask for on every
// page, is an icon and not a 404, and that every page links it.
func TestFavicon(t *testing.T) {
	e := newEnv(t)
	c := e.signedIn(t, "alice")
	resp, body := e.do(t, c, "GET", "/favicon.ico", nil, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "image/x-icon", resp.Header.Get("Content-Type"))
	assert.True(t, strings.HasPrefix(body, "\x00\x00\x01\x00"), "not an ICO file")
	for _, path := range []string{prefsPath, "/no-such-page"} {
		_, page := e.do(t, c, "GET", path, nil, nil)
		assert.Contains(t, page, `<link rel="icon" href="/favicon.ico"`, path)
	}
	resp, err := http.Get(e.srv.URL + "/") // the sign-in page
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.Contains(t, string(b), `<link rel="icon" href="/favicon.ico"`, "sign-in page")
}

// TestHealthz checks that /healthz tells a ready store from a missing
// schema (a forgotten migration) and from an outage.
func TestHealthz(t *testing.T) {
	e := newEnv(t)
	get := func() (int, string) {
		t.Helper()
		resp, err := http.Get(e.srv.URL + "/healthz")
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(b)
	}

	ready, closeReady, err := openStore(t.Context(), filepath.Join(t.TempDir(), "ready.db"))
	require.NoError(t, err)
	t.Cleanup(closeReady)
	e.app.ready = ready.Ready
	status, body := get()
	assert.Equal(t, http.StatusOK, status)
	assert.Equal(t, "ok\n", body)

	db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "unmigrated.db"))
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	unmigrated, err := sqlstore.New(db, sqlstore.SQLite)
	require.NoError(t, err)
	e.app.ready = unmigrated.Ready
	status, body = get()
	assert.Equal(t, http.StatusServiceUnavailable, status)
	assert.Contains(t, body, "run the migration")

	require.NoError(t, db.Close())
	status, body = get()
	assert.Equal(t, http.StatusServiceUnavailable, status)
	assert.Equal(t, "not ready: the token store is unavailable\n", body)
	assert.Contains(t, e.logs.String(), "run Store.Migrate")
}
