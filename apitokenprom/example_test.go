package apitokenprom_test

import (
	"context"
	"fmt"
	"log"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"

	"github.com/apitoken-go/apitoken"
	"github.com/apitoken-go/apitoken/apitokenprom"
	"github.com/apitoken-go/apitoken/memstore"
)

// An app creates the Collector first, hands its Event method to the Issuer,
// and then gives it the Issuer, whose Stats it reads at each scrape. Serve
// the registry with promhttp.Handler (or promhttp.HandlerFor) on /metrics.
func Example() {
	metrics := apitokenprom.New()
	iss, err := apitoken.NewIssuer(memstore.New(), apitoken.WithEvents(metrics.Event))
	if err != nil {
		log.Fatal(err)
	}
	defer iss.Close()
	metrics.Watch(iss)
	reg := prometheus.NewRegistry()
	reg.MustRegister(metrics)

	ctx := context.Background()
	secret, _, _ := iss.Issue(ctx, apitoken.IssueParams{AccountID: "acme"})
	_, _ = iss.Verify(ctx, "acme", secret)
	_, _ = iss.Verify(ctx, "globex", secret)

	out, _ := testutil.CollectAndFormat(metrics, expfmt.TypeTextPlain, "apitoken_verifications_total")
	for line := range strings.Lines(string(out)) {
		if strings.Contains(line, " 1") {
			fmt.Print(line)
		}
	}
	// Output:
	// apitoken_verifications_total{outcome="verified"} 1
	// apitoken_verifications_total{outcome="wrong_account"} 1
}
