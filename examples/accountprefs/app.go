package main

import (
	"bytes"
	"container/list"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/apitoken-go/apitoken"
	"github.com/apitoken-go/apitoken/sqlstore"
)

// demoAccount is the one account of the demo. A real app takes the account
// of the signed-in member from its own session.
const demoAccount = "acct_demo"

// Limits of the forms.
const (
	maxMemberLen    = 64             // characters of a member name
	maxMemberBytes  = 128            // bytes of a member name, as the Issuer allows
	maxNameBytes    = 128            // bytes of a token name, as the Issuer allows
	maxFormBytes    = 16 << 10       // of a form body: a name is at most 128 bytes
	sessionMaxAge   = 12 * time.Hour // of the demo sign-in
	nonceMaxAge     = 1 * time.Hour  // of a generate form
	maxMemberNonces = 20             // kept per member: open tabs, not a reload loop
	maxNonces       = 10000          // kept at once, so many members cannot fill memory
	cookieName      = "accountprefs_session"
	prefsPath       = "/account/preferences"
	whoamiPath      = "/api/v1/whoami"
	contentPolicy   = "default-src 'self'; object-src 'none'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)

// expiryDays are the choices of the expiry select besides "never" and "date".
var expiryDays = map[string]int{"7": 7, "30": 30, "90": 90}

//go:embed templates/*.html static
var files embed.FS

// app serves the pages and the API. Make one with newApp.
type app struct {
	iss    *apitoken.Issuer
	guard  func(http.Handler) http.Handler // the token middleware
	log    *slog.Logger
	now    func() time.Time
	key    []byte // signs the demo session cookie; new at every start
	apiURL string // of the whoami endpoint, for the curl commands
	secure bool   // served over HTTPS: the session cookie is Secure
	nonces nonces
	pages  map[string]*template.Template
	// ready reports whether the token store can serve, for /healthz
	// (sqlstore's Store.Ready); nil means always.
	ready func(context.Context) error
}

// newApp returns the app over iss, logging requests to log. baseURL is
// where members reach the app, such as "https://prefs.example.com": the
// page builds its curl commands from it, never from the request's Host
// header, which the client chooses.
func newApp(iss *apitoken.Issuer, log *slog.Logger, baseURL string) (*app, error) {
	base, err := checkBaseURL(baseURL)
	if err != nil {
		return nil, err
	}
	a := &app{
		iss: iss, log: log, now: time.Now, key: make([]byte, 32), pages: map[string]*template.Template{},
		apiURL: base + whoamiPath, secure: strings.HasPrefix(base, "https:"),
	}
	rand.Read(a.key)
	if a.guard, err = iss.NewMiddleware(apitoken.MiddlewareConfig{Logger: log}); err != nil {
		return nil, err
	}
	funcs := template.FuncMap{
		"rfc3339": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
		"utc":     func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") },
	}
	for _, page := range []string{"signin.html", "prefs.html", "error.html"} {
		t, err := template.New(page).Funcs(funcs).ParseFS(files, "templates/layout.html", "templates/"+page)
		if err != nil {
			return nil, err
		}
		a.pages[page] = t
	}
	return a, nil
}

// checkBaseURL returns u without a trailing slash if it is an http or https
// URL with a plain host and no path, query or fragment. The host may only
// hold letters, digits, '.', '-', ':' and brackets, so the URL is safe
// between single quotes in a shell command.
func checkBaseURL(u string) (string, error) {
	p, err := url.Parse(u)
	switch {
	case err != nil:
		return "", fmt.Errorf("base URL: %w", err)
	case p.Scheme != "http" && p.Scheme != "https", p.Host == "", p.Opaque != "", p.User != nil:
		return "", fmt.Errorf("base URL %q: want http:// or https:// and a host", u)
	case p.Path != "" && p.Path != "/", p.RawQuery != "", p.ForceQuery, p.Fragment != "":
		return "", fmt.Errorf("base URL %q: want no path, query or fragment", u)
	case strings.ContainsFunc(p.Host, func(r rune) bool { return !strings.ContainsRune(hostChars, r) }):
		return "", fmt.Errorf("base URL %q: the host has a character not allowed here", u)
	}
	return p.Scheme + "://" + p.Host, nil
}

const hostChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]"

// routes returns the app's handler: the pages behind cross-origin
// protection, the API behind the token middleware, every request logged.
func (a *app) routes() http.Handler {
	pages := http.NewServeMux()
	pages.HandleFunc("GET /{$}", a.home)
	pages.HandleFunc("POST /signin", a.signIn)
	pages.HandleFunc("POST /signout", a.signOut)
	pages.HandleFunc("GET "+prefsPath, a.member(a.prefs))
	pages.HandleFunc("POST /account/tokens", a.member(a.generate))
	pages.HandleFunc("POST /account/tokens/{id}/delete", a.member(a.deleteToken))
	static, _ := fs.Sub(files, "static")
	pages.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/x-icon")
		http.ServeFileFS(w, r, static, "favicon.ico")
	})
	pages.HandleFunc("GET /healthz", a.healthz)
	pages.HandleFunc("GET /static/{file}", func(w http.ResponseWriter, r *http.Request) {
		// Files only: a folder would be listed.
		if f, err := fs.Stat(static, r.PathValue("file")); err != nil || f.IsDir() {
			a.notFound(w, r)
			return
		}
		http.ServeFileFS(w, r, static, r.PathValue("file"))
	})
	// Every other path, and a known path with another method, is 404.
	pages.HandleFunc("/", a.notFound)

	// Browsers mark a cross-site form post with Sec-Fetch-Site or Origin;
	// such a post is refused before it reaches a handler.
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.fail(w, r, http.StatusForbidden, "Request refused", "This form was sent from another site. Open Account Preferences and try again there.")
	}))

	api := http.NewServeMux()
	api.HandleFunc("GET "+whoamiPath, whoami)

	mux := http.NewServeMux()
	mux.Handle("/", securityHeaders(cop.Handler(pages)))
	// Everything under /api/ needs a token, so an unknown API path without
	// one is 401, not 404. The API takes no cookies, so it needs no
	// cross-origin protection.
	mux.Handle("/api/", securityHeaders(a.guard(api)))
	return a.logRequests(mux)
}

// securityHeaders sets the headers every response carries. The policy allows no
// inline script or style: app.js and app.css are files.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		if strings.HasPrefix(r.URL.Path, "/static/") {
			h.Set("Cache-Control", "no-cache")
		} else {
			// Pages show account data, and one shows a secret: keep them
			// out of every cache and of the back-forward history.
			h.Set("Cache-Control", "no-store")
		}
		next.ServeHTTP(w, r)
	})
}

// statusWriter records the status of a response for the log.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// logRequests logs the method, path, status and duration of each request:
// never a header, a query or a form value, where credentials could be.
func (a *app) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		a.log.Info("request", "method", r.Method, "path", r.URL.Path, "status", sw.status, "duration", time.Since(start).Round(time.Microsecond))
	})
}

// ---- Demo sign-in ---------------------------------------------------------

// The session cookie is "<member, base64url>.<expiry, unix>.<HMAC of both>",
// signed with a key made at start-up: it cannot be forged, and a restart
// signs everyone out.
//
// The demo session is stateless: the server keeps nothing, so it cannot
// revoke a session. Signing out deletes the cookie in that browser only; a
// copy of it works until it expires. Real apps use their own server-side
// sessions, which signing out (or an admin) ends everywhere.

func (a *app) sign(payload string) string {
	m := hmac.New(sha256.New, a.key)
	m.Write([]byte(payload))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (a *app) setSession(w http.ResponseWriter, r *http.Request, member string) {
	payload := base64.RawURLEncoding.EncodeToString([]byte(member)) + "." + strconv.FormatInt(a.now().Add(sessionMaxAge).Unix(), 10)
	a.setCookie(w, r, payload+"."+a.sign(payload), int(sessionMaxAge/time.Second))
}

// setCookie sets the session cookie; maxAge -1 deletes it.
func (a *app) setCookie(w http.ResponseWriter, r *http.Request, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name: cookieName, Value: value, Path: "/", MaxAge: maxAge, HttpOnly: true, SameSite: http.SameSiteLaxMode,
		// Behind a TLS proxy r.TLS is nil: the base URL says HTTPS.
		Secure: a.secure || r.TLS != nil,
	})
}

// session returns the signed-in member, if the cookie is genuine and fresh.
func (a *app) session(r *http.Request) (member string, ok bool) {
	c, err := r.Cookie(cookieName)
	if err != nil {
		return "", false
	}
	i := strings.LastIndexByte(c.Value, '.')
	if i < 0 || !hmac.Equal([]byte(c.Value[i+1:]), []byte(a.sign(c.Value[:i]))) {
		return "", false
	}
	name, exp, _ := strings.Cut(c.Value[:i], ".")
	unix, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || !a.now().Before(time.Unix(unix, 0)) {
		return "", false
	}
	b, err := base64.RawURLEncoding.DecodeString(name)
	if err != nil {
		return "", false
	}
	return string(b), true
}

// member wraps a handler that needs a signed-in member: without one, it
// sends the browser to the sign-in page.
func (a *app) member(h func(w http.ResponseWriter, r *http.Request, member string)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		m, ok := a.session(r)
		if !ok {
			http.Redirect(w, r, "/", http.StatusSeeOther)
			return
		}
		h(w, r, m)
	}
}

// memberProblem says what is wrong with a member name, or "" when nothing.
func memberProblem(name string) string {
	switch {
	case name == "":
		return "Enter a member name."
	case !utf8.ValidString(name) || strings.ContainsFunc(name, func(r rune) bool { return !unicode.IsPrint(r) }):
		return "Use printable characters only."
	case utf8.RuneCountInString(name) > maxMemberLen:
		return "Use at most 64 characters."
	case len(name) > maxMemberBytes:
		return "Use at most 128 bytes: some characters take up to 4."
	}
	return ""
}

type signinPage struct {
	Name, Error string
}

func (a *app) home(w http.ResponseWriter, r *http.Request) {
	if _, ok := a.session(r); ok {
		http.Redirect(w, r, prefsPath, http.StatusSeeOther)
		return
	}
	a.render(w, r, http.StatusOK, "signin.html", signinPage{})
}

func (a *app) signIn(w http.ResponseWriter, r *http.Request) {
	if !a.parseForm(w, r) {
		return
	}
	name := strings.TrimSpace(r.PostForm.Get("member"))
	if p := memberProblem(name); p != "" {
		if !utf8.ValidString(name) || len(name) > 4*maxMemberLen {
			name = "" // not worth showing again
		}
		a.render(w, r, http.StatusBadRequest, "signin.html", signinPage{Name: name, Error: p})
		return
	}
	a.setSession(w, r, name)
	http.Redirect(w, r, prefsPath, http.StatusSeeOther)
}

func (a *app) signOut(w http.ResponseWriter, r *http.Request) {
	a.setCookie(w, r, "", -1)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// ---- One-time form nonces -------------------------------------------------

// nonces are the one-time values of rendered generate forms. Posting a form
// uses up its nonce, so a replayed or resubmitted post (the back button, a
// reload) cannot generate a second token. The zero value is ready to use.
//
// Each member keeps only their newest maxMemberNonces, so one member's
// reload loop drops only their own old forms; maxNonces bounds the total
// for many members. All nonces live equally long, so issue order is expiry
// order: order and each member's list are oldest first, and dropping the
// oldest never scans.
type nonces struct {
	mu       sync.Mutex
	m        map[string]nonce    // by value
	order    list.List           // of the values in m, oldest first
	byMember map[string][]string // each member's values in m, oldest first
}

type nonce struct {
	member  string
	expires time.Time
	used    bool          // kept until dropped, to tell a replay from a made-up value
	elem    *list.Element // in order
}

var (
	errFormUsed    = errors.New("form already used")
	errFormInvalid = errors.New("form expired or invalid")
)

func (n *nonces) issue(member string, now time.Time) string {
	v := rand.Text()
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.m == nil {
		n.m, n.byMember = map[string]nonce{}, map[string][]string{}
	}
	for f := n.order.Front(); f != nil && (len(n.m) >= maxNonces || !now.Before(n.m[f.Value.(string)].expires)); f = n.order.Front() {
		n.dropOldest(f.Value.(string))
	}
	if mine := n.byMember[member]; len(mine) >= maxMemberNonces {
		n.dropOldest(mine[0])
	}
	n.m[v] = nonce{member: member, expires: now.Add(nonceMaxAge), elem: n.order.PushBack(v)}
	n.byMember[member] = append(n.byMember[member], v)
	return v
}

// dropOldest forgets v, which must be its member's oldest nonce.
func (n *nonces) dropOldest(v string) {
	e := n.m[v]
	delete(n.m, v)
	n.order.Remove(e.elem)
	if mine := n.byMember[e.member][1:]; len(mine) > 0 {
		n.byMember[e.member] = mine
	} else {
		delete(n.byMember, e.member)
	}
}

// use uses up v, a nonce of member. It returns errFormUsed if v was used
// before, and errFormInvalid if v is unknown, expired or another member's.
func (n *nonces) use(v, member string, now time.Time) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	e, ok := n.m[v]
	switch {
	case !ok || e.member != member || !now.Before(e.expires):
		return errFormInvalid
	case e.used:
		return errFormUsed
	}
	e.used = true
	n.m[v] = e
	return nil
}

// ---- Account Preferences --------------------------------------------------

// prefsPage is what prefs.html shows.
type prefsPage struct {
	Member, AccountID string
	Tokens            []tokenRow
	Nonce             string
	Form              tokenForm
	FormError         string
	Flash             string
	New               *newToken // the token just generated, shown once
	APIURL            string
	MinDate           string // of the date input: tomorrow
}

// tokenRow is a token in the list: nothing secret. Hint is the end of the
// secret (apitoken.Token.Hint), empty for tokens issued before the library
// kept it; Member is who created the token; Status is "" for a token that
// works, otherwise why it does not ("expired", "disabled"...).
type tokenRow struct {
	ID, Name, Hint, Member, Status   string
	CreatedAt, ExpiresAt, LastUsedAt time.Time
}

// tokenForm is the generate form's input, shown again after an error.
type tokenForm struct {
	Name, Expiry, Date string
}

// newToken is the secret of a token just generated, with its account id,
// name and hint (the end of the secret, as the list shows it): rendered
// once into the dialog, kept nowhere.
type newToken struct {
	Secret, AccountID, Name, Hint string
}

// hintRE matches a token's Hint: the last 4 characters of its secret.
var hintRE = regexp.MustCompile(`^[0-9A-Za-z]{4}$`)

func (a *app) prefs(w http.ResponseWriter, r *http.Request, member string) {
	p := prefsPage{}
	if h, name, ok := a.deletedFlash(r.URL.Query().Get("deleted")); ok {
		switch {
		case name != "" && h != "":
			p.Flash = "Token “" + name + "” (…" + h + ") was deleted. It no longer works."
		case name != "":
			p.Flash = "Token “" + name + "” was deleted. It no longer works."
		default:
			p.Flash = "Token …" + h + " was deleted. It no longer works."
		}
	}
	a.renderPrefs(w, r, http.StatusOK, member, p)
}

// deletedParam is the ?deleted= value of the page shown after a delete:
// the token's hint, and its name signed with the session key, so that a
// link from elsewhere cannot make the page announce a deletion of its
// choosing. A token with neither (unnamed, issued before hints) gets no
// message.
func (a *app) deletedParam(h, name string) string {
	if name == "" {
		return h
	}
	payload := h + "." + base64.RawURLEncoding.EncodeToString([]byte(name))
	return payload + "." + a.sign("deleted."+payload)
}

// deletedFlash reads a deletedParam value: the hint, and the name if it was
// signed.
func (a *app) deletedFlash(v string) (h, name string, ok bool) {
	if hintRE.MatchString(v) {
		return v, "", true
	}
	h, rest, _ := strings.Cut(v, ".")
	enc, sig, _ := strings.Cut(rest, ".")
	if (h != "" && !hintRE.MatchString(h)) || !hmac.Equal([]byte(sig), []byte(a.sign("deleted."+h+"."+enc))) {
		return "", "", false
	}
	b, err := base64.RawURLEncoding.DecodeString(enc)
	if err != nil {
		return "", "", false
	}
	return h, string(b), true
}

// renderPrefs fills in the account's tokens and a fresh form nonce, and
// renders the page.
func (a *app) renderPrefs(w http.ResponseWriter, r *http.Request, status int, member string, p prefsPage) {
	toks, err := a.iss.List(r.Context(), demoAccount)
	if err != nil {
		a.log.Error("list tokens", "err", err)
		a.fail(w, r, http.StatusServiceUnavailable, "Tokens unavailable", "The tokens could not be read. Try again in a moment.")
		return
	}
	now := a.now()
	for _, t := range toks {
		row := tokenRow{
			ID: t.ID, Name: t.Name, Hint: t.Hint, Member: t.MemberID,
			CreatedAt: t.CreatedAt, ExpiresAt: t.ExpiresAt, LastUsedAt: t.LastUsedAt,
		}
		if st := a.iss.Status(t); st != apitoken.StatusActive {
			row.Status = st.String()
		}
		p.Tokens = append(p.Tokens, row)
	}
	p.Member, p.AccountID = member, demoAccount
	p.Nonce = a.nonces.issue(member, now)
	p.APIURL = a.apiURL
	p.MinDate = now.UTC().AddDate(0, 0, 1).Format(time.DateOnly)
	a.render(w, r, status, "prefs.html", p)
}

// generate issues a token and renders the page with the secret in a dialog.
func (a *app) generate(w http.ResponseWriter, r *http.Request, member string) {
	if !a.parseForm(w, r) {
		return
	}
	f := tokenForm{
		Name:   strings.TrimSpace(r.PostForm.Get("name")),
		Expiry: r.PostForm.Get("expiry"),
		Date:   r.PostForm.Get("date"),
	}
	// Both answers show the page again, with the list and a fresh form.
	switch err := a.nonces.use(r.PostForm.Get("nonce"), member, a.now()); {
	case errors.Is(err, errFormUsed):
		// A double click or a resubmission: the first post may have
		// generated a token whose page the browser dropped.
		a.renderPrefs(w, r, http.StatusConflict, member, prefsPage{FormError: "This form was already used. " +
			"If a token was generated from it, it is in the list below: delete it if you do not have its secret."})
		return
	case err != nil:
		a.renderPrefs(w, r, http.StatusBadRequest, member, prefsPage{Form: f,
			FormError: "This form has expired or is invalid, so no token was generated. Reload the page, or send this form again."})
		return
	}
	expires, problem := a.expiry(f)
	if problem != "" {
		a.renderPrefs(w, r, http.StatusBadRequest, member, prefsPage{Form: f, FormError: problem})
		return
	}
	secret, tok, err := a.iss.Issue(r.Context(), apitoken.IssueParams{
		AccountID: demoAccount,
		MemberID:  member,
		Name:      f.Name,
		Scopes:    []string{"whoami"},
		ExpiresAt: expires,
	})
	switch {
	case errors.Is(err, apitoken.ErrInvalidInput):
		// The Issuer refused what the member typed (the other params are
		// the app's): say which field, in the app's words.
		a.renderPrefs(w, r, http.StatusBadRequest, member, prefsPage{Form: f, FormError: inputProblem(f)})
		return
	case err != nil:
		a.log.Error("issue token", "err", err)
		a.fail(w, r, http.StatusServiceUnavailable, "Token not generated", "The token could not be stored. Try again in a moment.")
		return
	}
	a.log.Info("token generated", "account", tok.AccountID, "token_id", tok.ID)
	a.renderPrefs(w, r, http.StatusOK, member, prefsPage{New: &newToken{
		Secret: secret, AccountID: tok.AccountID, Name: tok.Name, Hint: tok.Hint,
	}})
}

// inputProblem says which field of f the Issuer refused: the name if it
// breaks the Issuer's rules (at most 128 bytes of UTF-8 without control
// characters), else the expiry.
func inputProblem(f tokenForm) string {
	switch {
	case len(f.Name) > maxNameBytes:
		return "The name is too long: use at most 128 bytes."
	case !utf8.ValidString(f.Name) || strings.ContainsFunc(f.Name, unicode.IsControl):
		return "The name has invalid characters: use printable text only."
	}
	return "The expiry is invalid: choose another."
}

// expiry reads the expiry of the generate form: zero for never.
func (a *app) expiry(f tokenForm) (time.Time, string) {
	now := a.now().UTC()
	switch f.Expiry {
	case "", "never":
		return time.Time{}, ""
	case "date":
		d, err := time.Parse(time.DateOnly, f.Date)
		if err != nil {
			return time.Time{}, "Choose an expiry date (YYYY-MM-DD)."
		}
		if !d.After(now) {
			return time.Time{}, "Choose an expiry date in the future."
		}
		// The year has 4 digits, so it is at most 9999 as the Issuer needs.
		return d, "" // midnight UTC at the start of that day
	}
	if days, ok := expiryDays[f.Expiry]; ok {
		return now.AddDate(0, 0, days), ""
	}
	return time.Time{}, "Choose an expiry from the list."
}

func (a *app) deleteToken(w http.ResponseWriter, r *http.Request, _ string) {
	id := r.PathValue("id")
	// The name and hint, for the message after the delete; without the
	// list there is no message.
	var name, h string
	if toks, err := a.iss.List(r.Context(), demoAccount); err == nil {
		for _, t := range toks {
			if t.ID == id {
				name, h = t.Name, t.Hint
			}
		}
	}
	err := a.iss.Delete(r.Context(), demoAccount, id)
	switch {
	case errors.Is(err, apitoken.ErrNotFound), errors.Is(err, apitoken.ErrInvalidInput):
		a.fail(w, r, http.StatusNotFound, "Token not found", "This account has no such token. It may have been deleted already.")
		return
	case err != nil:
		a.log.Error("delete token", "err", err)
		a.fail(w, r, http.StatusServiceUnavailable, "Token not deleted", "The token could not be deleted. Try again in a moment.")
		return
	}
	a.log.Info("token deleted", "account", demoAccount, "token_id", id)
	http.Redirect(w, r, prefsPath+"?deleted="+url.QueryEscape(a.deletedParam(h, name)), http.StatusSeeOther)
}

// healthz answers 200 when the token store can serve, and 503 otherwise,
// telling a deployment mistake (the schema is missing or outdated: run the
// migration) from an outage, for a load balancer or an orchestrator's
// readiness probe.
func (a *app) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	var err error
	if a.ready != nil {
		err = a.ready(r.Context())
	}
	switch {
	case err == nil:
		_, _ = io.WriteString(w, "ok\n")
	case errors.Is(err, sqlstore.ErrSchema):
		a.log.Error("not ready: the token schema is missing or outdated: run Store.Migrate", "err", err)
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, "not ready: the token tables are missing or outdated; run the migration (sqlstore Store.Migrate)\n")
	default:
		a.log.Error("not ready: the token store is unavailable", "err", err)
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, "not ready: the token store is unavailable\n")
	}
}

// ---- Rendering ------------------------------------------------------------

// parseForm reads a form body of at most maxFormBytes; otherwise it answers
// and returns false.
func (a *app) parseForm(w http.ResponseWriter, r *http.Request) bool {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			a.fail(w, r, http.StatusRequestEntityTooLarge, "Form too large", "The form sent more than the app accepts.")
		} else {
			a.fail(w, r, http.StatusBadRequest, "Bad form", "The form could not be read.")
		}
		return false
	}
	return true
}

type errorPage struct {
	Status         int
	Title, Message string
	SignedIn       bool
}

// notFound renders the error page for an unknown page.
func (a *app) notFound(w http.ResponseWriter, r *http.Request) {
	a.fail(w, r, http.StatusNotFound, "Page not found", "There is no page at this address.")
}

// fail renders the error page.
func (a *app) fail(w http.ResponseWriter, r *http.Request, status int, title, msg string) {
	_, signedIn := a.session(r)
	a.render(w, r, status, "error.html", errorPage{Status: status, Title: title, Message: msg, SignedIn: signedIn})
}

// render executes a page into a buffer first, so that a template error
// gives a clean 500 rather than half a page.
func (a *app) render(w http.ResponseWriter, _ *http.Request, status int, page string, data any) {
	var buf bytes.Buffer
	if err := a.pages[page].ExecuteTemplate(&buf, "layout", data); err != nil {
		a.log.Error("render", "page", page, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = buf.WriteTo(w)
}

// ---- REST API ---------------------------------------------------------------

// whoamiResponse is the token metadata the API returns: never the secret.
type whoamiResponse struct {
	AccountID  string    `json:"account_id"`
	MemberID   string    `json:"member_id,omitempty"`
	TokenID    string    `json:"token_id"`
	TokenName  string    `json:"token_name,omitempty"`
	Scopes     []string  `json:"scopes,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
	ExpiresAt  time.Time `json:"expires_at,omitzero"`
	LastUsedAt time.Time `json:"last_used_at,omitzero"`
}

// whoami answers with the verified token that the middleware put in the
// request context.
func whoami(w http.ResponseWriter, r *http.Request) {
	tok, ok := apitoken.FromContext(r.Context())
	if !ok {
		// Only reachable if the middleware is missing: fail closed.
		http.Error(w, "unauthenticated", http.StatusUnauthorized)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(whoamiResponse{
		AccountID: tok.AccountID, MemberID: tok.MemberID,
		TokenID: tok.ID, TokenName: tok.Name, Scopes: tok.Scopes,
		CreatedAt: tok.CreatedAt, ExpiresAt: tok.ExpiresAt, LastUsedAt: tok.LastUsedAt,
	})
}
