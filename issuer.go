package apitoken

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

// An Issuer issues, lists, deletes and verifies the tokens kept in a Store,
// and serves the HTTP middleware that authenticates requests with them. It is
// safe for concurrent use. Make one with NewIssuer: the zero value is not
// usable.
type Issuer struct {
	store    Store
	caps     capabilities // the store's optional methods, found once
	settings              // what the options set, shared with InTx's Issuers
	keys     *hasher
	lastUses *lastUses // nil when last uses are not recorded
	cache    *cache    // nil without WithCache
	bus      Bus       // nil without WithCacheBus
	tx       *txState  // set on an Issuer made by InTx
	closed   atomic.Bool
	busState busStatus // for Stats

	stop       context.CancelFunc // ends the background work of the bus
	background sync.WaitGroup
}

// settings are what an Issuer keeps of its options.
type settings struct {
	head      string // the prefix and '_': how every secret starts
	headCRC   uint32 // checksumIEEE(head), from which a secret's checksum resumes
	now       func() time.Time
	maxTokens int                            // per account; 0: no limit
	auditLog  *slog.Logger                   // nil: no audit records
	log       *slog.Logger                   // for failures in the background; nil: slog.Default()
	events    []func(context.Context, Event) // the audit logger's and WithEvents' hooks
	tracer    Tracer                         // nil without WithTracer
	stats     *counters                      // Verify's, shared with InTx's Issuers

	defaultLifetime, maxLifetime time.Duration // 0: none
}

// NewIssuer returns an Issuer over store. Options set the secret prefix, an
// application hash key and the clock; a bad option is an error wrapping
// ErrInvalidInput, and an option that needs a capability the store lacks
// (see Store) one wrapping errors.ErrUnsupported.
func NewIssuer(store Store, opts ...Option) (*Issuer, error) {
	if isNilStore(store) {
		return nil, fmt.Errorf("%w: store is nil", ErrInvalidInput)
	}
	c := config{prefix: DefaultPrefix, hashKey: defaultHashKey, now: time.Now}
	for _, opt := range opts {
		if opt == nil {
			return nil, fmt.Errorf("%w: option is nil", ErrInvalidInput)
		}
		if err := opt(&c); err != nil {
			return nil, err
		}
	}
	caps := findCapabilities(store)
	if err := caps.check(needs{maxTokens: c.maxTokens, previousKeys: len(c.previous), lastUse: c.lastUseSet && c.lastUse > 0}); err != nil {
		return nil, err
	}
	if c.bus != nil && c.cacheSize == 0 {
		return nil, fmt.Errorf("%w: WithCacheBus needs WithCache", ErrInvalidInput)
	}
	if c.maxLifetime > 0 && c.defaultLifetime > c.maxLifetime {
		return nil, fmt.Errorf("%w: the default lifetime (%v) is above the max lifetime (%v)", ErrInvalidInput, c.defaultLifetime, c.maxLifetime)
	}
	iss := &Issuer{
		store: store,
		caps:  caps,
		settings: settings{
			head:      c.prefix + "_",
			headCRC:   checksumIEEE(c.prefix + "_"),
			now:       c.now,
			maxTokens: c.maxTokens,
			auditLog:  c.auditLog,
			log:       c.logger,
			events:    c.hooks(),
			tracer:    c.tracer,
			stats:     newCounters(),

			defaultLifetime: c.defaultLifetime,
			maxLifetime:     c.maxLifetime,
		},
		keys: newHasher(c.hashKey, c.previous),
		bus:  c.bus,
		stop: func() {},
	}
	if !c.lastUseSet && caps.recordLastUse != nil {
		c.lastUse = defaultLastUseInterval
	}
	if c.lastUse > 0 {
		iss.lastUses = &lastUses{store: caps.recordLastUse, interval: c.lastUse, log: c.logger, recorded: make(map[string]time.Time), emit: iss.emitBackground}
	}
	if c.cacheSize > 0 {
		iss.cache = newCache(c.cacheSize, c.cacheTTL, c.now())
	}
	if c.bus != nil {
		iss.busState.set(BusConnecting, c.now())
		var ctx context.Context
		ctx, iss.stop = context.WithCancel(context.Background())
		iss.background.Add(1)
		go iss.subscribe(ctx)
	}
	return iss, nil
}

// Format prints the Issuer as its prefix alone, for every verb and flag
// (%v, %+v, %#v, %s, %q, %x…): it holds hash keys and, with WithCache, the
// hashes of cached secrets, which must never reach a log.
func (iss *Issuer) Format(f fmt.State, _ rune) {
	_, _ = io.WriteString(f, "apitoken.Issuer{prefix: "+strconv.Quote(iss.prefix())+"}")
}

// LogValue makes log/slog, with any handler, print the Issuer's prefix
// alone, as Format does.
func (iss *Issuer) LogValue() slog.Value {
	return slog.GroupValue(slog.String("prefix", iss.prefix()))
}

// prefix is the prefix of the Issuer's secrets, for Format and LogValue.
func (iss *Issuer) prefix() string {
	if iss == nil {
		return ""
	}
	return strings.TrimSuffix(iss.head, "_")
}

// logger is where the Issuer reports what goes wrong in the background,
// where no caller sees an error: WithLogger's logger, or slog.Default().
func (iss *Issuer) logger() *slog.Logger {
	if iss.log != nil {
		return iss.log
	}
	return slog.Default()
}

// Limits of IssueParams, documented there.
const (
	maxTextLen  = 128
	maxScopes   = 32
	maxScopeLen = 64
	// maxAllowedIPs bounds IssueParams.AllowedIPs: a token's allowlist is
	// checked on each of its requests.
	maxAllowedIPs = 32
	issueRetries  = 3
	// Each lost compare-and-set of the expiry means that another Rotate
	// shortened it: progress, so the bound is only a safety net.
	expiryRetries = 64
	maxYear       = 9999
	undoTimeout   = 10 * time.Second // for Issue and Rotate to undo or check what a failed call may have stored
)

// Issue creates a token for p.AccountID and returns its secret with its
// metadata. The secret is returned only here, only after the store accepted
// the record, and is never kept: show it to the user once. Invalid params are
// an error wrapping ErrInvalidInput that names the field; an account at the
// limit of WithMaxTokensPerAccount gets one wrapping ErrLimitReached; any
// other error comes from the store. After any error, no token was issued.
//
// A store error may come after the store kept the record all the same (a
// commit whose reply was lost in a failover): no one holds that record's
// secret, so Issue deletes it again, with a context of its own (bounded by
// 10 seconds) that outlives ctx. Should that delete fail too, the error
// says so and a warning names the token id in WithLogger's log: such a
// token can never verify, but it is listed and counts against
// WithMaxTokensPerAccount until it is deleted. The caller sees an error
// and should try again once the store answers.
func (iss *Issuer) Issue(ctx context.Context, p IssueParams) (secret string, tok Token, err error) {
	ctx = iss.begin(ctx, OpIssue)
	defer iss.end(ctx, OpIssue, p.AccountID, "", &err)
	if p.ExpiresAt.IsZero() && iss.defaultLifetime > 0 {
		p.ExpiresAt = iss.clock().Add(iss.defaultLifetime)
	}
	secret, tok, err = iss.issue(ctx, p, iss.maxTokens)
	if err == nil && iss.observed() {
		iss.emit(ctx, Event{Kind: KindIssued, Op: OpIssue, AccountID: tok.AccountID, TokenID: tok.ID, MemberID: tok.MemberID, Hint: tok.Hint, At: tok.CreatedAt})
	}
	return secret, tok, err
}

// issue is Issue with a limit of max tokens in the account (0: none).
func (iss *Issuer) issue(ctx context.Context, p IssueParams, max int) (secret string, tok Token, err error) {
	if iss.closed.Load() {
		return "", Token{}, ErrClosed
	}
	// ExpiresAt is truncated before the check, so that what is stored is in
	// the future, not merely what was asked for.
	p.ExpiresAt = p.ExpiresAt.UTC().Truncate(time.Microsecond)
	now := iss.clock()
	if err := checkParams(p, now); err != nil {
		return "", Token{}, err
	}
	if err := iss.checkLifetime(p.ExpiresAt, now); err != nil {
		return "", Token{}, err
	}
	tok = Token{
		AccountID:  p.AccountID,
		MemberID:   p.MemberID,
		Name:       p.Name,
		Scopes:     slices.Clip(slices.Clone(p.Scopes)),
		CreatedAt:  now,
		ExpiresAt:  p.ExpiresAt,
		AllowedIPs: slices.Clip(slices.Clone(p.AllowedIPs)),
	}
	if len(tok.Scopes) == 0 {
		tok.Scopes = nil
	}
	if len(tok.AllowedIPs) == 0 {
		tok.AllowedIPs = nil
	}
	// A duplicate id or hash is astronomically unlikely, but if the store
	// reports one, draw again rather than fail or overwrite.
	for range issueRetries {
		id, err := uuid.NewV7()
		if err != nil {
			return "", Token{}, fmt.Errorf("apitoken: token id: %w", err)
		}
		tok.ID = id.String()
		secret = newSecret(iss.head)
		tok.Hint = hintOf(secret)
		rec := Record{Token: tok, Hash: iss.keys.hash(secret)}
		if max > 0 {
			err = iss.caps.createLimited.CreateLimited(ctx, rec, max)
		} else {
			err = iss.store.Create(ctx, rec)
		}
		if err == nil {
			return secret, tok, nil
		}
		if errors.Is(err, ErrLimitReached) {
			return "", Token{}, fmt.Errorf("%w: the account holds the most tokens allowed (%d)", ErrLimitReached, max)
		}
		if !errors.Is(err, ErrDuplicate) {
			return "", Token{}, iss.undoCreate(ctx, tok, fmt.Errorf("apitoken: store: %w", err))
		}
	}
	return "", Token{}, fmt.Errorf("apitoken: store reported a duplicate %d times: %w", issueRetries, ErrDuplicate)
}

// undoCreate deletes the record of tok after its Create failed with err,
// which may have come after the store kept it, and returns err, joined with
// the delete's error if the record may remain. The delete outlives ctx. In
// a transaction (InTx), the caller's rollback undoes it instead.
func (iss *Issuer) undoCreate(ctx context.Context, tok Token, err error) error {
	if iss.tx != nil || errors.Is(err, ErrInvalidInput) {
		return err // refused before anything was written, or the caller's transaction decides
	}
	undoCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), undoTimeout)
	defer cancel()
	undo := iss.store.Delete(undoCtx, tok.AccountID, tok.ID)
	if undo == nil || errors.Is(undo, ErrNotFound) {
		return err // removed, or never stored
	}
	iss.logger().LogAttrs(ctx, slog.LevelWarn, "apitoken: a token that failed to issue may remain in the store",
		slog.String("account_id", tok.AccountID), slog.String("token_id", tok.ID), slog.Any("err", undo))
	return errors.Join(err, fmt.Errorf("apitoken: the token may have been stored, and could not be deleted (id %s): %w", tok.ID, undo))
}

// List returns the tokens of an account, oldest first (ties by ID). It never
// returns another account's token, nor anything secret.
func (iss *Issuer) List(ctx context.Context, accountID string) (_ []Token, err error) {
	ctx = iss.begin(ctx, OpList)
	defer iss.end(ctx, OpList, accountID, "", &err)
	if iss.closed.Load() {
		return nil, ErrClosed
	}
	if err := checkAccountID(accountID); err != nil {
		return nil, err
	}
	toks, err := iss.store.List(ctx, accountID)
	if err != nil {
		return nil, fmt.Errorf("apitoken: store: %w", err)
	}
	return toks, nil
}

// Delete removes a token of the account for good: its secret stops
// verifying at once. An unknown id, or the id of another account's token, is
// an error wrapping ErrNotFound, and changes nothing.
func (iss *Issuer) Delete(ctx context.Context, accountID, tokenID string) (err error) {
	ctx = iss.begin(ctx, OpDelete)
	defer iss.end(ctx, OpDelete, accountID, tokenID, &err)
	if iss.closed.Load() {
		return ErrClosed
	}
	if err := checkAccountID(accountID); err != nil {
		return err
	}
	if tokenID == "" || len(tokenID) > maxTextLen {
		return fmt.Errorf("%w: no token with that id", ErrNotFound)
	}
	err = iss.store.Delete(ctx, accountID, tokenID)
	// Also after an error: the token may be gone anyway (deleted through
	// another instance, or by a commit whose answer was lost), and may still
	// be cached, here or elsewhere. Forgetting a live token costs a lookup.
	iss.invalidate(ctx, accountID, tokenID)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return fmt.Errorf("%w: no token with that id", ErrNotFound)
		}
		return fmt.Errorf("apitoken: store: %w", err)
	}
	if iss.observed() {
		iss.emit(ctx, Event{Kind: KindDeleted, Op: OpDelete, AccountID: accountID, TokenID: tokenID, At: iss.now()})
	}
	return nil
}

// Rotate replaces a token of the account with a new one, the way keys are
// rolled: the successor has the same member, name, scopes and expiry, and a
// new secret, returned only here. The old token keeps working for grace (its
// expiry is brought forward to now+grace, never pushed back, also when
// Rotates of one token race), so that its users can switch; with a grace of
// 0 it is deleted at once. Rotating a token again within its grace gives it
// another successor. A grace above 0 needs a Store that implements
// ExpiryUpdater (memstore and sqlstore do); otherwise Rotate changes nothing
// and returns an error wrapping errors.ErrUnsupported.
//
// The successor also keeps the AllowedIPs, and gets a Hint of its own
// secret; with WithMaxLifetime, its expiry is brought forward to now plus
// the max when it is later or never.
//
// An unknown or expired id, the id of a token older than WithMaxLifetime
// allows, or the id of another account's token, is an error wrapping
// ErrNotFound and changes nothing; a disabled token is an error wrapping
// ErrInvalidInput (Enable it first).
//
// No failure leaves the account with fewer working tokens than before the
// call. The successor is created first (a failure there is undone as in
// Issue, and the old token is untouched). If changing the old token then
// fails, the change may have reached the store all the same (a commit
// whose reply was lost): Rotate reads the old token back, with a context of
// its own that outlives ctx. If the change took effect, Rotate succeeds and
// returns the successor; if it did not, Rotate deletes the successor and
// returns the error, and the old token works as before. Only if the store
// cannot be read for 10 seconds does Rotate not know: it then deletes the
// successor and returns an error that says so; list the account's tokens
// once the store answers, and rotate again or issue a token if the old one
// is gone or shortened.
func (iss *Issuer) Rotate(ctx context.Context, accountID, tokenID string, grace time.Duration) (secret string, tok Token, err error) {
	ctx = iss.begin(ctx, OpRotate)
	defer iss.end(ctx, OpRotate, accountID, tokenID, &err)
	if iss.closed.Load() {
		return "", Token{}, ErrClosed
	}
	if err := checkAccountID(accountID); err != nil {
		return "", Token{}, err
	}
	if grace < 0 {
		return "", Token{}, fmt.Errorf("%w: grace is negative", ErrInvalidInput)
	}
	if grace > 0 && iss.caps.setExpiry == nil {
		return "", Token{}, fmt.Errorf("apitoken: the store cannot set a token's expiry, so rotate with a grace of 0: %w", errors.ErrUnsupported)
	}
	now := iss.clock()
	old, err := iss.liveToken(ctx, accountID, tokenID, now)
	if err != nil {
		return "", Token{}, err
	}
	if old.Disabled {
		return "", Token{}, errRotateDisabled
	}
	expires := old.ExpiresAt
	if max := iss.maxLifetime; max > 0 && (expires.IsZero() || expires.After(now.Add(max))) {
		expires = now.Add(max)
	}
	// Not counted against the limit: the successor replaces old.
	secret, tok, err = iss.issue(ctx, IssueParams{
		AccountID: old.AccountID, MemberID: old.MemberID, Name: old.Name,
		Scopes: old.Scopes, ExpiresAt: expires, AllowedIPs: old.AllowedIPs,
	}, 0)
	if err != nil {
		return "", Token{}, err
	}
	until := now.Add(grace).Truncate(time.Microsecond)
	switch {
	case iss.disabledMeanwhile(ctx, old, now):
		err = errRotateDisabled
	case grace == 0:
		err = iss.store.Delete(ctx, accountID, old.ID)
	default:
		err = iss.shortenExpiry(ctx, old, until)
	}
	// Also after an error: the change may have reached the store anyway.
	iss.invalidate(ctx, accountID, old.ID)
	if err != nil && !errors.Is(err, ErrNotFound) && err != errRotateDisabled && iss.tx == nil {
		// A failure may hide a success: read the old token back. (In the
		// caller's transaction, its commit or rollback decides.)
		switch applied, checkErr := iss.rotated(ctx, old, grace, until); {
		case applied:
			err = nil
		case checkErr != nil:
			err = errors.Join(err, fmt.Errorf("apitoken: whether the old token was changed is unknown: %w", checkErr))
		}
	}
	if err != nil {
		// Leave things as they were: the successor goes, the old token stays,
		// also when the caller's context has ended.
		undoCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), undoTimeout)
		defer cancel()
		if undo := iss.store.Delete(undoCtx, accountID, tok.ID); undo != nil {
			err = errors.Join(err, undo)
		} else if err == errRotateDisabled {
			return "", Token{}, err
		}
		if errors.Is(err, ErrNotFound) {
			return "", Token{}, errNoLiveToken // deleted or expired meanwhile
		}
		return "", Token{}, fmt.Errorf("apitoken: store: %w", err)
	}
	if iss.observed() {
		iss.emit(ctx, Event{Kind: KindRotated, Op: OpRotate, AccountID: accountID, TokenID: old.ID, Hint: old.Hint,
			Related: tok.ID, RelatedHint: tok.Hint, Grace: grace, At: now})
	}
	return secret, tok, nil
}

// rotated reports whether the change Rotate made to old (deleted with a
// grace of 0, its expiry brought forward to until otherwise) is in the
// store, after the call that made it failed. It reads the token back with a
// context of its own, bounded by undoTimeout, trying again while the store
// fails; it returns the last error if it never could.
func (iss *Issuer) rotated(ctx context.Context, old Token, grace time.Duration, until time.Time) (bool, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), undoTimeout)
	defer cancel()
	pause := 10 * time.Millisecond
	for {
		toks, err := iss.store.List(ctx, old.AccountID)
		if err == nil {
			i := slices.IndexFunc(toks, func(t Token) bool { return t.ID == old.ID })
			if grace == 0 {
				return i < 0, nil
			}
			return i >= 0 && !toks[i].ExpiresAt.IsZero() && !toks[i].ExpiresAt.After(until), nil
		}
		select {
		case <-ctx.Done():
			return false, err
		case <-time.After(pause):
		}
		pause = min(2*pause, time.Second)
	}
}

// liveToken returns the token of the account with that id, or
// errNoLiveToken when there is none, it has expired or it is older than
// the max lifetime. A disabled token is returned: the caller decides.
func (iss *Issuer) liveToken(ctx context.Context, accountID, tokenID string, now time.Time) (Token, error) {
	toks, err := iss.store.List(ctx, accountID)
	if err != nil {
		return Token{}, fmt.Errorf("apitoken: store: %w", err)
	}
	i := slices.IndexFunc(toks, func(t Token) bool { return t.ID == tokenID })
	if i < 0 {
		return Token{}, errNoLiveToken
	}
	if st := iss.status(&toks[i], now); st == StatusExpired || st == StatusTooOld {
		return Token{}, errNoLiveToken
	}
	return toks[i], nil
}

// shortenExpiry brings the expiry of old forward to until, unless it is
// already sooner. The store changes it only if it is still the one read, so
// that a concurrent Rotate's shorter grace is never overwritten by a longer
// one; when it changed meanwhile, the token is read again.
func (iss *Issuer) shortenExpiry(ctx context.Context, old Token, until time.Time) error {
	for range expiryRetries {
		if !old.ExpiresAt.IsZero() && !until.Before(old.ExpiresAt) {
			return nil
		}
		err := iss.caps.setExpiry.SetExpiry(ctx, old.AccountID, old.ID, old.ExpiresAt, until)
		if !errors.Is(err, ErrNotFound) {
			return err
		}
		if old, err = iss.liveToken(ctx, old.AccountID, old.ID, iss.clock()); err != nil {
			return err
		}
	}
	return fmt.Errorf("apitoken: the token's expiry changed %d times during Rotate", expiryRetries)
}

// disabledMeanwhile reports whether old, which Rotate read enabled, was
// disabled since, by a Disable that raced Rotate's read: it must not leave
// the paused token a working successor. A failed read says no: the change
// that follows meets the store's answer.
func (iss *Issuer) disabledMeanwhile(ctx context.Context, old Token, now time.Time) bool {
	cur, err := iss.liveToken(ctx, old.AccountID, old.ID, now)
	return err == nil && cur.Disabled
}

// errNoLiveToken is Rotate's answer for a token it cannot rotate.
var errNoLiveToken = fmt.Errorf("%w: no live token with that id", ErrNotFound)

// errRotateDisabled is Rotate's answer for a disabled token: rotating it
// would give a working successor to a token its owner paused.
var errRotateDisabled = fmt.Errorf("%w: the token is disabled: Enable it before rotating it", ErrInvalidInput)

// Close stops the subscription to the cache bus (WithCacheBus), writes the
// last uses still pending to the store and makes the Issuer unusable: every
// method then returns an error wrapping ErrClosed.
// It waits for the writes, each bounded by 10 seconds, returns the error of
// the last one that failed, and may be called more than once.
func (iss *Issuer) Close() error {
	iss.closed.Store(true)
	iss.stop()
	iss.background.Wait()
	if iss.lastUses == nil {
		return nil
	}
	if err := iss.lastUses.close(); err != nil {
		return fmt.Errorf("apitoken: last use not recorded: %w", err)
	}
	return nil
}

// DeleteAll removes every token of the account for good, for an account
// that is closed or compromised, and returns how many it removed. Other
// accounts' tokens are untouched. With a Store that implements
// AccountDeleter (memstore and sqlstore do) it is one store call; with
// another, it lists the account's tokens and deletes them one by one, so a
// token issued meanwhile may survive: call it again to be sure.
func (iss *Issuer) DeleteAll(ctx context.Context, accountID string) (n int, err error) {
	ctx = iss.begin(ctx, OpDeleteAll)
	defer iss.end(ctx, OpDeleteAll, accountID, "", &err)
	if iss.closed.Load() {
		return 0, ErrClosed
	}
	if err := checkAccountID(accountID); err != nil {
		return 0, err
	}
	n, err = iss.deleteAll(ctx, accountID)
	iss.invalidate(ctx, accountID, "") // also when the store had none left: they may still be cached here
	if n > 0 && iss.observed() {
		iss.emit(ctx, Event{Kind: KindDeletedAccount, Op: OpDeleteAll, AccountID: accountID, Count: n, At: iss.now()})
	}
	return n, err
}

// deleteAll is DeleteAll after the account id was checked.
func (iss *Issuer) deleteAll(ctx context.Context, accountID string) (int, error) {
	if d := iss.caps.deleteAccount; d != nil {
		// A store that cannot serve it in its configuration says so at call
		// time: the fallback below then serves instead.
		switch n, err := d.DeleteAccount(ctx, accountID); {
		case err == nil:
			return n, nil
		case !errors.Is(err, errors.ErrUnsupported):
			return 0, fmt.Errorf("apitoken: store: %w", err)
		}
	}
	return iss.deleteListed(ctx, accountID, func(Token) bool { return true })
}

// deleteListed is the fallback of the bulk deletes for a store without the
// capability: it lists the account and deletes, one by one, the tokens
// that match, and returns how many it deleted.
func (iss *Issuer) deleteListed(ctx context.Context, accountID string, match func(Token) bool) (int, error) {
	toks, err := iss.store.List(ctx, accountID)
	if err != nil {
		return 0, fmt.Errorf("apitoken: store: %w", err)
	}
	n := 0
	for _, tok := range toks {
		if !match(tok) {
			continue
		}
		switch err := iss.store.Delete(ctx, accountID, tok.ID); {
		case err == nil:
			n++
		case !errors.Is(err, ErrNotFound): // gone meanwhile is fine
			return n, fmt.Errorf("apitoken: store: %w", err)
		}
	}
	return n, nil
}

// Prune removes the tokens, of every account, that expired at or before
// before, and returns how many it removed. Expired tokens never verify, so
// pruning is housekeeping for a scheduled job, never needed on the request
// path; passing a time some days back keeps recently expired tokens in the
// lists a while, to tell their owners. The Store must implement
// ExpiredDeleter (memstore and sqlstore do); otherwise Prune returns an
// error wrapping errors.ErrUnsupported.
func (iss *Issuer) Prune(ctx context.Context, before time.Time) (_ int, err error) {
	ctx = iss.begin(ctx, OpPrune)
	defer iss.end(ctx, OpPrune, "", "", &err)
	if iss.closed.Load() {
		return 0, ErrClosed
	}
	d := iss.caps.deleteExpired
	if d == nil {
		return 0, fmt.Errorf("apitoken: the store cannot delete expired tokens: %w", errors.ErrUnsupported)
	}
	before = before.UTC().Truncate(time.Microsecond)
	n, err := d.DeleteExpired(ctx, before)
	if err != nil {
		return 0, fmt.Errorf("apitoken: store: %w", err)
	}
	if iss.observed() {
		iss.emit(ctx, Event{Kind: KindPruned, Op: OpPrune, Before: before, Count: n, At: iss.now()})
	}
	return n, nil
}

// clock returns the current time as stores keep it: UTC, microseconds, no
// monotonic reading.
func (iss *Issuer) clock() time.Time {
	return iss.now().UTC().Truncate(time.Microsecond)
}
