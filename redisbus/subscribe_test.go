package redisbus_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/apitoken-go/apitoken/internal/logcheck"
	"github.com/apitoken-go/apitoken/redisbus"
)

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// capture returns a logger that keeps what it is given, and the buffer.
func capture() (*slog.Logger, *logcheck.Buffer) {
	logs := &logcheck.Buffer{}
	return slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})), logs
}

// A message published right after the first deliver(nil) must arrive: the
// subscription has taken effect by then. Repeated, since a race would show
// only sometimes.
func TestDeliveredOnceListening(t *testing.T) {
	addr := redisAddr(t)
	ch := redisbus.WithChannel(newChannel(t))
	pub, sub := newBus(t, addr, ch), newBus(t, addr, ch)
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

// pubsubIDs returns the ids of the pub/sub connections of the clients named
// name on the server.
func pubsubIDs(t *testing.T, admin *redis.Client, name string) []string {
	t.Helper()
	list, err := admin.Do(t.Context(), "CLIENT", "LIST", "TYPE", "pubsub").Text()
	require.NoError(t, err)
	var ids []string
	for line := range strings.SplitSeq(strings.TrimSpace(list), "\n") {
		var id string
		named := false
		for field := range strings.FieldsSeq(line) {
			if v, ok := strings.CutPrefix(field, "id="); ok {
				id = v
			}
			named = named || field == "name="+name
		}
		if named {
			ids = append(ids, id)
		}
	}
	return ids
}

// When the server closes the subscriber's connection, Subscribe connects
// again and delivers nil once subscribed again; messages flow again.
func TestReconnectAfterConnectionKilled(t *testing.T) {
	addr := redisAddr(t)
	ch := redisbus.WithChannel(newChannel(t))
	name := "redisbus-test-" + randomHex(t, 6)
	logger, logs := capture()
	pub := newBus(t, addr, ch)
	b := busOn(t, newClient(t, addr, func(o *redis.Options) { o.ClientName = name }), ch, redisbus.WithLogger(logger))
	s := subscribe(t, b)
	s.expectNil(t, "listening")
	admin := newClient(t, addr)

	for round := range 3 {
		ids := pubsubIDs(t, admin, name)
		require.Len(t, ids, 1, "round %d: one pub/sub connection of the Bus", round)
		require.NoError(t, admin.Do(t.Context(), "CLIENT", "KILL", "ID", ids[0]).Err())
		start := time.Now()
		s.expectNil(t, "subscribed again")
		t.Logf("round %d: subscribed again after %v", round, time.Since(start))
		again := pubsubIDs(t, admin, name)
		require.Len(t, again, 1, "round %d: still one pub/sub connection", round)
		require.NotEqual(t, ids[0], again[0], "round %d: subscribed again on a new connection", round)
		msg := []byte{byte(round), 0xff}
		require.NoError(t, pub.Publish(t.Context(), msg))
		s.expect(t, msg)
	}
	require.Contains(t, logs.String(), "redisbus: connection lost; reconnecting")
}

// proxy forwards TCP connections to a server, and can freeze the ones it
// holds (no byte passes, nothing is closed: a peer gone without a word) or
// stop (every connection closed, no new one accepted).
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
	frozen []*atomic.Bool
	closed chan struct{}
	once   sync.Once
}

// newProxy starts a proxy to target and returns it with its address.
func newProxy(tb testing.TB, target string) (*proxy, string) {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(tb, err)
	p := &proxy{ln: ln, target: target, closed: make(chan struct{})}
	go p.accept()
	tb.Cleanup(p.stop)
	return p, ln.Addr().String()
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

// A connection that goes silent (a peer gone, a dropped route) is found by
// the watchdog's ping, and Subscribe connects again.
func TestReconnectAfterSilentLoss(t *testing.T) {
	addr := redisAddr(t)
	p, via := newProxy(t, addr)
	ch := redisbus.WithChannel(newChannel(t))
	logger, logs := capture()
	pub, b := newBus(t, addr, ch), newBus(t, via, ch, redisbus.WithLogger(logger))
	redisbus.SetIdleCheck(b, 100*time.Millisecond, 300*time.Millisecond)
	s := subscribe(t, b)
	s.expectNil(t, "listening")

	// Pings that find the connection well change nothing.
	s.expectNone(t, 350*time.Millisecond, "pinged while idle, answered")
	require.NoError(t, pub.Publish(t.Context(), []byte("after idle checks")))
	s.expect(t, []byte("after idle checks"))

	p.freeze()
	start := time.Now()
	s.expectNil(t, "subscribed again")
	t.Logf("silent loss found and subscribed again after %v (idle check 100ms, ping timeout 300ms)", time.Since(start))
	require.NoError(t, pub.Publish(t.Context(), []byte("after the reconnect")))
	s.expect(t, []byte("after the reconnect"))
	require.Contains(t, logs.String(), "redisbus: connection silent; reconnecting")
}

// Subscribe returns promptly when its context ends: while listening, and
// while it waits to reconnect to a server that does not answer.
func TestSubscribeReturnsOnCancel(t *testing.T) {
	addr := redisAddr(t)
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
		{"ok, frozen", func(t *testing.T, p *proxy, s *subscriber) {
			p.freeze()
			s.expectNone(t, 100*time.Millisecond, "the connection frozen")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, via := newProxy(t, addr)
			b := newBus(t, via, redisbus.WithChannel(newChannel(t)), redisbus.WithLogger(discard()))
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
