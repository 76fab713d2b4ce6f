package pgnotify

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/apitoken-go/apitoken"
)

// DefaultChannel is the channel a Bus uses unless WithChannel sets another.
const DefaultChannel = "apitoken_invalidate"

// MaxMessageSize is the largest message Publish sends, in bytes: its base64
// stays well under PostgreSQL's 8000-byte limit on a NOTIFY payload.
const MaxMessageSize = 4096

// maxChannelLen is PostgreSQL's longest identifier (NAMEDATALEN - 1).
const maxChannelLen = 63

// ErrClosed is returned by Publish and Subscribe after Close.
var ErrClosed = errors.New("pgnotify: bus closed")

// Timings of Subscribe.
const (
	idleCheck      = 30 * time.Second // ping a connection idle this long
	pingTimeout    = 30 * time.Second // a ping slower than this means the connection is lost
	connectTimeout = 15 * time.Second // per attempt to connect and LISTEN
	minBackoff     = 100 * time.Millisecond
	maxBackoff     = 5 * time.Second
	closeTimeout   = time.Second // to say goodbye to the server
)

// Payloads are unpadded standard base64: NOTIFY payloads are text, and our
// messages are bytes.
var encoding = base64.RawStdEncoding

// A Bus is an apitoken.Bus over PostgreSQL's LISTEN/NOTIFY. It is safe for
// concurrent use. Make one with New, and close it after the Issuers that use
// it.
type Bus struct {
	pool    *pgxpool.Pool
	conn    *pgx.ConnConfig // for Subscribe's own connections
	channel string
	listen  string       // LISTEN <channel>, quoted
	log     *slog.Logger // nil: slog.Default

	closing context.Context // done once Close is called
	close   context.CancelFunc
	closed  atomic.Bool
	mu      sync.Mutex     // orders subs.Add before Close's subs.Wait
	subs    sync.WaitGroup // Subscribe calls in progress

	// idleCheck and pingTimeout, in fields so that the tests can shorten
	// them.
	idle, pingTimeout time.Duration
	onListen          func(pid uint32) // test hook, called once LISTEN took effect
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
// attempts to listen again, at Warn (slog.Default otherwise): while it
// cannot listen, other instances' deletes reach this one only through the
// cache's TTL.
func WithLogger(logger *slog.Logger) Option {
	return func(c *config) error {
		if logger == nil {
			return fmt.Errorf("pgnotify: %w: logger is nil", apitoken.ErrInvalidInput)
		}
		c.log = logger
		return nil
	}
}

// logger is where the Bus reports what goes wrong.
func (b *Bus) logger() *slog.Logger {
	if b.log != nil {
		return b.log
	}
	return slog.Default()
}

// WithChannel sets the channel the Bus publishes and listens on,
// DefaultChannel otherwise. The name is 1 to 63 characters of [a-z0-9_]
// starting with a letter or '_', so that it reads the same quoted or not (an
// operator's unquoted NOTIFY folds to lower case). A bad name is an error
// wrapping apitoken.ErrInvalidInput.
func WithChannel(name string) Option {
	return func(c *config) error {
		if !validChannel(name) {
			return fmt.Errorf("pgnotify: %w: channel must be 1 to %d characters of [a-z0-9_] starting with a letter or '_'", apitoken.ErrInvalidInput, maxChannelLen)
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
		c := s[i]
		if !('a' <= c && c <= 'z' || c == '_' || i > 0 && '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// New connects to the PostgreSQL database of connString (a URL or key=value
// string, as pgx takes it) and returns a Bus on it. It checks the connection
// once, so that a bad connection string or an unreachable server fails here
// rather than at the first Publish. Subscribe connects on its own.
func New(ctx context.Context, connString string, opts ...Option) (*Bus, error) {
	c := config{channel: DefaultChannel}
	for _, opt := range opts {
		if opt == nil {
			return nil, fmt.Errorf("pgnotify: %w: option is nil", apitoken.ErrInvalidInput)
		}
		if err := opt(&c); err != nil {
			return nil, err
		}
	}
	cfg, err := pgxpool.ParseConfig(connString)
	if err != nil {
		// pgx's message quotes the connection string with the password
		// redacted on a best-effort basis only: ours quotes nothing.
		return nil, &parseError{err: err}
	}
	// Invalidations are rare and small: two connections serve thousands a
	// second.
	if !strings.Contains(connString, "pool_max_conns") {
		cfg.MaxConns = 2
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("pgnotify: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("pgnotify: %w", err)
	}
	closing, cancel := context.WithCancel(context.Background())
	return &Bus{
		pool:        pool,
		conn:        cfg.ConnConfig,
		channel:     c.channel,
		log:         c.log,
		listen:      "LISTEN " + pgx.Identifier{c.channel}.Sanitize(),
		closing:     closing,
		close:       cancel,
		idle:        idleCheck,
		pingTimeout: pingTimeout,
	}, nil
}

// parseError is an unparsable connection string. Its message is fixed, as
// the string may hold a password; the parser's error is still reachable
// through errors.As.
type parseError struct{ err error }

func (e *parseError) Error() string {
	return "pgnotify: apitoken: invalid input: cannot parse the connection string"
}

func (e *parseError) Unwrap() []error { return []error{apitoken.ErrInvalidInput, e.err} }

// Publish sends msg to every Subscribe on the Bus's channel in the database,
// this instance's included. msg must hold 1 to MaxMessageSize bytes (an empty
// message could not be told from the nil of a missed one): otherwise the
// error wraps apitoken.ErrInvalidInput. Publish returns once PostgreSQL has
// queued the notification.
func (b *Bus) Publish(ctx context.Context, msg []byte) error {
	if b.closed.Load() {
		return ErrClosed
	}
	if len(msg) == 0 || len(msg) > MaxMessageSize {
		return fmt.Errorf("pgnotify: %w: message is %d bytes, want 1 to %d", apitoken.ErrInvalidInput, len(msg), MaxMessageSize)
	}
	if _, err := b.pool.Exec(ctx, "SELECT pg_notify($1, $2)", b.channel, encoding.EncodeToString(msg)); err != nil {
		if b.closed.Load() {
			return ErrClosed
		}
		return fmt.Errorf("pgnotify: publish: %w", err)
	}
	return nil
}

// Subscribe listens on the Bus's channel on a connection of its own and
// calls deliver, from the calling goroutine, with each message published,
// until ctx ends or the Bus is closed. It calls deliver(nil) once LISTEN has
// taken effect (every message published after that is delivered), and again
// once it listens after a lost connection, which it reconnects with a
// backoff from 100 ms to 5 s, for as long as ctx lasts. It does not call it
// when the connection is lost: the cache keeps serving through an outage of
// the database, as the store's outage would make it anyway.
// It returns nil when ctx ends and ErrClosed when the Bus is closed. deliver
// must not call Close.
func (b *Bus) Subscribe(ctx context.Context, deliver func(msg []byte)) error {
	return b.SubscribeReporting(ctx, deliver, nil)
}

// SubscribeReporting is Subscribe, also calling lost, from the goroutine
// that calls deliver, each time the connection it listens on is lost (it
// reconnects; the next deliver(nil) means it listens again). With it, the
// Issuer's Stats and events tell when the bus is down
// (apitoken.ReportingBus). A nil lost reports nothing.
func (b *Bus) SubscribeReporting(ctx context.Context, deliver func(msg []byte), lost func(err error)) error {
	if deliver == nil {
		return fmt.Errorf("pgnotify: %w: deliver is nil", apitoken.ErrInvalidInput)
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
	done := func() error {
		if b.closed.Load() {
			return ErrClosed
		}
		return nil
	}

	conn := b.connect(ctx)
	if conn == nil {
		return done()
	}
	defer func() {
		if conn != nil { // nil when ctx ended while reconnecting
			closeConn(conn)
		}
	}()
	deliver(nil)
	for {
		n, err := b.wait(ctx, conn)
		if ctx.Err() != nil {
			return done()
		}
		if err != nil {
			// No deliver(nil) yet: when the database is down, the store
			// is too, and the cache must keep serving what it holds. What
			// is missed meanwhile is covered by the deliver(nil) once
			// listening again; until then the cache's TTL bounds it.
			closeConn(conn)
			b.logger().LogAttrs(ctx, slog.LevelWarn, "pgnotify: connection lost; reconnecting", slog.Any("err", err))
			if lost != nil {
				lost(fmt.Errorf("pgnotify: connection lost: %w", err))
			}
			if conn = b.connect(ctx); conn == nil {
				return done()
			}
			deliver(nil)
			continue
		}
		if n == nil || n.Channel != b.channel {
			continue
		}
		msg, err := encoding.DecodeString(n.Payload)
		if err != nil || len(msg) == 0 {
			// Not one of ours (an operator's bare NOTIFY, say): whatever it
			// meant, the safe reading is that something may have been
			// missed.
			msg = nil
		}
		deliver(msg)
	}
}

// wait returns the next notification on conn, or an error once the
// connection is lost. A connection idle for b.idle is pinged, so that a
// dead peer that never closed the connection is noticed.
func (b *Bus) wait(ctx context.Context, conn *pgx.Conn) (*pgconn.Notification, error) {
	for {
		wctx, cancel := context.WithTimeout(ctx, b.idle)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		// A timeout leaves the connection usable (pgx interrupts the read
		// with a deadline and resumes a partly read message): anything
		// else closes it.
		if err == nil || ctx.Err() != nil || !errors.Is(err, context.DeadlineExceeded) || conn.IsClosed() {
			return n, err
		}
		pctx, cancel := context.WithTimeout(ctx, b.pingTimeout)
		err = conn.Ping(pctx)
		cancel()
		if err != nil {
			return nil, err
		}
	}
}

// connect returns a connection that listens on the channel, trying again
// with a growing pause until it succeeds, or nil once ctx ends. It logs the
// first failed attempt and every tenth after it.
func (b *Bus) connect(ctx context.Context) *pgx.Conn {
	pause := minBackoff
	for attempt := 1; ; attempt++ {
		conn, err := b.tryConnect(ctx)
		if err == nil {
			return conn
		}
		if ctx.Err() == nil && attempt%10 == 1 {
			b.logger().LogAttrs(ctx, slog.LevelWarn, "pgnotify: cannot listen; retrying",
				slog.Int("attempt", attempt), slog.Any("err", err))
		}
		// A jittered pause, so that the instances of an app do not all
		// come back in the same millisecond after a restart of the server.
		t := time.NewTimer(pause/2 + rand.N(pause/2+1))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		pause = min(2*pause, maxBackoff)
	}
}

// tryConnect connects once and runs LISTEN.
func (b *Bus) tryConnect(ctx context.Context) (*pgx.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, b.conn)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, b.listen); err != nil {
		closeConn(conn)
		return nil, err
	}
	if b.onListen != nil {
		b.onListen(conn.PgConn().PID())
	}
	return conn, nil
}

// closeConn closes conn, waiting a little for the server to hear it.
func closeConn(conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	conn.Close(ctx) // the connection is gone either way
}

// Close stops the Subscribe calls in progress, waits for them to return, and
// closes the Bus's connections. Publish and Subscribe then return ErrClosed.
// Close the Issuers that use the Bus first. Calling Close again does nothing.
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
	b.pool.Close()
}
