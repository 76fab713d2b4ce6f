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
			for _, grace := range []time.Duration{0, time.Hour} {
				t.Run("Rotate with grace "+grace.String(), func(t *testing.T) {
					iss := issuerOn(t, s)
					acct := "acct-" + rand.Text()
					oldSecret, old, err := iss.Issue(ctx, apitoken.IssueParams{AccountID: acct})
					require.NoError(t, err)
					// The old token's delete or new expiry carries its id.
					px.loseReplyAfter(commitAfter(false, old.ID)...)
					lost := px.lostReplies()
					secret, tok, err := iss.Rotate(ctx, acct, old.ID, grace)
					require.Equal(t, lost+1, px.lostReplies(), "the proxy lost the reply of the old token's change")
					require.NoError(t, err, "the change was committed: Rotate finds it and succeeds")
					_, err = check.Verify(ctx, acct, secret)
					require.NoError(t, err, "the successor works")
					_, err = check.Verify(ctx, acct, oldSecret)
					toks, listErr := check.List(ctx, acct)
					require.NoError(t, listErr)
					assert.True(t, slices.ContainsFunc(toks, func(x apitoken.Token) bool { return x.ID == tok.ID }))
					if grace == 0 {
						assert.Equal(t, apitoken.ErrInvalidToken, err, "the old token stopped")
						assert.Len(t, toks, 1)
					} else {
						assert.NoError(t, err, "the old token works for its grace")
						assert.Len(t, toks, 2)
					}
				})
			}
		})
	}
}
