// Package apitokenprom exposes an apitoken.Issuer to Prometheus: a
// prometheus.Collector that reads Issuer.Stats at every scrape
// (verifications by outcome, the cache, the cache bus, last uses) and
// counts the Issuer's events as they happen (a histogram of Verify's
// duration, store failures by operation, lifecycle and operational events
// by kind).
//
//	metrics := apitokenprom.New()
//	iss, err := apitoken.NewIssuer(store, apitoken.WithEvents(metrics.Event))
//	...
//	metrics.Watch(iss)
//	prometheus.MustRegister(metrics)
//	http.Handle("/metrics", promhttp.Handler())
//
// Labels never carry an account id, a token id nor anything secret:
// their values are the package's own words (outcomes, operations, kinds).
package apitokenprom
