package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/apitoken-go/apitoken"
)

// demo is a running demo: the secret and URL it printed, and how to stop it.
type demo struct {
	secret, url string
	stop        func(t *testing.T) // cancels run and checks it returned nil
}

// startDemo runs the demo on a free port with its tokens in dbPath and reads
// what it prints.
func startDemo(t *testing.T, dbPath string) demo {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	t.Cleanup(cancel)

	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := run(ctx, "127.0.0.1:0", dbPath, pw)
		pw.CloseWithError(err)
		done <- err
	}()

	// Read what the demo prints up to its last line, then drain the rest.
	var out strings.Builder
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		out.WriteString(sc.Text() + "\n")
		if strings.Contains(sc.Text(), "Ctrl+C") {
			break
		}
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	printed := out.String()
	if !strings.Contains(printed, "Ctrl+C") {
		t.Fatalf("run stopped before it served: %v (printed %q)", <-done, printed)
	}

	m := regexp.MustCompile(`(?m)^  TOKEN=(\S+)$`).FindStringSubmatch(printed)
	if m == nil {
		t.Fatalf("no TOKEN= line in the output:\n%s", printed)
	}
	secret := m[1]
	if !regexp.MustCompile(`^` + apitoken.Pattern + `$`).MatchString(secret) {
		t.Errorf("the printed token does not match apitoken.Pattern")
	}
	if n := strings.Count(printed, secret); n != 1 {
		t.Errorf("the token is printed %d times, want once", n)
	}
	if !strings.Contains(printed, "Account ID: "+demoAccount+"\n") {
		t.Errorf("the account id is not printed:\n%s", printed)
	}
	u := regexp.MustCompile(`http://127\.0\.0\.1:\d+/api/v1/whoami`).FindString(printed)
	if u == "" {
		t.Fatalf("no whoami URL in the output:\n%s", printed)
	}
	for _, cmd := range []string{
		`curl -H "Authorization: Bearer $TOKEN" -H "X-Account-ID: ` + demoAccount + `" ` + u,
		`curl -u "` + demoAccount + `:$TOKEN" ` + u,
	} {
		if !strings.Contains(printed, cmd) {
			t.Errorf("the output lacks the command %s", cmd)
		}
	}
	return demo{secret: secret, url: u, stop: func(t *testing.T) {
		t.Helper()
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("run returned %v after cancel, want nil", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("run did not return within 10s of cancel")
		}
	}}
}

// get calls url with the demo account's Basic credentials and secret, and
// returns the status.
func get(t *testing.T, url, secret string) int {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(demoAccount, secret)
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestRun starts the demo on a free port, reads the token it prints, calls
// the API with and without it, and stops the demo.
func TestRun(t *testing.T) {
	d := startDemo(t, filepath.Join(t.TempDir(), "tokens.db"))
	ctx, secret, u := t.Context(), d.secret, d.url

	client := &http.Client{Timeout: 5 * time.Second}
	call := func(t *testing.T, set func(*http.Request)) *http.Response {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, "GET", u, nil)
		if err != nil {
			t.Fatal(err)
		}
		set(req)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}

	t.Run("ok, bearer and account header", func(t *testing.T) {
		resp := call(t, func(r *http.Request) {
			r.Header.Set("Authorization", "Bearer "+secret)
			r.Header.Set("X-Account-ID", demoAccount)
		})
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d, want 200", resp.StatusCode)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type %q, want application/json", ct)
		}
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(body), secret) {
			t.Errorf("the response contains the secret")
		}
		var got whoamiResponse
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatalf("body is not JSON: %v", err)
		}
		if got.AccountID != demoAccount || got.TokenID == "" || got.TokenName != "demo token" || got.CreatedAt.IsZero() {
			t.Errorf("whoami = %+v, want the demo token of %s", got, demoAccount)
		}
	})

	t.Run("ok, basic", func(t *testing.T) {
		resp := call(t, func(r *http.Request) { r.SetBasicAuth(demoAccount, secret) })
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d, want 200", resp.StatusCode)
		}
	})

	t.Run("nok, no credentials", func(t *testing.T) {
		resp := call(t, func(*http.Request) {})
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("status %d, want 401", resp.StatusCode)
		}
		if got := resp.Header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer ") {
			t.Errorf("WWW-Authenticate %q, want a Bearer challenge", got)
		}
	})

	t.Run("nok, wrong account", func(t *testing.T) {
		resp := call(t, func(r *http.Request) {
			r.Header.Set("Authorization", "Bearer "+secret)
			r.Header.Set("X-Account-ID", "acct_other")
		})
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("status %d, want 401", resp.StatusCode)
		}
	})

	d.stop(t)
}

// TestRunRestart checks that tokens outlast a restart: they are in the
// SQLite file, not in memory.
func TestRunRestart(t *testing.T) {
	dbPath := filepath.Join(t.TempDir(), "tokens.db")
	first := startDemo(t, dbPath)
	first.stop(t)

	second := startDemo(t, dbPath)
	defer second.stop(t)
	if first.secret == second.secret {
		t.Fatal("the restarted demo printed the same token again")
	}
	for name, secret := range map[string]string{"the first run's token": first.secret, "the second run's token": second.secret} {
		if got := get(t, second.url, secret); got != http.StatusOK {
			t.Errorf("%s after a restart: status %d, want 200", name, got)
		}
	}
}

// TestRunBadDB checks that a database that cannot be opened stops run with
// an error before it serves.
func TestRunBadDB(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "no-such-folder", "tokens.db")
	if err := run(t.Context(), "127.0.0.1:0", bad, io.Discard); err == nil {
		t.Fatal("run with a database in a missing folder returned nil")
	}
}

// TestRunBadAddr checks that a listen error comes back from run instead of
// a server that never starts.
func TestRunBadAddr(t *testing.T) {
	if err := run(t.Context(), "127.0.0.1:-1", filepath.Join(t.TempDir(), "tokens.db"), io.Discard); err == nil {
		t.Fatal("run with an invalid address returned nil")
	}
}
