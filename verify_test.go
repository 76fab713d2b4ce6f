package apitoken_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/apitoken-go/apitoken"
	"github.com/apitoken-go/apitoken/memstore"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestVerify(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)}
	store := newSpy()
	iss := newIssuer(t, store, apitoken.WithClock(clk.Now))
	secret, tok, err := iss.Issue(ctx, apitoken.IssueParams{AccountID: "acme", Scopes: []string{"read"}, ExpiresAt: clk.Now().Add(time.Hour)})
	require.NoError(t, err)
	other, _, err := iss.Issue(ctx, apitoken.IssueParams{AccountID: "ACME"})
	require.NoError(t, err)

	t.Run("ok, the pair matches", func(t *testing.T) {
		got, err := iss.Verify(ctx, "acme", secret)
		require.NoError(t, err)
		assert.Equal(t, tok, got)
	})

	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] >= 'a' && b[i] <= 'z' {
			b[i] -= 'a' - 'A'
		} else if b[i] >= 'A' && b[i] <= 'Z' {
			b[i] += 'a' - 'A'
		} else {
			b[i] = '0' + (b[i]-'0'+1)%10
		}
		return string(b)
	}
	body := len("apitoken_")
	// Refused before the store: every change that breaks the format.
	malformed := map[string]string{
		"empty":                         "",
		"body character changed":        flip(secret, body+3),
		"checksum character changed":    flip(secret, len(secret)-1),
		"one character dropped":         secret[:len(secret)-1],
		"one character added":           secret + "0",
		"underscore replaced by dash":   strings.Replace(secret, "_", "-", 1),
		"prefix upper-cased":            "APITOKEN" + secret[len("apitoken"):],
		"other prefix, valid checksum":  "acme_" + secret[body:len(secret)-6] + checksum("acme_"+secret[body:len(secret)-6]),
		"zero-width space inserted":     secret[:10] + "\u200b" + secret[10:],
		"trailing newline":              secret + "\n",
		"trailing NUL":                  secret + "\x00",
		"8 KB":                          strings.Repeat("a", 8<<10),
		"non-base62 with good checksum": secret[:body] + "-" + secret[body+1:len(secret)-6] + checksum(secret[:body]+"-"+secret[body+1:len(secret)-6]),
	}
	for name, s := range malformed {
		t.Run("nok, malformed: "+name, func(t *testing.T) {
			before := store.calls.Load()
			_, err := iss.Verify(ctx, "acme", s)
			require.Equal(t, apitoken.ErrInvalidToken, err)
			assert.Equal(t, before, store.calls.Load(), "a malformed secret must not reach the store")
		})
	}

	// Well-formed but wrong: every refusal is the same error, with the same text.
	unknown := secret[:body] + strings.Repeat("Z", 32)
	unknown += checksum(unknown)
	refusals := map[string]func() error{
		"unknown token": func() error { _, err := iss.Verify(ctx, "acme", unknown); return err },
		"other account": func() error { _, err := iss.Verify(ctx, "other", secret); return err },
		"account differs in case": func() error {
			_, err := iss.Verify(ctx, "acme", other) // other belongs to "ACME"
			return err
		},
		"empty account":    func() error { _, err := iss.Verify(ctx, "", secret); return err },
		"account too long": func() error { _, err := iss.Verify(ctx, strings.Repeat("a", 200), secret); return err },
	}
	for name, f := range refusals {
		t.Run("nok, "+name, func(t *testing.T) {
			err := f()
			require.Equal(t, apitoken.ErrInvalidToken, err, "every refusal is ErrInvalidToken itself, so none can be told apart")
			assert.Equal(t, "apitoken: invalid token", err.Error())
		})
	}

	t.Run("nok, expired at ExpiresAt exactly, and after", func(t *testing.T) {
		c := &clock{t: clk.Now()}
		iss := newIssuer(t, memstore.New(), apitoken.WithClock(c.Now))
		s, tok, err := iss.Issue(ctx, apitoken.IssueParams{AccountID: "acme", ExpiresAt: c.Now().Add(time.Minute)})
		require.NoError(t, err)
		c.Add(time.Minute - time.Microsecond)
		_, err = iss.Verify(ctx, "acme", s)
		require.NoError(t, err, "valid until the last microsecond")
		c.Add(time.Microsecond)
		require.Equal(t, tok.ExpiresAt, c.Now())
		_, err = iss.Verify(ctx, "acme", s)
		require.Equal(t, apitoken.ErrInvalidToken, err, "now >= ExpiresAt is expired")
		c.Add(time.Hour)
		_, err = iss.Verify(ctx, "acme", s)
		require.Equal(t, apitoken.ErrInvalidToken, err)
	})

	t.Run("nok, deleted", func(t *testing.T) {
		s, tok, err := iss.Issue(ctx, apitoken.IssueParams{AccountID: "acme"})
		require.NoError(t, err)
		require.NoError(t, iss.Delete(ctx, "acme", tok.ID))
		_, err = iss.Verify(ctx, "acme", s)
		require.Equal(t, apitoken.ErrInvalidToken, err)
	})

	t.Run("nok, secret of another issuer with another hash key", func(t *testing.T) {
		store := memstore.New()
		a := newIssuer(t, store, apitoken.WithHashKey(bytes.Repeat([]byte{1}, 32)))
		b := newIssuer(t, store, apitoken.WithHashKey(bytes.Repeat([]byte{2}, 32)))
		s, _, err := a.Issue(ctx, apitoken.IssueParams{AccountID: "acme"})
		require.NoError(t, err)
		_, err = a.Verify(ctx, "acme", s)
		require.NoError(t, err)
		_, err = b.Verify(ctx, "acme", s)
		require.Equal(t, apitoken.ErrInvalidToken, err, "the hash key takes part in the hash")
	})

	t.Run("nok, store failure is not ErrInvalidToken", func(t *testing.T) {
		failing := newSpy()
		iss := newIssuer(t, failing)
		s, _, err := iss.Issue(ctx, apitoken.IssueParams{AccountID: "acme"})
		require.NoError(t, err)
		for _, cause := range []error{errors.New("connection refused"), context.DeadlineExceeded, context.Canceled} {
			failing.failWith = cause
			_, err = iss.Verify(ctx, "acme", s)
			require.ErrorIs(t, err, cause)
			assert.NotErrorIs(t, err, apitoken.ErrInvalidToken, "an outage must not look like a bad token")
			assert.NotContains(t, err.Error(), s)
		}
	})
}

func TestVerifyFailsClosedOnAFaultyStore(t *testing.T) {
	// The store returns a record for any hash: Verify must not trust it.
	st := newSpy()
	st.onLookup = func(context.Context, apitoken.Hash, func(context.Context, apitoken.Hash) (apitoken.Record, error)) (apitoken.Record, error) {
		return apitoken.Record{Token: apitoken.Token{ID: "x", AccountID: "acme"}}, nil
	}
	iss := newIssuer(t, st)
	secret, _, err := iss.Issue(context.Background(), apitoken.IssueParams{AccountID: "acme"})
	require.NoError(t, err)
	_, err = iss.Verify(context.Background(), "acme", secret)
	require.Equal(t, apitoken.ErrInvalidToken, err, "a record whose hash differs from the secret's must not verify")
}

// The hot path's allocation budget, which the benchmarks' figures rest on:
// a valid token without scopes allocates nothing, one with scopes only its
// Scopes slice, and every refusal nothing (repeated, with a cache: which
// remembers it), on memstore, with and without a cache.
func TestVerifyAllocations(t *testing.T) {
	ctx := t.Context()
	for _, tc := range []struct {
		name string
		opts []apitoken.Option
	}{
		{"memstore", nil},
		{"memstore with a cache", []apitoken.Option{apitoken.WithCache(100, time.Minute)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			iss := newIssuer(t, memstore.New(), tc.opts...)
			plain, _, err := iss.Issue(ctx, apitoken.IssueParams{AccountID: "acme"})
			require.NoError(t, err)
			scoped, _, err := iss.Issue(ctx, apitoken.IssueParams{AccountID: "acme", Scopes: []string{"read", "write"}})
			require.NoError(t, err)
			unknown, _, err := newIssuer(t, memstore.New()).Issue(ctx, apitoken.IssueParams{AccountID: "acme"})
			require.NoError(t, err)
			malformed := plain[:len(plain)-1] + string(plain[len(plain)-1]^1)

			allocs := func(account, secret string, want error) float64 {
				return testing.AllocsPerRun(200, func() {
					if _, err := iss.Verify(ctx, account, secret); err != want {
						t.Fatalf("Verify: %v, want %v", err, want)
					}
				})
			}
			assert.Zero(t, allocs("acme", plain, nil), "a valid token without scopes")
			assert.Equal(t, 1.0, allocs("acme", scoped, nil), "a valid token with scopes: its Scopes slice only")
			assert.Zero(t, allocs("acme", malformed, apitoken.ErrInvalidToken), "a malformed secret")
			assert.Zero(t, allocs("acme", unknown, apitoken.ErrInvalidToken), "an unknown secret")
			assert.Zero(t, allocs("globex", plain, apitoken.ErrInvalidToken), "another account's token")
		})
	}
}
