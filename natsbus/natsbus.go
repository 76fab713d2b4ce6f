package natsbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/apitoken-go/apitoken"
)

// DefaultSubject is the subject a Bus uses unless WithSubject sets another.
const DefaultSubject = "apitoken.invalidate"

// MaxMessageSize is the largest message Publish sends, in bytes, well under
// the servers' max_payload. The Issuer's messages are under 300 bytes; a
// message on the subject larger than this, or empty, was not sent by a Bus,
// and Subscribe delivers it as nil.
const MaxMessageSize = 4096

// maxSubjectLen bounds a subject; NATS itself sets no limit.
const maxSubjectLen = 256

// flushTimeout bounds a round trip to the server: Publish's and the one
// that confirms a subscription.
const flushTimeout = 5 * time.Second

// ErrClosed is returned by Publish and Subscribe after Close.
var ErrClosed = errors.New("natsbus: bus closed")

// A Bus is an apitoken.Bus over core NATS. It is safe for concurrent use.
// Make one with New, and close it after the Issuers that use it and before
// the connection.
type Bus struct {
	nc      *nats.Conn
	subject string
	log     *slog.Logger // nil: slog.Default

	closing context.Context // done once Close is called
	close   context.CancelFunc
	closed  atomic.Bool
	mu      sync.Mutex     // orders subs.Add before Close's subs.Wait
	subs    sync.WaitGroup // Subscribe calls in progress

	// settle is how long after a subscription confirmed on a clustered
	// server Subscribe delivers nil again; in a field so that the tests
	// can shorten it.
	settle time.Duration
}

var _ apitoken.ReportingBus = (*Bus)(nil)

// An Option configures a Bus. New returns the first error an option
// reports.
type Option func(*config) error

type config struct {
	subject string
	log     *slog.Logger
}

// WithLogger sets where Subscribe reports a lost connection and failed
// attempts to confirm its subscription, at Warn (slog.Default otherwise):
// while it cannot listen, other instances' deletes reach this one only
// through the cache's TTL.
func WithLogger(logger *slog.Logger) Option {
	return func(c *config) error {
		if logger == nil {
			return fmt.Errorf("natsbus: %w: logger is nil", apitoken.ErrInvalidInput)
		}
		c.log = logger
		return nil
	}
}

// WithSubject sets the subject the Bus publishes and subscribes on,
// DefaultSubject otherwise. It is 1 to 256 characters: tokens of printable
// ASCII separated by '.', none empty, without the wildcards '*' and '>'. A
// bad subject is an error wrapping apitoken.ErrInvalidInput.
func WithSubject(subject string) Option {
	return func(c *config) error {
		if !validSubject(subject) {
			return fmt.Errorf("natsbus: %w: subject must be 1 to %d characters, '.'-separated tokens of printable ASCII without wildcards", apitoken.ErrInvalidInput, maxSubjectLen)
		}
		c.subject = subject
		return nil
	}
}

func validSubject(s string) bool {
	if s == "" || len(s) > maxSubjectLen {
		return false
	}
	for tok := range strings.SplitSeq(s, ".") {
		if tok == "" {
			return false
		}
		for i := range len(tok) {
			if c := tok[i]; c <= ' ' || c > '~' || c == '*' || c == '>' {
				return false
			}
		}
	}
	return true
}

// New returns a Bus over nc, the app's connection (github.com/nats-io/nats.go),
// which the app keeps owning: the Bus never closes it, and installs no
// handler on it, so the app's own (nats.ReconnectHandler and the others)
// keep working; it follows the connection's state through
// nc.StatusChanged instead. Make nc with nats.MaxReconnects(-1): a
// connection that stops reconnecting is closed for good, and so is the Bus's
// subscription. A closed connection is an error.
func New(nc *nats.Conn, opts ...Option) (*Bus, error) {
	if nc == nil {
		return nil, fmt.Errorf("natsbus: %w: connection is nil", apitoken.ErrInvalidInput)
	}
	c := config{subject: DefaultSubject}
	for _, opt := range opts {
		if opt == nil {
			return nil, fmt.Errorf("natsbus: %w: option is nil", apitoken.ErrInvalidInput)
		}
		if err := opt(&c); err != nil {
			return nil, err
		}
	}
	if nc.IsClosed() {
		return nil, fmt.Errorf("natsbus: %w", nats.ErrConnectionClosed)
	}
	closing, cancel := context.WithCancel(context.Background())
	return &Bus{
		nc:      nc,
		subject: c.subject,
		log:     c.log,
		closing: closing,
		close:   cancel,
		settle:  settleDelay,
	}, nil
}

// logger is where the Bus reports what goes wrong.
func (b *Bus) logger() *slog.Logger {
	if b.log != nil {
		return b.log
	}
	return slog.Default()
}

// Publish sends msg to every Subscribe on the Bus's subject, this
// instance's included (unless the connection was made with nats.NoEcho,
// which the Issuer does not need). msg must hold 1 to MaxMessageSize bytes
// (an empty message could not be told from the nil of a missed one):
// otherwise the error wraps apitoken.ErrInvalidInput. Publish returns once
// the server has the message (a round trip), or an error if it does not.
// While the connection reconnects, Publish leaves the message in the
// connection's reconnect buffer, which sends it once connected again, and
// returns an error wrapping nats.ErrConnectionReconnecting, as the message
// did not reach the server.
func (b *Bus) Publish(ctx context.Context, msg []byte) error {
	if b.closed.Load() {
		return ErrClosed
	}
	if len(msg) == 0 || len(msg) > MaxMessageSize {
		return fmt.Errorf("natsbus: %w: message is %d bytes, want 1 to %d", apitoken.ErrInvalidInput, len(msg), MaxMessageSize)
	}
	// An ended context sends nothing: FlushWithContext may still see the
	// server's answer before it looks at the context.
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("natsbus: publish: %w", err)
	}
	status := b.nc.Status()
	if err := b.nc.Publish(b.subject, msg); err != nil {
		return fmt.Errorf("natsbus: publish: %w", err)
	}
	if status == nats.RECONNECTING || status == nats.CONNECTING {
		return fmt.Errorf("natsbus: publish: %w (the message waits in the reconnect buffer)", nats.ErrConnectionReconnecting)
	}
	if err := b.flush(ctx); err != nil {
		return fmt.Errorf("natsbus: publish: %w", err)
	}
	return nil
}

// flush makes a round trip to the server: once it returns nil, the server
// has processed everything sent before on the connection.
func (b *Bus) flush(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, flushTimeout)
	defer cancel()
	return b.nc.FlushWithContext(ctx)
}

// Close stops the Subscribe calls in progress, waits for them to return and
// removes their subscriptions. Publish and Subscribe then return ErrClosed.
// Close the Issuers that use the Bus first, and the connection after.
// Calling Close again does nothing.
func (b *Bus) Close() {
	b.mu.Lock()
	if b.closed.Load() {
		b.mu.Unlock()
		return
	}
	b.closed.Store(true)
	b.mu.Unlock()
	b.close()
	b.subs.Wait()
}
