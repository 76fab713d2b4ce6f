package main

import (
	"bufio"
	"cmp"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken-go/apitoken/internal/logcheck"
)

// running is the app started by run: its URL, its output after the first
// line, and how to stop it.
type running struct {
	url  string
	out  *logcheck.Buffer
	stop func(t *testing.T) // cancels run and checks it returned nil
}

// start runs the app on a free port with its tokens in db.
func start(t *testing.T, db string) running { return startAt(t, db, "") }

// startAt is start with the -base-url baseURL.
func startAt(t *testing.T, db, baseURL string) running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := run(ctx, "127.0.0.1:0", db, baseURL, pw)
		pw.CloseWithError(err)
		done <- err
	}()
	br := bufio.NewReader(pr)
	first, err := br.ReadString('\n')
	if err != nil {
		t.Fatalf("run stopped before it served: %v", <-done)
	}
	u := regexp.MustCompile(`http://127\.0\.0\.1:\d+`).FindString(first)
	require.NotEmpty(t, u, "no URL in the first line %q", first)
	out := &logcheck.Buffer{}
	go func() { _, _ = io.Copy(out, br) }()
	return running{url: u, out: out, stop: func(t *testing.T) {
		t.Helper()
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err, "run after cancel")
		case <-time.After(10 * time.Second):
			t.Fatal("run did not return within 10s of cancel")
		}
	}}
}

// member is a browser-like client of a running app.
type member struct {
	t    *testing.T
	base string
	c    *http.Client
}

func newMember(t *testing.T, base, name string) *member {
	t.Helper()
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	m := &member{t: t, base: base, c: &http.Client{Jar: jar, Timeout: 5 * time.Second}}
	resp, body := m.do("POST", "/signin", url.Values{"member": {name}})
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	require.Equal(t, prefsPath, resp.Request.URL.Path, "sign-in did not lead to the preferences")
	return m
}

// do sends a request, following redirects, and returns the final response
// with its body.
func (m *member) do(method, path string, form url.Values) (*http.Response, string) {
	m.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(m.t.Context(), method, m.base+path, body)
	require.NoError(m.t, err)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := m.c.Do(req)
	require.NoError(m.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(m.t, err)
	return resp, string(b)
}

// generate generates a token and returns its secret and id.
func (m *member) generate(name string) (secret, id string) {
	m.t.Helper()
	_, page := m.do("GET", prefsPath, nil)
	n := nonceRE.FindStringSubmatch(page)
	require.NotNil(m.t, n)
	resp, body := m.do("POST", "/account/tokens", url.Values{"nonce": {n[1]}, "name": {name}, "expiry": {"90"}})
	require.Equal(m.t, http.StatusOK, resp.StatusCode, body)
	s := secretRE.FindStringSubmatch(body)
	require.NotNil(m.t, s, "no token in the dialog")
	status, who := callWhoami(m.t, m.base, s[1])
	require.Equal(m.t, http.StatusOK, status)
	return s[1], who.TokenID
}

// callWhoami calls the API with Basic credentials.
func callWhoami(t *testing.T, base, secret string) (int, whoamiResponse) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "GET", base+whoamiPath, nil)
	require.NoError(t, err)
	req.SetBasicAuth(demoAccount, secret)
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var got whoamiResponse
	if resp.StatusCode == http.StatusOK {
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&got))
	}
	return resp.StatusCode, got
}

// lifecycle generates a token through the pages, uses it, deletes it and
// checks that it stopped working; it returns the secret.
func lifecycle(t *testing.T, base string) string {
	t.Helper()
	m := newMember(t, base, "alice")
	secret, id := m.generate("lifecycle")
	_, page := m.do("GET", prefsPath, nil)
	assert.Contains(t, page, "lifecycle")
	assert.NotContains(t, page, secret, "the secret is still on the page after the dialog")

	resp, page := m.do("POST", "/account/tokens/"+id+"/delete", url.Values{})
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, page, "was deleted")
	assert.NotContains(t, page, id)
	status, _ := callWhoami(t, base, secret)
	assert.Equal(t, http.StatusUnauthorized, status, "a deleted token still works")
	return secret
}

// TestRun runs the whole app as `go run` does, on SQLite, through one
// token's life, and checks its log.
func TestRun(t *testing.T) {
	app := start(t, filepath.Join(t.TempDir(), "tokens.db"))
	secret := lifecycle(t, app.url)
	app.stop(t)

	logs := app.out.String()
	assert.Contains(t, logs, "path=/account/tokens status=200")
	assert.Contains(t, logs, "path=/api/v1/whoami status=401")
	assert.NotContains(t, logs, secret, "the secret reached the log")
}

// TestRunMetrics checks that /metrics shows the verifications of the
// lifecycle by outcome, and Verify's duration, without a secret or an id.
func TestRunMetrics(t *testing.T) {
	app := start(t, filepath.Join(t.TempDir(), "tokens.db"))
	defer app.stop(t)
	secret := lifecycle(t, app.url)
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(app.url + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	body := string(b)
	for _, want := range []string{
		`apitoken_verifications_total{outcome="verified"} 1`, // the one call of generate
		`apitoken_verifications_total{outcome="unknown"} 1`,  // after the delete
		`apitoken_verify_duration_seconds_count{cached="false",outcome="verified"} 1`,
		`apitoken_events_total{kind="issued"} 1`,
		`apitoken_events_total{kind="deleted"} 1`,
	} {
		assert.Contains(t, body, want)
	}
	assert.NotContains(t, body, secret)
	assert.NotContains(t, body, demoAccount)
}

// TestRunBaseURL checks the curl commands: by default on the address that
// run listens on (port 0 became a real port), else on -base-url.
func TestRunBaseURL(t *testing.T) {
	tests := []struct {
		name, baseURL string
		want          func(app running) string
	}{
		{"ok, default: the real listen address", "", func(app running) string { return app.url }},
		{"ok, -base-url", "http://prefs.example:8080/", func(running) string { return "http://prefs.example:8080" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app := startAt(t, filepath.Join(t.TempDir(), "tokens.db"), tt.baseURL)
			defer app.stop(t)
			_, page := newMember(t, app.url, "alice").do("GET", prefsPath, nil)
			assert.Contains(t, page, `curl -u "acct_demo:$TOKEN" '`+tt.want(app)+whoamiPath+`'`)
		})
	}
}

// TestRunBadBaseURL checks that run refuses a -base-url that is not a bare
// http or https URL.
func TestRunBadBaseURL(t *testing.T) {
	for _, u := range []string{"prefs.example", "ftp://prefs.example", "https://prefs.example/app", "https://prefs.example?x", "https://a'b"} {
		t.Run("nok, "+u, func(t *testing.T) {
			err := run(t.Context(), "127.0.0.1:0", filepath.Join(t.TempDir(), "tokens.db"), u, io.Discard)
			assert.ErrorContains(t, err, "base URL")
		})
	}
}

// TestRunRestart checks that tokens outlast a restart (they are in the
// database) and that sessions do not (their key is made at start).
func TestRunRestart(t *testing.T) {
	db := filepath.Join(t.TempDir(), "tokens.db")
	first := start(t, db)
	m := newMember(t, first.url, "alice")
	secret, _ := m.generate("kept")
	first.stop(t)

	second := start(t, db)
	defer second.stop(t)
	status, got := callWhoami(t, second.url, secret)
	assert.Equal(t, http.StatusOK, status, "a token did not outlast a restart")
	assert.Equal(t, "kept", got.TokenName)

	// Cookies do not name a port: the first run's session cookie goes to
	// the second run, which must not accept it.
	m.base = second.url
	resp, _ := m.do("GET", prefsPath, nil)
	assert.Equal(t, "/", resp.Request.URL.Path, "a session outlasted a restart")
}

// TestRunBadDB checks that a database that cannot be opened stops run with
// an error before it serves.
func TestRunBadDB(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "no-such-folder", "tokens.db")
	assert.Error(t, run(t.Context(), "127.0.0.1:0", bad, "", io.Discard))
}

// TestRunBadDBForm checks that a -db value of a form the demo does not open
// stops run with an error naming the flag, and never the value: a password.
func TestRunBadDBForm(t *testing.T) {
	for _, tc := range []struct{ name, db, want string }{
		{"empty", " ", "-db is empty: give an SQLite file path"},
		{"another scheme", "sqlserver://sa:s3cret@db/app", "-db: a sqlserver:// URL is not a database"},
		{"a MySQL DSN the driver refuses", "app:s3cret@tcp(db:3306)app", "-db: not a valid MySQL DSN"},
		{"a mysql:// URL with parameters the driver refuses", "mysql://app:s3cret@db/app?parseTime=maybe", "-db: the parameters of the mysql:// URL are not go-sql-driver/mysql's"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := run(t.Context(), "127.0.0.1:0", tc.db, "", io.Discard)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.NotContains(t, err.Error(), "s3cret", "an error would print a password")
		})
	}
}

// TestRunBadAddr checks that a listen error comes back from run.
func TestRunBadAddr(t *testing.T) {
	assert.Error(t, run(t.Context(), "127.0.0.1:-1", filepath.Join(t.TempDir(), "tokens.db"), "", io.Discard))
}

// TestRunServerDatabases runs the app on PostgreSQL and MySQL from their
// DSNs, each in a schema or database of its own, dropped afterwards.
func TestRunServerDatabases(t *testing.T) {
	t.Run("ok, PostgreSQL", func(t *testing.T) {
		dsn := os.Getenv("APITOKEN_PG_DSN")
		if dsn == "" {
			t.Skip("set APITOKEN_PG_DSN to a PostgreSQL URL (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable) to run on PostgreSQL")
		}
		schema := "accountprefs_" + randomHex(t)
		admin := openAdmin(t, "pgx", dsn)
		_, err := admin.ExecContext(t.Context(), "CREATE SCHEMA "+schema)
		require.NoError(t, err)
		t.Cleanup(func() { _, _ = admin.Exec("DROP SCHEMA " + schema + " CASCADE") })
		u, err := url.Parse(dsn)
		require.NoError(t, err)
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()

		app := start(t, u.String())
		lifecycle(t, app.url)
		app.stop(t)

		// The same database as a libpq keyword/value string.
		pw, _ := u.User.Password()
		kv := fmt.Sprintf("host=%s port=%s user=%s dbname=%s sslmode=disable search_path=%s", u.Hostname(), cmp.Or(u.Port(), "5432"), u.User.Username(), strings.TrimPrefix(u.Path, "/"), schema)
		if pw != "" {
			kv += " password=" + pw
		}
		app = start(t, kv)
		lifecycle(t, app.url)
		app.stop(t)
	})
	t.Run("ok, MySQL", func(t *testing.T) {
		dsn := os.Getenv("APITOKEN_MYSQL_DSN")
		if dsn == "" {
			t.Skip("set APITOKEN_MYSQL_DSN to a go-sql-driver/mysql DSN (e.g. root@tcp(127.0.0.1:3306)/test?parseTime=true) to run on MySQL or MariaDB")
		}
		name := "accountprefs_" + randomHex(t)
		admin := openAdmin(t, "mysql", dsn)
		_, err := admin.ExecContext(t.Context(), "CREATE DATABASE "+name)
		require.NoError(t, err)
		t.Cleanup(func() { _, _ = admin.Exec("DROP DATABASE " + name) })
		cfg, err := mysql.ParseDSN(dsn)
		require.NoError(t, err)
		cfg.DBName = name

		app := start(t, cfg.FormatDSN())
		lifecycle(t, app.url)
		app.stop(t)

		// The same database as a mysql:// URL.
		mu := url.URL{Scheme: "mysql", Host: cfg.Addr, Path: "/" + name, RawQuery: "parseTime=true"}
		if cfg.Passwd != "" {
			mu.User = url.UserPassword(cfg.User, cfg.Passwd)
		} else {
			mu.User = url.User(cfg.User)
		}
		app = start(t, mu.String())
		lifecycle(t, app.url)
		app.stop(t)
	})
}

func openAdmin(t *testing.T, driver, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open(driver, dsn)
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	require.NoError(t, db.PingContext(t.Context()))
	return db
}

func randomHex(t *testing.T) string {
	b := make([]byte, 6)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return hex.EncodeToString(b)
}
