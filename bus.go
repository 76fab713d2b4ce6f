package apitoken

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/apitoken-go/apitoken/internal/busmsg"
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
	// been missed before, it calls deliver(nil), and the Issuer empties its
	// cache: when it starts listening, and when it listens again after a
	// lost connection (not when the connection is lost: the cache keeps
	// serving through an outage, and its TTL bounds what was missed). It
	// returns an error only when it gives up; the Issuer then calls it again
	// after a pause.
	Subscribe(ctx context.Context, deliver func(msg []byte)) error
}

// Bounds of the bus's background work.
const (
	publishTimeout   = 5 * time.Second
	resubscribePause = time.Second
)

// Invalidation messages, in the format of package busmsg.
const (
	msgVersion = busmsg.Version
	msgToken   = busmsg.Token
	msgAccount = busmsg.Account
)

func encodeInvalidation(accountID, id string) []byte { return busmsg.Encode(accountID, id) }

// decodeInvalidation reads a message; ok is false for one it cannot read.
func decodeInvalidation(msg []byte) (accountID, id string, ok bool) { return busmsg.Decode(msg) }

// invalidate makes the caches forget the token of the account with that
// id (every token of the account when id is empty), after a change through
// this Issuer: this instance's at once, the others' through the bus. On an
// Issuer made by InTx, only its parent's cache forgets at once; the rest
// waits for Committed.
func (iss *Issuer) invalidate(ctx context.Context, accountID, id string) {
	if iss.tx != nil {
		iss.tx.note(accountID, id)
		if c := iss.tx.parent.cache; c != nil {
			c.invalidate(accountID, id)
		}
		return
	}
	iss.announce(ctx, accountID, id)
}

// announce drops the token from this Issuer's cache and publishes the
// invalidation on its bus. A failed publish fails no call: it is logged, and
// the other instances' entries end with their TTL.
func (iss *Issuer) announce(ctx context.Context, accountID, id string) {
	if iss.cache == nil {
		return
	}
	iss.cache.invalidate(accountID, id)
	if iss.bus == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), publishTimeout)
	defer cancel()
	if err := iss.bus.Publish(ctx, encodeInvalidation(accountID, id)); err != nil {
		iss.logger().LogAttrs(ctx, slog.LevelWarn, "apitoken: cache invalidation not sent",
			slog.String("account_id", accountID), slog.String("token_id", id), slog.Any("err", err))
		iss.emitBackground(ctx, Event{Kind: KindBusPublishFailed, AccountID: accountID, TokenID: id, Err: err})
	}
}

// errSubscriptionEnded is the cause of a subscription that ended without
// an error.
var errSubscriptionEnded = errors.New("apitoken: cache bus subscription ended")

// subscribe applies the other instances' invalidations until Close.
func (iss *Issuer) subscribe(ctx context.Context) {
	defer iss.background.Done()
	deliver := func(msg []byte) {
		accountID, id, ok := decodeInvalidation(msg)
		if !ok { // nil (messages may be lost) or unreadable
			iss.cache.clear()
			iss.busChanged(ctx, msg == nil, nil)
			return
		}
		iss.busState.message(iss.now(), false)
		iss.cache.invalidate(accountID, id) // both empty: every account (a prune)
	}
	lost := func(err error) { iss.busChanged(ctx, false, err) }
	rb, reporting := iss.bus.(ReportingBus)
	for {
		var err error
		if reporting {
			err = rb.SubscribeReporting(ctx, deliver, lost)
		} else {
			err = iss.bus.Subscribe(ctx, deliver)
		}
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			err = errSubscriptionEnded
		}
		iss.busChanged(ctx, false, err)
		// No clear here: the next Subscribe empties the cache once it
		// listens, and until then the cache keeps serving (the store may be
		// down too).
		iss.logger().LogAttrs(ctx, slog.LevelWarn, "apitoken: cache bus subscription ended; retrying", slog.Any("err", err))
		select {
		case <-ctx.Done():
			return
		case <-time.After(resubscribePause):
		}
	}
}
