package redisbus_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/apitoken-go/apitoken"
	"github.com/apitoken-go/apitoken/memstore"
	"github.com/apitoken-go/apitoken/redisbus"
)

// BenchmarkPropagation measures, per delete, how long a token deleted
// through instance A stays in the cache of instance B, which would keep it
// for an hour: from the start of A's Delete to the moment B's Issuer has
// applied the message (B then refuses the token, which is checked). It
// reports the median, the 90th percentile and the maximum; run it with
// -benchtime=200x for 200 deletes.
func BenchmarkPropagation(b *testing.B) {
	addr := redisAddr(b)
	store, ch := memstore.New(), redisbus.WithChannel(newChannel(b))
	applied := &stamped{Bus: newBus(b, addr, ch), at: make(chan time.Time, 16)}
	a, other := newInstance(b, store, newBus(b, addr, ch)), newInstance(b, store, applied)
	ctx := context.Background()
	const account = "acct_bench"
	delays := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		secret, tok := issue(b, a, account, other)
		b.StartTimer()
		start := time.Now()
		if err := a.Delete(ctx, account, tok.ID); err != nil {
			b.Fatal(err)
		}
		select {
		case at := <-applied.at:
			delays = append(delays, at.Sub(start))
		case <-time.After(invalidationBound):
			b.Fatalf("B did not hear of the delete within %v", invalidationBound)
		}
		if _, err := other.Verify(ctx, account, secret); !errors.Is(err, apitoken.ErrInvalidToken) {
			b.Fatalf("B's Verify of the deleted token after the message: %v, want ErrInvalidToken", err)
		}
	}
	b.StopTimer()
	reportDelays(b, delays)
}

// stamped wraps a Bus to tell when the Issuer has applied each message:
// when its deliver returned.
type stamped struct {
	apitoken.Bus
	at chan time.Time
}

func (s *stamped) Subscribe(ctx context.Context, deliver func(msg []byte)) error {
	return s.Bus.Subscribe(ctx, func(msg []byte) {
		deliver(msg)
		if msg != nil {
			s.at <- time.Now()
		}
	})
}

// reportDelays reports the median, 90th percentile and maximum of delays,
// in microseconds, in place of ns/op.
func reportDelays(b *testing.B, delays []time.Duration) {
	slices.Sort(delays)
	at := func(q float64) float64 {
		return float64(delays[int(q*float64(len(delays)-1))]) / float64(time.Microsecond)
	}
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(at(0.5), "µs-median")
	b.ReportMetric(at(0.9), "µs-p90")
	b.ReportMetric(at(1), "µs-max")
}

// BenchmarkPublish measures one Publish of an invalidation's size, with
// one subscriber listening on the channel.
func BenchmarkPublish(b *testing.B) {
	addr := redisAddr(b)
	ch := redisbus.WithChannel(newChannel(b))
	pub, sub := newBus(b, addr, ch), newBus(b, addr, ch)
	ctx, cancel := context.WithCancel(context.Background())
	listening := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		first := true
		done <- sub.Subscribe(ctx, func(msg []byte) {
			if msg == nil && first {
				first = false
				close(listening)
			}
		})
	}()
	b.Cleanup(func() {
		cancel()
		<-done
	})
	<-listening
	msg := make([]byte, 50) // a token's invalidation: 3 bytes, an account id, a UUID
	msg[0] = 1
	for b.Loop() {
		if err := pub.Publish(ctx, msg); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDelete measures Issuer.Delete on memstore with a cache, without
// and with the Bus (one more instance listening), so that their ratio is
// the cost the Bus adds to a Delete.
func BenchmarkDelete(b *testing.B) {
	addr := redisAddr(b)
	for _, withBus := range []bool{false, true} {
		b.Run(map[bool]string{false: "no bus", true: "bus"}[withBus], func(b *testing.B) {
			store := memstore.New()
			var a *apitoken.Issuer
			if withBus {
				ch := redisbus.WithChannel(newChannel(b))
				a = newInstance(b, store, newBus(b, addr, ch))
				newInstance(b, store, newBus(b, addr, ch))
			} else {
				a = newInstance(b, store, nil)
			}
			ctx := context.Background()
			const account = "acct_bench"
			for b.Loop() {
				b.StopTimer()
				_, tok := issue(b, a, account)
				b.StartTimer()
				if err := a.Delete(ctx, account, tok.ID); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
