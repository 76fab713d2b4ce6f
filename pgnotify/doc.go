// Package pgnotify is an apitoken.Bus over PostgreSQL's LISTEN/NOTIFY: the
// Issuers of several instances of an app that share a PostgreSQL database
// tell each other which cached tokens to forget, so that a token deleted
// through one instance stops verifying on all of them at once instead of when
// their cache entries reach the TTL of apitoken.WithCache.
//
// It needs nothing but the database the tokens already live in: no table, no
// extension, no grant beyond CONNECT. It is the only package of this module
// that imports pgx (github.com/jackc/pgx/v5); apps that do not use it do not
// pull pgx in.
//
// # Wiring
//
// Each instance makes one Bus and gives it to its Issuer:
//
//	db, err := sql.Open("pgx", dsn) // github.com/jackc/pgx/v5/stdlib
//	...
//	store, err := sqlstore.New(db, sqlstore.Postgres)
//	...
//	bus, err := pgnotify.New(ctx, dsn)
//	...
//	defer bus.Close() // after the Issuer's Close
//	iss, err := apitoken.NewIssuer(store,
//		apitoken.WithCache(100_000, time.Minute),
//		apitoken.WithCacheBus(bus),
//	)
//
// # How it works
//
// Publish runs SELECT pg_notify(channel, payload) on a small pool (two
// connections unless the connection string sets pool_max_conns). Subscribe
// holds a connection of its own, runs LISTEN on the channel and waits for
// notifications; it checks an idle connection with a ping every 30 seconds,
// so that a connection lost without a word is noticed within about a minute
// (a closed one, at once). When the connection is lost, Subscribe logs it
// (WithLogger), reconnects with a backoff from 100 ms to 5 s until its
// context ends, and once listening again tells the Issuer that messages may
// have been missed, which empties its cache. It does not empty the cache
// when the connection is lost: with the bus on the store's own database,
// that is when the store is down too, and the cache must keep serving the
// tokens it holds. Meanwhile, a token deleted through another instance
// stays in this one's cache for at most its TTL.
//
// PostgreSQL delivers a notification to every session listening on the
// channel in the database, in commit order; a NOTIFY inside a transaction is
// sent only when it commits. Messages are base64 in the payload, so any bytes
// survive; MaxMessageSize keeps the payload within PostgreSQL's 8000 bytes.
// A notification on the channel whose payload is not one of ours is taken as
// "messages may have been missed": an operator can empty every instance's
// cache with
//
//	NOTIFY apitoken_invalidate;
//
// Any user who can connect to the database can NOTIFY on the channel, as
// PostgreSQL does not restrict it; messages only ever make a cache forget,
// so the worst such a user can do is empty the caches.
//
// Every instance must use the same channel (WithChannel) and the same
// database; apps that share a database but not their tokens use different
// channels.
//
// Errors say what failed. They never contain the connection string's
// password: an unparsable connection string gives a fixed message (the
// parser's error stays reachable through errors.As), and connection errors
// name the host, user and database only.
package pgnotify
