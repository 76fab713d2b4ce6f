package storetest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/apitoken-go/apitoken"
)

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
