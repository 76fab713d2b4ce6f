package connectauth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"connectrpc.com/connect"

	"github.com/apitoken-go/apitoken"
)

// The refusals of Connect, gRPC and gRPC-Web requests. Their messages are
// constants, so that no error ever holds anything from the request, and the
// same for every unauthenticated request, so that no caller learns whether
// a token exists. The ErrorWriter only reads them: they are shared.
var (
	errUnauthenticated = connect.NewError(connect.CodeUnauthenticated,
		errors.New("connectauth: missing or invalid credentials"))
	errUnavailable = connect.NewError(connect.CodeUnavailable,
		errors.New("connectauth: the credentials could not be checked; try again later"))
)

// errScope is what the plain HTTP answer of a token lacking a scope gets:
// 403 with error="insufficient_scope".
var errScope = fmt.Errorf("connectauth: %w", apitoken.ErrInsufficientScope)

// NewMiddleware returns net/http middleware for Connect handlers: it
// authenticates each request before the body is read, either of
//
//	Authorization: Bearer <secret>   with   X-Account-ID: <account id>
//	Authorization: Basic base64(<account id>:<secret>)
//
// read by the Authenticate of an apitoken.Guard, as the net/http middleware
// of apitoken reads them, and calls next with the verified token in the
// request context, where apitoken.FromContext finds it in the Connect
// handler. Otherwise it answers without calling next, with a Connect error
// in the client's protocol (Connect, gRPC or gRPC-Web, written by
// connect.ErrorWriter) of code
//
//   - CodeUnauthenticated when there are no credentials or the token is
//     invalid, expired, deleted or of another account, with the same
//     message in every case;
//   - CodeInvalidArgument when the credentials are malformed or ambiguous
//     (a secret without an account, two Authorization headers, a token in
//     the URL query);
//   - CodePermissionDenied when the token lacks a scope WithProcedureScopes
//     requires of the procedure;
//   - CodeUnavailable when the credentials could not be checked: the store
//     failed, or the request's context or the client's deadline
//     (Connect-Timeout-Ms, Grpc-Timeout), which bounds the check, ended
//     (logged, see WithLogger).
//
// No error message holds anything from the request. A request in none of
// those protocols (connect.ErrorWriter.IsSupported is false: a CORS
// preflight, a plain HTTP route behind the same middleware) is refused with
// the plain HTTP answer of apitoken, Guard.WriteError's: 401, 400, 403 or
// 503 with a WWW-Authenticate challenge and an application/problem+json
// body. Procedures of WithPublicProcedures are not authenticated.
//
// Wrap the handler whose request paths are procedure names, the
// http.ServeMux the Connect handlers are mounted on: put the middleware
// inside any http.StripPrefix, and any CORS middleware outside it (a
// preflight carries no credentials). A nil Issuer or an invalid option is
// an error wrapping apitoken.ErrInvalidInput.
func NewMiddleware(iss *apitoken.Issuer, opts ...Option) (func(http.Handler) http.Handler, error) {
	c, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	// The middleware logs the failures itself, in every protocol: the
	// Guard's plain HTTP answer must not log them again.
	guard, err := iss.NewGuard(apitoken.MiddlewareConfig{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return nil, fmt.Errorf("connectauth: %w", err)
	}
	a := &authenticator{
		guard:  guard,
		errors: connect.NewErrorWriter(c.handler...),
		public: c.public,
		log:    c.log,
	}
	for proc, required := range c.scopes {
		if len(required) == 0 {
			continue
		}
		if a.scopes == nil {
			a.scopes = make(map[string]scopeRule)
		}
		a.scopes[proc] = scopeRule{required, connect.NewError(connect.CodePermissionDenied,
			errors.New("connectauth: the access token lacks a required scope: requires "+strings.Join(required, " ")))}
	}
	return a.middleware, nil
}

// An authenticator is what NewMiddleware's middleware runs.
type authenticator struct {
	guard  *apitoken.Guard
	errors *connect.ErrorWriter
	scopes map[string]scopeRule // by procedure
	public map[string]bool
	log    *slog.Logger
}

// A scopeRule is the scopes a procedure requires, and the Connect error of
// a token lacking one.
type scopeRule struct {
	required []string
	denied   *connect.Error
}

func (a *authenticator) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var path string
		if r.URL != nil {
			path = r.URL.Path
			// An escaped path could be routed elsewhere than the
			// procedure it unescapes to: it is never public.
			if r.URL.RawPath == "" && a.public[path] {
				next.ServeHTTP(w, r)
				return
			}
		}
		tok, err := a.authenticate(r)
		if err != nil {
			a.refuse(w, r, err, nil)
			return
		}
		if rule, ok := a.scopes[procedure(path)]; ok {
			for _, s := range rule.required {
				if !tok.HasScope(s) {
					a.refuse(w, r, errScope, rule.denied)
					return
				}
			}
		}
		next.ServeHTTP(w, r.WithContext(apitoken.NewContext(r.Context(), tok)))
	})
}

// authenticate verifies the credentials of r, within the client's deadline
// when it sent one.
func (a *authenticator) authenticate(r *http.Request) (apitoken.Token, error) {
	if d, ok := clientTimeout(r.Header); ok {
		ctx, cancel := context.WithTimeout(r.Context(), d)
		defer cancel()
		r = r.WithContext(ctx)
	}
	return a.guard.Authenticate(r)
}

// refuse answers a refused request: with cerr, or the Connect error of err
// when cerr is nil, in the client's RPC protocol, or with the Guard's plain
// HTTP answer to err when the request is in none. A failure to check the
// credentials is logged first.
func (a *authenticator) refuse(w http.ResponseWriter, r *http.Request, err error, cerr *connect.Error) {
	if cerr == nil {
		switch {
		case errors.Is(err, apitoken.ErrNoCredentials), errors.Is(err, apitoken.ErrInvalidToken):
			cerr = errUnauthenticated
		case errors.Is(err, apitoken.ErrInvalidRequest):
			// The core's messages for a malformed request are constants
			// that never hold input.
			cerr = connect.NewError(connect.CodeInvalidArgument, errors.New("connectauth: malformed credentials: "+err.Error()))
		default:
			log := a.log
			if log == nil {
				log = slog.Default()
			}
			log.ErrorContext(r.Context(), "connectauth: credentials could not be checked", "err", err)
			cerr = errUnavailable
		}
	}
	if !a.errors.IsSupported(r) {
		a.guard.WriteError(w, r, err)
		return
	}
	_ = a.errors.Write(w, r, cerr) // the client went away: nothing to do
}

// procedure returns the last two segments of path, "/Service/Method", or ""
// when it has no such suffix.
func procedure(path string) string {
	i := strings.LastIndexByte(path, '/')
	if i <= 0 || i == len(path)-1 {
		return ""
	}
	j := strings.LastIndexByte(path[:i], '/')
	if j < 0 || j == i-1 {
		return ""
	}
	return path[j:]
}
