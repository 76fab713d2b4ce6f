package apitokenotel_test

import (
	"context"
	"fmt"
	"testing"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/apitoken-go/apitoken"
	"github.com/apitoken-go/apitoken/apitokenotel"
	"github.com/apitoken-go/apitoken/memstore"
)

// BenchmarkVerify measures Verify of a valid token among 1,000 beside the
// plain Verify (case=plain), on one store, in one run, without last uses:
// with the metrics only (case=metrics: the event hook into the SDK's
// meter), with spans
// that are not sampled (case=traced-unsampled: what most requests of a
// sampled service pay), and with every span sampled and exported to a
// discarding exporter (case=traced-sampled). Compare the ratios.
func BenchmarkVerify(b *testing.B) {
	ctx := context.Background()
	store := memstore.New()
	seed, err := apitoken.NewIssuer(store)
	if err != nil {
		b.Fatal(err)
	}
	type probe struct{ account, secret string }
	probes := make([]probe, 1000)
	for i := range probes {
		p := probe{account: fmt.Sprintf("acct_%d", i%100)}
		p.secret, _, err = seed.Issue(ctx, apitoken.IssueParams{AccountID: p.account, Scopes: []string{"tokens:read"}})
		if err != nil {
			b.Fatal(err)
		}
		probes[i] = p
	}
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(ctx)
	telemetry := func(sampler sdktrace.Sampler) *apitokenotel.Telemetry {
		tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sampler), sdktrace.WithSyncer(discard{}))
		tel, err := apitokenotel.New(apitokenotel.WithTracerProvider(tp), apitokenotel.WithMeterProvider(mp))
		if err != nil {
			b.Fatal(err)
		}
		return tel
	}
	metricsOnly := telemetry(sdktrace.NeverSample())
	unsampled := telemetry(sdktrace.NeverSample())
	sampled := telemetry(sdktrace.AlwaysSample())
	for _, c := range []struct {
		name  string
		store apitoken.Store
		opts  []apitoken.Option
	}{
		{"plain", store, nil},
		{"metrics", store, []apitoken.Option{apitoken.WithEvents(metricsOnly.Event)}},
		{"traced-unsampled", unsampled.Store(store), []apitoken.Option{apitoken.WithEvents(unsampled.Event), apitoken.WithTracer(unsampled)}},
		{"traced-sampled", sampled.Store(store), []apitoken.Option{apitoken.WithEvents(sampled.Event), apitoken.WithTracer(sampled)}},
	} {
		iss, err := apitoken.NewIssuer(c.store, append([]apitoken.Option{apitoken.WithLastUseInterval(0)}, c.opts...)...)
		if err != nil {
			b.Fatal(err)
		}
		b.Run("case="+c.name, func(b *testing.B) {
			var rm metricdata.ResourceMetrics
			i := 0
			for b.Loop() {
				p := probes[i%len(probes)]
				if i++; i%10_000 == 0 { // a collection now and then, as a periodic reader does
					if err := reader.Collect(ctx, &rm); err != nil {
						b.Fatal(err)
					}
				}
				if _, err := iss.Verify(ctx, p.account, p.secret); err != nil {
					b.Fatal(err)
				}
			}
		})
		_ = iss.Close()
	}
}

// discard is a span exporter that drops what it is given.
type discard struct{}

func (discard) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discard) Shutdown(context.Context) error                             { return nil }
