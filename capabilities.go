package apitoken

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"time"
)

// The optional capabilities of a Store, with what each serves; the table in
// the Store documentation says what happens without each. Adding one is an
// interface here, a field and a line in findCapabilities, a row in that
// table, a check in storetest, and the implementations.

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

// LastUse is when the token with ID last verified, and from which client
// address (the zero Addr when unknown).
type LastUse struct {
	ID string
	At time.Time
	IP netip.Addr
}

// LastUseRecorder is a capability a Store may add: RecordLastUse sets the
// LastUsedAt of each token of uses to its At (UTC, to the microsecond), and
// its LastUsedIP to its IP (the zero Addr included), when At is later than
// the LastUsedAt stored, and skips ids it does not hold. The
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

// Disabler is a capability a Store may add: SetDisabled sets the Disabled
// of the token with that id, in that account (compared byte for byte), to
// disabled, and returns an error wrapping ErrNotFound, changing nothing,
// when the account has no token with that id. Setting the value the token
// already has is not an error. Issuer.Disable and Issuer.Enable need it.
type Disabler interface {
	SetDisabled(ctx context.Context, accountID, id string, disabled bool) error
}

// MemberDeleter is a capability a Store may add: DeleteMember removes every
// token of the account whose MemberID is memberID (both compared byte for
// byte), in one call, and returns how many it removed (0, and no error, when
// there are none). Issuer.DeleteMember uses it; without it, DeleteMember
// lists the account's tokens and deletes the member's one by one.
type MemberDeleter interface {
	DeleteMember(ctx context.Context, accountID, memberID string) (int, error)
}

// UnusedDeleter is a capability a Store may add: DeleteUnused removes up to
// limit tokens, of every account, not used since since: those whose
// LastUsedAt is set and before since, and those never used (LastUsedAt
// zero) whose CreatedAt is before since. It returns how many it removed;
// fewer than limit means that none is left. Each call should be short (a
// SQL store deletes through an index, in one small transaction), so that it
// never holds up Issue or Verify for long. Issuer.PruneUnused needs it, and
// calls it until it removes fewer than limit.
type UnusedDeleter interface {
	DeleteUnused(ctx context.Context, since time.Time, limit int) (int, error)
}

// ExpiringLister is a capability a Store may add: ListExpiring returns up
// to limit tokens, of every account, whose ExpiresAt is set and before
// before, and that come after (after, afterID) in the order of ExpiresAt,
// then ID (byte for byte): an ExpiresAt later than after, or equal to it
// with an ID greater than afterID. It returns them in that order, soonest
// first. Issuer.Expiring needs it, and pages through with it: each page
// starts after the last token of the one before.
type ExpiringLister interface {
	ListExpiring(ctx context.Context, after time.Time, afterID string, before time.Time, limit int) ([]Token, error)
}

// A store that wraps another (to trace or meter it) exposes the one it wraps
// with an Unwrap method:
//
//	func (s *tracingStore) Unwrap() apitoken.Store { return s.next }
//
// so that the Issuer and storetest find the capabilities of the wrapped
// store too. A wrapper that must see a capability's calls implements that
// capability itself; the others are found on the wrapped store and called
// there directly, past the wrapper.
type unwrapper interface {
	Unwrap() Store
}

// maxUnwrap bounds the chain of wrapped stores Capability follows, so that a
// store that unwraps to itself cannot loop.
const maxUnwrap = 32

// Capability returns the first store in the chain s, s.Unwrap(),
// s.Unwrap().Unwrap()… that implements T, and whether there is one. The
// Issuer finds each optional capability of its store with it; storetest and
// store wrappers can use it too.
func Capability[T any](s Store) (T, bool) {
	for range maxUnwrap {
		if isNilStore(s) {
			break
		}
		if c, ok := s.(T); ok {
			return c, true
		}
		u, ok := s.(unwrapper)
		if !ok {
			break
		}
		s = u.Unwrap()
	}
	var zero T
	return zero, false
}

// capabilities are the optional methods of an Issuer's store, found once by
// NewIssuer: nil where the store lacks one.
type capabilities struct {
	deleteAccount AccountDeleter
	deleteExpired ExpiredDeleter
	setExpiry     ExpiryUpdater
	createLimited LimitedCreator
	recordLastUse LastUseRecorder
	rehash        Rehasher
	setDisabled   Disabler
	deleteMember  MemberDeleter
	deleteUnused  UnusedDeleter
	listExpiring  ExpiringLister
}

func findCapabilities(s Store) capabilities {
	var c capabilities
	c.deleteAccount, _ = Capability[AccountDeleter](s)
	c.deleteExpired, _ = Capability[ExpiredDeleter](s)
	c.setExpiry, _ = Capability[ExpiryUpdater](s)
	c.createLimited, _ = Capability[LimitedCreator](s)
	c.recordLastUse, _ = Capability[LastUseRecorder](s)
	c.rehash, _ = Capability[Rehasher](s)
	c.setDisabled, _ = Capability[Disabler](s)
	c.deleteMember, _ = Capability[MemberDeleter](s)
	c.deleteUnused, _ = Capability[UnusedDeleter](s)
	c.listExpiring, _ = Capability[ExpiringLister](s)
	return c
}

// isNilStore reports whether s is nil, or a nil pointer, map, slice, func
// or channel in a Store interface: a store that would panic on first use.
func isNilStore(s Store) bool {
	if s == nil {
		return true
	}
	switch v := reflect.ValueOf(s); v.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Func, reflect.Chan, reflect.Interface:
		return v.IsNil()
	}
	return false
}

// needs are what an Issuer's options ask of its store's capabilities.
type needs struct {
	maxTokens    int  // WithMaxTokensPerAccount: LimitedCreator
	previousKeys int  // WithPreviousHashKeys: Rehasher
	lastUse      bool // WithLastUseInterval above 0: LastUseRecorder
}

// check returns the error NewIssuer (and InTx) reports for options that
// need a capability the store lacks: the one place where each option's need
// is written.
func (c capabilities) check(n needs) error {
	switch {
	case n.maxTokens > 0 && c.createLimited == nil:
		return fmt.Errorf("apitoken: the store cannot enforce WithMaxTokensPerAccount (it needs LimitedCreator): %w", errors.ErrUnsupported)
	case n.previousKeys > 0 && c.rehash == nil:
		return fmt.Errorf("apitoken: the store cannot re-hash tokens for WithPreviousHashKeys (it needs Rehasher): %w", errors.ErrUnsupported)
	case n.lastUse && c.recordLastUse == nil:
		return fmt.Errorf("apitoken: the store cannot record last uses for WithLastUseInterval (it needs LastUseRecorder): %w", errors.ErrUnsupported)
	}
	return nil
}
