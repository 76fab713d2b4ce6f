package dbtest_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken-go/apitoken"
)

// TestLastUseStormWithRevocations races the last-use writes of several
// instances (each flush a batch of every token, in an order of its own)
// against Delete, Rotate and DeleteAll from several goroutines: row locks
// taken in different orders must not make a revocation fail (a deadlock
// victim), and no last-use write may be lost: afterwards each surviving
// token has the latest last use written.
func TestLastUseStormWithRevocations(t *testing.T) {
	const (
		flushers = 4
		rounds   = 25
		accounts = 3
		each     = 20
	)
	for _, d := range dialects {
		t.Run(d.String(), func(t *testing.T) {
			ctx := t.Context()
			s := newStore(t, d)
			iss := issuerOn(t, s)
			var all []apitoken.Token
			byAccount := map[string][]apitoken.Token{}
			for a := range accounts {
				acct := fmt.Sprintf("acct-%d", a)
				for range each {
					_, tok, err := iss.Issue(ctx, apitoken.IssueParams{AccountID: acct})
					require.NoError(t, err)
					all = append(all, tok)
					byAccount[acct] = append(byAccount[acct], tok)
				}
			}
			base := time.Now().UTC().Truncate(time.Microsecond)
			at := func(round, f int) time.Time { return base.Add(time.Duration(round*flushers+f) * time.Microsecond) }

			var (
				mu         sync.Mutex
				writeErrs  []error
				revokeErrs []string
				revokes    int
			)
			revoked := func(op string, err error) {
				mu.Lock()
				defer mu.Unlock()
				revokes++
				if err != nil {
					revokeErrs = append(revokeErrs, fmt.Sprintf("%s: %v", op, err))
				}
			}
			var wg sync.WaitGroup
			for f := range flushers {
				wg.Go(func() {
					for round := range rounds {
						batch := make([]apitoken.LastUse, len(all))
						for i, tok := range all {
							batch[i] = apitoken.LastUse{ID: tok.ID, At: at(round, f)}
						}
						rand.Shuffle(len(batch), func(i, j int) { batch[i], batch[j] = batch[j], batch[i] })
						if err := s.RecordLastUse(ctx, batch); err != nil {
							mu.Lock()
							writeErrs = append(writeErrs, err)
							mu.Unlock()
						}
					}
				})
			}
			// acct-0: deleted one by one, then all at once; acct-1: half
			// deleted, a quarter rotated with no grace; acct-2: a quarter
			// rotated with a grace (the old ones stay).
			a0, a1, a2 := byAccount["acct-0"], byAccount["acct-1"], byAccount["acct-2"]
			wg.Go(func() {
				for _, tok := range a0[:each/2] {
					revoked("Delete", iss.Delete(ctx, tok.AccountID, tok.ID))
				}
				_, err := iss.DeleteAll(ctx, "acct-0")
				revoked("DeleteAll", err)
			})
			wg.Go(func() {
				for _, tok := range a1[:each/2] {
					revoked("Delete", iss.Delete(ctx, tok.AccountID, tok.ID))
				}
			})
			wg.Go(func() {
				for _, tok := range a1[each/2 : each/2+each/4] {
					_, _, err := iss.Rotate(ctx, tok.AccountID, tok.ID, 0)
					revoked("Rotate", err)
				}
			})
			wg.Go(func() {
				for _, tok := range a2[:each/4] {
					_, _, err := iss.Rotate(ctx, tok.AccountID, tok.ID, time.Hour)
					revoked("Rotate with a grace", err)
				}
			})
			wg.Wait()

			assert.Empty(t, revokeErrs, "no revocation may fail because of a last-use write (%d of %d failed)", len(revokeErrs), revokes)
			assert.Empty(t, writeErrs, "no last-use write may be lost (%d of %d failed)", len(writeErrs), flushers*rounds)

			latest := at(rounds-1, flushers-1)
			survivors := append(slices.Clone(a1[each/2+each/4:]), a2...)
			for _, tok := range survivors {
				got := lookupByID(ctx, t, iss, tok)
				assert.True(t, latest.Equal(got.LastUsedAt), "token %s: last use %v, want the latest written, %v", tok.ID, got.LastUsedAt, latest)
			}
			left, err := iss.List(ctx, "acct-0")
			require.NoError(t, err)
			assert.Empty(t, left, "DeleteAll deleted every token of acct-0")
		})
	}
}

// lookupByID returns tok as its account's list shows it now.
func lookupByID(ctx context.Context, t *testing.T, iss *apitoken.Issuer, tok apitoken.Token) apitoken.Token {
	t.Helper()
	list, err := iss.List(ctx, tok.AccountID)
	require.NoError(t, err)
	i := slices.IndexFunc(list, func(x apitoken.Token) bool { return x.ID == tok.ID })
	require.GreaterOrEqual(t, i, 0, "token %s is gone", tok.ID)
	return list[i]
}
