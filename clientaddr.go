package apitoken

import (
	"context"
	"net/http"
	"net/netip"
)

// A token with AllowedIPs verifies only from a client address in them. The
// address comes, in this order of preference:
//
//   - in the middleware and Guard.Authenticate, from MiddlewareConfig's
//     ClientAddr function, by default the request's RemoteAddr (the
//     connection's peer), or else the address WithClientAddr put in the
//     request's context;
//   - in Verify, from the address WithClientAddr put in ctx, which adapters
//     outside net/http set from their own connection (a gRPC peer).
//
// A token with AllowedIPs verified where no address is known is refused,
// like one from an address outside them: an allowlist fails closed.

// clientAddrKey is the context key of WithClientAddr's address.
type clientAddrKey struct{}

// WithClientAddr returns a copy of ctx that carries the address a request
// came from, for Verify to check against a token's AllowedIPs and to record
// as its LastUsedIP. Adapters that call Verify outside the net/http
// middleware set it from their connection's peer; never from a header the
// client sends (see MiddlewareConfig.ClientAddr).
func WithClientAddr(ctx context.Context, addr netip.Addr) context.Context {
	return context.WithValue(ctx, clientAddrKey{}, normalAddr(addr))
}

// ClientAddrFromContext returns the address WithClientAddr put in ctx, and
// whether there is one.
func ClientAddrFromContext(ctx context.Context) (netip.Addr, bool) {
	if ctx == nil {
		return netip.Addr{}, false
	}
	a, ok := ctx.Value(clientAddrKey{}).(netip.Addr)
	return a, ok && a.IsValid()
}

// remoteAddr is MiddlewareConfig.ClientAddr's default: the address of
// r.RemoteAddr ("host:port", as net/http sets it, or a bare address), or
// else the one WithClientAddr put in r's context.
func remoteAddr(r *http.Request) (netip.Addr, bool) {
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		return ap.Addr(), true
	}
	if a, err := netip.ParseAddr(r.RemoteAddr); err == nil {
		return a, true
	}
	return ClientAddrFromContext(r.Context())
}

// normalAddr is an address as it is compared and recorded: an IPv4 address
// mapped into IPv6 (a dual-stack listener's ::ffff:192.0.2.1) as IPv4, and
// without an IPv6 zone.
func normalAddr(a netip.Addr) netip.Addr {
	return a.Unmap().WithZone("")
}

// clientAddr is where a verification finds its client's address, read only
// when a token needs it: from r through fn in the middleware, from the
// context otherwise.
type clientAddr struct {
	r      *http.Request
	fn     func(*http.Request) (netip.Addr, bool)
	traced bool // verify runs inside the tracer's span already
}

func (c clientAddr) get(ctx context.Context) (netip.Addr, bool) {
	var a netip.Addr
	var ok bool
	if c.r != nil {
		a, ok = c.fn(c.r)
	} else {
		a, ok = ClientAddrFromContext(ctx)
	}
	if !ok || !a.IsValid() {
		return netip.Addr{}, false
	}
	return normalAddr(a), true
}

// addrAllowed reports whether addr is in one of the prefixes.
func addrAllowed(prefixes []netip.Prefix, addr netip.Addr) bool {
	for _, p := range prefixes {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}
