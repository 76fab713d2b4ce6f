package grpcauth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/apitoken-go/apitoken"
)

// The metadata keys the interceptors read and PerRPCCredentials sends.
const (
	authorizationKey = "authorization"
	accountKey       = "x-account-id"
)

// The header names the core's default extractor reads, canonical as it
// looks them up.
var (
	authorizationHeader = http.CanonicalHeaderKey(authorizationKey)
	accountHeader       = http.CanonicalHeaderKey(accountKey)
)

// The refusals. Their messages are constants, so that no status ever holds
// anything from the call, and the same for every unauthenticated call, so
// that no caller learns whether a token exists.
var (
	errUnauthenticated = status.Error(codes.Unauthenticated, "grpcauth: missing or invalid credentials")
	errUnavailable     = status.Error(codes.Unavailable, "grpcauth: the credentials could not be checked; try again later")
)

// UnaryServerInterceptor returns an interceptor that authenticates each
// unary call by its metadata, either of
//
//	authorization: Bearer <secret>   with   x-account-id: <account id>
//	authorization: Basic base64(<account id>:<secret>)
//
// read exactly as the net/http middleware of apitoken reads the headers of
// those names (a repeated key counts as a repeated header), and calls the
// handler with the verified token in its context, where apitoken.FromContext
// finds it. Otherwise it returns, without calling the handler, a status of
// code
//
//   - Unauthenticated when there are no credentials or the token is
//     invalid, expired, deleted or of another account, with the same
//     message in every case;
//   - InvalidArgument when the credentials are malformed or ambiguous (a
//     secret without an account, two authorization values);
//   - PermissionDenied when the token lacks a scope WithMethodScopes
//     requires of the method;
//   - Unavailable when the credentials could not be checked: the store
//     failed or the call's context ended (logged, see WithLogger).
//
// No status message holds anything from the call. Methods of
// WithPublicMethods are not authenticated. It panics if iss is nil or an
// option is invalid, with an error wrapping apitoken.ErrInvalidInput.
func UnaryServerInterceptor(iss *apitoken.Issuer, opts ...Option) grpc.UnaryServerInterceptor {
	a := newAuthenticator(iss, opts)
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if a.public[info.FullMethod] {
			return handler(ctx, req)
		}
		ctx, err := a.authenticate(ctx, info.FullMethod)
		if err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

// StreamServerInterceptor returns an interceptor that authenticates each
// stream as UnaryServerInterceptor does a unary call, before the handler
// runs, and hands the handler a stream whose Context holds the verified
// token, where apitoken.FromContext finds it. It panics if iss is nil or an
// option is invalid, with an error wrapping apitoken.ErrInvalidInput.
func StreamServerInterceptor(iss *apitoken.Issuer, opts ...Option) grpc.StreamServerInterceptor {
	a := newAuthenticator(iss, opts)
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if a.public[info.FullMethod] {
			return handler(srv, ss)
		}
		ctx, err := a.authenticate(ss.Context(), info.FullMethod)
		if err != nil {
			return err
		}
		return handler(srv, &serverStream{ServerStream: ss, ctx: ctx})
	}
}

// A serverStream is a stream whose context holds the verified token.
type serverStream struct {
	grpc.ServerStream
	ctx context.Context
}

// Context returns the stream's context with the verified token.
func (s *serverStream) Context() context.Context { return s.ctx }

// An authenticator is the configuration both interceptors share.
type authenticator struct {
	guard  *apitoken.Guard
	scopes map[string]scopeRule // by full method name
	public map[string]bool
	log    *slog.Logger
}

// A scopeRule is the scopes a method requires, and the status of a token
// lacking one.
type scopeRule struct {
	required []string
	denied   error
}

func newAuthenticator(iss *apitoken.Issuer, opts []Option) *authenticator {
	guard, err := iss.NewGuard(apitoken.MiddlewareConfig{ClientAddr: peerAddr})
	if err != nil {
		panic(fmt.Errorf("grpcauth: %w", err))
	}
	c, err := newConfig(opts)
	if err != nil {
		panic(err)
	}
	a := &authenticator{guard: guard, public: c.public, log: c.log}
	for method, required := range c.scopes {
		if a.scopes == nil {
			a.scopes = make(map[string]scopeRule)
		}
		a.scopes[method] = scopeRule{required, status.Error(codes.PermissionDenied,
			"grpcauth: the access token lacks a required scope: requires "+strings.Join(required, " "))}
	}
	return a
}

// authenticate verifies the credentials in the incoming metadata of ctx and
// the scopes the method requires, and returns ctx with the token, or the
// status to refuse the call with.
func (a *authenticator) authenticate(ctx context.Context, method string) (context.Context, error) {
	tok, err := a.guard.Authenticate(request(ctx))
	switch {
	case err == nil:
	case errors.Is(err, apitoken.ErrNoCredentials), errors.Is(err, apitoken.ErrInvalidToken):
		return nil, errUnauthenticated
	case errors.Is(err, apitoken.ErrInvalidRequest):
		// The core's messages for a malformed request are constants that
		// never hold input.
		return nil, status.Error(codes.InvalidArgument, "grpcauth: malformed credentials: "+err.Error())
	default:
		log := a.log
		if log == nil {
			log = slog.Default()
		}
		log.ErrorContext(ctx, "grpcauth: credentials could not be checked", "method", method, "err", err)
		return nil, errUnavailable
	}
	rule := a.scopes[method]
	for _, s := range rule.required {
		if !tok.HasScope(s) {
			return nil, rule.denied
		}
	}
	return apitoken.NewContext(ctx, tok), nil
}

// request returns an HTTP request with the context ctx and, as headers, the
// values of the metadata keys the core's default extractor reads, each
// value a header of its own: what Guard.Authenticate needs, so that gRPC
// calls are read by the very code that reads HTTP requests.
func request(ctx context.Context) *http.Request {
	h := make(http.Header, 2)
	if v := metadata.ValueFromIncomingContext(ctx, authorizationKey); len(v) > 0 {
		h[authorizationHeader] = v
	}
	if v := metadata.ValueFromIncomingContext(ctx, accountKey); len(v) > 0 {
		h[accountHeader] = v
	}
	return (&http.Request{Method: http.MethodPost, Header: h}).WithContext(ctx)
}

// peerAddr is the Guard's ClientAddr: the address of the call's peer, the
// connection gRPC accepted, which a token with AllowedIPs must come from
// (and which its last use records). It is read only for those tokens and
// for a last use due to be written. A peer that is not an IP connection (a
// Unix socket, a bufconn) has no address: such a token is then refused.
func peerAddr(r *http.Request) (netip.Addr, bool) {
	p, ok := peer.FromContext(r.Context())
	if !ok || p.Addr == nil {
		return netip.Addr{}, false
	}
	if tcp, ok := p.Addr.(*net.TCPAddr); ok {
		a, ok := netip.AddrFromSlice(tcp.IP)
		return a, ok
	}
	ap, err := netip.ParseAddrPort(p.Addr.String())
	return ap.Addr(), err == nil
}
