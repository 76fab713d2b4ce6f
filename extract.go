package apitoken

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
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
// An Extractor must not retain the request nor modify it. NewGuard (and so
// NewMiddleware and Middleware) calls it once with a request that carries
// no credentials, through which the extractors of this package (also
// inside Chain) tell the Guard what they read: the Guard then offers a
// Basic challenge when Basic is read, names the accepted forms when a
// request uses another Authorization scheme, and refuses an extractor
// configured with an invalid header name or scheme.
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
	// basicBody, when not nil, replaces body for a Guard that also reads
	// Basic credentials, to name that form too.
	basicBody []byte
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
// valid header name (NewGuard and NewMiddleware refuse another). The scheme
// is matched without regard to case, the secret exactly. It is not found
// when the Authorization header is absent or names another scheme. It is
// malformed when the Bearer scheme is not followed by exactly one space and
// one b64token, when the Authorization header is repeated or longer than
// 4096 bytes, and when the account header is missing, empty, repeated or
// not a possible account id.
func FromBearer(accountHeader string) Extractor {
	return fromScheme("bearer", "Bearer", accountHeader)
}

// FromScheme reads "Authorization: <scheme> <secret>" with the account id in
// accountHeader ("" means "X-Account-ID") exactly as FromBearer reads
// Bearer, for clients that send the token under another scheme name. One
// line accepts GitHub's "Authorization: token <secret>" beside Bearer and
// Basic:
//
//	Extractor: apitoken.Chain(apitoken.FromBearer(""), apitoken.FromScheme("token", ""), apitoken.FromBasic()),
//
// The scheme is matched without regard to case ("token" also reads
// "Token", as Django REST Framework sends it). It must be an auth-scheme
// (RFC 9110 §11.1) other than Basic, and accountHeader a valid header name:
// NewGuard and NewMiddleware refuse others. FromScheme("Bearer", h) is
// FromBearer(h).
func FromScheme(scheme, accountHeader string) Extractor {
	return fromScheme(strings.ToLower(scheme), scheme, accountHeader)
}

// fromScheme is FromBearer for any scheme; lower is the scheme in lower
// case, name as the errors write it.
func fromScheme(lower, name, accountHeader string) Extractor {
	configErr := checkScheme(name)
	if accountHeader == "" {
		accountHeader = defaultAccountHeader
	}
	if err := checkHeaderName("account header", accountHeader); err != nil && configErr == nil {
		configErr = err
	}
	accountKey := http.CanonicalHeaderKey(accountHeader)
	errMalformed := errMalformedBearer
	if lower != "bearer" {
		errMalformed = newRequestError("malformed "+name+" credentials",
			"The Authorization header must be the word "+name+", one space and the token.")
	}
	errMissing := newAccountError(accountHeader)
	form := name + " (with " + accountHeader + ")"
	return func(r *http.Request) (Credentials, bool, error) {
		if p, ok := probing(r); ok {
			p.note(lower, form)
			if configErr != nil {
				p.fail(configErr)
			}
			return Credentials{}, false, nil
		}
		v, ok, err := authorization(r)
		if !ok || err != nil || configErr != nil {
			return Credentials{}, false, err
		}
		rest, ok := cutScheme(v, lower)
		if !ok {
			return Credentials{}, false, nil
		}
		if len(rest) < 2 || rest[0] != ' ' || !isToken68(rest[1:]) {
			return Credentials{}, false, errMalformed
		}
		account, err := accountFrom(r, accountKey, errMissing)
		if err != nil {
			return Credentials{}, false, err
		}
		return Credentials{AccountID: account, Secret: rest[1:]}, true, nil
	}
}

// newAccountError is the error of a token that came without its account
// header: it names the header, and, for a Guard that also reads Basic, the
// Basic form that carries both.
func newAccountError(accountHeader string) *requestError {
	detail := "The token must come with its account id in the " + accountHeader + " header"
	e := newRequestError("token without account", detail+".")
	e.basicBody = problem(http.StatusBadRequest, detail+", or both as Authorization: Basic base64(<account id>:<token>).")
	return e
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
	if p, ok := probing(r); ok {
		p.note("basic", "Basic")
		return Credentials{}, false, nil
	}
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
// applications with such conventions; both must be valid header names
// (NewGuard and NewMiddleware refuse others). It is
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
	configErr := checkHeaderName("secret header", secretHeader)
	if err := checkHeaderName("account header", accountHeader); err != nil && configErr == nil {
		configErr = err
	}
	secretKey := http.CanonicalHeaderKey(secretHeader)
	accountKey := http.CanonicalHeaderKey(accountHeader)
	errMissing := newAccountError(accountHeader)
	form := "the " + secretHeader + " header (with " + accountHeader + ")"
	return func(r *http.Request) (Credentials, bool, error) {
		if p, ok := probing(r); ok {
			p.note("", form)
			if configErr != nil {
				p.fail(configErr)
			}
			return Credentials{}, false, nil
		}
		vals := r.Header[secretKey]
		switch {
		case len(vals) == 0:
			return Credentials{}, false, nil
		case len(vals) > 1:
			return Credentials{}, false, errTwoSecrets
		case len(vals[0]) > maxCredentialLen || !isToken68(vals[0]):
			return Credentials{}, false, errMalformedSecret
		}
		account, err := accountFrom(r, accountKey, errMissing)
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

// defaultExtractor serves Middleware, Authenticate and a config without one:
// Chain(FromBearer(defaultAccountHeader), FromBasic()), which it is but for
// one thing: once Bearer found credentials, it does not run Basic, which
// reads the same Authorization value and so can only find nothing there
// (TestDefaultExtractorIsTheChain).
var defaultExtractor Extractor = func(r *http.Request) (Credentials, bool, error) {
	if c, ok, err := defaultBearer(r); ok || err != nil {
		return c, ok, err
	}
	return extractBasic(r)
}

var defaultBearer = FromBearer(defaultAccountHeader)

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

// accountFrom returns the one account id in the header named key, or
// missing when there is none.
func accountFrom(r *http.Request, key string, missing *requestError) (string, error) {
	vals := r.Header[key]
	switch {
	case len(vals) > 1:
		return "", errTwoAccounts
	case len(vals) == 0 || vals[0] == "":
		return "", missing
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
	// Eight bytes a step, the class bits ANDed and tested once: most of a
	// secret is read in five steps.
	for ; i+8 <= len(s); i += 8 {
		q := s[i : i+8]
		if token68Bits[q[0]]&token68Bits[q[1]]&token68Bits[q[2]]&token68Bits[q[3]]&
			token68Bits[q[4]]&token68Bits[q[5]]&token68Bits[q[6]]&token68Bits[q[7]] == 0 {
			break
		}
	}
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

// token68Bits is token68 as 1 and 0, for isToken68 to AND.
var token68Bits = func() (t [256]byte) {
	for c, ok := range token68 {
		if ok {
			t[c] = 1
		}
	}
	return t
}()
