package redisbus_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken-go/apitoken"
	"github.com/apitoken-go/apitoken/redisbus"
)

// redisAddrVar points the tests at a Redis server; .ci/run sets it.
const redisAddrVar = "APITOKEN_REDIS_ADDR"

// wait bounds every wait for something that should happen on a loopback
// server within milliseconds.
const wait = 5 * time.Second

// redisAddr returns the address of the test server, or skips the test
// saying how to run it.
func redisAddr(tb testing.TB) string {
	tb.Helper()
	addr := os.Getenv(redisAddrVar)
	if addr == "" {
		tb.Skipf("%s is not set: set it to the host:port of a Redis server (e.g. 127.0.0.1:6379) to run this test", redisAddrVar)
	}
	return addr
}

func randomHex(tb testing.TB, n int) string {
	tb.Helper()
	b := make([]byte, n)
	_, err := rand.Read(b)
	require.NoError(tb, err)
	return hex.EncodeToString(b)
}

// newChannel returns a channel of its own for each test, so that tests
// running at once against the same server never hear each other.
func newChannel(tb testing.TB) string {
	tb.Helper()
	return "redisbus-test:" + randomHex(tb, 8)
}

// newClient returns a client of its own for addr, closed when the test
// ends (after the Buses made on it, whose cleanups run first).
func newClient(tb testing.TB, addr string, opts ...func(*redis.Options)) *redis.Client {
	tb.Helper()
	o := &redis.Options{Addr: addr}
	for _, opt := range opts {
		opt(o)
	}
	c := redis.NewClient(o)
	tb.Cleanup(func() { c.Close() })
	return c
}

// newBus returns a Bus on a client of its own for addr, closed when the
// test ends.
func newBus(tb testing.TB, addr string, opts ...redisbus.Option) *redisbus.Bus {
	tb.Helper()
	return busOn(tb, newClient(tb, addr), opts...)
}

// busOn returns a Bus on client, closed when the test ends.
func busOn(tb testing.TB, client redis.UniversalClient, opts ...redisbus.Option) *redisbus.Bus {
	tb.Helper()
	b, err := redisbus.New(client, opts...)
	require.NoError(tb, err)
	tb.Cleanup(b.Close)
	return b
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
func subscribe(tb testing.TB, b *redisbus.Bus) *subscriber {
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

// next returns the next delivery, failing the test if none comes in
// time.
func (s *subscriber) next(tb testing.TB, within time.Duration, what string) []byte {
	tb.Helper()
	select {
	case msg := <-s.msgs:
		return msg
	case err := <-s.done:
		tb.Fatalf("Subscribe returned %v while waiting for %s", err, what)
	case <-time.After(within):
		tb.Fatalf("no delivery within %v while waiting for %s", within, what)
	}
	return nil
}

// expectNil requires that the next delivery is nil: messages may have been
// missed.
func (s *subscriber) expectNil(tb testing.TB, what string) {
	tb.Helper()
	msg := s.next(tb, wait, what)
	require.Nil(tb, msg, "want deliver(nil) (%s), got a message %q", what, msg)
}

// expect requires that the next delivery is want, byte for byte.
func (s *subscriber) expect(tb testing.TB, want []byte) {
	tb.Helper()
	msg := s.next(tb, wait, "a message")
	require.NotNil(tb, msg, "want the message %q, got deliver(nil)", want)
	require.True(tb, bytes.Equal(want, msg), "want the message %q, got %q", want, msg)
}

// expectNone requires that nothing is delivered for d.
func (s *subscriber) expectNone(tb testing.TB, d time.Duration, what string) {
	tb.Helper()
	select {
	case msg := <-s.msgs:
		tb.Fatalf("%s: want no delivery, got %q (nil: %v, messages may have been missed)", what, msg, msg == nil)
	case <-time.After(d):
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
	addr := redisAddr(t)
	ch := redisbus.WithChannel(newChannel(t))
	a, b := newBus(t, addr, ch), newBus(t, addr, ch)
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
		[]byte("\r\n*3\r\n$7\r\nmessage\r\n"), // RESP in the payload
		randomBytes(t, 300),
		randomBytes(t, redisbus.MaxMessageSize),
	}
	for _, m := range msgs {
		require.NoError(t, a.Publish(t.Context(), m))
	}
	for _, m := range msgs {
		onA.expect(t, m) // this instance's subscribers included
		onB.expect(t, m)
	}
	onA.expectNone(t, 50*time.Millisecond, "after the messages")
	onB.expectNone(t, 50*time.Millisecond, "after the messages")
}

func TestChannelsAreIsolated(t *testing.T) {
	addr := redisAddr(t)
	x := newBus(t, addr, redisbus.WithChannel(newChannel(t)))
	y := newBus(t, addr, redisbus.WithChannel(newChannel(t)))
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

// Channel names are taken literally: a name with glob characters hears only
// itself. The longest name works end to end, and the default channel is the
// one documented.
func TestChannelNames(t *testing.T) {
	addr := redisAddr(t)
	admin := newClient(t, addr)
	for _, tc := range []struct{ name, channel string }{
		{"ok, glob characters are literal", newChannel(t) + ":*"},
		{"ok, longest name", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ch := tc.channel
			if ch == "" {
				ch = newChannel(t)
				ch += strings.Repeat("z", 256-len(ch))
			}
			s := subscribe(t, newBus(t, addr, redisbus.WithChannel(ch)))
			s.expectNil(t, "listening")
			if strings.HasSuffix(ch, "*") {
				require.NoError(t, admin.Publish(t.Context(), strings.TrimSuffix(ch, "*")+"x", "matches the glob").Err())
			}
			require.NoError(t, admin.Publish(t.Context(), ch, []byte{1, 2}).Err())
			s.expect(t, []byte{1, 2})
		})
	}
	assert.Equal(t, "apitoken:invalidate", redisbus.DefaultChannel)
}

// Messages on the channel that Publish did not send (an operator's
// PUBLISH) are taken as "something may have been missed".
func TestForeignPayloads(t *testing.T) {
	addr := redisAddr(t)
	ch := newChannel(t)
	b := newBus(t, addr, redisbus.WithChannel(ch))
	s := subscribe(t, b)
	s.expectNil(t, "listening")
	admin := newClient(t, addr)
	for _, tc := range []struct {
		name    string
		payload []byte
	}{
		{"empty", nil},
		{"one byte over MaxMessageSize", make([]byte, redisbus.MaxMessageSize+1)},
		{"a megabyte", make([]byte, 1<<20)},
	} {
		require.NoError(t, admin.Publish(t.Context(), ch, tc.payload).Err())
		s.expectNil(t, "a payload Publish did not send: "+tc.name)
	}
	require.NoError(t, b.Publish(t.Context(), []byte("still ours")))
	s.expect(t, []byte("still ours"))
}

func TestClose(t *testing.T) {
	b := newBus(t, redisAddr(t), redisbus.WithChannel(newChannel(t)))
	s := subscribe(t, b)
	s.expectNil(t, "listening")

	start := time.Now()
	b.Close()
	select {
	case err := <-s.done:
		require.ErrorIs(t, err, redisbus.ErrClosed, "Subscribe must return ErrClosed once the Bus is closed")
	case <-time.After(time.Second): // Close waited for Subscribe; its goroutine is about to report
		t.Fatal("Subscribe did not return when the Bus was closed")
	}
	t.Logf("Close took %v with one Subscribe in progress", time.Since(start))
	s.done <- nil // for the cleanup
	b.Close()     // again: nothing

	require.ErrorIs(t, b.Publish(t.Context(), []byte("late")), redisbus.ErrClosed)
	require.ErrorIs(t, b.Subscribe(t.Context(), func([]byte) { t.Error("deliver called after Close") }), redisbus.ErrClosed)
}

func TestBadInput(t *testing.T) {
	// Options are checked before any connection: no server needed.
	nowhere := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { nowhere.Close() })

	t.Run("nok, channel names", func(t *testing.T) {
		for _, name := range []string{
			"", " ", "a b", "a\tb", "a\nb", "a\x00b", "é", "a\x7fb",
			strings.Repeat("a", 257),
		} {
			_, err := redisbus.New(nowhere, redisbus.WithChannel(name))
			require.ErrorIs(t, err, apitoken.ErrInvalidInput, "channel %q", name)
			assert.Contains(t, err.Error(), "redisbus: ")
			assert.Contains(t, err.Error(), "channel")
		}
	})

	t.Run("nok, options", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			opt  redisbus.Option
			want string
		}{
			{"nil option", nil, "option"},
			{"nil logger", redisbus.WithLogger(nil), "logger"},
		} {
			_, err := redisbus.New(nowhere, tc.opt)
			require.ErrorIs(t, err, apitoken.ErrInvalidInput, tc.name)
			assert.Contains(t, err.Error(), tc.want, tc.name)
		}
		_, err := redisbus.New(nil)
		require.ErrorIs(t, err, apitoken.ErrInvalidInput, "a nil client")
		assert.Contains(t, err.Error(), "client")
	})

	t.Run("ok, New does not connect", func(t *testing.T) {
		_, err := redisbus.New(nowhere, redisbus.WithChannel("a:b*c"), redisbus.WithLogger(discard()))
		require.NoError(t, err)
	})

	t.Run("nok, messages", func(t *testing.T) {
		b := newBus(t, redisAddr(t), redisbus.WithChannel(newChannel(t)))
		for _, msg := range [][]byte{nil, {}, make([]byte, redisbus.MaxMessageSize+1), make([]byte, 1<<20)} {
			err := b.Publish(t.Context(), msg)
			require.ErrorIs(t, err, apitoken.ErrInvalidInput, "a message of %d bytes", len(msg))
			assert.Contains(t, err.Error(), "message")
		}
		require.NoError(t, b.Publish(t.Context(), make([]byte, redisbus.MaxMessageSize)))
		require.ErrorIs(t, b.Subscribe(t.Context(), nil), apitoken.ErrInvalidInput, "a nil deliver")
	})

	t.Run("nok, publish with a cancelled context", func(t *testing.T) {
		b := newBus(t, redisAddr(t), redisbus.WithChannel(newChannel(t)))
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		err := b.Publish(ctx, []byte("x"))
		require.ErrorIs(t, err, context.Canceled)
		assert.Contains(t, err.Error(), "redisbus: publish")
	})

	t.Run("nok, unreachable server", func(t *testing.T) {
		b := busOn(t, nowhere)
		err := b.Publish(t.Context(), []byte("x"))
		require.Error(t, err)
		assert.Contains(t, err.Error(), "redisbus: publish")
		assert.Contains(t, err.Error(), "127.0.0.1:1", "the error names the server")
		t.Log(err)
	})
}
