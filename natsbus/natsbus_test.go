package natsbus_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken-go/apitoken"
	"github.com/apitoken-go/apitoken/internal/logcheck"
	"github.com/apitoken-go/apitoken/natsbus"
)

// natsURLVar points the tests at a NATS server; .ci/run sets it.
const natsURLVar = "APITOKEN_NATS_URL"

// wait bounds every wait for something that should happen on a loopback
// server within milliseconds.
const wait = 5 * time.Second

// natsURL returns the URL of the test server, or skips the test saying how
// to run it.
func natsURL(tb testing.TB) string {
	tb.Helper()
	url := os.Getenv(natsURLVar)
	if url == "" {
		tb.Skipf("%s is not set: set it to the URL of a NATS server (e.g. nats://127.0.0.1:4222) to run this test", natsURLVar)
	}
	return url
}

func randomHex(tb testing.TB, n int) string {
	tb.Helper()
	b := make([]byte, n)
	_, err := rand.Read(b)
	require.NoError(tb, err)
	return hex.EncodeToString(b)
}

// newSubject returns a subject of its own for each test, so that tests
// running at once against the same server never hear each other.
func newSubject(tb testing.TB) string {
	tb.Helper()
	return "natsbus_test." + randomHex(tb, 8)
}

// connect returns a connection of its own to url that reconnects forever
// and fast, closed when the test ends (after the Buses made on it, whose
// cleanups run first).
func connect(tb testing.TB, url string, opts ...nats.Option) *nats.Conn {
	tb.Helper()
	opts = append([]nats.Option{nats.MaxReconnects(-1), nats.ReconnectWait(50 * time.Millisecond), nats.Name("natsbus test")}, opts...)
	nc, err := nats.Connect(url, opts...)
	require.NoError(tb, err)
	tb.Cleanup(nc.Close)
	return nc
}

// newBus returns a Bus on a connection of its own to url, closed when the
// test ends.
func newBus(tb testing.TB, url string, opts ...natsbus.Option) *natsbus.Bus {
	tb.Helper()
	return busOn(tb, connect(tb, url), opts...)
}

// busOn returns a Bus on nc, closed when the test ends.
func busOn(tb testing.TB, nc *nats.Conn, opts ...natsbus.Option) *natsbus.Bus {
	tb.Helper()
	b, err := natsbus.New(nc, opts...)
	require.NoError(tb, err)
	tb.Cleanup(b.Close)
	return b
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// capture returns a logger that keeps what it is given, and the buffer.
func capture() (*slog.Logger, *logcheck.Buffer) {
	logs := &logcheck.Buffer{}
	return slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})), logs
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
// that it returns. gate, unless nil, holds each deliver until it can
// receive.
func subscribe(tb testing.TB, b *natsbus.Bus, gate ...chan struct{}) *subscriber {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &subscriber{msgs: make(chan []byte, 10_000), done: make(chan error, 1), cancel: cancel}
	go func() {
		s.done <- b.Subscribe(ctx, func(msg []byte) {
			if s.inside.Add(1) > 1 {
				s.overlaps.Add(1)
			}
			for _, g := range gate {
				<-g
			}
			s.msgs <- bytes.Clone(msg)
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
	url := natsURL(t)
	subj := natsbus.WithSubject(newSubject(t))
	a, b := newBus(t, url, subj), newBus(t, url, subj)
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
		[]byte("\r\nMSG x 1 5\r\nhello\r\n"), // protocol in the payload
		randomBytes(t, 300),
		randomBytes(t, natsbus.MaxMessageSize),
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

func TestSubjectsAreIsolated(t *testing.T) {
	url := natsURL(t)
	x := newBus(t, url, natsbus.WithSubject(newSubject(t)))
	y := newBus(t, url, natsbus.WithSubject(newSubject(t)))
	onX, onY := subscribe(t, x), subscribe(t, y)
	onX.expectNil(t, "listening")
	onY.expectNil(t, "listening")

	require.NoError(t, x.Publish(t.Context(), []byte("for x")))
	require.NoError(t, y.Publish(t.Context(), []byte("for y")))
	// Each sentinel arrives after anything published before it: had the
	// other subject's message leaked, it would come first.
	require.NoError(t, x.Publish(t.Context(), []byte("x done")))
	require.NoError(t, y.Publish(t.Context(), []byte("y done")))
	onX.expect(t, []byte("for x"))
	onX.expect(t, []byte("x done"))
	onY.expect(t, []byte("for y"))
	onY.expect(t, []byte("y done"))
}

// A subject of the longest length works end to end, a subject's children
// are not heard, and the default subject is the one documented.
func TestSubjectNames(t *testing.T) {
	url := natsURL(t)
	admin := connect(t, url)
	subj := newSubject(t)
	subj += strings.Repeat("z", 256-len(subj))
	s := subscribe(t, newBus(t, url, natsbus.WithSubject(subj)))
	s.expectNil(t, "listening")
	require.NoError(t, admin.Publish(subj+".child", []byte("a child subject")))
	require.NoError(t, admin.Publish(subj, []byte{1, 2}))
	require.NoError(t, admin.Flush())
	s.expect(t, []byte{1, 2})

	assert.Equal(t, "apitoken.invalidate", natsbus.DefaultSubject)
}

// Messages on the subject that Publish did not send (an operator's
// nats pub) are taken as "something may have been missed".
func TestForeignPayloads(t *testing.T) {
	url := natsURL(t)
	subj := newSubject(t)
	b := newBus(t, url, natsbus.WithSubject(subj))
	s := subscribe(t, b)
	s.expectNil(t, "listening")
	admin := connect(t, url)
	for _, tc := range []struct {
		name    string
		payload []byte
	}{
		{"empty", nil},
		{"one byte over MaxMessageSize", make([]byte, natsbus.MaxMessageSize+1)},
		{"half a megabyte", make([]byte, 512<<10)},
	} {
		require.NoError(t, admin.Publish(subj, tc.payload))
		require.NoError(t, admin.Flush())
		s.expectNil(t, "a payload Publish did not send: "+tc.name)
	}
	require.NoError(t, b.Publish(t.Context(), []byte("still ours")))
	s.expect(t, []byte("still ours"))
}

func TestClose(t *testing.T) {
	b := newBus(t, natsURL(t), natsbus.WithSubject(newSubject(t)))
	s := subscribe(t, b)
	s.expectNil(t, "listening")

	start := time.Now()
	b.Close()
	select {
	case err := <-s.done:
		require.ErrorIs(t, err, natsbus.ErrClosed, "Subscribe must return ErrClosed once the Bus is closed")
	case <-time.After(time.Second): // Close waited for Subscribe; its goroutine is about to report
		t.Fatal("Subscribe did not return when the Bus was closed")
	}
	t.Logf("Close took %v with one Subscribe in progress", time.Since(start))
	s.done <- nil // for the cleanup
	b.Close()     // again: nothing

	require.ErrorIs(t, b.Publish(t.Context(), []byte("late")), natsbus.ErrClosed)
	require.ErrorIs(t, b.Subscribe(t.Context(), func([]byte) { t.Error("deliver called after Close") }), natsbus.ErrClosed)
}

// When the app closes the connection under the Bus, Subscribe gives up
// with an error, and so does each later call, which the Issuer makes after
// a pause.
func TestConnectionClosed(t *testing.T) {
	nc := connect(t, natsURL(t))
	b := busOn(t, nc, natsbus.WithSubject(newSubject(t)))
	s := subscribe(t, b)
	s.expectNil(t, "listening")
	nc.Close()
	select {
	case err := <-s.done:
		require.ErrorIs(t, err, nats.ErrConnectionClosed)
		assert.Contains(t, err.Error(), "natsbus: ")
	case <-time.After(wait):
		t.Fatal("Subscribe did not return when the connection was closed")
	}
	s.done <- nil // for the cleanup
	require.ErrorIs(t, b.Subscribe(t.Context(), func([]byte) {}), nats.ErrConnectionClosed)
	require.ErrorIs(t, b.Publish(t.Context(), []byte("x")), nats.ErrConnectionClosed)
	_, err := natsbus.New(nc)
	require.ErrorIs(t, err, nats.ErrConnectionClosed, "New on a closed connection")
}

func TestBadInput(t *testing.T) {
	url := natsURL(t)
	nc := connect(t, url)

	t.Run("nok, subjects", func(t *testing.T) {
		for _, subj := range []string{
			"", " ", "a b", "a\tb", "a\nb", "a\x00b", "é", "a\x7fb",
			".", "a.", ".a", "a..b", "*", "a.*", "a.>", ">", "a*b", "a>b",
			strings.Repeat("a", 257),
		} {
			_, err := natsbus.New(nc, natsbus.WithSubject(subj))
			require.ErrorIs(t, err, apitoken.ErrInvalidInput, "subject %q", subj)
			assert.Contains(t, err.Error(), "natsbus: ")
			assert.Contains(t, err.Error(), "subject")
		}
	})

	t.Run("nok, options", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			opt  natsbus.Option
			want string
		}{
			{"nil option", nil, "option"},
			{"nil logger", natsbus.WithLogger(nil), "logger"},
		} {
			_, err := natsbus.New(nc, tc.opt)
			require.ErrorIs(t, err, apitoken.ErrInvalidInput, tc.name)
			assert.Contains(t, err.Error(), tc.want, tc.name)
		}
		_, err := natsbus.New(nil)
		require.ErrorIs(t, err, apitoken.ErrInvalidInput, "a nil connection")
		assert.Contains(t, err.Error(), "connection")
	})

	t.Run("ok, options", func(t *testing.T) {
		_, err := natsbus.New(nc, natsbus.WithSubject("a.b-c_d$e"), natsbus.WithLogger(discard()))
		require.NoError(t, err)
	})

	t.Run("nok, messages", func(t *testing.T) {
		b := busOn(t, nc, natsbus.WithSubject(newSubject(t)))
		for _, msg := range [][]byte{nil, {}, make([]byte, natsbus.MaxMessageSize+1), make([]byte, 1<<20)} {
			err := b.Publish(t.Context(), msg)
			require.ErrorIs(t, err, apitoken.ErrInvalidInput, "a message of %d bytes", len(msg))
			assert.Contains(t, err.Error(), "message")
		}
		require.NoError(t, b.Publish(t.Context(), make([]byte, natsbus.MaxMessageSize)))
		require.ErrorIs(t, b.Subscribe(t.Context(), nil), apitoken.ErrInvalidInput, "a nil deliver")
	})

	t.Run("nok, publish with a cancelled context", func(t *testing.T) {
		b := busOn(t, nc, natsbus.WithSubject(newSubject(t)))
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		err := b.Publish(ctx, []byte("x"))
		require.ErrorIs(t, err, context.Canceled)
		assert.Contains(t, err.Error(), "natsbus: publish")
	})
}
