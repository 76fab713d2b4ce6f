package apitoken

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// Credentials is what an Extractor found in a request: an account id and a
// secret. Its Secret never prints: fmt (every verb), encoding/json and
// log/slog show it as "[REDACTED]"; the AccountID shows.
type Credentials struct {
	AccountID, Secret string
}

// plainCredentials has the fields of Credentials and no methods, so that fmt
// prints it as a plain struct.
type plainCredentials struct {
	AccountID, Secret string
}

// Format prints the credentials with the secret redacted, for every verb and
// flag (%v, %+v, %#v, %s, %q, %x…).
func (c Credentials) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		fmt.Fprintf(f, "apitoken.Credentials{AccountID:%#v, Secret:%#v}", c.AccountID, redacted)
		return
	}
	fmt.Fprintf(f, fmt.FormatString(f, verb), plainCredentials{c.AccountID, redacted})
}

// LogValue makes log/slog print the account id and a redacted secret.
func (c Credentials) LogValue() slog.Value {
	return slog.GroupValue(slog.String("AccountID", c.AccountID), slog.String("Secret", redacted))
}

// MarshalJSON encodes the account id and a redacted secret.
func (c Credentials) MarshalJSON() ([]byte, error) {
	return json.Marshal(plainCredentials{c.AccountID, redacted})
}

// An Extractor finds credentials in a request. It returns found=false with a
// nil error when the request carries none of the kind it reads, and an error
// wrapping ErrInvalidRequest when it carries them in a malformed or
// ambiguous form. The error text never contains input. The middleware
// answers any other error with 503, as it does a store failure.
//
// An Extractor must not retain the request nor modify it.
type Extractor func(r *http.Request) (c Credentials, found bool, err error)

// Limits and defaults of the extractors.
const (
	// maxCredentialLen bounds the Authorization value (and a secret header):
	// a secret is about 50 bytes, so anything near this is not one.
	maxCredentialLen     = 4096
	defaultAccountHeader = "X-Account-ID"
	defaultSecretHeader  = "X-API-Key"
	defaultRealm         = "api"
	maxRealmLen          = 64
)

// A requestError is a malformed or ambiguous request. Its reason and its
// response body are constants: neither ever holds input.
type requestError struct {
	reason string // for the audit log
	msg    string // "apitoken: invalid request: " + reason
	body   []byte // the problem+json body of the default ErrorHandler
}

func newRequestError(reason, detail string) *requestError {
	return &requestError{
		reason: reason,
		msg:    ErrInvalidRequest.Error() + ": " + reason,
		body:   problem(http.StatusBadRequest, detail),
	}
}

func (e *requestError) Error() string { return e.msg }

// Unwrap makes errors.Is(err, ErrInvalidRequest) hold.
func (e *requestError) Unwrap() error { return ErrInvalidRequest }

// The ways a request can be malformed. They are values, so that refusing a
// request allocates nothing.
var (
	errQueryToken = newRequestError("access token in the URL query",
		"Access tokens are never accepted in the URL, where they end up in logs; send the token in the Authorization header.")
	errTwoAuthorization = newRequestError("more than one Authorization header",
		"The request has more than one Authorization header.")
	errAuthorizationSize = newRequestError("oversized Authorization header",
		"The Authorization header is too long.")
	errMalformedBearer = newRequestError("malformed Bearer credentials",
		"The Authorization header must be the word Bearer, one space and the token.")
	errMalformedBasic = newRequestError("malformed Basic credentials",
		"The Authorization header must be the word Basic, one space and the base64 encoding of the account id, a colon and the token.")
	errNoAccount = newRequestError("token without account",
		"The token must come with its account id.")
	errTwoAccounts = newRequestError("more than one account header",
		"The request has more than one account id header.")
	errMalformedAccount = newRequestError("malformed account id",
		"The account id is malformed.")
	errTwoSecrets = newRequestError("more than one API key header",
		"The request has more than one API key header.")
	errMalformedSecret = newRequestError("malformed API key header",
		"The API key header is malformed.")
	errTwoCredentials = newRequestError("more than one credential",
		"The request carries more than one credential.")
)

// FromBearer reads "Authorization: Bearer <secret>" (RFC 6750) with the
// account id in accountHeader ("" means "X-Account-ID"), which must be a
// valid header name. The scheme is matched without regard to case, the
// secret exactly. It is not found when the Authorization header is absent
// or names another scheme. It is malformed when the Bearer scheme is not
// followed by exactly one space and one b64token, when the Authorization
// header is repeated or longer than 4096 bytes, and when the account header
// is missing, empty, repeated or not a possible account id.
func FromBearer(accountHeader string) Extractor {
	if accountHeader == "" {
		accountHeader = defaultAccountHeader
	}
	accountKey := http.CanonicalHeaderKey(accountHeader)
	return func(r *http.Request) (Credentials, bool, error) {
		v, ok, err := authorization(r)
		if !ok || err != nil {
			return Credentials{}, false, err
		}
		rest, ok := cutScheme(v, "bearer")
		if !ok {
			return Credentials{}, false, nil
		}
		if len(rest) < 2 || rest[0] != ' ' || !isToken68(rest[1:]) {
			return Credentials{}, false, errMalformedBearer
		}
		account, err := accountFrom(r, accountKey)
		if err != nil {
			return Credentials{}, false, err
		}
		return Credentials{AccountID: account, Secret: rest[1:]}, true, nil
	}
}

// FromBasic reads "Authorization: Basic base64(<account id>:<secret>)" (RFC
// 7617): standard base64 with padding, split at the first ':'. The scheme is
// matched without regard to case. It is not found when the Authorization
// header is absent or names another scheme. It is malformed when the
// credentials are not one token68 of strict base64, have no ':', an empty
// secret or an account id that no token can have, and when the
// Authorization header is repeated or longer than 4096 bytes.
func FromBasic() Extractor {
	return extractBasic
}

// strictBase64 refuses non-canonical padding bits, as RFC 7617's base64
// has none.
var strictBase64 = base64.StdEncoding.Strict()

func extractBasic(r *http.Request) (Credentials, bool, error) {
	v, ok, err := authorization(r)
	if !ok || err != nil {
		return Credentials{}, false, err
	}
	rest, ok := cutScheme(v, "basic")
	if !ok {
		return Credentials{}, false, nil
	}
	// The syntax check comes first: the decoder would skip CR and LF.
	if len(rest) < 2 || rest[0] != ' ' || !isToken68(rest[1:]) {
		return Credentials{}, false, errMalformedBasic
	}
	var buf [maxCredentialLen * 3 / 4]byte
	n, err := strictBase64.Decode(buf[:], bytesOf(rest[1:]))
	if err != nil {
		return Credentials{}, false, errMalformedBasic
	}
	// The colon is looked for before the one allocation of the success path.
	if i := bytes.IndexByte(buf[:n], ':'); i < 0 || i == n-1 {
		return Credentials{}, false, errMalformedBasic
	}
	account, secret, _ := strings.Cut(string(buf[:n]), ":")
	if accountIDProblem(account) != "" {
		return Credentials{}, false, errMalformedBasic
	}
	return Credentials{AccountID: account, Secret: secret}, true, nil
}

// FromHeader reads the secret from secretHeader ("" means "X-API-Key") and
// the account id from accountHeader ("" means "X-Account-ID"), for
// applications with such conventions; both must be valid header names. It is
// not found when the secret header is absent. It is malformed when the
// secret header is repeated, empty, longer than 4096 bytes or not a
// b64token, and when the account header is missing, empty, repeated or not
// a possible account id.
func FromHeader(secretHeader, accountHeader string) Extractor {
	if secretHeader == "" {
		secretHeader = defaultSecretHeader
	}
	if accountHeader == "" {
		accountHeader = defaultAccountHeader
	}
	secretKey := http.CanonicalHeaderKey(secretHeader)
	accountKey := http.CanonicalHeaderKey(accountHeader)
	return func(r *http.Request) (Credentials, bool, error) {
		vals := r.Header[secretKey]
		switch {
		case len(vals) == 0:
			return Credentials{}, false, nil
		case len(vals) > 1:
			return Credentials{}, false, errTwoSecrets
		case len(vals[0]) > maxCredentialLen || !isToken68(vals[0]):
			return Credentials{}, false, errMalformedSecret
		}
		account, err := accountFrom(r, accountKey)
		if err != nil {
			return Credentials{}, false, err
		}
		return Credentials{AccountID: account, Secret: vals[0]}, true, nil
	}
}

// Chain runs every extractor (nil ones are skipped) and returns the first
// error any of them reports; otherwise the credentials when exactly one
// found some, "not found" when none did, and an error wrapping
// ErrInvalidRequest when more than one did: a request carries one
// credential.
func Chain(extractors ...Extractor) Extractor {
	exs := slices.DeleteFunc(slices.Clone(extractors), func(e Extractor) bool { return e == nil })
	return func(r *http.Request) (Credentials, bool, error) {
		var found Credentials
		n := 0
		for _, ex := range exs {
			c, ok, err := ex(r)
			if err != nil {
				return Credentials{}, false, err
			}
			if ok {
				found = c
				n++
			}
		}
		switch n {
		case 0:
			return Credentials{}, false, nil
		case 1:
			return found, true, nil
		default:
			return Credentials{}, false, errTwoCredentials
		}
	}
}

// defaultExtractor serves Middleware, Authenticate and a config without one.
var defaultExtractor = Chain(FromBearer(defaultAccountHeader), FromBasic())

// authorization returns the request's one Authorization value, ok=false when
// there is none, and an error when there are several or it is oversized.
func authorization(r *http.Request) (v string, ok bool, err error) {
	vals := r.Header["Authorization"]
	switch {
	case len(vals) == 0:
		return "", false, nil
	case len(vals) > 1:
		return "", false, errTwoAuthorization
	case len(vals[0]) > maxCredentialLen:
		return "", false, errAuthorizationSize
	}
	return vals[0], true, nil
}

// cutScheme returns what follows the auth-scheme of v when that scheme is
// scheme (lower case), matched without regard to ASCII case. "Bearerx" is
// another scheme; "Bearer\tx" is Bearer with malformed credentials.
func cutScheme(v, scheme string) (rest string, ok bool) {
	if len(v) < len(scheme) {
		return "", false
	}
	for i := range len(scheme) {
		c := v[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != scheme[i] {
			return "", false
		}
	}
	rest = v[len(scheme):]
	if rest != "" && tchar[rest[0]] {
		return "", false
	}
	return rest, true
}

// accountFrom returns the one account id in the header named key.
func accountFrom(r *http.Request, key string) (string, error) {
	vals := r.Header[key]
	switch {
	case len(vals) > 1:
		return "", errTwoAccounts
	case len(vals) == 0 || vals[0] == "":
		return "", errNoAccount
	case accountIDProblem(vals[0]) != "":
		return "", errMalformedAccount
	}
	return vals[0], nil
}

// isToken68 reports whether s is a token68 (RFC 9110 §11.2), which is also
// the b64token of RFC 6750: 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+"
// / "/" ) *"=".
func isToken68(s string) bool {
	i := 0
	for i < len(s) && token68[s[i]] {
		i++
	}
	if i == 0 {
		return false
	}
	for i < len(s) && s[i] == '=' {
		i++
	}
	return i == len(s)
}

// Byte classes: token68 characters before the padding, and the tchar of
// RFC 9110 §5.6.2 that an auth-scheme is made of.
var token68, tchar = func() (t68, tc [256]bool) {
	for c := range 256 {
		alnum := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
		t68[c] = alnum || strings.ContainsRune("-._~+/", rune(c))
		tc[c] = alnum || strings.ContainsRune("!#$%&'*+-.^_`|~", rune(c))
	}
	return t68, tc
}()

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
	// the default: an RFC 6750 challenge and a short application/problem+json
	// body that never echoes the request, with Cache-Control: no-store;
	// 401, 400, 401, 403 and 503 respectively.
	ErrorHandler func(w http.ResponseWriter, r *http.Request, err error)

	// Logger receives failures to check credentials, at Error level
	// ("apitoken: credentials could not be checked", "err", err). Nothing
	// from the request is logged. Nil means slog.Default() at the time of
	// the failure.
	Logger *slog.Logger
}

// A guard is a configured middleware. It is immutable once built.
type guard struct {
	iss     *Issuer
	extract Extractor
	onError func(w http.ResponseWriter, r *http.Request, err error)
	log     *slog.Logger

	// Challenges of the default ErrorHandler, precomputed for the realm.
	bare, invalidToken, invalidRequest, insufficientScope string
}

// defaultGuard answers for RequireScope when no middleware ran.
var defaultGuard = newGuard(nil, MiddlewareConfig{})

func newGuard(iss *Issuer, cfg MiddlewareConfig) *guard {
	realm := cfg.Realm
	if realm == "" {
		realm = defaultRealm
	}
	bare := `Bearer realm="` + realm + `"`
	g := &guard{
		iss:               iss,
		extract:           cfg.Extractor,
		onError:           cfg.ErrorHandler,
		log:               cfg.Logger,
		bare:              bare,
		invalidToken:      bare + `, error="invalid_token"`,
		invalidRequest:    bare + `, error="invalid_request"`,
		insufficientScope: bare + `, error="insufficient_scope"`,
	}
	if g.extract == nil {
		g.extract = defaultExtractor
	}
	if g.onError == nil {
		g.onError = g.writeError
	}
	return g
}

// NewMiddleware returns a middleware that authenticates each request as
// Middleware does, configured by cfg. A bad realm or a nil Issuer is an
// error wrapping ErrInvalidInput.
func (iss *Issuer) NewMiddleware(cfg MiddlewareConfig) (func(http.Handler) http.Handler, error) {
	if iss == nil {
		return nil, fmt.Errorf("%w: Issuer is nil", ErrInvalidInput)
	}
	if err := checkRealm(cfg.Realm); err != nil {
		return nil, err
	}
	g := newGuard(iss, cfg)
	return g.wrap, nil
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
// there are no credentials or the token is invalid, expired, deleted or of
// another account; 400 when the credentials are malformed or ambiguous, or
// a token is in the URL query (never accepted); 503 when the store fails.
// NewMiddleware configures it.
func (iss *Issuer) Middleware(next http.Handler) http.Handler {
	return newGuard(iss, MiddlewareConfig{}).wrap(next)
}

func (g *guard) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, err := authenticate(g.iss, g.extract, r)
		if err != nil {
			g.fail(w, r, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(&principal{Context: r.Context(), tok: tok, g: g}))
	})
}

// Authenticate verifies the credentials of r as Middleware does, without
// writing a response, for framework adapters. It returns the token, or
// ErrNoCredentials, an error wrapping ErrInvalidRequest, ErrInvalidToken, or
// any other error when the credentials could not be checked (answer that
// one with 503).
func (iss *Issuer) Authenticate(r *http.Request) (Token, error) {
	return authenticate(iss, defaultExtractor, r)
}

func authenticate(iss *Issuer, extract Extractor, r *http.Request) (Token, error) {
	if iss == nil {
		return Token{}, errNoIssuer
	}
	if r == nil {
		return Token{}, ErrNoCredentials
	}
	if r.URL != nil && tokenInQuery(r.URL.RawQuery) {
		return Token{}, iss.refusedRequest(r.Context(), errQueryToken)
	}
	c, found, err := extract(r)
	if err != nil {
		return Token{}, iss.refusedRequest(r.Context(), err)
	}
	if !found {
		return Token{}, ErrNoCredentials
	}
	return iss.Verify(r.Context(), c.AccountID, c.Secret)
}

// tokenInQuery reports whether the query has an access_token parameter,
// however its name is cased or percent-encoded. Looking for "access" first
// spares the parsing of nearly every query.
func tokenInQuery(raw string) bool {
	const word = "access"
	found := false
	for i := 0; i+len(word) <= len(raw) && !found; i++ {
		found = strings.EqualFold(raw[i:i+len(word)], word)
	}
	if !found {
		return false
	}
	q, _ := url.ParseQuery(raw)
	for k := range q {
		if strings.EqualFold(k, "access_token") {
			return true
		}
	}
	return false
}

// errNoIssuer fails closed (503) a middleware built on a nil Issuer.
var errNoIssuer = errors.New("apitoken: middleware has no Issuer")

// fail logs a failure to check credentials and hands err to the
// ErrorHandler.
func (g *guard) fail(w http.ResponseWriter, r *http.Request, err error) {
	if !refusal(err) {
		log := g.log
		if log == nil {
			log = slog.Default()
		}
		log.ErrorContext(r.Context(), "apitoken: credentials could not be checked", "err", err)
	}
	g.onError(w, r, err)
}

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
func (g *guard) writeError(w http.ResponseWriter, _ *http.Request, err error) {
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
	case errors.Is(err, ErrNoCredentials):
		status, challenge, body = http.StatusUnauthorized, g.bare, bodyNoCredentials
	case errors.As(err, &reqErr):
		status, challenge, body = http.StatusBadRequest, g.invalidRequest, reqErr.body
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
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// principalKey is the context key of the verified token: unexported, so
// that only this package can set it.
type principalKey struct{}

// A principal is the request context the middleware hands on: the parent
// context with the verified token and the middleware, whose realm and
// ErrorHandler RequireScope answers with. Being the context itself saves
// the allocation of a context.WithValue on every request.
type principal struct {
	context.Context
	tok Token
	g   *guard
}

// Value returns p for principalKey and asks the parent for any other key
// (so that context.WithCancel still finds the parent's cancellation).
func (p *principal) Value(key any) any {
	if key == (principalKey{}) {
		return p
	}
	return p.Context.Value(key)
}

func principalFrom(ctx context.Context) *principal {
	if ctx == nil {
		return nil
	}
	p, _ := ctx.Value(principalKey{}).(*principal)
	return p
}

// FromContext returns the token the middleware verified for this request,
// and whether there is one: false on any context the middleware did not
// make. Its Scopes are a copy. It never panics.
func FromContext(ctx context.Context) (Token, bool) {
	p := principalFrom(ctx)
	if p == nil {
		return Token{}, false
	}
	tok := p.tok
	tok.Scopes = slices.Clip(slices.Clone(tok.Scopes))
	return tok, true
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
				defaultGuard.fail(w, r, ErrNoCredentials)
				return
			}
			for _, s := range required {
				if !slices.Contains(p.tok.Scopes, s) {
					p.g.fail(w, r, e)
					return
				}
			}
			next.ServeHTTP(w, r)
		})
	}
}
