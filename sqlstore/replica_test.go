package sqlstore

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken-go/apitoken"
)

func TestWithReplicaRefused(t *testing.T) {
	_, db, _ := newMockStore(t, Postgres)
	for _, tc := range []struct {
		name string
		opt  Option
	}{
		{"nil replica", WithReplica(nil, time.Second)},
		{"lag under 1ms", WithReplica(db, time.Microsecond)},
		{"negative fallbacks", WithReplicaFallbacks(-1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(db, Postgres, tc.opt)
			require.ErrorIs(t, err, apitoken.ErrInvalidInput)
			assert.Nil(t, s)
		})
	}
	s, err := New(db, Postgres)
	require.NoError(t, err)
	assert.Zero(t, s.ReplicaStats(), "no replica, no reads counted")
}

func TestFallbackLimit(t *testing.T) {
	now := time.Now()
	l := fallbackLimit{perSecond: 2, tokens: 2}
	assert.True(t, l.allow(now))
	assert.True(t, l.allow(now))
	assert.False(t, l.allow(now), "the burst is spent")
	assert.True(t, l.allow(now.Add(500*time.Millisecond)), "one more after half a second")
	assert.False(t, l.allow(now.Add(500*time.Millisecond)))
	assert.True(t, l.allow(now.Add(time.Hour)))
	assert.True(t, l.allow(now.Add(time.Hour)))
	assert.False(t, l.allow(now.Add(time.Hour)), "never more than the burst")
	none := fallbackLimit{}
	assert.False(t, none.allow(now), "0 a second: none")
}
