package storetest_test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
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
	noFault            fault = "none"
	ignoresDelete      fault = "ignores Delete"
	leaksAccounts      fault = "lists other accounts' tokens"
	sharesSlices       fault = "keeps and returns the caller's Scopes slice"
	overwritesHash     fault = "overwrites a record with the same Hash"
	listsReversed      fault = "lists newest first"
	foldsCase          fault = "matches account ids case-insensitively"
	truncatesTimes     fault = "truncates times to the second"
	zeroForUnknown     fault = "returns a zero Record and no error for an unknown hash"
	returnsLocalTimes  fault = "returns times in another location"
	checksThenInserts  fault = "checks for a duplicate and inserts in two steps"
	faultEnv                 = "STORETEST_FAULT"
	helperTestFullName       = "TestBrokenStoreHelper"
)

// faultyStore is a plain Store, a slice under a mutex, that keeps the
// contract unless its fault says how to break it.
type faultyStore struct {
	fault fault
	mu    sync.Mutex
	recs  []apitoken.Record
}

func (s *faultyStore) Create(_ context.Context, rec apitoken.Record) error {
	if s.fault != sharesSlices {
		rec.Scopes = cloneScopes(rec.Scopes)
	}
	if s.fault == truncatesTimes {
		rec.CreatedAt = rec.CreatedAt.Truncate(time.Second)
		rec.ExpiresAt = rec.ExpiresAt.Truncate(time.Second)
		rec.LastUsedAt = rec.LastUsedAt.Truncate(time.Second)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
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
	if s.fault == foldsCase {
		return strings.EqualFold(a, b)
	}
	return a == b
}

// out returns r as the store hands it out.
func (s *faultyStore) out(r apitoken.Record) apitoken.Record {
	if s.fault != sharesSlices {
		r.Scopes = cloneScopes(r.Scopes)
	}
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
// faultEnv. It runs only as a subprocess of TestRunFailsOnBrokenStores,
// which expects it to fail.
func TestBrokenStoreHelper(t *testing.T) {
	f := fault(os.Getenv(faultEnv))
	if f == "" {
		t.Skip("runs only as a subprocess of TestRunFailsOnBrokenStores")
	}
	storetest.Run(t, func(*testing.T) apitoken.Store { return &faultyStore{fault: f} })
}

func TestRunFailsOnBrokenStores(t *testing.T) {
	tests := []struct {
		fault   fault
		subtest string // the subtest of Run that must fail
		rule    string // the rule its failure must state
	}{
		{ignoresDelete, "Delete", "a Store must remove a deleted token: Lookup must then return an error wrapping ErrNotFound"},
		{leaksAccounts, "ListOnlyTheAccount", "a Store must never list another account's token"},
		{sharesSlices, "NoAliasing", "a Store must not retain the Scopes slice given to Create"},
		{overwritesHash, "CreateDuplicateHash", "a Store must refuse a record whose Hash exists with an error wrapping ErrDuplicate"},
		{listsReversed, "ListOrder", "a Store must list tokens oldest first by CreatedAt, ties broken by ID"},
		{foldsCase, "ByteExactAccountIDs", `a Store must compare account ids byte for byte: Delete("ACME", id of a token of "acme")`},
		{truncatesTimes, "CreateThenLookup", "a Store must keep times to the microsecond"},
		{zeroForUnknown, "LookupUnknownHash", "a Store must return an error wrapping ErrNotFound for an unknown hash"},
		{returnsLocalTimes, "CreateThenLookup", "a Store must return times in UTC"},
		{checksThenInserts, "ConcurrentDuplicateID", "a Store must accept exactly one of concurrent Creates with the same ID"},
	}
	for _, tt := range tests {
		t.Run("nok, "+string(tt.fault), func(t *testing.T) {
			t.Parallel()
			out, err := runHelper(t, tt.fault)
			var exit *exec.ExitError
			require.ErrorAs(t, err, &exit, "the suite must fail on a store that %s; output:\n%s", tt.fault, out)
			assert.Contains(t, out, "--- FAIL: "+helperTestFullName+"/"+tt.subtest+" ", "the failing subtest names the rule broken")
			assert.Contains(t, out, tt.rule, "the failure states the rule broken")
		})
	}
	// The control: without its fault, the same store passes, so the failures
	// above come from the faults.
	t.Run("ok, no fault", func(t *testing.T) {
		t.Parallel()
		out, err := runHelper(t, noFault)
		require.NoError(t, err, "the suite must pass on a correct store; output:\n%s", out)
		assert.Contains(t, out, "--- PASS: "+helperTestFullName+" ", "the helper must have run, not skipped")
	})
}

// runHelper runs TestBrokenStoreHelper in a subprocess, against a store with
// fault f, and returns its output.
func runHelper(t *testing.T, f fault) (string, error) {
	t.Helper()
	if testing.Short() {
		t.Skip("runs the suite in a subprocess")
	}
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^"+helperTestFullName+"$", "-test.v", "-test.count=1", "-test.timeout=5m")
	cmd.Env = append(os.Environ(), faultEnv+"="+string(f))
	out, err := cmd.CombinedOutput()
	if err != nil && !errors.As(err, new(*exec.ExitError)) {
		t.Fatalf("cannot run the helper process: %v", err)
	}
	return string(out), err
}
