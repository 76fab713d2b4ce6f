package storetest

import (
	"cmp"
	"crypto/rand"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apitoken-go/apitoken"
	"github.com/google/uuid"
)

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
	rec.AllowedIPs = slices.Clone(rec.AllowedIPs)
	return rec
}

// deepCopy returns a copy of tok whose strings share no memory with tok's.
func deepCopy(tok apitoken.Token) apitoken.Token {
	tok.ID, tok.AccountID = strings.Clone(tok.ID), strings.Clone(tok.AccountID)
	tok.MemberID, tok.Name = strings.Clone(tok.MemberID), strings.Clone(tok.Name)
	scopes := make([]string, len(tok.Scopes))
	for i, s := range tok.Scopes {
		scopes[i] = strings.Clone(s)
	}
	if tok.Scopes == nil {
		scopes = nil
	}
	tok.Scopes = scopes
	return tok
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
	if checkNoError(t, err, "%s", rule) && !checkRecord(t, want, got) {
		// The field checks above state the general rule; this one says
		// which rule of the subtest the record broke.
		t.Errorf("%s: the record Lookup returns differs from the one expected (see above)", rule)
	}
}

// checkGone checks that no record has the hash h.
func checkGone(t *testing.T, s apitoken.Store, h apitoken.Hash, rule string) {
	t.Helper()
	_, err := s.Lookup(t.Context(), h)
	checkErrorIs(t, err, apitoken.ErrNotFound, "%s", rule)
}

// checkRecord checks that got is want, field by field, and returns whether
// it is.
func checkRecord(t *testing.T, want, got apitoken.Record) bool {
	t.Helper()
	ok := check(t, got.Hash == want.Hash, "a Store must return the Hash it was given, byte for byte")
	return checkToken(t, want.Token, got.Token) && ok
}

// checkToken checks that got is want, field by field, each with its rule,
// and returns whether it is.
func checkToken(t *testing.T, want, got apitoken.Token) bool {
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
	ok = checkEqual(t, want.Disabled, got.Disabled, "a Store must return the Disabled it was given or SetDisabled set") && ok
	ok = checkEqual(t, want.Hint, got.Hint, "a Store must return the Hint it was given, byte for byte") && ok
	if len(want.AllowedIPs) == 0 {
		ok = check(t, got.AllowedIPs == nil, "a Store must return nil AllowedIPs when a token has none, got %v", got.AllowedIPs) && ok
	} else {
		ok = check(t, slices.Equal(want.AllowedIPs, got.AllowedIPs), "a Store must return the AllowedIPs it was given, in order: got %v, want %v",
			got.AllowedIPs, want.AllowedIPs) && ok
	}
	ok = check(t, want.LastUsedIP == got.LastUsedIP, "a Store must return the LastUsedIP it was given or RecordLastUse set (the zero Addr when unknown): got %v, want %v",
		got.LastUsedIP, want.LastUsedIP) && ok
	if ok {
		// Catches a field added to Token that this suite does not check yet;
		// the fields checked above may differ in form only.
		got.Scopes, got.CreatedAt, got.ExpiresAt, got.LastUsedAt = want.Scopes, want.CreatedAt, want.ExpiresAt, want.LastUsedAt
		got.AllowedIPs, got.LastUsedIP = want.AllowedIPs, want.LastUsedIP
		ok = checkEqual(t, want, got, "a Store must return every field of the Token it was given")
	}
	return ok
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
