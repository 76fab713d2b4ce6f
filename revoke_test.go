package apitoken_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken-go/apitoken"
	"github.com/apitoken-go/apitoken/memstore"
)

// malformedFor returns secrets that an Issuer of prefix acme must refuse
// without a store call: another prefix, a bad checksum, a wrong length.
func malformedFor(t *testing.T, good string) map[string]string {
	t.Helper()
	other, _, err := newIssuer(t, memstore.New(), apitoken.WithPrefix("globex")).Issue(t.Context(), apitoken.IssueParams{AccountID: "a"})
	require.NoError(t, err)
	flipped := []byte(good)
	if flipped[len(flipped)-1] == 'A' {
		flipped[len(flipped)-1] = 'B'
	} else {
		flipped[len(flipped)-1] = 'A'
	}
	return map[string]string{
		"empty":              "",
		"another prefix":     other,
		"bad checksum":       string(flipped),
		"one character less": good[:len(good)-1],
		"one character more": good + "0",
		"upper-case prefix":  strings.ToUpper(good[:4]) + good[4:],
		"1 MB":               strings.Repeat("a", 1<<20),
	}
}

func TestInspect(t *testing.T) {
	ctx := t.Context()
	clk := &clock{t: time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)}
	spy := newSpy()
	iss := newIssuer(t, spy, apitoken.WithPrefix("acme"), apitoken.WithClock(clk.Now), apitoken.WithLastUseInterval(0))
	secret, tok, err := iss.Issue(ctx, apitoken.IssueParams{AccountID: "acct_1", MemberID: "m1", Name: "ci", Scopes: []string{"read"}})
	require.NoError(t, err)

	t.Run("ok, found by the secret alone, whatever its account", func(t *testing.T) {
		got, err := iss.Inspect(ctx, secret)
		require.NoError(t, err)
		assert.Equal(t, tok, got)
	})
	t.Run("ok, an expired token is found too", func(t *testing.T) {
		s, expiring, err := iss.Issue(ctx, apitoken.IssueParams{AccountID: "acct_1", ExpiresAt: clk.Now().Add(time.Hour)})
		require.NoError(t, err)
		clk.Add(2 * time.Hour)
		_, err = iss.Verify(ctx, "acct_1", s)
		require.Equal(t, apitoken.ErrInvalidToken, err, "the control: it has expired")
		got, err := iss.Inspect(ctx, s)
		require.NoError(t, err)
		assert.Equal(t, expiring, got)
	})
	t.Run("nok, a well-formed secret that names no token is ErrNotFound", func(t *testing.T) {
		stranger, _, err := newIssuer(t, memstore.New(), apitoken.WithPrefix("acme")).Issue(ctx, apitoken.IssueParams{AccountID: "acct_1"})
		require.NoError(t, err)
		_, err = iss.Inspect(ctx, stranger)
		require.ErrorIs(t, err, apitoken.ErrNotFound)
		assert.NotErrorIs(t, err, apitoken.ErrInvalidToken)
		assert.NotContains(t, err.Error(), stranger)
	})
	for name, bad := range malformedFor(t, secret) {
		t.Run("nok, malformed with no store call: "+name, func(t *testing.T) {
			calls := spy.calls.Load()
			_, err := iss.Inspect(ctx, bad)
			require.ErrorIs(t, err, apitoken.ErrInvalidToken)
			assert.NotErrorIs(t, err, apitoken.ErrNotFound)
			assert.Equal(t, calls, spy.calls.Load(), "a malformed secret must not reach the store")
			if bad != "" {
				assert.NotContains(t, err.Error(), bad)
			}
		})
	}
	t.Run("nok, a store failure is neither ErrNotFound nor ErrInvalidToken", func(t *testing.T) {
		errDown := errors.New("database is down")
		failing := newSpy()
		f := newIssuer(t, failing, apitoken.WithPrefix("acme"))
		s, _, err := f.Issue(ctx, apitoken.IssueParams{AccountID: "acct_1"})
		require.NoError(t, err)
		failing.failWith = errDown
		_, err = f.Inspect(ctx, s)
		require.ErrorIs(t, err, errDown)
		assert.NotErrorIs(t, err, apitoken.ErrNotFound)
		assert.NotErrorIs(t, err, apitoken.ErrInvalidToken)
	})
	t.Run("nok, a store that returns a record of another hash fails closed", func(t *testing.T) {
		faulty := newSpy()
		f := newIssuer(t, faulty, apitoken.WithPrefix("acme"))
		_, other, err := f.Issue(ctx, apitoken.IssueParams{AccountID: "acct_1"})
		require.NoError(t, err)
		faulty.onLookup = func(ctx context.Context, _ apitoken.Hash, _ func(context.Context, apitoken.Hash) (apitoken.Record, error)) (apitoken.Record, error) {
			return apitoken.Record{Token: other}, nil // a zero hash: never ours
		}
		_, err = f.Inspect(ctx, secret)
		require.ErrorIs(t, err, apitoken.ErrNotFound)
		_, err = f.RevokeSecret(ctx, secret)
		require.ErrorIs(t, err, apitoken.ErrNotFound)
		toks, err := f.List(ctx, "acct_1")
		require.NoError(t, err)
		assert.Len(t, toks, 1, "nothing deleted")
	})
	t.Run("nok, closed", func(t *testing.T) {
		c := newIssuer(t, memstore.New(), apitoken.WithPrefix("acme"))
		require.NoError(t, c.Close())
		_, err := c.Inspect(ctx, secret)
		require.ErrorIs(t, err, apitoken.ErrClosed)
		_, err = c.RevokeSecret(ctx, secret)
		require.ErrorIs(t, err, apitoken.ErrClosed)
	})
}

func TestRevokeSecret(t *testing.T) {
	ctx := t.Context()
	clk := &clock{t: time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)}
	var logs bytes.Buffer
	spy := newSpy()
	iss := newIssuer(t, spy, apitoken.WithPrefix("acme"), apitoken.WithClock(clk.Now), apitoken.WithLastUseInterval(0),
		apitoken.WithAuditLogger(slog.New(slog.NewJSONHandler(&logs, nil))))
	var secrets []string
	issue := func(t *testing.T, p apitoken.IssueParams) (string, apitoken.Token) {
		t.Helper()
		s, tok, err := iss.Issue(ctx, p)
		require.NoError(t, err)
		secrets = append(secrets, s)
		return s, tok
	}
	t.Cleanup(func() {
		for _, s := range secrets {
			assert.NotContains(t, logs.String(), s, "the audit log holds a secret")
		}
	})

	t.Run("ok, the token goes at once and its metadata comes back", func(t *testing.T) {
		secret, tok := issue(t, apitoken.IssueParams{AccountID: "acct_1", Name: "leaked"})
		_, sib := issue(t, apitoken.IssueParams{AccountID: "acct_1", Name: "kept"})
		_, err := iss.Verify(ctx, "acct_1", secret)
		require.NoError(t, err)
		logs.Reset()

		got, err := iss.RevokeSecret(ctx, secret)
		require.NoError(t, err)
		assert.Equal(t, tok, got)
		recs := auditRecords(t, &logs)
		require.Len(t, recs, 1)
		assert.Equal(t, map[string]any{"level": "INFO", "msg": "apitoken: token revoked", "account_id": "acct_1", "token_id": tok.ID, "reason": "leaked"}, recs[0])
		_, err = iss.Verify(ctx, "acct_1", secret)
		assert.Equal(t, apitoken.ErrInvalidToken, err, "a revoked secret stops verifying")
		toks, err := iss.List(ctx, "acct_1")
		require.NoError(t, err)
		assert.Equal(t, []apitoken.Token{sib}, toks, "only that token goes")
		logs.Reset()

		t.Run("a second report of it is ErrNotFound and changes nothing", func(t *testing.T) {
			_, err := iss.RevokeSecret(ctx, secret)
			require.ErrorIs(t, err, apitoken.ErrNotFound)
			assert.Empty(t, auditRecords(t, &logs), "nothing revoked, nothing recorded")
			toks, err := iss.List(ctx, "acct_1")
			require.NoError(t, err)
			assert.Equal(t, []apitoken.Token{sib}, toks)
		})
	})
	t.Run("ok, the caller's reason, written safely", func(t *testing.T) {
		for _, tc := range []struct{ reason, want string }{
			{"ticket 42", "ticket 42"},
			{"two\nlines", `"two\nlines"`},
			{strings.Repeat("x", 200), strings.Repeat("x", 128)},
		} {
			secret, _ := issue(t, apitoken.IssueParams{AccountID: "acct_2"})
			logs.Reset()
			_, err := iss.RevokeSecret(apitoken.WithRevokeReason(ctx, tc.reason), secret)
			require.NoError(t, err)
			recs := auditRecords(t, &logs)
			require.Len(t, recs, 1)
			assert.Equal(t, tc.want, recs[0]["reason"])
		}
	})
	t.Run("ok, an expired token is removed too", func(t *testing.T) {
		secret, _ := issue(t, apitoken.IssueParams{AccountID: "acct_3", ExpiresAt: clk.Now().Add(time.Minute)})
		clk.Add(time.Hour)
		_, err := iss.RevokeSecret(ctx, secret)
		require.NoError(t, err)
		toks, err := iss.List(ctx, "acct_3")
		require.NoError(t, err)
		assert.Empty(t, toks)
	})
	for name, bad := range malformedFor(t, secrets[0]) {
		t.Run("nok, malformed with no store call: "+name, func(t *testing.T) {
			calls := spy.calls.Load()
			_, err := iss.RevokeSecret(ctx, bad)
			require.ErrorIs(t, err, apitoken.ErrInvalidToken)
			assert.Equal(t, calls, spy.calls.Load())
		})
	}
	t.Run("nok, a failed delete is the store's error and is not recorded", func(t *testing.T) {
		errDown := errors.New("database is down")
		secret, tok := issue(t, apitoken.IssueParams{AccountID: "acct_4"})
		spy.onDelete = func(context.Context, string, string, func(context.Context, string, string) error) error {
			return errDown
		}
		defer func() { spy.onDelete = nil }()
		logs.Reset()
		_, err := iss.RevokeSecret(ctx, secret)
		require.ErrorIs(t, err, errDown)
		assert.NotErrorIs(t, err, apitoken.ErrNotFound)
		assert.Empty(t, auditRecords(t, &logs))
		got, err := iss.Inspect(ctx, secret)
		require.NoError(t, err, "the store is as it was")
		assert.Equal(t, tok, got)
	})
	t.Run("nok, deleted meanwhile is ErrNotFound", func(t *testing.T) {
		secret, _ := issue(t, apitoken.IssueParams{AccountID: "acct_5"})
		spy.onDelete = func(ctx context.Context, a, id string, next func(context.Context, string, string) error) error {
			require.NoError(t, next(ctx, a, id))
			return next(ctx, a, id) // what the store answers to the second of two racing revocations
		}
		defer func() { spy.onDelete = nil }()
		_, err := iss.RevokeSecret(ctx, secret)
		require.ErrorIs(t, err, apitoken.ErrNotFound)
	})
}

func TestRevokeSecretUnderAPreviousHashKey(t *testing.T) {
	ctx := t.Context()
	oldKey, newKey := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	spy := newSpy()
	before := newIssuer(t, spy, apitoken.WithPrefix("acme"), apitoken.WithHashKey(oldKey))
	secret, tok, err := before.Issue(ctx, apitoken.IssueParams{AccountID: "acct_1"})
	require.NoError(t, err)

	without := newIssuer(t, spy, apitoken.WithPrefix("acme"), apitoken.WithHashKey(newKey))
	_, err = without.Inspect(ctx, secret)
	require.ErrorIs(t, err, apitoken.ErrNotFound, "the control: the current key alone does not find it")

	after := newIssuer(t, spy, apitoken.WithPrefix("acme"), apitoken.WithHashKey(newKey), apitoken.WithPreviousHashKeys(oldKey))
	got, err := after.Inspect(ctx, secret)
	require.NoError(t, err)
	assert.Equal(t, tok, got)
	got, err = after.RevokeSecret(ctx, secret)
	require.NoError(t, err)
	assert.Equal(t, tok, got)
	_, err = before.Verify(ctx, "acct_1", secret)
	assert.Equal(t, apitoken.ErrInvalidToken, err)
}

// TestRevokeSecretInvalidatesCaches: like Delete, RevokeSecret ends the
// secret at once in this Issuer's cache and, over the bus, in the others'.
func TestRevokeSecretInvalidatesCaches(t *testing.T) {
	t.Run("without a bus, another instance keeps its entry until its TTL", func(t *testing.T) {
		// The control: the bus is what tells B.
		env := newCacheEnv(t)
		a, b := env.node(t, false), env.node(t, false)
		secret, tok := a.issue(t, apitoken.IssueParams{AccountID: "acme"})
		a.requireMiss(t, tok, secret, "fill A")
		b.requireMiss(t, tok, secret, "fill B")
		_, err := a.iss.RevokeSecret(t.Context(), secret)
		require.NoError(t, err)
		a.requireRefused(t, "acme", secret, "A, that revoked it, refuses at once")
		b.requireHit(t, tok, secret, "B does not know")
	})
	t.Run("with a bus, B refuses at once", func(t *testing.T) {
		_, a, b, secret, tok := twoNodes(t)
		sibSecret, sib := a.issue(t, apitoken.IssueParams{AccountID: "acme"})
		b.requireMiss(t, sib, sibSecret, "fill")
		got, err := a.iss.RevokeSecret(t.Context(), secret)
		require.NoError(t, err)
		assert.Equal(t, tok.ID, got.ID)
		a.requireRefused(t, "acme", secret, "A refuses at once")
		require.Eventually(t, func() bool { return b.refused(t, "acme", secret) }, time.Second, time.Millisecond,
			"B kept verifying a token revoked on A")
		b.requireHit(t, sib, sibSecret, "the account's other token is still cached on B")
	})
}
