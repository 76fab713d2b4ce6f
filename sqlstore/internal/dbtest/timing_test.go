package dbtest_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken-go/apitoken"
	"github.com/apitoken-go/apitoken/memstore"
)

// TestRefusalTimingWithCache measures, with the cache on a SQL store, how
// long Verify takes to refuse a live, cached token presented with another
// account id, and an unknown secret, interleaved: a holder of a leaked
// secret must not learn from the time that it is live. Both the first
// refusal of a pair (a store read for both) and a repeated one (from
// memory for both) must take about as long for either kind. It logs the
// medians and their ratio.
func TestRefusalTimingWithCache(t *testing.T) {
	const probes = 200
	for _, d := range dialects {
		t.Run(d.String(), func(t *testing.T) {
			ctx := t.Context()
			iss := issuerOn(t, newStore(t, d), apitoken.WithCache(1000, time.Hour))
			live, _, err := iss.Issue(ctx, apitoken.IssueParams{AccountID: "acme"})
			require.NoError(t, err)
			_, err = iss.Verify(ctx, "acme", live) // cached from now on
			require.NoError(t, err)
			elsewhere, err := apitoken.NewIssuer(memstore.New())
			require.NoError(t, err)
			unknown, _, err := elsewhere.Issue(ctx, apitoken.IssueParams{AccountID: "acme"}) // well-formed, not in this store
			require.NoError(t, err)

			timeOf := func(account, secret string) time.Duration {
				start := time.Now()
				_, err := iss.Verify(ctx, account, secret)
				took := time.Since(start)
				require.Equal(t, apitoken.ErrInvalidToken, err)
				return took
			}
			for _, repeated := range []bool{false, true} {
				var liveTimes, unknownTimes []time.Duration
				for i := range probes {
					account := fmt.Sprintf("probe-%d", i) // a new pair each time
					if repeated {
						account = "probe"
						if i == 0 {
							timeOf(account, live)
							timeOf(account, unknown)
						}
					}
					if i%2 == 0 { // interleaved, each first in turn
						liveTimes = append(liveTimes, timeOf(account, live))
						unknownTimes = append(unknownTimes, timeOf(account, unknown))
					} else {
						unknownTimes = append(unknownTimes, timeOf(account, unknown))
						liveTimes = append(liveTimes, timeOf(account, live))
					}
				}
				l, u := median(liveTimes), median(unknownTimes)
				ratio := float64(u) / float64(l)
				t.Logf("repeated=%v: median refusal of a live token with another account id %v, of an unknown one %v: ratio %.2f", repeated, l, u, ratio)
				assert.InDelta(t, 1, ratio, 2.0/3, "repeated=%v: a live token's refusal must take about as long as an unknown one's (ratio %.2f)", repeated, ratio)
				assert.Greater(t, ratio, 1.0/3, "repeated=%v", repeated)
			}
		})
	}
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}
