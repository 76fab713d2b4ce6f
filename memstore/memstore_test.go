package memstore_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken-go/apitoken"
	"github.com/apitoken-go/apitoken/memstore"
	"github.com/apitoken-go/apitoken/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) apitoken.Store { return memstore.New() })
}

// Deleting the last token of an account drops the account's index; the
// account must then behave as one that never had tokens.
func TestDeleteLastTokenOfAccount(t *testing.T) {
	ctx := t.Context()
	s := memstore.New()
	newRecord := func(h byte) apitoken.Record {
		return apitoken.Record{
			Token: apitoken.Token{ID: uuid.Must(uuid.NewV7()).String(), AccountID: "acme", CreatedAt: time.Now().UTC().Truncate(time.Microsecond)},
			Hash:  apitoken.Hash{h},
		}
	}
	first := newRecord(1)
	require.NoError(t, s.Create(ctx, first))
	require.NoError(t, s.Delete(ctx, "acme", first.ID))

	toks, err := s.List(ctx, "acme")
	require.NoError(t, err)
	assert.Empty(t, toks, "an account whose last token was deleted lists nothing")
	require.ErrorIs(t, s.Delete(ctx, "acme", first.ID), apitoken.ErrNotFound)

	second := newRecord(2)
	require.NoError(t, s.Create(ctx, second), "the account takes new tokens")
	toks, err = s.List(ctx, "acme")
	require.NoError(t, err)
	require.Len(t, toks, 1)
	assert.Equal(t, second.ID, toks[0].ID)
	require.NoError(t, s.Delete(ctx, "acme", second.ID))
}

func TestFormatShowsNoRecords(t *testing.T) {
	s := memstore.New()
	var h apitoken.Hash
	for i := range h {
		h[i] = 0xab
	}
	require.NoError(t, s.Create(context.Background(), apitoken.Record{Token: apitoken.Token{ID: "id1", AccountID: "acme"}, Hash: h}))
	var logs bytes.Buffer
	slog.New(slog.NewTextHandler(&logs, nil)).Info("store", "s", s)
	for _, out := range []string{fmt.Sprintf("%v", s), fmt.Sprintf("%+v", s), fmt.Sprintf("%#v", s), logs.String()} {
		assert.Contains(t, out, "memstore.Store(1 tokens)")
		assert.NotContains(t, out, "171", "the hash bytes must not print")
		assert.NotContains(t, out, "acme")
	}
}

// The Store keeps its tokens without a pointer each, so that garbage
// collections do not slow down with the number of tokens: 10,000 tokens make
// under a thousand heap objects (about 80, the maps' inner tables), where a
// *Record per token made five or more each.
func TestFewHeapObjects(t *testing.T) {
	const n = 10_000
	objects := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapObjects
	}
	before := objects()
	s := memstore.New()
	for i := range n {
		rec := apitoken.Record{
			Token: apitoken.Token{
				ID: uuid.Must(uuid.NewV7()).String(), AccountID: fmt.Sprintf("acct-%d", i/10), Name: "key",
				Scopes: []string{"read"}, CreatedAt: time.Now().UTC().Truncate(time.Microsecond),
			},
			Hash: apitoken.Hash{byte(i), byte(i >> 8)},
		}
		require.NoError(t, s.Create(t.Context(), rec))
	}
	after := objects()
	runtime.KeepAlive(s)
	assert.Less(t, int64(after)-int64(before), int64(n/10), "heap objects held by %d tokens", n)
}
