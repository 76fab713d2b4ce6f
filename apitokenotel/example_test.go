package apitokenotel_test

import (
	"context"
	"fmt"
	"log"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/apitoken-go/apitoken"
	"github.com/apitoken-go/apitoken/apitokenotel"
	"github.com/apitoken-go/apitoken/memstore"
)

// The Telemetry wraps the store (for the store calls' spans), is the
// Issuer's tracer and event hook, and reads its Stats. Here spans go to an
// in-memory exporter; an app sets up its own providers (or the global
// ones, which New uses by default).
func Example() {
	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	defer tp.Shutdown(context.Background())

	tel, err := apitokenotel.New(apitokenotel.WithTracerProvider(tp))
	if err != nil {
		log.Fatal(err)
	}
	iss, err := apitoken.NewIssuer(tel.Store(memstore.New()),
		apitoken.WithTracer(tel), apitoken.WithEvents(tel.Event), apitoken.WithLastUseInterval(0))
	if err != nil {
		log.Fatal(err)
	}
	defer iss.Close()
	if err := tel.Watch(iss); err != nil {
		log.Fatal(err)
	}

	ctx := context.Background()
	secret, _, _ := iss.Issue(ctx, apitoken.IssueParams{AccountID: "acme"})
	_, _ = iss.Verify(ctx, "globex", secret)
	for _, s := range spans.GetSpans() {
		fmt.Println(s.Name, s.Attributes)
	}
	// Output:
	// apitoken.store.Create []
	// apitoken.Issue [{"apitoken.operation":"Issue"}]
	// apitoken.store.Lookup []
	// apitoken.Verify [{"apitoken.operation":"Verify"} {"apitoken.outcome":"refused"} {"apitoken.reason":"wrong_account"} {"apitoken.cached":false}]
}
