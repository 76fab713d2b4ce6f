package pgnotify_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken-go/apitoken"
	"github.com/apitoken-go/apitoken/pgnotify"
)

// pgDSNVar points the tests at a PostgreSQL server; .ci/run sets it.
const pgDSNVar = "APITOKEN_PG_DSN"

// wait bounds every wait for something that should happen on a loopback
// server within milliseconds.
const wait = 5 * time.Second

// pgDSN returns the DSN of the test server, or skips the test saying how to
// run it.
func pgDSN(tb testing.TB) string {
	tb.Helper()
	dsn := os.Getenv(pgDSNVar)
	if dsn == "" {
		tb.Skipf("%s is not set: set it to a PostgreSQL URL (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable) to run this test", pgDSNVar)
	}
	return dsn
}

// newChannel returns a channel name of its own for each test, so that tests
// running at once against the same database never hear each other.
func newChannel(tb testing.TB) string {
	tb.Helper()
	var b [8]byte
	_, err := rand.Read(b[:])
	require.NoError(tb, err)
	return "pgnotify_test_" + hex.EncodeToString(b[:])
}

// newBus returns a Bus on dsn, closed when the test ends.
func newBus(tb testing.TB, dsn string, opts ...pgnotify.Option) *pgnotify.Bus {
	tb.Helper()
	b, err := pgnotify.New(tb.Context(), dsn, opts...)
	require.NoError(tb, err)
	tb.Cleanup(b.Close)
	return b
}

// admin returns a plain connection to the test server, for what the tests
// do behind the Bus's back.
func admin(tb testing.TB) *pgx.Conn {
	tb.Helper()
	conn, err := pgx.Connect(tb.Context(), pgDSN(tb))
	require.NoError(tb, err)
	tb.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// subscriber runs Subscribe in a goroutine and records what it delivers.
type subscriber struct {
	msgs     chan []byte
	done     chan error
	cancel   context.CancelFunc
	inside   atomic.Int32 // deliver calls in progress
	overlaps atomic.Int32 // deliver calls that found another in progress
}

// subscribe starts b.Subscribe; the test's cleanup cancels it and requires
// that it returns.
func subscribe(tb testing.TB, b *pgnotify.Bus) *subscriber {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &subscriber{msgs: make(chan []byte, 10_000), done: make(chan error, 1), cancel: cancel}
	go func() {
		s.done <- b.Subscribe(ctx, func(msg []byte) {
			if s.inside.Add(1) > 1 {
				s.overlaps.Add(1)
			}
			s.msgs <- msg
			s.inside.Add(-1)
		})
	}()
	tb.Cleanup(func() {
		cancel()
		select {
		case <-s.done:
		case <-time.After(wait):
			tb.Errorf("Subscribe did not return within %v of its context's end", wait)
		}
		assert.Zero(tb, s.overlaps.Load(), "Subscribe must call deliver from one goroutine, one call at a time")
	})
	return s
}

// next returns the next delivery, failing the test if none comes within
// wait.
func (s *subscriber) next(tb testing.TB, what string) []byte {
	tb.Helper()
	select {
	case msg := <-s.msgs:
		return msg
	case err := <-s.done:
		tb.Fatalf("Subscribe returned %v while waiting for %s", err, what)
	case <-time.After(wait):
		tb.Fatalf("no delivery within %v while waiting for %s", wait, what)
	}
	return nil
}

// expectNil requires that the next delivery is nil: messages may have been
// missed.
func (s *subscriber) expectNil(tb testing.TB, what string) {
	tb.Helper()
	msg := s.next(tb, what)
	require.Nil(tb, msg, "want deliver(nil) (%s), got a message %q", what, msg)
}

// expectNone requires that nothing is delivered for d.
func (s *subscriber) expectNone(tb testing.TB, d time.Duration, what string) {
	tb.Helper()
	select {
	case msg := <-s.msgs:
		tb.Fatalf("%s: want no delivery, got %q (nil: messages may have been missed)", what, msg)
	case <-time.After(d):
	}
}

// expect requires that the next delivery is want, byte for byte.
func (s *subscriber) expect(tb testing.TB, want []byte) {
	tb.Helper()
	msg := s.next(tb, "a message")
	require.NotNil(tb, msg, "want the message %q, got deliver(nil)", want)
	require.True(tb, bytes.Equal(want, msg), "want the message %q, got %q", want, msg)
}

// quiet requires that nothing is delivered for a little while.
func (s *subscriber) quiet(tb testing.TB) {
	tb.Helper()
	select {
	case msg := <-s.msgs:
		tb.Fatalf("unexpected delivery %q (nil: %v)", msg, msg == nil)
	case <-time.After(50 * time.Millisecond):
	}
}

func randomBytes(tb testing.TB, n int) []byte {
	tb.Helper()
	b := make([]byte, n)
	_, err := rand.Read(b)
	require.NoError(tb, err)
	return b
}

func TestRoundTrip(t *testing.T) {
	dsn := pgDSN(t)
	ch := pgnotify.WithChannel(newChannel(t))
	a, b := newBus(t, dsn, ch), newBus(t, dsn, ch)
	onA, onB := subscribe(t, a), subscribe(t, b)
	onA.expectNil(t, "listening")
	onB.expectNil(t, "listening")

	every := make([]byte, 256)
	for i := range every {
		every[i] = byte(i)
	}
	msgs := [][]byte{
		{0},
		[]byte("\x00a\x00b\x00"),
		{0xff, 0xfe, 0xc3, 0x28, 0x80}, // not UTF-8
		every,
		[]byte("plain text"),
		{'='}, // base64 padding in the clear
		randomBytes(t, 300),
		randomBytes(t, pgnotify.MaxMessageSize),
	}
	for _, m := range msgs {
		require.NoError(t, a.Publish(t.Context(), m))
	}
	for _, m := range msgs {
		onA.expect(t, m) // this instance's subscribers included
		onB.expect(t, m)
	}
	onA.quiet(t)
	onB.quiet(t)
}

// A message published right after the first deliver(nil) must arrive: LISTEN
// has taken effect by then. Repeated, since a race would show only
// sometimes.
func TestDeliveredOnceListening(t *testing.T) {
	dsn := pgDSN(t)
	ch := pgnotify.WithChannel(newChannel(t))
	pub, sub := newBus(t, dsn, ch), newBus(t, dsn, ch)
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

func TestChannelsAreIsolated(t *testing.T) {
	dsn := pgDSN(t)
	x := newBus(t, dsn, pgnotify.WithChannel(newChannel(t)))
	y := newBus(t, dsn, pgnotify.WithChannel(newChannel(t)))
	onX, onY := subscribe(t, x), subscribe(t, y)
	onX.expectNil(t, "listening")
	onY.expectNil(t, "listening")

	require.NoError(t, x.Publish(t.Context(), []byte("for x")))
	require.NoError(t, y.Publish(t.Context(), []byte("for y")))
	// Each sentinel arrives after anything published before it: had the
	// other channel's message leaked, it would come first.
	require.NoError(t, x.Publish(t.Context(), []byte("x done")))
	require.NoError(t, y.Publish(t.Context(), []byte("y done")))
	onX.expect(t, []byte("for x"))
	onX.expect(t, []byte("x done"))
	onY.expect(t, []byte("for y"))
	onY.expect(t, []byte("y done"))
}

// A channel of the longest name PostgreSQL allows works end to end, and the
// default channel is the one documented.
func TestChannelNames(t *testing.T) {
	dsn := pgDSN(t)
	long := "z" + newChannel(t)
	long += strings.Repeat("_", 63-len(long))
	b := newBus(t, dsn, pgnotify.WithChannel(long))
	s := subscribe(t, b)
	s.expectNil(t, "listening")
	require.NoError(t, admin(t).QueryRow(t.Context(), "SELECT pg_notify($1, $2)", long, "AQI").Scan(new(any)))
	s.expect(t, []byte{1, 2})

	assert.Equal(t, "apitoken_invalidate", pgnotify.DefaultChannel)
}

// Notifications on the channel that Publish did not send (an operator's
// NOTIFY) are taken as "something may have been missed".
func TestForeignPayloads(t *testing.T) {
	ch := newChannel(t)
	b := newBus(t, pgDSN(t), pgnotify.WithChannel(ch))
	s := subscribe(t, b)
	s.expectNil(t, "listening")
	conn := admin(t)
	for _, payload := range []string{"", "not base64!", "AQ==", "A"} {
		_, err := conn.Exec(t.Context(), "SELECT pg_notify($1, $2)", ch, payload)
		require.NoError(t, err)
		s.expectNil(t, "a payload Publish did not send: "+payload)
	}
	_, err := conn.Exec(t.Context(), "NOTIFY "+ch)
	require.NoError(t, err)
	s.expectNil(t, "a bare NOTIFY")
	require.NoError(t, b.Publish(t.Context(), []byte("still ours")))
	s.expect(t, []byte("still ours"))
}

func TestReconnectAfterBackendTerminated(t *testing.T) {
	dsn := pgDSN(t)
	ch := pgnotify.WithChannel(newChannel(t))
	pub, b := newBus(t, dsn, ch), newBus(t, dsn, ch)
	pids := make(chan uint32, 10)
	pgnotify.OnListen(b, func(pid uint32) { pids <- pid })
	s := subscribe(t, b)
	s.expectNil(t, "listening")
	pid := <-pids
	conn := admin(t)

	for round := range 3 {
		var ok bool
		require.NoError(t, conn.QueryRow(t.Context(), "SELECT pg_terminate_backend($1)", pid).Scan(&ok))
		require.True(t, ok, "round %d: no backend with the listener's pid %d", round, pid)
		start := time.Now()
		s.expectNil(t, "listening again")
		select {
		case next := <-pids:
			require.NotEqual(t, pid, next, "round %d: listening again must be on a new backend", round)
			pid = next
		default:
			t.Fatalf("round %d: deliver(nil) came back without a new LISTEN", round)
		}
		t.Logf("round %d: listening again after %v", round, time.Since(start))
		msg := []byte{byte(round), 0xff}
		require.NoError(t, pub.Publish(t.Context(), msg))
		s.expect(t, msg)
	}
}

// proxy forwards TCP connections to a PostgreSQL server, and can freeze the
// ones it holds (no byte passes, nothing is closed: a peer gone without a
// word) or stop (every connection closed, no new one accepted).
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
	frozen []*atomic.Bool
	closed chan struct{}
	once   sync.Once
}

// newProxy starts a proxy to the server of dsn and returns it with the DSN
// that goes through it. It skips the test for a DSN that is not a URL.
func newProxy(tb testing.TB, dsn string) (*proxy, string) {
	tb.Helper()
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" || strings.Contains(u.Host, ",") {
		tb.Skipf("%s is not a postgres:// URL with one host: this test rewrites its host", pgDSNVar)
	}
	target := u.Host
	if u.Port() == "" {
		target = net.JoinHostPort(u.Hostname(), "5432")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(tb, err)
	p := &proxy{ln: ln, target: target, closed: make(chan struct{})}
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

// pipe copies from src to dst until either closes; once frozen, it reads
// and drops nothing, it holds everything until the proxy stops.
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
// the idle check's ping, and Subscribe reconnects.
func TestReconnectAfterSilentLoss(t *testing.T) {
	dsn := pgDSN(t)
	p, via := newProxy(t, dsn)
	ch := pgnotify.WithChannel(newChannel(t))
	pub, b := newBus(t, dsn, ch), newBus(t, via, ch)
	pgnotify.SetIdleCheck(b, 100*time.Millisecond, 300*time.Millisecond)
	s := subscribe(t, b)
	s.expectNil(t, "listening")

	// Idle checks that find the connection well change nothing.
	time.Sleep(350 * time.Millisecond)
	require.NoError(t, pub.Publish(t.Context(), []byte("after idle checks")))
	s.expect(t, []byte("after idle checks"))

	p.freeze()
	start := time.Now()
	s.expectNil(t, "listening again")
	t.Logf("silent loss found and listening again after %v (idle check 100ms, ping timeout 300ms)", time.Since(start))
	require.NoError(t, pub.Publish(t.Context(), []byte("after the reconnect")))
	s.expect(t, []byte("after the reconnect"))
}

// Subscribe returns promptly when its context ends: while listening, and
// while it waits to reconnect to a server that does not answer.
func TestSubscribeReturnsOnCancel(t *testing.T) {
	dsn := pgDSN(t)
	p, via := newProxy(t, dsn)
	for _, tc := range []struct {
		name   string
		before func(*testing.T, *subscriber)
	}{
		{"listening", func(*testing.T, *subscriber) {}},
		{"reconnecting", func(t *testing.T, s *subscriber) {
			p.stop()
			// A lost connection is no reason to empty the cache: the store
			// is most likely down too, and the cache must keep serving.
			s.expectNone(t, 300*time.Millisecond, "the connection lost, a few failed attempts")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBus(t, via, pgnotify.WithChannel(newChannel(t)))
			s := subscribe(t, b)
			s.expectNil(t, "listening")
			tc.before(t, s)
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
			s.quiet(t)
		})
	}
}

func TestClose(t *testing.T) {
	dsn := pgDSN(t)
	b := newBus(t, dsn, pgnotify.WithChannel(newChannel(t)))
	s := subscribe(t, b)
	s.expectNil(t, "listening")

	start := time.Now()
	b.Close()
	select {
	case err := <-s.done:
		require.ErrorIs(t, err, pgnotify.ErrClosed, "Subscribe must return ErrClosed once the Bus is closed")
	case <-time.After(time.Second): // Close waited for Subscribe; its goroutine is about to report
		t.Fatal("Subscribe did not return when the Bus was closed")
	}
	t.Logf("Close took %v with one Subscribe in progress", time.Since(start))
	s.done <- nil // for the cleanup
	b.Close()     // again: nothing

	require.ErrorIs(t, b.Publish(t.Context(), []byte("late")), pgnotify.ErrClosed)
	require.ErrorIs(t, b.Subscribe(t.Context(), func([]byte) { t.Error("deliver called after Close") }), pgnotify.ErrClosed)
}

func TestBadInput(t *testing.T) {
	// Options are checked before any connection: no server needed.
	const nowhere = "postgres://u@127.0.0.1:1/x?sslmode=disable&connect_timeout=1"
	t.Run("channel names", func(t *testing.T) {
		for _, name := range []string{
			"", "A", "Apitoken", "1abc", "a-b", "a b", "a.b", "a\x00b", "é", `a"b`,
			strings.Repeat("a", 64),
		} {
			_, err := pgnotify.New(t.Context(), nowhere, pgnotify.WithChannel(name))
			require.ErrorIs(t, err, apitoken.ErrInvalidInput, "channel %q", name)
			assert.Contains(t, err.Error(), "channel")
		}
		_, err := pgnotify.New(t.Context(), nowhere, nil)
		require.ErrorIs(t, err, apitoken.ErrInvalidInput, "a nil option")
	})

	t.Run("unparsable connection strings", func(t *testing.T) {
		for _, dsn := range []string{
			"postgres://u:s3cretPW@127.0.0.1:notaport/test",
			"postgres://u:s3cretPW@[::1/test",
			"postgres://u:s3cretPW@127.0.0.1/test?pool_max_conns=many",
			"host=127.0.0.1 password=s3cretPW port=notanumber",
			"host=127.0.0.1 password='s3cretPW port=5432",
			"s3cretPW",
		} {
			_, err := pgnotify.New(t.Context(), dsn)
			require.ErrorIs(t, err, apitoken.ErrInvalidInput, "%q", dsn)
			assert.NotContains(t, err.Error(), "s3cretPW", "an error must never show the password")
			assert.Contains(t, err.Error(), "connection string")
			var pe *pgconn.ParseConfigError
			assert.ErrorAs(t, err, &pe, "the parser's error stays reachable")
		}
	})

	t.Run("unreachable server", func(t *testing.T) {
		_, err := pgnotify.New(t.Context(), "postgres://someone:s3cretPW@127.0.0.1:1/test?sslmode=disable&connect_timeout=2")
		require.Error(t, err)
		assert.NotContains(t, err.Error(), "s3cretPW", "an error must never show the password")
		assert.Contains(t, err.Error(), "pgnotify: ")
		assert.Contains(t, err.Error(), "127.0.0.1", "the error names the server")
		t.Log(err)
	})

	t.Run("refused login", func(t *testing.T) {
		u, err := url.Parse(pgDSN(t))
		if err != nil || u.Scheme != "postgres" && u.Scheme != "postgresql" {
			t.Skipf("%s is not a postgres:// URL: this test rewrites its user", pgDSNVar)
		}
		u.User = url.UserPassword("pgnotify_no_such_role", "s3cretPW")
		_, err = pgnotify.New(t.Context(), u.String())
		require.Error(t, err)
		assert.NotContains(t, err.Error(), "s3cretPW", "an error must never show the password")
		assert.Contains(t, err.Error(), "pgnotify_no_such_role", "the error names the user")
		t.Log(err)
	})

	t.Run("messages", func(t *testing.T) {
		b := newBus(t, pgDSN(t), pgnotify.WithChannel(newChannel(t)))
		for _, msg := range [][]byte{nil, {}, make([]byte, pgnotify.MaxMessageSize+1), make([]byte, 1<<20)} {
			err := b.Publish(t.Context(), msg)
			require.ErrorIs(t, err, apitoken.ErrInvalidInput, "a message of %d bytes", len(msg))
			assert.Contains(t, err.Error(), "message")
		}
		require.NoError(t, b.Publish(t.Context(), make([]byte, pgnotify.MaxMessageSize)))
		require.ErrorIs(t, b.Subscribe(t.Context(), nil), apitoken.ErrInvalidInput, "a nil deliver")
	})

	t.Run("publish with a cancelled context", func(t *testing.T) {
		b := newBus(t, pgDSN(t), pgnotify.WithChannel(newChannel(t)))
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		err := b.Publish(ctx, []byte("x"))
		require.ErrorIs(t, err, context.Canceled)
		assert.Contains(t, err.Error(), "pgnotify: publish")
	})
}
