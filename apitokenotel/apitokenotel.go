package apitokenotel

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/apitoken-go/apitoken"
)

// ScopeName is the instrumentation scope of the tracer and the meter.
const ScopeName = "github.com/apitoken-go/apitoken/apitokenotel"

// The attribute keys.
const (
	KeyOperation = attribute.Key("apitoken.operation")
	KeyOutcome   = attribute.Key("apitoken.outcome")
	KeyReason    = attribute.Key("apitoken.reason")
	KeyCached    = attribute.Key("apitoken.cached")
	KeyEvent     = attribute.Key("apitoken.event")
	KeyAccountID = attribute.Key("apitoken.account_id") // only with WithIdentity
	KeyTokenID   = attribute.Key("apitoken.token_id")   // only with WithIdentity
)

// DurationBuckets are the bounds, in seconds, of the histogram
// apitoken.verify.duration: from a microsecond (a cache hit) to a second
// (a struggling database), by factors of 4.
var DurationBuckets = []float64{1e-6, 4e-6, 1.6e-5, 6.4e-5, 2.56e-4, 1.024e-3, 4.096e-3, 1.6384e-2, 6.5536e-2, 0.262144, 1.048576}

// Telemetry traces and meters one Issuer: it is its apitoken.Tracer and its
// event hook (apitoken.WithEvents), wraps its Store for the store calls'
// spans, and reads its Stats (Watch). It is safe for concurrent use.
type Telemetry struct {
	tracer   trace.Tracer
	meter    metric.Meter
	identity bool
	now      func() time.Time // time.Now; the tests set another

	verifyDuration metric.Float64Histogram
	storeFailures  metric.Int64Counter
	events         metric.Int64Counter
	verifyAttrs    [3][2][]metric.RecordOption // [outcome][cached], built once: no allocation per Verify

	// The span name and start options of each Op, built once.
	spanNames [maxOp]string
	startOpts [maxOp][]trace.SpanStartOption

	verifications metric.Int64ObservableCounter
	hitRatio      metric.Float64ObservableGauge
	entries       metric.Int64ObservableGauge
	evictions     metric.Int64ObservableCounter
	busConnected  metric.Int64ObservableGauge
	busStateAge   metric.Float64ObservableGauge
	pending       metric.Int64ObservableGauge
	failed        metric.Int64ObservableCounter

	mu  sync.Mutex
	reg metric.Registration // of Watch's callback
}

// An Option configures New.
type Option func(*config)

type config struct {
	tp       trace.TracerProvider
	mp       metric.MeterProvider
	identity bool
}

// WithTracerProvider sets the provider of the tracer; otel's global one
// otherwise.
func WithTracerProvider(tp trace.TracerProvider) Option { return func(c *config) { c.tp = tp } }

// WithMeterProvider sets the provider of the meter; otel's global one
// otherwise.
func WithMeterProvider(mp metric.MeterProvider) Option { return func(c *config) { c.mp = mp } }

// WithIdentity adds the account id and the token id to spans
// (apitoken.account_id, apitoken.token_id), where the operation knows them.
// They are left out by default: identities are sensitive, and whoever
// reads the traces learns who called when. Metrics never get them (one
// series per account would be unbounded).
func WithIdentity() Option { return func(c *config) { c.identity = true } }

// The outcomes of apitoken.verify.duration.
const (
	outcomeVerified = iota
	outcomeRefused
	outcomeStoreFailed
)

var outcomeNames = [3]string{"verified", "refused", "store_failed"}

// New returns a Telemetry. Its error comes from the meter, when it cannot
// make an instrument.
func New(opts ...Option) (*Telemetry, error) {
	c := config{}
	for _, opt := range opts {
		opt(&c)
	}
	if c.tp == nil {
		c.tp = otel.GetTracerProvider()
	}
	if c.mp == nil {
		c.mp = otel.GetMeterProvider()
	}
	t := &Telemetry{
		tracer:   c.tp.Tracer(ScopeName),
		meter:    c.mp.Meter(ScopeName),
		identity: c.identity,
		now:      time.Now,
	}
	m := t.meter
	var errs []error
	collect := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	var err error
	t.verifyDuration, err = m.Float64Histogram("apitoken.verify.duration", metric.WithUnit("s"),
		metric.WithDescription("How long Issuer.Verify took."), metric.WithExplicitBucketBoundaries(DurationBuckets...))
	collect(err)
	t.storeFailures, err = m.Int64Counter("apitoken.store.failures", metric.WithUnit("{failure}"),
		metric.WithDescription("Store calls that failed, and the Issuer method with them."))
	collect(err)
	t.events, err = m.Int64Counter("apitoken.events", metric.WithUnit("{event}"),
		metric.WithDescription("Events of the Issuer other than verifications."))
	collect(err)
	t.verifications, err = m.Int64ObservableCounter("apitoken.verifications", metric.WithUnit("{verification}"),
		metric.WithDescription("Verifications since the Issuer started, by outcome."))
	collect(err)
	t.hitRatio, err = m.Float64ObservableGauge("apitoken.cache.hit_ratio", metric.WithUnit("1"),
		metric.WithDescription("Share of the verifications since the start that the cache answered."))
	collect(err)
	t.entries, err = m.Int64ObservableGauge("apitoken.cache.entries", metric.WithUnit("{entry}"),
		metric.WithDescription("Tokens held by the cache."))
	collect(err)
	t.evictions, err = m.Int64ObservableCounter("apitoken.cache.evictions", metric.WithUnit("{entry}"),
		metric.WithDescription("Entries pushed out of a full cache before their TTL."))
	collect(err)
	t.busConnected, err = m.Int64ObservableGauge("apitoken.bus.connected", metric.WithUnit("1"),
		metric.WithDescription("1 while the cache bus listens, 0 otherwise."))
	collect(err)
	t.busStateAge, err = m.Float64ObservableGauge("apitoken.bus.state_age", metric.WithUnit("s"),
		metric.WithDescription("How long the cache bus has been in its state (connected or not)."))
	collect(err)
	t.pending, err = m.Int64ObservableGauge("apitoken.last_uses.pending", metric.WithUnit("{use}"),
		metric.WithDescription("Last uses waiting to be written to the store."))
	collect(err)
	t.failed, err = m.Int64ObservableCounter("apitoken.last_uses.failed", metric.WithUnit("{use}"),
		metric.WithDescription("Last uses whose write to the store failed."))
	collect(err)
	if len(errs) > 0 {
		return nil, fmt.Errorf("apitokenotel: %w", errors.Join(errs...))
	}
	for o, name := range outcomeNames {
		for cached := range 2 {
			t.verifyAttrs[o][cached] = []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(KeyOutcome.String(name), KeyCached.Bool(cached == 1)))}
		}
	}
	for op := range apitoken.Op(maxOp) {
		t.spanNames[op] = "apitoken." + op.String()
		t.startOpts[op] = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindInternal), trace.WithAttributes(KeyOperation.String(op.String()))}
	}
	return t, nil
}

// Start starts the span of op: the apitoken.Tracer that WithTracer takes.
func (t *Telemetry) Start(ctx context.Context, op apitoken.Op) context.Context {
	if op >= maxOp { // an Op of a later apitoken
		ctx, _ = t.tracer.Start(ctx, "apitoken."+op.String(), trace.WithAttributes(KeyOperation.String(op.String())))
		return ctx
	}
	ctx, _ = t.tracer.Start(ctx, t.spanNames[op], t.startOpts[op]...)
	return ctx
}

// maxOp bounds the Ops whose span names and options are built once.
const maxOp = 64

// End ends the span of op. A store failure sets an error status; an answer
// (a refusal, not found, invalid input) does not, as it is no failure of
// the Issuer.
func (t *Telemetry) End(ctx context.Context, op apitoken.Op, err error) {
	span := trace.SpanFromContext(ctx)
	if err != nil && isFailure(err) {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// isFailure reports whether err, returned by an Issuer method, is a failure
// rather than an answer.
func isFailure(err error) bool {
	for _, answer := range []error{apitoken.ErrInvalidToken, apitoken.ErrInvalidInput, apitoken.ErrNotFound,
		apitoken.ErrLimitReached, apitoken.ErrClosed, errors.ErrUnsupported} {
		if errors.Is(err, answer) {
			return false
		}
	}
	return true
}

// Event is the hook to hand to apitoken.WithEvents: it records the
// metrics of each event and adds the outcome to the operation's span. A
// verification's duration is measured from the event's At, which the Issuer
// takes on its clock: with WithClock set to anything but the real time,
// apitoken.verify.duration means nothing.
func (t *Telemetry) Event(ctx context.Context, e apitoken.Event) {
	span := trace.SpanFromContext(ctx)
	switch {
	case e.Kind == apitoken.KindVerified:
		t.verifyDuration.Record(ctx, t.now().Sub(e.At).Seconds(), t.verifyAttrs[outcomeVerified][b2i(e.Cached)]...)
		if span.IsRecording() {
			span.SetAttributes(KeyOutcome.String("verified"), KeyCached.Bool(e.Cached))
		}
	case e.Kind == apitoken.KindRefused && e.Op == apitoken.OpVerify:
		t.verifyDuration.Record(ctx, t.now().Sub(e.At).Seconds(), t.verifyAttrs[outcomeRefused][b2i(e.Cached)]...)
		if span.IsRecording() {
			span.SetAttributes(KeyOutcome.String("refused"), KeyReason.String(label(e.Reason.String())), KeyCached.Bool(e.Cached))
		}
	case e.Kind == apitoken.KindStoreFailed:
		if e.Op == apitoken.OpVerify {
			t.verifyDuration.Record(ctx, t.now().Sub(e.At).Seconds(), t.verifyAttrs[outcomeStoreFailed][0]...)
			if span.IsRecording() {
				span.SetAttributes(KeyOutcome.String("store_failed"))
			}
		}
		t.storeFailures.Add(ctx, 1, metric.WithAttributes(KeyOperation.String(e.Op.String())))
	default:
		name := label(e.Kind.String())
		if e.Kind == apitoken.KindRefused { // a malformed request, before Verify
			name = "request_refused"
		}
		t.events.Add(ctx, 1, metric.WithAttributes(KeyEvent.String(name)))
	}
	if t.identity && span.IsRecording() && e.Op != apitoken.OpBackground {
		if e.AccountID != "" && e.Kind != apitoken.KindRefused { // a refused account id is whatever the caller sent
			span.SetAttributes(KeyAccountID.String(e.AccountID))
		}
		if e.TokenID != "" {
			span.SetAttributes(KeyTokenID.String(e.TokenID))
		}
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// label turns the package's words into an attribute value: "wrong account"
// becomes "wrong_account".
func label(s string) string { return strings.ReplaceAll(s, " ", "_") }

// Watch registers the callback that reads iss.Stats at each collection,
// for the observable instruments (verifications by outcome, the cache, the
// bus, the last uses). Calling it again replaces the Issuer.
func (t *Telemetry) Watch(iss *apitoken.Issuer) error {
	reg, err := t.meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		s := iss.Stats()
		v := s.Verifications
		o.ObserveInt64(t.verifications, int64(v.Verified), metric.WithAttributes(KeyOutcome.String("verified")))
		o.ObserveInt64(t.verifications, int64(v.StoreFailed), metric.WithAttributes(KeyOutcome.String("store_failed")))
		for _, r := range apitoken.Reasons() {
			o.ObserveInt64(t.verifications, int64(v.RefusedFor(r)), metric.WithAttributes(KeyOutcome.String(label(r.String()))))
		}
		if s.Cache.Size > 0 {
			o.ObserveFloat64(t.hitRatio, s.Cache.HitRatio())
			o.ObserveInt64(t.entries, int64(s.Cache.Entries))
			o.ObserveInt64(t.evictions, int64(s.Cache.Evictions))
		}
		if s.Bus.State != apitoken.BusNone {
			connected := int64(0)
			if s.Bus.State == apitoken.BusConnected {
				connected = 1
			}
			o.ObserveInt64(t.busConnected, connected)
			o.ObserveFloat64(t.busStateAge, s.Bus.StateAge.Seconds())
		}
		o.ObserveInt64(t.pending, int64(s.LastUses.Pending))
		o.ObserveInt64(t.failed, int64(s.LastUses.Failed))
		return nil
	}, t.verifications, t.hitRatio, t.entries, t.evictions, t.busConnected, t.busStateAge, t.pending, t.failed)
	if err != nil {
		return fmt.Errorf("apitokenotel: %w", err)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.reg != nil {
		_ = t.reg.Unregister()
	}
	t.reg = reg
	return nil
}

var _ apitoken.Tracer = (*Telemetry)(nil)
