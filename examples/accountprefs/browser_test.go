package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken-go/apitoken"
)

// screenshotDirEnv names a folder where TestBrowser also writes its
// screenshots, to refresh docs/accountprefs.png:
//
//	APITOKEN_SCREENSHOT_DIR=$PWD/docs go test -run TestBrowser ./examples/accountprefs
const screenshotDirEnv = "APITOKEN_SCREENSHOT_DIR"

// chromium returns the path of Debian's Chromium, or skips the test.
func chromium(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium"
	}
	t.Skip("browser test needs Chromium: apt-get install -y chromium")
	return ""
}

// TestBrowser drives the app in headless Chromium as a member would: sign
// in by keyboard, generate a token with a double click, read and copy it
// from the dialog, close the dialog and find the secret gone, call the API
// with it, delete it from the list (after cancelling once), and see the API
// refuse it; then generate another and find that Escape closes the dialog
// only once the member confirms.
func TestBrowser(t *testing.T) {
	exe := chromium(t)
	var ln net.Listener
	if os.Getenv(screenshotDirEnv) != "" {
		// For the docs, the curl commands show the README's address when
		// it is free.
		if l, err := net.Listen("tcp", "127.0.0.1:8080"); err == nil {
			ln = l
		}
	}
	e := newEnvAt(t, ln, "")
	seedTokens(t, e)

	ctx := newBrowser(t, exe, chromedp.WindowSize(1100, 860))
	missing := watchFailures(t, ctx)
	defer func() { assert.Empty(t, missing(), "responses of 400 and more the pages asked for") }()

	shots := t.TempDir()
	save := func(name string, png []byte) {
		t.Helper()
		require.NoError(t, os.WriteFile(filepath.Join(shots, name), png, 0o644))
		if dir := os.Getenv(screenshotDirEnv); dir != "" {
			require.NoError(t, os.WriteFile(filepath.Join(dir, name), png, 0o644))
		}
	}
	eval := func(js string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](js))
		require.NoError(t, err, js)
		return v
	}
	truthy := func(js string) bool {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[bool](js))
		require.NoError(t, err, js)
		return v
	}

	// JavaScript dialogs (confirm) get the answers queued in answers, in
	// order; their messages come out of nextDialog.
	dialogs := chromedp.Events(ctx, page.JavascriptDialogOpening)
	answers := make(chan bool, 4)
	messages := make(chan string, 4)
	go func() {
		for ev, err := range dialogs {
			if err != nil {
				return
			}
			messages <- ev.Message
			select {
			case accept := <-answers:
				_, _ = chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: accept})
			case <-ctx.Done():
				return
			}
		}
	}()
	nextDialog := func() string {
		t.Helper()
		select {
		case m := <-messages:
			return m
		case <-ctx.Done():
			t.Fatal("no JavaScript dialog before the test's deadline")
		case <-time.After(10 * time.Second):
			t.Fatal("no JavaScript dialog within 10s")
		}
		return ""
	}

	// Sign in by keyboard: type the name and press Enter.
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(e.srv.URL+"/")))
	_, err := chromedp.Call(ctx, emulation.SetTimezoneOverride, emulation.SetTimezoneOverrideParams{TimezoneID: "Europe/Paris"})
	require.NoError(t, err)
	for _, perm := range []string{"clipboard-read", "clipboard-write"} {
		_, err := chromedp.CallBrowser(ctx, browser.SetPermission, browser.SetPermissionParams{
			Permission: &browser.PermissionDescriptor{Name: perm},
			Setting:    browser.PermissionSettingGranted,
			Origin:     e.srv.URL,
		})
		require.NoError(t, err)
	}
	require.NoError(t, chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("member"), "alice\n"),
		chromedp.WaitVisible(chromedp.ID("api-token-heading")),
	))
	assert.Contains(t, eval(`document.querySelector(".signout").innerText`), "alice")

	// Times are shown in the viewer's zone, named: app.js rewrote the UTC
	// text.
	first := eval(`document.querySelector("table.tokens time").textContent`)
	assert.NotContains(t, first, "UTC", "app.js did not convert the time to local time")
	assert.Regexp(t, `(GMT\+1|GMT\+2|CET|CEST)$`, first, "the local time does not name its zone")
	assert.Contains(t, eval(`document.querySelector("table.tokens time").title`), "UTC")
	assertAxeClean(t, ctx, "the preferences page at 1100 px")

	// Generate a token with a name and an expiry, by a double click while
	// the store is slow: the second click must not post the form again,
	// or the browser drops the page with the first token for a 409.
	entries := eval(`String(history.length)`)
	before := len(e.tokens(t, demoAccount))
	e.store.delay.Store(int64(500 * time.Millisecond))
	require.NoError(t, chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("token-name"), "Laptop CLI"),
		chromedp.SetValue(chromedp.ID("token-expiry"), "30"),
	))
	// Two clicks at the button's place: chromedp.Click would wait for the
	// first click's page before the second.
	x, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`(r => r.x + r.width / 2)(document.getElementById("generate-button").getBoundingClientRect())`))
	require.NoError(t, err)
	y, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`(r => r.y + r.height / 2)(document.getElementById("generate-button").getBoundingClientRect())`))
	require.NoError(t, err)
	require.NoError(t, chromedp.Do(ctx, chromedp.MouseClickXY(x, y), chromedp.Sleep(100*time.Millisecond), chromedp.MouseClickXY(x, y)))
	waitFor(t, ctx, `document.readyState === "complete" && (document.getElementById("new-token-dialog") || document.getElementById("form-error")) !== null`, "the answer to the form")
	e.store.delay.Store(0)
	require.Empty(t, eval(`document.getElementById("form-error")?.textContent ?? ""`), "the double click posted the form twice")
	require.Len(t, e.tokens(t, demoAccount), before+1, "one form, one token")
	secret := eval(`document.getElementById("new-token").textContent`)
	require.Regexp(t, patternRE, secret, "the dialog shows no token")
	e.mu.Lock()
	e.secrets = append(e.secrets, secret)
	e.mu.Unlock()
	assert.Equal(t, demoAccount, eval(`document.getElementById("new-account").textContent`))
	assert.Contains(t, eval(`document.getElementById("new-token-dialog").innerText`), "only once")
	assert.True(t, truthy(`document.getElementById("new-token-dialog").matches(":modal")`), "the dialog is not modal")
	assert.True(t, truthy(`document.getElementById("new-token-dialog").contains(document.activeElement)`), "focus is not in the dialog")

	// Copy buttons put the token and the account id on the clipboard.
	assertAxeClean(t, ctx, "the new-token dialog at 1100 px")
	for _, c := range []struct{ button, want, status string }{
		{`button[data-copy="new-token"]`, secret, "Token copied to the clipboard."},
		{`button[data-copy="new-account"]`, demoAccount, "Account ID copied to the clipboard."},
	} {
		require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS(c.button))))
		_, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.querySelector(".copy-status").textContent.includes("copied")`,
			chromedp.WithPollingTimeout(5*time.Second)))
		require.NoError(t, err, "no confirmation after %s", c.button)
		assert.Equal(t, c.status, eval(`document.querySelector(".copy-status").textContent`))
		got, err := chromedp.Run(ctx, chromedp.Evaluate[string](`navigator.clipboard.readText()`, chromedp.EvalAwaitPromise))
		require.NoError(t, err)
		assert.Equal(t, c.want, got, "clipboard after %s", c.button)
		_ = chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`document.querySelector(".copy-status").textContent = ""`))
	}
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	require.NoError(t, err)
	save("accountprefs-dialog.png", png)

	// OK: the secret leaves the page, and the page that held it leaves the
	// history.
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.ID("new-token-ok"))))
	waitPrefs(t, ctx)
	assert.NotContains(t, eval(`document.documentElement.outerHTML`), secret, "the secret is still in the page")
	assert.Equal(t, nextEntry(t, entries), eval(`String(history.length)`), "the page with the secret was not replaced in the history")
	assert.Contains(t, eval(`document.querySelector("table.tokens").innerText`), "Laptop CLI")

	png, err = chromedp.Run(ctx, chromedp.FullScreenshot(100))
	require.NoError(t, err)
	save("accountprefs.png", png)

	// The token works.
	status, who := callWhoami(t, e.srv.URL, secret)
	require.Equal(t, http.StatusOK, status)
	assert.Equal(t, "Laptop CLI", who.TokenName)
	assert.Equal(t, "alice", who.MemberID)

	// Delete it: cancel the confirmation first (nothing happens), then
	// accept it.
	deleteButton := chromedp.CSS(`form[action="/account/tokens/` + who.TokenID + `/delete"] button`)

	answers <- false
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(deleteButton)))
	assert.Contains(t, nextDialog(), "Delete the token “Laptop CLI”")
	assert.True(t, truthy(`document.querySelector('form[action="/account/tokens/`+who.TokenID+`/delete"]') !== null`), "cancelling did not keep the token")
	status, _ = callWhoami(t, e.srv.URL, secret)
	require.Equal(t, http.StatusOK, status, "cancelling the confirmation deleted the token")

	answers <- true
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(deleteButton)))
	nextDialog()
	require.NoError(t, chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(".flash"))))
	assert.Contains(t, eval(`document.querySelector(".flash").textContent`), "was deleted")
	assert.NotContains(t, eval(`document.querySelector("table.tokens").innerText`), "Laptop CLI")
	status, _ = callWhoami(t, e.srv.URL, secret)
	assert.Equal(t, http.StatusUnauthorized, status, "a deleted token still works")

	// Escape would lose the secret: the dialog asks, and stays open on
	// "Cancel", before any click in the page and after one (the browser
	// makes the cancel event cancelable only after a click). Once the
	// member confirms, the secret is purged as with OK.
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Click(chromedp.ID("generate-button")),
		chromedp.WaitVisible(chromedp.ID("new-token-dialog")),
	))
	second := eval(`document.getElementById("new-token").textContent`)
	require.Regexp(t, patternRE, second)
	e.mu.Lock()
	e.secrets = append(e.secrets, second)
	e.mu.Unlock()
	const open = `document.getElementById("new-token-dialog")?.matches(":modal") && document.getElementById("new-token").textContent === "` + "%s" + `"`
	for _, click := range []bool{false, true} {
		if click {
			require.NoError(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`button[data-copy="new-account"]`))))
		}
		answers <- false
		require.NoError(t, chromedp.Do(ctx, chromedp.KeyEvent(kb.Escape)))
		assert.Equal(t, "Close without copying? The token cannot be shown again.", nextDialog())
		waitFor(t, ctx, fmt.Sprintf(open, second), "the dialog with the secret, after Escape and Cancel")
	}
	answers <- true
	require.NoError(t, chromedp.Do(ctx, chromedp.KeyEvent(kb.Escape)))
	assert.Contains(t, nextDialog(), "Close without copying?")
	waitPrefs(t, ctx)
	assert.NotContains(t, eval(`document.documentElement.outerHTML`), second, "Escape left the secret in the page")

	// Back through the history: no page on the way holds a secret. (Last,
	// as chromedp's queries do not follow pages the history restores.)
	for range 3 {
		require.NoError(t, chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`window.oldPage = true; history.back()`)))
		waitFor(t, ctx, `!window.oldPage && document.readyState === "complete"`, "the previous page")
		html := eval(`location.pathname + document.documentElement.outerHTML`)
		assert.NotContains(t, html, secret, "a secret came back with the back button")
		assert.NotContains(t, html, second, "a secret came back with the back button")
	}

	t.Logf("screenshots in %s", shots)
}

// waitPrefs waits until the tab shows a loaded preferences page without a
// dialog.
func waitPrefs(t *testing.T, ctx context.Context) {
	t.Helper()
	waitFor(t, ctx, `location.pathname === "/account/preferences" && document.readyState === "complete" && !document.getElementById("new-token-dialog") && document.getElementById("api-token-heading") !== null`, "the preferences page")
}

// waitFor evaluates js until it is true, for up to 10s. It loops rather
// than use Poll: a navigation destroys the page's context under a running
// Poll.
func waitFor(t *testing.T, ctx context.Context, js, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](js))
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not come within 10s (last error: %v)", what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// nextEntry returns n+1, for history lengths.
func nextEntry(t *testing.T, n string) string {
	t.Helper()
	i, err := strconv.Atoi(n)
	require.NoError(t, err)
	return strconv.Itoa(i + 1)
}

// seedTokens gives the demo account two older tokens, so that the list and
// the screenshot look like an account in use.
func seedTokens(t *testing.T, e *env) {
	t.Helper()
	now := time.Now()
	for _, s := range []struct {
		name, member string
		age, life    time.Duration
	}{
		{"CI deploy", "bob", 21 * 24 * time.Hour, 90 * 24 * time.Hour},
		{"Grafana dashboard", "alice", 5*24*time.Hour + 3*time.Hour, 0},
	} {
		created := now.Add(-s.age).Truncate(time.Minute)
		iss, err := apitoken.NewIssuer(e.store, apitoken.WithClock(func() time.Time { return created }))
		require.NoError(t, err)
		p := apitoken.IssueParams{AccountID: demoAccount, MemberID: s.member, Name: s.name, Scopes: []string{"whoami"}}
		if s.life > 0 {
			p.ExpiresAt = created.Add(s.life)
		}
		_, _, err = iss.Issue(t.Context(), p)
		require.NoError(t, err)
	}
	require.Len(t, e.tokens(t, demoAccount), 2)
	require.False(t, strings.Contains(e.logs.String(), "apitoken_"), "seeding logged a secret")
}

// axeSHA256 is the checksum of testdata/axe/axe.min.js (axe-core 4.14.1,
// see testdata/axe/README.md).
const axeSHA256 = "29348999450cdf2849a8e70b7912fc2da85a849da39c0d0d5394f51d4a9ed95c"

// assertAxeClean runs axe-core on the page and fails for each violation,
// naming its rule and the elements.
func assertAxeClean(t *testing.T, ctx context.Context, what string) {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("testdata", "axe", "axe.min.js"))
	require.NoError(t, err)
	sum := sha256.Sum256(src)
	require.Equal(t, axeSHA256, hex.EncodeToString(sum[:]), "testdata/axe/axe.min.js is not the copy its README names")
	_, err = chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](string(src)+";0"))
	require.NoError(t, err, "injecting axe-core")
	out, err := chromedp.Run(ctx, chromedp.Evaluate[string](`axe.run(document).then(r => JSON.stringify(r.violations.map(v => ({id: v.id, help: v.help, nodes: v.nodes.map(n => n.target.join(" "))}))))`, chromedp.EvalAwaitPromise))
	require.NoError(t, err, "running axe-core")
	var violations []struct {
		ID, Help string
		Nodes    []string
	}
	require.NoError(t, json.Unmarshal([]byte(out), &violations))
	for _, v := range violations {
		t.Errorf("axe on %s: %s (%s): %v", what, v.ID, v.Help, v.Nodes)
	}
}

// watchFailures records the URL of every response of status 400 or more
// the browser receives; the function returns them so far.
func watchFailures(t *testing.T, ctx context.Context) func() []string {
	t.Helper()
	var (
		mu  sync.Mutex
		bad []string
	)
	require.NoError(t, chromedp.Listen(ctx, func(ev any) {
		if r, ok := ev.(*network.EventResponseReceived); ok && r.Response.Status >= 400 {
			// The app answers some requests with 4xx on purpose
			// (a used form, the API without a token); only those of
			// files count here.
			if u := r.Response.URL; strings.Contains(u, "/static/") || strings.HasSuffix(u, ".ico") {
				mu.Lock()
				bad = append(bad, fmt.Sprintf("%d %s", r.Response.Status, u))
				mu.Unlock()
			}
		}
	}))
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(bad)
	}
}

// TestBrowserPhone opens the demo at 390 px, a phone's width: the page does
// not scroll sideways, every token's Last used and Delete are on the
// screen, the new-token dialog is whole on the screen, and axe-core finds
// nothing, on the list and on the dialog.
func TestBrowserPhone(t *testing.T) {
	exe := chromium(t)
	e := newEnv(t)
	seedTokens(t, e)
	_, _, err := e.app.iss.Issue(t.Context(), apitoken.IssueParams{AccountID: demoAccount, MemberID: "carol",
		Name: "Nightly backup of the production database to object storage", ExpiresAt: time.Now().AddDate(0, 0, 90)})
	require.NoError(t, err)

	ctx := newBrowser(t, exe)
	missing := watchFailures(t, ctx)

	eval := func(js string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](js))
		require.NoError(t, err, js)
		return v
	}
	shots := t.TempDir()
	save := func(name string) {
		t.Helper()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(shots, name), png, 0o644))
		if dir := os.Getenv(screenshotDirEnv); dir != "" {
			require.NoError(t, os.WriteFile(filepath.Join(dir, name), png, 0o644))
		}
	}
	// offScreen lists the elements of selector whose box is not within the
	// width of the screen, and the page's own overflow.
	offScreen := func(selector string) string {
		t.Helper()
		loaded(t, ctx)
		return eval(`(() => {
			const w = window.innerWidth, out = [];
			if (document.documentElement.scrollWidth > w) out.push("the page is " + document.documentElement.scrollWidth + " px wide for " + w);
			if (window.scrollX !== 0 || (window.visualViewport && window.visualViewport.pageLeft !== 0)) out.push("the page is scrolled sideways");
			for (const el of document.querySelectorAll(` + strconv.Quote(selector) + `)) {
				const r = el.getBoundingClientRect();
				if (r.width === 0 || r.left < 0 || r.right > w + 0.5 || r.top < 0 && el.closest("dialog")) out.push((el.id || el.className || el.tagName) + " at " + Math.round(r.left) + ".." + Math.round(r.right));
			}
			return out.join("; ");
		})()`)
	}

	require.NoError(t, chromedp.Do(ctx,
		chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(3), chromedp.EmulateMobile, chromedp.EmulateTouch),
		chromedp.Navigate(e.srv.URL+"/"),
		chromedp.WaitVisible(chromedp.ID("member")),
	))
	assert.Empty(t, offScreen(`input, button`), "the sign-in page at 390 px")
	assertAxeClean(t, ctx, "the sign-in page at 390 px")
	require.NoError(t, chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("member"), "alice\n"),
		chromedp.WaitVisible(chromedp.ID("api-token-heading")),
	))
	// A page wider than the screen makes a phone's browser zoom out: the
	// layout viewport grows past 390 px.
	loaded(t, ctx)
	assert.Equal(t, "390", eval(`String(window.innerWidth)`), "the page is wider than the 390 px screen: the browser zoomed out")
	assert.Empty(t, offScreen(`table.tokens td.actions button, table.tokens td[data-label="Last used"], table.tokens td[data-label="Name"], pre, .generate button`),
		"off the screen at 390 px")
	assertAxeClean(t, ctx, "the preferences page at 390 px")
	save("accountprefs-phone.png")

	require.NoError(t, chromedp.Do(ctx,
		chromedp.Click(chromedp.ID("generate-button")),
		chromedp.WaitVisible(chromedp.ID("new-token-dialog")),
	))
	secret := eval(`document.getElementById("new-token").textContent`)
	require.Regexp(t, patternRE, secret)
	e.mu.Lock()
	e.secrets = append(e.secrets, secret)
	e.mu.Unlock()
	assert.Empty(t, offScreen(`#new-token-dialog, #new-token-title, #new-token, #new-account, #new-token-dialog button`),
		"the dialog is not whole on the screen at 390 px")
	assertAxeClean(t, ctx, "the new-token dialog at 390 px")
	save("accountprefs-phone-dialog.png")
	assert.Empty(t, missing(), "responses of 400 and more the pages asked for")
	t.Logf("screenshots in %s", shots)
}

// loaded waits until the page and its style sheets have loaded: measured
// before, an unstyled page is wider than the screen (seen on a loaded
// machine: 839 px for 390).
func loaded(t *testing.T, ctx context.Context) {
	t.Helper()
	_, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.readyState === "complete" && [...document.styleSheets].length > 0`, chromedp.WithPollingTimeout(20*time.Second)))
	require.NoError(t, err, "the page did not finish loading")
}

// newBrowser starts headless Chromium (exe) with the flags this machine needs
// (no background networking: its connections are refused here) and opts,
// and returns a context of one tab, ended with the test or after 60 s.
func newBrowser(t *testing.T, exe string, opts ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), append([]chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("force-color-profile", "srgb"),
		chromedp.Flag("hide-scrollbars", true),
	}, opts...)...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(func() {
		cancelTimeout()
		cancel()
		cancelAlloc()
	})
	return ctx
}
