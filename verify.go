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
// It is small enough to be inlined into its callers.
func (iss *Issuer) verify(ctx context.Context, accountID, secret string, from clientAddr) (Token, error) {
	// The format check costs a CRC of ~50 bytes and spares the store every
	// mistyped, truncated or foreign secret.
	if iss.closed.Load() || accountID == "" || len(accountID) > maxTextLen || !wellFormed(secret, iss.head, iss.headCRC) {
		return Token{}, iss.refuseEarly(ctx, accountID)
	}
	return iss.verifyWellFormed(ctx, accountID, secret, from)
}

// refuseEarly is verify's error before any lookup: ErrClosed on a closed
// Issuer, otherwise the refusal of a malformed secret.
func (iss *Issuer) refuseEarly(ctx context.Context, accountID string) error {
	if iss.closed.Load() {
		return ErrClosed
	}
	if iss.tracer != nil {
		ctx = iss.tracer.Start(ctx, OpVerify)
		err := iss.malformed(ctx, accountID)
		iss.tracer.End(ctx, OpVerify, err)
		return err
	}
	return iss.malformed(ctx, accountID)
}

// verifyWellFormed is the rest of verify, for a well-formed secret: apart,
// so that a malformed one is refused without setting up its frame.
func (iss *Issuer) verifyWellFormed(ctx context.Context, accountID, secret string, from clientAddr) (Token, error) {
	// With a tracer, verifyWellFormed runs again inside its span. (A
	// wrapper would cost every Verify a copy of the Token it returns, and a
	// deferred End its bookkeeping: this costs one test.)
	if iss.tracer != nil && !from.traced {
		return iss.verifyTraced(ctx, accountID, secret, from)
	}
	h := iss.keys.hash(secret)
	now := iss.now() // one reading for the whole check: time.Now is a tenth of a cache hit
	if iss.cache != nil {
		return iss.verifyCached(ctx, accountID, secret, h, now, from)
	}
	// Without a cache the record comes straight from the store: no closure,
	// and no copy of the record on its way here.
	rec, err := iss.store.Lookup(ctx, h)
	want := h
	if err != nil && len(iss.keys.previous) > 0 && errors.Is(err, ErrNotFound) {
		rec, want, err = iss.lookupPrevious(ctx, secret)
	}
	if err = iss.accept(ctx, accountID, &rec, want, h, nil, now, from, err); err != nil {
		return Token{}, err
	}
	return rec.Token, nil
}

// verifyCached is the rest of verify with a cache: the record comes from the
// cache, or from the store through it, and goes into it once accepted.
func (iss *Issuer) verifyCached(ctx context.Context, accountID, secret string, h Hash, now time.Time, from clientAddr) (Token, error) {
	var f fetched
	err := iss.cache.fetchInto(ctx, h, accountID, now, func(ctx context.Context) (Record, Hash, error) {
		return iss.lookup(ctx, secret, h)
	}, &f)
	if err = iss.accept(ctx, accountID, &f.rec, f.want, h, &f, now, from, err); err != nil {
		return Token{}, err
	}
	return f.rec.Token, nil
}

// accept checks rec, which the lookup of a secret whose hash is h returned
// with err, found by the hash want (h, or a previous key's hash), for
// accountID at now and the client address found through from; it re-hashes
// rec to h when want is not h, keeps it in the cache, and notes its use. f
// says how the cache fetched rec (nil without a cache): a refusal after a
// store read is remembered by the cache for a moment, so that the same one
// again costs no store read, whether the token is live or not; and a record
// shared from another caller's lookup is re-hashed by that caller. It
// returns verify's error, nil when the token verifies.
func (iss *Issuer) accept(ctx context.Context, accountID string, rec *Record, want, h Hash, f *fetched, now time.Time, from clientAddr, err error) error {
	cached := f != nil && f.cached
	refuse := func(r Reason, tokenID, hint, tokenAccountID string) error {
		if f != nil && !f.cached {
			iss.cache.refuse(h, accountID, now)
		}
		return iss.refused(ctx, h[0], r, cached, accountID, tokenID, hint, tokenAccountID, now)
	}
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return refuse(ReasonUnknown, "", "", "")
		}
		return iss.verifyFailed(ctx, h[0], accountID, now, fmt.Errorf("apitoken: store: %w", err))
	}
	// rec.Hash is checked again so that a faulty custom store fails closed.
	if rec.Hash != want {
		return refuse(ReasonUnknown, "", "", "")
	}
	if rec.AccountID != accountID {
		return refuse(ReasonWrongAccount, rec.ID, rec.Hint, rec.AccountID)
	}
	switch st := iss.status(&rec.Token, now); st {
	case StatusActive:
	case StatusDisabled:
		// Not remembered as a refusal: Enable must take effect at once.
		// (Telling it from an unknown token by its cost needs its secret.)
		return iss.refused(ctx, h[0], ReasonDisabled, cached, accountID, rec.ID, rec.Hint, "", now)
	default:
		return refuse(statusReasons[st], rec.ID, rec.Hint, "")
	}
	var ip netip.Addr
	ipKnown := false
	if len(rec.AllowedIPs) > 0 {
		// Not remembered as a refusal either: the refusal is of the
		// address, and the same token from an allowed one must verify.
		if ip, ipKnown = from.get(ctx); !ipKnown || !addrAllowed(rec.AllowedIPs, ip) {
			return iss.refused(ctx, h[0], ReasonAddressNotAllowed, cached, accountID, rec.ID, rec.Hint, "", now)
		}
	}
	if len(iss.keys.previous) > 0 && want != h { // only a previous key finds another hash
		if f == nil || !f.shared {
			iss.rehash(ctx, *rec, h)
		}
		rec.Hash = h
	}
	if f != nil {
		iss.cache.keep(*f, *rec, now)
	}
	iss.stats.verified(h[0], cached)
	if iss.observed() {
		iss.emit(ctx, Event{Kind: KindVerified, Op: OpVerify, AccountID: rec.AccountID, TokenID: rec.ID, Hint: rec.Hint, Cached: cached, At: now})
	}
	// A last use the store already has from within the interval spares the
	// coalescer's map: the common case, once a token's use is written. (In
	// microseconds, as stores keep it, the test is now.Sub(LastUsedAt) >=
	// interval at a fifth of the cost.)
	if iss.lastUses != nil && rec.LastUsedAt.UnixMicro() <= now.UnixMicro()-iss.lastUses.interval.Microseconds() {
		iss.lastUses.use(rec.ID, now.UTC().Truncate(time.Microsecond), func() netip.Addr {
			if !ipKnown {
				ip, _ = from.get(ctx)
			}
			return ip
		})
	}
	return nil
}

// lookup finds the record of the secret whose hash under the current key
// is h, and returns it with the hash it was found by.
func (iss *Issuer) lookup(ctx context.Context, secret string, h Hash) (Record, Hash, error) {
	rec, err := iss.store.Lookup(ctx, h)
	if err != nil && len(iss.keys.previous) > 0 && errors.Is(err, ErrNotFound) {
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

// verifyTraced is verifyWellFormed between the tracer's Start and End.
func (iss *Issuer) verifyTraced(ctx context.Context, accountID, secret string, from clientAddr) (Token, error) {
	ctx = iss.tracer.Start(ctx, OpVerify)
	from.traced = true
	tok, err := iss.verifyWellFormed(ctx, accountID, secret, from)
	iss.tracer.End(ctx, OpVerify, err)
	return tok, err
}

// malformed counts and reports a secret refused by the format check, and
// returns ErrInvalidToken: the cheapest refusal, kept so.
func (iss *Issuer) malformed(ctx context.Context, accountID string) error {
	iss.stats.count(0, ReasonMalformed, false)
	if iss.observed() {
		iss.emitRefused(ctx, ReasonMalformed, false, accountID, "", "", "", time.Time{})
	}
	return ErrInvalidToken
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
