package apitoken

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"time"
)

// A Status says whether a token verifies now, and if not, why: what a list
// of tokens shows beside each one. Issuer.Status gives it.
type Status int

const (
	// StatusActive: the token verifies (from its AllowedIPs, if any).
	StatusActive Status = iota
	// StatusDisabled: Disable paused it; Enable resumes it.
	StatusDisabled
	// StatusExpired: its ExpiresAt has passed.
	StatusExpired
	// StatusTooOld: it was created longer ago than WithMaxLifetime allows
	// (it was issued before the maximum was lowered).
	StatusTooOld
)

// String returns the status in words, as a list may show it.
func (s Status) String() string {
	switch s {
	case StatusActive:
		return "active"
	case StatusDisabled:
		return "disabled"
	case StatusExpired:
		return "expired"
	case StatusTooOld:
		return "older than the max lifetime"
	}
	return fmt.Sprintf("Status(%d)", int(s))
}

// Status returns whether tok, as List returned it, verifies now, and if
// not, why. When several reasons hold, it returns the first of expired,
// older than the max lifetime, disabled: the one that Enable cannot undo
// comes first.
func (iss *Issuer) Status(tok Token) Status {
	return iss.status(&tok, iss.now())
}

// status is Status at now: the one place where expiry, max lifetime and
// Disabled are weighed, for Verify, Rotate, Status and Expiring.
func (iss *Issuer) status(tok *Token, now time.Time) Status {
	switch {
	case !tok.ExpiresAt.IsZero() && !now.Before(tok.ExpiresAt):
		return StatusExpired
	case iss.maxLifetime > 0 && !now.Before(tok.CreatedAt.Add(iss.maxLifetime)):
		return StatusTooOld
	case tok.Disabled:
		return StatusDisabled
	}
	return StatusActive
}

// checkLifetime refuses an expiry that WithMaxLifetime does not allow, for
// a token issued at now.
func (iss *Issuer) checkLifetime(expires, now time.Time) error {
	max := iss.maxLifetime
	switch {
	case max == 0:
		return nil
	case expires.IsZero():
		return fmt.Errorf("%w: ExpiresAt is required: tokens live at most %v (WithMaxLifetime)", ErrInvalidInput, max)
	case expires.After(now.Add(max)):
		return fmt.Errorf("%w: ExpiresAt is more than %v away, the max lifetime (WithMaxLifetime)", ErrInvalidInput, max)
	}
	return nil
}

// Disable pauses a token of the account: it refuses at once, everywhere,
// exactly as an unknown token does (the audit log records the reason
// "disabled"), but stays listed with Disabled set, and Enable makes it work
// again. Disabling a disabled token changes nothing and is not an error. An
// unknown id, or the id of another account's token, is an error wrapping
// ErrNotFound. Every cache forgets the token, this Issuer's at once and the
// other instances' through WithCacheBus, as after Delete. The Store must
// implement Disabler (memstore and sqlstore do); otherwise Disable returns
// an error wrapping errors.ErrUnsupported.
func (iss *Issuer) Disable(ctx context.Context, accountID, tokenID string) (err error) {
	ctx = iss.begin(ctx, OpDisable)
	defer iss.end(ctx, OpDisable, accountID, tokenID, &err)
	return iss.setDisabled(ctx, accountID, tokenID, true)
}

// Enable resumes a token that Disable paused; enabling a token that is not
// disabled changes nothing and is not an error. An unknown id, or the id of
// another account's token, is an error wrapping ErrNotFound. A token that
// has expired meanwhile, or is older than WithMaxLifetime allows, stays
// refused. The Store must implement Disabler.
func (iss *Issuer) Enable(ctx context.Context, accountID, tokenID string) (err error) {
	ctx = iss.begin(ctx, OpEnable)
	defer iss.end(ctx, OpEnable, accountID, tokenID, &err)
	return iss.setDisabled(ctx, accountID, tokenID, false)
}

func (iss *Issuer) setDisabled(ctx context.Context, accountID, tokenID string, disabled bool) error {
	if iss.closed.Load() {
		return ErrClosed
	}
	if err := checkAccountID(accountID); err != nil {
		return err
	}
	d := iss.caps.setDisabled
	if d == nil {
		return fmt.Errorf("apitoken: the store cannot disable tokens (it needs Disabler): %w", errors.ErrUnsupported)
	}
	if tokenID == "" || len(tokenID) > maxTextLen {
		return fmt.Errorf("%w: no token with that id", ErrNotFound)
	}
	err := d.SetDisabled(ctx, accountID, tokenID, disabled)
	// Also after an error, as Delete does: the change may have reached the
	// store. Enable invalidates too, for a cache that never holds a
	// disabled token need not, but the other instances' may hold it from
	// before the Disable they have not heard of yet.
	iss.invalidate(ctx, accountID, tokenID)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return fmt.Errorf("%w: no token with that id", ErrNotFound)
		}
		return fmt.Errorf("apitoken: store: %w", err)
	}
	if iss.observed() {
		e := Event{Kind: KindEnabled, Op: OpEnable, AccountID: accountID, TokenID: tokenID, At: iss.now()}
		if disabled {
			e.Kind, e.Op = KindDisabled, OpDisable
		}
		iss.emit(ctx, e)
	}
	return nil
}

// DeleteMember removes every token that a member of the account issued
// (their MemberID), for a member who leaves the organisation, and returns
// how many it removed; the account's other tokens are untouched. With a
// Store that implements MemberDeleter (memstore and sqlstore do) it is one
// store call; with another, it lists the account's tokens and deletes the
// member's one by one, so a token the member issues meanwhile may survive:
// call it again once the member can no longer issue. Every cache forgets
// the account's tokens, through the bus too, as after DeleteAll. An empty
// memberID is an error wrapping ErrInvalidInput: it would name the tokens
// issued without a member.
func (iss *Issuer) DeleteMember(ctx context.Context, accountID, memberID string) (n int, err error) {
	ctx = iss.begin(ctx, OpDeleteMember)
	defer iss.end(ctx, OpDeleteMember, accountID, "", &err)
	if iss.closed.Load() {
		return 0, ErrClosed
	}
	if err := checkAccountID(accountID); err != nil {
		return 0, err
	}
	if memberID == "" {
		return 0, fmt.Errorf("%w: MemberID is empty", ErrInvalidInput)
	}
	if err := checkText("MemberID", memberID); err != nil {
		return 0, err
	}
	n, err = iss.deleteMember(ctx, accountID, memberID)
	iss.invalidate(ctx, accountID, "") // also after an error: some may be gone
	if n > 0 && iss.observed() {
		iss.emit(ctx, Event{Kind: KindDeletedMember, Op: OpDeleteMember, AccountID: accountID, MemberID: memberID, Count: n, At: iss.now()})
	}
	return n, err
}

func (iss *Issuer) deleteMember(ctx context.Context, accountID, memberID string) (int, error) {
	if d := iss.caps.deleteMember; d != nil {
		switch n, err := d.DeleteMember(ctx, accountID, memberID); {
		case err == nil:
			return n, nil
		case !errors.Is(err, errors.ErrUnsupported):
			return 0, fmt.Errorf("apitoken: store: %w", err)
		}
	}
	return iss.deleteListed(ctx, accountID, func(tok Token) bool { return tok.MemberID == memberID })
}

// Batch sizes of PruneUnused and Expiring: each store call handles at most
// this many tokens, so memory stays bounded and no call holds the store
// for long.
const (
	pruneBatch    = 500
	expiringBatch = 256
)

// PruneUnused removes the tokens, of every account, not used since
// unusedSince: last used before it, or never used and created before it
// (GitHub removes tokens unused for a year), and returns how many it
// removed. It is a job for a scheduler, and works in batches of a few
// hundred tokens, each a short store call.
//
// It relies on the last uses this Issuer records (WithLastUseInterval):
// without them every token would look unused, so it is then an error
// wrapping errors.ErrUnsupported, and an unusedSince within one interval
// of now, where a recent use may not be written yet, is an error wrapping
// ErrInvalidInput. Pass a time months back. The Store must implement
// UnusedDeleter (memstore and sqlstore do); otherwise PruneUnused returns
// an error wrapping errors.ErrUnsupported. A failure after some batches
// returns how many were removed with the error.
func (iss *Issuer) PruneUnused(ctx context.Context, unusedSince time.Time) (_ int, err error) {
	ctx = iss.begin(ctx, OpPruneUnused)
	defer iss.end(ctx, OpPruneUnused, "", "", &err)
	if iss.closed.Load() {
		return 0, ErrClosed
	}
	d := iss.caps.deleteUnused
	if d == nil {
		return 0, fmt.Errorf("apitoken: the store cannot delete unused tokens (it needs UnusedDeleter): %w", errors.ErrUnsupported)
	}
	if iss.lastUses == nil {
		return 0, fmt.Errorf("apitoken: PruneUnused needs the last uses recorded (WithLastUseInterval above 0, a LastUseRecorder store): %w", errors.ErrUnsupported)
	}
	unusedSince = unusedSince.UTC().Truncate(time.Microsecond)
	if !unusedSince.Before(iss.clock().Add(-iss.lastUses.interval)) {
		return 0, fmt.Errorf("%w: unusedSince is within the last-use interval (%v) of now: recent uses may not be written yet", ErrInvalidInput, iss.lastUses.interval)
	}
	total := 0
	for {
		n, err := d.DeleteUnused(ctx, unusedSince, pruneBatch)
		total += n
		if err != nil {
			err = fmt.Errorf("apitoken: store: %w", err)
		} else if n >= pruneBatch {
			continue
		}
		// The ids removed are not known here: every cache empties, this
		// one at once and the others' through the bus. Also after an
		// error: a batch may have been removed.
		if total > 0 || err != nil {
			iss.invalidate(ctx, "", "")
		}
		// A failure is the store failure's event; what was removed before
		// it was still pruned.
		if iss.observed() && (err == nil || total > 0) {
			iss.emit(ctx, Event{Kind: KindPrunedUnused, Op: OpPruneUnused, Before: unusedSince, Count: total, At: iss.now()})
		}
		return total, err
	}
}

// Expiring yields the live tokens (neither expired, disabled, nor older
// than the max lifetime) of every account that expire before before,
// soonest first, ties by ID: what a job needs to tell owners, a week and a
// day ahead as GitLab does, that a token will stop working. It reads the
// store a page of a few hundred tokens at a time, so memory stays bounded
// however many match; a token whose expiry changes meanwhile may be
// yielded at its old place, its new one, both or neither. After an error
// (the yield of a zero Token and the error) it stops. The Store must
// implement ExpiringLister (memstore and sqlstore do); otherwise the first
// yield is an error wrapping errors.ErrUnsupported.
func (iss *Issuer) Expiring(ctx context.Context, before time.Time) iter.Seq2[Token, error] {
	return func(yield func(Token, error) bool) {
		if iss.closed.Load() {
			yield(Token{}, ErrClosed)
			return
		}
		l := iss.caps.listExpiring
		if l == nil {
			yield(Token{}, fmt.Errorf("apitoken: the store cannot list expiring tokens (it needs ExpiringLister): %w", errors.ErrUnsupported))
			return
		}
		before = before.UTC().Truncate(time.Microsecond)
		after, afterID := iss.clock(), ""
		for {
			page, err := l.ListExpiring(ctx, after, afterID, before, expiringBatch)
			if err != nil {
				yield(Token{}, fmt.Errorf("apitoken: store: %w", err))
				return
			}
			now := iss.now()
			for i := range page {
				if iss.status(&page[i], now) != StatusActive {
					continue
				}
				if !yield(page[i], nil) {
					return
				}
			}
			if len(page) < expiringBatch {
				return
			}
			last := page[len(page)-1]
			after, afterID = last.ExpiresAt, last.ID
		}
	}
}
