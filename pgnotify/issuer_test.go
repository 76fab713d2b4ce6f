package pgnotify_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
	"github.com/stretchr/testify/require"

	"github.com/apitoken-go/apitoken"
	"github.com/apitoken-go/apitoken/pgnotify"
	"github.com/apitoken-go/apitoken/sqlstore"
)

// invalidationBound is how soon a deletion on one instance must reach the
// cache of another over the bus, on a loopback server.
const invalidationBound = 2 * time.Second

// newTables migrates the tables of a new table prefix on the test server,
// dropped when the test ends, and returns the prefix.
func newTables(t *testing.T, dsn string) string {
	t.Helper()
	var b [6]byte
	_, err := rand.Read(b[:])
	require.NoError(t, err)
	prefix := "pgnotify_" + hex.EncodeToString(b[:]) + "_"
	db := openDB(t, dsn)
	st, err := sqlstore.New(db, sqlstore.Postgres, sqlstore.WithTablePrefix(prefix))
	require.NoError(t, err)
	t.Cleanup(func() {
		for _, table := range []string{"tokens", "schema_version"} {
			_, err := db.Exec("DROP TABLE IF EXISTS " + prefix + table)
			require.NoError(t, err)
		}
	})
	require.NoError(t, st.Migrate(t.Context()))
	require.NoError(t, st.Close())
	return prefix
}

func openDB(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open("pgx", dsn)
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	return db
}

// newInstance returns the Issuer of one instance of an app: a pool of its
// own, a store over it, a cache that keeps tokens for an hour, and a Bus on
// channel unless channel is "".
func newInstance(t *testing.T, dsn, prefix, channel string) *apitoken.Issuer {
	t.Helper()
	st, err := sqlstore.New(openDB(t, dsn), sqlstore.Postgres, sqlstore.WithTablePrefix(prefix))
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	opts := []apitoken.Option{apitoken.WithCache(1000, time.Hour)}
	if channel != "" {
		// Registered before the Issuer's Close, so run after it.
		opts = append(opts, apitoken.WithCacheBus(newBus(t, dsn, pgnotify.WithChannel(channel))))
	}
	iss, err := apitoken.NewIssuer(st, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, iss.Close()) })
	return iss
}

// issue issues a token on iss and verifies it on every instance, so that
// each caches it.
func issue(t *testing.T, iss *apitoken.Issuer, account string, all ...*apitoken.Issuer) (secret string, tok apitoken.Token) {
	t.Helper()
	secret, tok, err := iss.Issue(t.Context(), apitoken.IssueParams{AccountID: account, Name: "pgnotify test"})
	require.NoError(t, err)
	for _, other := range all {
		_, err := other.Verify(t.Context(), account, secret)
		require.NoError(t, err, "a token just issued must verify on every instance")
	}
	return secret, tok
}

// refusedWithin polls iss.Verify every 5 ms until it refuses the token, and
// returns how long that took; it fails the test after bound.
func refusedWithin(t *testing.T, iss *apitoken.Issuer, account, secret string, bound time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		_, err := iss.Verify(t.Context(), account, secret)
		if errors.Is(err, apitoken.ErrInvalidToken) {
			return time.Since(start)
		}
		require.NoError(t, err, "Verify must accept or refuse, not fail")
		if time.Since(start) > bound {
			t.Fatalf("the other instance still accepts the deleted token after %v", bound)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func newAccount(t *testing.T) string {
	t.Helper()
	var b [6]byte
	_, err := rand.Read(b[:])
	require.NoError(t, err)
	return "acct_" + hex.EncodeToString(b[:])
}

// Two instances, each with its own pool, store, cache and Bus, over the same
// tables: what one deletes, the other stops accepting within
// invalidationBound, although its cache would keep the token for an hour.
func TestIssuersShareInvalidations(t *testing.T) {
	dsn := pgDSN(t)
	prefix := newTables(t, dsn)

	t.Run("delete on A, refused on B", func(t *testing.T) {
		ch := newChannel(t)
		a, b := newInstance(t, dsn, prefix, ch), newInstance(t, dsn, prefix, ch)
		account := newAccount(t)
		secret, tok := issue(t, a, account, a, b)

		start := time.Now()
		require.NoError(t, a.Delete(t.Context(), account, tok.ID))
		deleted := time.Since(start)
		_, err := a.Verify(t.Context(), account, secret)
		require.ErrorIs(t, err, apitoken.ErrInvalidToken, "the instance that deleted the token must refuse it at once")
		delay := refusedWithin(t, b, account, secret, invalidationBound)
		t.Logf("Delete took %v; B refused the token %v after Delete returned (bound %v, polled every 5ms)", deleted, delay, invalidationBound)
	})

	t.Run("delete all on B, refused on A", func(t *testing.T) {
		ch := newChannel(t)
		a, b := newInstance(t, dsn, prefix, ch), newInstance(t, dsn, prefix, ch)
		account := newAccount(t)
		secret1, _ := issue(t, a, account, a, b)
		secret2, _ := issue(t, b, account, a, b)

		start := time.Now()
		n, err := b.DeleteAll(t.Context(), account)
		require.NoError(t, err)
		require.Equal(t, 2, n)
		deleted := time.Since(start)
		for _, secret := range []string{secret1, secret2} {
			_, err := b.Verify(t.Context(), account, secret)
			require.ErrorIs(t, err, apitoken.ErrInvalidToken, "the instance that deleted the tokens must refuse them at once")
		}
		delay := refusedWithin(t, a, account, secret1, invalidationBound)
		t.Logf("DeleteAll took %v; A refused the first token %v after DeleteAll returned (bound %v)", deleted, delay, invalidationBound)
		_, err = a.Verify(t.Context(), account, secret2)
		require.ErrorIs(t, err, apitoken.ErrInvalidToken)
	})

	// The control: without a bus, B's cache keeps the deleted token, so the
	// subtests above would fail if the bus carried nothing.
	t.Run("control: without a bus, B keeps accepting", func(t *testing.T) {
		a, b := newInstance(t, dsn, prefix, ""), newInstance(t, dsn, prefix, "")
		account := newAccount(t)
		secret, tok := issue(t, a, account, a, b)
		require.NoError(t, a.Delete(t.Context(), account, tok.ID))
		_, err := a.Verify(t.Context(), account, secret)
		require.ErrorIs(t, err, apitoken.ErrInvalidToken)
		deadline := time.Now().Add(200 * time.Millisecond)
		for time.Now().Before(deadline) {
			_, err := b.Verify(context.Background(), account, secret)
			require.NoError(t, err, "without a bus, B's cache (TTL one hour) must still accept the deleted token: if not, WithCache does not cache, and the subtests above prove nothing")
			time.Sleep(5 * time.Millisecond)
		}
	})
}
