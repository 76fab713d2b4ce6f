package dbtest_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken-go/apitoken"
	"github.com/apitoken-go/apitoken/sqlstore"
)

// TestColdStoreUnderStallKeepsEachDeadline stalls the database (a proxy
// holds every byte) before a new Store has prepared its statements: while a
// caller with a long deadline prepares one, a caller with 300 ms must get
// its answer (an error) within its own deadline, not the other's.
func TestColdStoreUnderStallKeepsEachDeadline(t *testing.T) {
	const shortDeadline, long = 300 * time.Millisecond, 5 * time.Second
	for _, d := range serverDialects {
		t.Run(d.String(), func(t *testing.T) {
			direct, proxied, px := proxiedDB(t, d)
			migrated, err := sqlstore.New(direct, d)
			require.NoError(t, err)
			require.NoError(t, migrated.Migrate(t.Context()))
			s, err := sqlstore.New(proxied, d) // cold: nothing prepared yet
			require.NoError(t, err)
			t.Cleanup(func() { s.Close() })
			// Connections exist before the stall, as in a running app.
			require.NoError(t, proxied.PingContext(t.Context()))

			calls := []struct {
				name string
				call func(ctx context.Context) error
			}{
				{"Lookup", func(ctx context.Context) error { _, err := s.Lookup(ctx, apitoken.Hash{1}); return err }},
				{"List", func(ctx context.Context) error { _, err := s.List(ctx, "acct"); return err }},
				{"Delete", func(ctx context.Context) error { return s.Delete(ctx, "acct", "id") }},
				{"Create", func(ctx context.Context) error {
					return s.Create(ctx, apitoken.Record{Token: apitoken.Token{ID: "id", AccountID: "acct", CreatedAt: time.Now()}})
				}},
			}
			px.stall()
			var wg sync.WaitGroup
			for _, c := range calls {
				// The caller with the long deadline starts preparing first.
				wg.Go(func() {
					ctx, cancel := context.WithTimeout(context.Background(), long)
					defer cancel()
					_ = c.call(ctx)
				})
			}
			time.Sleep(100 * time.Millisecond)
			// The callers with a short deadline, at once.
			took := make([]time.Duration, len(calls))
			errs := make([]error, len(calls))
			var short sync.WaitGroup
			for i, c := range calls {
				short.Go(func() {
					ctx, cancel := context.WithTimeout(context.Background(), shortDeadline)
					defer cancel()
					start := time.Now()
					errs[i] = c.call(ctx)
					took[i] = time.Since(start)
				})
			}
			short.Wait()
			for i, c := range calls {
				assert.Error(t, errs[i], "%s: the database is stalled", c.name)
				assert.Less(t, took[i], shortDeadline+700*time.Millisecond, "%s must end within its own deadline, not another caller's", c.name)
			}
			px.unstall()
			wg.Wait()
			// Back to normal: the statements get prepared and work.
			_, err = s.List(t.Context(), "acct")
			require.NoError(t, err)
		})
	}
}
