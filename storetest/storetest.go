// Package storetest checks that an implementation of apitoken.Store keeps the
// contract written on that interface. Run it from the store's own tests:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) apitoken.Store { return mystore.New() })
//	}
package storetest

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apitoken-go/apitoken"
)

// Run checks that the stores made by newStore keep the apitoken.Store
// contract, and that of the optional capabilities they implement
// (apitoken.AccountDeleter, apitoken.ExpiredDeleter, apitoken.ExpiryUpdater,
// apitoken.LimitedCreator, apitoken.LastUseRecorder, apitoken.Rehasher,
// apitoken.Disabler, apitoken.MemberDeleter, apitoken.UnusedDeleter,
// apitoken.ExpiringLister; the
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
	}
	tests = append(tests, capabilityTests...)
	logCapabilities(t, newStore)
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

func testRoundTrip(t *testing.T, s apitoken.Store) {
	long := strings.Repeat("é", 64)          // 128 bytes, the longest text the Issuer accepts
	manyPrefixes := make([]netip.Prefix, 32) // the longest allowlist the Issuer accepts, in its longest text form
	for i := range manyPrefixes {
		manyPrefixes[i] = netip.MustParsePrefix(fmt.Sprintf("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ff%02x/128", i))
	}
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
			r.Disabled = true
			r.Hint = "Zq0x"
			r.AllowedIPs = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("2001:db8::/32")}
			r.LastUsedIP = netip.MustParseAddr("2001:db8::1")
		}},
		{"an IPv4 last address, the widest prefixes", func(r *apitoken.Record) {
			r.LastUsedAt = base.Add(time.Minute)
			r.LastUsedIP = netip.MustParseAddr("198.51.100.7")
			r.AllowedIPs = []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")}
		}},
		{"only the required fields: empty texts, no scopes, zero times", func(r *apitoken.Record) {
			r.MemberID, r.Name, r.Scopes = "", "", nil
		}},
		{"empty scopes come back nil", func(r *apitoken.Record) { r.Scopes = []string{} }},
		{"fields at their longest", func(r *apitoken.Record) {
			r.AccountID, r.MemberID, r.Name, r.Scopes = long, long, long, manyScopes
			r.Hint, r.AllowedIPs = "zzzz", manyPrefixes
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
	t.Run("what Lookup and List returned outlives the records", func(t *testing.T) {
		// A Store may return strings that view its own memory (memstore
		// does): it must then never write that memory again.
		const rule = "a Store must return records that stay as they were: what Lookup or List returned changed when the Store's records did"
		recs := make([]apitoken.Record, 20)
		for i := range recs {
			recs[i] = newRecord("umbrella", base.Add(time.Duration(i)*time.Second))
			recs[i].Name = fmt.Sprintf("name-%02d", i)
		}
		create(t, s, recs...)
		var got []apitoken.Token
		for _, r := range recs {
			rec, err := s.Lookup(t.Context(), r.Hash)
			requireNoError(t, err, ruleFind)
			got = append(got, rec.Token)
		}
		toks, err := s.List(t.Context(), "umbrella")
		requireNoError(t, err, "a Store must list the tokens of an account without error")
		got = append(got, toks...)
		want := make([]apitoken.Token, len(got))
		for i, tok := range got {
			want[i] = deepCopy(tok)
		}
		for _, r := range recs {
			requireNoError(t, s.Delete(t.Context(), "umbrella", r.ID), "a Store must delete a token of the account")
		}
		for i := range recs {
			r := newRecord("umbrellb", base)
			r.MemberID, r.Name, r.Scopes = "MEMBER-1", fmt.Sprintf("NAME-%02d", i), []string{"READ", "WRITE"}
			create(t, s, r)
		}
		for i := range got {
			if !reflect.DeepEqual(want[i], got[i]) {
				t.Fatalf("%s\n got: %#v\nwant: %#v", rule, got[i], want[i])
			}
		}
	})
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
