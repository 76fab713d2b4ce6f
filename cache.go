package apitoken

import (
	"context"
	"fmt"
	"time"
)

// A Bus carries cache invalidations between the Issuers of several
// instances of an app that share one store, so that a token deleted or
// rotated through one instance stops verifying on the others at once, not
// only when their cache entries reach the TTL of WithCache. Package pgnotify
// implements it with PostgreSQL's LISTEN/NOTIFY; Redis pub/sub or NATS fit
// it as well. Messages are small (under 300 bytes) and hold ids, never a
// secret nor a hash.
type Bus interface {
	// Publish sends msg to the subscribers of every instance, this one's
	// included.
	Publish(ctx context.Context, msg []byte) error

	// Subscribe calls deliver with each message published, from one
	// goroutine, until ctx ends; it then returns. Whenever messages may have
	// been missed (when it starts listening, when a connection is lost, when
	// it is back), it calls deliver(nil), and the Issuer empties its cache.
	// It returns an error only when it gives up; the Issuer then empties its
	// cache and calls Subscribe again after a pause.
	Subscribe(ctx context.Context, deliver func(msg []byte)) error
}

// WithCache keeps up to size verified tokens in memory for at most ttl
// each, so that a token verified again within ttl costs no store call.
// TODO(doc): default, bounds, outage behaviour.
func WithCache(size int, ttl time.Duration) Option {
	return func(c *config) error {
		if size < 1 {
			return fmt.Errorf("%w: cache size is %d, want at least 1", ErrInvalidInput, size)
		}
		if ttl <= 0 {
			return fmt.Errorf("%w: cache TTL is %v, want more than 0", ErrInvalidInput, ttl)
		}
		c.cacheSize, c.cacheTTL = size, ttl
		return nil
	}
}

// WithCacheBus sends the invalidations of this Issuer's cache to the other
// instances over bus, and applies theirs. It needs WithCache.
func WithCacheBus(bus Bus) Option {
	return func(c *config) error {
		if bus == nil {
			return fmt.Errorf("%w: cache bus is nil", ErrInvalidInput)
		}
		c.bus = bus
		return nil
	}
}
