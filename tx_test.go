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

// The stores below stand for a store bound to a transaction: the same
// memstore seen through another value, as sqlstore's Store.WithTx is the
// same database seen through the transaction.

func TestInTxKeepsTheIssuersConfiguration(t *testing.T) {
	ctx := t.Context()
	key := bytes.Repeat([]byte{7}, 32)
	mem := memstore.New()
	var audit bytes.Buffer
	iss := newIssuer(t, mem, apitoken.WithPrefix("acme"), apitoken.WithHashKey(key),
		apitoken.WithAuditLogger(slog.New(slog.NewTextHandler(&audit, nil))), apitoken.WithLastUseInterval(0))
	txIss, err := iss.InTx(mem)
	require.NoError(t, err)

	secret, tok, err := txIss.Issue(ctx, apitoken.IssueParams{AccountID: "acct_1", Name: "in tx"})
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(secret, "acme_"), "the prefix of iss")
	got, err := iss.Verify(ctx, "acct_1", secret)
	require.NoError(t, err, "a token issued in the transaction verifies through iss: same hash key")
	assert.Equal(t, tok.ID, got.ID)
	assert.Contains(t, audit.String(), "token issued", "the audit log of iss")

	// The silent failure InTx prevents: an Issuer built by hand over the
	// transaction's store, without the hash key and prefix, issues tokens
	// that never verify.
	byHand := newIssuer(t, mem, apitoken.WithLastUseInterval(0))
	lost, _, err := byHand.Issue(ctx, apitoken.IssueParams{AccountID: "acct_1"})
	require.NoError(t, err)
	_, err = iss.Verify(ctx, "acct_1", lost)
	require.ErrorIs(t, err, apitoken.ErrInvalidToken)
}

func TestInTxKeepsTheLimit(t *testing.T) {
	ctx := t.Context()
	mem := memstore.New()
	iss := newIssuer(t, mem, apitoken.WithMaxTokensPerAccount(1))
	txIss, err := iss.InTx(mem)
	require.NoError(t, err)
	_, _, err = txIss.Issue(ctx, apitoken.IssueParams{AccountID: "acct_1"})
	require.NoError(t, err)
	_, _, err = txIss.Issue(ctx, apitoken.IssueParams{AccountID: "acct_1"})
	require.ErrorIs(t, err, apitoken.ErrLimitReached, "the transaction does not bypass WithMaxTokensPerAccount")
	toks, err := iss.List(ctx, "acct_1")
	require.NoError(t, err)
	assert.Len(t, toks, 1)
}

func TestInTxRefuses(t *testing.T) {
	mem := memstore.New()
	tests := []struct {
		name    string
		iss     func(t *testing.T) *apitoken.Issuer
		store   apitoken.Store
		wantErr error
	}{
		{"nok, a nil store", func(t *testing.T) *apitoken.Issuer { return newIssuer(t, mem) }, nil, apitoken.ErrInvalidInput},
		{"nok, a typed nil store", func(t *testing.T) *apitoken.Issuer { return newIssuer(t, mem) }, (*memstore.Store)(nil), apitoken.ErrInvalidInput},
		{"nok, a store that cannot keep the limit", func(t *testing.T) *apitoken.Issuer {
			return newIssuer(t, mem, apitoken.WithMaxTokensPerAccount(3))
		}, plainStore{mem}, errors.ErrUnsupported},
		{"nok, a store that cannot re-hash for the previous keys", func(t *testing.T) *apitoken.Issuer {
			return newIssuer(t, mem, apitoken.WithPreviousHashKeys(bytes.Repeat([]byte{1}, 32)))
		}, plainStore{mem}, errors.ErrUnsupported},
		{"nok, a closed Issuer", func(t *testing.T) *apitoken.Issuer {
			iss := newIssuer(t, mem)
			require.NoError(t, iss.Close())
			return iss
		}, mem, apitoken.ErrClosed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			txIss, err := tt.iss(t).InTx(tt.store)
			require.ErrorIs(t, err, tt.wantErr)
			assert.Nil(t, txIss)
		})
	}

	t.Run("ok, a store without last use, as the Issuer records none in a transaction", func(t *testing.T) {
		_, err := newIssuer(t, mem).InTx(plainStore{mem})
		require.NoError(t, err)
	})
}

// TestInTxCommittedAnnounces checks that a delete in a transaction is
// forgotten by the Issuer's own cache at once, and by the other instances
// only once the app says the transaction committed.
func TestInTxCommittedAnnounces(t *testing.T) {
	tests := []struct {
		name   string
		change func(t *testing.T, txIss *apitoken.Issuer, tok apitoken.Token)
	}{
		{"Delete", func(t *testing.T, txIss *apitoken.Issuer, tok apitoken.Token) {
			require.NoError(t, txIss.Delete(t.Context(), tok.AccountID, tok.ID))
		}},
		{"DeleteAll", func(t *testing.T, txIss *apitoken.Issuer, tok apitoken.Token) {
			n, err := txIss.DeleteAll(t.Context(), tok.AccountID)
			require.NoError(t, err)
			require.Equal(t, 1, n)
		}},
		{"Rotate", func(t *testing.T, txIss *apitoken.Issuer, tok apitoken.Token) {
			_, _, err := txIss.Rotate(t.Context(), tok.AccountID, tok.ID, 0)
			require.NoError(t, err)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, a, b, secret, tok := twoNodes(t)
			txA, err := a.iss.InTx(env.mem)
			require.NoError(t, err)
			published := a.bus.published.Load()

			tt.change(t, txA, tok)
			a.requireRefused(t, "acme", secret, "the Issuer InTx came from forgets at once")
			b.requireHit(t, tok, secret, "before Committed, the other instances are not told")
			assert.Equal(t, published, a.bus.published.Load(), "nothing is published before the commit")

			txA.Committed(t.Context())
			require.Eventually(t, func() bool { return b.refused(t, "acme", secret) }, time.Second, time.Millisecond,
				"after Committed, the other instance refuses")
			assert.Greater(t, a.bus.published.Load(), published)

			before := a.bus.published.Load()
			txA.Committed(t.Context())
			assert.Equal(t, before, a.bus.published.Load(), "a second Committed has nothing left to announce")
		})
	}

	t.Run("ok, Committed on an Issuer not made by InTx does nothing", func(t *testing.T) {
		_, a, b, secret, tok := twoNodes(t)
		published := a.bus.published.Load()
		a.iss.Committed(context.Background())
		assert.Equal(t, published, a.bus.published.Load())
		b.requireHit(t, tok, secret, "nothing was invalidated")
	})
}
