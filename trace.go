package apitoken

import (
	"context"
	"errors"
	"fmt"
)

// A Tracer is told when each Issuer method begins and ends, to trace it as
// a span: package apitokenotel implements it for OpenTelemetry. It must be
// safe for concurrent use.
type Tracer interface {
	// Start is called as op begins, with the caller's context. The context
	// it returns is the one op runs in: its store calls, its events and
	// End get it, so that a span started here is their parent.
	Start(ctx context.Context, op Op) context.Context
	// End is called once, as op returns, with the context Start returned
	// and the error op returns (nil on success; ErrInvalidToken for a
	// refused Verify, whose reason the KindRefused event tells).
	End(ctx context.Context, op Op, err error)
}

// WithTracer has the Issuer call t around Issue, Verify, List, Rotate,
// Delete, DeleteAll, DeleteMember, Disable, Enable, RevokeSecret, Prune and
// PruneUnused (not around Inspect, Expiring, Status or Stats). Without it,
// the Issuer makes no call for tracing.
func WithTracer(t Tracer) Option {
	return func(c *config) error {
		if t == nil {
			return fmt.Errorf("%w: tracer is nil", ErrInvalidInput)
		}
		c.tracer = t
		return nil
	}
}

// begin starts op for the tracer, if there is one, and returns the context
// op runs in.
func (iss *Issuer) begin(ctx context.Context, op Op) context.Context {
	if iss.tracer == nil {
		return ctx
	}
	return iss.tracer.Start(ctx, op)
}

// end reports the store failure *err may be (KindStoreFailed) and ends op
// for the tracer. The methods other than Verify defer it.
func (iss *Issuer) end(ctx context.Context, op Op, accountID, tokenID string, err *error) {
	if *err != nil && iss.observed() && isStoreFailure(*err) {
		iss.emit(ctx, Event{Kind: KindStoreFailed, Op: op, AccountID: accountID, TokenID: tokenID, Err: *err, At: iss.now()})
	}
	if iss.tracer != nil {
		iss.tracer.End(ctx, op, *err)
	}
}

// isStoreFailure reports whether err, returned by an Issuer method, is a
// failure of the store (or of the context of its call) rather than an
// answer: invalid input, not found, a limit, a capability the store lacks.
func isStoreFailure(err error) bool {
	for _, answer := range []error{ErrInvalidInput, ErrNotFound, ErrLimitReached, ErrClosed, ErrInvalidToken, errors.ErrUnsupported} {
		if errors.Is(err, answer) {
			return false
		}
	}
	return true
}
