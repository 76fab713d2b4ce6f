package apitoken

import (
	"context"
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
// A Store keeps every field of a Record as it was given to Create: the
// texts, Scopes, times, Disabled, Hint, AllowedIPs and LastUsedIP (which
// the Issuer leaves zero at Create).
//
// A Store must be safe for concurrent use. It must not retain or modify the
// slices of the records it is given, and must return slices that the caller
// may modify without affecting the Store. The strings it returns may view
// its own memory (memstore's do, to spare a copy per lookup), which it must
// then never write again: a returned record stays as it was whatever the
// Store does next. It returns times in UTC and keeps
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
// A Store may also implement optional capabilities, extra interfaces that
// the Issuer finds once, in NewIssuer (through the Unwrap method of a store
// that wraps another, see Capability):
//
//	capability       serves                           without it
//	AccountDeleter   DeleteAll in one call            DeleteAll lists and deletes one by one
//	ExpiredDeleter   Prune                            Prune is errors.ErrUnsupported
//	ExpiryUpdater    Rotate with a grace period       Rotate with a grace is errors.ErrUnsupported
//	LimitedCreator   WithMaxTokensPerAccount          NewIssuer fails with errors.ErrUnsupported
//	LastUseRecorder  last use (on by default)         no last use; asked for explicitly, NewIssuer fails
//	Rehasher         WithPreviousHashKeys             NewIssuer fails with errors.ErrUnsupported
//	Disabler         Disable, Enable                  both are errors.ErrUnsupported
//	MemberDeleter    DeleteMember in one call         DeleteMember lists and deletes one by one
//	UnusedDeleter    PruneUnused                      PruneUnused is errors.ErrUnsupported
//	ExpiringLister   Expiring                         Expiring yields errors.ErrUnsupported
//
// A capability's method may also answer, at call time, an error wrapping
// errors.ErrUnsupported when the store's configuration cannot serve it (a
// sqlstore Store inside some transactions cannot CreateLimited): the Issuer
// then falls back where there is a fallback (DeleteAll) and returns the
// error otherwise.
//
// storetest.Run checks all of this, capabilities included; run it against
// every implementation.
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
