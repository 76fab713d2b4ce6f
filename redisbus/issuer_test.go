package redisbus_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/apitoken-go/apitoken"
	"github.com/apitoken-go/apitoken/memstore"
	"github.com/apitoken-go/apitoken/redisbus"
)

// invalidationBound is how soon a deletion on one instance must reach the
// cache of another over the bus, on a loopback server.
const invalidationBound = 2 * time.Second

// newInstance returns the Issuer of one instance of an app over the shared
// store: a cache that keeps tokens for an hour, and, unless bus is nil, that
// Bus (on a client of its own).
func newInstance(t testing.TB, store apitoken.Store, bus apitoken.Bus, opts ...apitoken.Option) *apitoken.Issuer {
	t.Helper()
	opts = append([]apitoken.Option{apitoken.WithCache(1000, time.Hour)}, opts...)
	var l *listened
	if bus != nil {
		l = &listened{Bus: bus, listening: make(chan struct{})}
		opts = append(opts, apitoken.WithCacheBus(l))
	}
	iss, err := apitoken.NewIssuer(store, opts...)
	require.NoError(t, err)
	// Registered after the Bus's Close, so run before it.
	t.Cleanup(func() { require.NoError(t, iss.Close()) })
	if l != nil {
		select {
		case <-l.listening:
		case <-time.After(wait):
			t.Fatalf("the Issuer's Bus does not listen after %v", wait)
		}
	}
	return iss
}

// issue issues a token on iss and verifies it on every instance, so that
// each caches it.
func issue(t testing.TB, iss *apitoken.Issuer, account string, all ...*apitoken.Issuer) (secret string, tok apitoken.Token) {
	t.Helper()
	secret, tok, err := iss.Issue(context.Background(), apitoken.IssueParams{AccountID: account, Name: "redisbus test"})
	require.NoError(t, err)
	for _, other := range all {
		_, err := other.Verify(context.Background(), account, secret)
		require.NoError(t, err, "a token just issued must verify on every instance")
	}
	return secret, tok
}

// refusedWithin polls iss.Verify every millisecond until it refuses the
// token, and returns how long that took; it fails the test after bound.
func refusedWithin(t testing.TB, iss *apitoken.Issuer, account, secret string, bound time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		_, err := iss.Verify(context.Background(), account, secret)
		if errors.Is(err, apitoken.ErrInvalidToken) {
			return time.Since(start)
		}
		require.NoError(t, err, "Verify must accept or refuse, not fail")
		if time.Since(start) > bound {
			t.Fatalf("the other instance still accepts the deleted token after %v", bound)
		}
		time.Sleep(time.Millisecond)
	}
}

// listened wraps a Bus to tell when the Issuer's Subscribe first listens:
// a token cached before that would be dropped by the first deliver(nil),
// and a message published before would be missed, so that a test could
// pass for the wrong reason.
type listened struct {
	apitoken.Bus
	once      sync.Once
	listening chan struct{}
}

func (l *listened) Subscribe(ctx context.Context, deliver func(msg []byte)) error {
	return l.Bus.Subscribe(ctx, l.wrap(deliver))
}

// SubscribeReporting passes the Bus's lost connections on, so that the
// Issuer's Stats see them as with the Bus itself.
func (l *listened) SubscribeReporting(ctx context.Context, deliver func(msg []byte), lost func(error)) error {
	return l.Bus.(apitoken.ReportingBus).SubscribeReporting(ctx, l.wrap(deliver), lost)
}

func (l *listened) wrap(deliver func(msg []byte)) func(msg []byte) {
	return func(msg []byte) {
		deliver(msg)
		if msg == nil {
			l.once.Do(func() { close(l.listening) })
		}
	}
}

// Two instances, each with its own client, cache and Bus, over one store:
// what one deletes, the other stops accepting within invalidationBound,
// although its cache would keep the token for an hour.
func TestIssuersShareInvalidations(t *testing.T) {
	addr := redisAddr(t)

	t.Run("ok, delete on A, refused on B", func(t *testing.T) {
		store, ch := memstore.New(), redisbus.WithChannel(newChannel(t))
		a, b := newInstance(t, store, newBus(t, addr, ch)), newInstance(t, store, newBus(t, addr, ch))
		account := "acct_delete"
		secret, tok := issue(t, a, account, a, b)

		start := time.Now()
		require.NoError(t, a.Delete(t.Context(), account, tok.ID))
		deleted := time.Since(start)
		_, err := a.Verify(t.Context(), account, secret)
		require.ErrorIs(t, err, apitoken.ErrInvalidToken, "the instance that deleted the token must refuse it at once")
		delay := refusedWithin(t, b, account, secret, invalidationBound)
		t.Logf("Delete took %v; B refused the token %v after Delete returned (bound %v, polled every 1ms)", deleted, delay, invalidationBound)
	})

	t.Run("ok, delete all on B, refused on A", func(t *testing.T) {
		store, ch := memstore.New(), redisbus.WithChannel(newChannel(t))
		a, b := newInstance(t, store, newBus(t, addr, ch)), newInstance(t, store, newBus(t, addr, ch))
		account := "acct_delete_all"
		secret1, _ := issue(t, a, account, a, b)
		secret2, _ := issue(t, b, account, a, b)

		start := time.Now()
		n, err := b.DeleteAll(t.Context(), account)
		require.NoError(t, err)
		require.Equal(t, 2, n)
		deleted := time.Since(start)
		for _, secret := range []string{secret1, secret2} {
			_, err := b.Verify(t.Context(), account, secret)
			require.ErrorIs(t, err, apitoken.ErrInvalidToken, "the instance that deleted the tokens must refuse them at once")
		}
		delay := refusedWithin(t, a, account, secret1, invalidationBound)
		t.Logf("DeleteAll took %v; A refused the first token %v after DeleteAll returned (bound %v)", deleted, delay, invalidationBound)
		_, err = a.Verify(t.Context(), account, secret2)
		require.ErrorIs(t, err, apitoken.ErrInvalidToken)
	})

	// The control: without a bus, B's cache keeps the deleted token, so the
	// subtests above would fail if the bus carried nothing.
	t.Run("nok, control: without a bus, B keeps accepting", func(t *testing.T) {
		store := memstore.New()
		a, b := newInstance(t, store, nil), newInstance(t, store, nil)
		account := "acct_control"
		secret, tok := issue(t, a, account, a, b)
		require.NoError(t, a.Delete(t.Context(), account, tok.ID))
		_, err := a.Verify(t.Context(), account, secret)
		require.ErrorIs(t, err, apitoken.ErrInvalidToken)
		deadline := time.Now().Add(200 * time.Millisecond)
		for time.Now().Before(deadline) {
			_, err := b.Verify(t.Context(), account, secret)
			require.NoError(t, err, "without a bus, B's cache (TTL one hour) must still accept the deleted token: if not, WithCache does not cache, and the subtests above prove nothing")
			time.Sleep(time.Millisecond)
		}
	})
}
