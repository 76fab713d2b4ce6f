package connectauth

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"connectrpc.com/connect"

	"github.com/apitoken-go/apitoken"
)

// An Option configures NewMiddleware. An invalid option makes NewMiddleware
// return an error wrapping apitoken.ErrInvalidInput that says what is
// wrong.
type Option func(*config) error

// config is what the options set.
type config struct {
	scopes  map[string][]string // procedure → required scopes
	public  map[string]bool     // procedures served without authentication
	log     *slog.Logger        // nil: slog.Default() at the time of a failure
	handler []connect.HandlerOption
}

// Limits of a scope, as apitoken.IssueParams has them.
const maxScopeLen = 64

// WithProcedureScopes makes each procedure of scopes, named as Connect
// names it ("/package.Service/Method", the Procedure constants of generated
// code), require every one of its scopes: a verified token lacking one is
// refused with connect.CodePermissionDenied. A procedure that is not listed,
// or is listed with no scopes, needs only a verified token. A procedure's
// scopes apply to every request whose path ends with the procedure name, so
// they hold also for a handler mounted under a prefix. It may be given more
// than once, for different procedures. A procedure name that is not of the
// form /Service/Method, a procedure already given scopes or made public, and
// a scope that no token can have (not 1 to 64 printable ASCII characters
// without space, '"' or '\', as apitoken.IssueParams requires) are invalid.
//
// A handler can instead check a scope itself with Token.HasScope, on the
// token that apitoken.FromContext returns, for a rule that depends on the
// request.
func WithProcedureScopes(scopes map[string][]string) Option {
	return func(c *config) error {
		for proc, required := range scopes {
			if err := checkProcedure(proc); err != nil {
				return err
			}
			if _, dup := c.scopes[proc]; dup {
				return invalid("WithProcedureScopes: %s is given scopes twice", proc)
			}
			for i, s := range required {
				if !validScope(s) {
					return invalid("WithProcedureScopes: scope %d of %s must be 1 to %d printable ASCII characters without space, '\"' or '\\'",
						i, proc, maxScopeLen)
				}
			}
			if c.scopes == nil {
				c.scopes = make(map[string][]string)
			}
			c.scopes[proc] = slices.Clip(slices.Clone(required))
		}
		return nil
	}
}

// WithPublicProcedures lets requests for the procedures named
// ("/grpc.health.v1.Health/Check") through to the handler without
// authentication: their credentials, if any, are not read, and their
// context has no token. A request is public only when its URL path is
// exactly the procedure name, unescaped: a handler mounted under a prefix
// must be wrapped inside the http.StripPrefix. It serves health checks and
// server reflection. It may be given more than once. A procedure name that
// is not of the form /Service/Method, and a procedure given scopes, are
// invalid.
func WithPublicProcedures(procedures ...string) Option {
	return func(c *config) error {
		for _, proc := range procedures {
			if err := checkProcedure(proc); err != nil {
				return err
			}
			if c.public == nil {
				c.public = make(map[string]bool)
			}
			c.public[proc] = true
		}
		return nil
	}
}

// WithLogger sets the logger that receives the failures to check
// credentials (the store failed, or the request's context or the client's
// deadline ended), at Error level: "connectauth: credentials could not be
// checked", with the error, never anything from the request. Without it,
// or with a nil logger, they go to slog.Default() at the time of the
// failure.
func WithLogger(log *slog.Logger) Option {
	return func(c *config) error {
		c.log = log
		return nil
	}
}

// WithHandlerOptions gives the middleware the options of the Connect
// handlers it protects, for its connect.ErrorWriter to recognize their
// requests as they do: with connect.WithRequireConnectProtocolHeader, a GET
// without the connect=v1 query parameter or a JSON POST without the
// Connect-Protocol-Version header is not a Connect request, and is refused
// with the plain HTTP answer of apitoken. It may be given more than once.
func WithHandlerOptions(opts ...connect.HandlerOption) Option {
	return func(c *config) error {
		if slices.Contains(opts, nil) {
			return invalid("WithHandlerOptions: nil HandlerOption")
		}
		c.handler = append(c.handler, opts...)
		return nil
	}
}

// newConfig applies opts and checks what no single option can: a procedure
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
	for proc := range c.public {
		if _, ok := c.scopes[proc]; ok {
			return nil, invalid("%s is both public and given scopes", proc)
		}
	}
	return c, nil
}

// checkProcedure reports a name that Connect never gives a procedure:
// "/" + service + "/" + method, neither part empty, with no white space or
// control character.
func checkProcedure(name string) error {
	service, method, ok := strings.Cut(strings.TrimPrefix(name, "/"), "/")
	if !strings.HasPrefix(name, "/") || !ok || service == "" || method == "" || strings.Contains(method, "/") ||
		strings.ContainsFunc(name, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return invalid("procedure name %q is not of the form /package.Service/Method", name)
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
// "connectauth: apitoken: invalid input: " and the formatted reason.
func invalid(format string, args ...any) error {
	return fmt.Errorf("connectauth: %w: "+format, append([]any{apitoken.ErrInvalidInput}, args...)...)
}
