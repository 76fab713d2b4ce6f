package dbtest_test

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken-go/apitoken"
	"github.com/apitoken-go/apitoken/sqlstore"
)

// Bounds of TestLoad: each goroutine stops at loadOps operations or after
// loadDuration, whichever comes first, so that the test stays short under
// -race and on a loaded machine.
const (
	loadGoroutines = 16
	loadOps        = 300
	loadDuration   = 2 * time.Second
	loadShared     = 3  // accounts every goroutine issues into
	loadMaxErrors  = 20 // errors kept per goroutine
)

// loadToken is one token issued during TestLoad. Only the goroutine that
// issued it verifies or deletes it while the load runs.
type loadToken struct {
	secret  string // never printed: errors name the token by id
	tok     apitoken.Token
	deleted bool
}

// loadWorker is the state of one goroutine of TestLoad.
type loadWorker struct {
	n       int
	iss     *apitoken.Issuer
	rng     *rand.Rand
	own     string // the account only this goroutine issues into
	shared  []string
	live    []*loadToken
	dead    []*loadToken
	all     []*loadToken
	errs    []error
	dropped int // errors beyond loadMaxErrors
	ops     map[string]int
}

// TestLoad runs 16 goroutines against one Store on a pool of 16
// connections, as a server would: each issues tokens into a few shared
// accounts and its own, verifies its live tokens, lists accounts and deletes
// some of its tokens, checking every answer as it goes. Afterwards every
// token that was not deleted must verify, every deleted one must be refused,
// and every account must list exactly its live tokens in order. It catches
// what a single-goroutine test cannot: lost or duplicated writes, a row read
// half-written, a statement shared unsafely between connections, a pool or
// lock that deadlocks (operations fail on their deadline instead of hanging),
// and SQLite's "database is locked" under concurrent writers.
func TestLoad(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.String(), func(t *testing.T) {
			testLoad(t, d)
		})
	}
}

func testLoad(t *testing.T, d sqlstore.Dialect) {
	db := openDB(t, d) // SQLite: WAL and busy_timeout, as a server sets them
	db.SetMaxOpenConns(loadGoroutines)
	db.SetMaxIdleConns(loadGoroutines)
	store, err := sqlstore.New(db, d)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, store.Close()) })
	require.NoError(t, store.Migrate(t.Context()))
	iss, err := apitoken.NewIssuer(store)
	require.NoError(t, err)

	// A stuck pool or lock makes operations fail here rather than hang the
	// test run.
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()

	shared := make([]string, loadShared)
	for i := range shared {
		shared[i] = "shared-" + strconv.Itoa(i)
	}
	workers := make([]*loadWorker, loadGoroutines)
	deadline := time.Now().Add(loadDuration)
	var wg sync.WaitGroup
	for n := range workers {
		w := &loadWorker{
			n:      n,
			iss:    iss,
			rng:    rand.New(rand.NewPCG(uint64(n), uint64(time.Now().UnixNano()))),
			own:    "own-" + strconv.Itoa(n),
			shared: shared,
			ops:    map[string]int{},
		}
		workers[n] = w
		wg.Go(func() {
			for i := 0; i < loadOps && time.Now().Before(deadline); i++ {
				w.step(ctx)
			}
		})
	}
	wg.Wait()

	// Errors first: the checks below would only repeat them.
	var all []*loadToken
	ops := map[string]int{}
	for _, w := range workers {
		for _, err := range w.errs {
			t.Errorf("goroutine %d: %v", w.n, err)
		}
		if w.dropped > 0 {
			t.Errorf("goroutine %d: %d more errors", w.n, w.dropped)
		}
		all = append(all, w.all...)
		for op, c := range w.ops {
			ops[op] += c
		}
	}
	if t.Failed() {
		return
	}
	t.Logf("%v: %d tokens issued; operations: %v", d, len(all), ops)
	// The test means nothing unless every goroutine got to work and every
	// kind of operation ran.
	for _, w := range workers {
		require.NotEmpty(t, w.all, "goroutine %d issued no token", w.n)
	}
	for _, op := range []string{"issue", "verify", "verify-deleted", "list", "delete"} {
		require.Positive(t, ops[op], "no %s operation ran", op)
	}

	// Every token as the load left it.
	live := map[string][]apitoken.Token{} // by account
	for _, acct := range append(slices.Clone(shared), ownAccounts(workers)...) {
		live[acct] = []apitoken.Token{}
	}
	for _, lt := range all {
		got, err := iss.Verify(t.Context(), lt.tok.AccountID, lt.secret)
		if lt.deleted {
			assert.ErrorIs(t, err, apitoken.ErrInvalidToken, "deleted token %s of %s still verifies", lt.tok.ID, lt.tok.AccountID)
			continue
		}
		if assert.NoError(t, err, "live token %s of %s", lt.tok.ID, lt.tok.AccountID) {
			assert.Equal(t, loadView(lt.tok), loadView(got), "Verify of token %s", lt.tok.ID)
		}
		live[lt.tok.AccountID] = append(live[lt.tok.AccountID], lt.tok)
	}
	// Last uses were written in the background all along; Close writes the
	// rest, and then every live token has one, as every one verified.
	require.NoError(t, iss.Close(), "every last use is written")
	for acct, want := range live {
		slices.SortFunc(want, loadOrder)
		got, err := store.List(t.Context(), acct)
		if assert.NoError(t, err, "List(%q)", acct) {
			assert.Equal(t, loadViews(want), loadViews(got), "List(%q) must give exactly the live tokens, by CreatedAt then ID", acct)
		}
		for _, tok := range got {
			assert.False(t, tok.LastUsedAt.Before(tok.CreatedAt), "token %s verified: its last use is recorded, after its creation", tok.ID)
		}
	}
}

func ownAccounts(workers []*loadWorker) []string {
	out := make([]string, len(workers))
	for i, w := range workers {
		out[i] = w.own
	}
	return out
}

// step runs one random operation and checks its answer. While the load
// runs, what a goroutine can check is what no other goroutine changes: its
// own tokens, and the whole of its own account.
func (w *loadWorker) step(ctx context.Context) {
	r := w.rng.IntN(10)
	switch {
	case len(w.live) == 0 || r < 4:
		acct := w.own
		if w.rng.IntN(2) == 0 {
			acct = w.shared[w.rng.IntN(len(w.shared))]
		}
		w.ops["issue"]++
		secret, tok, err := w.iss.Issue(ctx, apitoken.IssueParams{
			AccountID: acct,
			MemberID:  "member-" + strconv.Itoa(w.n),
			Name:      "load " + strconv.Itoa(len(w.all)),
			Scopes:    []string{"tokens:read", "g" + strconv.Itoa(w.n)},
		})
		if err != nil {
			w.fail("issue into %s: %w", acct, err)
			return
		}
		lt := &loadToken{secret: secret, tok: tok}
		w.all = append(w.all, lt)
		w.live = append(w.live, lt)
	case r < 7:
		lt := w.live[w.rng.IntN(len(w.live))]
		w.ops["verify"]++
		got, err := w.iss.Verify(ctx, lt.tok.AccountID, lt.secret)
		if err != nil {
			w.fail("verify of live token %s: %w", lt.tok.ID, err)
		} else if want, have := loadView(lt.tok), loadView(got); want != have {
			w.fail("verify of token %s returned %s, want %s", lt.tok.ID, have, want)
		}
	case r < 8:
		lt := w.live[w.rng.IntN(len(w.live))]
		w.ops["delete"]++
		if err := w.iss.Delete(ctx, lt.tok.AccountID, lt.tok.ID); err != nil {
			w.fail("delete of token %s: %w", lt.tok.ID, err)
			return
		}
		lt.deleted = true
		w.live = slices.DeleteFunc(w.live, func(x *loadToken) bool { return x == lt })
		w.dead = append(w.dead, lt)
	case r < 9 && len(w.dead) > 0:
		lt := w.dead[w.rng.IntN(len(w.dead))]
		w.ops["verify-deleted"]++
		if _, err := w.iss.Verify(ctx, lt.tok.AccountID, lt.secret); err != apitoken.ErrInvalidToken {
			w.fail("verify of deleted token %s: got %v, want ErrInvalidToken", lt.tok.ID, err)
		}
	default:
		w.ops["list"]++
		w.list(ctx)
	}
}

// list lists its own account, which must hold exactly its live tokens there,
// or a shared one, which must hold at least its live tokens there; both in
// order and without another account's token.
func (w *loadWorker) list(ctx context.Context) {
	acct := w.own
	if w.rng.IntN(2) == 0 {
		acct = w.shared[w.rng.IntN(len(w.shared))]
	}
	got, err := w.iss.List(ctx, acct)
	if err != nil {
		w.fail("list of %s: %w", acct, err)
		return
	}
	if !slices.IsSortedFunc(got, loadOrder) {
		w.fail("list of %s is not in CreatedAt, ID order", acct)
	}
	listed := make(map[string]string, len(got))
	for _, tok := range got {
		if tok.AccountID != acct {
			w.fail("list of %s returned token %s of %s", acct, tok.ID, tok.AccountID)
		}
		listed[tok.ID] = loadView(tok)
	}
	mine := 0
	for _, lt := range w.live {
		if lt.tok.AccountID != acct {
			continue
		}
		mine++
		if v, ok := listed[lt.tok.ID]; !ok {
			w.fail("list of %s lacks live token %s", acct, lt.tok.ID)
		} else if want := loadView(lt.tok); v != want {
			w.fail("list of %s returned %s, want %s", acct, v, want)
		}
	}
	if acct == w.own && len(got) != mine {
		w.fail("list of own account %s has %d tokens, want its %d live ones", acct, len(got), mine)
	}
}

func (w *loadWorker) fail(format string, args ...any) {
	if len(w.errs) == loadMaxErrors {
		w.dropped++
		return
	}
	w.errs = append(w.errs, fmt.Errorf(format, args...))
}

// loadOrder is List's order: CreatedAt, then ID.
func loadOrder(a, b apitoken.Token) int {
	return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), strings.Compare(a.ID, b.ID))
}

// loadView is every field of a token in one comparable, printable string
// (a Token holds nothing secret), with times in UTC to the microsecond and
// their location, so that a time returned in another zone differs.
func loadView(t apitoken.Token) string {
	tm := func(x time.Time) string {
		if x.IsZero() {
			return "zero"
		}
		return x.Format("2006-01-02T15:04:05.000000") + "@" + x.Location().String()
	}
	// Not LastUsedAt: the Issuer writes it in the background meanwhile.
	return fmt.Sprintf("{%s %s %s %q %q created=%s expires=%s}",
		t.ID, t.AccountID, t.MemberID, t.Name, t.Scopes, tm(t.CreatedAt), tm(t.ExpiresAt))
}

func loadViews(toks []apitoken.Token) []string {
	out := make([]string, len(toks))
	for i, t := range toks {
		out[i] = loadView(t)
	}
	return out
}
