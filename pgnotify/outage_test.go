package pgnotify_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/apitoken-go/apitoken"
	"github.com/apitoken-go/apitoken/pgnotify"
	"github.com/apitoken-go/apitoken/sqlstore"
)

// When the store is down, cached tokens keep working until their TTL ends,
// also with the bus on the same PostgreSQL, whose connection goes down with
// it.
func TestOutageWithBus(t *testing.T) {
	dsn := pgDSN(t)
	prefix := newTables(t, dsn)
	for _, withBus := range []bool{false, true} {
		t.Run(map[bool]string{false: "no bus", true: "bus"}[withBus], func(t *testing.T) {
			p, via := newProxy(t, dsn)
			st, err := sqlstore.New(openDB(t, via), sqlstore.Postgres, sqlstore.WithTablePrefix(prefix))
			require.NoError(t, err)
			t.Cleanup(func() { st.Close() })
			opts := []apitoken.Option{apitoken.WithCache(1000, time.Hour), apitoken.WithLastUseInterval(0)}
			listening := make(chan uint32, 10)
			if withBus {
				bus := newBus(t, via, pgnotify.WithChannel(newChannel(t)))
				pgnotify.OnListen(bus, func(pid uint32) { listening <- pid })
				opts = append(opts, apitoken.WithCacheBus(bus))
			}
			iss, err := apitoken.NewIssuer(st, opts...)
			require.NoError(t, err)
			t.Cleanup(func() { iss.Close() })
			if withBus {
				<-listening
				time.Sleep(50 * time.Millisecond)
			}
			secret, _, err := iss.Issue(t.Context(), apitoken.IssueParams{AccountID: "acme"})
			require.NoError(t, err)
			_, err = iss.Verify(t.Context(), "acme", secret)
			require.NoError(t, err, "fill")
			if withBus {
				require.Equal(t, apitoken.BusConnected, iss.Stats().Bus.State)
			}
			p.stop() // the database is gone
			if withBus {
				require.Eventually(t, func() bool { return iss.Stats().Bus.State == apitoken.BusDisconnected }, 10*time.Second, 10*time.Millisecond,
					"the lost connection shows in the Issuer's Stats (pgnotify is an apitoken.ReportingBus)")
			}
			time.Sleep(300 * time.Millisecond)
			_, err = iss.Verify(t.Context(), "acme", secret)
			require.NoError(t, err, "a cached token keeps working during an outage")
		})
	}
}
