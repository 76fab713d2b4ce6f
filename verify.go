package apitoken

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"time"
)

// Verify returns the token whose secret is given, if it belongs to accountID,
// has not expired, is not older than WithMaxLifetime allows, is not
// disabled, and, when it has AllowedIPs, if the client address that
// WithClientAddr put in ctx is in them. Every refusal (malformed secret,
// unknown, deleted, expired or disabled token, another account's token, an
// address not allowed or unknown) is ErrInvalidToken itself, with the same
// text, so that no caller can learn whether a token exists. A malformed
// secret is refused without calling the store. Any other error comes from
// the store: the token could not be checked, and the caller should answer
// "try again later" (the middleware answers 503).
func (iss *Issuer) Verify(ctx context.Context, accountID, secret string) (Token, error) {
	return iss.verify(ctx, accountID, secret, clientAddr{})
}

// verify is Verify with the client address found through from.
func (iss *Issuer) verify(ctx context.Context, accountID, secret string, from clientAddr) (_ Token, err error) {
	if iss.tracer != nil {
		// Here rather than in a wrapper, which would copy the Token it
		// returns: a deferred call that is not taken costs next to nothing.
		ctx = iss.tracer.Start(ctx, OpVerify)
		defer func() { iss.tracer.End(ctx, OpVerify, err) }()
	}
	if iss.closed.Load() {
		return Token{}, ErrClosed
	}
	// The format check costs a CRC of ~50 bytes and spares the store every
	// mistyped, truncated or foreign secret.
	if accountID == "" || len(accountID) > maxTextLen || !wellFormed(secret, iss.head) {
		return Token{}, iss.refused(ctx, 0, ReasonMalformed, false, accountID, "", "", "", time.Time{})
	}
	h := iss.keys.hash(secret)
	now := iss.now() // one reading for the whole check: time.Now is a tenth of a cache hit
	f, err := iss.cache.fetch(ctx, h, accountID, now, func(ctx context.Context) (Record, Hash, error) {
		return iss.lookup(ctx, secret, h)
	})
	rec := f.rec
	// Each refusal after a store read is remembered by the cache for a
	// moment, so that the same one again costs no store read, whether the
	// token is live or not.
	refuse := func(r Reason, tokenID, hint, tokenAccountID string) error {
		if !f.cached {
			iss.cache.refuse(h, accountID, now)
		}
		return iss.refused(ctx, h[0], r, f.cached, accountID, tokenID, hint, tokenAccountID, now)
	}
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return Token{}, refuse(ReasonUnknown, "", "", "")
		}
		return Token{}, iss.verifyFailed(ctx, h[0], accountID, now, fmt.Errorf("apitoken: store: %w", err))
	}
	// rec.Hash is checked again so that a faulty custom store fails closed.
	if rec.Hash != f.want {
		return Token{}, refuse(ReasonUnknown, "", "", "")
	}
	if rec.AccountID != accountID {
		return Token{}, refuse(ReasonWrongAccount, rec.ID, rec.Hint, rec.AccountID)
	}
	switch st := iss.status(&rec.Token, now); st {
	case StatusActive:
	case StatusDisabled:
		// Not remembered as a refusal: Enable must take effect at once.
		// (Telling it from an unknown token by its cost needs its secret.)
		return Token{}, iss.refused(ctx, h[0], ReasonDisabled, f.cached, accountID, rec.ID, rec.Hint, "", now)
	default:
		return Token{}, refuse(statusReasons[st], rec.ID, rec.Hint, "")
	}
	var ip netip.Addr
	ipKnown := false
	if len(rec.AllowedIPs) > 0 {
		// Not remembered as a refusal either: the refusal is of the
		// address, and the same token from an allowed one must verify.
		if ip, ipKnown = from.get(ctx); !ipKnown || !addrAllowed(rec.AllowedIPs, ip) {
			return Token{}, iss.refused(ctx, h[0], ReasonAddressNotAllowed, f.cached, accountID, rec.ID, rec.Hint, "", now)
		}
	}
	if f.want != h {
		if !f.shared {
			iss.rehash(ctx, rec, h)
		}
		rec.Hash = h
	}
	iss.cache.keep(f, rec, now)
	iss.stats.verified(h[0], f.cached)
	if iss.observed() {
		iss.emit(ctx, Event{Kind: KindVerified, Op: OpVerify, AccountID: rec.AccountID, TokenID: rec.ID, Hint: rec.Hint, Cached: f.cached, At: now})
	}
	// A last use the store already has from within the interval spares
	// the coalescer's map: the common case, once a token's use is written.
	if iss.lastUses != nil && now.Sub(rec.LastUsedAt) >= iss.lastUses.interval {
		iss.lastUses.use(rec.ID, now.UTC().Truncate(time.Microsecond), func() netip.Addr {
			if !ipKnown {
				ip, _ = from.get(ctx)
			}
			return ip
		})
	}
	return rec.Token, nil
}

// lookup finds the record of the secret whose hash under the current key
// is h, and returns it with the hash it was found by.
func (iss *Issuer) lookup(ctx context.Context, secret string, h Hash) (Record, Hash, error) {
	rec, err := iss.store.Lookup(ctx, h)
	if errors.Is(err, ErrNotFound) && len(iss.keys.previous) > 0 {
		return iss.lookupPrevious(ctx, secret)
	}
	return rec, h, err
}

// lookupPrevious looks the secret up under each previous hash key, and
// returns the record found with the hash it was found by.
func (iss *Issuer) lookupPrevious(ctx context.Context, secret string) (Record, Hash, error) {
	for _, key := range iss.keys.previous {
		h := key.sum(secret)
		rec, err := iss.store.Lookup(ctx, h)
		if !errors.Is(err, ErrNotFound) {
			return rec, h, err
		}
	}
	return Record{}, Hash{}, ErrNotFound
}

// rehash moves rec to the hash to under the current key. A failure fails
// no request: the token is looked up under its previous key again next time.
func (iss *Issuer) rehash(ctx context.Context, rec Record, to Hash) {
	err := iss.caps.rehash.Rehash(ctx, rec.AccountID, rec.ID, rec.Hash, to)
	if err != nil {
		iss.logger().LogAttrs(ctx, slog.LevelWarn, "apitoken: token not re-hashed", slog.String("account_id", rec.AccountID),
			slog.String("token_id", rec.ID), slog.Any("err", err))
		if iss.observed() {
			iss.emit(ctx, Event{Kind: KindRehashFailed, Op: OpVerify, AccountID: rec.AccountID, TokenID: rec.ID, Err: err, At: iss.now()})
		}
		return
	}
	if iss.observed() {
		iss.emit(ctx, Event{Kind: KindRehashed, Op: OpVerify, AccountID: rec.AccountID, TokenID: rec.ID, At: iss.now()})
	}
}

// verifyFailed counts and reports a verification that the store failed,
// and returns err.
func (iss *Issuer) verifyFailed(ctx context.Context, stripe byte, accountID string, at time.Time, err error) error {
	iss.stats.storeFailed(stripe)
	if iss.observed() {
		iss.emit(ctx, Event{Kind: KindStoreFailed, Op: OpVerify, AccountID: accountID, Err: err, At: at})
	}
	return err
}
