package apitoken

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// An Option configures an Issuer. Options are applied in order by NewIssuer,
// which returns the first error an option reports.
type Option func(*config) error

type config struct {
	prefix     string
	hashKey    []byte
	now        func() time.Time
	maxTokens  int          // 0: no limit
	auditLog   *slog.Logger // nil: no audit records
	lastUse    time.Duration
	lastUseSet bool     // by WithLastUseInterval; otherwise the default applies
	previous   [][]byte // hash keys before the current one
	cacheSize  int      // 0: no cache
	cacheTTL   time.Duration
	bus        Bus
	logger     *slog.Logger // nil: slog.Default()
	events     []func(context.Context, Event)
	tracer     Tracer

	defaultLifetime, maxLifetime time.Duration // 0: none
}

// minHashKeyLen is the shortest application key WithHashKey accepts: as many
// bytes as the SHA-256 output, the key size HMAC-SHA-256 is designed for.
const minHashKeyLen = 32

// WithPrefix sets the prefix of issued secrets (DefaultPrefix otherwise), so
// that a leaked secret names its issuer. It is 1 to 32 characters of
// [a-z0-9_] starting with a letter. Changing it invalidates every secret
// issued under the old prefix.
func WithPrefix(prefix string) Option {
	return func(c *config) error {
		if err := checkPrefix(prefix); err != nil {
			return err
		}
		c.prefix = prefix
		return nil
	}
}

// WithHashKey sets an application key (a pepper) for the keyed hash of
// secrets, at least 32 random bytes kept outside the database: a copy of the
// database alone then cannot confirm a guessed secret. Changing the key
// invalidates every token issued under the old one. The key is copied.
func WithHashKey(key []byte) Option {
	return func(c *config) error {
		if len(key) < minHashKeyLen {
			return fmt.Errorf("%w: hash key is %d bytes, want at least %d", ErrInvalidInput, len(key), minHashKeyLen)
		}
		c.hashKey = append([]byte(nil), key...)
		return nil
	}
}

// WithClock sets the clock used for creation times and expiry (time.Now
// otherwise). Tests use it to move time.
func WithClock(now func() time.Time) Option {
	return func(c *config) error {
		if now == nil {
			return fmt.Errorf("%w: clock is nil", ErrInvalidInput)
		}
		c.now = now
		return nil
	}
}

// validPrefix reports whether p is a prefix WithPrefix accepts, without
// allocating: checkPrefix says why not.
func validPrefix(p string) bool {
	if len(p) == 0 || len(p) > maxPrefixLen || p[0] < 'a' || p[0] > 'z' {
		return false
	}
	for i := range len(p) {
		if c := p[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

func checkPrefix(p string) error {
	if len(p) == 0 || len(p) > maxPrefixLen {
		return fmt.Errorf("%w: prefix must be 1 to %d characters, got %d", ErrInvalidInput, maxPrefixLen, len(p))
	}
	if p[0] < 'a' || p[0] > 'z' {
		return fmt.Errorf("%w: prefix must start with a letter a-z", ErrInvalidInput)
	}
	for i := range len(p) {
		if c := p[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return fmt.Errorf("%w: prefix may contain only a-z, 0-9 and '_'", ErrInvalidInput)
		}
	}
	return nil
}

// WithMaxTokensPerAccount limits how many tokens an account may hold (n is
// at least 1): Issue then returns an error wrapping ErrLimitReached, and
// stores nothing, when the account already has n, expired ones included
// until they are deleted or pruned. The limit holds under concurrent Issue
// calls, also from several processes, because the Store checks it and
// inserts in one atomic step: it must implement LimitedCreator (memstore and
// sqlstore do), or NewIssuer returns an error wrapping errors.ErrUnsupported.
// Rotate does not count against it: an account holds more tokens than the
// limit while rotated tokens have not been deleted or pruned.
func WithMaxTokensPerAccount(n int) Option {
	return func(c *config) error {
		if n < 1 {
			return fmt.Errorf("%w: the token limit is %d, want at least 1", ErrInvalidInput, n)
		}
		c.maxTokens = n
		return nil
	}
}

// WithAuditLogger writes an audit record to logger for every token issued,
// rotated, deleted, disabled or enabled, and every member's tokens deleted
// or unused tokens pruned (at Info), every verification Verify refused (at
// Warn, with the reason it keeps from its caller: "malformed", "unknown",
// "wrong account", with the token's own account, "expired", "older than
// max lifetime", "disabled" or "address not allowed") and every one that
// succeeded (at Debug, as there is one per request). Records of a token
// carry its hint (Token.Hint), by which operators recognise it. Requests that the
// middleware refuses as malformed (400), before Verify, are recorded at Warn
// with the reason "malformed" and the problem in the package's own words,
// and those it refuses for an Authorization scheme its extractor does not
// read (401) with the reason "unsupported scheme". Records carry the account id and the token id, never a secret nor its
// hash; an account id that came with a request and is not a valid one is
// written cut to 128 bytes and quoted.
func WithAuditLogger(logger *slog.Logger) Option {
	return func(c *config) error {
		if logger == nil {
			return fmt.Errorf("%w: audit logger is nil", ErrInvalidInput)
		}
		c.auditLog = logger
		return nil
	}
}

// WithLogger sets where the Issuer reports the failures of its background
// work, which no caller sees as an error: last uses not written, cache
// invalidations not sent, a cache bus subscription lost, a token not moved
// to the current hash key (at Warn). Nothing secret is ever logged. The
// default is slog.Default() at the time of the failure. It is not the audit
// log (WithAuditLogger), which records what happened to tokens.
func WithLogger(logger *slog.Logger) Option {
	return func(c *config) error {
		if logger == nil {
			return fmt.Errorf("%w: logger is nil", ErrInvalidInput)
		}
		c.logger = logger
		return nil
	}
}

// defaultLastUseInterval is WithLastUseInterval's default.
const defaultLastUseInterval = 5 * time.Minute

// WithLastUseInterval sets how often, at most, the last use of each token
// is written to the store, in its LastUsedAt (5 minutes by default), or
// turns the recording off with 0. A few minutes is a good choice (GitLab
// uses 10): often enough to tell an unused token from a used one, rarely
// enough that a busy token costs the store a write every few minutes, not
// one per request. Writes happen in the background, coalesced, never for a
// failed verification, and a failed write fails no request, so List and
// Verify show a LastUsedAt up to d behind the last use. Last uses are
// recorded when the Store implements LastUseRecorder (memstore and sqlstore
// do); with another Store, a d above 0 makes NewIssuer return an error
// wrapping errors.ErrUnsupported. Call Close to write the pending uses
// before the program ends.
func WithLastUseInterval(d time.Duration) Option {
	return func(c *config) error {
		if d != 0 && d < time.Second {
			return fmt.Errorf("%w: last use interval is %v, want 0 (off) or at least 1s", ErrInvalidInput, d)
		}
		c.lastUse, c.lastUseSet = d, true
		return nil
	}
}

// WithPreviousHashKeys lets tokens issued under earlier application keys
// (see WithHashKey) keep working after a key change: a secret the current
// key does not find is looked up under each previous key, in order, and a
// token found that way is re-hashed under the current key on that first
// successful use, so that from then on it costs one lookup like the others.
// A token still under a key that is no longer listed fails closed. An
// unknown secret costs one lookup per key: drop a previous key once its
// tokens have moved. The Store must implement Rehasher (memstore and sqlstore
// do), or NewIssuer returns an error wrapping errors.ErrUnsupported.
func WithPreviousHashKeys(keys ...[]byte) Option {
	return func(c *config) error {
		for i, key := range keys {
			if len(key) < minHashKeyLen {
				return fmt.Errorf("%w: previous hash key %d is %d bytes, want at least %d", ErrInvalidInput, i, len(key), minHashKeyLen)
			}
			c.previous = append(c.previous, append([]byte(nil), key...))
		}
		return nil
	}
}

// WithCache keeps up to size verified tokens in memory, each for ttl from
// the Verify that asked the store for it, so that a token verified again within
// ttl costs no store call: Verify through a SQL store then costs about what
// it costs on memstore. The cache is off by default, because with several
// instances of an app on one store, a token deleted through one instance
// keeps verifying on the others until their entries reach ttl; WithCacheBus
// tells them at once. Through this Issuer, Delete, DeleteAll and Rotate
// take effect at once.
//
// A hit never lengthens an entry's life, and the token's expiry is checked
// on every hit. Only tokens that verified are kept, and concurrent misses
// for one secret make one store call. A refusal costs the same whether the
// token is live or not: a cached token presented with another account id,
// or expired, is looked up in the store as an unknown secret is, and each
// refusal that asked the store is remembered for that secret and account id
// for ttl or one second, whichever is shorter (at most size of them, and
// 65,536), so that the same one again costs no store read. A store that
// does not see its own writes at once (a lagging replica) may thus have a
// new token refused for up to that second after its first refusal.
// When the store fails, the cached tokens keep verifying until their ttl
// ends, and the others get the store's error (503 from the middleware);
// when it is back, everything works again. LastUsedAt, as Verify returns
// it, is the one the store had when the entry was filled.
//
// A full cache drops its oldest entries first, so size it for every token
// used within one ttl, not only the busiest: each token beyond that makes a
// store call per ttl, and pushes out an older entry. An entry takes about
// 400 bytes, texts included, in a layout without pointers that adds next to
// nothing to garbage collection; 48 bytes of it per entry are allocated up
// front. size is at most 1<<26.
func WithCache(size int, ttl time.Duration) Option {
	return func(c *config) error {
		if size < 1 || size > maxCacheSize {
			return fmt.Errorf("%w: cache size is %d, want 1 to %d", ErrInvalidInput, size, maxCacheSize)
		}
		if ttl <= 0 {
			return fmt.Errorf("%w: cache TTL is %v, want more than 0", ErrInvalidInput, ttl)
		}
		c.cacheSize, c.cacheTTL = size, ttl
		return nil
	}
}

// WithCacheBus sends the invalidations of this Issuer's cache (Delete,
// DeleteAll, Rotate) to the Issuers of the other instances over bus, and
// applies theirs, so that a token deleted anywhere stops verifying
// everywhere as soon as the message arrives (milliseconds on PostgreSQL)
// while the bus is connected, and within the cache's TTL at worst. Each time
// the bus may have missed messages, the cache is emptied. A message that
// cannot be sent does not fail the Delete that sent it (the token is gone
// from the store); it is logged, at Warn, to the audit logger or else
// slog.Default. It needs WithCache; Close stops the subscription.
func WithCacheBus(bus Bus) Option {
	return func(c *config) error {
		if bus == nil {
			return fmt.Errorf("%w: cache bus is nil", ErrInvalidInput)
		}
		c.bus = bus
		return nil
	}
}

// WithDefaultLifetime gives a token issued without ExpiresAt an expiry of
// now plus d (d above 0), so that tokens do not live forever unless asked
// to. It does not apply to Rotate, whose successor keeps its predecessor's
// expiry. With WithMaxLifetime, d must be at most that maximum, or
// NewIssuer returns an error wrapping ErrInvalidInput.
func WithDefaultLifetime(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("%w: default lifetime is %v, want more than 0", ErrInvalidInput, d)
		}
		c.defaultLifetime = d
		return nil
	}
}

// WithMaxLifetime caps the life of every token at d (above 0), the way
// GitHub and GitLab cap theirs at a year:
//
//   - Issue refuses, with an error wrapping ErrInvalidInput, an ExpiresAt
//     more than d from now, and a zero one unless WithDefaultLifetime fills
//     it (a token that never expires exceeds every maximum);
//   - Rotate gives the successor its predecessor's expiry, brought forward to
//     now+d when that is later or never;
//   - Verify refuses a token created d or longer ago, whatever its
//     ExpiresAt: tokens issued before the maximum was lowered stop verifying
//     once they are older than the new maximum. They are not deleted: they
//     stay listed, Status reports StatusTooOld, and Prune does not remove
//     them (delete them, or let them expire).
func WithMaxLifetime(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("%w: max lifetime is %v, want more than 0", ErrInvalidInput, d)
		}
		c.maxLifetime = d
		return nil
	}
}
