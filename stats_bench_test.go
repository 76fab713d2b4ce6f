package apitoken_test

import (
	"context"
	"testing"

	"github.com/apitoken-go/apitoken"
)

// BenchmarkVerifyObserved measures what the events and the tracer cost
// Verify of a valid token: case=plain has neither (what every Verify
// pays, the Stats counters included), case=noop-hook a WithEvents hook
// that does nothing, case=noop-tracer a WithTracer that does nothing, each
// on its own Issuer over the fixture's store, without last uses (so that
// whether a background write has landed yet changes nothing). Compare the
// ratios to case=plain, in one run.
func BenchmarkVerifyObserved(b *testing.B) {
	ctx := context.Background()
	f := fixtureOf(b, 1000)
	cases := []struct {
		name string
		opts []apitoken.Option
	}{
		{"plain", nil},
		{"noop-hook", []apitoken.Option{apitoken.WithEvents(func(context.Context, apitoken.Event) {})}},
		{"noop-tracer", []apitoken.Option{apitoken.WithTracer(noopTracer{})}},
	}
	for _, c := range cases {
		iss, err := apitoken.NewIssuer(f.store, append([]apitoken.Option{apitoken.WithHashKey(benchHashKey), apitoken.WithLastUseInterval(0)}, c.opts...)...)
		if err != nil {
			b.Fatal(err)
		}
		b.Run("case="+c.name, func(b *testing.B) {
			i := 0
			for b.Loop() {
				p := f.next(&i)
				if tok, err := iss.Verify(ctx, p.account, p.secret); err != nil || tok.AccountID != p.account {
					b.Fatalf("Verify: %v", err)
				}
			}
		})
		b.Run("case="+c.name+"-refused", func(b *testing.B) {
			i := 0
			for b.Loop() {
				p := f.next(&i)
				if _, err := iss.Verify(ctx, p.other, p.secret); err != apitoken.ErrInvalidToken {
					b.Fatalf("Verify with another account: %v", err)
				}
			}
		})
		_ = iss.Close()
	}
}

type noopTracer struct{}

func (noopTracer) Start(ctx context.Context, _ apitoken.Op) context.Context { return ctx }
func (noopTracer) End(context.Context, apitoken.Op, error)                  {}
