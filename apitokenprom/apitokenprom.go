package apitokenprom

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/apitoken-go/apitoken"
)

// DurationBuckets are the bounds, in seconds, of the histogram of Verify's
// duration: from a microsecond (a cache hit) to a second (a struggling
// database), by factors of 4.
var DurationBuckets = prometheus.ExponentialBuckets(1e-6, 4, 11)

// A Collector is a prometheus.Collector of one Issuer: hand its Event
// method to apitoken.WithEvents, then give it the Issuer with Watch, and
// register it. It is safe for concurrent use.
type Collector struct {
	now func() time.Time // time.Now; the tests set another

	verifyDuration *prometheus.HistogramVec
	verifyObs      [numOutcomes][2]prometheus.Observer // [outcome][cached]
	storeFailures  *prometheus.CounterVec
	events         *prometheus.CounterVec

	mu  sync.RWMutex
	iss *apitoken.Issuer // nil until Watch

	verifications, cacheEntries, cacheMax, cacheHits, cacheMisses, cacheDropped, cacheEvictions,
	busUp, busStateAge, busLastMessageAge, busMessages, busResets,
	lastUsesPending, lastUsesWritten, lastUsesFailed *prometheus.Desc
}

// The outcomes of the duration histogram.
const (
	outcomeVerified = iota
	outcomeRefused
	outcomeStoreFailed
	numOutcomes
)

var outcomeNames = [numOutcomes]string{"verified", "refused", "store_failed"}

// New returns a Collector, without an Issuer yet (see Watch).
func New() *Collector {
	c := &Collector{
		now: time.Now,
		verifyDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "apitoken_verify_duration_seconds",
			Help:    "How long Issuer.Verify took, by outcome (verified, refused, store_failed) and whether the cache answered.",
			Buckets: DurationBuckets,
		}, []string{"outcome", "cached"}),
		storeFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "apitoken_store_failures_total",
			Help: "Store calls that failed, failing the Issuer method op (Verify answers them with 503).",
		}, []string{"op"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "apitoken_events_total",
			Help: "Events of the Issuer other than verifications, by kind (issued, deleted, bus_disconnected...).",
		}, []string{"kind"}),
		verifications:     prometheus.NewDesc("apitoken_verifications_total", "Verifications since the Issuer started, by outcome: verified, store_failed, or the reason of a refusal.", []string{"outcome"}, nil),
		cacheEntries:      prometheus.NewDesc("apitoken_cache_entries", "Tokens held by the cache.", nil, nil),
		cacheMax:          prometheus.NewDesc("apitoken_cache_max_entries", "The most tokens the cache holds.", nil, nil),
		cacheHits:         prometheus.NewDesc("apitoken_cache_hits_total", "Verifications the cache answered.", nil, nil),
		cacheMisses:       prometheus.NewDesc("apitoken_cache_misses_total", "Verifications that asked the store.", nil, nil),
		cacheDropped:      prometheus.NewDesc("apitoken_cache_dropped_fills_total", "Records found by a lookup and not kept, because their token was invalidated meanwhile.", nil, nil),
		cacheEvictions:    prometheus.NewDesc("apitoken_cache_evictions_total", "Entries pushed out of a full cache before their TTL.", nil, nil),
		busUp:             prometheus.NewDesc("apitoken_bus_up", "1 while the cache bus listens, 0 while it connects or is disconnected.", nil, nil),
		busStateAge:       prometheus.NewDesc("apitoken_bus_state_age_seconds", "How long the cache bus has been in its current state (see apitoken_bus_up).", nil, nil),
		busLastMessageAge: prometheus.NewDesc("apitoken_bus_last_message_age_seconds", "How long ago the last message arrived on the cache bus.", nil, nil),
		busMessages:       prometheus.NewDesc("apitoken_bus_messages_total", "Invalidations that arrived on the cache bus.", nil, nil),
		busResets:         prometheus.NewDesc("apitoken_bus_resets_total", "Times the cache was emptied because the bus may have missed messages.", nil, nil),
		lastUsesPending:   prometheus.NewDesc("apitoken_last_uses_pending", "Last uses waiting to be written to the store.", nil, nil),
		lastUsesWritten:   prometheus.NewDesc("apitoken_last_uses_written_total", "Last uses written to the store.", nil, nil),
		lastUsesFailed:    prometheus.NewDesc("apitoken_last_uses_failed_total", "Last uses whose write to the store failed.", nil, nil),
	}
	for o := range numOutcomes {
		c.verifyObs[o][0] = c.verifyDuration.WithLabelValues(outcomeNames[o], "false")
		c.verifyObs[o][1] = c.verifyDuration.WithLabelValues(outcomeNames[o], "true")
	}
	return c
}

// Watch gives the Collector the Issuer whose Stats it reads at each scrape.
// Until then, and for an Issuer watched no longer, only the events'
// metrics are collected. Calling it again replaces the Issuer.
func (c *Collector) Watch(iss *apitoken.Issuer) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.iss = iss
}

// Event is the hook to hand to apitoken.WithEvents. A verification's
// duration is measured from the event's At, which the Issuer takes on its
// clock: with WithClock set to anything but the real time, the histogram
// means nothing.
func (c *Collector) Event(_ context.Context, e apitoken.Event) {
	switch e.Kind {
	case apitoken.KindVerified:
		c.verifyObs[outcomeVerified][b2i(e.Cached)].Observe(c.now().Sub(e.At).Seconds())
	case apitoken.KindRefused:
		if e.Op == apitoken.OpVerify {
			c.verifyObs[outcomeRefused][b2i(e.Cached)].Observe(c.now().Sub(e.At).Seconds())
			return
		}
		c.events.WithLabelValues("request_refused").Inc()
	case apitoken.KindStoreFailed:
		if e.Op == apitoken.OpVerify {
			c.verifyObs[outcomeStoreFailed][0].Observe(c.now().Sub(e.At).Seconds())
		}
		c.storeFailures.WithLabelValues(e.Op.String()).Inc()
	default:
		c.events.WithLabelValues(label(e.Kind.String())).Inc()
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// label turns the package's words into a label value: "wrong account"
// becomes "wrong_account".
func label(s string) string { return strings.ReplaceAll(s, " ", "_") }

// Describe sends the descriptions of every metric of the Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	c.verifyDuration.Describe(ch)
	c.storeFailures.Describe(ch)
	c.events.Describe(ch)
	for _, d := range []*prometheus.Desc{c.verifications, c.cacheEntries, c.cacheMax, c.cacheHits, c.cacheMisses, c.cacheDropped, c.cacheEvictions,
		c.busUp, c.busStateAge, c.busLastMessageAge, c.busMessages, c.busResets, c.lastUsesPending, c.lastUsesWritten, c.lastUsesFailed} {
		ch <- d
	}
}

// Collect sends the events' metrics and, once Watch gave it an Issuer, the
// Issuer's Stats: the cache's metrics only with a cache, the bus's only
// with a bus.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	c.verifyDuration.Collect(ch)
	c.storeFailures.Collect(ch)
	c.events.Collect(ch)
	c.mu.RLock()
	iss := c.iss
	c.mu.RUnlock()
	if iss == nil {
		return
	}
	s := iss.Stats()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v)
	}
	v := s.Verifications
	counter(c.verifications, v.Verified, "verified")
	counter(c.verifications, v.StoreFailed, "store_failed")
	for _, r := range apitoken.Reasons() {
		counter(c.verifications, v.RefusedFor(r), label(r.String()))
	}
	if s.Cache.Size > 0 {
		gauge(c.cacheEntries, float64(s.Cache.Entries))
		gauge(c.cacheMax, float64(s.Cache.Size))
		counter(c.cacheHits, s.Cache.Hits)
		counter(c.cacheMisses, s.Cache.Misses)
		counter(c.cacheDropped, s.Cache.DroppedFills)
		counter(c.cacheEvictions, s.Cache.Evictions)
	}
	if b := s.Bus; b.State != apitoken.BusNone {
		up := 0.0
		if b.State == apitoken.BusConnected {
			up = 1
		}
		gauge(c.busUp, up)
		gauge(c.busStateAge, b.StateAge.Seconds())
		if !b.LastMessage.IsZero() {
			gauge(c.busLastMessageAge, b.LastMessageAge.Seconds())
		}
		counter(c.busMessages, b.Messages)
		counter(c.busResets, b.Resets)
	}
	gauge(c.lastUsesPending, float64(s.LastUses.Pending))
	counter(c.lastUsesWritten, s.LastUses.Written)
	counter(c.lastUsesFailed, s.LastUses.Failed)
}

var _ prometheus.Collector = (*Collector)(nil)
