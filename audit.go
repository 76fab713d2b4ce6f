package apitoken

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
)

// The reasons a refused verification gives in its audit record. Verify
// itself answers every refusal alike (ErrInvalidToken); only the audit log,
// which the application keeps to itself, tells them apart.
const (
	reasonMalformed    = "malformed"     // the secret is not one of ours, or the account id is empty or too long
	reasonUnknown      = "unknown"       // no token has that secret: never issued, or deleted
	reasonWrongAccount = "wrong account" // the token belongs to another account
	reasonExpired      = "expired"
	reasonScheme       = "unsupported scheme"      // the Authorization header uses a scheme the middleware does not read
	reasonTooOld       = "older than max lifetime" // WithMaxLifetime
	reasonDisabled     = "disabled"
	reasonAddress      = "address not allowed" // outside the token's AllowedIPs, or unknown
)

// statusReasons is the audit reason of each Status that refuses.
var statusReasons = [...]string{
	StatusExpired:  reasonExpired,
	StatusTooOld:   reasonTooOld,
	StatusDisabled: reasonDisabled,
}

// audit writes an audit record when WithAuditLogger set a logger. Callers
// on the verification path check iss.auditLog first, so that without one
// building the attributes costs nothing.
func (iss *Issuer) audit(ctx context.Context, level slog.Level, msg string, attrs ...slog.Attr) {
	if iss.auditLog != nil {
		iss.auditLog.LogAttrs(ctx, level, msg, attrs...)
	}
}

// refused records a refused verification and returns ErrInvalidToken.
// tokenID and hint are empty when no token matched the secret; tokenAccountID is the
// token's own account when the secret was used with another one (it has
// leaked, or is being tried), empty otherwise.
func (iss *Issuer) refused(ctx context.Context, accountID, tokenID, hint, reason, tokenAccountID string) error {
	if iss.auditLog != nil {
		iss.auditRefusal(ctx, accountID, tokenID, hint, reason, tokenAccountID)
	}
	return ErrInvalidToken
}

// auditRefusal writes the audit record of refused, out of line so that a
// refusal without an audit log costs a test and a return.
func (iss *Issuer) auditRefusal(ctx context.Context, accountID, tokenID, hint, reason, tokenAccountID string) {
	attrs := []slog.Attr{slog.String("account_id", untrusted(accountID)), slog.String("token_id", tokenID),
		slog.String("hint", hint), slog.String("reason", reason)}
	if tokenAccountID != "" {
		attrs = append(attrs, slog.String("token_account_id", tokenAccountID))
	}
	iss.audit(ctx, slog.LevelWarn, "apitoken: token refused", attrs...)
}

// refusedRequest records a request refused as malformed before Verify (the
// middleware answers it with 400), and returns err. The record names the
// problem with the package's own words, never the request's content; the
// error of a custom Extractor is not written.
func (iss *Issuer) refusedRequest(ctx context.Context, err error) error {
	if iss.auditLog != nil && errors.Is(err, ErrInvalidRequest) {
		problem := "malformed request"
		if re, ok := errors.AsType[*requestError](err); ok {
			problem = re.reason
		}
		iss.audit(ctx, slog.LevelWarn, "apitoken: request refused",
			slog.String("reason", reasonMalformed), slog.String("problem", problem))
	}
	return err
}

// refusedScheme records a request refused because its Authorization header
// uses a scheme the extractor does not read. The scheme itself is not
// written: a client that sends a bare secret would have it logged.
func (iss *Issuer) refusedScheme(ctx context.Context) {
	iss.audit(ctx, slog.LevelWarn, "apitoken: request refused", slog.String("reason", reasonScheme))
}

// untrusted returns an account id that came with a request as it may be
// logged: as it is when it is a valid account id, otherwise cut to 128 bytes
// and quoted in ASCII, so that no control character, line break or oversized
// value reaches the log as written.
func untrusted(accountID string) string {
	if accountIDProblem(accountID) == "" {
		return accountID
	}
	if len(accountID) > maxTextLen {
		accountID = accountID[:maxTextLen]
	}
	return strconv.QuoteToASCII(accountID)
}
