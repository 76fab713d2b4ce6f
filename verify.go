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
	if accountID == "" || len(accountID) > maxTextLen || !wellFormed(secret, iss.head) {
		return Token{}, iss.refused(ctx, accountID, "", reasonMalformed)
	}
	h := iss.hash(secret)
	rec, err := iss.store.Lookup(ctx, h)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return Token{}, iss.refused(ctx, accountID, "", reasonUnknown)
		}
		return Token{}, fmt.Errorf("apitoken: store: %w", err)
	}
	// rec.Hash is checked again so that a faulty custom store fails closed.
	if rec.Hash != h {
		return Token{}, iss.refused(ctx, accountID, "", reasonUnknown)
	}
	if rec.AccountID != accountID {
		return Token{}, iss.refusedOther(ctx, accountID, rec.ID, rec.AccountID)
	}
	if !rec.ExpiresAt.IsZero() && !iss.now().Before(rec.ExpiresAt) {
		return Token{}, iss.refused(ctx, accountID, rec.ID, reasonExpired)
	}
	if iss.auditLog != nil {
		iss.audit(ctx, slog.LevelDebug, "apitoken: token verified",
			slog.String("account_id", rec.AccountID), slog.String("token_id", rec.ID))
	}
	if iss.lastUses != nil {
		iss.lastUses.use(rec.ID, iss.clock())
	}
	return rec.Token, nil
}
