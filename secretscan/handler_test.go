package secretscan_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
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
	"github.com/apitoken-go/apitoken/secretscan"
)

// A signer is an origin's signing key, generated for the test.
type signer struct {
	id   string
	priv *ecdsa.PrivateKey
}

func newSigner(t *testing.T, id string) signer {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	return signer{id: id, priv: priv}
}

// sign returns the signature header's value for body: base64 of the DER
// ECDSA signature of its SHA-256.
func (s signer) sign(t *testing.T, body []byte) string {
	t.Helper()
	sum := sha256.Sum256(body)
	der, err := ecdsa.SignASN1(rand.Reader, s.priv, sum[:])
	require.NoError(t, err)
	return base64.StdEncoding.EncodeToString(der)
}

func (s signer) pem(t *testing.T) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(&s.priv.PublicKey)
	require.NoError(t, err)
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// keyServer is an origin's keys endpoint: it publishes the public keys of
// its signers, counts its fetches, and can be down.
type keyServer struct {
	*httptest.Server
	mu      sync.Mutex
	signers []signer
	down    bool
	fetches atomic.Int64
}

func newKeyServer(t *testing.T, signers ...signer) *keyServer {
	ks := &keyServer{signers: signers}
	ks.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ks.fetches.Add(1)
		ks.mu.Lock()
		defer ks.mu.Unlock()
		if ks.down {
			http.Error(w, "rate limited", http.StatusTooManyRequests)
			return
		}
		type key struct {
			ID      string `json:"key_identifier"`
			Key     string `json:"key"`
			Current bool   `json:"is_current"`
		}
		doc := struct {
			Keys []key `json:"public_keys"`
		}{Keys: []key{}}
		for i, s := range ks.signers {
			doc.Keys = append(doc.Keys, key{ID: s.id, Key: s.pem(t), Current: i == len(ks.signers)-1})
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(doc)
	}))
	t.Cleanup(ks.Close)
	return ks
}

func (ks *keyServer) publish(s ...signer) {
	ks.mu.Lock()
	ks.signers = append(ks.signers, s...)
	ks.mu.Unlock()
}
func (ks *keyServer) setDown(d bool) { ks.mu.Lock(); ks.down = d; ks.mu.Unlock() }

// countingStore is a memstore, with every capability, that counts the
// Lookup and Delete calls, can be slowed down, and can fail them.
type countingStore struct {
	*memstore.Store
	lookups, deletes atomic.Int64
	delay            time.Duration
	fail             error
}

func (s *countingStore) wait(ctx context.Context) error {
	if s.fail != nil {
		return s.fail
	}
	if s.delay > 0 {
		select {
		case <-time.After(s.delay):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (s *countingStore) Lookup(ctx context.Context, h apitoken.Hash) (apitoken.Record, error) {
	s.lookups.Add(1)
	if err := s.wait(ctx); err != nil {
		return apitoken.Record{}, err
	}
	return s.Store.Lookup(ctx, h)
}

func (s *countingStore) Delete(ctx context.Context, accountID, id string) error {
	s.deletes.Add(1)
	if err := s.wait(ctx); err != nil {
		return err
	}
	return s.Store.Delete(ctx, accountID, id)
}

// env is one app with its leak endpoint, and one origin that reports to it.
type env struct {
	store   *countingStore
	iss     *apitoken.Issuer
	keys    *keyServer
	origin  secretscan.Origin
	signer  signer
	handler http.Handler
	logs    *bytes.Buffer // the handler's log and the Issuer's audit log

	mu      sync.Mutex
	leaks   []secretscan.Leak
	secrets []string
}

func newEnv(t *testing.T, base secretscan.Origin, cfg secretscan.Config) *env {
	t.Helper()
	e := &env{store: &countingStore{Store: memstore.New()}, signer: newSigner(t, "key-1"), logs: &bytes.Buffer{}}
	logger := slog.New(slog.NewJSONHandler(&lockedWriter{w: e.logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var err error
	e.iss, err = apitoken.NewIssuer(e.store, apitoken.WithPrefix("acme"), apitoken.WithAuditLogger(logger), apitoken.WithLastUseInterval(0))
	require.NoError(t, err)
	e.keys = newKeyServer(t, e.signer)
	e.origin = base
	e.origin.KeysURL = e.keys.URL
	cfg.Origins = append(cfg.Origins, e.origin)
	cfg.Logger = logger
	if cfg.OnLeak == nil {
		cfg.OnLeak = func(_ context.Context, l secretscan.Leak) {
			e.mu.Lock()
			defer e.mu.Unlock()
			e.leaks = append(e.leaks, l)
		}
	}
	e.handler, err = secretscan.NewHandler(e.iss, cfg)
	require.NoError(t, err)
	t.Cleanup(func() {
		e.mu.Lock()
		defer e.mu.Unlock()
		logs, leaks := e.logs.String(), fmt.Sprintf("%+v %#v", e.leaks, e.leaks)
		for _, s := range e.secrets {
			assert.NotContains(t, logs, s, "a log holds a secret")
			assert.NotContains(t, leaks, s, "a Leak holds a secret")
		}
	})
	return e
}

type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (e *env) issue(t *testing.T, account string) (string, apitoken.Token) {
	t.Helper()
	s, tok, err := e.iss.Issue(t.Context(), apitoken.IssueParams{AccountID: account, Name: "ci"})
	require.NoError(t, err)
	e.mu.Lock()
	e.secrets = append(e.secrets, s)
	e.mu.Unlock()
	return s, tok
}

func (e *env) live(t *testing.T, account, secret string) bool {
	t.Helper()
	_, err := e.iss.Verify(t.Context(), account, secret)
	if err != nil {
		require.Equal(t, apitoken.ErrInvalidToken, err)
	}
	return err == nil
}

func (e *env) reported() []secretscan.Leak {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]secretscan.Leak(nil), e.leaks...)
}

// report is a leak report's body.
func report(secrets ...string) []byte {
	var ms []map[string]string
	for i, s := range secrets {
		ms = append(ms, map[string]string{"token": s, "type": "acme_api_token",
			"url": fmt.Sprintf("https://github.com/octo/repo/blob/abc/file%d.txt", i), "source": "content"})
	}
	b, _ := json.Marshal(ms)
	return b
}

// post sends body to the handler with keyID and signature in the origin's
// headers (none when empty).
func (e *env) post(t *testing.T, body []byte, keyID, sig string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, "/leaks", bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	if keyID != "" {
		r.Header.Set(e.origin.KeyIDHeader, keyID)
	}
	if sig != "" {
		r.Header.Set(e.origin.SignatureHeader, sig)
	}
	w := httptest.NewRecorder()
	e.handler.ServeHTTP(w, r)
	return w
}

// send posts body signed by the origin's key.
func (e *env) send(t *testing.T, body []byte) *httptest.ResponseRecorder {
	t.Helper()
	return e.post(t, body, e.signer.id, e.signer.sign(t, body))
}

func gitlab() secretscan.Origin { return secretscan.GitLab }

func TestValidReportRevokes(t *testing.T) {
	for _, origin := range []secretscan.Origin{secretscan.GitHub, gitlab(), secretscan.DepsDev} {
		t.Run(origin.Name, func(t *testing.T) {
			e := newEnv(t, origin, secretscan.Config{})
			leaked, tok := e.issue(t, "acct_1")
			kept, _ := e.issue(t, "acct_1")

			w := e.send(t, report(leaked))
			require.Equal(t, http.StatusNoContent, w.Code, w.Body.String())
			assert.Empty(t, w.Body.String(), "the answer tells nothing")
			assert.False(t, e.live(t, "acct_1", leaked), "the reported secret is revoked")
			assert.True(t, e.live(t, "acct_1", kept), "the account's other token is not")
			assert.Equal(t, []secretscan.Leak{{Token: tok, Revoked: true, Origin: origin.Name, Type: "acme_api_token",
				URL: "https://github.com/octo/repo/blob/abc/file0.txt", Source: "content"}}, e.reported())
			assert.Contains(t, e.logs.String(), `"msg":"apitoken: token revoked"`)
			assert.Contains(t, e.logs.String(), `"reason":"leaked: reported by `+origin.Name+` secret scanning"`)
		})
	}
}

func TestBadSignaturesRevokeNothing(t *testing.T) {
	e := newEnv(t, secretscan.GitHub, secretscan.Config{})
	leaked, _ := e.issue(t, "acct_1")
	body := report(leaked)
	other := newSigner(t, "key-2")
	e.keys.publish(other)
	attacker := newSigner(t, "key-1") // claims the published id

	tampered := bytes.Replace(body, []byte("file0.txt"), []byte("file9.txt"), 1)
	appended := report(leaked, "acme_x")
	for _, tc := range []struct {
		name       string
		body       []byte
		keyID, sig string
	}{
		{"no signature headers", body, "", ""},
		{"no signature", body, e.signer.id, ""},
		{"no key id", body, "", e.signer.sign(t, body)},
		{"forged: signed by an unpublished key under a published id", body, e.signer.id, attacker.sign(t, body)},
		{"wrong key: signed by one published key, named as another", body, other.id, e.signer.sign(t, body)},
		{"tampered after signing", tampered, e.signer.id, e.signer.sign(t, body)},
		{"tampered and re-signed by another key", appended, e.signer.id, attacker.sign(t, appended)},
		{"signature not base64", body, e.signer.id, "not base64!"},
		{"signature of another body", body, e.signer.id, e.signer.sign(t, []byte("[]"))},
		{"empty signature bytes", body, e.signer.id, base64.StdEncoding.EncodeToString(nil) + "="},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lookups := e.store.lookups.Load()
			w := e.post(t, tc.body, tc.keyID, tc.sig)
			assert.Equal(t, http.StatusBadRequest, w.Code, w.Body.String())
			assert.NotContains(t, w.Body.String(), leaked)
			assert.Equal(t, lookups, e.store.lookups.Load(), "nothing is looked up before the signature is verified")
			assert.True(t, e.live(t, "acct_1", leaked), "nothing is revoked")
			assert.Empty(t, e.reported())
		})
	}
	t.Run("the control: the same report, well signed, revokes", func(t *testing.T) {
		require.Equal(t, http.StatusNoContent, e.send(t, body).Code)
		assert.False(t, e.live(t, "acct_1", leaked))
	})
}

func TestKeyRotation(t *testing.T) {
	e := newEnv(t, secretscan.GitHub, secretscan.Config{KeysRefetch: 200 * time.Millisecond})
	s1, _ := e.issue(t, "acct_1")
	require.Equal(t, http.StatusNoContent, e.send(t, report(s1)).Code)
	require.EqualValues(t, 1, e.keys.fetches.Load(), "the keys are fetched on the first report")
	s2, _ := e.issue(t, "acct_1")
	require.Equal(t, http.StatusNoContent, e.send(t, report(s2)).Code)
	require.EqualValues(t, 1, e.keys.fetches.Load(), "and cached")

	// The origin rotates to a new key: its first report makes one fetch.
	time.Sleep(250 * time.Millisecond) // past the interval since the first fetch
	next := newSigner(t, "key-2")
	e.keys.publish(next)
	s3, _ := e.issue(t, "acct_1")
	body := report(s3)
	w := e.post(t, body, next.id, next.sign(t, body))
	require.Equal(t, http.StatusNoContent, w.Code, w.Body.String())
	assert.EqualValues(t, 2, e.keys.fetches.Load(), "an unknown key id makes one fetch")
	assert.False(t, e.live(t, "acct_1", s3))

	// An id the keys fetched a moment ago lack: no fetch until the interval
	// has passed; the origin is told to retry.
	later := newSigner(t, "key-3")
	e.keys.publish(later)
	s4, _ := e.issue(t, "acct_1")
	body = report(s4)
	for range 3 {
		w = e.post(t, body, later.id, later.sign(t, body))
		require.Equal(t, http.StatusServiceUnavailable, w.Code, w.Body.String())
		assert.NotEmpty(t, w.Header().Get("Retry-After"))
	}
	assert.EqualValues(t, 2, e.keys.fetches.Load(), "at most one fetch per interval")
	assert.True(t, e.live(t, "acct_1", s4))
	time.Sleep(250 * time.Millisecond)
	w = e.post(t, body, later.id, later.sign(t, body))
	require.Equal(t, http.StatusNoContent, w.Code, w.Body.String())
	assert.EqualValues(t, 3, e.keys.fetches.Load())
	assert.False(t, e.live(t, "acct_1", s4))

	// The previous key still verifies: a sender may use it while it rotates.
	s5, _ := e.issue(t, "acct_1")
	require.Equal(t, http.StatusNoContent, e.send(t, report(s5)).Code)
	assert.EqualValues(t, 3, e.keys.fetches.Load())
}

func TestKeysEndpointDown(t *testing.T) {
	e := newEnv(t, gitlab(), secretscan.Config{KeysRefetch: 100 * time.Millisecond})
	leaked, _ := e.issue(t, "acct_1")
	e.keys.setDown(true)
	w := e.send(t, report(leaked))
	assert.Equal(t, http.StatusServiceUnavailable, w.Code, "GitLab and GitHub retry an answer of 400 and more; 503 says: later")
	assert.NotEmpty(t, w.Header().Get("Retry-After"))
	assert.Zero(t, e.store.lookups.Load())
	assert.True(t, e.live(t, "acct_1", leaked), "nothing is revoked")

	e.keys.setDown(false)
	time.Sleep(150 * time.Millisecond)
	require.Equal(t, http.StatusNoContent, e.send(t, report(leaked)).Code, "the retry, once the keys are back")
	assert.False(t, e.live(t, "acct_1", leaked))
}

// TestStaleKeyWhileEndpointDown: keys past their TTL are refetched, but a
// keys endpoint that is down is no sign a key was withdrawn: a report
// signed with a key already fetched still verifies.
func TestStaleKeyWhileEndpointDown(t *testing.T) {
	e := newEnv(t, secretscan.GitHub, secretscan.Config{KeysTTL: 50 * time.Millisecond, KeysRefetch: 50 * time.Millisecond})
	first, _ := e.issue(t, "acct_1")
	require.Equal(t, http.StatusNoContent, e.send(t, report(first)).Code)
	require.EqualValues(t, 1, e.keys.fetches.Load())

	time.Sleep(100 * time.Millisecond) // past the TTL and the refetch interval
	e.keys.setDown(true)
	for i := range 2 { // the failed refetch, then within the interval after it
		leaked, _ := e.issue(t, "acct_1")
		w := e.send(t, report(leaked))
		require.Equal(t, http.StatusNoContent, w.Code, "report %d: %s", i, w.Body.String())
		assert.False(t, e.live(t, "acct_1", leaked), "report %d revoked", i)
	}
	assert.EqualValues(t, 2, e.keys.fetches.Load(), "one refetch was tried")
}

func TestKeysDocumentProblems(t *testing.T) {
	for _, tc := range []struct{ name, doc string }{
		{"not JSON", "<html>"},
		{"no keys", `{"public_keys":[]}`},
		{"not a PEM key", `{"public_keys":[{"key_identifier":"key-1","key":"hello"}]}`},
		{"an RSA key", `{"public_keys":[{"key_identifier":"key-1","key":"` + strings.ReplaceAll(rsaPEM, "\n", `\n`) + `"}]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(tc.doc)) }))
			defer srv.Close()
			e := newEnv(t, secretscan.GitHub, secretscan.Config{})
			leaked, _ := e.issue(t, "acct_1")
			o := e.origin
			o.KeysURL = srv.URL
			h, err := secretscan.NewHandler(e.iss, secretscan.Config{Origins: []secretscan.Origin{o}, Logger: slog.New(slog.DiscardHandler)})
			require.NoError(t, err)
			body := report(leaked)
			r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
			r.Header.Set(o.KeyIDHeader, e.signer.id)
			r.Header.Set(o.SignatureHeader, e.signer.sign(t, body))
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			assert.Equal(t, http.StatusServiceUnavailable, w.Code)
			assert.True(t, e.live(t, "acct_1", leaked))
		})
	}
}

// rsaPEM is an RSA public key: a keys document may hold only ECDSA P-256.
const rsaPEM = `-----BEGIN PUBLIC KEY-----
MFwwDQYJKoZIhvcNAQEBBQADSwAwSAJBAMnkz6kWBl3wRGsP7zzJiRX9bpXzgK/4
a6/C9u4sLhYRmLIuwlGPDWQrhxLuGnfD2bVp4f8hDJ7Cq+WAe1Ai0KcCAwEAAQ==
-----END PUBLIC KEY-----
`

func TestFalsePositives(t *testing.T) {
	e := newEnv(t, secretscan.GitHub, secretscan.Config{Feedback: true})
	leaked, _ := e.issue(t, "acct_1")
	otherIss, err := apitoken.NewIssuer(memstore.New(), apitoken.WithPrefix("globex"))
	require.NoError(t, err)
	foreign, _, err := otherIss.Issue(t.Context(), apitoken.IssueParams{AccountID: "acct_1"})
	require.NoError(t, err)
	badSum := leaked[:len(leaked)-1] + string(leaked[len(leaked)-1]^1)
	unknownIss, err := apitoken.NewIssuer(memstore.New(), apitoken.WithPrefix("acme"))
	require.NoError(t, err)
	unknown, _, err := unknownIss.Issue(t.Context(), apitoken.IssueParams{AccountID: "acct_1"})
	require.NoError(t, err)

	lookups := e.store.lookups.Load()
	w := e.send(t, report(foreign, badSum, "acme_short", ""))
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	assert.Equal(t, lookups, e.store.lookups.Load(), "another prefix or a bad checksum costs no store call")
	var got []map[string]string
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &got))
	require.Len(t, got, 4)
	for i, s := range []string{foreign, badSum, "acme_short", ""} {
		sum := sha256.Sum256([]byte(s))
		assert.Equal(t, map[string]string{"token_hash": hex.EncodeToString(sum[:]), "token_type": "acme_api_token", "label": "false_positive"}, got[i])
	}
	assert.True(t, e.live(t, "acct_1", leaked))
	assert.Empty(t, e.reported())

	w = e.send(t, report(unknown, leaked))
	require.Equal(t, http.StatusOK, w.Code)
	got = nil
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &got))
	assert.Equal(t, []string{"false_positive", "true_positive"}, []string{got[0]["label"], got[1]["label"]})
	sum := sha256.Sum256([]byte(leaked))
	assert.Equal(t, hex.EncodeToString(sum[:]), got[1]["token_hash"], "token_hash is the plain SHA-256 of the raw token, in hex")
	assert.NotContains(t, w.Body.String(), leaked)
	assert.False(t, e.live(t, "acct_1", leaked))
}

func TestRedeliveryIsIdempotent(t *testing.T) {
	for _, reportOnly := range []bool{false, true} {
		t.Run(fmt.Sprintf("ReportOnly %v", reportOnly), func(t *testing.T) {
			e := newEnv(t, secretscan.GitHub, secretscan.Config{Feedback: true, ReportOnly: reportOnly})
			leaked, tok := e.issue(t, "acct_1")
			body := report(leaked, leaked) // found in two places
			sig := e.signer.sign(t, body)
			for i := range 3 {
				w := e.post(t, body, e.signer.id, sig)
				require.Equal(t, http.StatusOK, w.Code, "delivery %d", i)
				assert.Equal(t, 2, strings.Count(w.Body.String(), `"label":"true_positive"`), "delivery %d is labelled as the first", i)
			}
			leaks := e.reported()
			require.Len(t, leaks, 2, "the hook ran once per place, for the first delivery only")
			assert.Equal(t, tok, leaks[0].Token)
			assert.Equal(t, !reportOnly, leaks[0].Revoked)
			assert.NotEqual(t, leaks[0].URL, leaks[1].URL)
			assert.Equal(t, reportOnly, e.live(t, "acct_1", leaked), "ReportOnly revokes nothing")
			assert.LessOrEqual(t, strings.Count(e.logs.String(), "token revoked"), 1)

			// The same secret found at a new place reaches the hook, once.
			moved, err := json.Marshal([]map[string]string{{"token": leaked, "type": "acme_api_token",
				"url": "https://github.com/octo/fork/blob/def/moved.txt", "source": "content"}})
			require.NoError(t, err)
			for i := range 2 {
				w := e.send(t, moved)
				require.Equal(t, http.StatusOK, w.Code, "delivery %d", i)
				assert.Contains(t, w.Body.String(), `"label":"true_positive"`)
			}
			leaks = e.reported()
			require.Len(t, leaks, 3, "one more call, for the new place only")
			assert.Equal(t, "https://github.com/octo/fork/blob/def/moved.txt", leaks[2].URL)
			assert.Equal(t, tok, leaks[2].Token)
		})
	}
	t.Run("another instance (no memo): nothing left to revoke, no hook", func(t *testing.T) {
		e := newEnv(t, secretscan.GitHub, secretscan.Config{})
		leaked, _ := e.issue(t, "acct_1")
		body := report(leaked)
		require.Equal(t, http.StatusNoContent, e.send(t, body).Code)
		h2, err := secretscan.NewHandler(e.iss, secretscan.Config{Origins: []secretscan.Origin{e.origin}, Logger: slog.New(slog.DiscardHandler),
			OnLeak: func(context.Context, secretscan.Leak) { t.Error("the hook ran again") }})
		require.NoError(t, err)
		r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
		r.Header.Set(e.origin.KeyIDHeader, e.signer.id)
		r.Header.Set(e.origin.SignatureHeader, e.signer.sign(t, body))
		w := httptest.NewRecorder()
		h2.ServeHTTP(w, r)
		assert.Equal(t, http.StatusNoContent, w.Code)
	})
}

func TestLimits(t *testing.T) {
	e := newEnv(t, secretscan.GitHub, secretscan.Config{MaxBodyBytes: 1000, MaxMatches: 3})
	leaked, _ := e.issue(t, "acct_1")
	big := report(leaked, leaked, leaked, leaked, leaked, leaked, leaked, leaked, leaked, leaked)
	require.Greater(t, len(big), 1000)
	w := e.send(t, big)
	assert.Equal(t, http.StatusRequestEntityTooLarge, w.Code)
	many := report(leaked, "a", "b", "c")
	require.Less(t, len(many), 1000)
	w = e.send(t, many)
	assert.Equal(t, http.StatusRequestEntityTooLarge, w.Code)
	assert.True(t, e.live(t, "acct_1", leaked))

	for _, body := range []string{"{}", "not json", `[{"token": 1}]`} {
		w = e.send(t, []byte(body))
		assert.Equal(t, http.StatusBadRequest, w.Code, body)
	}
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	rec := httptest.NewRecorder()
	e.handler.ServeHTTP(rec, r)
	assert.Equal(t, http.StatusMethodNotAllowed, rec.Code)
	assert.Equal(t, http.MethodPost, rec.Header().Get("Allow"))
}

// TestThousandsOfMatches: a report of 3,000 matches on a store that takes
// 2 ms a call (6,000 calls in all, 12 s one after another) is handled
// within a 5-second timeout, because its secrets are looked up at once.
func TestThousandsOfMatches(t *testing.T) {
	e := newEnv(t, secretscan.GitHub, secretscan.Config{Timeout: 5 * time.Second, MaxBodyBytes: 8 << 20})
	var secrets []string
	for i := range 1500 {
		s, _ := e.issue(t, fmt.Sprintf("acct_%d", i%50))
		secrets = append(secrets, s)
	}
	unknownIss, err := apitoken.NewIssuer(memstore.New(), apitoken.WithPrefix("acme"))
	require.NoError(t, err)
	for range 1500 {
		s, _, err := unknownIss.Issue(t.Context(), apitoken.IssueParams{AccountID: "x"})
		require.NoError(t, err)
		secrets = append(secrets, s)
	}
	e.store.delay = 2 * time.Millisecond
	start := time.Now()
	w := e.send(t, report(secrets...))
	took := time.Since(start)
	require.Equal(t, http.StatusNoContent, w.Code, w.Body.String())
	t.Logf("3000 matches in %v", took)
	e.store.delay = 0
	assert.Len(t, e.reported(), 1500)
	for i, s := range secrets[:1500] {
		assert.False(t, e.live(t, fmt.Sprintf("acct_%d", i%50), s))
	}
}

func TestStoreFailureIsRetried(t *testing.T) {
	e := newEnv(t, secretscan.GitHub, secretscan.Config{})
	leaked, _ := e.issue(t, "acct_1")
	e.store.fail = errors.New("database is down")
	w := e.send(t, report(leaked))
	assert.Equal(t, http.StatusServiceUnavailable, w.Code, "a store outage is never a 2xx: the origin must send it again")
	assert.Empty(t, e.reported())
	e.store.fail = nil
	assert.True(t, e.live(t, "acct_1", leaked))
	require.Equal(t, http.StatusNoContent, e.send(t, report(leaked)).Code)
	assert.False(t, e.live(t, "acct_1", leaked))
}

func TestTimeout(t *testing.T) {
	e := newEnv(t, secretscan.GitHub, secretscan.Config{Timeout: 50 * time.Millisecond, Concurrency: 1})
	var secrets []string
	for range 20 {
		s, _ := e.issue(t, "acct_1")
		secrets = append(secrets, s)
	}
	e.store.delay = 20 * time.Millisecond
	w := e.send(t, report(secrets...))
	assert.Equal(t, http.StatusServiceUnavailable, w.Code, "unfinished in time: the origin sends it again")
	e.store.delay = 0
	require.Equal(t, http.StatusNoContent, e.send(t, report(secrets...)).Code)
	for _, s := range secrets {
		assert.False(t, e.live(t, "acct_1", s))
	}
}

func TestNewHandlerConfig(t *testing.T) {
	iss, err := apitoken.NewIssuer(memstore.New())
	require.NoError(t, err)
	ok := secretscan.GitHub
	for _, tc := range []struct {
		name string
		iss  *apitoken.Issuer
		cfg  secretscan.Config
		want string
	}{
		{"nil Issuer", nil, secretscan.Config{Origins: []secretscan.Origin{ok}}, "Issuer is nil"},
		{"no origins", iss, secretscan.Config{}, "Origins is empty"},
		{"GitLab without its URL", iss, secretscan.Config{Origins: []secretscan.Origin{secretscan.GitLab}}, "GitLab has no KeysURL"},
		{"an origin without headers", iss, secretscan.Config{Origins: []secretscan.Origin{{Name: "x", KeysURL: "https://x"}}}, "Origins[0] needs"},
		{"a negative limit", iss, secretscan.Config{Origins: []secretscan.Origin{ok}, MaxMatches: -1}, "MaxMatches is negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := secretscan.NewHandler(tc.iss, tc.cfg)
			require.ErrorIs(t, err, apitoken.ErrInvalidInput)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	_, err = secretscan.NewHandler(iss, secretscan.Config{Origins: []secretscan.Origin{secretscan.GitHub, secretscan.DepsDev}})
	require.NoError(t, err)
}

// TestRealServer: a report over a real HTTP connection, as an origin sends
// it.
func TestRealServer(t *testing.T) {
	e := newEnv(t, secretscan.DepsDev, secretscan.Config{})
	srv := httptest.NewServer(e.handler)
	defer srv.Close()
	leaked, _ := e.issue(t, "acct_1")
	body := report(leaked)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL, bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("GOSST-PUBLIC-KEY-IDENTIFIER", e.signer.id)
	req.Header.Set("GOSST-PUBLIC-KEY-SIGNATURE", e.signer.sign(t, body))
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusNoContent, resp.StatusCode)
	assert.False(t, e.live(t, "acct_1", leaked))
}
