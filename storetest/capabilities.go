package storetest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apitoken-go/apitoken"
)

// capabilityTests are the subtests of Run for the optional capabilities,
// each skipped for a store that lacks its capability.
var capabilityTests = []struct {
	name string
	test func(t *testing.T, s apitoken.Store)
}{
	{"DeleteAccount", testDeleteAccount},
	{"DeleteExpired", testDeleteExpired},
	{"SetExpiry", testSetExpiry},
	{"CreateLimited", testCreateLimited},
	{"RecordLastUse", testRecordLastUse},
	{"Rehash", testRehash},
	{"SetDisabled", testSetDisabled},
	{"DeleteMember", testDeleteMember},
	{"DeleteUnused", testDeleteUnused},
	{"ListExpiring", testListExpiring},
}

func testDeleteAccount(t *testing.T, s apitoken.Store) {
	d, ok := apitoken.Capability[apitoken.AccountDeleter](s)
	if !ok {
		t.Skip("the Store does not implement the optional apitoken.AccountDeleter")
	}
	acct := "acct-" + newID()
	mine := []apitoken.Record{newRecord(acct, base), newRecord(acct, base.Add(time.Second))}
	// Accounts that a case-insensitive or padding comparison would take
	// for acct, and another one.
	others := []apitoken.Record{newRecord(strings.ToUpper(acct), base), newRecord(acct+" ", base), newRecord("other-"+newID(), base)}
	create(t, s, append(slices.Clone(mine), others...)...)

	n, err := d.DeleteAccount(t.Context(), acct)
	if checkNoError(t, err, "a Store must delete the tokens of an account") {
		checkEqual(t, len(mine), n, "a Store must report how many tokens DeleteAccount removed")
	}
	for _, r := range mine {
		checkGone(t, s, r.Hash, "a Store must remove every token of the account in DeleteAccount")
	}
	checkList(t, s, acct, nil, "a Store must list no token of an account after DeleteAccount")
	for _, r := range others {
		checkLookup(t, s, r, "DeleteAccount must leave other accounts' tokens in place (account ids compare byte for byte)")
	}

	n, err = d.DeleteAccount(t.Context(), acct)
	if checkNoError(t, err, "DeleteAccount of an account without tokens is not an error") {
		checkEqual(t, 0, n, "DeleteAccount of an account without tokens removes nothing")
	}
}

func testDeleteExpired(t *testing.T, s apitoken.Store) {
	d, ok := apitoken.Capability[apitoken.ExpiredDeleter](s)
	if !ok {
		t.Skip("the Store does not implement the optional apitoken.ExpiredDeleter")
	}
	cut := base.Add(time.Hour)
	acct := "acct-" + newID()
	expiring := func(account string, at time.Time) apitoken.Record {
		r := newRecord(account, base)
		r.ExpiresAt = at
		return r
	}
	expired := []apitoken.Record{
		expiring(acct, cut.Add(-time.Microsecond)),
		expiring(acct, cut), // expired at cut: Verify refuses at ExpiresAt
		expiring("other-"+newID(), cut.Add(-time.Hour)),
	}
	live := []apitoken.Record{
		newRecord(acct, base), // never expires
		expiring(acct, cut.Add(time.Microsecond)),
	}
	create(t, s, append(slices.Clone(expired), live...)...)

	n, err := d.DeleteExpired(t.Context(), cut)
	if checkNoError(t, err, "a Store must delete expired tokens") {
		checkEqual(t, len(expired), n, "a Store must report how many tokens DeleteExpired removed")
	}
	for _, r := range expired {
		checkGone(t, s, r.Hash, "DeleteExpired must remove every token whose ExpiresAt is at or before the time given, of every account")
	}
	for _, r := range live {
		checkLookup(t, s, r, "DeleteExpired must keep tokens that never expire or expire after the time given")
	}
	checkList(t, s, acct, live, "a Store must not list a token DeleteExpired removed")

	n, err = d.DeleteExpired(t.Context(), cut)
	if checkNoError(t, err, "DeleteExpired with nothing to remove is not an error") {
		checkEqual(t, 0, n, "DeleteExpired with nothing to remove removes nothing")
	}
}

func testSetExpiry(t *testing.T, s apitoken.Store) {
	u, ok := apitoken.Capability[apitoken.ExpiryUpdater](s)
	if !ok {
		t.Skip("the Store does not implement the optional apitoken.ExpiryUpdater")
	}
	acct := "acct-" + newID()
	never, expiring := newRecord(acct, base), newRecord(acct, base.Add(time.Second))
	expiring.ExpiresAt = base.Add(30 * 24 * time.Hour)
	other := newRecord("ACCT-"+newID(), base)
	create(t, s, never, expiring, other)

	for _, rec := range []apitoken.Record{never, expiring} {
		want := clone(rec)
		want.ExpiresAt = base.Add(time.Hour + time.Microsecond)
		checkNoError(t, u.SetExpiry(t.Context(), acct, rec.ID, rec.ExpiresAt, want.ExpiresAt), "a Store must set the expiry of a token of the account when it has the one given as from")
		checkLookup(t, s, want, "a Store must keep the expiry SetExpiry set, to the microsecond")
		checkErrorIs(t, u.SetExpiry(t.Context(), acct, rec.ID, rec.ExpiresAt, base.Add(time.Minute)), apitoken.ErrNotFound,
			"SetExpiry from an expiry the token no longer has must return an error wrapping ErrNotFound")
		checkLookup(t, s, want, "a SetExpiry from a stale expiry must change nothing")
	}

	later := base.Add(2 * time.Hour)
	// Each with the expiry the token has, so that only the id or the
	// account can make the compare-and-set fail.
	for _, tt := range []struct {
		name, account, id string
		from              time.Time
	}{
		{"an unknown id", acct, newID(), time.Time{}},
		{"the token of another account", acct, other.ID, other.ExpiresAt},
		{"an account id differing in case", strings.ToUpper(acct), never.ID, base.Add(time.Hour + time.Microsecond)},
	} {
		checkErrorIs(t, u.SetExpiry(t.Context(), tt.account, tt.id, tt.from, later), apitoken.ErrNotFound,
			"SetExpiry of %s must return an error wrapping ErrNotFound", tt.name)
	}
	checkLookup(t, s, other, "a refused SetExpiry must change nothing")

	// A compare-and-set: of racers changing one expiry, exactly one wins.
	const racers = 10
	racer := newRecord(acct, base.Add(2*time.Second))
	create(t, s, racer)
	var wg sync.WaitGroup
	errs := make([]error, racers)
	for i := range racers {
		wg.Go(func() {
			errs[i] = u.SetExpiry(t.Context(), acct, racer.ID, time.Time{}, base.Add(time.Duration(i+1)*time.Hour))
		})
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		if err == nil {
			won++
		} else {
			checkErrorIs(t, err, apitoken.ErrNotFound, "a SetExpiry that lost the race must return an error wrapping ErrNotFound")
		}
	}
	checkEqual(t, 1, won, "of concurrent SetExpiry calls from the same expiry, exactly one must succeed")
}

func testCreateLimited(t *testing.T, s apitoken.Store) {
	lc, ok := apitoken.Capability[apitoken.LimitedCreator](s)
	if !ok {
		t.Skip("the Store does not implement the optional apitoken.LimitedCreator")
	}
	const limit, racers = 5, 20
	if err := lc.CreateLimited(t.Context(), newRecord("probe-"+newID(), base), limit); errors.Is(err, errors.ErrUnsupported) {
		t.Skipf("the Store reports CreateLimited unsupported in this configuration: %v", err)
	}
	acct := "acct-" + newID()
	t.Run("racing for the last places", func(t *testing.T) {
		recs := make([]apitoken.Record, racers)
		for i := range recs {
			recs[i] = newRecord(acct, base.Add(time.Duration(i)*time.Second))
		}
		errs := make([]error, racers)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range racers {
			wg.Go(func() {
				<-start
				errs[i] = lc.CreateLimited(t.Context(), recs[i], limit)
			})
		}
		close(start)
		wg.Wait()
		var won []apitoken.Record
		for i, err := range errs {
			switch {
			case err == nil:
				won = append(won, recs[i])
			case !errors.Is(err, apitoken.ErrLimitReached):
				t.Errorf("a Store must refuse a CreateLimited over the limit with an error wrapping ErrLimitReached: CreateLimited %d returned %v", i, err)
			}
		}
		checkEqual(t, limit, len(won), "a Store must accept exactly max of concurrent CreateLimited calls for one account, however they race")
		checkList(t, s, acct, won, "a Store must store exactly the records CreateLimited accepted")
	})
	t.Run("the limit is per account", func(t *testing.T) {
		for i := range limit {
			requireNoError(t, lc.CreateLimited(t.Context(), newRecord(strings.ToUpper(acct), base.Add(time.Duration(i)*time.Second)), limit),
				"a Store must count only the account's own tokens (byte for byte) against its limit")
		}
	})
	t.Run("a duplicate below the limit is still a duplicate", func(t *testing.T) {
		first := newRecord("acct-"+newID(), base)
		create(t, s, first)
		dup := newRecord(first.AccountID, base.Add(time.Second))
		dup.Hash = first.Hash
		checkErrorIs(t, lc.CreateLimited(t.Context(), dup, limit), apitoken.ErrDuplicate, "%s, also in CreateLimited", ruleDupHash)
		checkGone(t, s, newHash(), ruleUnknownHash)
		checkList(t, s, first.AccountID, []apitoken.Record{first}, ruleFailedCreate)
	})
}

func testRecordLastUse(t *testing.T, s apitoken.Store) {
	r, ok := apitoken.Capability[apitoken.LastUseRecorder](s)
	if !ok {
		t.Skip("the Store does not implement the optional apitoken.LastUseRecorder")
	}
	acct := "acct-" + newID()
	never, used, untouched := newRecord(acct, base), newRecord(acct, base), newRecord(acct, base)
	used.LastUsedAt = base.Add(time.Hour)
	create(t, s, never, used, untouched)

	at := base.Add(2*time.Hour + time.Microsecond)
	v4, v6 := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::2")
	requireNoError(t, r.RecordLastUse(t.Context(), []apitoken.LastUse{
		{ID: never.ID, At: at, IP: v4}, {ID: used.ID, At: at, IP: v6}, {ID: newID(), At: at, IP: v4},
	}), "a Store must record last uses, and skip ids it does not hold")
	never.LastUsedAt, used.LastUsedAt = at, at
	never.LastUsedIP, used.LastUsedIP = v4, v6
	checkLookup(t, s, never, "a Store must record a first use, to the microsecond, with its address")
	checkLookup(t, s, used, "a Store must record a later use, to the microsecond, with its address")
	checkLookup(t, s, untouched, "RecordLastUse must leave the other tokens as they were")

	requireNoError(t, r.RecordLastUse(t.Context(), []apitoken.LastUse{{ID: used.ID, At: base.Add(time.Hour), IP: v4}}),
		"a Store must accept an earlier use")
	checkLookup(t, s, used, "RecordLastUse must never move a last use back, nor change its address")

	later := at.Add(time.Minute)
	requireNoError(t, r.RecordLastUse(t.Context(), []apitoken.LastUse{{ID: used.ID, At: later}}),
		"a Store must record a use from an unknown address")
	used.LastUsedAt, used.LastUsedIP = later, netip.Addr{}
	checkLookup(t, s, used, "a later use from an unknown address must leave LastUsedIP zero: the address goes with its use")
}

func testSetDisabled(t *testing.T, s apitoken.Store) {
	d, ok := apitoken.Capability[apitoken.Disabler](s)
	if !ok {
		t.Skip("the Store does not implement the optional apitoken.Disabler")
	}
	acct := "acct-" + newID()
	rec, sibling, other := newRecord(acct, base), newRecord(acct, base.Add(time.Second)), newRecord(strings.ToUpper(acct), base)
	create(t, s, rec, sibling, other)
	for _, tt := range []struct{ name, account, id string }{
		{"an unknown id", acct, newID()},
		{"the token of another account", acct, other.ID},
		{"an account id differing in case", strings.ToUpper(acct), rec.ID},
	} {
		checkErrorIs(t, d.SetDisabled(t.Context(), tt.account, tt.id, true), apitoken.ErrNotFound,
			"SetDisabled of %s must return an error wrapping ErrNotFound", tt.name)
	}
	checkLookup(t, s, rec, "a refused SetDisabled must change nothing")
	checkLookup(t, s, other, "a refused SetDisabled must change nothing")

	disabled := clone(rec)
	disabled.Disabled = true
	for range 2 {
		checkNoError(t, d.SetDisabled(t.Context(), acct, rec.ID, true),
			"a Store must disable a token of the account, and disabling a disabled token is not an error")
		checkLookup(t, s, disabled, "a Store must keep the Disabled that SetDisabled set, and nothing else of the token may change")
	}
	checkList(t, s, acct, []apitoken.Record{disabled, sibling}, "a disabled token stays listed, and SetDisabled changes no other token")
	for range 2 {
		checkNoError(t, d.SetDisabled(t.Context(), acct, rec.ID, false),
			"a Store must enable a disabled token, and enabling an enabled token is not an error")
		checkLookup(t, s, rec, "a token enabled again must be as it was before SetDisabled")
	}

	// A Disable that fails because its context ended is an outage: as "no
	// such token" it would tell the owner their token is gone.
	dead, cancel := context.WithCancel(t.Context())
	cancel()
	if err := d.SetDisabled(dead, acct, rec.ID, true); err != nil {
		check(t, !errors.Is(err, apitoken.ErrNotFound), "a Store need not fail SetDisabled on a cancelled context, but if it does, the error must be a system error, not one wrapping ErrNotFound: got %v", err)
		checkLookup(t, s, rec, "a failed SetDisabled must change nothing")
	}
}

func testDeleteMember(t *testing.T, s apitoken.Store) {
	d, ok := apitoken.Capability[apitoken.MemberDeleter](s)
	if !ok {
		t.Skip("the Store does not implement the optional apitoken.MemberDeleter")
	}
	acct := "acct-" + newID()
	member := func(account, memberID string, at time.Time) apitoken.Record {
		r := newRecord(account, at)
		r.MemberID = memberID
		return r
	}
	leaving := []apitoken.Record{member(acct, "alice", base), member(acct, "alice", base.Add(time.Second))}
	// The member in other accounts, members whose ids a case-insensitive or
	// padding comparison would take for hers, and tokens of no member.
	staying := []apitoken.Record{member(acct, "ALICE", base), member(acct, "alice ", base), member(acct, "", base), member(acct, "bob", base)}
	elsewhere := []apitoken.Record{member(strings.ToUpper(acct), "alice", base), member("other-"+newID(), "alice", base)}
	create(t, s, append(append(slices.Clone(leaving), staying...), elsewhere...)...)

	n, err := d.DeleteMember(t.Context(), acct, "alice")
	if checkNoError(t, err, "a Store must delete the tokens of a member") {
		checkEqual(t, len(leaving), n, "a Store must report how many tokens DeleteMember removed")
	}
	for _, r := range leaving {
		checkGone(t, s, r.Hash, "a Store must remove every token of the member in DeleteMember")
	}
	checkList(t, s, acct, staying, "DeleteMember must leave the account's other members' tokens in place (member ids compare byte for byte)")
	for _, r := range elsewhere {
		checkLookup(t, s, r, "DeleteMember must leave other accounts' tokens in place, the member's included (account ids compare byte for byte)")
	}
	n, err = d.DeleteMember(t.Context(), acct, "alice")
	if checkNoError(t, err, "DeleteMember of a member without tokens is not an error") {
		checkEqual(t, 0, n, "DeleteMember of a member without tokens removes nothing")
	}
}

func testDeleteUnused(t *testing.T, s apitoken.Store) {
	d, ok := apitoken.Capability[apitoken.UnusedDeleter](s)
	if !ok {
		t.Skip("the Store does not implement the optional apitoken.UnusedDeleter")
	}
	cut := base.Add(24 * time.Hour)
	rec := func(account string, created, used time.Time) apitoken.Record {
		r := newRecord(account, created)
		r.LastUsedAt = used
		return r
	}
	acct, other := "acct-"+newID(), "other-"+newID()
	unused := []apitoken.Record{
		rec(acct, base, cut.Add(-time.Microsecond)),          // last used just before
		rec(acct, base, time.Time{}),                         // never used, created before
		rec(other, cut.Add(-time.Hour), cut.Add(-time.Hour)), // of another account
	}
	used := []apitoken.Record{
		rec(acct, base, cut),                               // used at the cut: used since
		rec(acct, base, cut.Add(time.Hour)),                // used after
		rec(acct, cut, time.Time{}),                        // never used, created at the cut
		rec(acct, cut.Add(-time.Hour), cut.Add(time.Hour)), // created before, used after
	}
	create(t, s, append(slices.Clone(unused), used...)...)

	n, err := d.DeleteUnused(t.Context(), cut, 2)
	if checkNoError(t, err, "a Store must delete unused tokens") {
		checkEqual(t, 2, n, "DeleteUnused must remove at most limit tokens, and limit when more are unused")
	}
	n, err = d.DeleteUnused(t.Context(), cut, 2)
	if checkNoError(t, err, "a Store must delete unused tokens") {
		checkEqual(t, 1, n, "DeleteUnused must report how many tokens it removed: the one left of three")
	}
	for _, r := range unused {
		checkGone(t, s, r.Hash, "DeleteUnused must remove every token, of every account, last used before the time given, or never used and created before it")
	}
	for _, r := range used {
		checkLookup(t, s, r, "DeleteUnused must keep tokens used at or after the time given, and those never used but created at or after it")
	}
	n, err = d.DeleteUnused(t.Context(), cut, 2)
	if checkNoError(t, err, "DeleteUnused with nothing to remove is not an error") {
		checkEqual(t, 0, n, "DeleteUnused with nothing to remove removes nothing")
	}
}

func testListExpiring(t *testing.T, s apitoken.Store) {
	l, ok := apitoken.Capability[apitoken.ExpiringLister](s)
	if !ok {
		t.Skip("the Store does not implement the optional apitoken.ExpiringLister")
	}
	// A time of its own, past every other subtest's, so that a store shared
	// between subtests lists only these tokens.
	from := time.Date(2098, time.January, 1, 0, 0, 0, 0, time.UTC)
	before := from.Add(10 * time.Hour)
	var want []apitoken.Token
	var recs []apitoken.Record
	for i := range 12 {
		r := newRecord(fmt.Sprintf("acct-%d-%s", i%3, newID()), base)
		// Four expiry times, three tokens each (ties broken by ID), created
		// in no order of expiry, one of them exactly at before.
		r.ExpiresAt = from.Add(time.Duration((i*3)%4)*time.Hour*3 + time.Microsecond)
		if i == 11 {
			r.ExpiresAt = before
		}
		recs = append(recs, r)
	}
	never := newRecord("acct-"+newID(), base)
	later := newRecord("acct-"+newID(), base)
	later.ExpiresAt = before.Add(time.Microsecond)
	create(t, s, append(slices.Clone(recs), never, later)...)
	for _, r := range recs {
		if r.ExpiresAt.Before(before) {
			want = append(want, r.Token)
		}
	}
	slices.SortFunc(want, func(a, b apitoken.Token) int {
		return cmp.Or(a.ExpiresAt.Compare(b.ExpiresAt), strings.Compare(a.ID, b.ID))
	})

	var got []apitoken.Token
	after, afterID := from, ""
	for range len(want) + 1 {
		page, err := l.ListExpiring(t.Context(), after, afterID, before, 4)
		if !checkNoError(t, err, "a Store must list expiring tokens") {
			return
		}
		if !check(t, len(page) <= 4, "ListExpiring must return at most limit tokens: got %d", len(page)) {
			return
		}
		got = append(got, page...)
		if len(page) < 4 {
			break
		}
		after, afterID = page[len(page)-1].ExpiresAt, page[len(page)-1].ID
	}
	if !checkEqual(t, ids(want), ids(got), "ListExpiring must list, page after page, the tokens of every account expiring before the time given, soonest first, ties by ID, each once (a page starts after (after, afterID))") {
		return
	}
	for i := range got {
		checkToken(t, want[i], got[i])
	}
	// want[0:3] share the first expiry, want[3] has the next.
	page, err := l.ListExpiring(t.Context(), want[0].ExpiresAt, want[0].ID, want[3].ExpiresAt, 10)
	if checkNoError(t, err, "a Store must list expiring tokens") {
		checkEqual(t, ids(want[1:3]), ids(page),
			"ListExpiring must start after (after, afterID): an equal ExpiresAt with a greater ID, then later ones, and stop before the time given")
	}
}

func testRehash(t *testing.T, s apitoken.Store) {
	r, ok := apitoken.Capability[apitoken.Rehasher](s)
	if !ok {
		t.Skip("the Store does not implement the optional apitoken.Rehasher")
	}
	acct := "acct-" + newID()
	rec, other := newRecord(acct, base), newRecord("other-"+newID(), base)
	create(t, s, rec, other)
	to := newHash()
	for _, tt := range []struct {
		name, account, id string
		from              apitoken.Hash
	}{
		{"another hash", acct, rec.ID, newHash()},
		{"another account", strings.ToUpper(acct), rec.ID, rec.Hash},
		{"an unknown id", acct, newID(), rec.Hash},
	} {
		checkErrorIs(t, r.Rehash(t.Context(), tt.account, tt.id, tt.from, to), apitoken.ErrNotFound,
			"Rehash with %s must return an error wrapping ErrNotFound", tt.name)
	}
	checkLookup(t, s, rec, "a refused Rehash must change nothing")
	checkGone(t, s, to, "a refused Rehash must change nothing")

	requireNoError(t, r.Rehash(t.Context(), acct, rec.ID, rec.Hash, to), "a Store must re-hash a token")
	checkGone(t, s, rec.Hash, "after Rehash, the old hash must find nothing")
	moved := clone(rec)
	moved.Hash = to
	checkLookup(t, s, moved, "after Rehash, the new hash must find the token, unchanged")
	checkList(t, s, acct, []apitoken.Record{moved}, "Rehash must keep the token in its account's list")
	checkLookup(t, s, other, "Rehash must leave other tokens as they were")
}

// logCapabilities logs which optional capabilities the stores of newStore
// have, found as the Issuer finds them (apitoken.Capability, which follows
// Unwrap), so that a wrapper that hides one shows in the test log.
func logCapabilities(t *testing.T, newStore func(t *testing.T) apitoken.Store) {
	t.Helper()
	t.Run("Capabilities", func(t *testing.T) {
		s := newStore(t)
		if isNil(s) {
			t.Fatalf("newStore must return a Store, got %#v", s)
		}
		has := func(ok bool) string {
			if ok {
				return "yes"
			}
			return "no (its subtest skips)"
		}
		_, deleteAccount := apitoken.Capability[apitoken.AccountDeleter](s)
		_, deleteExpired := apitoken.Capability[apitoken.ExpiredDeleter](s)
		_, setExpiry := apitoken.Capability[apitoken.ExpiryUpdater](s)
		_, createLimited := apitoken.Capability[apitoken.LimitedCreator](s)
		_, recordLastUse := apitoken.Capability[apitoken.LastUseRecorder](s)
		_, rehash := apitoken.Capability[apitoken.Rehasher](s)
		_, setDisabled := apitoken.Capability[apitoken.Disabler](s)
		_, deleteMember := apitoken.Capability[apitoken.MemberDeleter](s)
		_, deleteUnused := apitoken.Capability[apitoken.UnusedDeleter](s)
		_, listExpiring := apitoken.Capability[apitoken.ExpiringLister](s)
		t.Logf("capabilities of %T:", s)
		t.Logf("  AccountDeleter:  %s", has(deleteAccount))
		t.Logf("  ExpiredDeleter:  %s", has(deleteExpired))
		t.Logf("  ExpiryUpdater:   %s", has(setExpiry))
		t.Logf("  LimitedCreator:  %s", has(createLimited))
		t.Logf("  LastUseRecorder: %s", has(recordLastUse))
		t.Logf("  Rehasher:        %s", has(rehash))
		t.Logf("  Disabler:        %s", has(setDisabled))
		t.Logf("  MemberDeleter:   %s", has(deleteMember))
		t.Logf("  UnusedDeleter:   %s", has(deleteUnused))
		t.Logf("  ExpiringLister:  %s", has(listExpiring))
	})
}
