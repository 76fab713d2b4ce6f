package apitoken

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// A ReportingBus is a Bus that also tells its subscriber when the
// connection it listens on is lost, which Subscribe alone does not (it
// only calls deliver(nil) once it listens again). The Issuer uses it, when
// its bus implements it, for the bus state of Stats and the
// KindBusDisconnected event; pgnotify, redisbus and natsbus implement it.
type ReportingBus interface {
	Bus
	// SubscribeReporting is Subscribe, also calling lost with the cause
	// each time the connection it listens on is lost, from the goroutine
	// that calls deliver. The next deliver(nil) means that it listens
	// again.
	SubscribeReporting(ctx context.Context, deliver func(msg []byte), lost func(err error)) error
}

// A BusState is the state of an Issuer's cache bus.
type BusState uint8

// The states of a cache bus.
const (
	// BusNone: the Issuer has no bus (WithCacheBus).
	BusNone BusState = iota
	// BusConnecting: the bus does not listen yet.
	BusConnecting
	// BusConnected: the bus listens; every message sent arrives.
	BusConnected
	// BusDisconnected: the bus lost its connection (as far as the Issuer
	// can tell: a bus that is no ReportingBus reports only a subscription
	// that ended), and deletions on other instances reach this one only
	// through the cache's TTL until it is connected again.
	BusDisconnected
)

// String returns the state in a word: "none", "connecting", "connected" or
// "disconnected".
func (s BusState) String() string {
	switch s {
	case BusNone:
		return "none"
	case BusConnecting:
		return "connecting"
	case BusConnected:
		return "connected"
	case BusDisconnected:
		return "disconnected"
	}
	return fmt.Sprintf("BusState(%d)", uint8(s))
}

// BusStats describes an Issuer's cache bus; State is BusNone without one.
type BusStats struct {
	State BusState
	// Since is when the bus entered State, and StateAge how long ago.
	Since    time.Time
	StateAge time.Duration
	// LastMessage is when the last message arrived (zero before the first),
	// and LastMessageAge how long ago: on a bus that carries invalidations
	// often, a long silence is worth a look.
	LastMessage    time.Time
	LastMessageAge time.Duration
	// Messages counts the messages that arrived, Resets the times the cache
	// was emptied because messages may have been missed.
	Messages, Resets uint64
}

// busStatus is what the Issuer knows of its bus, written by the goroutine
// of the subscription and read by Stats.
type busStatus struct {
	mu          sync.Mutex
	state       BusState
	since       time.Time
	lastMessage time.Time
	messages    uint64
	resets      uint64
}

// set records the bus's new state at now, and reports whether it changed.
func (b *busStatus) set(s BusState, now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state == s {
		return false
	}
	b.state, b.since = s, now
	return true
}

// message records a message that arrived at now; reset, that it was a nil
// one (messages may have been missed).
func (b *busStatus) message(now time.Time, reset bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.lastMessage = now
	if reset {
		b.resets++
	} else {
		b.messages++
	}
}

func (b *busStatus) stats(hasBus bool, now time.Time) BusStats {
	if !hasBus {
		return BusStats{}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	s := BusStats{State: b.state, Since: b.since, StateAge: now.Sub(b.since), LastMessage: b.lastMessage, Messages: b.messages, Resets: b.resets}
	if !b.lastMessage.IsZero() {
		s.LastMessageAge = now.Sub(b.lastMessage)
	}
	return s
}

// busChanged records what the subscription reported: deliver(nil) when
// listening (the cache was emptied), an unreadable message (emptied too),
// or a lost connection (err).
func (iss *Issuer) busChanged(ctx context.Context, listening bool, err error) {
	now := iss.now()
	switch {
	case err != nil:
		if iss.busState.set(BusDisconnected, now) {
			iss.emitBackground(ctx, Event{Kind: KindBusDisconnected, Err: err})
		}
		return
	case listening && iss.busState.set(BusConnected, now):
		iss.emitBackground(ctx, Event{Kind: KindBusConnected})
	}
	iss.busState.message(now, true)
	iss.emitBackground(ctx, Event{Kind: KindBusMayHaveMissed})
}
