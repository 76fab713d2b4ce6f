package dbtest_test

import (
	"database/sql"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken-go/apitoken"
	"github.com/apitoken-go/apitoken/memstore"
	"github.com/apitoken-go/apitoken/sqlstore"
)

// replicaLag is the maximum lag the tests' Stores are given.
const replicaLag = time.Second

// A replicated database of the tests: a primary and a "replica", a second
// database (an SQLite file, a PostgreSQL schema, a MySQL database) on the
// same server whose tokens the test copies from the primary when it
// chooses (replicate), so that it controls the lag.
type replicated struct {
	d                sqlstore.Dialect
	primary, replica *sql.DB
	open             func() *sql.DB // another pool on the primary
}

func newReplicated(t *testing.T, d sqlstore.Dialect) *replicated {
	t.Helper()
	open := sharedDB(t, d, nil)
	r := &replicated{d: d, primary: open(), replica: openDB(t, d), open: open}
	for _, db := range []*sql.DB{r.primary, r.replica} {
		s, err := sqlstore.New(db, d)
		require.NoError(t, err)
		require.NoError(t, s.Migrate(t.Context()))
		require.NoError(t, s.Close())
	}
	return r
}

// store returns a Store on the primary that reads the replica.
func (r *replicated) store(t *testing.T, opts ...sqlstore.Option) *sqlstore.Store {
	t.Helper()
	s, err := sqlstore.New(r.primary, r.d, append([]sqlstore.Option{sqlstore.WithReplica(r.replica, replicaLag)}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, s.Close()) })
	return s
}

// tokenColumns are the columns of the tokens table, in order.
const tokenColumns = "hash, id, account_id, member_id, name, scopes, created_at, expires_at, last_used_at"

// replicate makes the replica's tokens the primary's, as replication would
// once it caught up.
func (r *replicated) replicate(t testing.TB) {
	t.Helper()
	ctx := t.Context()
	rows, err := r.primary.QueryContext(ctx, "SELECT "+tokenColumns+" FROM apitoken_tokens")
	require.NoError(t, err)
	defer rows.Close()
	var copied [][]any
	for rows.Next() {
		vals := make([]any, 9)
		ptrs := make([]any, 9)
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		require.NoError(t, rows.Scan(ptrs...))
		copied = append(copied, vals)
	}
	require.NoError(t, rows.Err())
	tx, err := r.replica.BeginTx(ctx, nil)
	require.NoError(t, err)
	defer tx.Rollback()
	_, err = tx.ExecContext(ctx, "DELETE FROM apitoken_tokens")
	require.NoError(t, err)
	marks := make([]string, 9)
	for i := range marks {
		marks[i] = "?"
		if r.d == sqlstore.Postgres {
			marks[i] = fmt.Sprintf("$%d", i+1)
		}
	}
	for _, vals := range copied {
		_, err := tx.ExecContext(ctx, "INSERT INTO apitoken_tokens ("+tokenColumns+") VALUES ("+strings.Join(marks, ", ")+")", vals...)
		require.NoError(t, err)
	}
	require.NoError(t, tx.Commit())
}

// TestReplica: Lookup and List read the replica; a miss falls back to the
// primary, within a cap; what was written within the lag is read on the
// primary, so that a lagging replica never puts a deleted token back into
// a cache.
func TestReplica(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.String(), func(t *testing.T) {
			ctx := t.Context()

			t.Run("reads go to the replica, writes and last use to the primary", func(t *testing.T) {
				r := newReplicated(t, d)
				s := r.store(t)
				other := issuerOn(t, newStoreOn(t, r.open(), d)) // another instance, on the primary only
				acct := "acct-" + t.Name()
				secret, tok, err := other.Issue(ctx, apitoken.IssueParams{AccountID: acct})
				require.NoError(t, err)
				r.replicate(t)
				iss := issuerOn(t, s, apitoken.WithLastUseInterval(time.Second))
				got, err := iss.Verify(ctx, acct, secret)
				require.NoError(t, err)
				assert.Equal(t, tok.ID, got.ID)
				toks, err := iss.List(ctx, acct)
				require.NoError(t, err)
				assert.Len(t, toks, 1)
				assert.Equal(t, sqlstore.ReplicaStats{ReplicaReads: 2}, s.ReplicaStats())
				require.NoError(t, iss.Close()) // writes the last use
				var onPrimary, onReplica int
				q := "SELECT COUNT(*) FROM apitoken_tokens WHERE last_used_at IS NOT NULL"
				require.NoError(t, r.primary.QueryRowContext(ctx, q).Scan(&onPrimary))
				require.NoError(t, r.replica.QueryRowContext(ctx, q).Scan(&onReplica))
				assert.Equal(t, 1, onPrimary, "last use written on the primary")
				assert.Zero(t, onReplica)
			})

			t.Run("a token issued a moment ago verifies at once", func(t *testing.T) {
				r := newReplicated(t, d)
				s := r.store(t)
				iss := issuerOn(t, s)
				other := issuerOn(t, newStoreOn(t, r.open(), d))
				acct := "acct-" + t.Name()
				secret, _, err := other.Issue(ctx, apitoken.IssueParams{AccountID: acct})
				require.NoError(t, err)
				_, err = iss.Verify(ctx, acct, secret)
				require.NoError(t, err, "issued through another instance: the miss on the replica falls back to the primary")
				assert.Equal(t, uint64(1), s.ReplicaStats().Fallbacks)

				mine, _, err := iss.Issue(ctx, apitoken.IssueParams{AccountID: acct})
				require.NoError(t, err)
				_, err = iss.Verify(ctx, acct, mine)
				require.NoError(t, err, "issued through this Store: read on the primary")
				toks, err := iss.List(ctx, acct)
				require.NoError(t, err)
				assert.Len(t, toks, 2, "the account was written: listed from the primary")
				st := s.ReplicaStats()
				assert.Equal(t, uint64(1), st.Fallbacks, "no fallback: known to be recent")
				assert.Equal(t, uint64(2), st.Recent)
			})

			t.Run("a lagging replica does not put a deleted token back into the cache", func(t *testing.T) {
				r := newReplicated(t, d)
				s := r.store(t)
				iss := issuerOn(t, s, apitoken.WithCache(100, time.Hour))
				t.Cleanup(func() { assert.NoError(t, iss.Close()) })
				acct := "acct-" + t.Name()
				// Issued through another instance, long replicated.
				secret, tok, err := issuerOn(t, newStoreOn(t, r.open(), d)).Issue(ctx, apitoken.IssueParams{AccountID: acct})
				require.NoError(t, err)
				r.replicate(t)
				_, err = iss.Verify(ctx, acct, secret)
				require.NoError(t, err)
				require.NoError(t, iss.Delete(ctx, acct, tok.ID))
				// The replica lags: it still holds the token.
				for range 3 {
					_, err = iss.Verify(ctx, acct, secret)
					require.ErrorIs(t, err, apitoken.ErrInvalidToken, "found on the replica, refused by the primary, never cached")
				}
				assert.NotZero(t, s.ReplicaStats().Recent)
				toks, err := iss.List(ctx, acct)
				require.NoError(t, err)
				assert.Empty(t, toks, "the account was written: listed from the primary")
			})

			t.Run("nor a pruned one, a prune counting for every token", func(t *testing.T) {
				r := newReplicated(t, d)
				s := r.store(t)
				iss := issuerOn(t, s, apitoken.WithCache(100, time.Hour), apitoken.WithLastUseInterval(time.Second))
				t.Cleanup(func() { assert.NoError(t, iss.Close()) })
				acct := "acct-" + t.Name()
				// Issued an hour ago through another instance, long
				// replicated, never used since.
				hourAgo := func() time.Time { return time.Now().Add(-time.Hour) }
				secret, _, err := issuerOn(t, newStoreOn(t, r.open(), d), apitoken.WithClock(hourAgo)).Issue(ctx, apitoken.IssueParams{AccountID: acct})
				require.NoError(t, err)
				r.replicate(t)
				n, err := iss.PruneUnused(ctx, time.Now().Add(-time.Minute))
				require.NoError(t, err)
				require.Positive(t, n)
				// The replica lags: it still holds the token.
				for range 3 {
					_, err = iss.Verify(ctx, acct, secret)
					require.ErrorIs(t, err, apitoken.ErrInvalidToken, "found on the replica, refused by the primary, never cached")
				}
			})

			t.Run("nor one revoked through another instance, with the Bus", func(t *testing.T) {
				r := newReplicated(t, d)
				a := newBusInstance(t, d, r.open)
				s := r.store(t)
				bus, err := sqlstore.NewBus(s, sqlstore.WithPollInterval(busInterval))
				require.NoError(t, err)
				t.Cleanup(func() { assert.NoError(t, bus.Close()) })
				rb := &recordingBus{Bus: bus}
				b := issuerOn(t, s, apitoken.WithCache(100, time.Hour), apitoken.WithCacheBus(rb))
				t.Cleanup(func() { assert.NoError(t, b.Close()) })
				require.Eventually(t, func() bool { _, nils := rb.delivered(); return nils > 0 }, 5*time.Second, time.Millisecond)
				acct, secret, tok := issueCached(t, a)
				r.replicate(t)
				_, err = b.Verify(ctx, acct, secret)
				require.NoError(t, err)
				require.NoError(t, a.iss.Delete(ctx, acct, tok.ID))
				bi := &busInstance{iss: b}
				refusedWithin(t, bi, acct, secret, time.Now(), 5*time.Second)
				_, err = b.Verify(ctx, acct, secret)
				require.ErrorIs(t, err, apitoken.ErrInvalidToken, "the lagging replica's copy is not cached again")
			})

			t.Run("forged secrets make a bounded number of primary reads", func(t *testing.T) {
				r := newReplicated(t, d)
				const perSecond = 5
				s := r.store(t, sqlstore.WithReplicaFallbacks(perSecond))
				iss := issuerOn(t, s)
				forger := issuerOn(t, memstore.New()) // well-formed secrets no database holds
				start := time.Now()
				const forged = 200
				for range forged {
					secret, _, err := forger.Issue(ctx, apitoken.IssueParams{AccountID: "acct"})
					require.NoError(t, err)
					_, err = iss.Verify(ctx, "acct", secret)
					require.ErrorIs(t, err, apitoken.ErrInvalidToken, "refused, not a system error")
				}
				st := s.ReplicaStats()
				allowed := uint64(perSecond + perSecond*time.Since(start).Seconds() + 1)
				t.Logf("%v: %d forged secrets in %v: %d primary reads (cap %d), %d refused without one", d, forged, time.Since(start), st.Fallbacks, allowed, st.FallbacksRefused)
				assert.LessOrEqual(t, st.Fallbacks, allowed)
				assert.Equal(t, uint64(forged), st.Fallbacks+st.FallbacksRefused)
				assert.Equal(t, uint64(forged), st.ReplicaReads)
			})

			t.Run("a failing replica is read around", func(t *testing.T) {
				r := newReplicated(t, d)
				s := r.store(t)
				iss := issuerOn(t, s)
				acct := "acct-" + t.Name()
				secret, _, err := issuerOn(t, newStoreOn(t, r.open(), d)).Issue(ctx, apitoken.IssueParams{AccountID: acct})
				require.NoError(t, err)
				r.replicate(t)
				require.NoError(t, r.replica.Close())
				_, err = iss.Verify(ctx, acct, secret)
				require.NoError(t, err, "the primary answers")
				assert.Equal(t, uint64(1), s.ReplicaStats().ReplicaErrors)
			})
		})
	}
}

// newStoreOn returns a Store on db, already migrated.
func newStoreOn(t *testing.T, db *sql.DB, d sqlstore.Dialect) *sqlstore.Store {
	t.Helper()
	s, err := sqlstore.New(db, d)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, s.Close()) })
	return s
}
