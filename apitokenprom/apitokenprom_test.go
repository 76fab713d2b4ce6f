package apitokenprom_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken-go/apitoken"
	"github.com/apitoken-go/apitoken/apitokenprom"
	"github.com/apitoken-go/apitoken/memstore"
)

// clock is a settable clock for WithClock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// flakyStore is a memstore whose Lookup fails while down is set.
type flakyStore struct {
	*memstore.Store
	down atomic.Bool
}

func (s *flakyStore) Lookup(ctx context.Context, h apitoken.Hash) (apitoken.Record, error) {
	if s.down.Load() {
		return apitoken.Record{}, errors.New("connection refused")
	}
	return s.Store.Lookup(ctx, h)
}

func (s *flakyStore) Unwrap() apitoken.Store { return s.Store }

// loopBus is an in-process Bus: what is published comes back to the one
// subscriber.
type loopBus struct{ ch chan []byte }

func (b *loopBus) Publish(_ context.Context, msg []byte) error {
	b.ch <- append([]byte(nil), msg...)
	return nil
}

func (b *loopBus) Subscribe(ctx context.Context, deliver func([]byte)) error {
	deliver(nil)
	for {
		select {
		case <-ctx.Done():
			return nil
		case msg := <-b.ch:
			deliver(msg)
		}
	}
}

func TestCollector(t *testing.T) {
	ctx := t.Context()
	clk := &clock{t: time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)}
	metrics := apitokenprom.New()
	// Every Verify takes 3 µs, as the Collector sees it.
	apitokenprom.SetNow(metrics, func() time.Time { return clk.Now().Add(3 * time.Microsecond) })
	store := &flakyStore{Store: memstore.New()}
	bus := &loopBus{ch: make(chan []byte, 10)}
	iss, err := apitoken.NewIssuer(store, apitoken.WithClock(clk.Now), apitoken.WithEvents(metrics.Event),
		apitoken.WithCache(100, time.Hour), apitoken.WithCacheBus(bus), apitoken.WithLastUseInterval(0))
	require.NoError(t, err)
	t.Cleanup(func() { iss.Close() })
	metrics.Watch(iss)
	require.Eventually(t, func() bool { return iss.Stats().Bus.State == apitoken.BusConnected }, time.Second, time.Millisecond)
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(metrics))

	secret, tok, err := iss.Issue(ctx, apitoken.IssueParams{AccountID: "acme"})
	require.NoError(t, err)
	other, otherTok, err := iss.Issue(ctx, apitoken.IssueParams{AccountID: "acme"})
	require.NoError(t, err)
	for range 2 {
		_, err = iss.Verify(ctx, "acme", secret) // a miss, then a hit
		require.NoError(t, err)
	}
	_, _ = iss.Verify(ctx, "globex", secret) // asks the store
	_, _ = iss.Verify(ctx, "globex", secret) // the cache remembers the refusal
	_, _ = iss.Verify(ctx, "acme", "nope")
	store.down.Store(true)
	_, err = iss.Verify(ctx, "acme", other)
	require.Error(t, err)
	store.down.Store(false)
	require.NoError(t, iss.Delete(ctx, "acme", otherTok.ID))
	require.Eventually(t, func() bool { return iss.Stats().Bus.Messages == 1 }, time.Second, time.Millisecond)
	clk.Add(2 * time.Second)

	const want = `
# HELP apitoken_verifications_total Verifications since the Issuer started, by outcome: verified, store_failed, or the reason of a refusal.
# TYPE apitoken_verifications_total counter
apitoken_verifications_total{outcome="address_not_allowed"} 0
apitoken_verifications_total{outcome="disabled"} 0
apitoken_verifications_total{outcome="expired"} 0
apitoken_verifications_total{outcome="malformed"} 1
apitoken_verifications_total{outcome="older_than_max_lifetime"} 0
apitoken_verifications_total{outcome="store_failed"} 1
apitoken_verifications_total{outcome="unknown"} 0
apitoken_verifications_total{outcome="verified"} 2
apitoken_verifications_total{outcome="wrong_account"} 2
# HELP apitoken_cache_entries Tokens held by the cache.
# TYPE apitoken_cache_entries gauge
apitoken_cache_entries 1
# HELP apitoken_cache_max_entries The most tokens the cache holds.
# TYPE apitoken_cache_max_entries gauge
apitoken_cache_max_entries 100
# HELP apitoken_cache_hits_total Verifications the cache answered.
# TYPE apitoken_cache_hits_total counter
apitoken_cache_hits_total 2
# HELP apitoken_cache_misses_total Verifications that asked the store.
# TYPE apitoken_cache_misses_total counter
apitoken_cache_misses_total 3
# HELP apitoken_cache_evictions_total Entries pushed out of a full cache before their TTL.
# TYPE apitoken_cache_evictions_total counter
apitoken_cache_evictions_total 0
# HELP apitoken_cache_dropped_fills_total Records found by a lookup and not kept, because their token was invalidated meanwhile.
# TYPE apitoken_cache_dropped_fills_total counter
apitoken_cache_dropped_fills_total 0
# HELP apitoken_bus_up 1 while the cache bus listens, 0 while it connects or is disconnected.
# TYPE apitoken_bus_up gauge
apitoken_bus_up 1
# HELP apitoken_bus_state_age_seconds How long the cache bus has been in its current state (see apitoken_bus_up).
# TYPE apitoken_bus_state_age_seconds gauge
apitoken_bus_state_age_seconds 2
# HELP apitoken_bus_last_message_age_seconds How long ago the last message arrived on the cache bus.
# TYPE apitoken_bus_last_message_age_seconds gauge
apitoken_bus_last_message_age_seconds 2
# HELP apitoken_bus_messages_total Invalidations that arrived on the cache bus.
# TYPE apitoken_bus_messages_total counter
apitoken_bus_messages_total 1
# HELP apitoken_bus_resets_total Times the cache was emptied because the bus may have missed messages.
# TYPE apitoken_bus_resets_total counter
apitoken_bus_resets_total 1
# HELP apitoken_events_total Events of the Issuer other than verifications, by kind (issued, deleted, bus_disconnected...).
# TYPE apitoken_events_total counter
apitoken_events_total{kind="bus_connected"} 1
apitoken_events_total{kind="bus_may_have_missed"} 1
apitoken_events_total{kind="deleted"} 1
apitoken_events_total{kind="issued"} 2
# HELP apitoken_store_failures_total Store calls that failed, failing the Issuer method op (Verify answers them with 503).
# TYPE apitoken_store_failures_total counter
apitoken_store_failures_total{op="Verify"} 1
# HELP apitoken_last_uses_pending Last uses waiting to be written to the store.
# TYPE apitoken_last_uses_pending gauge
apitoken_last_uses_pending 0
# HELP apitoken_last_uses_written_total Last uses written to the store.
# TYPE apitoken_last_uses_written_total counter
apitoken_last_uses_written_total 0
# HELP apitoken_last_uses_failed_total Last uses whose write to the store failed.
# TYPE apitoken_last_uses_failed_total counter
apitoken_last_uses_failed_total 0
`
	assert.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(want),
		"apitoken_verifications_total", "apitoken_cache_entries", "apitoken_cache_max_entries", "apitoken_cache_hits_total",
		"apitoken_cache_misses_total", "apitoken_cache_evictions_total", "apitoken_cache_dropped_fills_total",
		"apitoken_bus_up", "apitoken_bus_state_age_seconds", "apitoken_bus_last_message_age_seconds", "apitoken_bus_messages_total",
		"apitoken_bus_resets_total", "apitoken_events_total", "apitoken_store_failures_total",
		"apitoken_last_uses_pending", "apitoken_last_uses_written_total", "apitoken_last_uses_failed_total"))

	// The histogram: each Verify took 3 µs, in the bucket up to 4 µs.
	const hist = `
# HELP apitoken_verify_duration_seconds How long Issuer.Verify took, by outcome (verified, refused, store_failed) and whether the cache answered.
# TYPE apitoken_verify_duration_seconds histogram
`
	var b strings.Builder
	b.WriteString(hist)
	for _, s := range []struct {
		outcome, cached string
		n               int
	}{
		{"refused", "false", 2}, {"refused", "true", 1}, {"store_failed", "false", 1}, {"store_failed", "true", 0},
		{"verified", "false", 1}, {"verified", "true", 1},
	} {
		for _, le := range []string{"1e-06", "4e-06", "1.6e-05", "6.4e-05", "0.000256", "0.001024", "0.004096", "0.016384", "0.065536", "0.262144", "1.048576", "+Inf"} {
			n := s.n
			if le == "1e-06" {
				n = 0
			}
			b.WriteString(`apitoken_verify_duration_seconds_bucket{cached="` + s.cached + `",outcome="` + s.outcome + `",le="` + le + `"} ` + itoa(n) + "\n")
		}
		b.WriteString(`apitoken_verify_duration_seconds_sum{cached="` + s.cached + `",outcome="` + s.outcome + `"} ` + sum(s.n) + "\n")
		b.WriteString(`apitoken_verify_duration_seconds_count{cached="` + s.cached + `",outcome="` + s.outcome + `"} ` + itoa(s.n) + "\n")
	}
	assert.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(b.String()), "apitoken_verify_duration_seconds"))

	// No label, name or help text holds an id or a secret.
	got, err := testutil.CollectAndFormat(metrics, expfmt.TypeTextPlain)
	require.NoError(t, err)
	for _, s := range []string{secret, secret[len(secret)-20:], other[len(other)-20:], tok.ID, otherTok.ID, "acme", "globex"} {
		assert.NotContains(t, string(got), s)
	}
}

func itoa(n int) string { return string(rune('0' + n)) }

func sum(n int) string {
	if n == 0 {
		return "0"
	}
	return itoa(3*n) + "e-06"
}

func TestCollectorBeforeWatch(t *testing.T) {
	metrics := apitokenprom.New()
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(metrics))
	n, err := testutil.GatherAndCount(reg, "apitoken_verifications_total")
	require.NoError(t, err)
	assert.Zero(t, n, "no Issuer, no Stats")

	// An Issuer without cache nor bus has no cache or bus metrics.
	iss, err := apitoken.NewIssuer(memstore.New(), apitoken.WithEvents(metrics.Event))
	require.NoError(t, err)
	t.Cleanup(func() { iss.Close() })
	metrics.Watch(iss)
	n, err = testutil.GatherAndCount(reg, "apitoken_verifications_total", "apitoken_cache_entries", "apitoken_bus_up")
	require.NoError(t, err)
	assert.Equal(t, 9, n, "one series per outcome, nothing of a cache or a bus")
}

func TestCollectorBusDown(t *testing.T) {
	metrics := apitokenprom.New()
	clk := &clock{t: time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)}
	bus := &reportingBus{lost: make(chan error, 1)}
	iss, err := apitoken.NewIssuer(memstore.New(), apitoken.WithClock(clk.Now), apitoken.WithEvents(metrics.Event),
		apitoken.WithCache(10, time.Minute), apitoken.WithCacheBus(bus))
	require.NoError(t, err)
	t.Cleanup(func() { iss.Close() })
	metrics.Watch(iss)
	require.Eventually(t, func() bool { return iss.Stats().Bus.State == apitoken.BusConnected }, time.Second, time.Millisecond)
	bus.lost <- errors.New("connection reset")
	require.Eventually(t, func() bool { return iss.Stats().Bus.State == apitoken.BusDisconnected }, time.Second, time.Millisecond)
	clk.Add(90 * time.Second) // longer than the cache's TTL: what to alert on
	assert.NoError(t, testutil.CollectAndCompare(metrics, strings.NewReader(`
# HELP apitoken_bus_up 1 while the cache bus listens, 0 while it connects or is disconnected.
# TYPE apitoken_bus_up gauge
apitoken_bus_up 0
# HELP apitoken_bus_state_age_seconds How long the cache bus has been in its current state (see apitoken_bus_up).
# TYPE apitoken_bus_state_age_seconds gauge
apitoken_bus_state_age_seconds 90
# HELP apitoken_events_total Events of the Issuer other than verifications, by kind (issued, deleted, bus_disconnected...).
# TYPE apitoken_events_total counter
apitoken_events_total{kind="bus_connected"} 1
apitoken_events_total{kind="bus_disconnected"} 1
apitoken_events_total{kind="bus_may_have_missed"} 1
`), "apitoken_bus_up", "apitoken_bus_state_age_seconds", "apitoken_events_total"))
}

// reportingBus is an apitoken.ReportingBus whose connection is lost when
// lost gets a value.
type reportingBus struct{ lost chan error }

func (b *reportingBus) Publish(context.Context, []byte) error { return nil }

func (b *reportingBus) Subscribe(ctx context.Context, deliver func([]byte)) error {
	return b.SubscribeReporting(ctx, deliver, func(error) {})
}

func (b *reportingBus) SubscribeReporting(ctx context.Context, deliver func([]byte), lost func(error)) error {
	deliver(nil)
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-b.lost:
			lost(err)
		}
	}
}
