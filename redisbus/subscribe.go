package redisbus

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/apitoken-go/apitoken"
)

// Timings of Subscribe.
const (
	idleCheck   = 30 * time.Second // ping a connection that brought nothing for this long
	pingTimeout = 30 * time.Second // a ping unanswered for this long means the connection is lost
	minBackoff  = 100 * time.Millisecond
	maxBackoff  = 5 * time.Second
)

// Subscribe subscribes to the Bus's channel on a pub/sub connection of its
// own and calls deliver, from the calling goroutine, with each message
// published, until ctx ends or the Bus is closed. It calls deliver(nil) each
// time Redis confirms the subscription: once it listens (every message
// published after that is delivered), and again after each reconnection,
// which it retries with a backoff from 100 ms to 5 s for as long as ctx
// lasts. It does not call it when the connection is lost: the cache keeps
// serving through an outage of Redis. A connection that brings nothing for
// 30 seconds is pinged, and one that does not answer within 30 more seconds
// is taken as lost. A message that Publish could not have sent (empty, or
// over MaxMessageSize) is delivered as nil.
// It returns nil when ctx ends and ErrClosed when the Bus is closed. deliver
// must not call Close.
func (b *Bus) Subscribe(ctx context.Context, deliver func(msg []byte)) error {
	return b.SubscribeReporting(ctx, deliver, nil)
}

// SubscribeReporting is Subscribe, also calling lost, from the goroutine
// that calls deliver, each time the connection it listens on is lost or
// found silent (it reconnects; the next deliver(nil) means it listens
// again). With it, the Issuer's Stats and events tell when the bus is down
// (apitoken.ReportingBus). A nil lost reports nothing.
func (b *Bus) SubscribeReporting(ctx context.Context, deliver func(msg []byte), lost func(err error)) error {
	if deliver == nil {
		return fmt.Errorf("redisbus: %w: deliver is nil", apitoken.ErrInvalidInput)
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

	if lost == nil {
		lost = func(error) {}
	}
	l := &listener{bus: b, deliver: deliver, lost: lost, pause: minBackoff}
	for ctx.Err() == nil {
		l.session(ctx)
	}
	if b.closed.Load() {
		return ErrClosed
	}
	return nil
}

// A listener is the state of one Subscribe across its connections.
type listener struct {
	bus        *Bus
	deliver    func(msg []byte)
	lost       func(err error)
	subscribed bool          // Redis confirmed the subscription on the connection in use
	attempts   int           // failed in a row
	pause      time.Duration // before the next attempt
}

// session subscribes on a PubSub of its own and delivers what arrives on
// it, until ctx ends or the connection fails or goes silent.
func (l *listener) session(ctx context.Context) {
	b := l.bus
	ctx, cancel := context.WithCancel(ctx) // ends with the session
	defer cancel()
	ps := b.client.Subscribe(ctx) // no channel yet: nothing sent
	defer ps.Close()
	// Closing ps ends a Receive in progress: when ctx ends, and when the
	// watchdog finds the connection silent.
	context.AfterFunc(ctx, func() { ps.Close() })
	if err := ps.Subscribe(ctx, b.channel); err != nil {
		l.failed(ctx, err)
		return
	}
	heard := make(chan struct{}, 1)
	var silent atomic.Bool
	var watching sync.WaitGroup
	watching.Go(func() { b.watch(ctx, ps, heard, &silent) })
	defer func() {
		cancel() // ends the watchdog, and a ping it may be sending
		watching.Wait()
	}()

	for {
		msg, err := ps.Receive(ctx)
		select {
		case heard <- struct{}{}:
		default:
		}
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			// A new PubSub for what comes next, even where go-redis would
			// reconnect this one: a subscription it could not send again
			// would leave us on a live connection that hears nothing.
			switch {
			case silent.Load():
				l.subscribed = false
				b.logger().LogAttrs(ctx, slog.LevelWarn, "redisbus: connection silent; reconnecting",
					slog.Duration("silent_for", b.idle+b.pingTimeout))
				l.lost(fmt.Errorf("redisbus: connection silent for %v", b.idle+b.pingTimeout))
			case l.subscribed:
				l.subscribed = false
				b.logger().LogAttrs(ctx, slog.LevelWarn, "redisbus: connection lost; reconnecting", slog.Any("err", err))
				l.lost(fmt.Errorf("redisbus: connection lost: %w", err))
			default:
				l.failed(ctx, err)
			}
			return
		}
		switch m := msg.(type) {
		case *redis.Subscription:
			// Each confirmation is a new connection that listens: go-redis
			// reconnects and subscribes again on its own (after a failed
			// ping, say), and what was published meanwhile is lost.
			if m.Kind == "subscribe" && m.Channel == b.channel {
				l.subscribed, l.attempts, l.pause = true, 0, minBackoff
				l.deliver(nil)
			}
		case *redis.Message:
			if m.Channel == b.channel {
				l.deliver(payload(m.Payload))
			}
		}
	}
}

// payload returns the message of a payload, or nil for one that Publish
// could not have sent: whatever it meant, the safe reading is that
// something may have been missed.
func payload(s string) []byte {
	if s == "" || len(s) > MaxMessageSize {
		return nil
	}
	return []byte(s)
}

// failed counts a failed attempt to listen, logs the first and every tenth,
// and waits a pause that doubles up to maxBackoff, or until ctx ends.
func (l *listener) failed(ctx context.Context, err error) {
	if ctx.Err() != nil {
		return
	}
	l.attempts++
	if l.attempts%10 == 1 {
		l.bus.logger().LogAttrs(ctx, slog.LevelWarn, "redisbus: cannot subscribe; retrying",
			slog.Int("attempt", l.attempts), slog.Any("err", err))
	}
	// Jittered, so that the instances of an app do not all come back in
	// the same millisecond after a restart of Redis.
	t := time.NewTimer(l.pause/2 + rand.N(l.pause/2+1))
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
	l.pause = min(2*l.pause, maxBackoff)
}

// watch pings the server over ps once Receive has returned nothing for
// b.idle, and takes the connection as silent (a peer gone without a word,
// a dropped route) when nothing comes within b.pingTimeout of a ping it
// could send: it then sets silent and closes ps, which ends the session.
// heard gets a value each time Receive returns. It returns when ctx ends.
func (b *Bus) watch(ctx context.Context, ps *redis.PubSub, heard <-chan struct{}, silent *atomic.Bool) {
	t := time.NewTimer(b.idle)
	defer t.Stop()
	pinged := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-heard:
			pinged = false
			t.Reset(b.idle)
		case <-t.C:
			if pinged {
				silent.Store(true)
				ps.Close()
				return
			}
			pctx, cancel := context.WithTimeout(ctx, b.pingTimeout)
			err := ps.Ping(pctx)
			cancel()
			// A ping that could not be written made go-redis drop the
			// connection, which Receive reports; only one written and not
			// answered is silence.
			pinged = err == nil
			if pinged {
				t.Reset(b.pingTimeout)
			} else {
				t.Reset(b.idle)
			}
		}
	}
}
