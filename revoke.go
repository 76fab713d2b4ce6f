package apitoken

import (
	"context"
	"errors"
	"fmt"
	"strconv"
)

// Inspect returns the token that secret names, whichever account it
// belongs to, for support and for the triage of a leaked secret: no account
// id is needed. Expired tokens are returned too (a leak of an expired token
// is still worth knowing), and a token still under a previous hash key
// (WithPreviousHashKeys) is found as well, without being re-hashed. A
// secret that is not well formed for this Issuer's prefix is an error
// wrapping ErrInvalidToken, with no store call; one that names no token is
// an error wrapping ErrNotFound; any other error comes from the store.
//
// Unlike Verify, Inspect tells an unknown secret from a known one: it is
// for operators and for verified leak reports, never for a request's
// credentials.
func (iss *Issuer) Inspect(ctx context.Context, secret string) (Token, error) {
	rec, err := iss.find(ctx, secret)
	if err != nil {
		return Token{}, err
	}
	return rec.Token, nil
}

// RevokeSecret deletes for good the token that secret names, whichever
// account it belongs to, expired or not, and returns what it was: for a
// secret that leaked (a secret-scanning report, a paste in a ticket). Like
// Delete, the secret stops verifying at once through this Issuer and, with
// WithCacheBus, on the other instances. It writes an audit record "token
// revoked" with the account and token ids and the reason, "leaked" unless
// ctx carries another one (WithRevokeReason), never the secret. Its errors
// are Inspect's: ErrInvalidToken for a malformed secret, with no store
// call, and ErrNotFound for one that names no token (already revoked: a
// re-delivered leak report is a recognisable no-op).
func (iss *Issuer) RevokeSecret(ctx context.Context, secret string) (_ Token, err error) {
	ctx = iss.begin(ctx, OpRevoke)
	defer iss.end(ctx, OpRevoke, "", "", &err)
	rec, err := iss.find(ctx, secret)
	if err != nil {
		return Token{}, err
	}
	err = iss.store.Delete(ctx, rec.AccountID, rec.ID)
	// Also after an error, as in Delete: the token may be gone anyway.
	iss.invalidate(ctx, rec.AccountID, rec.ID)
	if err != nil {
		if errors.Is(err, ErrNotFound) { // revoked or deleted meanwhile
			return Token{}, errNoSuchSecret
		}
		return Token{}, fmt.Errorf("apitoken: store: %w", err)
	}
	if iss.observed() {
		iss.emit(ctx, Event{Kind: KindRevoked, Op: OpRevoke, AccountID: rec.AccountID, TokenID: rec.ID, Related: revokeReason(ctx), At: iss.now()})
	}
	return rec.Token, nil
}

// errNoSuchSecret is the answer of Inspect and RevokeSecret for a
// well-formed secret that names no token.
var errNoSuchSecret = fmt.Errorf("%w: no token has this secret", ErrNotFound)

// find returns the record of secret, looked up under the current hash key
// and then each previous one, or Inspect's errors.
func (iss *Issuer) find(ctx context.Context, secret string) (Record, error) {
	if iss.closed.Load() {
		return Record{}, ErrClosed
	}
	if !wellFormed(secret, iss.head, iss.headCRC) {
		return Record{}, fmt.Errorf("%w: not a well-formed secret of prefix %q (length, alphabet or checksum)", ErrInvalidToken, iss.head[:len(iss.head)-1])
	}
	rec, by, err := iss.lookup(ctx, secret, iss.keys.hash(secret))
	switch {
	case errors.Is(err, ErrNotFound):
		return Record{}, errNoSuchSecret
	case err != nil:
		return Record{}, fmt.Errorf("apitoken: store: %w", err)
	case rec.Hash != by: // a faulty custom store fails closed
		return Record{}, errNoSuchSecret
	}
	return rec, nil
}

// reasonLeaked is RevokeSecret's audit reason when the caller gives none.
const reasonLeaked = "leaked"

// maxReasonLen bounds the reason WithRevokeReason records.
const maxReasonLen = 128

type revokeReasonKey struct{}

// WithRevokeReason returns a context that makes RevokeSecret record reason
// in its audit record instead of "leaked" (a ticket number, "reported by
// GitHub secret scanning"). A reason longer than 128 bytes is cut, and one
// with control characters is written quoted. It must not contain a secret.
func WithRevokeReason(ctx context.Context, reason string) context.Context {
	return context.WithValue(ctx, revokeReasonKey{}, reason)
}

// revokeReason returns the reason WithRevokeReason put in ctx, as it may be
// logged, or "leaked".
func revokeReason(ctx context.Context) string {
	r, _ := ctx.Value(revokeReasonKey{}).(string)
	if r == "" {
		return reasonLeaked
	}
	if len(r) > maxReasonLen {
		r = r[:maxReasonLen]
	}
	for _, c := range r {
		if c < ' ' || c == 0x7f || c == '\uFFFD' {
			return strconv.QuoteToASCII(r)
		}
	}
	return r
}
