package apitoken

import (
	"context"
	"time"
)

// Record is what a Store keeps for one token: its metadata and the keyed hash
// of its secret. The secret itself is never given to a Store.
type Record struct {
	Token
	Hash Hash
}

// Store keeps token records. The Issuer is its only caller; applications
// choose a Store (memstore, sqlstore, or their own) and hand it to NewIssuer.
//
// A Store must be safe for concurrent use. It must not retain or modify the
// slices of the records it is given, and must return slices that the caller
// may modify without affecting the Store. It returns times in UTC and keeps
// at least microsecond precision (the Issuer passes times already truncated
// to the microsecond); zero times stay zero, and Scopes is nil when there are
// none. IDs, account IDs and hashes compare byte for byte, never by case
// folding or collation.
//
// Errors: "not there" is an error wrapping ErrNotFound, and "already there"
// one wrapping ErrDuplicate; every other error is a system error (the
// database is unreachable, the context ended) that the Issuer passes on and
// the middleware answers with 503. A Store must never report a system error
// as ErrNotFound: that would turn an outage into "invalid token". A failed
// call leaves the Store as it was.
//
// storetest.Run checks all of this; run it against every implementation.
type Store interface {
	// Create stores rec. If a record with the same ID or the same Hash
	// exists, it stores nothing and returns an error wrapping ErrDuplicate.
	Create(ctx context.Context, rec Record) error

	// Lookup returns the record whose Hash equals h byte for byte, or an
	// error wrapping ErrNotFound. It is on the path of every authenticated
	// request: it should be a single indexed read.
	Lookup(ctx context.Context, h Hash) (Record, error)

	// List returns the tokens of the account, oldest first (by CreatedAt,
	// ties by ID), and never a token of another account. An account without
	// tokens gives an empty result and no error.
	List(ctx context.Context, accountID string) ([]Token, error)

	// Delete removes the token with that ID if it belongs to the account;
	// otherwise it changes nothing and returns an error wrapping ErrNotFound.
	Delete(ctx context.Context, accountID, id string) error
}

// AccountDeleter is a capability a Store may add: DeleteAccount removes
// every token of the account, compared byte for byte, in one call, and
// returns how many it removed (0, and no error, for an account without
// tokens). Issuer.DeleteAll uses it; without it, DeleteAll lists the
// account's tokens and deletes them one by one.
type AccountDeleter interface {
	DeleteAccount(ctx context.Context, accountID string) (int, error)
}

// ExpiredDeleter is a capability a Store may add: DeleteExpired removes
// every token whose ExpiresAt is set and at or before before, of every
// account, and returns how many it removed. A token that never expires is
// never removed. Issuer.Prune needs it.
type ExpiredDeleter interface {
	DeleteExpired(ctx context.Context, before time.Time) (int, error)
}

// ExpiryUpdater is a capability a Store may add: SetExpiry changes the
// ExpiresAt of the token with that id, in that account (compared byte for
// byte), from from (zero: it never expires; otherwise UTC, to the
// microsecond, as the Store returned it) to to (not zero, UTC, to the
// microsecond, never equal to from), in one atomic compare-and-set. When no
// token of the account has that id and that expiry, it changes nothing and
// returns an error wrapping ErrNotFound. Issuer.Rotate uses it to let the old
// token live through its grace period; the compare-and-set keeps a
// concurrent Rotate from lengthening a grace another one shortened.
type ExpiryUpdater interface {
	SetExpiry(ctx context.Context, accountID, id string, from, to time.Time) error
}

// LastUse is when the token with ID last verified.
type LastUse struct {
	ID string
	At time.Time
}

// LastUseRecorder is a capability a Store may add: RecordLastUse sets the
// LastUsedAt of each token of uses to its At (UTC, to the microsecond) when
// that is later than the one stored, and skips ids it does not hold. The
// Issuer calls it in the background, at most once per token per interval
// (WithLastUseInterval), with a batch of the tokens used meanwhile.
type LastUseRecorder interface {
	RecordLastUse(ctx context.Context, uses []LastUse) error
}

// LimitedCreator is a capability a Store may add: CreateLimited is Create,
// except that when the account of rec already has max tokens it stores
// nothing and returns an error wrapping ErrLimitReached. Counting and
// inserting are one atomic step: calls racing for one account, from any
// number of goroutines or processes, never leave it with more than max
// tokens. WithMaxTokensPerAccount needs it.
type LimitedCreator interface {
	CreateLimited(ctx context.Context, rec Record, max int) error
}

// Rehasher is a capability a Store may add: Rehash replaces the Hash of the
// token with that id, in that account, from from to to, and returns an error
// wrapping ErrNotFound, changing nothing, when no token of the account has
// that id and that hash. Issuer's WithPreviousHashKeys needs it to move a
// token to the current hash key on its first use after a key change.
type Rehasher interface {
	Rehash(ctx context.Context, accountID, id string, from, to Hash) error
}
