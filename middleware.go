package apitoken

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
)

// MiddlewareConfig configures NewMiddleware. The zero value is the
// configuration of Issuer.Middleware.
type MiddlewareConfig struct {
	// Extractor finds the credentials. Nil means
	// Chain(FromBearer("X-Account-ID"), FromBasic()).
	Extractor Extractor

	// Realm names the protected space in WWW-Authenticate challenges; ""
	// means "api". It is at most 64 bytes of printable ASCII without '"'
	// or '\'.
	Realm string

	// ErrorHandler writes the whole response when a request is refused; it
	// receives an error to test with errors.Is: ErrNoCredentials,
	// ErrInvalidRequest, ErrInvalidToken, ErrInsufficientScope (from
	// RequireScope), or any other error for a failure to check the
	// credentials (the store failed, the request's context ended). Nil means
	// the default: an RFC 6750 challenge (on a 401, followed by a Basic one
	// when the Extractor reads Basic credentials) and a short
	// application/problem+json body that never echoes the request, with
	// Cache-Control: no-store; 401, 400, 401, 403 and 503 respectively. A
	// request whose Authorization header uses a scheme the Extractor does
	// not read gets an error wrapping ErrNoCredentials, answered with 401
	// and a body naming the accepted forms.
	ErrorHandler func(w http.ResponseWriter, r *http.Request, err error)

	// Logger receives failures to check credentials, at Error level
	// ("apitoken: credentials could not be checked", "err", err). Nothing
	// from the request is logged. Nil means slog.Default() at the time of
	// the failure.
	Logger *slog.Logger

	// Optional lets a request that carries no credentials at all through
	// to the handler, with no token in its context (FromContext reports
	// false), for endpoints that serve everyone and serve more to
	// authenticated callers. An Authorization header of a scheme the
	// Extractor does not read counts as no credentials here (another layer
	// may read it), and is not audited. Credentials that are there are
	// still checked:
	// an invalid token is refused with 401, a malformed request with 400 and
	// a store failure with 503, as without Optional. False (the default)
	// refuses a request without credentials with 401.
	Optional bool

	// Skip, when not nil and it returns true for a request, lets that
	// request through to the handler untouched: its credentials, if any,
	// are not read, and its context has no token. It serves requests that
	// must pass before authentication, such as a CORS preflight:
	//
	//	Skip: func(r *http.Request) bool {
	//		return r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""
	//	},
	//
	// It runs on every request, so keep it cheap, and make it match only
	// what a client cannot use to reach protected content. Nil (the
	// default) skips nothing.
	Skip func(r *http.Request) bool

	// ClientAddr returns the address a request comes from, which a token
	// with AllowedIPs must be in, and which is recorded as its LastUsedIP;
	// false when it is unknown (a token with AllowedIPs is then refused).
	// It is called only for tokens that need it: those with AllowedIPs, and
	// a last use due to be written. Nil means the connection's peer, from
	// RemoteAddr (or else the address WithClientAddr put in the request's
	// context).
	//
	// Behind a reverse proxy or load balancer, RemoteAddr is the proxy's:
	// set ClientAddr to read the client's address from what your proxy
	// adds. X-Forwarded-For and Forwarded are written by the client unless
	// your proxy replaces them, and a client that reaches the app directly
	// can send any value: trust them only from your proxies' addresses, and
	// take the last entry your proxy appended, never the first:
	//
	//	ClientAddr: func(r *http.Request) (netip.Addr, bool) {
	//		peer, err := netip.ParseAddrPort(r.RemoteAddr)
	//		if err != nil || !proxies.Contains(peer.Addr()) {
	//			return peer.Addr(), err == nil // not through the proxy
	//		}
	//		hops := strings.Split(r.Header.Get("X-Forwarded-For"), ",")
	//		a, err := netip.ParseAddr(strings.TrimSpace(hops[len(hops)-1]))
	//		return a, err == nil
	//	},
	ClientAddr func(r *http.Request) (netip.Addr, bool)
}

// NewMiddleware returns a middleware that authenticates each request as
// Middleware does, configured by cfg: the Middleware method of
// NewGuard(cfg). A bad realm or a nil Issuer is an error wrapping
// ErrInvalidInput.
func (iss *Issuer) NewMiddleware(cfg MiddlewareConfig) (func(http.Handler) http.Handler, error) {
	g, err := iss.NewGuard(cfg)
	if err != nil {
		return nil, err
	}
	return g.Middleware, nil
}

func checkRealm(realm string) error {
	if len(realm) > maxRealmLen {
		return fmt.Errorf("%w: Realm is %d bytes, want at most %d", ErrInvalidInput, len(realm), maxRealmLen)
	}
	for i := range len(realm) {
		if c := realm[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return fmt.Errorf("%w: Realm must be printable ASCII without '\"' or '\\'", ErrInvalidInput)
		}
	}
	return nil
}

// Middleware authenticates each request by its credentials, either of
//
//	Authorization: Bearer <secret>   with   X-Account-ID: <account id>
//	Authorization: Basic base64(<account id>:<secret>)
//
// and calls next with the verified Token in the request context, where
// FromContext finds it. Otherwise it answers without calling next: 401 when
// there are no credentials (or only of another scheme) or the token is
// invalid, expired, deleted, disabled, of another account or used from an
// address outside its AllowedIPs (all with the same answer), challenging for Bearer
// and Basic; 400 when the credentials are malformed or ambiguous, or a
// token is in the URL query (never accepted); 503 when the store fails.
// NewMiddleware configures it.
func (iss *Issuer) Middleware(next http.Handler) http.Handler {
	return newGuard(iss, MiddlewareConfig{}).Middleware(next)
}

// Authenticate verifies the credentials of r as Middleware does, without
// writing a response, for framework adapters: Bearer with X-Account-ID, or
// Basic. It returns the token, or ErrNoCredentials, an error wrapping
// ErrInvalidRequest, ErrInvalidToken, or any other error when the
// credentials could not be checked (answer that one with 503). A Guard's
// Authenticate reads other conventions.
func (iss *Issuer) Authenticate(r *http.Request) (Token, error) {
	return authenticate(iss, defaultGuard, r)
}

// authenticate reads the credentials of r with g's extractor and verifies
// them with iss, finding the client address with g's ClientAddr.
func authenticate(iss *Issuer, g *Guard, r *http.Request) (Token, error) {
	if iss == nil {
		return Token{}, errNoIssuer
	}
	if r == nil {
		return Token{}, ErrNoCredentials
	}
	if r.URL != nil && tokenInQuery(r.URL.RawQuery) {
		return Token{}, iss.refusedRequest(r.Context(), errQueryToken)
	}
	c, found, err := g.extract(r)
	if err != nil {
		return Token{}, iss.refusedRequest(r.Context(), err)
	}
	if !found {
		if g.otherScheme(r) {
			if !g.optional {
				iss.refusedScheme(r.Context())
			}
			return Token{}, errUnsupportedScheme
		}
		return Token{}, ErrNoCredentials
	}
	return iss.verify(r.Context(), c.AccountID, c.Secret, clientAddr{r: r, fn: g.addr})
}

// tokenInQuery reports whether the query has an access_token parameter,
// however its name is cased or percent-encoded (?acc%65ss_token= is one):
// each name is decoded once, as net/url decodes it, before it is compared.
// A query that holds neither "access" nor a '%' has no such name, so
// nearly every query is answered by one scan, with no decoding.
func tokenInQuery(raw string) bool {
	const word = "access"
	found := strings.IndexByte(raw, '%') >= 0
	for i := 0; i+len(word) <= len(raw) && !found; i++ {
		found = strings.EqualFold(raw[i:i+len(word)], word)
	}
	if !found {
		return false
	}
	// Split as url.ParseQuery does, and on ';' too: ParseQuery drops a
	// pair holding one, which a server or proxy of another kind may read.
	for pair := range strings.FieldsFuncSeq(raw, func(r rune) bool { return r == '&' || r == ';' }) {
		name, _, _ := strings.Cut(pair, "=")
		if strings.ContainsAny(name, "%+") {
			if decoded, err := url.QueryUnescape(name); err == nil {
				name = decoded
			}
		}
		if strings.EqualFold(name, "access_token") {
			return true
		}
	}
	return false
}

// errUnsupportedScheme is a request whose Authorization header uses a scheme
// the extractor does not read ("token", "ApiKey"…): it carries no
// credentials of ours, and the answer names the accepted ones.
var errUnsupportedScheme = fmt.Errorf("%w: unsupported Authorization scheme", ErrNoCredentials)

// otherScheme reports whether r, in which the extractor found nothing,
// has an Authorization header of a scheme the extractor does not read.
// Only what the probe knows counts: with a custom extractor alone, nothing.
func (g *Guard) otherScheme(r *http.Request) bool {
	if g.reads == nil || !g.reads.known() {
		return false
	}
	v, ok, _ := authorization(r)
	if !ok {
		return false
	}
	for _, s := range g.reads.schemes {
		if _, ok := cutScheme(v, s); ok {
			return false
		}
	}
	return true
}

// errNoIssuer fails closed (503) a middleware built on a nil Issuer.
var errNoIssuer = errors.New("apitoken: middleware has no Issuer")

// refusal reports whether err is an answer about the credentials, rather
// than a failure to check them.
func refusal(err error) bool {
	return errors.Is(err, ErrInvalidToken) || errors.Is(err, ErrNoCredentials) ||
		errors.Is(err, ErrInvalidRequest) || errors.Is(err, ErrInsufficientScope)
}

// Bodies of the default ErrorHandler (RFC 9457), constant.
var (
	bodyNoCredentials     = problem(http.StatusUnauthorized, "The request carries no credentials.")
	bodyInvalidToken      = problem(http.StatusUnauthorized, "The access token is invalid.")
	bodyInvalidRequest    = problem(http.StatusBadRequest, "The credentials are malformed.")
	bodyInsufficientScope = problem(http.StatusForbidden, "The access token lacks a required scope.")
	bodyUnavailable       = problem(http.StatusServiceUnavailable, "The credentials could not be checked; try again later.")
)

func problem(status int, detail string) []byte {
	b, err := json.Marshal(struct {
		Type   string `json:"type"`
		Title  string `json:"title"`
		Status int    `json:"status"`
		Detail string `json:"detail"`
	}{"about:blank", http.StatusText(status), status, detail})
	if err != nil {
		panic(err) // unreachable: strings and an int always marshal
	}
	return b
}

// writeError is the default ErrorHandler.
func (g *Guard) writeError(w http.ResponseWriter, _ *http.Request, err error) {
	var (
		status    int
		challenge string
		body      []byte
		reqErr    *requestError
		scopeErr  *scopeError
	)
	switch {
	case errors.Is(err, ErrInvalidToken):
		status, challenge, body = http.StatusUnauthorized, g.invalidToken, bodyInvalidToken
	case errors.Is(err, errUnsupportedScheme):
		status, challenge, body = http.StatusUnauthorized, g.bare, g.bodyUnsupported
	case errors.Is(err, ErrNoCredentials):
		status, challenge, body = http.StatusUnauthorized, g.bare, bodyNoCredentials
	case errors.As(err, &reqErr):
		status, challenge, body = http.StatusBadRequest, g.invalidRequest, reqErr.body
		if g.basic != "" && reqErr.basicBody != nil {
			body = reqErr.basicBody
		}
	case errors.Is(err, ErrInvalidRequest):
		status, challenge, body = http.StatusBadRequest, g.invalidRequest, bodyInvalidRequest
	case errors.As(err, &scopeErr):
		status, challenge, body = http.StatusForbidden, g.insufficientScope+scopeErr.param, bodyInsufficientScope
	case errors.Is(err, ErrInsufficientScope):
		status, challenge, body = http.StatusForbidden, g.insufficientScope, bodyInsufficientScope
	default:
		status, body = http.StatusServiceUnavailable, bodyUnavailable
	}
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	if challenge != "" {
		h.Set("Www-Authenticate", challenge)
		if status == http.StatusUnauthorized && g.basic != "" {
			// A second challenge, as a header of its own (RFC 9110
			// §11.6.1): clients that send Basic credentials only when
			// challenged (curl --anyauth, wget, Python's
			// HTTPBasicAuthHandler) look for it there.
			h.Add("Www-Authenticate", g.basic)
		}
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// A scopeError is a token without a scope RequireScope requires.
type scopeError struct {
	msg   string
	param string // `, scope="a b"`, or "" when a scope cannot be quoted
}

func (e *scopeError) Error() string { return e.msg }

// Unwrap makes errors.Is(err, ErrInsufficientScope) hold.
func (e *scopeError) Unwrap() error { return ErrInsufficientScope }

// RequireScope returns a middleware that calls next only when the verified
// token has every one of scopes; with none listed, any verified token will
// do. It goes inside Middleware (or NewMiddleware's): without a verified
// token in the context it fails closed with 401, as for a request without
// credentials. A token lacking a scope is answered by the middleware's
// ErrorHandler with an error wrapping ErrInsufficientScope; by default 403
// with error="insufficient_scope" and scope="<the required scopes>" in the
// challenge (the scope attribute is left out if a required scope is not a
// valid RFC 6749 scope token, which no token can have anyway).
func RequireScope(scopes ...string) func(http.Handler) http.Handler {
	required := slices.Clone(scopes)
	e := &scopeError{msg: ErrInsufficientScope.Error()}
	if len(required) > 0 {
		e.msg += ": requires " + strings.Join(required, " ")
		if !slices.ContainsFunc(required, func(s string) bool { return !validScope(s) }) {
			e.param = `, scope="` + strings.Join(required, " ") + `"`
		}
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p := principalFrom(r.Context())
			if p == nil {
				defaultGuard.WriteError(w, r, ErrNoCredentials)
				return
			}
			for _, s := range required {
				if !p.tok.HasScope(s) {
					p.guard().WriteError(w, r, e)
					return
				}
			}
			next.ServeHTTP(w, r)
		})
	}
}
