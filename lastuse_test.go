package apitoken_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apitoken-go/apitoken"
	"github.com/apitoken-go/apitoken/memstore"
)

// recordingStore is a spyStore that counts the last uses written through
// it, and fails them with fail when set.
type recordingStore struct {
	*spyStore
	calls, uses atomic.Int64
}

func newRecording(fail error) *recordingStore {
	s := &recordingStore{spyStore: newSpy()}
	s.onRecordLastUse = func(ctx context.Context, uses []apitoken.LastUse, next func(context.Context, []apitoken.LastUse) error) error {
		s.calls.Add(1)
		s.uses.Add(int64(len(uses)))
		if fail != nil {
			return fail
		}
		return next(ctx, uses)
	}
	return s
}

func TestLastUse(t *testing.T) {
	t.Run("nok, options", func(t *testing.T) {
		_, err := apitoken.NewIssuer(memstore.New(), apitoken.WithLastUseInterval(time.Millisecond))
		require.ErrorIs(t, err, apitoken.ErrInvalidInput)
		_, err = apitoken.NewIssuer(memstore.New(), apitoken.WithLastUseInterval(-time.Minute))
		require.ErrorIs(t, err, apitoken.ErrInvalidInput)
		_, err = apitoken.NewIssuer(plainStore{memstore.New()}, apitoken.WithLastUseInterval(time.Minute))
		require.ErrorIs(t, err, errors.ErrUnsupported)
	})

	t.Run("ok, on by default with a store that records last uses, off with 0", func(t *testing.T) {
		for _, tt := range []struct {
			name   string
			store  apitoken.Store
			opts   []apitoken.Option
			writes int64
		}{
			{"default, every 5 minutes", newRecording(nil), nil, 2},
			{"off", newRecording(nil), []apitoken.Option{apitoken.WithLastUseInterval(0)}, 0},
			{"default with a store that cannot record: off, no error", plainStore{memstore.New()}, nil, 0},
		} {
			t.Run(tt.name, func(t *testing.T) {
				clk := &clock{t: time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)}
				iss, err := apitoken.NewIssuer(tt.store, append(tt.opts, apitoken.WithClock(clk.Now))...)
				require.NoError(t, err)
				secret, _, err := iss.Issue(t.Context(), apitoken.IssueParams{AccountID: "acme"})
				require.NoError(t, err)
				for _, after := range []time.Duration{0, 4 * time.Minute, time.Minute} {
					clk.Add(after)
					_, err = iss.Verify(t.Context(), "acme", secret)
					require.NoError(t, err)
				}
				require.NoError(t, iss.Close())
				if rs, ok := tt.store.(*recordingStore); ok {
					assert.Equal(t, tt.writes, rs.uses.Load(), "uses at 0 and 5 minutes are written, not the one at 4")
				}
			})
		}
	})

	t.Run("ok, after a failed write the next use is written, within the interval", func(t *testing.T) {
		ctx := t.Context()
		down := errors.New("database down")
		calls := make(chan error, 4)
		var failed atomic.Bool
		store := newSpy()
		store.onRecordLastUse = func(ctx context.Context, uses []apitoken.LastUse, next func(context.Context, []apitoken.LastUse) error) error {
			err := down
			if failed.Swap(true) { // the first write fails, the others go through
				err = next(ctx, uses)
			}
			calls <- err
			return err
		}
		written := func() error {
			t.Helper()
			select {
			case err := <-calls:
				return err
			case <-time.After(5 * time.Second):
				t.Fatal("no last use was written")
				return nil
			}
		}
		clk := &clock{t: time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)}
		iss, err := apitoken.NewIssuer(store, apitoken.WithLastUseInterval(5*time.Minute), apitoken.WithClock(clk.Now))
		require.NoError(t, err)
		secret, tok, err := iss.Issue(ctx, apitoken.IssueParams{AccountID: "acme"})
		require.NoError(t, err)
		_, err = iss.Verify(ctx, "acme", secret)
		require.NoError(t, err)
		require.ErrorIs(t, written(), down)
		clk.Add(30 * time.Second) // within the interval
		_, err = iss.Verify(ctx, "acme", secret)
		require.NoError(t, err)
		require.NoError(t, written(), "the use after the failure is written")
		require.ErrorIs(t, iss.Close(), down, "Close still reports the failed write")
		toks, err := store.List(ctx, "acme")
		require.NoError(t, err)
		require.Len(t, toks, 1)
		assert.Equal(t, tok.ID, toks[0].ID)
		assert.Equal(t, clk.Now(), toks[0].LastUsedAt)
	})

	t.Run("ok, 100,000 verifications of 100 tokens write each token once per interval", func(t *testing.T) {
		ctx := t.Context()
		store := newRecording(nil)
		clk := &clock{t: time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)}
		iss := newIssuer(t, store, apitoken.WithLastUseInterval(5*time.Minute), apitoken.WithClock(clk.Now))
		secrets := make([]string, 100)
		for i := range secrets {
			var err error
			secrets[i], _, err = iss.Issue(ctx, apitoken.IssueParams{AccountID: "acme"})
			require.NoError(t, err)
		}
		verifyAll := func() {
			var wg sync.WaitGroup
			for w := range 8 {
				wg.Go(func() {
					for i := w; i < 100_000; i += 8 {
						if _, err := iss.Verify(ctx, "acme", secrets[i%len(secrets)]); err != nil {
							t.Errorf("Verify: %v", err)
							return
						}
					}
				})
			}
			wg.Wait()
		}
		verifyAll()
		first := clk.Now()
		clk.Add(4 * time.Minute) // within the interval: nothing new to write
		verifyAll()
		_, err := iss.Verify(ctx, "other", secrets[0])
		require.Equal(t, apitoken.ErrInvalidToken, err, "a failed verification records nothing")
		require.NoError(t, iss.Close())
		assert.EqualValues(t, len(secrets), store.uses.Load(), "one write per token per interval")

		check := newIssuer(t, store)
		toks, err := check.List(ctx, "acme")
		require.NoError(t, err)
		for _, tok := range toks {
			assert.Equal(t, first, tok.LastUsedAt)
		}

		// A new Issuer, after the interval: each token is written again.
		clk.Add(time.Minute)
		iss = newIssuer(t, store, apitoken.WithLastUseInterval(5*time.Minute), apitoken.WithClock(clk.Now))
		verifyAll()
		require.NoError(t, iss.Close())
		assert.EqualValues(t, 2*len(secrets), store.uses.Load())
		toks, err = check.List(ctx, "acme")
		require.NoError(t, err)
		assert.Equal(t, clk.Now(), toks[0].LastUsedAt)
	})

	t.Run("nok, a failed write fails no request, and Close reports it", func(t *testing.T) {
		errDown := errors.New("database is down")
		store := newRecording(errDown)
		iss := newIssuer(t, store, apitoken.WithLastUseInterval(time.Minute))
		secret, _, err := iss.Issue(t.Context(), apitoken.IssueParams{AccountID: "acme"})
		require.NoError(t, err)
		_, err = iss.Verify(t.Context(), "acme", secret)
		require.NoError(t, err)
		require.ErrorIs(t, iss.Close(), errDown)
		assert.EqualValues(t, 1, store.calls.Load())
	})

	t.Run("ok, after Close every method returns ErrClosed", func(t *testing.T) {
		iss := newIssuer(t, memstore.New(), apitoken.WithLastUseInterval(time.Minute))
		secret, tok, err := iss.Issue(t.Context(), apitoken.IssueParams{AccountID: "acme"})
		require.NoError(t, err)
		require.NoError(t, iss.Close())
		require.NoError(t, iss.Close(), "Close twice")
		ctx := t.Context()
		_, err = iss.Verify(ctx, "acme", secret)
		assert.ErrorIs(t, err, apitoken.ErrClosed)
		_, _, err = iss.Issue(ctx, apitoken.IssueParams{AccountID: "acme"})
		assert.ErrorIs(t, err, apitoken.ErrClosed)
		_, err = iss.List(ctx, "acme")
		assert.ErrorIs(t, err, apitoken.ErrClosed)
		assert.ErrorIs(t, iss.Delete(ctx, "acme", tok.ID), apitoken.ErrClosed)
		_, _, err = iss.Rotate(ctx, "acme", tok.ID, 0)
		assert.ErrorIs(t, err, apitoken.ErrClosed)
		_, err = iss.DeleteAll(ctx, "acme")
		assert.ErrorIs(t, err, apitoken.ErrClosed)
		_, err = iss.Prune(ctx, time.Now())
		assert.ErrorIs(t, err, apitoken.ErrClosed)
	})
}

// BenchmarkVerifyLastUse compares Verify on memstore without and with last
// uses recorded (the default interval of 5 minutes), over tokens verified
// in turn, and reports the store writes per 100,000 verifications.
func BenchmarkVerifyLastUse(b *testing.B) {
	for _, n := range []int{100, 100_000} {
		for _, tt := range []struct {
			name string
			opts []apitoken.Option
		}{
			{"lastuse=off", []apitoken.Option{apitoken.WithLastUseInterval(0)}},
			{"lastuse=on", nil},
		} {
			b.Run(fmt.Sprintf("tokens=%d/%s", n, tt.name), func(b *testing.B) {
				store := newRecording(nil)
				iss, err := apitoken.NewIssuer(store, tt.opts...)
				require.NoError(b, err)
				secrets := make([]string, n)
				for i := range secrets {
					secrets[i], _, err = iss.Issue(b.Context(), apitoken.IssueParams{AccountID: "acme"})
					require.NoError(b, err)
				}
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					if _, err := iss.Verify(b.Context(), "acme", secrets[i%len(secrets)]); err != nil {
						b.Fatal(err)
					}
					i++
				}
				b.StopTimer()
				require.NoError(b, iss.Close())
				b.ReportMetric(float64(store.uses.Load())*100_000/float64(b.N), "writes/100k")
			})
		}
	}
}
