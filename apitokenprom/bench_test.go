package apitokenprom_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/apitoken-go/apitoken"
	"github.com/apitoken-go/apitoken/apitokenprom"
	"github.com/apitoken-go/apitoken/memstore"
)

// BenchmarkVerify measures Verify of a valid token among 1,000 with the
// Collector's hook (case=prom) beside the plain Verify (case=plain), on
// one store, in one run, without last uses: compare the ratio. A scrape of the registry runs
// every 10,000 verifications, so that the Stats snapshot is in the figure
// too, as a scrape every few seconds would be.
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
	metrics := apitokenprom.New()
	reg := prometheus.NewRegistry()
	reg.MustRegister(metrics)
	for _, c := range []struct {
		name string
		opts []apitoken.Option
	}{
		{"plain", nil},
		{"prom", []apitoken.Option{apitoken.WithEvents(metrics.Event)}},
	} {
		iss, err := apitoken.NewIssuer(store, append([]apitoken.Option{apitoken.WithLastUseInterval(0)}, c.opts...)...)
		if err != nil {
			b.Fatal(err)
		}
		if c.name == "prom" {
			metrics.Watch(iss)
		}
		b.Run("case="+c.name, func(b *testing.B) {
			i := 0
			for b.Loop() {
				p := probes[i%len(probes)]
				if i++; i%10_000 == 0 {
					if _, err := reg.Gather(); err != nil {
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
