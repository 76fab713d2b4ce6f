// Package apitokenotel traces and meters an apitoken.Issuer with
// OpenTelemetry. It uses the OpenTelemetry API only: the app chooses the
// SDK, the exporters and the providers (the global ones by default).
//
//	tel, err := apitokenotel.New()
//	iss, err := apitoken.NewIssuer(tel.Store(store),
//		apitoken.WithTracer(tel), apitoken.WithEvents(tel.Event))
//	err = tel.Watch(iss)
//
// Spans: one per Issuer method (apitoken.Issue, apitoken.Verify,
// apitoken.Rotate, apitoken.Delete, ...), with the store calls it makes as
// its children (apitoken.store.Lookup, ...) when the store is wrapped with
// Store. A refused verification ends with the attributes apitoken.outcome
// "refused" and apitoken.reason; a store failure with an error status.
//
// Metrics, named after the semantic conventions (dots, units in UCUM):
//
//	apitoken.verify.duration   histogram, s     apitoken.outcome (verified, refused, store_failed), apitoken.cached
//	apitoken.verifications     counter          apitoken.outcome (verified, store_failed, or the reason of a refusal)
//	apitoken.store.failures    counter          apitoken.operation
//	apitoken.events            counter          apitoken.event (issued, deleted, bus_disconnected, ...)
//	apitoken.cache.hit_ratio   gauge, 1
//	apitoken.cache.entries     gauge
//	apitoken.cache.evictions   counter
//	apitoken.bus.connected     gauge, 1 or 0
//	apitoken.bus.state_age     gauge, s         how long the bus has been connected, or not
//	apitoken.last_uses.pending gauge
//	apitoken.last_uses.failed  counter
//
// The counters of verifications, the cache, the bus and the last uses are
// read from Issuer.Stats at each collection, once Watch gave the Issuer.
//
// No attribute holds a secret. Account and token ids are left out by
// default (they are identities, and each makes a series or a span
// attribute of high cardinality); WithIdentity adds them to spans, never
// to metrics.
package apitokenotel
