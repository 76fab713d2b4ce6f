package sqlstore

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken-go/apitoken"
)

func TestNewBusRefused(t *testing.T) {
	s, db, _ := newMockStore(t, Postgres)
	for _, tc := range []struct {
		name  string
		store *Store
		opts  []BusOption
	}{
		{"nil store", nil, nil},
		{"store made by WithTx", s.WithTx(db), nil},
		{"nil option", s, []BusOption{nil}},
		{"poll interval under 1ms", s, []BusOption{WithPollInterval(time.Microsecond)}},
		{"poll interval over 1m", s, []BusOption{WithPollInterval(2 * time.Minute)}},
		{"look-back of 0", s, []BusOption{WithLookBack(0)}},
		{"retention of 0", s, []BusOption{WithRetention(0)}},
		{"look-back under the poll interval", s, []BusOption{WithPollInterval(time.Second), WithLookBack(time.Millisecond)}},
		{"retention under the look-back", s, []BusOption{WithLookBack(time.Minute), WithRetention(time.Second)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := NewBus(tc.store, tc.opts...)
			require.ErrorIs(t, err, apitoken.ErrInvalidInput)
			assert.Nil(t, b)
		})
	}
	b, err := NewBus(s)
	require.NoError(t, err)
	assert.Equal(t, DefaultPollInterval, b.interval)
	assert.Equal(t, DefaultLookBack, b.lookBack)
	assert.Equal(t, DefaultRetention, b.retained)
	require.NoError(t, b.Close())
}

// TestSubscriptionAdvance: the ids skipped over are looked for until the
// look-back ends; beyond maxGaps, the subscription says it may miss ids.
func TestSubscriptionAdvance(t *testing.T) {
	now := time.Now()
	newSub := func() *subscription {
		return &subscription{bus: &Bus{lookBack: time.Minute}, gaps: make(map[int64]time.Time)}
	}
	t.Run("ids in order", func(t *testing.T) {
		s := newSub()
		for id := int64(1); id <= 3; id++ {
			assert.True(t, s.advance(id, now))
		}
		assert.False(t, s.advance(2, now), "seen")
		assert.Empty(t, s.gaps)
	})
	t.Run("an id skipped over is new when it comes, once", func(t *testing.T) {
		s := newSub()
		assert.True(t, s.advance(1, now))
		assert.True(t, s.advance(4, now))
		assert.Equal(t, map[int64]time.Time{2: now.Add(time.Minute), 3: now.Add(time.Minute)}, s.gaps)
		assert.True(t, s.advance(3, now))
		assert.False(t, s.advance(3, now))
		assert.Len(t, s.gaps, 1)
		assert.False(t, s.overflow)
	})
	t.Run("too many gaps", func(t *testing.T) {
		s := newSub()
		assert.True(t, s.advance(maxGaps+5, now))
		assert.Len(t, s.gaps, maxGaps)
		assert.True(t, s.overflow)
	})
}
