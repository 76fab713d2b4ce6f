package grpcauth

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/apitoken-go/apitoken"
)

// An Option configures UnaryServerInterceptor and StreamServerInterceptor.
// An invalid option makes them panic with an error wrapping
// apitoken.ErrInvalidInput that says what is wrong: it is a programming
// error, found when the server is built rather than when a call slips
// through.
type Option func(*config) error

// config is what the options set.
type config struct {
	scopes map[string][]string // full method name → required scopes
	public map[string]bool     // full method names that skip authentication
	log    *slog.Logger        // nil: slog.Default() at the time of a failure
}

// Limits of a scope, as apitoken.IssueParams has them.
const maxScopeLen = 64

// WithMethodScopes makes each method of scopes, named by its full name as
// gRPC gives it ("/package.Service/Method"), require every one of its
// scopes: a verified token lacking one is refused with
// codes.PermissionDenied. A method that is not listed, or is listed with no
// scopes, needs only a verified token. It may be given more than once, for
// different methods. A method name that is not of the form
// /Service/Method, a method already given scopes or made public, and a
// scope that no token can have (not 1 to 64 printable ASCII characters
// without space, '"' or '\', as apitoken.IssueParams requires) are
// invalid.
//
// A handler can instead check a scope itself with Token.HasScope, on the
// token that apitoken.FromContext returns, for a rule that depends on the
// request.
func WithMethodScopes(scopes map[string][]string) Option {
	return func(c *config) error {
		for method, required := range scopes {
			if err := checkMethod(method); err != nil {
				return err
			}
			if _, dup := c.scopes[method]; dup {
				return invalid("WithMethodScopes: %s is given scopes twice", method)
			}
			for i, s := range required {
				if !validScope(s) {
					return invalid("WithMethodScopes: scope %d of %s must be 1 to %d printable ASCII characters without space, '\"' or '\\'",
						i, method, maxScopeLen)
				}
			}
			if c.scopes == nil {
				c.scopes = make(map[string][]string)
			}
			c.scopes[method] = slices.Clip(slices.Clone(required))
		}
		return nil
	}
}

// WithPublicMethods lets calls of the methods named, by their full names
// ("/grpc.health.v1.Health/Check"), through to the handler without
// authentication: their credentials, if any, are not read, and their
// context has no token. It serves health checks and server reflection. It
// may be given more than once. A method name that is not of the form
// /Service/Method, and a method given scopes, are invalid.
func WithPublicMethods(methods ...string) Option {
	return func(c *config) error {
		for _, method := range methods {
			if err := checkMethod(method); err != nil {
				return err
			}
			if c.public == nil {
				c.public = make(map[string]bool)
			}
			c.public[method] = true
		}
		return nil
	}
}

// WithLogger sets the logger that receives the failures to check
// credentials (the store failed, or the call's context ended), at Error
// level: "grpcauth: credentials could not be checked", with the method and
// the error, never anything from the call's metadata. Without it, or with a
// nil logger, they go to slog.Default() at the time of the failure.
func WithLogger(log *slog.Logger) Option {
	return func(c *config) error {
		c.log = log
		return nil
	}
}

// newConfig applies opts and checks what no single option can: a method
// both public and scoped.
func newConfig(opts []Option) (*config, error) {
	c := &config{}
	for _, opt := range opts {
		if opt == nil {
			return nil, invalid("nil Option")
		}
		if err := opt(c); err != nil {
			return nil, err
		}
	}
	for method := range c.public {
		if _, ok := c.scopes[method]; ok {
			return nil, invalid("%s is both public and given scopes", method)
		}
	}
	return c, nil
}

// checkMethod reports a name that gRPC never gives a method: its full name
// is "/" + service + "/" + method, neither part empty, with no white space
// or control character.
func checkMethod(name string) error {
	service, method, ok := strings.Cut(strings.TrimPrefix(name, "/"), "/")
	if !strings.HasPrefix(name, "/") || !ok || service == "" || method == "" || strings.Contains(method, "/") ||
		strings.ContainsFunc(name, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return invalid("method name %q is not of the form /package.Service/Method", name)
	}
	return nil
}

// validScope reports whether s is a scope a token can have: an RFC 6749
// scope-token of at most 64 bytes, the rule of apitoken.IssueParams.
func validScope(s string) bool {
	if s == "" || len(s) > maxScopeLen {
		return false
	}
	for i := range len(s) {
		if c := s[i]; c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// invalid returns an error wrapping apitoken.ErrInvalidInput:
// "grpcauth: apitoken: invalid input: " and the formatted reason.
func invalid(format string, args ...any) error {
	return fmt.Errorf("grpcauth: %w: "+format, append([]any{apitoken.ErrInvalidInput}, args...)...)
}
