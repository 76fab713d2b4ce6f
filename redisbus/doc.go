// Package redisbus is an apitoken.Bus over Redis pub/sub: the Issuers of
// several instances of an app that share a token store tell each other,
// through Redis, which cached tokens to forget, so that a token deleted
// through one instance stops verifying on all of them at once instead of
// when their cache entries reach the TTL of apitoken.WithCache.
//
// It uses the app's go-redis client (github.com/redis/go-redis/v9) and
// nothing in Redis but one pub/sub channel: no key is written. It is its own
// module; apps that do not use it do not pull go-redis in.
//
// # Wiring
//
// Each instance makes one Bus and gives it to its Issuer:
//
//	rdb := redis.NewClient(&redis.Options{Addr: "redis.internal:6379"})
//	defer rdb.Close() // after the Bus's Close
//	bus, err := redisbus.New(rdb)
//	...
//	defer bus.Close() // after the Issuer's Close
//	iss, err := apitoken.NewIssuer(store,
//		apitoken.WithCache(100_000, time.Minute),
//		apitoken.WithCacheBus(bus),
//	)
//
// # How it works
//
// Publish runs PUBLISH on the channel through the client. Subscribe holds a
// pub/sub connection of its own, SUBSCRIBEs to the channel and reads what
// arrives. Redis confirms each subscription with a message on that
// connection; Subscribe tells the Issuer that messages may have been missed
// (which empties its cache) on every confirmation: the first one, when it
// starts listening, and each later one, which means that the connection was
// made again, by Subscribe or by go-redis on its own, and that what was
// published in between is lost (Redis pub/sub keeps nothing for a
// subscriber that is away). It does not empty the cache when the connection
// is lost: the cache keeps serving the tokens it holds, and a token deleted
// through another instance meanwhile stays in this one's cache for at most
// its TTL.
//
// A lost connection is found at once when it is closed (Redis restarted or
// killed, the connection killed); one that goes silent is pinged after 30
// seconds without traffic and taken as lost 30 seconds later. Subscribe then
// logs it (WithLogger), connects again with a backoff from 100 ms to 5 s
// until its context ends, and empties the cache once subscribed again.
//
// Redis delivers a message to every connection subscribed to the channel
// when PUBLISH runs, across a Redis Cluster as well. Payloads are bytes,
// sent as they are. A message on the channel that Publish did not send
// (empty, or over MaxMessageSize) is taken as "messages may have been
// missed": an operator can empty every instance's cache with
//
//	redis-cli PUBLISH apitoken:invalidate ""
//
// Any client that may PUBLISH on the channel can do that (restrict it with
// an ACL channel pattern if it matters); messages only ever make a cache
// forget, so the worst such a client can do is empty the caches.
//
// Every instance must use the same channel (WithChannel) on the same Redis;
// apps that share a Redis but not their tokens use different channels.
//
// Errors and logs say what failed and never hold a password: go-redis's
// errors name the server, not the credentials, and the Bus adds only what
// it was doing.
package redisbus
