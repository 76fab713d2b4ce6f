package dbtest_test

import (
	"database/sql"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/apitoken-go/apitoken"
	"github.com/apitoken-go/apitoken/memstore"
	"github.com/apitoken-go/apitoken/sqlstore"
)

// BenchmarkBusPropagation measures, on each database, how long a token
// deleted through instance A keeps verifying on instance B, whose cache
// keeps it for an hour, with the sqlstore Bus at two poll intervals. Each
// op is one Delete, at a random moment between two polls; metrics: the
// median and the largest delay from Delete's return to B's first refusal,
// and a round trip (SELECT 1) for scale. Run with -benchtime=40x.
func BenchmarkBusPropagation(b *testing.B) {
	for _, d := range dialects {
		for _, interval := range []time.Duration{sqlstore.DefaultPollInterval, 20 * time.Millisecond} {
			b.Run(d.String()+"/interval="+interval.String(), func(b *testing.B) {
				open := sharedDB(b, d, nil)
				a := newBusInstance(b, d, open, sqlstore.WithPollInterval(interval))
				bb := newBusInstance(b, d, open, sqlstore.WithPollInterval(interval))
				rtt := roundTrip(b, bb.db)
				var took []time.Duration
				for b.Loop() {
					acct, secret, tok := issueCached(b, a, bb)
					time.Sleep(rand.N(interval)) // anywhere between two polls
					start := time.Now()
					require.NoError(b, a.iss.Delete(b.Context(), acct, tok.ID))
					took = append(took, refusedWithin(b, bb, acct, secret, start, 10*interval+time.Second))
				}
				slices.Sort(took)
				b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "median-ms")
				b.ReportMetric(float64(took[len(took)-1].Microseconds())/1000, "max-ms")
				b.ReportMetric(float64(rtt.Microseconds())/1000, "round-trip-ms")
			})
		}
	}
}

// BenchmarkReplicaFallbacks measures, on each database, where the lookups
// of a Store with a replica go under a load of 1 forged (well-formed,
// unknown) secret for every 9 valid ones, with the default cap of 100
// primary reads a second after a miss. Metrics per verification:
// replica-reads, primary-fallbacks, refused-fallbacks (misses answered
// without a primary read). Run with -benchtime=2s: over a longer run, the
// fallbacks are the cap's 100 a second, whatever the rate of forgeries.
func BenchmarkReplicaFallbacks(b *testing.B) {
	for _, d := range dialects {
		b.Run(d.String(), func(b *testing.B) {
			open := sharedDB(b, d, nil)
			primary, replicaDB := open(), openDB(b, d)
			for _, db := range []*sql.DB{primary, replicaDB} {
				s, err := sqlstore.New(db, d)
				require.NoError(b, err)
				require.NoError(b, s.Migrate(b.Context()))
				require.NoError(b, s.Close())
			}
			r := &replicated{d: d, primary: primary, replica: replicaDB, open: open}
			writer, err := sqlstore.New(r.open(), d)
			require.NoError(b, err)
			b.Cleanup(func() { writer.Close() })
			wiss, err := apitoken.NewIssuer(writer, apitoken.WithLastUseInterval(0))
			require.NoError(b, err)
			var secrets []string
			for range 9 {
				secret, _, err := wiss.Issue(b.Context(), apitoken.IssueParams{AccountID: "acct"})
				require.NoError(b, err)
				secrets = append(secrets, secret)
			}
			r.replicate(b)
			s, err := sqlstore.New(primary, d, sqlstore.WithReplica(replicaDB, replicaLag))
			require.NoError(b, err)
			b.Cleanup(func() { s.Close() })
			iss, err := apitoken.NewIssuer(s, apitoken.WithLastUseInterval(0))
			require.NoError(b, err)
			forger, err := apitoken.NewIssuer(memstore.New())
			require.NoError(b, err)
			forged := make([]string, 1000)
			for i := range forged {
				forged[i], _, err = forger.Issue(b.Context(), apitoken.IssueParams{AccountID: "acct"})
				require.NoError(b, err)
			}
			i := 0
			for b.Loop() {
				if i%10 == 9 {
					_, err = iss.Verify(b.Context(), "acct", forged[i/10%len(forged)])
					require.ErrorIs(b, err, apitoken.ErrInvalidToken)
				} else {
					_, err = iss.Verify(b.Context(), "acct", secrets[i%10])
					require.NoError(b, err)
				}
				i++
			}
			st := s.ReplicaStats()
			n := float64(i)
			b.ReportMetric(float64(st.ReplicaReads)/n, "replica-reads/op")
			b.ReportMetric(float64(st.Fallbacks)/n, "primary-fallbacks/op")
			b.ReportMetric(float64(st.FallbacksRefused)/n, "refused-fallbacks/op")
		})
	}
}

// BenchmarkDelete measures what the revocation log costs a delete, on
// each database: Store.Delete (the DELETE and the log's INSERT in one
// transaction of the Store's own) beside the bare DELETE statement,
// prepared, on the same pool. Each op deletes one of b.N tokens created
// beforehand. Run with -benchtime=300x.
func BenchmarkDelete(b *testing.B) {
	for _, d := range dialects {
		b.Run(d.String(), func(b *testing.B) {
			s := newBenchStore(b, d)
			ctx := b.Context()
			create := func(b *testing.B) []apitoken.Token {
				toks := make([]apitoken.Token, b.N)
				for i := range toks {
					_, tok, err := s.iss.Issue(ctx, apitoken.IssueParams{AccountID: "bench-delete"})
					require.NoError(b, err)
					toks[i] = tok
				}
				return toks
			}
			b.Run("op=DELETE-statement", func(b *testing.B) {
				stmt := s.prepare(b, "DELETE FROM apitoken_tokens WHERE id = "+placeholder(d)+" AND account_id = "+placeholderN(d, 2))
				toks := create(b)
				b.ResetTimer()
				for i := range b.N {
					if _, err := stmt.ExecContext(ctx, toks[i].ID, toks[i].AccountID); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("op=Store.Delete", func(b *testing.B) {
				toks := create(b)
				b.ResetTimer()
				for i := range b.N {
					if err := s.store.Delete(ctx, toks[i].AccountID, toks[i].ID); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

// placeholderN is the dialect's n-th statement parameter.
func placeholderN(d sqlstore.Dialect, n int) string {
	if d == sqlstore.Postgres {
		return "$" + strconv.Itoa(n)
	}
	return "?"
}
