package apitoken_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken-go/apitoken"
	"github.com/apitoken-go/apitoken/memstore"
)

var t0 = time.Date(2026, time.November, 27, 12, 0, 0, 0, time.UTC)

func TestHint(t *testing.T) {
	iss := newIssuer(t, memstore.New(), apitoken.WithLastUseInterval(0))
	ctx := t.Context()
	secret, tok, err := iss.Issue(ctx, apitoken.IssueParams{AccountID: "acme"})
	require.NoError(t, err)
	assert.Equal(t, secret[len(secret)-4:], tok.Hint, "the hint is the end of the secret, what its owner sees")
	got, err := iss.Verify(ctx, "acme", secret)
	require.NoError(t, err)
	assert.Equal(t, tok.Hint, got.Hint)
	listed, err := iss.List(ctx, "acme")
	require.NoError(t, err)
	require.Len(t, listed, 1)
	assert.Equal(t, tok.Hint, listed[0].Hint, "List shows the hint")

	rotatedSecret, rotated, err := iss.Rotate(ctx, "acme", tok.ID, time.Hour)
	require.NoError(t, err)
	assert.Equal(t, rotatedSecret[len(rotatedSecret)-4:], rotated.Hint, "the successor has the hint of its own secret")
}

// refusalResponse returns what the middleware answers to a request with
// secret for account from remote, and whether the handler ran.
func refusalResponse(t *testing.T, h http.Handler, account, secret, remote string) (*httptest.ResponseRecorder, bool) {
	t.Helper()
	ran := false
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Authorization", "Bearer "+secret)
	r.Header.Set("X-Account-ID", account)
	if remote != "" {
		r.RemoteAddr = remote
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ranKey{}, &ran)))
	return w, ran
}

type ranKey struct{}

var okHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	*r.Context().Value(ranKey{}).(*bool) = true
	w.WriteHeader(http.StatusNoContent)
})

func TestDisableEnable(t *testing.T) {
	ctx := t.Context()
	iss := newIssuer(t, memstore.New(), apitoken.WithLastUseInterval(0))
	secret, tok, err := iss.Issue(ctx, apitoken.IssueParams{AccountID: "acme", Name: "ci"})
	require.NoError(t, err)
	_, other, err := iss.Issue(ctx, apitoken.IssueParams{AccountID: "globex"})
	require.NoError(t, err)

	for _, tt := range []struct{ name, account, id string }{
		{"nok, an unknown id", "acme", "01900000-0000-7000-8000-000000000000"},
		{"nok, another account's token", "acme", other.ID},
		{"nok, an empty id", "acme", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			require.ErrorIs(t, iss.Disable(ctx, tt.account, tt.id), apitoken.ErrNotFound)
			require.ErrorIs(t, iss.Enable(ctx, tt.account, tt.id), apitoken.ErrNotFound)
		})
	}
	_, err = iss.Verify(ctx, "globex", "")
	require.ErrorIs(t, err, apitoken.ErrInvalidToken)

	h := iss.Middleware(okHandler)
	unknown, _ := refusalResponse(t, h, "acme", strangerSecret(t), "")
	require.Equal(t, http.StatusUnauthorized, unknown.Code)

	t.Run("ok, disabled: refused like an unknown token, still listed", func(t *testing.T) {
		require.NoError(t, iss.Disable(ctx, "acme", tok.ID))
		require.NoError(t, iss.Disable(ctx, "acme", tok.ID), "idempotent")
		_, err := iss.Verify(ctx, "acme", secret)
		require.Equal(t, apitoken.ErrInvalidToken, err, "the same error value as for an unknown token")
		w, ran := refusalResponse(t, h, "acme", secret, "")
		assert.False(t, ran)
		assert.Equal(t, unknown.Code, w.Code)
		assert.Equal(t, unknown.Header(), w.Header(), "byte-identical headers")
		assert.Equal(t, unknown.Body.String(), w.Body.String(), "byte-identical body")
		toks, err := iss.List(ctx, "acme")
		require.NoError(t, err)
		require.Len(t, toks, 1)
		assert.True(t, toks[0].Disabled)
		assert.Equal(t, apitoken.StatusDisabled, iss.Status(toks[0]))
	})
	t.Run("nok, Rotate of a disabled token", func(t *testing.T) {
		_, _, err := iss.Rotate(ctx, "acme", tok.ID, 0)
		require.ErrorIs(t, err, apitoken.ErrInvalidInput)
		assert.Contains(t, err.Error(), "disabled")
		toks, err := iss.List(ctx, "acme")
		require.NoError(t, err)
		require.Len(t, toks, 1, "no successor was made, the token stays")
	})
	t.Run("ok, enabled again", func(t *testing.T) {
		require.NoError(t, iss.Enable(ctx, "acme", tok.ID))
		require.NoError(t, iss.Enable(ctx, "acme", tok.ID), "idempotent")
		got, err := iss.Verify(ctx, "acme", secret)
		require.NoError(t, err)
		assert.False(t, got.Disabled)
		assert.Equal(t, apitoken.StatusActive, iss.Status(got))
	})
	t.Run("nok, a store without Disabler", func(t *testing.T) {
		plain := newIssuer(t, plainStore{memstore.New()}, apitoken.WithLastUseInterval(0))
		_, tok, err := plain.Issue(ctx, apitoken.IssueParams{AccountID: "acme"})
		require.NoError(t, err)
		require.ErrorIs(t, plain.Disable(ctx, "acme", tok.ID), errors.ErrUnsupported)
	})
}

func TestDisableForgetsCachedTokensEverywhere(t *testing.T) {
	e := newCacheEnv(t)
	a, b := e.node(t, true), e.node(t, true)
	secret, tok := a.issue(t, apitoken.IssueParams{AccountID: "acme"})
	a.requireMiss(t, tok, secret, "first use on a")
	a.requireHit(t, tok, secret, "cached on a")
	b.requireMiss(t, tok, secret, "first use on b")
	b.requireHit(t, tok, secret, "cached on b")

	require.NoError(t, a.iss.Disable(t.Context(), "acme", tok.ID))
	a.requireRefused(t, "acme", secret, "this instance forgets at once")
	require.Eventually(t, func() bool { return b.refused(t, "acme", secret) }, time.Second, time.Millisecond,
		"the other instance forgets through the bus")

	require.NoError(t, b.iss.Enable(t.Context(), "acme", tok.ID))
	a.requireMiss(t, tok, secret, "enabled: verifies again, from the store")
	b.requireMiss(t, tok, secret, "enabled on b too")
}

// TestDisableRacingVerify disables tokens while Verify hammers them through
// the cache: once Disable has returned, no Verify that starts afterwards
// may succeed (a fill that raced the Disable must not bring the token back).
func TestDisableRacingVerify(t *testing.T) {
	ctx := t.Context()
	iss := newIssuer(t, memstore.New(), apitoken.WithCache(1000, time.Hour), apitoken.WithLastUseInterval(0))
	for round := range 50 {
		secret, tok, err := iss.Issue(ctx, apitoken.IssueParams{AccountID: "acme"})
		require.NoError(t, err)
		var disabled atomic.Bool
		var late atomic.Int64
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					after := disabled.Load()
					if _, err := iss.Verify(ctx, "acme", secret); err == nil && after {
						late.Add(1)
					}
				}
			})
		}
		time.Sleep(time.Duration(round%5) * 100 * time.Microsecond)
		require.NoError(t, iss.Disable(ctx, "acme", tok.ID))
		disabled.Store(true)
		time.Sleep(time.Millisecond)
		close(stop)
		wg.Wait()
		require.Zero(t, late.Load(), "round %d: a Verify that began after Disable returned accepted the token", round)
		_, err = iss.Verify(ctx, "acme", secret)
		require.ErrorIs(t, err, apitoken.ErrInvalidToken, "round %d", round)
	}
}

func TestLifetimes(t *testing.T) {
	ctx := t.Context()
	t.Run("nok, options", func(t *testing.T) {
		for _, opts := range [][]apitoken.Option{
			{apitoken.WithDefaultLifetime(0)},
			{apitoken.WithMaxLifetime(-time.Hour)},
			{apitoken.WithMaxLifetime(time.Hour), apitoken.WithDefaultLifetime(2 * time.Hour)},
		} {
			_, err := apitoken.NewIssuer(memstore.New(), opts...)
			require.ErrorIs(t, err, apitoken.ErrInvalidInput)
		}
		_, err := apitoken.NewIssuer(memstore.New(), apitoken.WithDefaultLifetime(2*time.Hour), apitoken.WithMaxLifetime(time.Hour))
		assert.ErrorContains(t, err, "above the max lifetime", "in either order")
	})
	t.Run("ok, the default fills a missing expiry", func(t *testing.T) {
		clk := &clock{t: t0}
		iss := newIssuer(t, memstore.New(), apitoken.WithClock(clk.Now), apitoken.WithDefaultLifetime(90*24*time.Hour))
		_, tok, err := iss.Issue(ctx, apitoken.IssueParams{AccountID: "acme"})
		require.NoError(t, err)
		assert.Equal(t, t0.Add(90*24*time.Hour), tok.ExpiresAt)
		_, tok, err = iss.Issue(ctx, apitoken.IssueParams{AccountID: "acme", ExpiresAt: t0.Add(time.Hour)})
		require.NoError(t, err)
		assert.Equal(t, t0.Add(time.Hour), tok.ExpiresAt, "an explicit expiry stays")
	})
	t.Run("max", func(t *testing.T) {
		clk := &clock{t: t0}
		year := 365 * 24 * time.Hour
		iss := newIssuer(t, memstore.New(), apitoken.WithClock(clk.Now), apitoken.WithMaxLifetime(year), apitoken.WithLastUseInterval(0))
		_, _, err := iss.Issue(ctx, apitoken.IssueParams{AccountID: "acme"})
		require.ErrorIs(t, err, apitoken.ErrInvalidInput, "a token that never expires exceeds every max")
		assert.ErrorContains(t, err, "ExpiresAt is required")
		_, _, err = iss.Issue(ctx, apitoken.IssueParams{AccountID: "acme", ExpiresAt: t0.Add(year + time.Second)})
		require.ErrorIs(t, err, apitoken.ErrInvalidInput)
		_, tok, err := iss.Issue(ctx, apitoken.IssueParams{AccountID: "acme", ExpiresAt: t0.Add(year)})
		require.NoError(t, err, "exactly the max is allowed")
		assert.Equal(t, t0.Add(year), tok.ExpiresAt)
	})
	t.Run("ok, with a default under the max", func(t *testing.T) {
		iss := newIssuer(t, memstore.New(), apitoken.WithDefaultLifetime(time.Hour), apitoken.WithMaxLifetime(24*time.Hour))
		_, tok, err := iss.Issue(ctx, apitoken.IssueParams{AccountID: "acme"})
		require.NoError(t, err)
		assert.False(t, tok.ExpiresAt.IsZero())
	})
	t.Run("ok, a token older than a lowered max stops verifying but stays listed", func(t *testing.T) {
		clk := &clock{t: t0}
		mem := memstore.New()
		before := newIssuer(t, mem, apitoken.WithClock(clk.Now), apitoken.WithLastUseInterval(0))
		secret, old, err := before.Issue(ctx, apitoken.IssueParams{AccountID: "acme"})
		require.NoError(t, err)
		clk.Add(40 * 24 * time.Hour)
		iss := newIssuer(t, mem, apitoken.WithClock(clk.Now), apitoken.WithMaxLifetime(30*24*time.Hour), apitoken.WithLastUseInterval(0))
		_, err = iss.Verify(ctx, "acme", secret)
		require.Equal(t, apitoken.ErrInvalidToken, err)
		toks, err := iss.List(ctx, "acme")
		require.NoError(t, err)
		require.Len(t, toks, 1)
		assert.Equal(t, apitoken.StatusTooOld, iss.Status(toks[0]), "the list can say why")
		assert.Equal(t, "older than the max lifetime", iss.Status(toks[0]).String())
		_, _, err = iss.Rotate(ctx, "acme", old.ID, 0)
		require.ErrorIs(t, err, apitoken.ErrNotFound, "a token too old is not rotated")
		_, err = before.Verify(ctx, "acme", secret)
		require.NoError(t, err, "without the max, it verifies: the token itself is unchanged")
	})
	t.Run("ok, Rotate bounds the successor by the max", func(t *testing.T) {
		clk := &clock{t: t0}
		mem := memstore.New()
		noMax := newIssuer(t, mem, apitoken.WithClock(clk.Now), apitoken.WithLastUseInterval(0))
		_, forever, err := noMax.Issue(ctx, apitoken.IssueParams{AccountID: "acme"})
		require.NoError(t, err)
		_, soon, err := noMax.Issue(ctx, apitoken.IssueParams{AccountID: "acme", ExpiresAt: t0.Add(time.Hour)})
		require.NoError(t, err)
		clk.Add(time.Minute)
		iss := newIssuer(t, mem, apitoken.WithClock(clk.Now), apitoken.WithMaxLifetime(24*time.Hour), apitoken.WithLastUseInterval(0))
		_, succ, err := iss.Rotate(ctx, "acme", forever.ID, 0)
		require.NoError(t, err)
		assert.Equal(t, clk.Now().Add(24*time.Hour), succ.ExpiresAt, "a never-expiring token's successor lives at most the max")
		_, succ, err = iss.Rotate(ctx, "acme", soon.ID, 0)
		require.NoError(t, err)
		assert.Equal(t, t0.Add(time.Hour), succ.ExpiresAt, "a sooner expiry is kept")
	})
	t.Run("ok, Status", func(t *testing.T) {
		clk := &clock{t: t0}
		iss := newIssuer(t, memstore.New(), apitoken.WithClock(clk.Now))
		assert.Equal(t, apitoken.StatusExpired, iss.Status(apitoken.Token{CreatedAt: t0.Add(-time.Hour), ExpiresAt: t0, Disabled: true}),
			"expired comes before disabled")
		assert.Equal(t, apitoken.StatusActive, iss.Status(apitoken.Token{CreatedAt: t0}))
		assert.Equal(t, "Status(9)", apitoken.Status(9).String())
	})
}

func TestDeleteMember(t *testing.T) {
	ctx := t.Context()
	setup := func(t *testing.T, s apitoken.Store) (*apitoken.Issuer, map[string]string) {
		iss := newIssuer(t, s, apitoken.WithLastUseInterval(0), apitoken.WithCache(100, time.Hour))
		secrets := map[string]string{}
		for _, p := range []apitoken.IssueParams{
			{AccountID: "acme", MemberID: "alice"}, {AccountID: "acme", MemberID: "alice"},
			{AccountID: "acme", MemberID: "bob"}, {AccountID: "acme", MemberID: "Alice"}, {AccountID: "acme"},
			{AccountID: "globex", MemberID: "alice"},
		} {
			secret, tok, err := iss.Issue(ctx, p)
			require.NoError(t, err)
			secrets[tok.AccountID+"/"+tok.MemberID+"/"+tok.ID] = secret
			_, err = iss.Verify(ctx, p.AccountID, secret) // cached
			require.NoError(t, err)
		}
		return iss, secrets
	}
	check := func(t *testing.T, iss *apitoken.Issuer, secrets map[string]string) {
		for key, secret := range secrets {
			account, member, _ := strings.Cut(key, "/")
			member, _, _ = strings.Cut(member, "/")
			_, err := iss.Verify(ctx, account, secret)
			if account == "acme" && member == "alice" {
				require.ErrorIs(t, err, apitoken.ErrInvalidToken, "the member's tokens stop verifying at once, cached ones included")
			} else {
				require.NoError(t, err, "%s keeps working", key)
			}
		}
	}
	t.Run("ok, one store call with MemberDeleter", func(t *testing.T) {
		spy := newSpy()
		calls := 0
		spy.onDeleteMember = func(ctx context.Context, a, m string, next func(context.Context, string, string) (int, error)) (int, error) {
			calls++
			return next(ctx, a, m)
		}
		iss, secrets := setup(t, spy)
		before := spy.calls.Load()
		n, err := iss.DeleteMember(ctx, "acme", "alice")
		require.NoError(t, err)
		assert.Equal(t, 2, n)
		assert.Equal(t, 1, calls)
		assert.Equal(t, before, spy.calls.Load(), "no List nor Delete")
		check(t, iss, secrets)
	})
	t.Run("ok, List and Delete without it", func(t *testing.T) {
		iss, secrets := setup(t, plainStore{memstore.New()})
		n, err := iss.DeleteMember(ctx, "acme", "alice")
		require.NoError(t, err)
		assert.Equal(t, 2, n)
		check(t, iss, secrets)
	})
	t.Run("nok, inputs", func(t *testing.T) {
		iss, _ := setup(t, memstore.New())
		_, err := iss.DeleteMember(ctx, "acme", "")
		require.ErrorIs(t, err, apitoken.ErrInvalidInput, "an empty member would name the tokens of no member")
		_, err = iss.DeleteMember(ctx, "", "alice")
		require.ErrorIs(t, err, apitoken.ErrInvalidInput)
		n, err := iss.DeleteMember(ctx, "acme", "nobody")
		require.NoError(t, err)
		assert.Zero(t, n)
	})
	t.Run("nok, the store fails", func(t *testing.T) {
		spy := newSpy()
		down := errors.New("down")
		spy.onDeleteMember = func(context.Context, string, string, func(context.Context, string, string) (int, error)) (int, error) {
			return 0, down
		}
		iss := newIssuer(t, spy)
		_, err := iss.DeleteMember(ctx, "acme", "alice")
		require.ErrorIs(t, err, down)
	})
}

// TestDeleteMemberRacingIssue deletes a member's tokens while the member
// keeps issuing: each token issued is either deleted (and refused) or
// survives (and is listed), the count adds up, and no token deleted
// verifies again through the cache.
func TestDeleteMemberRacingIssue(t *testing.T) {
	for _, tt := range []struct {
		name  string
		store func() apitoken.Store
	}{
		{"with MemberDeleter", func() apitoken.Store { return memstore.New() }},
		{"with List and Delete", func() apitoken.Store { return plainStore{memstore.New()} }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			iss := newIssuer(t, tt.store(), apitoken.WithCache(1000, time.Hour), apitoken.WithLastUseInterval(0))
			var mu sync.Mutex
			issued := map[string]string{}
			stop := make(chan struct{})
			var wg sync.WaitGroup
			for range 3 {
				wg.Go(func() {
					for {
						select {
						case <-stop:
							return
						default:
						}
						secret, tok, err := iss.Issue(ctx, apitoken.IssueParams{AccountID: "acme", MemberID: "leaver"})
						if err != nil {
							t.Errorf("Issue: %v", err)
							return
						}
						_, _ = iss.Verify(ctx, "acme", secret) // fill the cache
						mu.Lock()
						issued[tok.ID] = secret
						mu.Unlock()
					}
				})
			}
			deleted := 0
			for range 20 {
				n, err := iss.DeleteMember(ctx, "acme", "leaver")
				require.NoError(t, err)
				deleted += n
				time.Sleep(200 * time.Microsecond)
			}
			close(stop)
			wg.Wait()
			toks, err := iss.List(ctx, "acme")
			require.NoError(t, err)
			assert.Equal(t, len(issued), deleted+len(toks), "every token issued is deleted once or listed")
			listed := map[string]bool{}
			for _, tok := range toks {
				listed[tok.ID] = true
			}
			for id, secret := range issued {
				_, err := iss.Verify(ctx, "acme", secret)
				if listed[id] {
					require.NoError(t, err, "a surviving token verifies")
				} else {
					require.ErrorIs(t, err, apitoken.ErrInvalidToken, "a deleted token never verifies again")
				}
			}
			n, err := iss.DeleteMember(ctx, "acme", "leaver")
			require.NoError(t, err)
			assert.Equal(t, len(toks), n, "once the member stops issuing, one more call removes the rest")
		})
	}
}

func TestPruneUnused(t *testing.T) {
	ctx := t.Context()
	t.Run("ok, in batches, only the unused", func(t *testing.T) {
		clk := &clock{t: t0}
		spy := newSpy()
		var limits []int
		spy.onDeleteUnused = func(ctx context.Context, since time.Time, limit int, next func(context.Context, time.Time, int) (int, error)) (int, error) {
			limits = append(limits, limit)
			return next(ctx, since, limit)
		}
		iss := newIssuer(t, spy, apitoken.WithClock(clk.Now), apitoken.WithLastUseInterval(time.Minute))
		for range 600 {
			_, _, err := iss.Issue(ctx, apitoken.IssueParams{AccountID: "acme"})
			require.NoError(t, err)
		}
		clk.Add(24 * time.Hour)
		secret, used, err := iss.Issue(ctx, apitoken.IssueParams{AccountID: "acme"})
		require.NoError(t, err)
		clk.Add(24 * time.Hour)
		_, err = iss.Verify(ctx, "acme", secret)
		require.NoError(t, err)
		require.NoError(t, iss.Close()) // writes the last use
		iss = newIssuer(t, spy, apitoken.WithClock(clk.Now), apitoken.WithLastUseInterval(time.Minute))
		clk.Add(time.Hour)

		_, err = iss.PruneUnused(ctx, clk.Now().Add(-30*time.Second))
		require.ErrorIs(t, err, apitoken.ErrInvalidInput, "within the last-use interval, a use may not be written yet")
		n, err := iss.PruneUnused(ctx, clk.Now().Add(-2*time.Hour))
		require.NoError(t, err)
		assert.Equal(t, 600, n)
		assert.Len(t, limits, 2, "600 tokens in batches of a few hundred: %v", limits)
		for _, l := range limits {
			assert.LessOrEqual(t, l, 1000)
		}
		toks, err := iss.List(ctx, "acme")
		require.NoError(t, err)
		require.Len(t, toks, 1)
		assert.Equal(t, used.ID, toks[0].ID, "the used token stays")
	})
	t.Run("nok, without last uses, every token would look unused", func(t *testing.T) {
		iss := newIssuer(t, memstore.New(), apitoken.WithLastUseInterval(0))
		_, err := iss.PruneUnused(ctx, time.Now().Add(-365*24*time.Hour))
		require.ErrorIs(t, err, errors.ErrUnsupported)
	})
	t.Run("nok, a store without UnusedDeleter", func(t *testing.T) {
		_, err := newIssuer(t, plainStore{memstore.New()}).PruneUnused(ctx, time.Now().Add(-365*24*time.Hour))
		require.ErrorIs(t, err, errors.ErrUnsupported)
	})
	t.Run("nok, the store fails after a batch", func(t *testing.T) {
		spy := newSpy()
		down := errors.New("down")
		calls := 0
		spy.onDeleteUnused = func(_ context.Context, _ time.Time, limit int, _ func(context.Context, time.Time, int) (int, error)) (int, error) {
			if calls++; calls == 1 {
				return limit, nil
			}
			return 0, down
		}
		n, err := newIssuer(t, spy).PruneUnused(ctx, time.Now().Add(-365*24*time.Hour))
		require.ErrorIs(t, err, down)
		assert.Positive(t, n, "what the first batch removed")
	})
	t.Run("nok, the store fails at once: no pruned event, a store failure", func(t *testing.T) {
		spy := newSpy()
		down := errors.New("down")
		spy.onDeleteUnused = func(context.Context, time.Time, int, func(context.Context, time.Time, int) (int, error)) (int, error) {
			return 0, down
		}
		var kinds []apitoken.Kind
		iss := newIssuer(t, spy, apitoken.WithEvents(func(_ context.Context, e apitoken.Event) { kinds = append(kinds, e.Kind) }))
		_, err := iss.PruneUnused(ctx, time.Now().Add(-365*24*time.Hour))
		require.ErrorIs(t, err, down)
		assert.NotContains(t, kinds, apitoken.KindPrunedUnused)
		assert.Contains(t, kinds, apitoken.KindStoreFailed)
	})
}

func TestExpiring(t *testing.T) {
	ctx := t.Context()
	clk := &clock{t: t0}
	spy := newSpy()
	var limits []int
	spy.onListExpiring = func(ctx context.Context, after time.Time, afterID string, before time.Time, limit int,
		next func(context.Context, time.Time, string, time.Time, int) ([]apitoken.Token, error)) ([]apitoken.Token, error) {
		limits = append(limits, limit)
		return next(ctx, after, afterID, before, limit)
	}
	iss := newIssuer(t, spy, apitoken.WithClock(clk.Now), apitoken.WithLastUseInterval(0))
	var want []string
	for i := range 600 {
		// Expiring in 1 to 10 days, in no order, across accounts.
		_, tok, err := iss.Issue(ctx, apitoken.IssueParams{AccountID: fmt.Sprintf("acct-%d", i%7), ExpiresAt: t0.Add(time.Duration(1+(i*37)%240) * time.Hour)})
		require.NoError(t, err)
		if tok.ExpiresAt.Before(t0.Add(7 * 24 * time.Hour)) {
			want = append(want, tok.ID)
		}
	}
	_, disabled, err := iss.Issue(ctx, apitoken.IssueParams{AccountID: "acme", ExpiresAt: t0.Add(time.Hour)})
	require.NoError(t, err)
	require.NoError(t, iss.Disable(ctx, "acme", disabled.ID))
	_, _, err = iss.Issue(ctx, apitoken.IssueParams{AccountID: "acme"}) // never expires
	require.NoError(t, err)
	_, gone, err := iss.Issue(ctx, apitoken.IssueParams{AccountID: "acme", ExpiresAt: t0.Add(time.Minute)})
	require.NoError(t, err)
	clk.Add(time.Minute) // gone has expired

	var got []apitoken.Token
	for tok, err := range iss.Expiring(ctx, t0.Add(7*24*time.Hour)) {
		require.NoError(t, err)
		got = append(got, tok)
	}
	require.Len(t, got, len(want), "the live tokens of every account expiring before the time")
	assert.True(t, slices.IsSortedFunc(got, func(a, b apitoken.Token) int {
		if c := a.ExpiresAt.Compare(b.ExpiresAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	}), "soonest first")
	for _, tok := range got {
		assert.NotEqual(t, disabled.ID, tok.ID, "a disabled token is not live")
		assert.NotEqual(t, gone.ID, tok.ID, "an expired token is not live")
	}
	assert.Greater(t, len(limits), 1, "read in pages")
	for _, l := range limits {
		assert.LessOrEqual(t, l, 1000, "bounded pages")
	}

	t.Run("ok, stops when the loop breaks", func(t *testing.T) {
		limits = nil
		n := 0
		for range iss.Expiring(ctx, t0.Add(7*24*time.Hour)) {
			if n++; n == 3 {
				break
			}
		}
		assert.Len(t, limits, 1, "no page read beyond the one in use")
	})
	t.Run("nok, the store fails", func(t *testing.T) {
		down := errors.New("down")
		spy.onListExpiring = func(context.Context, time.Time, string, time.Time, int,
			func(context.Context, time.Time, string, time.Time, int) ([]apitoken.Token, error)) ([]apitoken.Token, error) {
			return nil, down
		}
		var errs []error
		for _, err := range iss.Expiring(ctx, t0.Add(time.Hour)) {
			errs = append(errs, err)
		}
		require.Len(t, errs, 1)
		require.ErrorIs(t, errs[0], down)
	})
	t.Run("nok, a store without ExpiringLister", func(t *testing.T) {
		for _, err := range newIssuer(t, plainStore{memstore.New()}).Expiring(ctx, t0) {
			require.ErrorIs(t, err, errors.ErrUnsupported)
		}
	})
}

func TestAllowedIPsValidation(t *testing.T) {
	iss := newIssuer(t, memstore.New())
	many := make([]netip.Prefix, 33)
	for i := range many {
		many[i] = netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 0, byte(i), 0}), 24)
	}
	for _, tt := range []struct {
		name     string
		prefixes []netip.Prefix
		want     string
	}{
		{"nok, 33 prefixes", many, "at most 32"},
		{"nok, the zero Prefix", []netip.Prefix{{}}, "AllowedIPs[0] is not a valid prefix"},
		{"nok, host bits set", []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")}, "write it as 192.0.2.0/24"},
		{"nok, IPv4 mapped into IPv6", []netip.Prefix{netip.MustParsePrefix("::ffff:192.0.2.0/120")}, "IPv4-mapped"},
		{"nok, repeated", []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("192.0.2.0/24")}, "AllowedIPs[1] repeats"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := iss.Issue(t.Context(), apitoken.IssueParams{AccountID: "acme", AllowedIPs: tt.prefixes})
			require.ErrorIs(t, err, apitoken.ErrInvalidInput)
			assert.ErrorContains(t, err, tt.want)
		})
	}
	_, tok, err := iss.Issue(t.Context(), apitoken.IssueParams{AccountID: "acme", AllowedIPs: many[:32]})
	require.NoError(t, err, "32 prefixes")
	assert.Equal(t, many[:32], tok.AllowedIPs)
}

func TestAllowedIPsInTheMiddleware(t *testing.T) {
	ctx := t.Context()
	iss := newIssuer(t, memstore.New(), apitoken.WithLastUseInterval(0))
	office := []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("2001:db8::/32")}
	secret, _, err := iss.Issue(ctx, apitoken.IssueParams{AccountID: "acme", AllowedIPs: office})
	require.NoError(t, err)
	anywhere, _, err := iss.Issue(ctx, apitoken.IssueParams{AccountID: "acme"})
	require.NoError(t, err)

	h := iss.Middleware(okHandler)
	unknown, _ := refusalResponse(t, h, "acme", strangerSecret(t), "192.0.2.7:1234")
	for _, tt := range []struct {
		name, secret, remote string
		ok                   bool
	}{
		{"ok, from the allowed IPv4 range", secret, "192.0.2.7:1234", true},
		{"ok, from the allowed IPv6 range", secret, "[2001:db8::1]:443", true},
		{"ok, IPv4 through a dual-stack listener", secret, "[::ffff:192.0.2.9]:80", true},
		{"ok, a zone is ignored", secret, "[2001:db8::1%eth0]:443", true},
		{"nok, outside the list", secret, "198.51.100.1:1234", false},
		{"nok, no address", secret, "garbage", false},
		{"ok, a token without a list, from anywhere", anywhere, "198.51.100.1:1234", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w, ran := refusalResponse(t, h, "acme", tt.secret, tt.remote)
			assert.Equal(t, tt.ok, ran)
			if !tt.ok {
				assert.Equal(t, unknown.Code, w.Code)
				assert.Equal(t, unknown.Header(), w.Header(), "refused like an invalid token")
				assert.Equal(t, unknown.Body.String(), w.Body.String())
			}
		})
	}

	t.Run("ok, behind a proxy, with ClientAddr", func(t *testing.T) {
		proxy := netip.MustParsePrefix("10.0.0.0/8")
		g, err := iss.NewGuard(apitoken.MiddlewareConfig{ClientAddr: func(r *http.Request) (netip.Addr, bool) {
			peer, err := netip.ParseAddrPort(r.RemoteAddr)
			if err != nil || !proxy.Contains(peer.Addr()) {
				return peer.Addr(), err == nil
			}
			hops := strings.Split(r.Header.Get("X-Forwarded-For"), ",")
			a, err := netip.ParseAddr(strings.TrimSpace(hops[len(hops)-1]))
			return a, err == nil
		}})
		require.NoError(t, err)
		for _, tt := range []struct {
			name, remote, xff string
			ok                bool
		}{
			{"ok, the proxy forwards an allowed client", "10.1.1.1:5000", "203.0.113.9, 192.0.2.7", true},
			{"nok, the proxy forwards another client", "10.1.1.1:5000", "192.0.2.7, 198.51.100.1", false},
			{"nok, a client that reaches the app directly cannot forge it", "198.51.100.1:5000", "192.0.2.7", false},
		} {
			t.Run(tt.name, func(t *testing.T) {
				r := httptest.NewRequest(http.MethodGet, "/", nil)
				r.Header.Set("Authorization", "Bearer "+secret)
				r.Header.Set("X-Account-ID", "acme")
				r.Header.Set("X-Forwarded-For", tt.xff)
				r.RemoteAddr = tt.remote
				_, err := g.Authenticate(r)
				if tt.ok {
					require.NoError(t, err)
				} else {
					require.Equal(t, apitoken.ErrInvalidToken, err)
				}
			})
		}
	})

	t.Run("Verify reads the address WithClientAddr gives", func(t *testing.T) {
		_, err := iss.Verify(ctx, "acme", secret)
		require.Equal(t, apitoken.ErrInvalidToken, err, "no address: an allowlist fails closed")
		_, err = iss.Verify(apitoken.WithClientAddr(ctx, netip.MustParseAddr("192.0.2.200")), "acme", secret)
		require.NoError(t, err)
		_, err = iss.Verify(apitoken.WithClientAddr(ctx, netip.MustParseAddr("::ffff:192.0.2.200")), "acme", secret)
		require.NoError(t, err, "compared as IPv4")
		_, err = iss.Verify(apitoken.WithClientAddr(ctx, netip.MustParseAddr("192.0.3.1")), "acme", secret)
		require.Equal(t, apitoken.ErrInvalidToken, err)
		_, err = iss.Verify(apitoken.WithClientAddr(ctx, netip.Addr{}), "acme", secret)
		require.Equal(t, apitoken.ErrInvalidToken, err, "the zero Addr is no address")
		a, ok := apitoken.ClientAddrFromContext(apitoken.WithClientAddr(ctx, netip.MustParseAddr("fe80::1%eth0")))
		assert.True(t, ok)
		assert.Equal(t, netip.MustParseAddr("fe80::1"), a, "kept without its zone")
	})
	t.Run("the same token from an allowed address right after a refusal", func(t *testing.T) {
		cached := newIssuer(t, memstore.New(), apitoken.WithCache(10, time.Hour))
		s, _, err := cached.Issue(ctx, apitoken.IssueParams{AccountID: "acme", AllowedIPs: office})
		require.NoError(t, err)
		_, err = cached.Verify(apitoken.WithClientAddr(ctx, netip.MustParseAddr("198.51.100.1")), "acme", s)
		require.Equal(t, apitoken.ErrInvalidToken, err)
		_, err = cached.Verify(apitoken.WithClientAddr(ctx, netip.MustParseAddr("192.0.2.1")), "acme", s)
		require.NoError(t, err, "a refusal of one address is not remembered against the token")
	})
}

func TestLastUsedIP(t *testing.T) {
	ctx := t.Context()
	spy := newSpy()
	var mu sync.Mutex
	var writes [][]apitoken.LastUse
	spy.onRecordLastUse = func(ctx context.Context, uses []apitoken.LastUse, next func(context.Context, []apitoken.LastUse) error) error {
		mu.Lock()
		writes = append(writes, slices.Clone(uses))
		mu.Unlock()
		return next(ctx, uses)
	}
	clk := &clock{t: t0}
	iss := newIssuer(t, spy, apitoken.WithClock(clk.Now), apitoken.WithLastUseInterval(time.Minute))
	secret, tok, err := iss.Issue(ctx, apitoken.IssueParams{AccountID: "acme"})
	require.NoError(t, err)
	h := iss.Middleware(okHandler)
	for i := range 20 {
		_, ran := refusalResponse(t, h, "acme", secret, fmt.Sprintf("[2001:db8::%x]:1234", i+1))
		require.True(t, ran)
	}
	require.NoError(t, iss.Close())
	mu.Lock()
	require.Len(t, writes, 1, "twenty uses within the interval, one write")
	require.Len(t, writes[0], 1)
	assert.Equal(t, netip.MustParseAddr("2001:db8::1"), writes[0][0].IP, "the address travels with the use that is written")
	mu.Unlock()
	toks, err := newIssuer(t, spy).List(ctx, "acme")
	require.NoError(t, err)
	require.Len(t, toks, 1)
	assert.Equal(t, tok.ID, toks[0].ID)
	assert.Equal(t, netip.MustParseAddr("2001:db8::1"), toks[0].LastUsedIP)
	assert.Equal(t, t0, toks[0].LastUsedAt)
}

// TestClientAddrCalledOnlyWhenNeeded checks MiddlewareConfig.ClientAddr's
// promise: it runs for a token with AllowedIPs, and for a last use due to
// be written, not on every request.
func TestClientAddrCalledOnlyWhenNeeded(t *testing.T) {
	ctx := t.Context()
	clk := &clock{t: t0}
	iss := newIssuer(t, memstore.New(), apitoken.WithClock(clk.Now), apitoken.WithLastUseInterval(time.Minute))
	var calls atomic.Int64
	g, err := iss.NewGuard(apitoken.MiddlewareConfig{ClientAddr: func(*http.Request) (netip.Addr, bool) {
		calls.Add(1)
		return netip.MustParseAddr("192.0.2.1"), true
	}})
	require.NoError(t, err)
	plain, _, err := iss.Issue(ctx, apitoken.IssueParams{AccountID: "acme"})
	require.NoError(t, err)
	bound, _, err := iss.Issue(ctx, apitoken.IssueParams{AccountID: "acme", AllowedIPs: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}})
	require.NoError(t, err)
	auth := func(secret string) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("Authorization", "Bearer "+secret)
		r.Header.Set("X-Account-ID", "acme")
		_, err := g.Authenticate(r)
		require.NoError(t, err)
	}
	for range 10 {
		auth(plain)
	}
	assert.EqualValues(t, 1, calls.Load(), "a token without a list: once, for the one last use written in the interval")
	calls.Store(0)
	for range 10 {
		auth(bound)
	}
	assert.EqualValues(t, 10, calls.Load(), "a token with a list: on each request (and the last use reuses that address)")
}

// TestRotateRacingDisable disables the token while Rotate creates its
// successor: Rotate must not leave the paused token a working successor.
func TestRotateRacingDisable(t *testing.T) {
	ctx := t.Context()
	for _, grace := range []time.Duration{0, time.Hour} {
		t.Run(fmt.Sprint("grace ", grace), func(t *testing.T) {
			spy := newSpy()
			iss := newIssuer(t, spy, apitoken.WithLastUseInterval(0))
			secret, old, err := iss.Issue(ctx, apitoken.IssueParams{AccountID: "acme"})
			require.NoError(t, err)
			spy.onCreate = func(ctx context.Context, rec apitoken.Record, next func(context.Context, apitoken.Record) error) error {
				err := next(ctx, rec)
				require.NoError(t, iss.Disable(ctx, "acme", old.ID)) // between Rotate's read and its change
				return err
			}
			_, _, err = iss.Rotate(ctx, "acme", old.ID, grace)
			require.ErrorIs(t, err, apitoken.ErrInvalidInput)
			assert.ErrorContains(t, err, "disabled")
			spy.onCreate = nil
			toks, err := iss.List(ctx, "acme")
			require.NoError(t, err)
			require.Len(t, toks, 1, "the successor was removed")
			assert.Equal(t, old.ID, toks[0].ID)
			assert.True(t, toks[0].Disabled)
			assert.Equal(t, old.ExpiresAt, toks[0].ExpiresAt, "no grace was applied")
			_, err = iss.Verify(ctx, "acme", secret)
			require.Equal(t, apitoken.ErrInvalidToken, err)
		})
	}
}
