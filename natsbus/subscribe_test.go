package natsbus_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken-go/apitoken/natsbus"
)

// A message published right after the first deliver(nil) must arrive: the
// server has the subscription by then. Repeated, since a race would show
// only sometimes.
func TestDeliveredOnceListening(t *testing.T) {
	u := natsURL(t)
	subj := natsbus.WithSubject(newSubject(t))
	pub, sub := newBus(t, u, subj), newBus(t, u, subj)
	for i := range 20 {
		ctx, cancel := context.WithCancel(t.Context())
		got := make(chan []byte, 10)
		done := make(chan error, 1)
		go func() { done <- sub.Subscribe(ctx, func(msg []byte) { got <- msg }) }()
		msg := []byte{byte(i), 0}
		select {
		case first := <-got:
			require.Nil(t, first, "the first delivery must be nil (listening), before any message")
		case <-time.After(wait):
			t.Fatalf("round %d: no deliver(nil) within %v", i, wait)
		}
		require.NoError(t, pub.Publish(t.Context(), msg))
		select {
		case m := <-got:
			require.Equal(t, msg, m, "round %d: a message published after the first deliver(nil) must be delivered", i)
		case <-time.After(wait):
			t.Fatalf("round %d: a message published after the first deliver(nil) was not delivered within %v", i, wait)
		}
		cancel()
		require.NoError(t, <-done)
	}
}

// proxy forwards TCP connections to a server, and can cut the ones it
// holds (closed, new ones accepted), freeze them (no byte passes, nothing
// is closed: a peer gone without a word) or stop (every connection closed,
// no new one accepted).
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
	frozen []*atomic.Bool
	closed chan struct{}
	once   sync.Once
}

// newProxy starts a proxy to the server of the nats:// URL target and
// returns it with the URL that goes through it.
func newProxy(tb testing.TB, target string) (*proxy, string) {
	tb.Helper()
	u, err := url.Parse(target)
	require.NoError(tb, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(tb, err)
	p := &proxy{ln: ln, target: u.Host, closed: make(chan struct{})}
	go p.accept()
	tb.Cleanup(p.stop)
	u.Host = ln.Addr().String()
	return p, u.String()
}

func (p *proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		frozen := new(atomic.Bool)
		p.mu.Lock()
		select {
		case <-p.closed:
			p.mu.Unlock()
			c.Close()
			s.Close()
			return
		default:
		}
		p.conns = append(p.conns, c, s)
		p.frozen = append(p.frozen, frozen)
		p.mu.Unlock()
		go p.pipe(c, s, frozen)
		go p.pipe(s, c, frozen)
	}
}

// pipe copies from src to dst until either closes; once frozen, it holds
// what it read until the proxy stops.
func (p *proxy) pipe(src, dst net.Conn, frozen *atomic.Bool) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if frozen.Load() {
			<-p.closed
			return
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				dst.Close()
			}
			return
		}
	}
}

// cut closes every connection the proxy holds now; new ones are accepted.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns, p.frozen = nil, nil
}

// freeze freezes every connection the proxy holds now; later ones flow.
func (p *proxy) freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, f := range p.frozen {
		f.Store(true)
	}
}

// stop closes every connection and refuses new ones.
func (p *proxy) stop() {
	p.once.Do(func() {
		p.ln.Close()
		p.mu.Lock()
		close(p.closed)
		for _, c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
	})
}

// When the connection is lost and reconnects, Subscribe delivers nil once
// the server has the subscription again, and messages flow again. The
// handlers the app set on the connection still run: the Bus replaced none.
func TestReconnectAfterConnectionCut(t *testing.T) {
	u := natsURL(t)
	p, via := newProxy(t, u)
	subj := natsbus.WithSubject(newSubject(t))
	logger, logs := capture()
	var disconnects, reconnects atomic.Int32
	nc := connect(t, via,
		nats.DisconnectErrHandler(func(*nats.Conn, error) { disconnects.Add(1) }),
		nats.ReconnectHandler(func(*nats.Conn) { reconnects.Add(1) }))
	pub := newBus(t, u, subj)
	b := busOn(t, nc, subj, natsbus.WithLogger(logger))
	s := subscribe(t, b)
	s.expectNil(t, "listening")

	for round := range 3 {
		p.cut()
		start := time.Now()
		s.expectNil(t, "subscribed again")
		t.Logf("round %d: subscribed again after %v (ReconnectWait 50ms)", round, time.Since(start))
		msg := []byte{byte(round), 0xff}
		require.NoError(t, pub.Publish(t.Context(), msg))
		s.expect(t, msg)
	}
	assert.Eventually(t, func() bool { return reconnects.Load() == 3 }, wait, time.Millisecond, "the app's ReconnectHandler must still run")
	assert.Equal(t, int32(3), disconnects.Load(), "the app's DisconnectErrHandler must still run")
	assert.Contains(t, logs.String(), "natsbus: connection lost; the connection reconnects")
}

// A connection that goes silent is found by the connection's own pings
// (nats.PingInterval); once it reconnected, Subscribe delivers nil.
func TestReconnectAfterSilentLoss(t *testing.T) {
	u := natsURL(t)
	p, via := newProxy(t, u)
	subj := natsbus.WithSubject(newSubject(t))
	pub := newBus(t, u, subj)
	b := busOn(t, connect(t, via, nats.PingInterval(100*time.Millisecond), nats.MaxPingsOutstanding(2)), subj)
	s := subscribe(t, b)
	s.expectNil(t, "listening")
	s.expectNone(t, 350*time.Millisecond, "pinged while idle, answered")

	p.freeze()
	start := time.Now()
	s.expectNil(t, "subscribed again")
	t.Logf("silent loss found and subscribed again after %v (PingInterval 100ms, MaxPingsOutstanding 2)", time.Since(start))
	require.NoError(t, pub.Publish(t.Context(), []byte("after the reconnect")))
	s.expect(t, []byte("after the reconnect"))
}

// When deliver does not keep up and the connection drops messages,
// Subscribe delivers nil after the ones it kept.
func TestDroppedMessages(t *testing.T) {
	u := natsURL(t)
	subj := newSubject(t)
	b := newBus(t, u, natsbus.WithSubject(subj))
	gate := make(chan struct{})
	s := subscribe(t, b, gate)
	gate <- struct{}{} // the listening nil
	s.expectNil(t, "listening")

	admin := connect(t, u)
	const sent = 5000 // more than the Bus holds while deliver is stuck
	for i := range sent {
		require.NoError(t, admin.Publish(subj, []byte{1, byte(i), byte(i >> 8)}))
	}
	require.NoError(t, admin.Flush())
	time.Sleep(100 * time.Millisecond) // for the last ones to arrive
	close(gate)
	got, nils := 0, 0
	for quiet := false; !quiet; {
		select {
		case msg := <-s.msgs:
			if msg == nil {
				nils++
			} else {
				got++
			}
		case <-time.After(200 * time.Millisecond):
			quiet = true
		}
	}
	t.Logf("%d messages delivered of %d, and %d nil", got, sent, nils)
	require.Less(t, got, sent, "some messages must have been dropped")
	require.Equal(t, 1, nils, "one nil for the dropped messages")
}

// On a standalone server, one nil at start; on a server of a cluster, a
// second one once the other servers know of the subscription.
func TestSettleOnCluster(t *testing.T) {
	t.Run("ok, standalone: one nil", func(t *testing.T) {
		b := newBus(t, natsURL(t), natsbus.WithSubject(newSubject(t)))
		natsbus.SetSettle(b, 50*time.Millisecond)
		s := subscribe(t, b)
		s.expectNil(t, "listening")
		s.expectNone(t, 200*time.Millisecond, "a standalone server needs no second nil")
	})
	t.Run("ok, cluster: a second nil", func(t *testing.T) {
		srv := startServer(t, "", "--cluster_name", "natsbus", "--cluster", "nats://127.0.0.1:"+freePort(t))
		b := busOn(t, connect(t, srv.url), natsbus.WithSubject(newSubject(t)))
		natsbus.SetSettle(b, 50*time.Millisecond)
		s := subscribe(t, b)
		s.expectNil(t, "listening")
		start := time.Now()
		s.expectNil(t, "settled")
		t.Logf("second nil %v after the first (settle 50ms)", time.Since(start))
		s.expectNone(t, 200*time.Millisecond, "only two")
	})
}

// Subscribe returns promptly when its context ends: while listening, and
// while the connection reconnects.
func TestSubscribeReturnsOnCancel(t *testing.T) {
	u := natsURL(t)
	for _, tc := range []struct {
		name   string
		before func(*testing.T, *proxy, *subscriber)
	}{
		{"ok, listening", func(*testing.T, *proxy, *subscriber) {}},
		{"ok, reconnecting", func(t *testing.T, p *proxy, s *subscriber) {
			p.stop()
			// A lost connection is no reason to empty the cache: the store
			// may be down too, and the cache must keep serving.
			s.expectNone(t, 300*time.Millisecond, "the connection lost, a few failed attempts")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, via := newProxy(t, u)
			b := busOn(t, connect(t, via), natsbus.WithSubject(newSubject(t)), natsbus.WithLogger(discard()))
			s := subscribe(t, b)
			s.expectNil(t, "listening")
			tc.before(t, p, s)
			start := time.Now()
			s.cancel()
			select {
			case err := <-s.done:
				require.NoError(t, err, "Subscribe must return nil when its context ends")
			case <-time.After(2 * time.Second):
				t.Fatal("Subscribe did not return within 2s of its context's end")
			}
			t.Logf("returned %v after the cancellation", time.Since(start))
			s.done <- nil // for the cleanup
			s.expectNone(t, 50*time.Millisecond, "after returning")
		})
	}
}
