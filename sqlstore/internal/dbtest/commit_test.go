package dbtest_test

import (
	"context"
	"crypto/rand"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken-go/apitoken"
	"github.com/apitoken-go/apitoken/sqlstore"
)

// TestLostCommitReply puts a proxy between the Store and the server that
// forwards a write's commit and then swallows the server's reply and cuts
// the connection, as a failover or a proxy restart does: the server
// committed, the client never hears. Issue must leave no token that no one
// holds the secret of, and Rotate must leave the account with a working
// token, and say truly whether it rotated.
func TestLostCommitReply(t *testing.T) {
	for _, d := range serverDialects {
		t.Run(d.String(), func(t *testing.T) {
			direct, proxied, px := proxiedDB(t, d)
			migrated, err := sqlstore.New(direct, d)
			require.NoError(t, err)
			require.NoError(t, migrated.Migrate(t.Context()))
			s, err := sqlstore.New(proxied, d)
			require.NoError(t, err)
			t.Cleanup(func() { s.Close() })
			ctx := t.Context()
			check := issuerOn(t, migrated) // reads the database directly

			// The requests that carry a marker, and then the commit (a
			// transaction), or the marker alone (a statement on its own).
			commitAfter := func(inTx bool, marker string) []string {
				if inTx {
					return []string{marker, "commit"}
				}
				return []string{marker}
			}
			for _, limited := range []bool{false, true} {
				name := "Issue"
				var opts []apitoken.Option
				if limited {
					name += " with a limit"
					opts = append(opts, apitoken.WithMaxTokensPerAccount(10))
				}
				t.Run(name, func(t *testing.T) {
					iss := issuerOn(t, s, opts...)
					acct := "acct-" + rand.Text()
					marker := "ghost-" + rand.Text()
					// A plain Create is one INSERT on its own; the limit's
					// is one too on MySQL (under a named lock), and counts
					// and inserts in a transaction on PostgreSQL.
					px.loseReplyAfter(commitAfter(limited && d != sqlstore.MySQL, marker)...)
					lost := px.lostReplies()
					_, _, err := iss.Issue(ctx, apitoken.IssueParams{AccountID: acct, Name: marker})
					require.Equal(t, lost+1, px.lostReplies(), "the proxy lost the commit's reply")
					require.Error(t, err, "the reply was lost: Issue cannot know it succeeded")
					toks, err := check.List(ctx, acct)
					require.NoError(t, err)
					assert.Empty(t, toks, "a failed Issue must leave no token that no one holds the secret of")
				})
			}
			// The old token's delete or new expiry carries its id, and runs
			// in a transaction with the revocation log's insert.
			for _, tc := range []struct {
				name      string
				grace     time.Duration
				committed bool // the proxy loses the commit's reply, not the statement's
			}{
				{"Rotate with grace 0, commit reply lost", 0, true},
				{"Rotate with a grace, commit reply lost", time.Hour, true},
				{"Rotate with grace 0, the delete's reply lost (not committed)", 0, false},
				{"Rotate with a grace, the update's reply lost (not committed)", time.Hour, false},
			} {
				t.Run(tc.name, func(t *testing.T) {
					iss := issuerOn(t, s)
					acct := "acct-" + rand.Text()
					oldSecret, old, err := iss.Issue(ctx, apitoken.IssueParams{AccountID: acct})
					require.NoError(t, err)
					px.loseReplyAfter(commitAfter(tc.committed, old.ID)...)
					lost := px.lostReplies()
					secret, tok, err := iss.Rotate(ctx, acct, old.ID, tc.grace)
					require.Equal(t, lost+1, px.lostReplies(), "the proxy lost the reply of the old token's change")
					_, oldErr := check.Verify(ctx, acct, oldSecret)
					toks, listErr := check.List(ctx, acct)
					require.NoError(t, listErr)
					if !tc.committed {
						require.Error(t, err, "the change was not committed: Rotate fails")
						assert.NoError(t, oldErr, "and the old token works as before")
						assert.Equal(t, []apitoken.Token{old}, toks, "the successor was deleted, the old token is unchanged")
						return
					}
					require.NoError(t, err, "the change was committed: Rotate finds it and succeeds")
					_, err = check.Verify(ctx, acct, secret)
					require.NoError(t, err, "the successor works")
					assert.True(t, slices.ContainsFunc(toks, func(x apitoken.Token) bool { return x.ID == tok.ID }))
					if tc.grace == 0 {
						assert.Equal(t, apitoken.ErrInvalidToken, oldErr, "the old token stopped")
						assert.Len(t, toks, 1)
					} else {
						assert.NoError(t, oldErr, "the old token works for its grace")
						assert.Len(t, toks, 2)
					}
				})
			}
		})
	}
}

// TestCancelledCreateLeavesNoRow cancels Create while its INSERT waits at
// the server for a table lock another connection holds, as a client that
// gives up on a slow database does, and calls it on the Store directly, with
// no Issuer to undo it: a failed call must leave the Store as it was. MySQL's
// driver drops the connection of a cancelled statement, and the server still
// runs the INSERT once the lock is free: Create lets it finish with a
// context of its own and deletes the row it made. On PostgreSQL the
// cancellation stops the statement.
func TestCancelledCreateLeavesNoRow(t *testing.T) {
	for _, d := range serverDialects {
		t.Run(d.String(), func(t *testing.T) {
			direct, _, _ := proxiedDB(t, d)
			s, err := sqlstore.New(direct, d)
			require.NoError(t, err)
			require.NoError(t, s.Migrate(t.Context()))
			t.Cleanup(func() { s.Close() })
			now := time.Now().UTC().Truncate(time.Microsecond)
			record := func(acct string) apitoken.Record {
				rec := apitoken.Record{Token: apitoken.Token{ID: uuid.Must(uuid.NewV7()).String(), AccountID: acct, Name: "cancelled", CreatedAt: now}}
				_, _ = rand.Read(rec.Hash[:])
				return rec
			}
			require.NoError(t, s.Create(t.Context(), record("warm")), "statements prepared")

			conn, err := direct.Conn(t.Context())
			require.NoError(t, err)
			defer conn.Close()
			var unlock func()
			if d == sqlstore.MySQL {
				_, err = conn.ExecContext(t.Context(), "LOCK TABLES apitoken_tokens WRITE")
				unlock = func() { _, _ = conn.ExecContext(context.Background(), "UNLOCK TABLES") }
			} else {
				tx, txErr := conn.BeginTx(t.Context(), nil)
				require.NoError(t, txErr)
				_, err = tx.ExecContext(t.Context(), "LOCK TABLE apitoken_tokens IN EXCLUSIVE MODE")
				unlock = func() { _ = tx.Rollback() }
			}
			require.NoError(t, err)
			acct := "acct-" + rand.Text()
			ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
			defer cancel()
			err = s.Create(ctx, record(acct))
			require.ErrorIs(t, err, context.DeadlineExceeded, "Create fails when its context ends")
			unlock()
			assert.Eventually(t, func() bool {
				toks, err := s.List(t.Context(), acct)
				return err == nil && len(toks) == 0
			}, 10*time.Second, 20*time.Millisecond, "a failed Create must leave no row")
			time.Sleep(200 * time.Millisecond) // nor does one come back later
			toks, err := s.List(t.Context(), acct)
			require.NoError(t, err)
			assert.Empty(t, toks, "a failed Create must leave no row")
		})
	}
}
