package dbtest_test

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/apitoken-go/apitoken"
)

// TestDeleteMemberRacingIssue deletes a member's tokens on every database
// while the member keeps issuing, through an Issuer with a cache: each
// token issued is deleted once or still listed, and none deleted verifies
// again.
func TestDeleteMemberRacingIssue(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.String(), func(t *testing.T) {
			ctx := t.Context()
			iss, err := apitoken.NewIssuer(newStore(t, d), apitoken.WithCache(1000, time.Hour), apitoken.WithLastUseInterval(0))
			require.NoError(t, err)
			t.Cleanup(func() { iss.Close() })
			var mu sync.Mutex
			issued := map[string]string{}
			stop := make(chan struct{})
			var wg sync.WaitGroup
			for range 2 {
				wg.Go(func() {
					for {
						select {
						case <-stop:
							return
						default:
						}
						secret, tok, err := iss.Issue(ctx, apitoken.IssueParams{AccountID: "acme", MemberID: "leaver"})
						if err != nil {
							t.Errorf("Issue: %v", err)
							return
						}
						_, _ = iss.Verify(ctx, "acme", secret)
						mu.Lock()
						issued[tok.ID] = secret
						mu.Unlock()
					}
				})
			}
			deleted := 0
			for range 10 {
				n, err := iss.DeleteMember(ctx, "acme", "leaver")
				require.NoError(t, err)
				deleted += n
				time.Sleep(5 * time.Millisecond)
			}
			close(stop)
			wg.Wait()
			toks, err := iss.List(ctx, "acme")
			require.NoError(t, err)
			require.Equal(t, len(issued), deleted+len(toks), "every token issued is deleted once or listed")
			listed := map[string]bool{}
			for _, tok := range toks {
				listed[tok.ID] = true
			}
			for id, secret := range issued {
				_, err := iss.Verify(ctx, "acme", secret)
				if listed[id] {
					require.NoError(t, err)
				} else {
					require.ErrorIs(t, err, apitoken.ErrInvalidToken, "a deleted token never verifies again")
				}
			}
		})
	}
}
