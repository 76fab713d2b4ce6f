package natsbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/apitoken-go/apitoken"
)

// Timings and sizes of Subscribe.
const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 5 * time.Second
	// settleDelay is how long after a subscription confirmed on a server
	// of a cluster Subscribe delivers nil a second time: the other servers
	// learn of the subscription a little later, and a message published
	// through them meanwhile does not reach it.
	settleDelay = 2 * time.Second
	// msgBuffer is how many messages wait for deliver; beyond, the
	// connection drops them, and Subscribe delivers nil.
	msgBuffer = 4096
)

// errConnectionLost is what SubscribeReporting reports when the connection
// reconnects: the connection does not say why.
var errConnectionLost = errors.New("natsbus: connection lost; reconnecting")

// errSubscriptionClosed is returned by Subscribe when its subscription was
// closed under it (by a permissions violation, say).
var errSubscriptionClosed = errors.New("natsbus: subscription closed")

// Subscribe subscribes to the Bus's subject on the connection and calls
// deliver, from the calling goroutine, with each message published, until
// ctx ends or the Bus is closed. It calls deliver(nil) each time the server
// has the subscription, as a round trip after subscribing shows: once it
// listens (every message published after that is delivered), and again
// after each reconnection of the connection, which sends the subscription
// again; on a server of a cluster, also settleDelay (2 s) after each, once
// the other servers know of it. It also delivers nil when messages were
// dropped because deliver did not keep up. It does not call it when the
// connection is lost: the cache keeps serving through an outage of NATS.
// How soon a lost connection is found and how it reconnects is the
// connection's business (nats.PingInterval, nats.ReconnectWait,
// nats.MaxReconnects). A message that Publish could not have sent (empty,
// or over MaxMessageSize) is delivered as nil.
// It returns nil when ctx ends, ErrClosed when the Bus is closed, and an
// error when the connection is closed for good or the subscription was
// closed under it; the Issuer then calls it again after a pause. deliver
// must not call Close.
func (b *Bus) Subscribe(ctx context.Context, deliver func(msg []byte)) error {
	return b.SubscribeReporting(ctx, deliver, nil)
}

// SubscribeReporting is Subscribe, also calling lost, from the goroutine
// that calls deliver, each time the connection is lost (it reconnects on
// its own; the next deliver(nil) means it listens again). With it, the
// Issuer's Stats and events tell when the bus is down
// (apitoken.ReportingBus). A nil lost reports nothing.
func (b *Bus) SubscribeReporting(ctx context.Context, deliver func(msg []byte), lost func(err error)) error {
	if deliver == nil {
		return fmt.Errorf("natsbus: %w: deliver is nil", apitoken.ErrInvalidInput)
	}
	b.mu.Lock()
	if b.closed.Load() {
		b.mu.Unlock()
		return ErrClosed
	}
	b.subs.Add(1)
	b.mu.Unlock()
	defer b.subs.Done()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(b.closing, cancel)
	defer stop()

	// Listen to the connection's state before subscribing, so that no
	// reconnection goes unseen.
	status := b.nc.StatusChanged(nats.CONNECTED, nats.RECONNECTING, nats.CLOSED)
	defer b.nc.RemoveStatusListener(status)
	msgs := make(chan *nats.Msg, msgBuffer)
	sub, err := b.nc.ChanSubscribe(b.subject, msgs)
	if err != nil {
		return fmt.Errorf("natsbus: subscribe: %w", err)
	}
	defer sub.Unsubscribe() // an error means the subscription is gone already
	if lost == nil {
		lost = func(error) {}
	}
	l := &listener{bus: b, sub: sub, deliver: deliver, lost: lost, msgs: msgs, status: status,
		subClosed: sub.StatusChanged(nats.SubscriptionClosed), pause: minBackoff, confirm: true}
	err = l.run(ctx)
	if b.closed.Load() {
		return ErrClosed
	}
	return err
}

// A listener is the state of one Subscribe.
type listener struct {
	bus       *Bus
	sub       *nats.Subscription
	deliver   func(msg []byte)
	lost      func(err error)
	msgs      <-chan *nats.Msg
	status    <-chan nats.Status
	subClosed <-chan nats.SubStatus

	confirm  bool             // deliver(nil) once the server has the subscription
	retry    <-chan time.Time // set while waiting to try confirming again
	settle   <-chan time.Time // set until the second deliver(nil) on a cluster
	down     bool             // the connection was lost and is not back
	dropped  int              // messages the connection dropped, as delivered
	attempts int              // confirmations failed in a row
	pause    time.Duration    // before the next confirmation
}

// run delivers until ctx ends (nil) or the subscription cannot go on.
func (l *listener) run(ctx context.Context) error {
	b := l.bus
	for {
		if l.confirm && l.retry == nil && b.nc.IsConnected() {
			if err := l.confirmed(ctx); err != nil {
				return nil // ctx ended
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case m, ok := <-l.msgs:
			if !ok {
				return l.closedUnder()
			}
			l.deliver(payload(m.Data))
			// The connection drops messages only while msgs is full, so
			// that more are queued: a drop is seen here, after one of them.
			if n, err := l.sub.Dropped(); err == nil && n != l.dropped {
				l.dropped = n
				l.deliver(nil)
			}
		case s := <-l.status:
			switch s {
			case nats.CONNECTED:
				// Reconnected: the connection subscribed again, and what
				// was published meanwhile is lost.
				l.confirm, l.retry, l.down = true, nil, false
			case nats.RECONNECTING:
				if !l.down {
					l.down = true
					b.logger().LogAttrs(ctx, slog.LevelWarn, "natsbus: connection lost; the connection reconnects")
					l.lost(errConnectionLost)
				}
			case nats.CLOSED:
				return fmt.Errorf("natsbus: %w", nats.ErrConnectionClosed)
			}
		case <-l.subClosed:
			return l.closedUnder()
		case <-l.retry:
			l.retry = nil
		case <-l.settle:
			l.settle = nil
			l.deliver(nil)
		}
	}
}

// closedUnder returns the error for a subscription closed under Subscribe:
// with the connection, or alone.
func (l *listener) closedUnder() error {
	if l.bus.nc.IsClosed() {
		return fmt.Errorf("natsbus: %w", nats.ErrConnectionClosed)
	}
	return errSubscriptionClosed
}

// confirmed makes a round trip to the server, after which it has the
// subscription, and then delivers nil. A failed round trip is retried
// after a pause that doubles up to maxBackoff; the first failure and every
// tenth are logged. It returns an error only when ctx ended.
func (l *listener) confirmed(ctx context.Context) error {
	b := l.bus
	err := b.flush(ctx)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil {
		l.attempts++
		if l.attempts%10 == 1 {
			b.logger().LogAttrs(ctx, slog.LevelWarn, "natsbus: cannot confirm the subscription; retrying",
				slog.Int("attempt", l.attempts), slog.Any("err", err))
		}
		l.retry = time.After(l.pause/2 + rand.N(l.pause/2+1))
		l.pause = min(2*l.pause, maxBackoff)
		return nil
	}
	l.confirm, l.attempts, l.pause = false, 0, minBackoff
	l.deliver(nil)
	if b.nc.ConnectedClusterName() != "" {
		l.settle = time.After(b.settle)
	}
	return nil
}

// payload returns the message of a payload, or nil for one that Publish
// could not have sent: whatever it meant, the safe reading is that
// something may have been missed.
func payload(data []byte) []byte {
	if len(data) == 0 || len(data) > MaxMessageSize {
		return nil
	}
	return data
}
