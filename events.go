package apitoken

import (
	"context"
	"fmt"
	"time"
)

// An Event is one thing that happened in an Issuer, as WithEvents hands it
// to an application: a token issued, verified, refused, rotated or deleted,
// or an operational change (the store failed, the cache bus lost its
// connection, last uses were written). It names accounts and tokens by id
// and never holds a secret nor its hash. Which fields are set depends on
// the Kind; the others are zero.
type Event struct {
	Kind Kind
	// Op is the Issuer method the event comes from (OpVerify for a
	// verification, OpDelete for a deletion...), or OpBackground for the
	// Issuer's own work: the cache bus and last uses.
	Op Op
	// Reason is why a verification was refused (KindRefused).
	Reason Reason
	// Cached tells, for KindVerified and KindRefused, that the cache
	// answered (WithCache): no store call was made.
	Cached bool

	// AccountID is the account the call named. For KindRefused it is what
	// the caller sent, which may be anything: quote it before writing it
	// where a line break or an oversized value would do harm.
	AccountID string
	// TokenID is the token concerned; for KindRefused, the token the
	// secret matched, or empty when it matched none.
	TokenID string
	// MemberID is the member of the token issued (KindIssued), or the
	// member whose tokens were deleted (KindDeletedMember).
	MemberID string
	// Hint is the token's Hint, where the event names a token that has one
	// (KindIssued, KindVerified, KindRefused, KindRotated): what its owner
	// recognises it by.
	Hint string
	// Related is the successor of a rotated token (KindRotated), or the
	// token's own account when a secret was used with another account
	// (KindRefused with ReasonWrongAccount: it has leaked, or is being
	// tried), or the problem, in the package's own words, of a request
	// the middleware refused as malformed (KindRefused with Op
	// OpAuthenticate), or the reason of a revocation (KindRevoked).
	Related string
	// RelatedHint is the Hint of the successor of KindRotated.
	RelatedHint string

	// At is when the operation began, on the Issuer's clock (WithClock).
	// For a verification it is the one reading Verify takes, so that with
	// the default clock time.Since(e.At), in the hook, is how long Verify
	// took: the Issuer reads the clock no more for the hook's sake.
	At time.Time
	// Before is the cut-off of a prune (KindPruned, KindPrunedUnused).
	Before time.Time
	// Grace is the old token's grace period (KindRotated).
	Grace time.Duration
	// Count is how many tokens a bulk deletion removed (KindDeletedAccount,
	// KindDeletedMember, KindPruned, KindPrunedUnused), or how many last uses
	// a write carried (KindLastUsesFlushed, KindLastUsesFailed).
	Count int
	// Err is the failure of KindStoreFailed, KindBusDisconnected,
	// KindBusPublishFailed, KindLastUsesFailed and KindRehashFailed. It
	// comes from the store or the bus and holds no secret.
	Err error
}

// A Kind says what an Event reports.
type Kind uint8

// The kinds of Event. Each says which fields it sets beyond Kind, Op and At.
const (
	_ Kind = iota
	// KindIssued: a token was issued (AccountID, TokenID, MemberID).
	KindIssued
	// KindVerified: a secret verified (AccountID, TokenID, Cached).
	KindVerified
	// KindRefused: a verification was refused (AccountID, Reason, Cached;
	// TokenID when the secret matched a token; Related for
	// ReasonWrongAccount). Also a request that the middleware refused
	// before Verify (Op is OpAuthenticate; Reason is ReasonMalformed, with
	// the problem in Related, or ReasonUnsupportedScheme).
	KindRefused
	// KindRotated: a token was rotated (AccountID, TokenID, Related: the
	// successor, Grace).
	KindRotated
	// KindDeleted: a token was deleted (AccountID, TokenID).
	KindDeleted
	// KindDeletedAccount: every token of an account was deleted
	// (AccountID, Count; not sent when there was none).
	KindDeletedAccount
	// KindDeletedMember: the tokens of a member were deleted (AccountID,
	// MemberID, Count; not sent when there was none).
	KindDeletedMember
	// KindRevoked: a token was revoked by its secret, as leaked
	// (AccountID, TokenID; Related is the reason, "leaked" or the one of
	// WithRevokeReason).
	KindRevoked
	// KindDisabled: a token was disabled (AccountID, TokenID).
	KindDisabled
	// KindEnabled: a disabled token was enabled again (AccountID, TokenID).
	KindEnabled
	// KindPruned: expired tokens were pruned (Before, Count).
	KindPruned
	// KindPrunedUnused: unused tokens were pruned (Before, Count).
	KindPrunedUnused
	// KindRehashed: a token moved to the current hash key (AccountID,
	// TokenID).
	KindRehashed
	// KindRehashFailed: a token could not be moved to the current hash key
	// (AccountID, TokenID, Err); it is looked up under its old key again
	// next time.
	KindRehashFailed
	// KindStoreFailed: a store call failed, and the operation Op with it
	// (Err; AccountID and TokenID where the call named them). Verify
	// answered it with an error other than ErrInvalidToken (503 from the
	// middleware).
	KindStoreFailed
	// KindBusConnected: the cache bus listens (again); every message sent
	// from now on arrives.
	KindBusConnected
	// KindBusDisconnected: the cache bus lost its connection, or its
	// subscription ended (Err). Until KindBusConnected, other instances'
	// deletions reach this one only through the cache's TTL.
	KindBusDisconnected
	// KindBusMayHaveMissed: the cache bus may have missed messages, and the
	// cache was emptied.
	KindBusMayHaveMissed
	// KindBusPublishFailed: an invalidation could not be sent on the bus
	// (AccountID, TokenID, Err); the other instances' entries end with their
	// TTL.
	KindBusPublishFailed
	// KindLastUsesFlushed: last uses were written to the store (Count).
	KindLastUsesFlushed
	// KindLastUsesFailed: last uses could not be written (Count, Err).
	KindLastUsesFailed

	numKinds // keep last
)

var kindNames = [numKinds]string{
	KindIssued:           "issued",
	KindVerified:         "verified",
	KindRefused:          "refused",
	KindRotated:          "rotated",
	KindDeleted:          "deleted",
	KindDeletedAccount:   "deleted account",
	KindDeletedMember:    "deleted member",
	KindRevoked:          "revoked",
	KindDisabled:         "disabled",
	KindEnabled:          "enabled",
	KindPruned:           "pruned",
	KindPrunedUnused:     "pruned unused",
	KindRehashed:         "rehashed",
	KindRehashFailed:     "rehash failed",
	KindStoreFailed:      "store failed",
	KindBusConnected:     "bus connected",
	KindBusDisconnected:  "bus disconnected",
	KindBusMayHaveMissed: "bus may have missed",
	KindBusPublishFailed: "bus publish failed",
	KindLastUsesFlushed:  "last uses flushed",
	KindLastUsesFailed:   "last uses failed",
}

// String returns the kind in words, such as "refused" or "bus disconnected".
func (k Kind) String() string {
	if k < numKinds && kindNames[k] != "" {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// A Reason is why a verification was refused. Verify answers every refusal
// alike (ErrInvalidToken), so that no caller learns whether a token exists;
// only the application, through its events and its audit log, tells them
// apart.
type Reason uint8

// The reasons of a refusal.
const (
	_ Reason = iota
	// ReasonMalformed: the secret is not one of ours, the account id is
	// empty or too long, or the request carried its credentials in a
	// malformed form.
	ReasonMalformed
	// ReasonUnknown: no token has that secret: never issued, or deleted.
	ReasonUnknown
	// ReasonWrongAccount: the token belongs to another account.
	ReasonWrongAccount
	// ReasonExpired: the token has expired.
	ReasonExpired
	// ReasonTooOld: the token is older than WithMaxLifetime allows.
	ReasonTooOld
	// ReasonDisabled: the token is disabled.
	ReasonDisabled
	// ReasonAddressNotAllowed: the request came from an address the token
	// does not allow.
	ReasonAddressNotAllowed
	// ReasonUnsupportedScheme: the request's Authorization header uses a
	// scheme the middleware does not read (a refusal of the middleware,
	// before Verify: Op is OpAuthenticate).
	ReasonUnsupportedScheme

	numReasons // keep last
)

// Reasons returns every Reason that Verify refuses for, in order (all but
// ReasonUnsupportedScheme, which only the middleware gives): for a metric
// with one series per reason, say.
func Reasons() []Reason {
	r := make([]Reason, 0, numReasons-1)
	for i := Reason(1); i < numReasons; i++ {
		if i != ReasonUnsupportedScheme {
			r = append(r, i)
		}
	}
	return r
}

var reasonNames = [numReasons]string{
	ReasonMalformed:         "malformed",
	ReasonUnknown:           "unknown",
	ReasonWrongAccount:      "wrong account",
	ReasonExpired:           "expired",
	ReasonTooOld:            "older than max lifetime",
	ReasonDisabled:          "disabled",
	ReasonAddressNotAllowed: "address not allowed",
	ReasonUnsupportedScheme: "unsupported scheme",
}

// String returns the reason as the audit log writes it, such as "unknown" or
// "wrong account".
func (r Reason) String() string {
	if r < numReasons && reasonNames[r] != "" {
		return reasonNames[r]
	}
	return fmt.Sprintf("Reason(%d)", uint8(r))
}

// An Op is an Issuer method, as an Event or a Tracer names it.
type Op uint8

// The operations.
const (
	_ Op = iota
	OpIssue
	OpVerify
	OpList
	OpDelete
	OpDeleteAll
	OpDeleteMember
	OpRotate
	OpRevoke
	OpDisable
	OpEnable
	OpPrune
	OpPruneUnused
	// OpAuthenticate is the middleware (and Authenticate) refusing a
	// malformed request before Verify.
	OpAuthenticate
	// OpBackground is the Issuer's own work: the cache bus and last uses.
	OpBackground

	numOps // keep last
)

var opNames = [numOps]string{
	OpIssue:        "Issue",
	OpVerify:       "Verify",
	OpList:         "List",
	OpDelete:       "Delete",
	OpDeleteAll:    "DeleteAll",
	OpDeleteMember: "DeleteMember",
	OpRotate:       "Rotate",
	OpRevoke:       "RevokeSecret",
	OpDisable:      "Disable",
	OpEnable:       "Enable",
	OpPrune:        "Prune",
	OpPruneUnused:  "PruneUnused",
	OpAuthenticate: "Authenticate",
	OpBackground:   "background",
}

// String returns the name of the method, such as "Verify".
func (o Op) String() string {
	if o < numOps && opNames[o] != "" {
		return opNames[o]
	}
	return fmt.Sprintf("Op(%d)", uint8(o))
}

// WithEvents calls hook with every Event of the Issuer, synchronously, in
// the goroutine where it happens: a verification's event is delivered
// inside Verify, before it returns, and background events from the
// goroutine of the cache bus or of the last uses. ctx is the context of the
// call the event comes from (with WithTracer, the one its Start returned),
// or one of the Issuer's own for background work.
// The hook must be safe for concurrent use and should return quickly: it
// is on the path of every request, and a slow hook slows every Verify,
// which is the application's choice to make (hand the event to a channel
// or a goroutine for slow work such as sending mail). A hook must not call
// Close, which waits for the background work the hook may be called from,
// and should not call the Issuer's other methods, whose own events would
// come back to it. It may be
// given more than once: the hooks are called in order, after the audit
// logger's records (WithAuditLogger), which are written from the same
// events. Without any hook, an Issuer builds no Event at all.
func WithEvents(hook func(ctx context.Context, e Event)) Option {
	return func(c *config) error {
		if hook == nil {
			return fmt.Errorf("%w: event hook is nil", ErrInvalidInput)
		}
		c.events = append(c.events, hook)
		return nil
	}
}

// hooks returns the event hooks of c, the audit logger's first.
func (c *config) hooks() []func(context.Context, Event) {
	if c.auditLog == nil && len(c.events) == 0 {
		return nil
	}
	var h []func(context.Context, Event)
	if c.auditLog != nil {
		h = append(h, auditHook(c.auditLog))
	}
	return append(h, c.events...)
}

// observed reports whether the Issuer has an event hook. Callers on the
// verification path check it before building an Event, so that without a
// hook an Event costs nothing.
func (iss *Issuer) observed() bool { return len(iss.events) > 0 }

// emit hands e to every hook.
func (iss *Issuer) emit(ctx context.Context, e Event) {
	for _, h := range iss.events {
		h(ctx, e)
	}
}

// emitBackground reports an event of the Issuer's own work (OpBackground), at
// the time it happens.
func (iss *Issuer) emitBackground(ctx context.Context, e Event) {
	if iss.observed() {
		e.Op, e.At = OpBackground, iss.now()
		iss.emit(ctx, e)
	}
}
