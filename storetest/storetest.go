// Package storetest checks that an implementation of apitoken.Store keeps the
// contract written on that interface. Run it from the store's own tests:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) apitoken.Store { return mystore.New() })
//	}
package storetest

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/apitoken-go/apitoken"
)

// Run checks that the stores made by newStore keep the apitoken.Store
// contract, and that of the optional capabilities they implement
// (apitoken.AccountDeleter, apitoken.ExpiredDeleter, apitoken.ExpiryUpdater,
// apitoken.LimitedCreator, apitoken.LastUseRecorder, apitoken.Rehasher; the
// subtest of one a store lacks is skipped): one named subtest per rule, each failure stating
// the rule it checks. newStore is called once per subtest and must return an empty store;
// it may register cleanups on the t it is given. Run calls the Store directly,
// with records shaped as the Issuer makes them, and runs some subtests from
// many goroutines: run it with -race.
func Run(t *testing.T, newStore func(t *testing.T) apitoken.Store) {
	t.Helper()
	tests := []struct {
		name string
		test func(t *testing.T, s apitoken.Store)
	}{
		{"CreateThenLookup", testRoundTrip},
		{"LookupUnknownHash", testLookupUnknown},
		{"CreateDuplicateID", testDuplicateID},
		{"CreateDuplicateHash", testDuplicateHash},
		{"ListOrder", testListOrder},
		{"ListOnlyTheAccount", testListOnlyTheAccount},
		{"Delete", testDelete},
		{"ByteExactAccountIDs", testByteExactAccountIDs},
		{"ByteExactTokenIDs", testByteExactTokenIDs},
		{"NoAliasing", testNoAliasing},
		{"Concurrency", testConcurrency},
		{"ConcurrentDuplicateHash", testConcurrentDuplicateHash},
		{"ConcurrentDuplicateID", testConcurrentDuplicateID},
		{"ConcurrentDelete", testConcurrentDelete},
		{"CancelledContext", testCancelledContext},
		{"DeleteAccount", testDeleteAccount},
		{"DeleteExpired", testDeleteExpired},
		{"SetExpiry", testSetExpiry},
		{"CreateLimited", testCreateLimited},
		{"RecordLastUse", testRecordLastUse},
		{"Rehash", testRehash},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			if isNil(s) {
				t.Fatalf("newStore must return a Store, got %#v", s)
			}
			tt.test(t, s)
		})
	}
}

// base is a creation time as the Issuer makes them: UTC, to the microsecond.
var base = time.Date(2026, time.November, 27, 12, 34, 56, 123456000, time.UTC)

// Rules that several subtests state.
const (
	ruleAccept       = "a Store must accept a record with a new ID and a new Hash"
	ruleFind         = "a Store must find a created record by its Hash"
	ruleUnknownHash  = "a Store must return an error wrapping ErrNotFound for an unknown hash"
	ruleRemoved      = "a Store must remove a deleted token: Lookup must then return an error wrapping ErrNotFound"
	ruleNotListed    = "a Store must not list a deleted token"
	ruleListExact    = "a Store must list exactly the tokens of the account"
	ruleFailedCreate = "a refused Create must store nothing"
	ruleFailedDelete = "a refused Delete must leave the token in place"
	ruleDupID        = "a Store must refuse a record whose ID exists with an error wrapping ErrDuplicate"
	ruleDupHash      = "a Store must refuse a record whose Hash exists with an error wrapping ErrDuplicate"
)

// isNil reports whether v is nil or holds a nil pointer, map, slice, channel,
// function or interface.
func isNil(v any) bool {
	if v == nil {
		return true
	}
	switch rv := reflect.ValueOf(v); rv.Kind() {
	case reflect.Chan, reflect.Func, reflect.Interface, reflect.Map, reflect.Pointer, reflect.Slice, reflect.UnsafePointer:
		return rv.IsNil()
	}
	return false
}

// check reports the failure that format and args state unless cond holds,
// and returns cond.
func check(t *testing.T, cond bool, format string, args ...any) bool {
	t.Helper()
	if !cond {
		t.Errorf(format, args...)
	}
	return cond
}

// checkEqual reports the failure that format and args state, with got and
// want, unless they are deeply equal, and returns whether they are. Only
// values that are safe to print may be compared: a Hash prints redacted.
func checkEqual[T any](t *testing.T, want, got T, format string, args ...any) bool {
	t.Helper()
	if reflect.DeepEqual(want, got) {
		return true
	}
	t.Errorf("%s\n got: %#v\nwant: %#v", fmt.Sprintf(format, args...), got, want)
	return false
}

// checkNoError reports the failure that format and args state, with err,
// unless err is nil, and returns whether it is.
func checkNoError(t *testing.T, err error, format string, args ...any) bool {
	t.Helper()
	if err != nil {
		t.Errorf("%s: got error: %v", fmt.Sprintf(format, args...), err)
		return false
	}
	return true
}

// requireNoError is checkNoError that ends the test on a failure.
func requireNoError(t *testing.T, err error, format string, args ...any) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: got error: %v", fmt.Sprintf(format, args...), err)
	}
}

// checkErrorIs reports the failure that format and args state, with err,
// unless err wraps target, and returns whether it does.
func checkErrorIs(t *testing.T, err, target error, format string, args ...any) bool {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s: got %v, want an error wrapping %v", fmt.Sprintf(format, args...), err, target)
		return false
	}
	return true
}

func newHash() apitoken.Hash {
	var h apitoken.Hash
	rand.Read(h[:]) // never fails: crypto/rand crashes the program instead
	return h
}

func newID() string { return uuid.Must(uuid.NewV7()).String() }

// newRecord returns a record with a fresh ID and Hash, as the Issuer makes it.
func newRecord(accountID string, createdAt time.Time) apitoken.Record {
	return apitoken.Record{
		Token: apitoken.Token{
			ID:        newID(),
			AccountID: accountID,
			MemberID:  "member-1",
			Name:      "ci",
			Scopes:    []string{"read", "write"},
			CreatedAt: createdAt,
		},
		Hash: newHash(),
	}
}

// clone returns a copy of rec that shares nothing with it.
func clone(rec apitoken.Record) apitoken.Record {
	rec.Scopes = slices.Clone(rec.Scopes)
	return rec
}

func create(t *testing.T, s apitoken.Store, recs ...apitoken.Record) {
	t.Helper()
	for _, rec := range recs {
		requireNoError(t, s.Create(t.Context(), rec), ruleAccept)
	}
}

// checkLookup checks that the record with want's Hash is want.
func checkLookup(t *testing.T, s apitoken.Store, want apitoken.Record, rule string) {
	t.Helper()
	got, err := s.Lookup(t.Context(), want.Hash)
	if checkNoError(t, err, "%s", rule) {
		checkRecord(t, want, got)
	}
}

// checkGone checks that no record has the hash h.
func checkGone(t *testing.T, s apitoken.Store, h apitoken.Hash, rule string) {
	t.Helper()
	_, err := s.Lookup(t.Context(), h)
	checkErrorIs(t, err, apitoken.ErrNotFound, "%s", rule)
}

// checkRecord checks that got is want, field by field.
func checkRecord(t *testing.T, want, got apitoken.Record) {
	t.Helper()
	check(t, got.Hash == want.Hash, "a Store must return the Hash it was given, byte for byte")
	checkToken(t, want.Token, got.Token)
}

// checkToken checks that got is want, field by field, each with its rule.
func checkToken(t *testing.T, want, got apitoken.Token) {
	t.Helper()
	ok := checkEqual(t, want.ID, got.ID, "a Store must return the ID it was given, byte for byte")
	ok = checkEqual(t, want.AccountID, got.AccountID, "a Store must return the AccountID it was given, byte for byte") && ok
	ok = checkEqual(t, want.MemberID, got.MemberID, "a Store must return the MemberID it was given, byte for byte") && ok
	ok = checkEqual(t, want.Name, got.Name, "a Store must return the Name it was given, byte for byte") && ok
	if len(want.Scopes) == 0 {
		ok = check(t, got.Scopes == nil, "a Store must return nil Scopes when a token has none, got %#v", got.Scopes) && ok
	} else {
		ok = checkEqual(t, want.Scopes, got.Scopes, "a Store must return the Scopes it was given, in order") && ok
	}
	ok = checkTime(t, "CreatedAt", want.CreatedAt, got.CreatedAt) && ok
	ok = checkTime(t, "ExpiresAt", want.ExpiresAt, got.ExpiresAt) && ok
	ok = checkTime(t, "LastUsedAt", want.LastUsedAt, got.LastUsedAt) && ok
	if ok {
		// Catches a field added to Token that this suite does not check yet;
		// the fields checked above may differ in form only.
		got.Scopes, got.CreatedAt, got.ExpiresAt, got.LastUsedAt = want.Scopes, want.CreatedAt, want.ExpiresAt, want.LastUsedAt
		checkEqual(t, want, got, "a Store must return every field of the Token it was given")
	}
}

func checkTime(t *testing.T, field string, want, got time.Time) bool {
	t.Helper()
	if want.IsZero() {
		return check(t, got.IsZero(), "a Store must keep a zero %s zero, got %s", field, got)
	}
	ok := check(t, got.Location() == time.UTC, "a Store must return times in UTC: %s is in %q", field, got.Location())
	return check(t, got.Equal(want), "a Store must keep times to the microsecond: %s is %s, want %s",
		field, got.Format(time.RFC3339Nano), want.Format(time.RFC3339Nano)) && ok
}

// sortedTokens returns the tokens of recs in the order List must give them.
func sortedTokens(recs []apitoken.Record) []apitoken.Token {
	toks := make([]apitoken.Token, len(recs))
	for i, r := range recs {
		toks[i] = r.Token
	}
	slices.SortFunc(toks, compareTokens)
	return toks
}

func compareTokens(a, b apitoken.Token) int {
	return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), strings.Compare(a.ID, b.ID))
}

func ids(toks []apitoken.Token) []string {
	out := make([]string, len(toks))
	for i, tok := range toks {
		out[i] = tok.ID
	}
	return out
}

// checkList checks that List(accountID) gives the tokens of want, in order,
// and nothing else; rule says what a mismatch of the ids breaks.
func checkList(t *testing.T, s apitoken.Store, accountID string, want []apitoken.Record, rule string) {
	t.Helper()
	got, err := s.List(t.Context(), accountID)
	if !checkNoError(t, err, "a Store must list the tokens of an account without error") {
		return
	}
	if i := slices.IndexFunc(got, func(tok apitoken.Token) bool { return tok.AccountID != accountID }); i >= 0 {
		t.Errorf("a Store must never list another account's token (account ids compare byte for byte): List(%q) returned a token of %q",
			accountID, got[i].AccountID)
		return
	}
	wantToks := sortedTokens(want)
	if !checkEqual(t, ids(wantToks), ids(got), "%s: ids of List(%q)", rule, accountID) {
		return
	}
	for i := range got {
		checkToken(t, wantToks[i], got[i])
	}
}

func testRoundTrip(t *testing.T, s apitoken.Store) {
	long := strings.Repeat("é", 64) // 128 bytes, the longest text the Issuer accepts
	manyScopes := make([]string, 32)
	for i := range manyScopes {
		manyScopes[i] = fmt.Sprintf("scope:%02d:", i) + strings.Repeat("x", 55) // 64 bytes
	}
	tests := []struct {
		name string
		edit func(r *apitoken.Record)
	}{
		{"every field set", func(r *apitoken.Record) {
			r.MemberID = "member-42"
			r.Name = `deploy key "prod" ☃`
			r.Scopes = []string{"read", "write", "admin:org"}
			r.ExpiresAt = base.Add(30*24*time.Hour + 876543*time.Microsecond)
			r.LastUsedAt = base.Add(time.Hour + time.Microsecond)
		}},
		{"only the required fields: empty texts, no scopes, zero times", func(r *apitoken.Record) {
			r.MemberID, r.Name, r.Scopes = "", "", nil
		}},
		{"empty scopes come back nil", func(r *apitoken.Record) { r.Scopes = []string{} }},
		{"fields at their longest", func(r *apitoken.Record) {
			r.AccountID, r.MemberID, r.Name, r.Scopes = long, long, long, manyScopes
		}},
		{"times one microsecond off a second", func(r *apitoken.Record) {
			r.CreatedAt = time.Date(2026, time.January, 1, 0, 0, 0, 1000, time.UTC)
			r.ExpiresAt = time.Date(2099, time.December, 31, 23, 59, 59, 999999000, time.UTC)
			r.LastUsedAt = r.CreatedAt.Add(time.Microsecond)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := newRecord("acct-"+newID(), base)
			tt.edit(&rec)
			want := clone(rec)
			create(t, s, rec)
			checkLookup(t, s, want, ruleFind)
			checkList(t, s, rec.AccountID, []apitoken.Record{want}, "a Store must list the token created for an account")
		})
	}
}

func testLookupUnknown(t *testing.T, s apitoken.Store) {
	t.Run("an empty store knows no hash", func(t *testing.T) {
		checkGone(t, s, newHash(), ruleUnknownHash)
	})
	rec := newRecord("acme", base)
	create(t, s, rec)
	t.Run("a random hash is unknown", func(t *testing.T) {
		checkGone(t, s, newHash(), ruleUnknownHash)
	})
	t.Run("the zero hash is unknown", func(t *testing.T) {
		checkGone(t, s, apitoken.Hash{}, ruleUnknownHash)
	})
	for _, flip := range []struct{ byte, bit int }{{0, 0}, {15, 4}, {31, 7}} {
		t.Run(fmt.Sprintf("a hash differing in bit %d of byte %d is unknown", flip.bit, flip.byte), func(t *testing.T) {
			h := rec.Hash
			h[flip.byte] ^= 1 << flip.bit
			checkGone(t, s, h, "a Store must compare hashes byte for byte: a hash differing from a stored one in one bit must be unknown (ErrNotFound)")
		})
	}
	t.Run("the stored hash is still found", func(t *testing.T) {
		checkLookup(t, s, rec, ruleFind)
	})
}

// duplicateCases are the accounts of a record and of its duplicate.
var duplicateCases = []struct{ name, first, second string }{
	{"in the same account", "acme", "acme"},
	{"in another account", "initech", "globex"},
}

func testDuplicateID(t *testing.T, s apitoken.Store) {
	for _, tt := range duplicateCases {
		t.Run(tt.name, func(t *testing.T) {
			first := newRecord(tt.first, base)
			second := newRecord(tt.second, base.Add(time.Second))
			second.ID, second.Name = first.ID, "other"
			create(t, s, first)

			checkErrorIs(t, s.Create(t.Context(), second), apitoken.ErrDuplicate, ruleDupID)
			checkLookup(t, s, first, "a refused Create must leave the existing record unchanged")
			checkGone(t, s, second.Hash, ruleFailedCreate)
			checkList(t, s, tt.first, []apitoken.Record{first}, ruleFailedCreate)
			if tt.second != tt.first {
				checkList(t, s, tt.second, nil, ruleFailedCreate)
			}
		})
	}
}

func testDuplicateHash(t *testing.T, s apitoken.Store) {
	for _, tt := range duplicateCases {
		t.Run(tt.name, func(t *testing.T) {
			first := newRecord(tt.first, base)
			second := newRecord(tt.second, base.Add(time.Second))
			second.Hash, second.Name = first.Hash, "other"
			create(t, s, first)

			checkErrorIs(t, s.Create(t.Context(), second), apitoken.ErrDuplicate, ruleDupHash)
			checkLookup(t, s, first, "a refused Create must leave the existing record unchanged")
			checkList(t, s, tt.first, []apitoken.Record{first}, ruleFailedCreate)
			if tt.second != tt.first {
				checkList(t, s, tt.second, nil, ruleFailedCreate)
			}
		})
	}
}

func testListOrder(t *testing.T, s apitoken.Store) {
	recs := make([]apitoken.Record, 7)
	for i := range recs {
		recs[i] = newRecord("acme", time.Time{})
	}
	// Creation times run against the order of the ids, four of them tie, and
	// two differ by a microsecond: sorting by ID alone, by CreatedAt alone,
	// or keeping the order of creation, each gives a wrong order.
	slices.SortFunc(recs, func(a, b apitoken.Record) int { return strings.Compare(a.ID, b.ID) })
	recs[0].CreatedAt = base.Add(3 * time.Second)
	recs[1].CreatedAt = base.Add(2 * time.Second)
	recs[2].CreatedAt = base.Add(time.Microsecond)
	for i := 3; i < len(recs); i++ {
		recs[i].CreatedAt = base
	}
	for _, i := range []int{2, 5, 0, 3, 6, 1, 4} {
		create(t, s, recs[i])
	}
	create(t, s, newRecord("globex", base.Add(time.Second)))
	checkList(t, s, "acme", recs, "a Store must list tokens oldest first by CreatedAt, ties broken by ID")
}

func testListOnlyTheAccount(t *testing.T, s apitoken.Store) {
	accounts := map[string][]apitoken.Record{"acme": nil, "globex": nil, "initech": nil}
	for i, acct := range []string{"acme", "globex", "acme", "initech", "globex", "acme"} {
		rec := newRecord(acct, base.Add(time.Duration(i)*time.Second))
		create(t, s, rec)
		accounts[acct] = append(accounts[acct], rec)
	}
	for acct, recs := range accounts {
		t.Run("ok, "+acct+" lists its own tokens only", func(t *testing.T) {
			checkList(t, s, acct, recs, ruleListExact)
		})
	}
	t.Run("ok, an account without tokens lists nothing", func(t *testing.T) {
		toks, err := s.List(t.Context(), "umbrella")
		requireNoError(t, err, "a Store must return an empty list and no error for an account without tokens")
		check(t, len(toks) == 0, "a Store must return an empty list and no error for an account without tokens, got %#v", toks)
	})
}

func testDelete(t *testing.T, s apitoken.Store) {
	a, b, c := newRecord("acme", base), newRecord("acme", base.Add(time.Second)), newRecord("acme", base.Add(2*time.Second))
	x := newRecord("globex", base)
	create(t, s, a, b, c, x)

	refusals := []struct{ name, accountID, id, rule string }{
		{"nok, another account's token", "globex", a.ID, "a Store must refuse to delete a token of another account with an error wrapping ErrNotFound"},
		{"nok, unknown id", "acme", newID(), "a Store must return an error wrapping ErrNotFound when deleting an unknown id"},
		{"nok, id that is not a UUID", "acme", "no such token", "a Store must return an error wrapping ErrNotFound when deleting an unknown id, whatever its form"},
		{"nok, empty id", "acme", "", "a Store must return an error wrapping ErrNotFound when deleting an unknown id, whatever its form"},
		{"nok, unknown account", "umbrella", a.ID, "a Store must refuse to delete a token of another account with an error wrapping ErrNotFound"},
	}
	for _, tt := range refusals {
		t.Run(tt.name, func(t *testing.T) {
			checkErrorIs(t, s.Delete(t.Context(), tt.accountID, tt.id), apitoken.ErrNotFound, "%s", tt.rule)
			checkLookup(t, s, a, ruleFailedDelete)
			checkList(t, s, "acme", []apitoken.Record{a, b, c}, ruleFailedDelete)
		})
	}
	t.Run("ok, removes the token and only it", func(t *testing.T) {
		requireNoError(t, s.Delete(t.Context(), "acme", b.ID), "a Store must delete a token of the account")
		checkGone(t, s, b.Hash, ruleRemoved)
		checkList(t, s, "acme", []apitoken.Record{a, c}, ruleNotListed)
		for _, r := range []apitoken.Record{a, c, x} {
			checkLookup(t, s, r, "a Delete must leave the other tokens in place")
		}
		checkList(t, s, "globex", []apitoken.Record{x}, "a Delete must leave the other accounts' tokens in place")
	})
	t.Run("nok, deleting twice", func(t *testing.T) {
		checkErrorIs(t, s.Delete(t.Context(), "acme", b.ID), apitoken.ErrNotFound,
			"a Store must return an error wrapping ErrNotFound when deleting a token already deleted")
	})
	t.Run("ok, deleting every token empties the account", func(t *testing.T) {
		requireNoError(t, s.Delete(t.Context(), "acme", a.ID), "a Store must delete a token of the account")
		requireNoError(t, s.Delete(t.Context(), "acme", c.ID), "a Store must delete a token of the account")
		checkGone(t, s, a.Hash, ruleRemoved)
		checkGone(t, s, c.Hash, ruleRemoved)
		checkList(t, s, "acme", nil, ruleNotListed)
	})
}

func testByteExactAccountIDs(t *testing.T, s apitoken.Store) {
	// Pairs that a case-insensitive or accent-insensitive collation, PAD SPACE
	// comparison, Unicode normalisation, LIKE pattern, unescaped quote or
	// truncated column would confuse.
	accounts := []string{
		"acme", "ACME", "Acme", "acme ",
		"caf\u00e9", "cafe\u0301", "cafe",
		`o'brien`, `o''brien`, `say "hi"`, `back\slash`, `back\\slash`,
		"100%", "100", "a_c", "abc", "%", "_",
		strings.Repeat("a", 128), strings.Repeat("a", 127) + "b",
	}
	recs := make([]apitoken.Record, len(accounts))
	for i, acct := range accounts {
		recs[i] = newRecord(acct, base.Add(time.Duration(i)*time.Second))
		create(t, s, recs[i])
	}
	t.Run("ok, each account id round-trips and lists only its own token", func(t *testing.T) {
		for i, acct := range accounts {
			checkLookup(t, s, recs[i], ruleFind)
			checkList(t, s, acct, recs[i:i+1], ruleListExact)
		}
	})
	t.Run("nok, Delete with an account id that differs in any byte", func(t *testing.T) {
		for i, acct := range accounts {
			for j, r := range recs {
				if i == j {
					continue
				}
				checkErrorIs(t, s.Delete(t.Context(), acct, r.ID), apitoken.ErrNotFound,
					"a Store must compare account ids byte for byte: Delete(%q, id of a token of %q) must return an error wrapping ErrNotFound", acct, r.AccountID)
			}
		}
		for _, r := range recs {
			checkLookup(t, s, r, ruleFailedDelete)
		}
	})
	t.Run("ok, Delete with the exact account id", func(t *testing.T) {
		for i, acct := range accounts {
			checkNoError(t, s.Delete(t.Context(), acct, recs[i].ID), "a Store must delete a token of the account %q", acct)
			checkGone(t, s, recs[i].Hash, ruleRemoved)
			for _, r := range recs[i+1:] {
				checkList(t, s, r.AccountID, []apitoken.Record{r}, "a Delete must leave the other accounts' tokens in place")
			}
		}
	})
}

func testByteExactTokenIDs(t *testing.T, s apitoken.Store) {
	// A fixed id with letters, so that changing its case changes it.
	rec := newRecord("acme", base)
	rec.ID = "019ac5e2-7b1c-7abc-8def-0123456789ab"
	create(t, s, rec)
	for _, tt := range []struct{ name, id string }{
		{"nok, Delete with the id in upper case", strings.ToUpper(rec.ID)},
		{"nok, Delete with a trailing space", rec.ID + " "},
		{"nok, Delete with the id truncated", rec.ID[:len(rec.ID)-1]},
	} {
		t.Run(tt.name, func(t *testing.T) {
			checkErrorIs(t, s.Delete(t.Context(), "acme", tt.id), apitoken.ErrNotFound,
				"a Store must compare token ids byte for byte: Delete with an id that differs must return an error wrapping ErrNotFound")
			checkLookup(t, s, rec, ruleFailedDelete)
		})
	}
	t.Run("ok, ids differing only in case are distinct tokens", func(t *testing.T) {
		upper := newRecord("acme", base.Add(time.Second))
		upper.ID = strings.ToUpper(rec.ID)
		requireNoError(t, s.Create(t.Context(), upper), "a Store must compare token ids byte for byte: an id differing only in case is a new id")
		checkList(t, s, "acme", []apitoken.Record{rec, upper}, ruleListExact)
		requireNoError(t, s.Delete(t.Context(), "acme", upper.ID), "a Store must delete a token of the account")
		checkGone(t, s, upper.Hash, ruleRemoved)
		checkLookup(t, s, rec, "a Store must compare token ids byte for byte: deleting one id must leave an id differing in case in place")
	})
}

func testNoAliasing(t *testing.T, s apitoken.Store) {
	t.Run("the Scopes given to Create", func(t *testing.T) {
		scopes := []string{"read", "write"}
		rec := newRecord("acme", base)
		rec.Scopes = scopes
		want := clone(rec)
		create(t, s, rec)
		if given := []string{"read", "write"}; !reflect.DeepEqual(scopes, given) {
			t.Fatalf("a Store must not modify the Scopes slice given to Create\n got: %#v\nwant: %#v", scopes, given)
		}
		scopes[0] = "admin"
		got, err := s.Lookup(t.Context(), rec.Hash)
		requireNoError(t, err, ruleFind)
		checkEqual(t, want.Scopes, got.Scopes, "a Store must not retain the Scopes slice given to Create")
		checkList(t, s, "acme", []apitoken.Record{want}, "a Store must not retain the Scopes slice given to Create")
	})
	t.Run("the Scopes returned by Lookup", func(t *testing.T) {
		rec := newRecord("globex", base)
		create(t, s, rec)
		got, err := s.Lookup(t.Context(), rec.Hash)
		requireNoError(t, err, ruleFind)
		if len(got.Scopes) == 0 {
			t.Fatalf("a Store must return the Scopes it was given: got %#v", got.Scopes)
		}
		got.Scopes[0] = "admin"
		checkLookup(t, s, rec, "a Store must return Scopes the caller may modify: changing those Lookup returned changed the Store")
		checkList(t, s, "globex", []apitoken.Record{rec}, "a Store must return Scopes the caller may modify: changing those Lookup returned changed the Store")
	})
	t.Run("the tokens and Scopes returned by List", func(t *testing.T) {
		rec := newRecord("initech", base)
		create(t, s, rec)
		toks, err := s.List(t.Context(), "initech")
		requireNoError(t, err, "a Store must list the tokens of an account without error")
		if len(toks) != 1 {
			t.Fatalf("%s: List(%q) returned %d tokens, want 1", ruleListExact, "initech", len(toks))
		}
		if len(toks[0].Scopes) == 0 {
			t.Fatalf("a Store must return the Scopes it was given: got %#v", toks[0].Scopes)
		}
		toks[0].Scopes[0] = "admin"
		checkLookup(t, s, rec, "a Store must return Scopes the caller may modify: changing those List returned changed the Store")
		checkList(t, s, "initech", []apitoken.Record{rec}, "a Store must return Scopes the caller may modify: changing those List returned changed the Store")

		toks, err = s.List(t.Context(), "initech")
		requireNoError(t, err, "a Store must list the tokens of an account without error")
		if len(toks) != 1 {
			t.Fatalf("%s: List(%q) returned %d tokens, want 1", ruleListExact, "initech", len(toks))
		}
		toks[0] = apitoken.Token{ID: "changed", AccountID: "initech"}
		checkList(t, s, "initech", []apitoken.Record{rec}, "a Store must return a slice the caller may modify: changing the slice List returned changed the Store")
	})
}

// maxReported bounds the errors reported per goroutine, so that one broken
// rule does not bury the others.
const maxReported = 5

// report reports, from the test goroutine, the errors that goroutines collected.
func report(t *testing.T, who string, errs []string) {
	t.Helper()
	for i, e := range errs {
		if i == maxReported {
			t.Errorf("%s: %d more errors", who, len(errs)-maxReported)
			break
		}
		t.Errorf("%s: %s", who, e)
	}
}

func testConcurrency(t *testing.T, s apitoken.Store) {
	const workers, rounds, shared = 8, 60, "shared"
	type result struct {
		own, shared, gone []apitoken.Record // live in the worker's account, live in the shared one, deleted
		errs              []string
	}
	results := make([]result, workers)
	ctx := t.Context()
	start := make(chan struct{})
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			res := &results[w]
			fail := func(format string, args ...any) { res.errs = append(res.errs, fmt.Sprintf(format, args...)) }
			own, neighbour := fmt.Sprintf("worker-%d", w), fmt.Sprintf("worker-%d", (w+1)%workers)
			<-start
			for i := range rounds {
				now := time.Now().UTC().Truncate(time.Microsecond)
				a, b := newRecord(own, now), newRecord(shared, now)
				if err := s.Create(ctx, a); err != nil {
					fail("%s, under concurrent use: %v", ruleAccept, err)
					return
				}
				if err := s.Create(ctx, b); err != nil {
					fail("%s, under concurrent use: %v", ruleAccept, err)
					return
				}
				res.own = append(res.own, a)
				if got, err := s.Lookup(ctx, a.Hash); err != nil {
					fail("%s, under concurrent use: %v", ruleFind, err)
				} else if got.ID != a.ID || got.AccountID != own {
					fail("%s, under concurrent use: Lookup returned another record", ruleFind)
				}
				// This worker alone writes to its account: List must show
				// exactly what it created and did not delete.
				if toks, err := s.List(ctx, own); err != nil {
					fail("a Store must list the tokens of an account without error, under concurrent use: %v", err)
				} else if !slices.Equal(ids(toks), ids(sortedTokens(res.own))) {
					fail("%s, in order, under concurrent use", ruleListExact)
				}
				if toks, err := s.List(ctx, shared); err != nil {
					fail("a Store must list the tokens of an account without error, under concurrent use: %v", err)
				} else if slices.ContainsFunc(toks, func(tok apitoken.Token) bool { return tok.AccountID != shared }) {
					fail("a Store must never list another account's token, under concurrent use")
				} else if !slices.ContainsFunc(toks, func(tok apitoken.Token) bool { return tok.ID == b.ID }) {
					fail("a Store must list a token as soon as Create returned, under concurrent use")
				}
				if err := s.Delete(ctx, neighbour, a.ID); !errors.Is(err, apitoken.ErrNotFound) {
					fail("a Store must refuse to delete a token of another account with an error wrapping ErrNotFound, under concurrent use: got %v", err)
				}
				if i%3 == 0 {
					if err := s.Delete(ctx, own, a.ID); err != nil {
						fail("a Store must delete a token of the account, under concurrent use: %v", err)
					} else {
						res.own = res.own[:len(res.own)-1] // a was appended last
						res.gone = append(res.gone, a)
						if _, err := s.Lookup(ctx, a.Hash); !errors.Is(err, apitoken.ErrNotFound) {
							fail("%s, under concurrent use: got %v", ruleRemoved, err)
						}
					}
				}
				if i%4 == 0 {
					if err := s.Delete(ctx, shared, b.ID); err != nil {
						fail("a Store must delete a token of the account, under concurrent use: %v", err)
						res.shared = append(res.shared, b)
					} else {
						res.gone = append(res.gone, b)
					}
				} else {
					res.shared = append(res.shared, b)
				}
			}
		})
	}
	close(start)
	wg.Wait()

	var sharedLive []apitoken.Record
	for w, res := range results {
		report(t, fmt.Sprintf("worker %d", w), res.errs)
		sharedLive = append(sharedLive, res.shared...)
	}
	for w, res := range results {
		for _, r := range slices.Concat(res.own, res.shared) {
			checkLookup(t, s, r, "a Store must keep every record created and not deleted under concurrent use")
		}
		for _, r := range res.gone {
			checkGone(t, s, r.Hash, ruleRemoved+", also under concurrent use")
		}
		checkList(t, s, fmt.Sprintf("worker-%d", w), res.own, ruleListExact+", also after concurrent use")
	}
	checkList(t, s, shared, sharedLive, ruleListExact+", also after concurrent use")
}

func testConcurrentDuplicateHash(t *testing.T, s apitoken.Store) {
	h := newHash()
	raceDuplicates(t, s, "Hash", ruleDupHash, func(r *apitoken.Record) { r.Hash = h })
}

func testConcurrentDuplicateID(t *testing.T, s apitoken.Store) {
	id := newRecord("acme", base).ID
	raceDuplicates(t, s, "ID", ruleDupID, func(r *apitoken.Record) { r.ID = id })
}

// raceDuplicates has 16 goroutines create records that share the field
// that same sets, and checks that exactly one wins: a check-then-insert
// store fails here, not in the one-at-a-time tests.
func raceDuplicates(t *testing.T, s apitoken.Store, field, rule string, same func(*apitoken.Record)) {
	t.Helper()
	const n = 16
	recs := make([]apitoken.Record, n)
	for i := range recs {
		recs[i] = newRecord(fmt.Sprintf("racer-%d", i), base)
		same(&recs[i])
	}
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = s.Create(t.Context(), recs[i])
		})
	}
	close(start)
	wg.Wait()

	winner, winners := -1, 0
	for i, err := range errs {
		switch {
		case err == nil:
			winner, winners = i, winners+1
		case !errors.Is(err, apitoken.ErrDuplicate):
			t.Errorf("%s, also under concurrent use: Create %d returned %v", rule, i, err)
		}
	}
	if winners != 1 {
		t.Fatalf("a Store must accept exactly one of concurrent Creates with the same %s, and refuse the others with an error wrapping ErrDuplicate: %d accepted", field, winners)
	}
	checkLookup(t, s, recs[winner], ruleFind)
	for i, r := range recs {
		if i != winner {
			checkList(t, s, r.AccountID, nil, ruleFailedCreate)
		}
	}
}

func testConcurrentDelete(t *testing.T, s apitoken.Store) {
	const n = 16
	rec, other := newRecord("acme", base), newRecord("acme", base.Add(time.Second))
	create(t, s, rec, other)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = s.Delete(t.Context(), "acme", rec.ID)
		})
	}
	close(start)
	wg.Wait()

	deleted := 0
	for i, err := range errs {
		switch {
		case err == nil:
			deleted++
		case !errors.Is(err, apitoken.ErrNotFound):
			t.Errorf("a Store must return an error wrapping ErrNotFound when deleting a token already deleted, also under concurrent use: Delete %d returned %v", i, err)
		}
	}
	check(t, deleted == 1, "a Store must let exactly one of concurrent Deletes of a token succeed; the others return an error wrapping ErrNotFound: %d succeeded", deleted)
	checkGone(t, s, rec.Hash, ruleRemoved)
	checkList(t, s, "acme", []apitoken.Record{other}, ruleNotListed)
}

func testCancelledContext(t *testing.T, s apitoken.Store) {
	// A Store need not watch its context (memstore does not), but when it
	// fails because the context ended, that is an outage, not an answer.
	const rule = "a Store need not fail on a cancelled context, but if it does, the error must be a system error, not one wrapping ErrNotFound or ErrDuplicate"
	systemError := func(t *testing.T, op string, err error) {
		t.Helper()
		if err != nil {
			check(t, !errors.Is(err, apitoken.ErrNotFound) && !errors.Is(err, apitoken.ErrDuplicate), "%s: %s returned %v", rule, op, err)
		}
	}
	tests := []struct {
		name string
		ctx  func(t *testing.T) context.Context
	}{
		{"cancelled", func(t *testing.T) context.Context {
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			return ctx
		}},
		{"deadline exceeded", func(t *testing.T) context.Context {
			ctx, cancel := context.WithDeadline(t.Context(), time.Now().Add(-time.Second))
			t.Cleanup(cancel)
			return ctx
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			acct := "acct-" + newID()
			existing, doomed, fresh := newRecord(acct, base), newRecord(acct, base.Add(time.Second)), newRecord(acct, base.Add(2*time.Second))
			create(t, s, existing, doomed)
			dead := tt.ctx(t)

			err := s.Create(dead, fresh)
			systemError(t, "Create", err)
			live := []apitoken.Record{existing}
			if err != nil {
				checkGone(t, s, fresh.Hash, ruleFailedCreate)
			} else {
				checkLookup(t, s, fresh, ruleFind)
				live = append(live, fresh)
			}

			got, err := s.Lookup(dead, existing.Hash)
			systemError(t, "Lookup of a stored hash", err)
			if err == nil {
				checkRecord(t, existing, got)
			}

			_, err = s.List(dead, acct)
			systemError(t, "List", err)

			err = s.Delete(dead, acct, doomed.ID)
			systemError(t, "Delete of a stored token", err)
			if err != nil {
				checkLookup(t, s, doomed, ruleFailedDelete)
				live = append(live, doomed)
			} else {
				checkGone(t, s, doomed.Hash, ruleRemoved)
			}
			checkList(t, s, acct, live, "a failed call must leave the Store as it was")
		})
	}
}

func testDeleteAccount(t *testing.T, s apitoken.Store) {
	d, ok := s.(apitoken.AccountDeleter)
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
	d, ok := s.(apitoken.ExpiredDeleter)
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
	u, ok := s.(apitoken.ExpiryUpdater)
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
	lc, ok := s.(apitoken.LimitedCreator)
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
	r, ok := s.(apitoken.LastUseRecorder)
	if !ok {
		t.Skip("the Store does not implement the optional apitoken.LastUseRecorder")
	}
	acct := "acct-" + newID()
	never, used, untouched := newRecord(acct, base), newRecord(acct, base), newRecord(acct, base)
	used.LastUsedAt = base.Add(time.Hour)
	create(t, s, never, used, untouched)

	at := base.Add(2*time.Hour + time.Microsecond)
	requireNoError(t, r.RecordLastUse(t.Context(), []apitoken.LastUse{
		{ID: never.ID, At: at}, {ID: used.ID, At: at}, {ID: newID(), At: at},
	}), "a Store must record last uses, and skip ids it does not hold")
	never.LastUsedAt, used.LastUsedAt = at, at
	checkLookup(t, s, never, "a Store must record a first use, to the microsecond")
	checkLookup(t, s, used, "a Store must record a later use, to the microsecond")
	checkLookup(t, s, untouched, "RecordLastUse must leave the other tokens as they were")

	requireNoError(t, r.RecordLastUse(t.Context(), []apitoken.LastUse{{ID: used.ID, At: base.Add(time.Hour)}}),
		"a Store must accept an earlier use")
	checkLookup(t, s, used, "RecordLastUse must never move a last use back")
}

func testRehash(t *testing.T, s apitoken.Store) {
	r, ok := s.(apitoken.Rehasher)
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
