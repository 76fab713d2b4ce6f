package apitokenotel

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/apitoken-go/apitoken"
)

// Store returns s wrapped so that each call of the Store interface
// (Create, Lookup, List, Delete) is a span, a child of the Issuer method's
// span that makes it: apitoken.store.Create, apitoken.store.Lookup,
// apitoken.store.List, apitoken.store.Delete. The wrapper's Unwrap returns
// s, so that the Issuer finds s's optional capabilities (see
// apitoken.Capability); their calls run within the operation's span, not
// as spans of their own. A store answer (not found, duplicate) is no error
// of the span; any other error is.
func (t *Telemetry) Store(s apitoken.Store) apitoken.Store {
	return &tracedStore{next: s, t: t}
}

type tracedStore struct {
	next apitoken.Store
	t    *Telemetry
}

var _ apitoken.Store = (*tracedStore)(nil)

// Unwrap returns the wrapped store, whose capabilities the Issuer uses.
func (s *tracedStore) Unwrap() apitoken.Store { return s.next }

var clientKind = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindClient)}

func (s *tracedStore) start(ctx context.Context, name string) (context.Context, trace.Span) {
	return s.t.tracer.Start(ctx, name, clientKind...)
}

func end(span trace.Span, err error) {
	if err != nil && !errors.Is(err, apitoken.ErrNotFound) && !errors.Is(err, apitoken.ErrDuplicate) && !errors.Is(err, apitoken.ErrLimitReached) {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

func (s *tracedStore) Create(ctx context.Context, rec apitoken.Record) error {
	ctx, span := s.start(ctx, "apitoken.store.Create")
	err := s.next.Create(ctx, rec)
	end(span, err)
	return err
}

func (s *tracedStore) Lookup(ctx context.Context, h apitoken.Hash) (apitoken.Record, error) {
	ctx, span := s.start(ctx, "apitoken.store.Lookup")
	rec, err := s.next.Lookup(ctx, h)
	end(span, err)
	return rec, err
}

func (s *tracedStore) List(ctx context.Context, accountID string) ([]apitoken.Token, error) {
	ctx, span := s.start(ctx, "apitoken.store.List")
	toks, err := s.next.List(ctx, accountID)
	end(span, err)
	return toks, err
}

func (s *tracedStore) Delete(ctx context.Context, accountID, id string) error {
	ctx, span := s.start(ctx, "apitoken.store.Delete")
	err := s.next.Delete(ctx, accountID, id)
	end(span, err)
	return err
}
