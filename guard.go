package apitoken

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
)

// A Guard authenticates HTTP requests for one MiddlewareConfig: it is what
// NewMiddleware builds, for framework adapters that need its parts apart.
// Authenticate reads and verifies a request's credentials with the
// configured Extractor, WriteError answers a refusal exactly as the
// middleware does, and Middleware is the net/http middleware itself. A Guard
// is immutable and safe for concurrent use. Make one with Issuer.NewGuard.
type Guard struct {
	iss      *Issuer
	extract  Extractor
	onError  func(w http.ResponseWriter, r *http.Request, err error)
	log      *slog.Logger
	optional bool
	skip     func(*http.Request) bool
	addr     func(*http.Request) (netip.Addr, bool)

	// What the extractor reads, found once by probing it (schemes.go).
	reads *probe

	// Challenges of the default ErrorHandler, precomputed for the realm.
	bare, invalidToken, invalidRequest, insufficientScope string
	// basic is the Basic challenge that every 401 also carries when the
	// extractor reads Basic credentials, "" otherwise.
	basic string
	// bodyUnsupported answers an Authorization scheme the extractor does
	// not read: it names the accepted ones.
	bodyUnsupported []byte
}

// Format prints the Guard as its type alone, for every verb and flag: it
// holds an Issuer, with its hash keys and cache.
func (g *Guard) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, "apitoken.Guard{}") }

// LogValue makes log/slog, with any handler, print nothing of the Guard but
// its type, as Format does.
func (g *Guard) LogValue() slog.Value { return slog.StringValue("apitoken.Guard{}") }

// defaultGuard answers for RequireScope when no middleware ran.
var defaultGuard = newGuard(nil, MiddlewareConfig{})

func newGuard(iss *Issuer, cfg MiddlewareConfig) *Guard {
	realm := cfg.Realm
	if realm == "" {
		realm = defaultRealm
	}
	bare := `Bearer realm="` + realm + `"`
	extract := cfg.Extractor
	if extract == nil {
		extract = defaultExtractor
	}
	reads := describe(extract)
	g := &Guard{
		iss:               iss,
		extract:           extract,
		reads:             reads,
		bodyUnsupported:   problem(http.StatusUnauthorized, reads.accepted()),
		onError:           cfg.ErrorHandler,
		log:               cfg.Logger,
		optional:          cfg.Optional,
		skip:              cfg.Skip,
		addr:              cfg.ClientAddr,
		bare:              bare,
		invalidToken:      bare + `, error="invalid_token"`,
		invalidRequest:    bare + `, error="invalid_request"`,
		insufficientScope: bare + `, error="insufficient_scope"`,
	}
	if reads.reads("basic") {
		// RFC 7617 §2.1: the charset parameter tells clients to encode the
		// user-id and password as UTF-8.
		g.basic = `Basic realm="` + realm + `", charset="UTF-8"`
	}
	if g.addr == nil {
		g.addr = remoteAddr
	}
	if g.onError == nil {
		g.onError = g.writeError
	}
	return g
}

// NewGuard returns the Guard of cfg. A bad realm, a nil Issuer, or an
// extractor of this package configured with an invalid header name or
// scheme (FromBearer("X Account"), FromScheme("basic", "")), also inside
// Chain, is an error wrapping ErrInvalidInput.
func (iss *Issuer) NewGuard(cfg MiddlewareConfig) (*Guard, error) {
	if iss == nil {
		return nil, fmt.Errorf("%w: Issuer is nil", ErrInvalidInput)
	}
	if err := checkRealm(cfg.Realm); err != nil {
		return nil, err
	}
	g := newGuard(iss, cfg)
	if err := g.reads.err; err != nil {
		return nil, err
	}
	return g, nil
}

// Middleware calls next for each request whose credentials verify, with the
// Token in the request context, and answers the others with WriteError; a
// request that the config's Skip matches, or one without credentials when
// the config is Optional, reaches next with no token.
func (g *Guard) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if g.skip != nil && g.skip(r) {
			next.ServeHTTP(w, r)
			return
		}
		tok, err := authenticate(g.iss, g, r)
		if err != nil {
			if g.optional && errors.Is(err, ErrNoCredentials) {
				next.ServeHTTP(w, r)
				return
			}
			g.WriteError(w, r, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(&principal{Context: r.Context(), tok: tok, g: g}))
	})
}

// Authenticate reads the credentials of r with the configured Extractor and
// verifies them as the middleware does, without writing a response, for
// framework adapters. It returns the token, or ErrNoCredentials (whether or
// not the config is Optional: the caller decides), an error wrapping
// ErrInvalidRequest, an error wrapping ErrInvalidToken, or any other error
// when the credentials could not be checked (answer that one with 503, as
// WriteError does). Skip is not consulted.
func (g *Guard) Authenticate(r *http.Request) (Token, error) {
	return authenticate(g.iss, g, r)
}

// WriteError answers a request that Authenticate (or a scope check) refused,
// with err as it returned it, exactly as the middleware would: a failure to
// check the credentials is logged to the config's Logger, and the response
// is written by the config's ErrorHandler, or by default with the status,
// WWW-Authenticate challenge and problem body of the table in the package
// documentation (401, 400, 403 or 503).
func (g *Guard) WriteError(w http.ResponseWriter, r *http.Request, err error) {
	if !refusal(err) {
		log := g.log
		if log == nil {
			log = slog.Default()
		}
		log.ErrorContext(r.Context(), "apitoken: credentials could not be checked", "err", err)
	}
	g.onError(w, r, err)
}
