package apitoken

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"time"
)

// auditHook returns the event hook that writes the audit records of
// WithAuditLogger to logger: one user of the events among others.
func auditHook(logger *slog.Logger) func(context.Context, Event) {
	return func(ctx context.Context, e Event) {
		switch e.Kind {
		case KindIssued:
			logger.LogAttrs(ctx, slog.LevelInfo, "apitoken: token issued",
				slog.String("account_id", e.AccountID), slog.String("token_id", e.TokenID), slog.String("member_id", e.MemberID),
				slog.String("hint", e.Hint))
		case KindVerified:
			logger.LogAttrs(ctx, slog.LevelDebug, "apitoken: token verified",
				slog.String("account_id", e.AccountID), slog.String("token_id", e.TokenID), slog.String("hint", e.Hint))
		case KindRefused:
			if e.Op == OpAuthenticate {
				attrs := []slog.Attr{slog.String("reason", e.Reason.String())}
				if e.Related != "" {
					attrs = append(attrs, slog.String("problem", e.Related))
				}
				logger.LogAttrs(ctx, slog.LevelWarn, "apitoken: request refused", attrs...)
				return
			}
			attrs := []slog.Attr{slog.String("account_id", untrusted(e.AccountID)), slog.String("token_id", e.TokenID),
				slog.String("hint", e.Hint), slog.String("reason", e.Reason.String())}
			if e.Reason == ReasonWrongAccount {
				attrs = append(attrs, slog.String("token_account_id", e.Related))
			}
			logger.LogAttrs(ctx, slog.LevelWarn, "apitoken: token refused", attrs...)
		case KindRotated:
			logger.LogAttrs(ctx, slog.LevelInfo, "apitoken: token rotated", slog.String("account_id", e.AccountID),
				slog.String("token_id", e.TokenID), slog.String("hint", e.Hint),
				slog.String("successor_id", e.Related), slog.String("successor_hint", e.RelatedHint), slog.Duration("grace", e.Grace))
		case KindDeleted:
			logger.LogAttrs(ctx, slog.LevelInfo, "apitoken: token deleted", slog.String("account_id", e.AccountID), slog.String("token_id", e.TokenID))
		case KindRevoked:
			logger.LogAttrs(ctx, slog.LevelInfo, "apitoken: token revoked", slog.String("account_id", e.AccountID),
				slog.String("token_id", e.TokenID), slog.String("reason", e.Related))
		case KindDeletedAccount:
			if e.Count > 0 {
				logger.LogAttrs(ctx, slog.LevelInfo, "apitoken: account tokens deleted", slog.String("account_id", e.AccountID), slog.Int("count", e.Count))
			}
		case KindDisabled:
			logger.LogAttrs(ctx, slog.LevelInfo, "apitoken: token disabled", slog.String("account_id", e.AccountID), slog.String("token_id", e.TokenID))
		case KindEnabled:
			logger.LogAttrs(ctx, slog.LevelInfo, "apitoken: token enabled", slog.String("account_id", e.AccountID), slog.String("token_id", e.TokenID))
		case KindDeletedMember:
			logger.LogAttrs(ctx, slog.LevelInfo, "apitoken: member tokens deleted", slog.String("account_id", e.AccountID),
				slog.String("member_id", e.MemberID), slog.Int("count", e.Count))
		case KindPrunedUnused:
			logger.LogAttrs(ctx, slog.LevelInfo, "apitoken: unused tokens pruned", slog.Time("unused_since", e.Before), slog.Int("count", e.Count))
		case KindPruned:
			logger.LogAttrs(ctx, slog.LevelInfo, "apitoken: expired tokens pruned", slog.Time("before", e.Before), slog.Int("count", e.Count))
		case KindRehashed:
			logger.LogAttrs(ctx, slog.LevelInfo, "apitoken: token re-hashed", slog.String("account_id", e.AccountID), slog.String("token_id", e.TokenID))
		}
	}
}

// refused counts and reports a refused verification, and returns
// ErrInvalidToken. stripe is the first byte of the secret's hash (0 before
// it was computed); tokenID is empty when no token matched the secret;
// hint is the token's Hint, tokenAccountID the token's own account when the
// secret was used with another one (it has leaked, or is being tried),
// empty otherwise; at is Verify's clock reading, zero before it took one.
// The Event is built only for a hook: without one, a refusal costs its
// count.
func (iss *Issuer) refused(ctx context.Context, stripe byte, r Reason, cached bool, accountID, tokenID, hint, tokenAccountID string, at time.Time) error {
	iss.stats.count(stripe, r, cached)
	if iss.observed() {
		iss.emitRefused(ctx, r, cached, accountID, tokenID, hint, tokenAccountID, at)
	}
	return ErrInvalidToken
}

// emitRefused hands the Event of refused to the hooks, out of line so that
// a refusal without a hook costs its count, a test and a return.
func (iss *Issuer) emitRefused(ctx context.Context, r Reason, cached bool, accountID, tokenID, hint, tokenAccountID string, at time.Time) {
	if at.IsZero() {
		at = iss.now()
	}
	iss.emit(ctx, Event{Kind: KindRefused, Op: OpVerify, Reason: r, Cached: cached, AccountID: accountID, TokenID: tokenID, Hint: hint, Related: tokenAccountID, At: at})
}

// refusedRequest reports a request refused as malformed before Verify (the
// middleware answers it with 400), and returns err. The event names the
// problem with the package's own words, never the request's content; the
// error of a custom Extractor is not passed on.
func (iss *Issuer) refusedRequest(ctx context.Context, err error) error {
	if iss.observed() && errors.Is(err, ErrInvalidRequest) {
		problem := "malformed request"
		if re, ok := errors.AsType[*requestError](err); ok {
			problem = re.reason
		}
		iss.emit(ctx, Event{Kind: KindRefused, Op: OpAuthenticate, Reason: ReasonMalformed, Related: problem, At: iss.now()})
	}
	return err
}

// refusedScheme records a request refused because its Authorization header
// uses a scheme the extractor does not read. The scheme itself is not
// written: a client that sends a bare secret would have it logged.
func (iss *Issuer) refusedScheme(ctx context.Context) {
	if iss.observed() {
		iss.emit(ctx, Event{Kind: KindRefused, Op: OpAuthenticate, Reason: ReasonUnsupportedScheme, At: iss.now()})
	}
}

// statusReasons is the Reason of each Status that refuses.
var statusReasons = [...]Reason{
	StatusExpired:  ReasonExpired,
	StatusTooOld:   ReasonTooOld,
	StatusDisabled: ReasonDisabled,
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
