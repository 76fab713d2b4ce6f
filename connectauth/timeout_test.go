package connectauth_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestClientTimeout reads the deadline a client sends, in Connect-Timeout-Ms
// or Grpc-Timeout, into the context of the check, and ignores a malformed
// one.
func TestClientTimeout(t *testing.T) {
	fx := newFixture(t)
	iss, store := failing(t, errDBDown)
	s := serve(t, iss, nil, nil)
	const none = time.Duration(-1)
	tests := []struct {
		name   string
		header http.Header
		want   time.Duration // none: no deadline
	}{
		{"nok, no timeout", nil, none},
		{"ok, Connect-Timeout-Ms", http.Header{"Connect-Timeout-Ms": {"5000"}}, 5 * time.Second},
		{"ok, Connect-Timeout-Ms of 10 digits", http.Header{"Connect-Timeout-Ms": {"0000007000"}}, 7 * time.Second},
		{"ok, Grpc-Timeout in seconds", http.Header{"Grpc-Timeout": {"3S"}}, 3 * time.Second},
		{"ok, Grpc-Timeout in milliseconds", http.Header{"Grpc-Timeout": {"2000m"}}, 2 * time.Second},
		{"ok, Grpc-Timeout in microseconds", http.Header{"Grpc-Timeout": {"4000000u"}}, 4 * time.Second},
		{"ok, Grpc-Timeout in nanoseconds", http.Header{"Grpc-Timeout": {"90000000n"}}, 90 * time.Millisecond},
		{"ok, Grpc-Timeout in minutes", http.Header{"Grpc-Timeout": {"2M"}}, 2 * time.Minute},
		{"ok, Grpc-Timeout in hours", http.Header{"Grpc-Timeout": {"1H"}}, time.Hour},
		{"ok, both: the shorter, Grpc-Timeout", http.Header{"Connect-Timeout-Ms": {"5000"}, "Grpc-Timeout": {"2S"}}, 2 * time.Second},
		{"ok, both: the shorter, Connect-Timeout-Ms", http.Header{"Connect-Timeout-Ms": {"1000"}, "Grpc-Timeout": {"3S"}}, time.Second},
		{"ok, a malformed one beside a valid one", http.Header{"Connect-Timeout-Ms": {"x"}, "Grpc-Timeout": {"3S"}}, 3 * time.Second},
		{"nok, Connect-Timeout-Ms not a number", http.Header{"Connect-Timeout-Ms": {"abc"}}, none},
		{"nok, Connect-Timeout-Ms negative", http.Header{"Connect-Timeout-Ms": {"-5"}}, none},
		{"nok, Connect-Timeout-Ms signed", http.Header{"Connect-Timeout-Ms": {"+5000"}}, none},
		{"nok, Connect-Timeout-Ms of 11 digits", http.Header{"Connect-Timeout-Ms": {"12345678901"}}, none},
		{"nok, Connect-Timeout-Ms twice", http.Header{"Connect-Timeout-Ms": {"5000", "6000"}}, none},
		{"nok, Grpc-Timeout without unit", http.Header{"Grpc-Timeout": {"5"}}, none},
		{"nok, Grpc-Timeout with an unknown unit", http.Header{"Grpc-Timeout": {"5s"}}, none},
		{"nok, Grpc-Timeout without digits", http.Header{"Grpc-Timeout": {"S"}}, none},
		{"nok, Grpc-Timeout of 9 digits", http.Header{"Grpc-Timeout": {"123456789m"}}, none},
		{"nok, Grpc-Timeout past what a Duration holds", http.Header{"Grpc-Timeout": {"99999999H"}}, none},
		{"nok, Grpc-Timeout twice", http.Header{"Grpc-Timeout": {"1S", "2S"}}, none},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := bearer(fx.secret, acctA)
			c.header = tt.header
			store.deadline.Store(-2)
			_, err, called := s.call(t.Context(), t, protocols[0], procWho, c)
			require.NotNil(t, err)
			assert.Equal(t, connect.CodeUnavailable, err.Code())
			assert.False(t, called)
			got := time.Duration(store.deadline.Load())
			if tt.want == none {
				assert.Equal(t, none, got, "no deadline")
				return
			}
			assert.LessOrEqual(t, got, tt.want)
			assert.Greater(t, got, tt.want-time.Second/2)
		})
	}

	// The deadline of a real client's context reaches the check, in every
	// protocol.
	for _, p := range protocols {
		t.Run("ok, the deadline of a "+p.name+" client", func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			store.deadline.Store(-2)
			_, err, _ := s.call(ctx, t, p, procWho, bearer(fx.secret, acctA))
			require.NotNil(t, err)
			assert.Equal(t, connect.CodeUnavailable, err.Code())
			got := time.Duration(store.deadline.Load())
			assert.LessOrEqual(t, got, 30*time.Second)
			assert.Greater(t, got, 29*time.Second)
		})
	}
}

// TestDeadline refuses with CodeUnavailable a call whose check outlives the
// client's deadline, in every protocol, without running the handler.
func TestDeadline(t *testing.T) {
	fx := newFixture(t)
	iss, store := failing(t, nil) // Lookup waits for the context to end
	s := serve(t, iss, nil, nil)
	for _, p := range protocols {
		t.Run("nok, "+p.name, func(t *testing.T) {
			c := bearer(fx.secret, acctA)
			c.header = http.Header{"Connect-Timeout-Ms": {"50"}, "Grpc-Timeout": {"50m"}}
			lookups := store.lookups.Load()
			logs := len(s.logs.String())
			start := time.Now()
			_, err, called := s.call(t.Context(), t, p, procWho, c)
			require.NotNil(t, err)
			assert.Equal(t, connect.CodeUnavailable, err.Code())
			assert.Equal(t, msgUnavailable, err.Message())
			assert.False(t, called, "the handler never runs")
			assert.Less(t, time.Since(start), 5*time.Second, "the deadline ended the check")
			assert.Equal(t, lookups+1, store.lookups.Load())
			newLogs := s.logs.String()[logs:]
			assert.Equal(t, 1, strings.Count(newLogs, msgLogged))
			assert.Contains(t, newLogs, context.DeadlineExceeded.Error())
			assertNoSecretLogged(t, newLogs, fx.secrets())
		})
	}
}
