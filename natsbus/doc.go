// Package natsbus is an apitoken.Bus over core NATS: the Issuers of several
// instances of an app that share a token store tell each other, through
// NATS, which cached tokens to forget, so that a token deleted through one
// instance stops verifying on all of them at once instead of when their
// cache entries reach the TTL of apitoken.WithCache.
//
// It uses the app's connection (github.com/nats-io/nats.go) and one subject
// on it: no JetStream, no stream, no consumer. It is its own module; apps
// that do not use it do not pull nats.go in.
//
// # Wiring
//
// Each instance makes one Bus on its connection and gives it to its
// Issuer:
//
//	nc, err := nats.Connect("nats://nats.internal:4222", nats.MaxReconnects(-1))
//	...
//	defer nc.Close() // after the Bus's Close
//	bus, err := natsbus.New(nc)
//	...
//	defer bus.Close() // after the Issuer's Close
//	iss, err := apitoken.NewIssuer(store,
//		apitoken.WithCache(100_000, time.Minute),
//		apitoken.WithCacheBus(bus),
//	)
//
// # How it works
//
// Publish publishes on the subject and makes a round trip to the server
// (a flush), so that it returns once the server has the message. Subscribe
// subscribes to the subject, makes a round trip so that the server has the
// subscription, and tells the Issuer that messages may have been missed
// (which empties its cache): when it starts listening, and after each
// reconnection of the connection, which subscribes again on its own (core
// NATS keeps nothing for a subscriber that is away). It does not empty the
// cache when the connection is lost: the cache keeps serving the tokens it
// holds, and a token deleted through another instance meanwhile stays in
// this one's cache for at most its TTL.
//
// The Bus installs no handler on the connection: nats.go has one
// ReconnectHandler per connection, and setting it would replace the app's.
// It listens to the connection's state with nc.StatusChanged, which takes
// any number of listeners, so the app's nats.ReconnectHandler,
// nats.DisconnectErrHandler, nats.ClosedHandler and nats.ErrorHandler stay
// as the app set them. The connection's options decide how soon a lost
// connection is found (a closed one at once; a silent one after
// nats.PingInterval times nats.MaxPingsOutstanding, 2 minutes times 2 by
// default) and how it reconnects (nats.ReconnectWait, 2 s by default).
// Make the connection with nats.MaxReconnects(-1): after the default 60
// failed attempts nats.go closes it for good, and Subscribe returns an
// error each time the Issuer calls it again, until the app makes a new
// connection and a new Bus.
//
// On a NATS cluster, the other servers learn of a new subscription a few
// milliseconds after the one it was made on: Subscribe empties the cache a
// second time 2 seconds after each subscription, for what was published
// through them meanwhile. Messages the connection drops because Subscribe
// did not keep up (more than 4096 waiting) also empty the cache.
//
// A message on the subject that Publish did not send (empty, or over
// MaxMessageSize) is taken as "messages may have been missed": an operator
// can empty every instance's cache with
//
//	nats pub apitoken.invalidate ""
//
// Any client allowed to publish on the subject can do that (restrict it
// with the server's permissions if it matters); messages only ever make a
// cache forget, so the worst such a client can do is empty the caches. The
// connection's user needs publish and subscribe permission on the subject.
//
// Every instance must use the same subject (WithSubject) on the same NATS
// system; apps that share NATS but not their tokens use different subjects.
//
// Errors and logs say what failed and never hold a credential: nats.go's
// errors name neither the user nor the password, and the Bus adds only
// what it was doing.
package natsbus
