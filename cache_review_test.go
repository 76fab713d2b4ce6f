package apitoken_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/apitoken-go/apitoken"
	"github.com/apitoken-go/apitoken/memstore"
)

// A Verify that begins after Delete returned must not join a lookup that
// began before it (README: "also while a lookup for it is under way").
func TestCacheVerifyAfterDeleteDoesNotJoinEarlierLookup(t *testing.T) {
	env := newCacheEnv(t)
	n := env.node(t, false)
	secret, tok := n.issue(t, apitoken.IssueParams{AccountID: "acme"})
	release := n.store.pause()
	defer release()
	first := make(chan error, 1)
	go func() { _, err := n.iss.Verify(context.Background(), "acme", secret); first <- err }()
	require.Eventually(t, func() bool { return n.store.paused.Load() == 1 }, time.Second, time.Millisecond)
	require.NoError(t, n.iss.Delete(t.Context(), "acme", tok.ID))
	second := make(chan error, 1)
	go func() { _, err := n.iss.Verify(context.Background(), "acme", secret); second <- err }()
	require.Eventually(t, func() bool { return n.store.paused.Load() == 2 }, time.Second, time.Millisecond,
		"a Verify begun after Delete must make its own lookup")
	release()
	<-first
	require.ErrorIs(t, <-second, apitoken.ErrInvalidToken)
}

// ambiguousDelete deletes, then reports a failure (a commit whose answer was lost).
type ambiguousDelete struct{ *memstore.Store }

func (s ambiguousDelete) Delete(ctx context.Context, a, id string) error {
	if err := s.Store.Delete(ctx, a, id); err != nil {
		return err
	}
	return context.DeadlineExceeded
}

// A Delete whose store call fails after it took effect must not leave the
// token cached.
func TestCacheForgetsOnAnAmbiguousDelete(t *testing.T) {
	st := ambiguousDelete{memstore.New()}
	iss, err := apitoken.NewIssuer(st, apitoken.WithCache(10, time.Hour))
	require.NoError(t, err)
	defer iss.Close()
	secret, tok, err := iss.Issue(t.Context(), apitoken.IssueParams{AccountID: "acme"})
	require.NoError(t, err)
	_, err = iss.Verify(t.Context(), "acme", secret)
	require.NoError(t, err)
	require.Error(t, iss.Delete(t.Context(), "acme", tok.ID))
	left, _ := st.List(t.Context(), "acme")
	require.Empty(t, left, "gone from the store")
	_, err = iss.Verify(t.Context(), "acme", secret)
	require.ErrorIs(t, err, apitoken.ErrInvalidToken)
}

// shrinkingStore: its first 10 SetExpiry calls find that a concurrent Rotate
// shortened the expiry first (it does so itself, then fails the
// compare-and-set).
type shrinkingStore struct {
	*memstore.Store
	until  time.Time
	losses int
}

func (s *shrinkingStore) SetExpiry(ctx context.Context, a, id string, from, to time.Time) error {
	if s.losses == 10 {
		return s.Store.SetExpiry(ctx, a, id, from, to)
	}
	s.losses++
	s.until = s.until.Add(-time.Minute)
	if err := s.Store.SetExpiry(ctx, a, id, from, s.until); err != nil {
		return err
	}
	return s.Store.SetExpiry(ctx, a, id, from, to) // from is stale now: ErrNotFound
}

// Rotate keeps going while concurrent Rotates keep shortening the expiry:
// each lost compare-and-set is progress.
func TestRotateUnderContention(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	st := &shrinkingStore{Store: memstore.New(), until: now.Add(10 * time.Hour)}
	iss, err := apitoken.NewIssuer(st, apitoken.WithClock(func() time.Time { return now }), apitoken.WithLastUseInterval(0))
	require.NoError(t, err)
	_, tok, err := iss.Issue(t.Context(), apitoken.IssueParams{AccountID: "acme"})
	require.NoError(t, err)
	_, _, err = iss.Rotate(t.Context(), "acme", tok.ID, time.Hour)
	require.NoError(t, err, "10 lost compare-and-sets in a row")
	toks, err := iss.List(t.Context(), "acme")
	require.NoError(t, err)
	require.Equal(t, now.Add(time.Hour), toks[0].ExpiresAt, "the grace holds")
}
