package apitoken_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken-go/apitoken"
	"github.com/apitoken-go/apitoken/memstore"
)

func TestPreviousHashKeys(t *testing.T) {
	ctx := t.Context()
	oldKey, newKey, otherKey := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32), bytes.Repeat([]byte{3}, 32)

	t.Run("nok, options", func(t *testing.T) {
		_, err := apitoken.NewIssuer(memstore.New(), apitoken.WithPreviousHashKeys(oldKey, []byte("short")))
		require.ErrorIs(t, err, apitoken.ErrInvalidInput)
		_, err = apitoken.NewIssuer(plainStore{memstore.New()}, apitoken.WithPreviousHashKeys(oldKey))
		require.ErrorIs(t, err, errors.ErrUnsupported)
	})

	spy := newSpy()
	// Last use off: the tests compare tokens right after a Verify, whose
	// background write would change LastUsedAt meanwhile.
	before := newIssuer(t, spy, apitoken.WithHashKey(oldKey), apitoken.WithLastUseInterval(0))
	secret, tok, err := before.Issue(ctx, apitoken.IssueParams{AccountID: "acme"})
	require.NoError(t, err)

	t.Run("nok, without the previous key the token fails closed", func(t *testing.T) {
		_, err := newIssuer(t, spy, apitoken.WithHashKey(newKey)).Verify(ctx, "acme", secret)
		assert.Equal(t, apitoken.ErrInvalidToken, err)
	})

	after := newIssuer(t, spy, apitoken.WithHashKey(newKey), apitoken.WithPreviousHashKeys(otherKey, oldKey), apitoken.WithLastUseInterval(0))
	t.Run("ok, the first use finds it under the previous key and moves it", func(t *testing.T) {
		_, err := after.Verify(ctx, "another account", secret)
		require.Equal(t, apitoken.ErrInvalidToken, err, "another account's use does not count, nor move it")
		_, err = before.Verify(ctx, "acme", secret)
		require.NoError(t, err, "not moved by a refused use")

		calls := spy.calls.Load()
		got, err := after.Verify(ctx, "acme", secret)
		require.NoError(t, err)
		assert.Equal(t, tok, got)
		assert.EqualValues(t, 3, spy.calls.Load()-calls, "one lookup per key: new, other, old")
	})
	t.Run("ok, from then on one lookup, and the old key finds nothing", func(t *testing.T) {
		calls := spy.calls.Load()
		_, err := after.Verify(ctx, "acme", secret)
		require.NoError(t, err)
		assert.EqualValues(t, 1, spy.calls.Load()-calls)
		_, err = before.Verify(ctx, "acme", secret)
		assert.Equal(t, apitoken.ErrInvalidToken, err, "the token is under the new key now")
		_, err = newIssuer(t, spy, apitoken.WithHashKey(newKey)).Verify(ctx, "acme", secret)
		assert.NoError(t, err, "the previous key is no longer needed for it")
	})
	t.Run("nok, an unknown secret is refused after one lookup per key", func(t *testing.T) {
		stranger, _, err := newIssuer(t, memstore.New()).Issue(ctx, apitoken.IssueParams{AccountID: "acme"})
		require.NoError(t, err)
		calls := spy.calls.Load()
		_, err = after.Verify(ctx, "acme", stranger)
		assert.Equal(t, apitoken.ErrInvalidToken, err)
		assert.EqualValues(t, 3, spy.calls.Load()-calls)
	})
	t.Run("nok, a store failure is a system error, not a refusal", func(t *testing.T) {
		errDown := errors.New("database is down")
		failing := newSpy()
		iss := newIssuer(t, failing, apitoken.WithHashKey(newKey), apitoken.WithPreviousHashKeys(oldKey))
		secret, _, err := newIssuer(t, failing, apitoken.WithHashKey(oldKey)).Issue(ctx, apitoken.IssueParams{AccountID: "acme"})
		require.NoError(t, err)
		failing.failWith = errDown
		_, err = iss.Verify(ctx, "acme", secret)
		require.ErrorIs(t, err, errDown)
		assert.NotErrorIs(t, err, apitoken.ErrInvalidToken)
	})
}
