package apitokenotel_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/apitoken-go/apitoken"
	"github.com/apitoken-go/apitoken/apitokenotel"
	"github.com/apitoken-go/apitoken/memstore"
)

// clock is a settable clock for WithClock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

// flakyStore is a memstore whose Lookup fails while down is set.
type flakyStore struct {
	*memstore.Store
	down atomic.Bool
}

var errDown = errors.New("connection refused")

func (s *flakyStore) Lookup(ctx context.Context, h apitoken.Hash) (apitoken.Record, error) {
	if s.down.Load() {
		return apitoken.Record{}, errDown
	}
	return s.Store.Lookup(ctx, h)
}

func (s *flakyStore) Unwrap() apitoken.Store { return s.Store }

// env is an Issuer traced and metered into the SDK's in-memory exporter and
// a manual reader.
type env struct {
	spans  *tracetest.InMemoryExporter
	reader *sdkmetric.ManualReader
	store  *flakyStore
	iss    *apitoken.Issuer
	clk    *clock
}

func newEnv(t *testing.T, opts ...apitokenotel.Option) *env {
	e := &env{spans: tracetest.NewInMemoryExporter(), reader: sdkmetric.NewManualReader(),
		store: &flakyStore{Store: memstore.New()}, clk: &clock{t: time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)}}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(e.spans))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(e.reader))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()); _ = mp.Shutdown(context.Background()) })
	tel, err := apitokenotel.New(append([]apitokenotel.Option{apitokenotel.WithTracerProvider(tp), apitokenotel.WithMeterProvider(mp)}, opts...)...)
	require.NoError(t, err)
	// Every Verify takes 3 µs, as the Telemetry sees it.
	apitokenotel.SetNow(tel, func() time.Time { return e.clk.Now().Add(3 * time.Microsecond) })
	e.iss, err = apitoken.NewIssuer(tel.Store(e.store), apitoken.WithTracer(tel), apitoken.WithEvents(tel.Event),
		apitoken.WithClock(e.clk.Now), apitoken.WithCache(100, time.Hour), apitoken.WithLastUseInterval(0),
		apitoken.WithMaxTokensPerAccount(10)) // a capability found past the wrapper
	require.NoError(t, err)
	t.Cleanup(func() { e.iss.Close() })
	require.NoError(t, tel.Watch(e.iss))
	return e
}

// span is what a test compares of a span: its name, its parent's name and
// its attributes.
type span struct {
	name, parent string
	attrs        map[attribute.Key]string
	status       codes.Code
}

func (e *env) takeSpans() []span {
	stubs := e.spans.GetSpans()
	e.spans.Reset()
	names := map[string]string{}
	for _, s := range stubs {
		names[s.SpanContext.SpanID().String()] = s.Name
	}
	var out []span
	for _, s := range stubs {
		sp := span{name: s.Name, parent: names[s.Parent.SpanID().String()], attrs: map[attribute.Key]string{}, status: s.Status.Code}
		for _, kv := range s.Attributes {
			sp.attrs[kv.Key] = kv.Value.String()
		}
		out = append(out, sp)
	}
	return out
}

func op(name string) map[attribute.Key]string {
	return map[attribute.Key]string{apitokenotel.KeyOperation: name}
}

func with(m map[attribute.Key]string, kv ...string) map[attribute.Key]string {
	for i := 0; i < len(kv); i += 2 {
		m[attribute.Key(kv[i])] = kv[i+1]
	}
	return m
}

func TestSpans(t *testing.T) {
	ctx := t.Context()
	e := newEnv(t)
	secret, tok, err := e.iss.Issue(ctx, apitoken.IssueParams{AccountID: "acme"})
	require.NoError(t, err)
	noAttrs := map[attribute.Key]string{}
	assert.Equal(t, []span{{name: "apitoken.Issue", attrs: op("Issue")}}, e.takeSpans(),
		"CreateLimited is a capability, found past the wrapper: within Issue's span, not a span of its own")

	_, err = e.iss.Verify(ctx, "acme", secret)
	require.NoError(t, err)
	_, err = e.iss.Verify(ctx, "acme", secret)
	require.NoError(t, err)
	_, err = e.iss.Verify(ctx, "globex", secret)
	require.Equal(t, apitoken.ErrInvalidToken, err)
	assert.Equal(t, []span{
		{name: "apitoken.store.Lookup", parent: "apitoken.Verify", attrs: noAttrs},
		{name: "apitoken.Verify", attrs: with(op("Verify"), "apitoken.outcome", "verified", "apitoken.cached", "false")},
		{name: "apitoken.Verify", attrs: with(op("Verify"), "apitoken.outcome", "verified", "apitoken.cached", "true")},
		{name: "apitoken.store.Lookup", parent: "apitoken.Verify", attrs: noAttrs}, // a refusal costs a live token what it costs an unknown one
		{name: "apitoken.Verify", attrs: with(op("Verify"), "apitoken.outcome", "refused", "apitoken.reason", "wrong_account", "apitoken.cached", "false")},
	}, e.takeSpans())

	_, successor, err := e.iss.Rotate(ctx, "acme", tok.ID, 0)
	require.NoError(t, err)
	spans := e.takeSpans()
	require.NotEmpty(t, spans)
	assert.Equal(t, span{name: "apitoken.Rotate", attrs: op("Rotate")}, spans[len(spans)-1])
	var calls []string
	for _, s := range spans[:len(spans)-1] {
		assert.Equal(t, "apitoken.Rotate", s.parent, "%s runs within Rotate's span", s.name)
		calls = append(calls, s.name)
	}
	assert.Subset(t, calls, []string{"apitoken.store.List", "apitoken.store.Create", "apitoken.store.Delete"},
		"Rotate reads the old token, creates its successor and deletes it (a grace of 0)")
	require.NoError(t, e.iss.Delete(ctx, "acme", successor.ID))
	assert.Equal(t, []span{
		{name: "apitoken.store.Delete", parent: "apitoken.Delete", attrs: noAttrs},
		{name: "apitoken.Delete", attrs: op("Delete")},
	}, e.takeSpans())

	t.Run("an unknown id is no error", func(t *testing.T) {
		require.ErrorIs(t, e.iss.Delete(ctx, "acme", successor.ID), apitoken.ErrNotFound)
		for _, s := range e.takeSpans() {
			assert.Equal(t, codes.Unset, s.status, s.name)
		}
	})

	t.Run("a store failure is", func(t *testing.T) {
		other, _, err := e.iss.Issue(ctx, apitoken.IssueParams{AccountID: "acme"})
		require.NoError(t, err)
		e.takeSpans()
		e.store.down.Store(true)
		defer e.store.down.Store(false)
		_, err = e.iss.Verify(ctx, "acme", other)
		require.ErrorIs(t, err, errDown)
		stubs := e.spans.GetSpans()
		require.Len(t, stubs, 2)
		for _, s := range stubs {
			assert.Equal(t, codes.Error, s.Status.Code, s.Name)
			assert.Contains(t, s.Status.Description, "connection refused")
		}
		assert.Equal(t, "store_failed", e.takeSpans()[1].attrs[apitokenotel.KeyOutcome])
	})
}

func TestSpansWithIdentity(t *testing.T) {
	ctx := t.Context()
	e := newEnv(t, apitokenotel.WithIdentity())
	secret, tok, err := e.iss.Issue(ctx, apitoken.IssueParams{AccountID: "acme"})
	require.NoError(t, err)
	_, err = e.iss.Verify(ctx, "acme", secret)
	require.NoError(t, err)
	_, _ = e.iss.Verify(ctx, "globex\n", secret)
	spans := e.takeSpans()
	require.Len(t, spans, 5)
	assert.Equal(t, "acme", spans[0].attrs[apitokenotel.KeyAccountID])
	assert.Equal(t, tok.ID, spans[0].attrs[apitokenotel.KeyTokenID])
	assert.Equal(t, "apitoken.Verify", spans[2].name)
	assert.Equal(t, "acme", spans[2].attrs[apitokenotel.KeyAccountID])
	assert.Equal(t, tok.ID, spans[2].attrs[apitokenotel.KeyTokenID])
	assert.Equal(t, "apitoken.Verify", spans[4].name)
	assert.NotContains(t, spans[4].attrs, apitokenotel.KeyAccountID, "a refused request's account id is whatever the caller sent")
	assert.Equal(t, tok.ID, spans[4].attrs[apitokenotel.KeyTokenID])
}

// metrics returns the data of the collected metrics by name.
func (e *env) metrics(t *testing.T) map[string]metricdata.Aggregation {
	var rm metricdata.ResourceMetrics
	require.NoError(t, e.reader.Collect(t.Context(), &rm))
	out := map[string]metricdata.Aggregation{}
	for _, sm := range rm.ScopeMetrics {
		assert.Equal(t, apitokenotel.ScopeName, sm.Scope.Name)
		for _, m := range sm.Metrics {
			out[m.Name] = m.Data
		}
	}
	return out
}

func attrsOf(s attribute.Set) string {
	var out string
	for _, kv := range s.ToSlice() {
		out += string(kv.Key) + "=" + kv.Value.String() + " "
	}
	return out
}

func TestMetrics(t *testing.T) {
	ctx := t.Context()
	e := newEnv(t)
	secret, tok, err := e.iss.Issue(ctx, apitoken.IssueParams{AccountID: "acme"})
	require.NoError(t, err)
	other, _, err := e.iss.Issue(ctx, apitoken.IssueParams{AccountID: "acme"})
	require.NoError(t, err)
	for range 3 {
		_, err = e.iss.Verify(ctx, "acme", secret)
		require.NoError(t, err)
	}
	_, _ = e.iss.Verify(ctx, "globex", secret)
	_, _ = e.iss.Verify(ctx, "acme", "nope")
	e.store.down.Store(true)
	_, err = e.iss.Verify(ctx, "acme", other)
	require.Error(t, err)
	e.store.down.Store(false)
	require.NoError(t, e.iss.Delete(ctx, "acme", tok.ID))

	m := e.metrics(t)
	hist, ok := m["apitoken.verify.duration"].(metricdata.Histogram[float64])
	require.True(t, ok, "apitoken.verify.duration is a histogram")
	got := map[string]uint64{}
	for _, dp := range hist.DataPoints {
		got[attrsOf(dp.Attributes)] = dp.Count
		assert.InDelta(t, 3e-6*float64(dp.Count), dp.Sum, 1e-12, "each Verify took 3 µs")
		assert.Equal(t, apitokenotel.DurationBuckets, dp.Bounds)
	}
	assert.Equal(t, map[string]uint64{
		"apitoken.cached=false apitoken.outcome=verified ":     1,
		"apitoken.cached=true apitoken.outcome=verified ":      2,
		"apitoken.cached=false apitoken.outcome=refused ":      2,
		"apitoken.cached=false apitoken.outcome=store_failed ": 1,
	}, got)

	sums := func(name string) map[string]int64 {
		t.Helper()
		s, ok := m[name].(metricdata.Sum[int64])
		require.True(t, ok, "%s is a sum", name)
		out := map[string]int64{}
		for _, dp := range s.DataPoints {
			out[attrsOf(dp.Attributes)] = dp.Value
		}
		return out
	}
	assert.Equal(t, map[string]int64{
		"apitoken.outcome=verified ": 3, "apitoken.outcome=store_failed ": 1, "apitoken.outcome=wrong_account ": 1, "apitoken.outcome=malformed ": 1,
		"apitoken.outcome=unknown ": 0, "apitoken.outcome=expired ": 0, "apitoken.outcome=older_than_max_lifetime ": 0, "apitoken.outcome=disabled ": 0, "apitoken.outcome=address_not_allowed ": 0,
	}, sums("apitoken.verifications"))
	assert.Equal(t, map[string]int64{"apitoken.operation=Verify ": 1}, sums("apitoken.store.failures"))
	assert.Equal(t, map[string]int64{"apitoken.event=issued ": 2, "apitoken.event=deleted ": 1}, sums("apitoken.events"))

	ratio, ok := m["apitoken.cache.hit_ratio"].(metricdata.Gauge[float64])
	require.True(t, ok)
	require.Len(t, ratio.DataPoints, 1)
	assert.InDelta(t, 2.0/5, ratio.DataPoints[0].Value, 1e-9, "2 of the 5 verifications that reached the cache were hits")
	entries, ok := m["apitoken.cache.entries"].(metricdata.Gauge[int64])
	require.True(t, ok)
	assert.Equal(t, int64(0), entries.DataPoints[0].Value, "the one cached token was deleted")
	assert.NotContains(t, m, "apitoken.bus.connected", "no bus, no bus metrics")

	// Nothing of a secret or an identity anywhere.
	all := fmt.Sprintf("%+v", m)
	for _, s := range []string{secret[len(secret)-20:], other[len(other)-20:], tok.ID, "acme", "globex"} {
		assert.NotContains(t, all, s)
	}
}

func TestNoSecretInSpans(t *testing.T) {
	ctx := t.Context()
	e := newEnv(t)
	secret, tok, err := e.iss.Issue(ctx, apitoken.IssueParams{AccountID: "acme"})
	require.NoError(t, err)
	_, _ = e.iss.Verify(ctx, "acme", secret)
	_, _ = e.iss.Verify(ctx, "globex", secret)
	_, _ = e.iss.Verify(ctx, "acme", secret[:len(secret)-1])
	e.store.down.Store(true)
	_, _ = e.iss.Verify(ctx, "acme", secret+"x")
	all := fmt.Sprintf("%+v", e.spans.GetSpans())
	assert.NotContains(t, all, secret[len(secret)-20:])
	assert.NotContains(t, all, tok.ID, "no identity without WithIdentity")
	assert.NotContains(t, all, "acme")
}

func TestBusMetrics(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	tel, err := apitokenotel.New(apitokenotel.WithMeterProvider(mp))
	require.NoError(t, err)
	iss, err := apitoken.NewIssuer(memstore.New(), apitoken.WithCache(10, time.Minute), apitoken.WithCacheBus(silentBus{}),
		apitoken.WithEvents(tel.Event))
	require.NoError(t, err)
	t.Cleanup(func() { iss.Close() })
	require.NoError(t, tel.Watch(iss))
	require.Eventually(t, func() bool { return iss.Stats().Bus.State == apitoken.BusConnected }, time.Second, time.Millisecond)
	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(t.Context(), &rm))
	for _, m := range rm.ScopeMetrics[0].Metrics {
		if m.Name == "apitoken.bus.connected" {
			assert.Equal(t, int64(1), m.Data.(metricdata.Gauge[int64]).DataPoints[0].Value)
			return
		}
	}
	t.Fatal("no apitoken.bus.connected")
}

// silentBus listens and carries nothing.
type silentBus struct{}

func (silentBus) Publish(context.Context, []byte) error { return nil }
func (silentBus) Subscribe(ctx context.Context, deliver func([]byte)) error {
	deliver(nil)
	<-ctx.Done()
	return nil
}
