package redisbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/apitoken-go/apitoken"
)

// DefaultChannel is the channel a Bus uses unless WithChannel sets another.
const DefaultChannel = "apitoken:invalidate"

// MaxMessageSize is the largest message Publish sends, in bytes. The
// Issuer's messages are under 300 bytes; a message on the channel larger
// than this, or empty, was not sent by a Bus, and Subscribe delivers it as
// nil.
const MaxMessageSize = 4096

// maxChannelLen bounds a channel name; Redis itself takes any length.
const maxChannelLen = 256

// ErrClosed is returned by Publish and Subscribe after Close.
var ErrClosed = errors.New("redisbus: bus closed")

// A Bus is an apitoken.Bus over Redis pub/sub. It is safe for concurrent
// use. Make one with New, and close it after the Issuers that use it and
// before the client.
type Bus struct {
	client  redis.UniversalClient
	channel string
	log     *slog.Logger // nil: slog.Default

	closing context.Context // done once Close is called
	close   context.CancelFunc
	closed  atomic.Bool
	mu      sync.Mutex     // orders subs.Add before Close's subs.Wait
	subs    sync.WaitGroup // Subscribe calls in progress

	// idle and pingTimeout are those of the watchdog, in fields so that the
	// tests can shorten them.
	idle, pingTimeout time.Duration
}

var _ apitoken.ReportingBus = (*Bus)(nil)

// An Option configures a Bus. New returns the first error an option
// reports.
type Option func(*config) error

type config struct {
	channel string
	log     *slog.Logger
}

// WithLogger sets where Subscribe reports a lost connection and failed
// attempts to subscribe again, at Warn (slog.Default otherwise): while it
// cannot listen, other instances' deletes reach this one only through the
// cache's TTL.
func WithLogger(logger *slog.Logger) Option {
	return func(c *config) error {
		if logger == nil {
			return fmt.Errorf("redisbus: %w: logger is nil", apitoken.ErrInvalidInput)
		}
		c.log = logger
		return nil
	}
}

// WithChannel sets the channel the Bus publishes and subscribes on,
// DefaultChannel otherwise. The name is 1 to 256 printable ASCII characters
// without spaces, taken literally (SUBSCRIBE, not PSUBSCRIBE: '*' matches
// only itself). A bad name is an error wrapping apitoken.ErrInvalidInput.
func WithChannel(name string) Option {
	return func(c *config) error {
		if !validChannel(name) {
			return fmt.Errorf("redisbus: %w: channel must be 1 to %d printable ASCII characters without spaces", apitoken.ErrInvalidInput, maxChannelLen)
		}
		c.channel = name
		return nil
	}
}

func validChannel(s string) bool {
	if s == "" || len(s) > maxChannelLen {
		return false
	}
	for i := range len(s) {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// New returns a Bus over client, a *redis.Client, *redis.ClusterClient or
// failover client of github.com/redis/go-redis/v9, which the app keeps
// owning: the Bus never closes it. Publish sends commands through it, and
// each Subscribe holds a pub/sub connection of its own, made with the
// client's options. New does not contact the server.
func New(client redis.UniversalClient, opts ...Option) (*Bus, error) {
	if client == nil {
		return nil, fmt.Errorf("redisbus: %w: client is nil", apitoken.ErrInvalidInput)
	}
	c := config{channel: DefaultChannel}
	for _, opt := range opts {
		if opt == nil {
			return nil, fmt.Errorf("redisbus: %w: option is nil", apitoken.ErrInvalidInput)
		}
		if err := opt(&c); err != nil {
			return nil, err
		}
	}
	closing, cancel := context.WithCancel(context.Background())
	return &Bus{
		client:      client,
		channel:     c.channel,
		log:         c.log,
		closing:     closing,
		close:       cancel,
		idle:        idleCheck,
		pingTimeout: pingTimeout,
	}, nil
}

// logger is where the Bus reports what goes wrong.
func (b *Bus) logger() *slog.Logger {
	if b.log != nil {
		return b.log
	}
	return slog.Default()
}

// Publish sends msg to every Subscribe on the Bus's channel, this
// instance's included. msg must hold 1 to MaxMessageSize bytes (an empty
// message could not be told from the nil of a missed one): otherwise the
// error wraps apitoken.ErrInvalidInput. Publish returns once Redis has
// passed the message to the subscribers connected to it; when Redis cannot
// be reached, it returns the client's error once the client's retries are
// spent.
func (b *Bus) Publish(ctx context.Context, msg []byte) error {
	if b.closed.Load() {
		return ErrClosed
	}
	if len(msg) == 0 || len(msg) > MaxMessageSize {
		return fmt.Errorf("redisbus: %w: message is %d bytes, want 1 to %d", apitoken.ErrInvalidInput, len(msg), MaxMessageSize)
	}
	if err := b.client.Publish(ctx, b.channel, msg).Err(); err != nil {
		if b.closed.Load() {
			return ErrClosed
		}
		return fmt.Errorf("redisbus: publish: %w", err)
	}
	return nil
}

// Close stops the Subscribe calls in progress, waits for them to return and
// closes their pub/sub connections. Publish and Subscribe then return
// ErrClosed. Close the Issuers that use the Bus first, and the client after.
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
