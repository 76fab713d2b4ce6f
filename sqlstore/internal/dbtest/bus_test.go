package dbtest_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken-go/apitoken"
	"github.com/apitoken-go/apitoken/internal/busmsg"
	"github.com/apitoken-go/apitoken/sqlstore"
)

// busInterval is the poll interval of the buses of these tests.
const busInterval = 50 * time.Millisecond

// busSlack is what the bound of a revocation's propagation allows beyond
// the poll interval and a round trip: the scheduling of a loaded machine of
// two cores, shared with other tests (under a load of 15, 212 ms were
// seen on MariaDB against a bound of 200).
const busSlack = 500 * time.Millisecond

// recordingBus is a sqlstore.Bus that records what its subscription
// delivers.
type recordingBus struct {
	*sqlstore.Bus
	mu   sync.Mutex
	msgs [][]byte // nil for deliver(nil)
}

func (r *recordingBus) Subscribe(ctx context.Context, deliver func([]byte)) error {
	return r.Bus.Subscribe(ctx, func(msg []byte) {
		r.mu.Lock()
		r.msgs = append(r.msgs, msg)
		r.mu.Unlock()
		deliver(msg)
	})
}

// delivered returns the messages delivered so far, and how many of them
// were nil.
func (r *recordingBus) delivered() (msgs [][]byte, nils int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range r.msgs {
		if m == nil {
			nils++
		} else {
			msgs = append(msgs, m)
		}
	}
	return msgs, nils
}

// has reports whether msg was delivered.
func (r *recordingBus) has(msg []byte) bool {
	msgs, _ := r.delivered()
	for _, m := range msgs {
		if string(m) == string(msg) {
			return true
		}
	}
	return false
}

// busInstance is one instance of an app: its own pool on the shared
// database, its Store, its Bus and an Issuer whose cache keeps entries for
// an hour, so that only the bus can make it forget a token in a test.
type busInstance struct {
	db    *sql.DB
	store *sqlstore.Store
	bus   *recordingBus
	iss   *apitoken.Issuer
}

// newBusInstance starts an instance on the database that open opens, and
// waits until its bus listens.
func newBusInstance(t testing.TB, d sqlstore.Dialect, open func() *sql.DB, opts ...sqlstore.BusOption) *busInstance {
	t.Helper()
	db := open()
	s, err := sqlstore.New(db, d)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, s.Close()) })
	require.NoError(t, s.Migrate(t.Context()))
	bus, err := sqlstore.NewBus(s, append([]sqlstore.BusOption{sqlstore.WithPollInterval(busInterval)}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, bus.Close()) })
	rb := &recordingBus{Bus: bus}
	iss, err := apitoken.NewIssuer(s, apitoken.WithLastUseInterval(0), apitoken.WithCache(1000, time.Hour), apitoken.WithCacheBus(rb))
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, iss.Close()) })
	require.Eventually(t, func() bool { _, nils := rb.delivered(); return nils > 0 }, 5*time.Second, time.Millisecond, "the bus listens")
	return &busInstance{db: db, store: s, bus: rb, iss: iss}
}

// issueCached issues a token through a for a new account and verifies it
// through each of the others, which cache it.
func issueCached(t testing.TB, a *busInstance, others ...*busInstance) (acct, secret string, tok apitoken.Token) {
	t.Helper()
	acct = "acct-" + rand.Text()
	secret, tok, err := a.iss.Issue(t.Context(), apitoken.IssueParams{AccountID: acct, MemberID: "member-" + rand.Text()})
	require.NoError(t, err)
	for _, o := range others {
		_, err := o.iss.Verify(t.Context(), acct, secret)
		require.NoError(t, err)
	}
	return acct, secret, tok
}

// refusedWithin waits until b refuses the secret, and returns how long it
// took from start, failing the test after limit.
func refusedWithin(t testing.TB, b *busInstance, acct, secret string, start time.Time, limit time.Duration) time.Duration {
	t.Helper()
	for {
		_, err := b.iss.Verify(t.Context(), acct, secret)
		if err != nil {
			require.ErrorIs(t, err, apitoken.ErrInvalidToken)
			return time.Since(start)
		}
		if time.Since(start) > limit {
			t.Fatalf("still verifying %v after the change", time.Since(start))
		}
		time.Sleep(time.Millisecond)
	}
}

// roundTrip measures one round trip to the database of db.
func roundTrip(t testing.TB, db *sql.DB) time.Duration {
	t.Helper()
	start := time.Now()
	var one int
	require.NoError(t, db.QueryRowContext(t.Context(), "SELECT 1").Scan(&one))
	return time.Since(start)
}

// TestBusRevocationBound: on each database, two instances whose caches
// keep entries for an hour; a token revoked through A (by each change that
// revokes) is refused by B within the poll interval plus one round trip of
// the change's commit (and busSlack for this loaded machine). A token
// deleted behind the store's back, with no revocation logged, stays cached
// on B: the refusals come from the bus, not from cache misses.
func TestBusRevocationBound(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.String(), func(t *testing.T) {
			open := sharedDB(t, d, nil)
			a := newBusInstance(t, d, open)
			b := newBusInstance(t, d, open)
			bound := busInterval + roundTrip(t, b.db) + busSlack
			ctx := t.Context()

			for _, tc := range []struct {
				name   string
				revoke func(t *testing.T, acct, secret string, tok apitoken.Token)
			}{
				{"Delete", func(t *testing.T, acct, _ string, tok apitoken.Token) {
					require.NoError(t, a.iss.Delete(ctx, acct, tok.ID))
				}},
				{"DeleteAll", func(t *testing.T, acct, _ string, _ apitoken.Token) {
					n, err := a.iss.DeleteAll(ctx, acct)
					require.NoError(t, err)
					require.Equal(t, 1, n)
				}},
				{"Rotate without grace", func(t *testing.T, acct, _ string, tok apitoken.Token) {
					_, _, err := a.iss.Rotate(ctx, acct, tok.ID, 0)
					require.NoError(t, err)
				}},
				{"Rotate's grace ending", func(t *testing.T, acct, _ string, tok apitoken.Token) {
					_, _, err := a.iss.Rotate(ctx, acct, tok.ID, time.Millisecond)
					require.NoError(t, err)
					time.Sleep(2 * time.Millisecond) // B learns the new expiry from the store, past by then
				}},
				{"RevokeSecret", func(t *testing.T, _, secret string, _ apitoken.Token) {
					_, err := a.iss.RevokeSecret(ctx, secret)
					require.NoError(t, err)
				}},
				{"Disable", func(t *testing.T, acct, _ string, tok apitoken.Token) {
					require.NoError(t, a.iss.Disable(ctx, acct, tok.ID))
				}},
				{"DeleteMember", func(t *testing.T, acct, _ string, tok apitoken.Token) {
					n, err := a.iss.DeleteMember(ctx, acct, tok.MemberID)
					require.NoError(t, err)
					require.Equal(t, 1, n)
				}},
				{"PruneUnused (every cache forgets everything)", func(t *testing.T, _, _ string, _ apitoken.Token) {
					// Two hours ahead, so that a token issued now counts as
					// unused for an hour.
					pruner, err := apitoken.NewIssuer(a.store, apitoken.WithLastUseInterval(time.Second),
						apitoken.WithClock(func() time.Time { return time.Now().Add(2 * time.Hour) }))
					require.NoError(t, err)
					defer pruner.Close()
					n, err := pruner.PruneUnused(ctx, time.Now().Add(time.Hour))
					require.NoError(t, err)
					require.NotZero(t, n)
				}},
			} {
				t.Run(tc.name, func(t *testing.T) {
					acct, secret, tok := issueCached(t, a, b)
					start := time.Now()
					tc.revoke(t, acct, secret, tok)
					took := refusedWithin(t, b, acct, secret, start, 5*time.Second)
					t.Logf("%v: %s through A refused by B after %v (bound %v)", d, tc.name, took, bound)
					assert.LessOrEqual(t, took, bound, "within the poll interval plus a round trip")
				})
			}

			t.Run("a token deleted without the log stays cached", func(t *testing.T) {
				acct, secret, tok := issueCached(t, a, b)
				_, err := b.db.ExecContext(ctx, "DELETE FROM apitoken_tokens WHERE id = "+placeholder(d), tok.ID)
				require.NoError(t, err)
				time.Sleep(3 * busInterval)
				_, err = b.iss.Verify(ctx, acct, secret)
				require.NoError(t, err, "served from B's cache: nothing announced it")
			})
		})
	}
}

// TestBusTransactions: a token deleted in the app's transaction is
// announced when the transaction commits, without Committed, and never
// after a rollback.
func TestBusTransactions(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.String(), func(t *testing.T) {
			open := sharedDB(t, d, nil)
			a := newBusInstance(t, d, open)
			b := newBusInstance(t, d, open)
			bound := busInterval + roundTrip(t, b.db) + busSlack
			ctx := t.Context()

			t.Run("rollback: nothing announced", func(t *testing.T) {
				acct, secret, tok := issueCached(t, a, b)
				tx := beginTx(t, a.db)
				txIss, err := a.iss.InTx(a.store.WithTx(tx))
				require.NoError(t, err)
				require.NoError(t, txIss.Delete(ctx, acct, tok.ID))
				require.NoError(t, tx.Rollback())
				time.Sleep(3 * busInterval)
				assert.False(t, b.bus.has(busmsg.Encode(acct, tok.ID)), "no message")
				_, err = b.iss.Verify(ctx, acct, secret)
				require.NoError(t, err, "the token lives")
				assert.Zero(t, countRows(t, a.db, "apitoken_revocations WHERE token_id = '"+tok.ID+"'"), "no row left in the log")
			})

			t.Run("commit: announced at the commit, without Committed", func(t *testing.T) {
				acct, secret, tok := issueCached(t, a, b)
				tx := beginTx(t, a.db)
				txIss, err := a.iss.InTx(a.store.WithTx(tx))
				require.NoError(t, err)
				require.NoError(t, txIss.Delete(ctx, acct, tok.ID))
				time.Sleep(3 * busInterval)
				assert.False(t, b.bus.has(busmsg.Encode(acct, tok.ID)), "not before the commit")
				_, err = b.iss.Verify(ctx, acct, secret)
				require.NoError(t, err, "B still serves it from its cache until the commit")
				start := time.Now()
				require.NoError(t, tx.Commit())
				took := refusedWithin(t, b, acct, secret, start, 5*time.Second)
				t.Logf("%v: committed delete refused by B after %v (bound %v)", d, took, bound)
				assert.LessOrEqual(t, took, bound)
			})
		})
	}
}

// TestBusOutOfOrderCommits: two transactions delete a token each; the
// first to write its revocation (the lower id) commits last. The poll that
// saw the second's id must still find the first's once it commits.
// PostgreSQL and MySQL only: SQLite has one writer at a time, so its ids
// commit in order.
func TestBusOutOfOrderCommits(t *testing.T) {
	for _, d := range []sqlstore.Dialect{sqlstore.Postgres, sqlstore.MySQL} {
		t.Run(d.String(), func(t *testing.T) {
			open := sharedDB(t, d, nil)
			a := newBusInstance(t, d, open)
			b := newBusInstance(t, d, open)
			bound := busInterval + roundTrip(t, b.db) + busSlack
			ctx := t.Context()
			acct1, secret1, tok1 := issueCached(t, a, b)
			acct2, secret2, tok2 := issueCached(t, a, b)

			tx1, tx2 := beginTx(t, a.db), beginTx(t, a.db)
			require.NoError(t, a.store.WithTx(tx1).Delete(ctx, acct1, tok1.ID), "the lower id")
			require.NoError(t, a.store.WithTx(tx2).Delete(ctx, acct2, tok2.ID), "the higher id")
			require.NoError(t, tx2.Commit())
			refusedWithin(t, b, acct2, secret2, time.Now(), 5*time.Second)
			time.Sleep(3 * busInterval) // polls past the higher id
			_, err := b.iss.Verify(ctx, acct1, secret1)
			require.NoError(t, err, "not committed yet")

			start := time.Now()
			require.NoError(t, tx1.Commit())
			took := refusedWithin(t, b, acct1, secret1, start, 5*time.Second)
			t.Logf("%v: the late commit refused by B after %v (bound %v)", d, took, bound)
			assert.LessOrEqual(t, took, bound)
		})
	}
}

// TestBusPollingOutage: while the log cannot be read, the subscription
// ends and the cache keeps serving; once it can, the subscription starts
// again and reports that messages may have been missed (the cache is
// emptied), and revocations propagate again.
func TestBusPollingOutage(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.String(), func(t *testing.T) {
			open := sharedDB(t, d, nil)
			a := newBusInstance(t, d, open)
			b := newBusInstance(t, d, open)
			ctx := t.Context()
			acct, secret, _ := issueCached(t, a, b)
			_, nilsBefore := b.bus.delivered()

			rename := func(from, to string) {
				q := "ALTER TABLE " + from + " RENAME TO " + to
				if d == sqlstore.MySQL {
					q = "RENAME TABLE " + from + " TO " + to
				}
				_, err := a.db.ExecContext(ctx, q)
				require.NoError(t, err)
			}
			rename("apitoken_revocations", "apitoken_revocations_away")
			time.Sleep(5 * busInterval)
			_, err := b.iss.Verify(ctx, acct, secret)
			require.NoError(t, err, "the cache serves through the outage")
			rename("apitoken_revocations_away", "apitoken_revocations")

			require.Eventually(t, func() bool { _, nils := b.bus.delivered(); return nils > nilsBefore }, 5*time.Second, 5*time.Millisecond,
				"after the outage, deliver(nil)")
			acct, secret, tok := issueCached(t, a, b)
			start := time.Now()
			require.NoError(t, a.iss.Delete(ctx, acct, tok.ID))
			refusedWithin(t, b, acct, secret, start, 5*time.Second)
		})
	}
}

// TestBusPrune: the subscribers delete the log's rows past the retention.
func TestBusPrune(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.String(), func(t *testing.T) {
			open := sharedDB(t, d, nil)
			a := newBusInstance(t, d, open, sqlstore.WithLookBack(100*time.Millisecond), sqlstore.WithRetention(300*time.Millisecond))
			for range 3 {
				acct, _, tok := issueCached(t, a)
				require.NoError(t, a.iss.Delete(t.Context(), acct, tok.ID))
			}
			require.Equal(t, 3, countRows(t, a.db, "apitoken_revocations"))
			require.Eventually(t, func() bool { return countRows(t, a.db, "apitoken_revocations") == 0 }, 5*time.Second, 10*time.Millisecond)
		})
	}
}

// TestBusMessages: what the bus announces are ids: the invalidation of
// the token, or of the account for DeleteAll; never the secret nor its
// hash, and neither is in the log.
func TestBusMessages(t *testing.T) {
	d := sqlstore.SQLite
	open := sharedDB(t, d, nil)
	a := newBusInstance(t, d, open)
	ctx := t.Context()
	acct, secret, tok := issueCached(t, a)
	require.NoError(t, a.iss.Delete(ctx, acct, tok.ID))
	acct2, _, _ := issueCached(t, a)
	_, err := a.iss.DeleteAll(ctx, acct2)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		return a.bus.has(busmsg.Encode(acct, tok.ID)) && a.bus.has(busmsg.Encode(acct2, ""))
	}, 5*time.Second, time.Millisecond)
	msgs, _ := a.bus.delivered()
	assert.Len(t, msgs, 2, "one per revocation")
	for _, m := range msgs {
		assert.NotContains(t, string(m), secret)
	}
	var dump strings.Builder
	rows, err := a.db.QueryContext(ctx, "SELECT account_id, token_id FROM apitoken_revocations")
	require.NoError(t, err)
	defer rows.Close()
	for rows.Next() {
		var x, y string
		require.NoError(t, rows.Scan(&x, &y))
		dump.WriteString(x + " " + y + "\n")
	}
	require.NoError(t, rows.Err())
	assert.Equal(t, acct+" "+tok.ID+"\n"+acct2+" \n", dump.String())
}

// placeholder is the dialect's first statement parameter.
func placeholder(d sqlstore.Dialect) string {
	if d == sqlstore.Postgres {
		return "$1"
	}
	return "?"
}
