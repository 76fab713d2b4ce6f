package apitoken

import (
	"context"
	"slices"
)

// principalKey is the context key of the verified token: unexported, so
// that only this package can set it.
type principalKey struct{}

// A principal is the request context the middleware hands on: the parent
// context with the verified token and the Guard, whose realm and
// ErrorHandler RequireScope answers with (nil for NewContext's: the
// defaults). Being the context itself saves the allocation of a
// context.WithValue on every request.
type principal struct {
	context.Context
	tok Token
	g   *Guard
}

// Value returns p for principalKey and asks the parent for any other key
// (so that context.WithCancel still finds the parent's cancellation).
func (p *principal) Value(key any) any {
	if key == (principalKey{}) {
		return p
	}
	return p.Context.Value(key)
}

// guard returns the Guard that answers for p: the middleware's, or the
// default one for a context made by NewContext.
func (p *principal) guard() *Guard {
	if p.g == nil {
		return defaultGuard
	}
	return p.g
}

func principalFrom(ctx context.Context) *principal {
	if ctx == nil {
		return nil
	}
	p, _ := ctx.Value(principalKey{}).(*principal)
	return p
}

// NewContext returns a copy of ctx that carries tok, where FromContext finds
// it and RequireScope checks it, for adapters that verify a token outside
// the net/http middleware (a gRPC interceptor, a Gin handler). Only put a
// token there that Verify or Authenticate returned. tok's Scopes are copied.
// A nil ctx panics, as with context.WithValue.
func NewContext(ctx context.Context, tok Token) context.Context {
	if ctx == nil {
		panic("apitoken: NewContext with a nil parent context")
	}
	tok.Scopes = slices.Clip(slices.Clone(tok.Scopes))
	return &principal{Context: ctx, tok: tok}
}

// FromContext returns the token the middleware verified for this request
// (or that NewContext put there), and whether there is one: false on any
// other context. Its Scopes and AllowedIPs are copies. It never panics.
func FromContext(ctx context.Context) (Token, bool) {
	p := principalFrom(ctx)
	if p == nil {
		return Token{}, false
	}
	tok := p.tok
	tok.Scopes = slices.Clip(slices.Clone(tok.Scopes))
	tok.AllowedIPs = slices.Clip(slices.Clone(tok.AllowedIPs))
	return tok, true
}
