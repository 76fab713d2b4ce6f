package dbtest_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken-go/apitoken"
	"github.com/apitoken-go/apitoken/sqlstore"
)

// TestInTx runs Issuer.InTx over Store.WithTx on each database, for each
// of the silent failures an Issuer built by hand over the transaction's
// store had: tokens that never verify (prefix and hash key forgotten), a
// limit bypassed, and a deleted token kept alive by the main Issuer's cache.
func TestInTx(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.String(), func(t *testing.T) {
			db := openDB(t, d)
			s, err := sqlstore.New(db, d)
			require.NoError(t, err)
			t.Cleanup(func() { assert.NoError(t, s.Close()) })
			require.NoError(t, s.Migrate(t.Context()))
			key := bytes.Repeat([]byte{9}, 32)

			t.Run("ok, a token issued in the transaction verifies after the commit", func(t *testing.T) {
				ctx := t.Context()
				main := issuerOn(t, s, apitoken.WithPrefix("acme"), apitoken.WithHashKey(key))
				acct := "acct-" + rand.Text()
				tx := beginTx(t, db)
				txIss, err := main.InTx(s.WithTx(tx))
				require.NoError(t, err)
				secret, tok, err := txIss.Issue(ctx, apitoken.IssueParams{AccountID: acct})
				require.NoError(t, err)
				require.NoError(t, tx.Commit())
				got, err := main.Verify(ctx, acct, secret)
				require.NoError(t, err, "same prefix and hash key as the main Issuer")
				assert.Equal(t, tok.ID, got.ID)
			})

			t.Run("ok, the limit is kept or refused, never bypassed", func(t *testing.T) {
				ctx := t.Context()
				main := issuerOn(t, s, apitoken.WithMaxTokensPerAccount(1))
				acct := "acct-" + rand.Text()
				_, _, err := main.Issue(ctx, apitoken.IssueParams{AccountID: acct})
				require.NoError(t, err)
				tx := beginTx(t, db)
				txIss, err := main.InTx(s.WithTx(tx))
				require.NoError(t, err)
				_, _, err = txIss.Issue(ctx, apitoken.IssueParams{AccountID: acct})
				if d == sqlstore.Postgres {
					require.ErrorIs(t, err, apitoken.ErrLimitReached, "PostgreSQL keeps the limit inside the transaction")
				} else {
					require.ErrorIs(t, err, errors.ErrUnsupported, "where the limit cannot be kept in the transaction, Issue says so")
				}
				require.NoError(t, tx.Rollback())
				toks, err := main.List(ctx, acct)
				require.NoError(t, err)
				assert.Len(t, toks, 1)
			})

			t.Run("ok, the main Issuer's cache forgets a token deleted in a committed transaction", func(t *testing.T) {
				ctx := t.Context()
				main := issuerOn(t, s, apitoken.WithCache(100, time.Hour))
				t.Cleanup(func() { assert.NoError(t, main.Close()) })
				acct := "acct-" + rand.Text()
				secret, tok, err := main.Issue(ctx, apitoken.IssueParams{AccountID: acct})
				require.NoError(t, err)
				_, err = main.Verify(ctx, acct, secret)
				require.NoError(t, err)

				tx := beginTx(t, db)
				txIss, err := main.InTx(s.WithTx(tx))
				require.NoError(t, err)
				require.NoError(t, txIss.Delete(ctx, acct, tok.ID))
				// Until the commit the row is there for everyone else: a
				// Verify through the main Issuer finds it and caches it again.
				_, err = main.Verify(ctx, acct, secret)
				require.NoError(t, err, "not yet committed")
				require.NoError(t, tx.Commit())
				txIss.Committed(ctx)
				_, err = main.Verify(ctx, acct, secret)
				require.ErrorIs(t, err, apitoken.ErrInvalidToken, "after Committed, no cache keeps the deleted token")
			})
		})
	}
}
