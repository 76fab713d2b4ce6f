package apitoken

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
)

// Verify returns the token whose secret is given, if it belongs to accountID
// and has not expired. Every refusal (malformed secret, unknown, deleted or
// expired token, another account's token) is ErrInvalidToken itself, with
// the same text, so that no caller can learn whether a token exists. A
// malformed secret is refused without calling the store. Any other error
// comes from the store: the token could not be checked, and the caller
// should answer "try again later" (the middleware answers 503).
func (iss *Issuer) Verify(ctx context.Context, accountID, secret string) (Token, error) {
	if iss.closed.Load() {
		return Token{}, ErrClosed
	}
	// The format check costs a CRC of ~50 bytes and spares the store every
	// mistyped, truncated or foreign secret.
	if accountID == "" || len(accountID) > maxTextLen || !wellFormed(secret, iss.head, iss.headCRC) {
		return Token{}, iss.refused(ctx, accountID, "", reasonMalformed, "")
	}
	h := iss.keys.hash(secret)
	now := iss.now() // one reading for the whole check: time.Now is a tenth of a cache hit
	var (
		f   fetched
		err error
	)
	if iss.cache == nil {
		// Without a cache the record comes straight from the store: no
		// closure, and no copy of the record on its way here.
		f.rec, err = iss.store.Lookup(ctx, h)
		f.want = h
		if err != nil && len(iss.keys.previous) > 0 && errors.Is(err, ErrNotFound) {
			f.rec, f.want, err = iss.lookupPrevious(ctx, secret)
		}
	} else {
		f, err = iss.cache.fetch(ctx, h, now, func(ctx context.Context) (Record, Hash, error) {
			return iss.lookup(ctx, secret, h)
		})
	}
	rec := &f.rec
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return Token{}, iss.refused(ctx, accountID, "", reasonUnknown, "")
		}
		return Token{}, fmt.Errorf("apitoken: store: %w", err)
	}
	// rec.Hash is checked again so that a faulty custom store fails closed.
	if rec.Hash != f.want {
		return Token{}, iss.refused(ctx, accountID, "", reasonUnknown, "")
	}
	if rec.AccountID != accountID {
		return Token{}, iss.refused(ctx, accountID, rec.ID, reasonWrongAccount, rec.AccountID)
	}
	if !rec.ExpiresAt.IsZero() && !now.Before(rec.ExpiresAt) {
		return Token{}, iss.refused(ctx, accountID, rec.ID, reasonExpired, "")
	}
	if len(iss.keys.previous) > 0 && f.want != h { // only a previous key finds another hash
		if !f.shared {
			iss.rehash(ctx, *rec, h)
		}
		rec.Hash = h
	}
	if iss.cache != nil {
		iss.cache.keep(f, *rec, now)
	}
	if iss.auditLog != nil {
		iss.audit(ctx, slog.LevelDebug, "apitoken: token verified",
			slog.String("account_id", rec.AccountID), slog.String("token_id", rec.ID))
	}
	// A last use the store already has from within the interval spares
	// the coalescer's map: the common case, once a token's use is written.
	// (Not After now-interval is now.Sub(LastUsedAt) >= interval, at a
	// third of the cost.)
	if iss.lastUses != nil && !rec.LastUsedAt.After(now.Add(-iss.lastUses.interval)) {
		iss.lastUses.use(rec.ID, now)
	}
	return rec.Token, nil
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
		return
	}
	iss.audit(ctx, slog.LevelInfo, "apitoken: token re-hashed", slog.String("account_id", rec.AccountID), slog.String("token_id", rec.ID))
}
