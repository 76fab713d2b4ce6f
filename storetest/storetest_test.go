package storetest_test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken-go/apitoken"
	"github.com/apitoken-go/apitoken/storetest"
)

// A fault is one way to break a Store. The zero fault breaks nothing.
type fault string

const (
	noFault           fault = "none"
	ignoresDelete     fault = "ignores Delete"
	leaksAccounts     fault = "lists other accounts' tokens"
	sharesSlices      fault = "keeps and returns the caller's Scopes slice"
	overwritesHash    fault = "overwrites a record with the same Hash"
	listsReversed     fault = "lists newest first"
	foldsCase         fault = "matches account ids case-insensitively"
	truncatesTimes    fault = "truncates times to the second"
	zeroForUnknown    fault = "returns a zero Record and no error for an unknown hash"
	returnsLocalTimes fault = "returns times in another location"
	checksThenInserts fault = "checks for a duplicate and inserts in two steps"

	// Faults of the optional capabilities, each confined to one of them.
	deleteAccountFoldsCase    fault = "matches account ids case-insensitively in DeleteAccount"
	deleteAccountMiscounts    fault = "reports the tokens DeleteAccount scanned, not those it removed"
	pruneRemovesNeverExpiring fault = "removes tokens that never expire in DeleteExpired"
	pruneSparesTheCut         fault = "keeps tokens that expire exactly at the time given to DeleteExpired"
	setExpiryIgnoresFrom      fault = "sets an expiry without comparing from (no compare-and-set)"
	setExpiryNotAtomic        fault = "compares and sets an expiry in two steps"
	limitChecksThenInserts    fault = "counts and inserts in CreateLimited in two steps"
	limitOffByOne             fault = "lets CreateLimited store one token over the limit"
	limitFoldsCase            fault = "counts the tokens of accounts differing in case against the limit"
	lastUseMovesBack          fault = "moves LastUsedAt backwards"
	lastUseRefusesUnknown     fault = "fails RecordLastUse on an id it does not hold"
	rehashIgnoresFrom         fault = "re-hashes without comparing from"
	rehashIgnoresAccount      fault = "re-hashes a token of another account"
	dropsAllowedIPs           fault = "does not keep AllowedIPs"
	dropsHint                 fault = "does not keep the Hint"
	lastUseDropsIP            fault = "does not record the address of a last use"
	disableIgnoresAccount     fault = "disables a token of another account"
	disableNotIdempotent      fault = "refuses to disable a disabled token"
	disableCancelNotFound     fault = "reports a SetDisabled with a cancelled context as ErrNotFound"
	deleteMemberAnyAccount    fault = "deletes the member's tokens in every account"
	deleteMemberMiscounts     fault = "reports the tokens DeleteMember scanned, not those it removed"
	pruneUnusedByCreation     fault = "removes tokens created before the cut, used or not, in DeleteUnused"
	pruneUnusedIgnoresLimit   fault = "removes more than limit tokens in DeleteUnused"
	expiringByID              fault = "lists expiring tokens by ID, not soonest first"
	expiringRepeatsCursor     fault = "lists the token at the cursor again in ListExpiring"

	faultEnv           = "STORETEST_FAULT"
	wrapEnv            = "STORETEST_WRAP" // set: the suite gets the faultyStore behind an unwrappingStore
	helperTestFullName = "TestBrokenStoreHelper"

	// raceWindow is how long a two-step fault waits between its steps: long
	// enough that racers reliably slip in between.
	raceWindow = 5 * time.Millisecond
)

// capabilities are the optional capabilities of a Store, each with the
// subtest of storetest.Run that checks it; faultyStore has all of them.
var capabilities = []struct{ name, subtest string }{
	{"AccountDeleter", "DeleteAccount"},
	{"ExpiredDeleter", "DeleteExpired"},
	{"ExpiryUpdater", "SetExpiry"},
	{"LimitedCreator", "CreateLimited"},
	{"LastUseRecorder", "RecordLastUse"},
	{"Rehasher", "Rehash"},
	{"Disabler", "SetDisabled"},
	{"MemberDeleter", "DeleteMember"},
	{"UnusedDeleter", "DeleteUnused"},
	{"ExpiringLister", "ListExpiring"},
}

// faultyStore is a plain Store, a slice under a mutex, with every optional
// capability, that keeps the contract unless its fault says how to break it.
type faultyStore struct {
	fault fault
	mu    sync.Mutex
	recs  []apitoken.Record
}

func (s *faultyStore) Create(_ context.Context, rec apitoken.Record) error {
	rec = s.in(rec)
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.createLocked(rec)
}

// in returns rec as the store keeps it.
func (s *faultyStore) in(rec apitoken.Record) apitoken.Record {
	if s.fault != sharesSlices {
		rec.Scopes = cloneScopes(rec.Scopes)
	}
	rec.AllowedIPs = slices.Clone(rec.AllowedIPs)
	switch s.fault {
	case dropsAllowedIPs:
		rec.AllowedIPs = nil
	case dropsHint:
		rec.Hint = ""
	}
	if s.fault == truncatesTimes {
		rec.CreatedAt = rec.CreatedAt.Truncate(time.Second)
		rec.ExpiresAt = rec.ExpiresAt.Truncate(time.Second)
		rec.LastUsedAt = rec.LastUsedAt.Truncate(time.Second)
	}
	return rec
}

// createLocked stores rec, as it comes from in, unless it is a duplicate.
// Called with s.mu held.
func (s *faultyStore) createLocked(rec apitoken.Record) error {
	if s.fault == checksThenInserts {
		return s.checkThenInsert(rec)
	}
	for i, r := range s.recs {
		if r.ID == rec.ID {
			return fmt.Errorf("faulty: %w: id", apitoken.ErrDuplicate)
		}
		if r.Hash == rec.Hash {
			if s.fault == overwritesHash {
				s.recs[i] = rec
				return nil
			}
			return fmt.Errorf("faulty: %w: hash", apitoken.ErrDuplicate)
		}
	}
	s.recs = append(s.recs, rec)
	return nil
}

// checkThenInsert looks for a duplicate and inserts under two separate
// holds of the lock, like a SELECT followed by an INSERT without a unique
// index: concurrent Creates of the same id all get through. Called with
// s.mu held.
func (s *faultyStore) checkThenInsert(rec apitoken.Record) error {
	for _, r := range s.recs {
		if r.ID == rec.ID || r.Hash == rec.Hash {
			return fmt.Errorf("faulty: %w", apitoken.ErrDuplicate)
		}
	}
	s.mu.Unlock()
	time.Sleep(time.Millisecond) // the window between the two statements
	s.mu.Lock()
	s.recs = append(s.recs, rec)
	return nil
}

func (s *faultyStore) Lookup(_ context.Context, h apitoken.Hash) (apitoken.Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.recs {
		if r.Hash == h {
			return s.out(r), nil
		}
	}
	if s.fault == zeroForUnknown {
		return apitoken.Record{}, nil
	}
	return apitoken.Record{}, fmt.Errorf("faulty: %w", apitoken.ErrNotFound)
}

func (s *faultyStore) List(_ context.Context, accountID string) ([]apitoken.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	toks := []apitoken.Token{}
	for _, r := range s.recs {
		if s.sameAccount(r.AccountID, accountID) || s.fault == leaksAccounts {
			toks = append(toks, s.out(r).Token)
		}
	}
	slices.SortFunc(toks, func(a, b apitoken.Token) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), strings.Compare(a.ID, b.ID))
	})
	if s.fault == listsReversed {
		slices.Reverse(toks)
	}
	return toks, nil
}

func (s *faultyStore) Delete(_ context.Context, accountID, id string) error {
	if s.fault == ignoresDelete {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, r := range s.recs {
		if r.ID == id && s.sameAccount(r.AccountID, accountID) {
			s.recs = slices.Delete(s.recs, i, i+1)
			return nil
		}
	}
	return fmt.Errorf("faulty: %w", apitoken.ErrNotFound)
}

func (s *faultyStore) sameAccount(a, b string) bool {
	return s.sameAccountIn(foldsCase, a, b)
}

// sameAccountIn is sameAccount for the operation whose fault op folds case
// there alone.
func (s *faultyStore) sameAccountIn(op fault, a, b string) bool {
	if s.fault == foldsCase || s.fault == op {
		return strings.EqualFold(a, b)
	}
	return a == b
}

// indexLocked returns the index of the token of the account with that id,
// or -1; of any account with anyAccount. Called with s.mu held.
func (s *faultyStore) indexLocked(accountID, id string, anyAccount bool) int {
	return slices.IndexFunc(s.recs, func(r apitoken.Record) bool {
		return r.ID == id && (anyAccount || s.sameAccount(r.AccountID, accountID))
	})
}

// DeleteAccount implements apitoken.AccountDeleter.
func (s *faultyStore) DeleteAccount(_ context.Context, accountID string) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	before := len(s.recs)
	s.recs = slices.DeleteFunc(s.recs, func(r apitoken.Record) bool {
		return s.sameAccountIn(deleteAccountFoldsCase, r.AccountID, accountID)
	})
	if s.fault == deleteAccountMiscounts {
		return before, nil
	}
	return before - len(s.recs), nil
}

// DeleteExpired implements apitoken.ExpiredDeleter.
func (s *faultyStore) DeleteExpired(_ context.Context, before time.Time) (int, error) {
	expired := func(r apitoken.Record) bool {
		switch s.fault {
		case pruneRemovesNeverExpiring: // a zero time is before every other
			return !r.ExpiresAt.After(before)
		case pruneSparesTheCut:
			return !r.ExpiresAt.IsZero() && r.ExpiresAt.Before(before)
		}
		return !r.ExpiresAt.IsZero() && !r.ExpiresAt.After(before)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.recs)
	s.recs = slices.DeleteFunc(s.recs, expired)
	return n - len(s.recs), nil
}

// SetExpiry implements apitoken.ExpiryUpdater.
func (s *faultyStore) SetExpiry(_ context.Context, accountID, id string, from, to time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := s.indexLocked(accountID, id, false)
	if i < 0 || (!s.recs[i].ExpiresAt.Equal(from) && s.fault != setExpiryIgnoresFrom) {
		return fmt.Errorf("faulty: %w", apitoken.ErrNotFound)
	}
	if s.fault == setExpiryNotAtomic {
		// A SELECT, then an UPDATE that no longer compares.
		s.mu.Unlock()
		time.Sleep(raceWindow)
		s.mu.Lock()
		if i = s.indexLocked(accountID, id, false); i < 0 {
			return fmt.Errorf("faulty: %w", apitoken.ErrNotFound)
		}
	}
	s.recs[i].ExpiresAt = to
	return nil
}

// CreateLimited implements apitoken.LimitedCreator.
func (s *faultyStore) CreateLimited(_ context.Context, rec apitoken.Record, limit int) error {
	rec = s.in(rec)
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, r := range s.recs {
		if s.sameAccountIn(limitFoldsCase, r.AccountID, rec.AccountID) {
			n++
		}
	}
	full := n >= limit
	if s.fault == limitOffByOne {
		full = n > limit
	}
	if full {
		return fmt.Errorf("faulty: %w: %d tokens", apitoken.ErrLimitReached, n)
	}
	if s.fault == limitChecksThenInserts {
		// A SELECT count(*), then an INSERT, outside one transaction.
		s.mu.Unlock()
		time.Sleep(raceWindow)
		s.mu.Lock()
	}
	return s.createLocked(rec)
}

// RecordLastUse implements apitoken.LastUseRecorder.
func (s *faultyStore) RecordLastUse(_ context.Context, uses []apitoken.LastUse) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	index := func(id string) int {
		return slices.IndexFunc(s.recs, func(r apitoken.Record) bool { return r.ID == id })
	}
	if s.fault == lastUseRefusesUnknown {
		for _, u := range uses {
			if index(u.ID) < 0 {
				return fmt.Errorf("faulty: %w: %s", apitoken.ErrNotFound, u.ID)
			}
		}
	}
	for _, u := range uses {
		i := index(u.ID)
		if i >= 0 && (u.At.After(s.recs[i].LastUsedAt) || s.fault == lastUseMovesBack) {
			s.recs[i].LastUsedAt = u.At
			if s.fault != lastUseDropsIP {
				s.recs[i].LastUsedIP = u.IP
			}
		}
	}
	return nil
}

// Rehash implements apitoken.Rehasher.
func (s *faultyStore) Rehash(_ context.Context, accountID, id string, from, to apitoken.Hash) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := s.indexLocked(accountID, id, s.fault == rehashIgnoresAccount)
	if i < 0 || (s.recs[i].Hash != from && s.fault != rehashIgnoresFrom) {
		return fmt.Errorf("faulty: %w", apitoken.ErrNotFound)
	}
	if slices.ContainsFunc(s.recs, func(r apitoken.Record) bool { return r.Hash == to }) {
		return fmt.Errorf("faulty: %w: hash", apitoken.ErrDuplicate)
	}
	s.recs[i].Hash = to
	return nil
}

// SetDisabled implements apitoken.Disabler.
func (s *faultyStore) SetDisabled(ctx context.Context, accountID, id string, disabled bool) error {
	if s.fault == disableCancelNotFound && ctx.Err() != nil {
		return fmt.Errorf("faulty: %w", apitoken.ErrNotFound)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	i := s.indexLocked(accountID, id, s.fault == disableIgnoresAccount)
	if i < 0 || (s.fault == disableNotIdempotent && s.recs[i].Disabled == disabled) {
		return fmt.Errorf("faulty: %w", apitoken.ErrNotFound)
	}
	s.recs[i].Disabled = disabled
	return nil
}

// DeleteMember implements apitoken.MemberDeleter.
func (s *faultyStore) DeleteMember(_ context.Context, accountID, memberID string) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	before := len(s.recs)
	s.recs = slices.DeleteFunc(s.recs, func(r apitoken.Record) bool {
		return r.MemberID == memberID && (s.sameAccount(r.AccountID, accountID) || s.fault == deleteMemberAnyAccount)
	})
	if s.fault == deleteMemberMiscounts {
		return before, nil
	}
	return before - len(s.recs), nil
}

// DeleteUnused implements apitoken.UnusedDeleter.
func (s *faultyStore) DeleteUnused(_ context.Context, since time.Time, limit int) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	s.recs = slices.DeleteFunc(s.recs, func(r apitoken.Record) bool {
		last := r.LastUsedAt
		if last.IsZero() || s.fault == pruneUnusedByCreation {
			last = r.CreatedAt
		}
		if (n < limit || s.fault == pruneUnusedIgnoresLimit) && last.Before(since) {
			n++
			return true
		}
		return false
	})
	return n, nil
}

// ListExpiring implements apitoken.ExpiringLister.
func (s *faultyStore) ListExpiring(_ context.Context, after time.Time, afterID string, before time.Time, limit int) ([]apitoken.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var toks []apitoken.Token
	for _, r := range s.recs {
		e := r.ExpiresAt
		if e.IsZero() || !e.Before(before) || e.Before(after) {
			continue
		}
		if e.Equal(after) && r.ID <= afterID && !(s.fault == expiringRepeatsCursor && r.ID == afterID) {
			continue
		}
		toks = append(toks, s.out(r).Token)
	}
	slices.SortFunc(toks, func(a, b apitoken.Token) int {
		if s.fault == expiringByID {
			return strings.Compare(a.ID, b.ID)
		}
		return cmp.Or(a.ExpiresAt.Compare(b.ExpiresAt), strings.Compare(a.ID, b.ID))
	})
	if len(toks) > limit {
		toks = toks[:limit]
	}
	return toks, nil
}

// unwrappingStore wraps a Store the way a tracing or metering wrapper does:
// it has the Store methods only, and exposes the store it wraps with Unwrap,
// through which the suite must find that store's capabilities.
type unwrappingStore struct{ apitoken.Store }

func (s *unwrappingStore) Unwrap() apitoken.Store { return s.Store }

// out returns r as the store hands it out.
func (s *faultyStore) out(r apitoken.Record) apitoken.Record {
	if s.fault != sharesSlices {
		r.Scopes = cloneScopes(r.Scopes)
	}
	r.AllowedIPs = slices.Clone(r.AllowedIPs)
	if s.fault == returnsLocalTimes {
		cet := time.FixedZone("CET", 3600)
		for _, t := range []*time.Time{&r.CreatedAt, &r.ExpiresAt, &r.LastUsedAt} {
			if !t.IsZero() {
				*t = t.In(cet)
			}
		}
	}
	return r
}

func cloneScopes(scopes []string) []string {
	if len(scopes) == 0 {
		return nil
	}
	return slices.Clone(scopes)
}

// TestBrokenStoreHelper runs the suite against the faultyStore named by
// faultEnv, behind an unwrappingStore when wrapEnv is set. It runs only as a
// subprocess of TestRunFailsOnBrokenStores, which expects it to fail.
func TestBrokenStoreHelper(t *testing.T) {
	f := fault(os.Getenv(faultEnv))
	if f == "" {
		t.Skip("runs only as a subprocess of TestRunFailsOnBrokenStores")
	}
	wrapped := os.Getenv(wrapEnv) != ""
	storetest.Run(t, func(*testing.T) apitoken.Store {
		if wrapped {
			return &unwrappingStore{&faultyStore{fault: f}}
		}
		return &faultyStore{fault: f}
	})
}

func TestRunFailsOnBrokenStores(t *testing.T) {
	tests := []struct {
		fault   fault
		wrapped bool   // the suite gets the store behind an unwrappingStore
		subtest string // the subtest of Run that must fail
		rule    string // the rule its failure must state
	}{
		{fault: ignoresDelete, subtest: "Delete", rule: "a Store must remove a deleted token: Lookup must then return an error wrapping ErrNotFound"},
		{fault: leaksAccounts, subtest: "ListOnlyTheAccount", rule: "a Store must never list another account's token"},
		{fault: sharesSlices, subtest: "NoAliasing", rule: "a Store must not retain the Scopes slice given to Create"},
		{fault: overwritesHash, subtest: "CreateDuplicateHash", rule: "a Store must refuse a record whose Hash exists with an error wrapping ErrDuplicate"},
		{fault: listsReversed, subtest: "ListOrder", rule: "a Store must list tokens oldest first by CreatedAt, ties broken by ID"},
		{fault: foldsCase, subtest: "ByteExactAccountIDs", rule: `a Store must compare account ids byte for byte: Delete("ACME", id of a token of "acme")`},
		{fault: truncatesTimes, subtest: "CreateThenLookup", rule: "a Store must keep times to the microsecond"},
		{fault: zeroForUnknown, subtest: "LookupUnknownHash", rule: "a Store must return an error wrapping ErrNotFound for an unknown hash"},
		{fault: returnsLocalTimes, subtest: "CreateThenLookup", rule: "a Store must return times in UTC"},
		{fault: checksThenInserts, subtest: "ConcurrentDuplicateID", rule: "a Store must accept exactly one of concurrent Creates with the same ID"},

		{fault: deleteAccountFoldsCase, subtest: "DeleteAccount", rule: "DeleteAccount must leave other accounts' tokens in place (account ids compare byte for byte)"},
		{fault: deleteAccountMiscounts, subtest: "DeleteAccount", rule: "a Store must report how many tokens DeleteAccount removed"},
		{fault: pruneRemovesNeverExpiring, subtest: "DeleteExpired", rule: "DeleteExpired must keep tokens that never expire or expire after the time given"},
		{fault: pruneSparesTheCut, subtest: "DeleteExpired", rule: "DeleteExpired must remove every token whose ExpiresAt is at or before the time given"},
		{fault: setExpiryIgnoresFrom, subtest: "SetExpiry", rule: "SetExpiry from an expiry the token no longer has must return an error wrapping ErrNotFound"},
		{fault: setExpiryNotAtomic, subtest: "SetExpiry", rule: "of concurrent SetExpiry calls from the same expiry, exactly one must succeed"},
		{fault: limitChecksThenInserts, subtest: "CreateLimited", rule: "a Store must accept exactly max of concurrent CreateLimited calls for one account, however they race"},
		{fault: limitOffByOne, subtest: "CreateLimited", rule: "a Store must accept exactly max of concurrent CreateLimited calls for one account, however they race"},
		{fault: limitFoldsCase, subtest: "CreateLimited", rule: "a Store must count only the account's own tokens (byte for byte) against its limit"},
		// checkLookup states its rule only when Lookup fails; a record that
		// differs is reported field by field, here as a time that moved.
		{fault: lastUseMovesBack, subtest: "RecordLastUse", rule: "RecordLastUse must never move a last use back, nor change its address: the record Lookup returns differs"},
		{fault: lastUseRefusesUnknown, subtest: "RecordLastUse", rule: "a Store must record last uses, and skip ids it does not hold"},
		{fault: rehashIgnoresFrom, subtest: "Rehash", rule: "Rehash with another hash must return an error wrapping ErrNotFound"},
		{fault: rehashIgnoresAccount, subtest: "Rehash", rule: "Rehash with another account must return an error wrapping ErrNotFound"},
		{fault: dropsAllowedIPs, subtest: "CreateThenLookup", rule: "a Store must return the AllowedIPs it was given, in order"},
		{fault: dropsHint, subtest: "CreateThenLookup", rule: "a Store must return the Hint it was given, byte for byte"},
		{fault: lastUseDropsIP, subtest: "RecordLastUse", rule: "a Store must record a first use, to the microsecond, with its address"},
		{fault: disableIgnoresAccount, subtest: "SetDisabled", rule: "SetDisabled of the token of another account must return an error wrapping ErrNotFound"},
		{fault: disableNotIdempotent, subtest: "SetDisabled", rule: "disabling a disabled token is not an error"},
		{fault: disableCancelNotFound, subtest: "SetDisabled", rule: "the error must be a system error, not one wrapping ErrNotFound"},
		{fault: deleteMemberAnyAccount, subtest: "DeleteMember", rule: "DeleteMember must leave other accounts' tokens in place, the member's included"},
		{fault: deleteMemberMiscounts, subtest: "DeleteMember", rule: "a Store must report how many tokens DeleteMember removed"},
		{fault: pruneUnusedByCreation, subtest: "DeleteUnused", rule: "DeleteUnused must keep tokens used at or after the time given"},
		{fault: pruneUnusedIgnoresLimit, subtest: "DeleteUnused", rule: "DeleteUnused must remove at most limit tokens"},
		{fault: expiringByID, subtest: "ListExpiring", rule: "soonest first, ties by ID"},
		{fault: expiringRepeatsCursor, subtest: "ListExpiring", rule: "a page starts after (after, afterID)"},

		// The capabilities of the wrapped store are found through Unwrap:
		// their subtests run, and fail.
		{fault: setExpiryIgnoresFrom, wrapped: true, subtest: "SetExpiry", rule: "SetExpiry from an expiry the token no longer has must return an error wrapping ErrNotFound"},
		{fault: limitChecksThenInserts, wrapped: true, subtest: "CreateLimited", rule: "a Store must accept exactly max of concurrent CreateLimited calls for one account, however they race"},
	}
	for _, tt := range tests {
		t.Run("nok, "+describe(tt.fault, tt.wrapped), func(t *testing.T) {
			t.Parallel()
			out, err := runHelper(t, tt.fault, tt.wrapped)
			var exit *exec.ExitError
			require.ErrorAs(t, err, &exit, "the suite must fail on a store that %s; output:\n%s", describe(tt.fault, tt.wrapped), out)
			assert.Contains(t, out, "--- FAIL: "+helperTestFullName+"/"+tt.subtest+" ", "the failing subtest names the rule broken")
			assert.Contains(t, out, tt.rule, "the failure states the rule broken")
			assert.NotContains(t, out, "--- SKIP: "+helperTestFullName+"/", "the store has every capability: no subtest may skip")
		})
	}
	// The controls: without its fault, the same store passes, so the failures
	// above come from the faults; and it passes with every capability found
	// and checked, directly and through Unwrap.
	controls := []struct {
		name      string
		wrapped   bool
		storeType string // the type the Capabilities subtest names
	}{
		{"ok, no fault", false, "*storetest_test.faultyStore"},
		{"ok, no fault, behind Unwrap", true, "*storetest_test.unwrappingStore"},
	}
	for _, tt := range controls {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out, err := runHelper(t, noFault, tt.wrapped)
			require.NoError(t, err, "the suite must pass on a correct store; output:\n%s", out)
			assert.Contains(t, out, "--- PASS: "+helperTestFullName+" ", "the helper must have run, not skipped")
			assert.NotContains(t, out, "--- SKIP: "+helperTestFullName+"/", "the store has every capability: no subtest may skip")
			assert.Contains(t, out, "--- PASS: "+helperTestFullName+"/Capabilities ", "the suite must log the capabilities it finds")
			assert.Contains(t, out, "capabilities of "+tt.storeType+":", "the suite must log the capabilities of the store it was given")
			for _, c := range capabilities {
				assert.Regexp(t, regexp.MustCompile(`(?m)\b`+c.name+`:\s+yes$`), out, "the suite must find %s", c.name)
				assert.Contains(t, out, "--- PASS: "+helperTestFullName+"/"+c.subtest+" ", "the %s subtest must run and pass", c.name)
			}
		})
	}
}

// describe names a fault, and whether the store is behind an unwrappingStore.
func describe(f fault, wrapped bool) string {
	if wrapped {
		return string(f) + ", behind Unwrap"
	}
	return string(f)
}

// runHelper runs TestBrokenStoreHelper in a subprocess, against a store with
// fault f, behind an unwrappingStore if wrapped, and returns its output.
func runHelper(t *testing.T, f fault, wrapped bool) (string, error) {
	t.Helper()
	if testing.Short() {
		t.Skip("runs the suite in a subprocess")
	}
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^"+helperTestFullName+"$", "-test.v", "-test.count=1", "-test.timeout=5m")
	cmd.Env = append(os.Environ(), faultEnv+"="+string(f), wrapEnv+"=")
	if wrapped {
		cmd.Env = append(cmd.Env, wrapEnv+"=1")
	}
	out, err := cmd.CombinedOutput()
	if err != nil && !errors.As(err, new(*exec.ExitError)) {
		t.Fatalf("cannot run the helper process: %v", err)
	}
	return string(out), err
}
