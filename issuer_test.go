package apitoken_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
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
	"github.com/apitoken-go/apitoken/memstore"
)

// clock is a settable clock for WithClock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newIssuer(t *testing.T, store apitoken.Store, opts ...apitoken.Option) *apitoken.Issuer {
	t.Helper()
	iss, err := apitoken.NewIssuer(store, opts...)
	require.NoError(t, err)
	return iss
}

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// checksum recomputes the published checksum: the big-endian base62 digits
// of the CRC32 (IEEE) of everything before them.
func checksum(s string) string {
	c := crc32.ChecksumIEEE([]byte(s))
	out := make([]byte, 6)
	for i := 5; i >= 0; i-- {
		out[i] = base62[c%62]
		c /= 62
	}
	return string(out)
}

func TestNewIssuer(t *testing.T) {
	tests := []struct {
		name    string
		store   apitoken.Store
		opts    []apitoken.Option
		wantErr string
	}{
		{name: "ok, defaults", store: memstore.New()},
		{name: "ok, prefix of one letter", store: memstore.New(), opts: []apitoken.Option{apitoken.WithPrefix("a")}},
		{name: "ok, prefix of 32 characters", store: memstore.New(), opts: []apitoken.Option{apitoken.WithPrefix("a" + strings.Repeat("b_9", 10) + "z")}},
		{name: "ok, hash key of 32 bytes", store: memstore.New(), opts: []apitoken.Option{apitoken.WithHashKey(bytes.Repeat([]byte{7}, 32))}},
		{name: "nok, nil store", store: nil, wantErr: "store is nil"},
		{name: "nok, typed nil store", store: (*memstore.Store)(nil), wantErr: "store is nil"},
		{name: "nok, nil option", store: memstore.New(), opts: []apitoken.Option{nil}, wantErr: "option is nil"},
		{name: "nok, empty prefix", store: memstore.New(), opts: []apitoken.Option{apitoken.WithPrefix("")}, wantErr: "prefix must be 1 to 32"},
		{name: "nok, prefix of 33 characters", store: memstore.New(), opts: []apitoken.Option{apitoken.WithPrefix(strings.Repeat("a", 33))}, wantErr: "prefix must be 1 to 32"},
		{name: "nok, prefix starting with a digit", store: memstore.New(), opts: []apitoken.Option{apitoken.WithPrefix("9acme")}, wantErr: "start with a letter"},
		{name: "nok, prefix starting with underscore", store: memstore.New(), opts: []apitoken.Option{apitoken.WithPrefix("_acme")}, wantErr: "start with a letter"},
		{name: "nok, upper-case prefix", store: memstore.New(), opts: []apitoken.Option{apitoken.WithPrefix("Acme")}, wantErr: "start with a letter"},
		{name: "nok, prefix with a dash", store: memstore.New(), opts: []apitoken.Option{apitoken.WithPrefix("ac-me")}, wantErr: "only a-z, 0-9 and '_'"},
		{name: "nok, prefix with non-ASCII", store: memstore.New(), opts: []apitoken.Option{apitoken.WithPrefix("acmé")}, wantErr: "only a-z, 0-9 and '_'"},
		{name: "nok, short hash key", store: memstore.New(), opts: []apitoken.Option{apitoken.WithHashKey(make([]byte, 31))}, wantErr: "hash key is 31 bytes"},
		{name: "nok, nil clock", store: memstore.New(), opts: []apitoken.Option{apitoken.WithClock(nil)}, wantErr: "clock is nil"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			iss, err := apitoken.NewIssuer(tt.store, tt.opts...)
			if tt.wantErr == "" {
				require.NoError(t, err)
				require.NotNil(t, iss)
				return
			}
			require.ErrorIs(t, err, apitoken.ErrInvalidInput)
			assert.ErrorContains(t, err, tt.wantErr)
			assert.Nil(t, iss)
		})
	}
}

func TestIssueSecretFormat(t *testing.T) {
	pattern := regexp.MustCompile(`^` + apitoken.Pattern + `$`)
	for _, prefix := range []string{"apitoken", "acme", "a", "acme_live", "x9_" + strings.Repeat("z", 29)} {
		t.Run(prefix, func(t *testing.T) {
			var opts []apitoken.Option
			if prefix != apitoken.DefaultPrefix {
				opts = append(opts, apitoken.WithPrefix(prefix))
			}
			iss := newIssuer(t, memstore.New(), opts...)
			seen := map[string]bool{}
			for range 50 {
				secret, tok, err := iss.Issue(context.Background(), apitoken.IssueParams{AccountID: "acct"})
				require.NoError(t, err)
				assert.Len(t, secret, len(prefix)+1+38, "fixed length")
				assert.True(t, strings.HasPrefix(secret, prefix+"_"))
				assert.Regexp(t, pattern, secret, "Pattern must match every issued secret")
				assert.Regexp(t, regexp.MustCompile(`\b`+prefix+`_[0-9A-Za-z]{38}\b`), "key: "+secret+".")
				body := secret[len(prefix)+1:]
				assert.Equal(t, checksum(secret[:len(secret)-6]), body[32:], "last six characters are the CRC32 of the rest")
				assert.False(t, seen[secret], "no two secrets alike")
				seen[secret] = true
				assert.NotContains(t, fmt.Sprintf("%v %+v %#v", tok, tok, tok), secret)
			}
		})
	}
	t.Run("Pattern finds secrets in text but not longer or shorter runs", func(t *testing.T) {
		iss := newIssuer(t, memstore.New())
		secret, _, err := iss.Issue(context.Background(), apitoken.IssueParams{AccountID: "acct"})
		require.NoError(t, err)
		re := regexp.MustCompile(apitoken.Pattern)
		assert.Equal(t, secret, re.FindString(`export TOKEN="`+secret+`"`))
		assert.Empty(t, re.FindString(secret+"A"), "one character too many")
		assert.Empty(t, re.FindString(secret[:len(secret)-1]), "one character too few")
	})
}

// TestIssueAlphabetIsUniform checks that every base62 character is drawn and
// that none is favoured (modulo bias would favour the first 8 characters by
// about 1/31; this test catches gross bias, not that one).
func TestIssueAlphabetIsUniform(t *testing.T) {
	iss := newIssuer(t, memstore.New())
	counts := map[rune]int{}
	const n = 2000
	for range n {
		secret, _, err := iss.Issue(context.Background(), apitoken.IssueParams{AccountID: "acct"})
		require.NoError(t, err)
		for _, r := range secret[len("apitoken_") : len(secret)-6] {
			counts[r]++
		}
	}
	require.Len(t, counts, 62, "every base62 character appears")
	want := float64(n*32) / 62
	for r, c := range counts {
		assert.InDelta(t, want, float64(c), want*0.15, "character %q drawn %d times, want about %.0f", r, c, want)
	}
}

func TestIssueValidation(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	long := strings.Repeat("x", 129)
	tests := []struct {
		name    string
		p       apitoken.IssueParams
		wantErr string // empty: ok
	}{
		{name: "ok, account only", p: apitoken.IssueParams{AccountID: "acme"}},
		{name: "ok, every field", p: apitoken.IssueParams{AccountID: "acme", MemberID: "m1", Name: "CI deploy", Scopes: []string{"read", "write:repo"}, ExpiresAt: now.Add(time.Hour)}},
		{name: "ok, Unicode and punctuation in account", p: apitoken.IssueParams{AccountID: `Größe "quoted" \ % _ 名前`}},
		{name: "ok, 128-byte fields", p: apitoken.IssueParams{AccountID: long[:128], MemberID: long[:128], Name: long[:128]}},
		{name: "ok, 32 scopes", p: apitoken.IssueParams{AccountID: "acme", Scopes: func() (s []string) {
			for i := range 32 {
				s = append(s, fmt.Sprint("s", i))
			}
			return s
		}()}},
		{name: "nok, empty account", p: apitoken.IssueParams{}, wantErr: "AccountID is empty"},
		{name: "nok, account with colon", p: apitoken.IssueParams{AccountID: "ac:me"}, wantErr: "AccountID contains ':'"},
		{name: "nok, account with NUL", p: apitoken.IssueParams{AccountID: "acme\x00"}, wantErr: "AccountID contains a control character"},
		{name: "nok, account with newline", p: apitoken.IssueParams{AccountID: "ac\nme"}, wantErr: "AccountID contains a control character"},
		{name: "nok, account with DEL", p: apitoken.IssueParams{AccountID: "acme\x7f"}, wantErr: "AccountID contains a control character"},
		{name: "nok, account with C1 control", p: apitoken.IssueParams{AccountID: "acme\u0085"}, wantErr: "AccountID contains a control character"},
		{name: "nok, account with leading space", p: apitoken.IssueParams{AccountID: " acme"}, wantErr: "white space"},
		{name: "nok, account with trailing space", p: apitoken.IssueParams{AccountID: "acme "}, wantErr: "white space"},
		{name: "nok, account not UTF-8", p: apitoken.IssueParams{AccountID: "ac\xffme"}, wantErr: "AccountID is not valid UTF-8"},
		{name: "nok, account of 129 bytes", p: apitoken.IssueParams{AccountID: long}, wantErr: "AccountID is longer than 128 bytes"},
		{name: "nok, member of 129 bytes", p: apitoken.IssueParams{AccountID: "acme", MemberID: long}, wantErr: "MemberID is longer than 128 bytes"},
		{name: "nok, member with tab", p: apitoken.IssueParams{AccountID: "acme", MemberID: "a\tb"}, wantErr: "MemberID contains a control character"},
		{name: "nok, name of 129 bytes", p: apitoken.IssueParams{AccountID: "acme", Name: long}, wantErr: "Name is longer than 128 bytes"},
		{name: "nok, name not UTF-8", p: apitoken.IssueParams{AccountID: "acme", Name: "\xc3"}, wantErr: "Name is not valid UTF-8"},
		{name: "nok, empty scope", p: apitoken.IssueParams{AccountID: "acme", Scopes: []string{"read", ""}}, wantErr: "Scopes[1]"},
		{name: "nok, scope with space", p: apitoken.IssueParams{AccountID: "acme", Scopes: []string{"read write"}}, wantErr: "Scopes[0]"},
		{name: "nok, scope with quote", p: apitoken.IssueParams{AccountID: "acme", Scopes: []string{`a"b`}}, wantErr: "Scopes[0]"},
		{name: "nok, scope of 65 bytes", p: apitoken.IssueParams{AccountID: "acme", Scopes: []string{strings.Repeat("s", 65)}}, wantErr: "Scopes[0]"},
		{name: "nok, repeated scope", p: apitoken.IssueParams{AccountID: "acme", Scopes: []string{"read", "read"}}, wantErr: "Scopes[1] repeats"},
		{name: "nok, 33 scopes", p: apitoken.IssueParams{AccountID: "acme", Scopes: make([]string, 33)}, wantErr: "Scopes has 33 entries"},
		{name: "nok, expiry in the past", p: apitoken.IssueParams{AccountID: "acme", ExpiresAt: now.Add(-time.Second)}, wantErr: "ExpiresAt is not in the future"},
		{name: "nok, expiry now", p: apitoken.IssueParams{AccountID: "acme", ExpiresAt: now}, wantErr: "ExpiresAt is not in the future"},
		{name: "ok, expiry on the last day of the year 9999", p: apitoken.IssueParams{AccountID: "acme", ExpiresAt: time.Date(9999, time.December, 31, 23, 59, 59, 999999000, time.UTC)}},
		{name: "nok, expiry after the year 9999", p: apitoken.IssueParams{AccountID: "acme", ExpiresAt: time.Date(10000, time.January, 1, 0, 0, 0, 0, time.UTC)}, wantErr: "ExpiresAt is after the year 9999"},
		{name: "nok, expiry less than the stored microsecond ahead", p: apitoken.IssueParams{AccountID: "acme", ExpiresAt: now.Add(500 * time.Nanosecond)}, wantErr: "ExpiresAt is not in the future"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := newSpy()
			iss := newIssuer(t, store, apitoken.WithClock(func() time.Time { return now }))
			secret, tok, err := iss.Issue(context.Background(), tt.p)
			if tt.wantErr == "" {
				require.NoError(t, err)
				assert.NotEmpty(t, secret)
				assert.Equal(t, tt.p.AccountID, tok.AccountID)
				return
			}
			require.ErrorIs(t, err, apitoken.ErrInvalidInput)
			assert.ErrorContains(t, err, tt.wantErr)
			assert.Empty(t, secret)
			assert.Zero(t, tok)
			assert.Zero(t, store.calls.Load(), "invalid params must not reach the store")
			if tt.p.AccountID != "" {
				assert.NotContains(t, err.Error(), tt.p.AccountID, "errors name the field, not the value")
			}
		})
	}
}

func TestIssueReturnsStoredMetadata(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 27, 12, 0, 0, 123456789, time.FixedZone("CET", 3600))
	iss := newIssuer(t, memstore.New(), apitoken.WithClock(func() time.Time { return now }))
	scopes := []string{"read", "write"}
	exp := now.Add(24*time.Hour + 999*time.Nanosecond)
	_, tok, err := iss.Issue(ctx, apitoken.IssueParams{AccountID: "acme", MemberID: "m1", Name: "ci", Scopes: scopes, ExpiresAt: exp})
	require.NoError(t, err)

	assert.Regexp(t, `^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`, tok.ID, "ID is a UUIDv7")
	assert.Equal(t, time.UTC, tok.CreatedAt.Location())
	assert.Equal(t, now.UTC().Truncate(time.Microsecond), tok.CreatedAt, "CreatedAt is the clock, in UTC, to the microsecond")
	assert.Equal(t, exp.UTC().Truncate(time.Microsecond), tok.ExpiresAt, "ExpiresAt is truncated, never lengthened")
	assert.True(t, tok.LastUsedAt.IsZero())

	scopes[0] = "admin" // the caller's slice is not kept
	tok.Scopes[1] = "admin"
	toks, err := iss.List(ctx, "acme")
	require.NoError(t, err)
	require.Len(t, toks, 1)
	assert.Equal(t, []string{"read", "write"}, toks[0].Scopes)
	tok.Scopes = []string{"read", "write"}
	assert.Equal(t, tok, toks[0], "Issue returns what List shows")
}

func TestIssueRetriesDuplicates(t *testing.T) {
	ctx := context.Background()
	dup := fmt.Errorf("store: %w", apitoken.ErrDuplicate)

	t.Run("ok, two duplicates then success", func(t *testing.T) {
		store := newSpy()
		store.createErrs = []error{dup, dup}
		iss := newIssuer(t, store)
		secret, tok, err := iss.Issue(ctx, apitoken.IssueParams{AccountID: "acme"})
		require.NoError(t, err)
		assert.EqualValues(t, 3, store.calls.Load())
		got, err := iss.Verify(ctx, "acme", secret)
		require.NoError(t, err)
		assert.Equal(t, tok.ID, got.ID)
	})
	t.Run("nok, duplicates every time", func(t *testing.T) {
		store := newSpy()
		store.createErrs = []error{dup, dup, dup, dup}
		iss := newIssuer(t, store)
		secret, _, err := iss.Issue(ctx, apitoken.IssueParams{AccountID: "acme"})
		require.ErrorIs(t, err, apitoken.ErrDuplicate)
		assert.Empty(t, secret)
		assert.EqualValues(t, 3, store.calls.Load(), "bounded retries")
		toks, err := iss.List(ctx, "acme")
		require.NoError(t, err)
		assert.Empty(t, toks, "nothing stored")
	})
	t.Run("nok, store failure is not retried and returns no secret", func(t *testing.T) {
		store := newSpy()
		store.createErrs = []error{errors.New("connection reset")}
		iss := newIssuer(t, store)
		secret, tok, err := iss.Issue(ctx, apitoken.IssueParams{AccountID: "acme"})
		require.ErrorContains(t, err, "connection reset")
		assert.NotErrorIs(t, err, apitoken.ErrInvalidInput)
		assert.Empty(t, secret)
		assert.Zero(t, tok)
		assert.EqualValues(t, 2, store.calls.Load(), "one Create, not retried, and one Delete of what it may have stored")
	})
}

func TestListAndDelete(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)}
	store := newSpy()
	iss := newIssuer(t, store, apitoken.WithClock(clk.Now))
	var ids []string
	for i := range 3 {
		_, tok, err := iss.Issue(ctx, apitoken.IssueParams{AccountID: "acme", Name: fmt.Sprint("t", i)})
		require.NoError(t, err)
		ids = append(ids, tok.ID)
		clk.Add(time.Second)
	}
	otherSecret, otherTok, err := iss.Issue(ctx, apitoken.IssueParams{AccountID: "globex"})
	require.NoError(t, err)

	toks, err := iss.List(ctx, "acme")
	require.NoError(t, err)
	require.Len(t, toks, 3)
	for i, tok := range toks {
		assert.Equal(t, ids[i], tok.ID, "oldest first")
		assert.Equal(t, "acme", tok.AccountID)
	}

	t.Run("nok, delete another account's token", func(t *testing.T) {
		err := iss.Delete(ctx, "acme", otherTok.ID)
		require.ErrorIs(t, err, apitoken.ErrNotFound)
		_, err = iss.Verify(ctx, "globex", otherSecret)
		require.NoError(t, err, "the other account's token still works")
	})
	t.Run("nok, delete unknown, empty or oversized id", func(t *testing.T) {
		for _, id := range []string{"00000000-0000-7000-8000-000000000000", "", strings.Repeat("x", 4096), strings.ToUpper(ids[0])} {
			err := iss.Delete(ctx, "acme", id)
			require.ErrorIs(t, err, apitoken.ErrNotFound)
		}
	})
	t.Run("nok, bad account", func(t *testing.T) {
		for _, acct := range []string{"", "a:b", "a\x00"} {
			require.ErrorIs(t, iss.Delete(ctx, acct, ids[0]), apitoken.ErrInvalidInput)
			_, err := iss.List(ctx, acct)
			require.ErrorIs(t, err, apitoken.ErrInvalidInput)
		}
	})
	t.Run("ok, delete is for good", func(t *testing.T) {
		require.NoError(t, iss.Delete(ctx, "acme", ids[1]))
		require.ErrorIs(t, iss.Delete(ctx, "acme", ids[1]), apitoken.ErrNotFound)
		toks, err := iss.List(ctx, "acme")
		require.NoError(t, err)
		require.Len(t, toks, 2)
		assert.Equal(t, []string{ids[0], ids[2]}, []string{toks[0].ID, toks[1].ID})
	})
	t.Run("ok, unknown account lists nothing", func(t *testing.T) {
		toks, err := iss.List(ctx, "initech")
		require.NoError(t, err)
		assert.Empty(t, toks)
	})
	t.Run("nok, store failures are passed on", func(t *testing.T) {
		store.failWith = errors.New("db down")
		defer func() { store.failWith = nil }()
		_, err := iss.List(ctx, "acme")
		require.ErrorContains(t, err, "db down")
		err = iss.Delete(ctx, "acme", ids[0])
		require.ErrorContains(t, err, "db down")
		assert.NotErrorIs(t, err, apitoken.ErrNotFound)
	})
}

func TestRedaction(t *testing.T) {
	iss := newIssuer(t, memstore.New())
	secret, tok, err := iss.Issue(context.Background(), apitoken.IssueParams{AccountID: "acme"})
	require.NoError(t, err)
	var h apitoken.Hash
	for i := range h {
		h[i] = 0xab
	}
	rec := apitoken.Record{Token: tok, Hash: h}
	js, err := json.Marshal(rec)
	require.NoError(t, err)
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})).Debug("rec", "rec", rec, "hash", h)
	slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})).Debug("rec", "rec", rec, "hash", h)
	outputs := []string{
		fmt.Sprintf("%v", rec), fmt.Sprintf("%+v", rec), fmt.Sprintf("%#v", rec), fmt.Sprintf("%s", h), fmt.Sprintf("%x", h),
		fmt.Sprintf("%X", h), fmt.Sprintf("%d", h), fmt.Sprint(h), h.String(), string(js), logs.String(),
	}
	for _, out := range outputs {
		assert.NotContains(t, strings.ToLower(out), "abab", "a hash must never print")
		// Two bytes: "171" alone may be part of a time or an id.
		assert.NotContains(t, out, "171 171", "a hash must never print in decimal")
		assert.NotContains(t, out, secret)
	}
	assert.Contains(t, fmt.Sprintf("%v", h), "REDACTED")
}

// TestIssuerPrintsNothingSecret prints an Issuer (and a Guard, which holds
// one) that has a hash key, a previous key and a filled cache, with every
// common fmt verb, both slog handlers and encoding/json: no key and no hash
// of a secret may show, in any encoding.
func TestIssuerPrintsNothingSecret(t *testing.T) {
	key := []byte("current-hash-key-ABCDEFGHIJKLMNOP")
	prevKey := []byte("previous-hash-key-QRSTUVWXYZ012345")
	iss := newIssuer(t, memstore.New(), apitoken.WithPrefix("acme"), apitoken.WithHashKey(key),
		apitoken.WithPreviousHashKeys(prevKey), apitoken.WithCache(16, time.Hour))
	secret, _, err := iss.Issue(t.Context(), apitoken.IssueParams{AccountID: "acct_A"})
	require.NoError(t, err)
	_, err = iss.Verify(t.Context(), "acct_A", secret) // now cached
	require.NoError(t, err)
	guard, err := iss.NewGuard(apitoken.MiddlewareConfig{})
	require.NoError(t, err)

	// What must never show: the keys and the digests of the secret under
	// each, as text, hex, decimal and Go-quoted bytes.
	var forbidden []string
	for _, k := range [][]byte{key, prevKey} {
		m := hmac.New(sha256.New, k)
		m.Write([]byte(secret))
		for _, b := range [][]byte{k, m.Sum(nil)} {
			b = b[:8]
			forbidden = append(forbidden, string(b), hex.EncodeToString(b), strings.ToUpper(hex.EncodeToString(b)),
				strings.Trim(fmt.Sprint(b[:4]), "[]"), strings.Trim(strconv.Quote(string(b)), `"`))
		}
	}
	forbidden = append(forbidden, secret)

	for name, v := range map[string]any{"Issuer": iss, "Guard": guard} {
		t.Run(name, func(t *testing.T) {
			outputs := map[string]string{}
			for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d"} {
				outputs[verb] = fmt.Sprintf(verb, v)
			}
			js, err := json.Marshal(v)
			require.NoError(t, err)
			outputs["json.Marshal"] = string(js)
			for hname, newHandler := range map[string]func(*bytes.Buffer) slog.Handler{
				"slog text": func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
				"slog JSON": func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
			} {
				var b bytes.Buffer
				slog.New(newHandler(&b)).Info("printing", "v", v, slog.Any("any", v))
				outputs[hname] = b.String()
			}
			for how, out := range outputs {
				for _, f := range forbidden {
					assert.NotContains(t, out, f, "%s of the %s shows a key or a hash", how, name)
				}
			}
		})
	}
	assert.Equal(t, `apitoken.Issuer{prefix: "acme"}`, fmt.Sprintf("%+v", iss))
}

// TestConcurrentIssuer runs Issue, Verify, List and Delete in parallel (for
// the race detector) and checks the end state.
func TestConcurrentIssuer(t *testing.T) {
	ctx := context.Background()
	iss := newIssuer(t, memstore.New())
	const workers, each = 8, 50
	var wg sync.WaitGroup
	errs := make(chan error, workers*each*4)
	kept := make(chan string, workers*each)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			acct := fmt.Sprint("acct", w%2)
			for i := range each {
				secret, tok, err := iss.Issue(ctx, apitoken.IssueParams{AccountID: acct})
				if err != nil {
					errs <- err
					continue
				}
				if _, err := iss.Verify(ctx, acct, secret); err != nil {
					errs <- fmt.Errorf("fresh token did not verify: %w", err)
				}
				if _, err := iss.List(ctx, acct); err != nil {
					errs <- err
				}
				if i%2 == 0 {
					if err := iss.Delete(ctx, acct, tok.ID); err != nil {
						errs <- err
					}
					if _, err := iss.Verify(ctx, acct, secret); !errors.Is(err, apitoken.ErrInvalidToken) {
						errs <- fmt.Errorf("deleted token: got %v, want ErrInvalidToken", err)
					}
				} else {
					kept <- acct + ":" + secret
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	close(kept)
	for err := range errs {
		t.Error(err)
	}
	n := 0
	for pair := range kept {
		acct, secret, _ := strings.Cut(pair, ":")
		_, err := iss.Verify(ctx, acct, secret)
		assert.NoError(t, err)
		n++
	}
	total := 0
	for _, acct := range []string{"acct0", "acct1"} {
		toks, err := iss.List(ctx, acct)
		require.NoError(t, err)
		total += len(toks)
	}
	assert.Equal(t, n, total, "List agrees with what was kept")
}

// plainStore hides the optional capabilities of the Store it wraps.
type plainStore struct{ apitoken.Store }

func TestDeleteAll(t *testing.T) {
	for _, tt := range []struct {
		name  string
		store apitoken.Store
	}{
		{"ok, a store with AccountDeleter", memstore.New()},
		{"ok, a store without: List and Delete", plainStore{memstore.New()}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			iss := newIssuer(t, tt.store)
			issue := func(acct string) string {
				secret, _, err := iss.Issue(ctx, apitoken.IssueParams{AccountID: acct})
				require.NoError(t, err)
				return secret
			}
			doomed := []string{issue("acme"), issue("acme"), issue("acme")}
			kept := map[string]string{"ACME": issue("ACME"), "acme2": issue("acme2"), "other": issue("other")}

			n, err := iss.DeleteAll(ctx, "acme")
			require.NoError(t, err)
			assert.Equal(t, len(doomed), n)
			for _, secret := range doomed {
				_, err := iss.Verify(ctx, "acme", secret)
				assert.Equal(t, apitoken.ErrInvalidToken, err, "a deleted token must stop verifying at once")
			}
			toks, err := iss.List(ctx, "acme")
			require.NoError(t, err)
			assert.Empty(t, toks)
			for acct, secret := range kept {
				_, err := iss.Verify(ctx, acct, secret)
				assert.NoError(t, err, "DeleteAll must leave the tokens of %q", acct)
			}

			n, err = iss.DeleteAll(ctx, "acme")
			require.NoError(t, err)
			assert.Zero(t, n, "an account without tokens")
		})
	}

	t.Run("nok, invalid account id", func(t *testing.T) {
		n, err := newIssuer(t, memstore.New()).DeleteAll(t.Context(), "")
		require.ErrorIs(t, err, apitoken.ErrInvalidInput)
		assert.Zero(t, n)
	})

	errDown := errors.New("database is down")
	failing := newSpy()
	failing.failWith = errDown
	for _, tt := range []struct {
		name  string
		store apitoken.Store
	}{
		{"nok, AccountDeleter fails", failingBulk(errDown)},
		{"nok, List fails", plainStore{failing}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n, err := newIssuer(t, tt.store).DeleteAll(t.Context(), "acme")
			require.ErrorIs(t, err, errDown)
			assert.NotErrorIs(t, err, apitoken.ErrNotFound)
			assert.NotErrorIs(t, err, apitoken.ErrInvalidInput)
			assert.Zero(t, n)
		})
	}
}

func TestPrune(t *testing.T) {
	ctx := t.Context()
	clk := &clock{t: time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)}
	iss := newIssuer(t, memstore.New(), apitoken.WithClock(clk.Now))
	issue := func(acct string, expires time.Duration) apitoken.Token {
		p := apitoken.IssueParams{AccountID: acct}
		if expires > 0 {
			p.ExpiresAt = clk.Now().Add(expires)
		}
		_, tok, err := iss.Issue(ctx, p)
		require.NoError(t, err)
		return tok
	}
	never, later := issue("acme", 0), issue("acme", 2*time.Hour)
	issue("acme", time.Hour)
	issue("other", time.Hour)
	clk.Add(90 * time.Minute)

	n, err := iss.Prune(ctx, clk.Now())
	require.NoError(t, err)
	assert.Equal(t, 2, n, "the tokens of every account that expired by then")
	toks, err := iss.List(ctx, "acme")
	require.NoError(t, err)
	assert.Equal(t, []apitoken.Token{never, later}, toks)
	toks, err = iss.List(ctx, "other")
	require.NoError(t, err)
	assert.Empty(t, toks)

	t.Run("nok, a store without ExpiredDeleter", func(t *testing.T) {
		n, err := newIssuer(t, plainStore{memstore.New()}).Prune(ctx, clk.Now())
		require.ErrorIs(t, err, errors.ErrUnsupported)
		assert.Zero(t, n)
	})
	t.Run("nok, the store fails", func(t *testing.T) {
		errDown := errors.New("database is down")
		n, err := newIssuer(t, failingBulk(errDown)).Prune(ctx, clk.Now())
		require.ErrorIs(t, err, errDown)
		assert.Zero(t, n)
	})
}

func TestRotate(t *testing.T) {
	start := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	setup := func(t *testing.T, store apitoken.Store) (*apitoken.Issuer, *clock, string, apitoken.Token) {
		clk := &clock{t: start}
		iss := newIssuer(t, store, apitoken.WithClock(clk.Now))
		secret, tok, err := iss.Issue(t.Context(), apitoken.IssueParams{
			AccountID: "acme", MemberID: "m1", Name: "deploy", Scopes: []string{"read", "write"},
			ExpiresAt: start.Add(30 * 24 * time.Hour),
		})
		require.NoError(t, err)
		return iss, clk, secret, tok
	}
	listIDs := func(t *testing.T, iss *apitoken.Issuer) []string {
		toks, err := iss.List(t.Context(), "acme")
		require.NoError(t, err)
		var ids []string
		for _, tok := range toks {
			ids = append(ids, tok.ID)
		}
		return ids
	}

	t.Run("ok, grace 0: the old token stops at once", func(t *testing.T) {
		iss, clk, oldSecret, old := setup(t, memstore.New())
		clk.Add(time.Minute)
		secret, tok, err := iss.Rotate(t.Context(), "acme", old.ID, 0)
		require.NoError(t, err)
		assert.NotEqual(t, oldSecret, secret)
		assert.NotEqual(t, old.ID, tok.ID)
		assert.Equal(t, clk.Now(), tok.CreatedAt)
		want := old
		want.ID, want.CreatedAt, want.Hint = tok.ID, tok.CreatedAt, secret[len(secret)-4:]
		assert.Equal(t, want, tok, "the successor keeps the member, name, scopes and expiry")
		_, err = iss.Verify(t.Context(), "acme", oldSecret)
		assert.Equal(t, apitoken.ErrInvalidToken, err)
		got, err := iss.Verify(t.Context(), "acme", secret)
		require.NoError(t, err)
		assert.Equal(t, tok, got)
		assert.Equal(t, []string{tok.ID}, listIDs(t, iss))
	})

	t.Run("ok, grace: the old token works until now+grace", func(t *testing.T) {
		iss, clk, oldSecret, old := setup(t, memstore.New())
		secret, tok, err := iss.Rotate(t.Context(), "acme", old.ID, time.Hour)
		require.NoError(t, err)
		assert.Equal(t, []string{old.ID, tok.ID}, listIDs(t, iss))
		clk.Add(time.Hour - time.Microsecond)
		_, err = iss.Verify(t.Context(), "acme", oldSecret)
		require.NoError(t, err, "within the grace")
		clk.Add(time.Microsecond)
		_, err = iss.Verify(t.Context(), "acme", oldSecret)
		assert.Equal(t, apitoken.ErrInvalidToken, err, "at the end of the grace")
		_, err = iss.Verify(t.Context(), "acme", secret)
		assert.NoError(t, err)
	})

	t.Run("ok, a grace beyond the old token's expiry does not lengthen it", func(t *testing.T) {
		iss, _, _, old := setup(t, memstore.New())
		_, _, err := iss.Rotate(t.Context(), "acme", old.ID, 90*24*time.Hour)
		require.NoError(t, err)
		toks, err := iss.List(t.Context(), "acme")
		require.NoError(t, err)
		require.Len(t, toks, 2)
		assert.Equal(t, old.ExpiresAt, toks[0].ExpiresAt)
	})

	t.Run("ok, of 10 concurrent Rotates with a grace of 0, one wins", func(t *testing.T) {
		iss, _, _, old := setup(t, memstore.New())
		var wg sync.WaitGroup
		var won atomic.Int64
		for range 10 {
			wg.Go(func() {
				_, _, err := iss.Rotate(t.Context(), "acme", old.ID, 0)
				if err == nil {
					won.Add(1)
					return
				}
				assert.ErrorIs(t, err, apitoken.ErrNotFound)
			})
		}
		wg.Wait()
		assert.EqualValues(t, 1, won.Load())
		assert.Len(t, listIDs(t, iss), 1, "the losers leave no successor behind")
	})

	t.Run("ok, concurrent Rotates with graces keep the shortest", func(t *testing.T) {
		iss, _, _, old := setup(t, memstore.New())
		var wg sync.WaitGroup
		for i := range 10 {
			wg.Go(func() {
				_, _, err := iss.Rotate(t.Context(), "acme", old.ID, time.Duration(10-i)*time.Hour)
				assert.NoError(t, err, "rotating a token in its grace gives another successor")
			})
		}
		wg.Wait()
		toks, err := iss.List(t.Context(), "acme")
		require.NoError(t, err)
		require.Len(t, toks, 11, "the old token and 10 successors")
		assert.Equal(t, start.Add(time.Hour), toks[0].ExpiresAt, "a longer grace never overwrites a shorter one")
	})

	errDown := errors.New("database is down")
	for _, tt := range []struct {
		name    string
		store   apitoken.Store
		account string
		id      func(old apitoken.Token) string
		grace   time.Duration
		later   time.Duration // clock moved before Rotate
		wantErr error
	}{
		{"nok, unknown id", memstore.New(), "acme", func(apitoken.Token) string { return "no-such-id" }, 0, 0, apitoken.ErrNotFound},
		{"nok, another account's token", memstore.New(), "other", func(o apitoken.Token) string { return o.ID }, 0, 0, apitoken.ErrNotFound},
		{"nok, an expired token", memstore.New(), "acme", func(o apitoken.Token) string { return o.ID }, 0, 30 * 24 * time.Hour, apitoken.ErrNotFound},
		{"nok, negative grace", memstore.New(), "acme", func(o apitoken.Token) string { return o.ID }, -time.Second, 0, apitoken.ErrInvalidInput},
		{"nok, invalid account id", memstore.New(), "", func(o apitoken.Token) string { return o.ID }, 0, 0, apitoken.ErrInvalidInput},
		{"nok, grace with a store without ExpiryUpdater", plainStore{memstore.New()}, "acme", func(o apitoken.Token) string { return o.ID }, time.Hour, 0, errors.ErrUnsupported},
		{"nok, SetExpiry fails: the successor is deleted again", failingBulk(errDown), "acme", func(o apitoken.Token) string { return o.ID }, time.Hour, 0, errDown},
	} {
		t.Run(tt.name, func(t *testing.T) {
			iss, clk, oldSecret, old := setup(t, tt.store)
			clk.Add(tt.later)
			secret, tok, err := iss.Rotate(t.Context(), tt.account, tt.id(old), tt.grace)
			require.ErrorIs(t, err, tt.wantErr)
			assert.Empty(t, secret)
			assert.Zero(t, tok)
			assert.Equal(t, []string{old.ID}, listIDs(t, iss), "a failed Rotate leaves the tokens as they were")
			if tt.later == 0 {
				_, err = iss.Verify(t.Context(), "acme", oldSecret)
				assert.NoError(t, err, "a failed Rotate leaves the old token working")
			}
		})
	}
}

func TestMaxTokensPerAccount(t *testing.T) {
	t.Run("nok, options", func(t *testing.T) {
		for _, n := range []int{0, -1} {
			_, err := apitoken.NewIssuer(memstore.New(), apitoken.WithMaxTokensPerAccount(n))
			require.ErrorIs(t, err, apitoken.ErrInvalidInput, "limit %d", n)
		}
		_, err := apitoken.NewIssuer(plainStore{memstore.New()}, apitoken.WithMaxTokensPerAccount(3))
		require.ErrorIs(t, err, errors.ErrUnsupported, "a store that cannot enforce the limit is refused")
	})

	t.Run("ok, up to the limit, then ErrLimitReached, until a token is deleted", func(t *testing.T) {
		ctx := t.Context()
		iss := newIssuer(t, memstore.New(), apitoken.WithMaxTokensPerAccount(2))
		var toks []apitoken.Token
		for range 2 {
			_, tok, err := iss.Issue(ctx, apitoken.IssueParams{AccountID: "acme"})
			require.NoError(t, err)
			toks = append(toks, tok)
		}
		secret, tok, err := iss.Issue(ctx, apitoken.IssueParams{AccountID: "acme"})
		require.ErrorIs(t, err, apitoken.ErrLimitReached)
		assert.Empty(t, secret)
		assert.Zero(t, tok)
		listed, err := iss.List(ctx, "acme")
		require.NoError(t, err)
		assert.Equal(t, toks, listed, "a refused Issue stores nothing")

		_, _, err = iss.Issue(ctx, apitoken.IssueParams{AccountID: "other"})
		require.NoError(t, err, "the limit is per account")

		_, rotated, err := iss.Rotate(ctx, "acme", toks[0].ID, time.Hour)
		require.NoError(t, err, "Rotate replaces a token: it is not refused at the limit")

		require.NoError(t, iss.Delete(ctx, "acme", toks[0].ID))
		require.NoError(t, iss.Delete(ctx, "acme", rotated.ID))
		_, _, err = iss.Issue(ctx, apitoken.IssueParams{AccountID: "acme"})
		require.NoError(t, err, "a deleted token frees its place")
	})

	t.Run("ok, 20 goroutines racing for a limit of 5 get 5 tokens", func(t *testing.T) {
		iss := newIssuer(t, memstore.New(), apitoken.WithMaxTokensPerAccount(5))
		var won, refused atomic.Int64
		var wg sync.WaitGroup
		for range 20 {
			wg.Go(func() {
				_, _, err := iss.Issue(t.Context(), apitoken.IssueParams{AccountID: "acme"})
				switch {
				case err == nil:
					won.Add(1)
				case errors.Is(err, apitoken.ErrLimitReached):
					refused.Add(1)
				default:
					t.Errorf("Issue: %v", err)
				}
			})
		}
		wg.Wait()
		assert.EqualValues(t, 5, won.Load())
		assert.EqualValues(t, 15, refused.Load())
	})
}

func TestRotateUndoesOnACancelledContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	st := newSpy()
	// SetExpiry cancels the caller's context and fails, as a store does when
	// the client goes away mid-Rotate; Delete honours the context it gets.
	st.onSetExpiry = func(ctx context.Context, _, _ string, _, _ time.Time, _ func(context.Context, string, string, time.Time, time.Time) error) error {
		cancel()
		return ctx.Err()
	}
	st.onDelete = func(ctx context.Context, accountID, id string, next func(context.Context, string, string) error) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		return next(ctx, accountID, id)
	}
	iss := newIssuer(t, st)
	_, old, err := iss.Issue(ctx, apitoken.IssueParams{AccountID: "acme"})
	require.NoError(t, err)

	_, _, err = iss.Rotate(ctx, "acme", old.ID, time.Hour)
	require.ErrorIs(t, err, context.Canceled)
	toks, err := iss.List(t.Context(), "acme")
	require.NoError(t, err)
	assert.Equal(t, []apitoken.Token{old}, toks, "the successor is deleted even though the caller's context ended")
}

// Rotate keeps going while concurrent Rotates keep shortening the expiry:
// each lost compare-and-set is progress.
func TestRotateUnderContention(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	// The first 10 SetExpiry calls find that a concurrent Rotate shortened
	// the expiry first (the hook does so itself, then fails the
	// compare-and-set).
	st := newSpy()
	until, losses := now.Add(10*time.Hour), 0
	st.onSetExpiry = func(ctx context.Context, a, id string, from, to time.Time, next func(context.Context, string, string, time.Time, time.Time) error) error {
		if losses == 10 {
			return next(ctx, a, id, from, to)
		}
		losses++
		until = until.Add(-time.Minute)
		if err := next(ctx, a, id, from, until); err != nil {
			return err
		}
		return next(ctx, a, id, from, to) // from is stale now: ErrNotFound
	}
	iss, err := apitoken.NewIssuer(st, apitoken.WithClock(func() time.Time { return now }), apitoken.WithLastUseInterval(0))
	require.NoError(t, err)
	_, tok, err := iss.Issue(t.Context(), apitoken.IssueParams{AccountID: "acme"})
	require.NoError(t, err)
	_, _, err = iss.Rotate(t.Context(), "acme", tok.ID, time.Hour)
	require.NoError(t, err, "10 lost compare-and-sets in a row")
	toks, err := iss.List(t.Context(), "acme")
	require.NoError(t, err)
	require.Equal(t, now.Add(time.Hour), toks[0].ExpiresAt, "the grace holds")
}

// errLostReply is what a store returns when the database committed but its
// reply never arrived (a failover, a proxy restart).
var errLostReply = errors.New("connection reset by peer")

// TestIssueLeavesNoGhostAfterALostReply fails Create after the store kept
// the record: Issue must return an error and remove the record, which no one
// holds the secret of, also when the caller's context has ended.
func TestIssueLeavesNoGhostAfterALostReply(t *testing.T) {
	for _, tt := range []struct {
		name      string
		commit    bool // the store keeps the record before failing
		cancel    bool // the caller's context ends with the failure
		failUndo  bool // the delete that undoes it fails too
		wantGhost bool
	}{
		{name: "ok, committed, reply lost: the record is deleted again", commit: true},
		{name: "ok, committed, and the caller's context ended: deleted all the same", commit: true, cancel: true},
		{name: "ok, not committed: nothing to delete", commit: false},
		{name: "nok, committed and the undo fails: the error says the token may remain", commit: true, failUndo: true, wantGhost: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			st := newSpy()
			st.onCreate = func(ctx context.Context, rec apitoken.Record, next func(context.Context, apitoken.Record) error) error {
				if tt.commit {
					require.NoError(t, next(ctx, rec))
				}
				if tt.cancel {
					cancel()
				}
				return errLostReply
			}
			st.onDelete = func(ctx context.Context, accountID, id string, next func(context.Context, string, string) error) error {
				if tt.failUndo {
					return errLostReply
				}
				if err := ctx.Err(); err != nil {
					return err
				}
				return next(ctx, accountID, id)
			}
			var logs bytes.Buffer
			iss := newIssuer(t, st, apitoken.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
			secret, tok, err := iss.Issue(ctx, apitoken.IssueParams{AccountID: "acme"})
			require.ErrorIs(t, err, errLostReply)
			assert.Empty(t, secret)
			assert.Zero(t, tok)
			toks, err := st.Store.List(t.Context(), "acme")
			require.NoError(t, err)
			if !tt.wantGhost {
				assert.Empty(t, toks, "a failed Issue must leave no token behind")
				assert.Empty(t, logs.String())
				return
			}
			require.Len(t, toks, 1)
			_, _, err = iss.Issue(ctx, apitoken.IssueParams{AccountID: "acme"})
			assert.ErrorContains(t, err, "may have been stored")
			assert.Contains(t, logs.String(), toks[0].ID, "the warning names the token to delete")
		})
	}
}

// TestRotateAfterALostReply fails the change of the old token (its delete,
// or its new expiry) after or before the store applied it: whatever
// happened, the account must not end with fewer working tokens, and the
// caller must learn which way it went.
func TestRotateAfterALostReply(t *testing.T) {
	for _, tt := range []struct {
		name        string
		grace       time.Duration
		apply       bool // the store applies the change before failing
		listFails   bool // and cannot be read afterwards
		wantRotated bool
	}{
		{name: "ok, grace 0, deleted, reply lost: rotated", grace: 0, apply: true, wantRotated: true},
		{name: "ok, grace 1h, shortened, reply lost: rotated", grace: time.Hour, apply: true, wantRotated: true},
		{name: "nok, grace 0, not deleted: the old token stays, the successor goes", grace: 0},
		{name: "nok, grace 1h, not shortened: the old token stays, the successor goes", grace: time.Hour},
		{name: "nok, grace 1h, shortened, and the store cannot be read: unknown", grace: time.Hour, apply: true, listFails: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			st := newSpy()
			var broken atomic.Bool // List fails once the change failed
			st.onDelete = func(ctx context.Context, accountID, id string, next func(context.Context, string, string) error) error {
				if tt.grace == 0 && !broken.Load() {
					broken.Store(true)
					if tt.apply {
						require.NoError(t, next(ctx, accountID, id))
					}
					return errLostReply
				}
				return next(ctx, accountID, id)
			}
			st.onSetExpiry = func(ctx context.Context, accountID, id string, from, to time.Time, next func(context.Context, string, string, time.Time, time.Time) error) error {
				broken.Store(true)
				if tt.apply {
					require.NoError(t, next(ctx, accountID, id, from, to))
				}
				return errLostReply
			}
			store := apitoken.Store(st)
			if tt.listFails {
				store = &failingList{spyStore: st, fail: &broken}
			}
			iss := newIssuer(t, store)
			ctx := t.Context()
			oldSecret, old, err := iss.Issue(ctx, apitoken.IssueParams{AccountID: "acme"})
			require.NoError(t, err)

			secret, tok, err := iss.Rotate(ctx, "acme", old.ID, tt.grace)
			broken.Store(false)
			toks, listErr := st.Store.List(ctx, "acme")
			require.NoError(t, listErr)
			_, oldErr := iss.Verify(ctx, "acme", oldSecret)
			if tt.wantRotated {
				require.NoError(t, err, "the change took effect: Rotate succeeded")
				_, err := iss.Verify(ctx, "acme", secret)
				require.NoError(t, err, "the successor works")
				assert.Contains(t, toks, tok)
				if tt.grace == 0 {
					assert.Equal(t, apitoken.ErrInvalidToken, oldErr)
				} else {
					assert.NoError(t, oldErr, "the old token works for its grace")
				}
				return
			}
			require.ErrorIs(t, err, errLostReply)
			assert.Empty(t, secret)
			if tt.listFails {
				assert.ErrorContains(t, err, "unknown")
				return
			}
			assert.NoError(t, oldErr, "the old token works as before")
			require.Len(t, toks, 1, "the successor was deleted")
			assert.Equal(t, old, toks[0])
		})
	}
}

// failingList is a spyStore whose List fails while fail is set.
type failingList struct {
	*spyStore
	fail *atomic.Bool
}

func (s *failingList) List(ctx context.Context, accountID string) ([]apitoken.Token, error) {
	if s.fail.Load() {
		return nil, errLostReply
	}
	return s.spyStore.List(ctx, accountID)
}
