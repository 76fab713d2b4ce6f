package secretscan

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/apitoken-go/apitoken"
)

// Config configures the handler NewHandler returns. Only Origins is
// required; a zero limit takes its default.
type Config struct {
	// Origins are the senders whose reports are accepted, each with its
	// KeysURL set: for example GitHub and DepsDev, and a copy of GitLab
	// with the URL given on enrolment. A report is of the first origin
	// whose two headers it carries.
	Origins []Origin

	// ReportOnly makes the handler only report the leaked tokens to OnLeak,
	// and revoke nothing: for an app that would rather ask the owner first
	// (Unkey's choice for its own keys). By default each leaked token is
	// revoked at once, with RevokeSecret.
	ReportOnly bool

	// OnLeak, if set, is called once for each reported place (URL) of each
	// secret that names a token, after it was revoked (with ReportOnly,
	// after it was found): to e-mail the owner or open an incident. A report
	// delivered again calls it for no place it was called for within the
	// last day (in this process); a place not reported before is called
	// for. The Leak never holds the secret. It runs on the report's
	// goroutines, several at once (Concurrency), within Timeout: queue slow
	// work.
	OnLeak func(ctx context.Context, leak Leak)

	// Feedback answers each verified report with GitHub's feedback, a JSON
	// array with, for each reported secret, its plain SHA-256 (hex), its
	// type and "true_positive" when it named a token or "false_positive"
	// otherwise. The origin is verified, so this tells only it what it
	// asked; without Feedback the answer is 204, the same whatever was
	// reported.
	Feedback bool

	// MaxBodyBytes bounds a report's body (4 MiB by default); a larger one
	// is refused with 413 before anything is verified. MaxMatches bounds
	// its matches (10,000 by default; more is 413).
	MaxBodyBytes int64
	MaxMatches   int

	// Timeout bounds the handling of one report, its store calls and hooks
	// included (10 seconds by default): a report that cannot be handled in
	// time is answered 503, and the sender sends it again. Concurrency is
	// how many of its secrets are looked up at once (8 by default).
	Timeout     time.Duration
	Concurrency int

	// KeysTTL is how long an origin's fetched keys are trusted (30 minutes
	// by default). KeysRefetch is the least time between two fetches of one
	// origin's keys (1 minute by default): a report signed with an unknown
	// key id makes the handler fetch the keys again, at most that often, and
	// is answered 503 (try again) in between.
	KeysTTL     time.Duration
	KeysRefetch time.Duration

	// Logger gets a record per report (its origin and counts, never a
	// secret) and the failures to fetch keys; nil is slog.Default().
	Logger *slog.Logger
}

// A Leak is a reported secret that names a token, as OnLeak gets it.
type Leak struct {
	// Token is the token the secret named, as it was before it was
	// revoked.
	Token apitoken.Token
	// Revoked is false when Config.ReportOnly is set.
	Revoked bool
	// Origin is the Name of the Origin that reported it; Type, URL and
	// Source are the report's: the secret's type (the pattern's name at the
	// origin), where it was found, and what kind of place that is
	// ("content", "commit", "npm"…; empty when the origin does not say).
	Origin, Type, URL, Source string
}

// Defaults of Config.
const (
	defaultMaxBody     = 4 << 20
	defaultMaxMatches  = 10000
	defaultTimeout     = 10 * time.Second
	defaultConcurrency = 8
	defaultKeysTTL     = 30 * time.Minute
	defaultKeysRefetch = time.Minute
	keysClientTimeout  = 10 * time.Second
	memoTTL            = 24 * time.Hour
	memoSize           = 1 << 16
)

// NewHandler returns the http.Handler of a leak-report endpoint for the
// secrets of iss: mount it on the URL given to the origins, outside the
// API's authentication. A bad Config is an error wrapping
// apitoken.ErrInvalidInput that names the field.
//
// For each POSTed report it reads the body (at most MaxBodyBytes: 413),
// finds the origin by its headers and verifies its signature over the raw
// body with the origin's published key (no signature, or a bad one: 400,
// and nothing is read or revoked; the keys unavailable: 503, so that the
// origin retries). Then each reported secret that is not one of iss's
// (another prefix, a bad checksum) is a false positive, with no store
// call; each one that names a token is revoked (or only reported, with
// ReportOnly) and handed to OnLeak. A report delivered again changes
// nothing and calls OnLeak for no place already reported. A store failure or the Timeout is 503,
// so that the origin sends the report again; otherwise the answer is 204,
// or 200 with the feedback.
func NewHandler(iss *apitoken.Issuer, cfg Config) (http.Handler, error) {
	if iss == nil {
		return nil, fmt.Errorf("%w: secretscan: the Issuer is nil", apitoken.ErrInvalidInput)
	}
	if len(cfg.Origins) == 0 {
		return nil, fmt.Errorf("%w: secretscan: Config.Origins is empty: list the origins that send reports (GitHub, DepsDev, GitLab with its KeysURL)", apitoken.ErrInvalidInput)
	}
	for _, f := range []struct {
		name string
		v    int64
	}{{"MaxBodyBytes", cfg.MaxBodyBytes}, {"MaxMatches", int64(cfg.MaxMatches)}, {"Timeout", int64(cfg.Timeout)},
		{"Concurrency", int64(cfg.Concurrency)}, {"KeysTTL", int64(cfg.KeysTTL)}, {"KeysRefetch", int64(cfg.KeysRefetch)}} {
		if f.v < 0 {
			return nil, fmt.Errorf("%w: secretscan: Config.%s is negative", apitoken.ErrInvalidInput, f.name)
		}
	}
	h := &handler{
		iss:         iss,
		reportOnly:  cfg.ReportOnly,
		onLeak:      cfg.OnLeak,
		feedback:    cfg.Feedback,
		maxBody:     or(cfg.MaxBodyBytes, defaultMaxBody),
		maxMatches:  or(cfg.MaxMatches, defaultMaxMatches),
		timeout:     or(cfg.Timeout, defaultTimeout),
		concurrency: or(cfg.Concurrency, defaultConcurrency),
		log:         cfg.Logger,
		memo:        newMemo(),
	}
	if h.log == nil {
		h.log = slog.Default()
	}
	for i, o := range cfg.Origins {
		switch {
		case o.Name == "" || o.KeyIDHeader == "" || o.SignatureHeader == "":
			return nil, fmt.Errorf("%w: secretscan: Config.Origins[%d] needs a Name, a KeyIDHeader and a SignatureHeader", apitoken.ErrInvalidInput, i)
		case !strings.HasPrefix(o.KeysURL, "https://") && !strings.HasPrefix(o.KeysURL, "http://"):
			return nil, fmt.Errorf("%w: secretscan: origin %s has no KeysURL (GitLab gives its URL on enrolment: copy GitLab and set it)", apitoken.ErrInvalidInput, o.Name)
		}
		client := o.Client
		if client == nil {
			client = &http.Client{Timeout: keysClientTimeout}
		}
		h.origins = append(h.origins, &keyring{origin: o, client: client, log: h.log,
			ttl: or(cfg.KeysTTL, defaultKeysTTL), refetch: or(cfg.KeysRefetch, defaultKeysRefetch)})
	}
	return h, nil
}

func or[T int | int64 | time.Duration](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}

type handler struct {
	iss         *apitoken.Issuer
	origins     []*keyring
	reportOnly  bool
	onLeak      func(context.Context, Leak)
	feedback    bool
	maxBody     int64
	maxMatches  int
	timeout     time.Duration
	concurrency int
	log         *slog.Logger
	memo        *memo
}

// A match is one reported secret.
type match struct {
	Token  string `json:"token"`
	Type   string `json:"type"`
	URL    string `json:"url"`
	Source string `json:"source"`
}

// A verdict is GitHub's feedback on one match.
type verdict struct {
	TokenHash string `json:"token_hash"`
	TokenType string `json:"token_type"`
	Label     string `json:"label"`
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		answer(w, http.StatusMethodNotAllowed, "POST a leak report")
		return
	}
	ring := h.originOf(r)
	if ring == nil {
		answer(w, http.StatusBadRequest, "no signature of a known origin")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.maxBody))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			answer(w, http.StatusRequestEntityTooLarge, "report too large")
			return
		}
		answer(w, http.StatusBadRequest, "report not read")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.timeout)
	defer cancel()
	o := ring.origin
	if err := ring.verify(ctx, r.Header.Get(o.KeyIDHeader), r.Header.Get(o.SignatureHeader), body); err != nil {
		h.log.LogAttrs(ctx, slog.LevelWarn, "secretscan: report refused", slog.String("origin", o.Name), slog.Any("err", err))
		if errors.Is(err, errKeysUnavailable) {
			w.Header().Set("Retry-After", "60")
			answer(w, http.StatusServiceUnavailable, "public keys unavailable: try again later")
			return
		}
		answer(w, http.StatusBadRequest, "signature not verified")
		return
	}
	var matches []match
	if err := json.Unmarshal(body, &matches); err != nil {
		answer(w, http.StatusBadRequest, "not a JSON array of matches")
		return
	}
	if len(matches) > h.maxMatches {
		answer(w, http.StatusRequestEntityTooLarge, "too many matches")
		return
	}
	labels, stats, err := h.handle(ctx, o.Name, matches)
	h.log.LogAttrs(ctx, slog.LevelInfo, "secretscan: leak report", slog.String("origin", o.Name), slog.Int("matches", len(matches)),
		slog.Int("tokens", stats.found), slog.Int("false_positives", stats.falsePositives), slog.Bool("report_only", h.reportOnly), slog.Any("err", err))
	if err != nil {
		w.Header().Set("Retry-After", "10")
		answer(w, http.StatusServiceUnavailable, "not handled: try again later")
		return
	}
	if !h.feedback {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	out := make([]verdict, len(matches))
	for i, m := range matches {
		sum := sha256.Sum256([]byte(m.Token))
		out[i] = verdict{TokenHash: hex.EncodeToString(sum[:]), TokenType: m.Type, Label: "false_positive"}
		if labels[m.Token] {
			out[i].Label = "true_positive"
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(out)
}

// originOf returns the keyring of the first origin whose two headers r
// carries, or nil.
func (h *handler) originOf(r *http.Request) *keyring {
	for _, k := range h.origins {
		if r.Header.Get(k.origin.KeyIDHeader) != "" && r.Header.Get(k.origin.SignatureHeader) != "" {
			return k
		}
	}
	return nil
}

// answer writes a short plain-text answer that never echoes the request.
func answer(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, msg+"\n")
}

type stats struct{ found, falsePositives int }

// handle revokes (or inspects) each distinct secret of matches, calls the
// hook for each match of one that named a token, and returns which secrets
// did. The first store error (or the timeout) is returned: the report must
// be sent again, and what was revoked stays revoked.
func (h *handler) handle(ctx context.Context, origin string, matches []match) (map[string]bool, stats, error) {
	bySecret := make(map[string][]match, len(matches))
	var order []string
	for _, m := range matches {
		if _, ok := bySecret[m.Token]; !ok {
			order = append(order, m.Token)
		}
		bySecret[m.Token] = append(bySecret[m.Token], m)
	}
	found := make(map[string]bool, len(order))
	var (
		mu       sync.Mutex
		st       stats
		firstErr error
		wg       sync.WaitGroup
	)
	next := make(chan string)
	for range min(h.concurrency, len(order)) {
		wg.Go(func() {
			for secret := range next {
				ok, err := h.one(ctx, origin, secret, bySecret[secret])
				mu.Lock()
				switch {
				case err != nil:
					if firstErr == nil {
						firstErr = err
					}
				case ok:
					found[secret] = true
					st.found++
				default:
					st.falsePositives++
				}
				mu.Unlock()
			}
		})
	}
feed:
	for _, s := range order {
		select {
		case next <- s:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if firstErr == nil && ctx.Err() != nil && len(found)+st.falsePositives < len(order) {
		firstErr = ctx.Err()
	}
	return found, st, firstErr
}

// one handles a secret reported in ms, and reports whether it names a
// token (or did, before an earlier delivery revoked it).
func (h *handler) one(ctx context.Context, origin, secret string, ms []match) (bool, error) {
	if tok, ok := h.memo.token(secret); ok {
		// An earlier delivery handled it: no store call, and the hook only
		// for the places not reported before.
		h.notify(ctx, tok, origin, secret, ms)
		return true, nil
	}
	var (
		tok apitoken.Token
		err error
	)
	if h.reportOnly {
		tok, err = h.iss.Inspect(ctx, secret)
	} else {
		tok, err = h.iss.RevokeSecret(apitoken.WithRevokeReason(ctx, "leaked: reported by "+origin+" secret scanning"), secret)
	}
	switch {
	case errors.Is(err, apitoken.ErrInvalidToken), errors.Is(err, apitoken.ErrNotFound):
		return false, nil
	case err != nil:
		return false, err
	}
	h.memo.add(secret, tok)
	h.notify(ctx, tok, origin, secret, ms)
	return true, nil
}

// notify calls the hook for each match of secret at a place (its URL) the
// memo has not seen it at.
func (h *handler) notify(ctx context.Context, tok apitoken.Token, origin, secret string, ms []match) {
	if h.onLeak == nil {
		return
	}
	for _, m := range ms {
		if h.memo.newPlace(secret, m.URL) {
			h.onLeak(ctx, Leak{Token: tok, Revoked: !h.reportOnly, Origin: origin, Type: m.Type, URL: m.URL, Source: m.Source})
		}
	}
}

// A memo remembers, for a day and in this process only, the secrets that
// named a token, with the token, and the places (URLs) each was reported
// at, so that a report delivered again calls no store and no hook again
// (with ReportOnly, nothing else would tell), and is labelled as the first
// delivery was, while a known secret found at a new place still reaches
// the hook. It keeps HMACs of the secrets under a key drawn when the
// handler is made, never a secret nor its plain hash.
type memo struct {
	key    []byte
	mu     sync.Mutex
	tokens map[[sha256.Size]byte]memoEntry // by the secret's HMAC
	places map[[sha256.Size]byte]time.Time // by the HMAC of the secret and a URL
}

type memoEntry struct {
	at  time.Time
	tok apitoken.Token
}

func newMemo() *memo {
	key := make([]byte, 32)
	rand.Read(key) // never fails: crypto/rand crashes the program instead
	return &memo{key: key, tokens: make(map[[sha256.Size]byte]memoEntry), places: make(map[[sha256.Size]byte]time.Time)}
}

// sum returns the HMAC of the parts, each ended by a NUL (which neither a
// secret nor a URL holds where it matters: a URL with one is one place).
func (m *memo) sum(parts ...string) (s [sha256.Size]byte) {
	mac := hmac.New(sha256.New, m.key)
	for _, p := range parts {
		mac.Write([]byte(p))
		mac.Write([]byte{0})
	}
	copy(s[:], mac.Sum(nil))
	return s
}

// token returns the token secret named when a delivery of the last day
// handled it.
func (m *memo) token(secret string) (apitoken.Token, bool) {
	k := m.sum(secret)
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.tokens[k]
	return e.tok, ok && time.Since(e.at) < memoTTL
}

func (m *memo) add(secret string, tok apitoken.Token) {
	k := m.sum(secret)
	m.mu.Lock()
	defer m.mu.Unlock()
	bound(m.tokens, func(e memoEntry) time.Time { return e.at })
	m.tokens[k] = memoEntry{time.Now(), tok}
}

// newPlace reports whether secret was not reported at url within the last
// day, and remembers that it now was.
func (m *memo) newPlace(secret, url string) bool {
	k := m.sum(secret, url)
	m.mu.Lock()
	defer m.mu.Unlock()
	if at, ok := m.places[k]; ok && time.Since(at) < memoTTL {
		return false
	}
	bound(m.places, func(at time.Time) time.Time { return at })
	m.places[k] = time.Now()
	return true
}

// bound makes room in a memo's map: old entries go, and all of them if
// that is not enough (forgetting costs a store call, and a hook call with
// ReportOnly).
func bound[V any](entries map[[sha256.Size]byte]V, at func(V) time.Time) {
	if len(entries) < memoSize {
		return
	}
	for k, v := range entries {
		if time.Since(at(v)) >= memoTTL {
			delete(entries, k)
		}
	}
	if len(entries) >= memoSize {
		clear(entries)
	}
}
