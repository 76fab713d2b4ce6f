package apitoken

import "errors"

// Errors returned by the Issuer, the middleware and stores. Callers test them
// with errors.Is: most are returned wrapped, with a message that says what was
// wrong but never contains a secret.
var (
	// ErrInvalidToken is returned by Verify for every refusal: a malformed
	// secret; an unknown, deleted, expired or disabled token; a token older
	// than WithMaxLifetime; one presented from an address outside its
	// AllowedIPs; a token of another account. Verify returns it unwrapped,
	// with the same text in every case, so that no caller can learn whether
	// a token exists. Inspect and RevokeSecret wrap it for a malformed
	// secret.
	ErrInvalidToken = errors.New("apitoken: invalid token")

	// ErrNotFound is returned by the Issuer's methods that name a token
	// (Delete, Rotate, Disable, Enable) for an id that does not exist in the
	// account, by Inspect and RevokeSecret for a secret that names no token,
	// and by a Store for a hash or id it does not hold.
	ErrNotFound = errors.New("apitoken: not found")

	// ErrDuplicate is returned by Store.Create when a record with the same id
	// or hash already exists. The Issuer retries with a new secret.
	ErrDuplicate = errors.New("apitoken: duplicate token")

	// ErrInvalidInput wraps every error caused by a bad argument to
	// NewIssuer, an option or an Issuer's method; the message names the
	// offending field.
	ErrInvalidInput = errors.New("apitoken: invalid input")

	// ErrNoCredentials is reported by the middleware when a request carries no
	// credentials at all (answered with 401 and a bare challenge).
	ErrNoCredentials = errors.New("apitoken: no credentials")

	// ErrInvalidRequest is reported by the middleware when a request carries
	// credentials in a malformed or ambiguous form (answered with 400).
	ErrInvalidRequest = errors.New("apitoken: invalid request")

	// ErrClosed is returned by every method of an Issuer after Close.
	ErrClosed = errors.New("apitoken: issuer closed")

	// ErrLimitReached is returned by Issue when the account already has as
	// many tokens as WithMaxTokensPerAccount allows.
	ErrLimitReached = errors.New("apitoken: token limit reached")

	// ErrInsufficientScope is reported by RequireScope when the verified
	// token lacks a required scope (answered with 403).
	ErrInsufficientScope = errors.New("apitoken: insufficient scope")
)
