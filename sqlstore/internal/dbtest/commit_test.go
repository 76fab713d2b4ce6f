package dbtest_test

import (
	"crypto/rand"
	"slices"
	"testing"
	"time"

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
					// MySQL inserts in a transaction of its own, and the
					// limit counts and inserts in one on every database.
					px.loseReplyAfter(commitAfter(d == sqlstore.MySQL || limited, marker)...)
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
