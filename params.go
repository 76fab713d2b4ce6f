package apitoken

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

func checkParams(p IssueParams, now time.Time) error {
	if err := checkAccountID(p.AccountID); err != nil {
		return err
	}
	if err := checkText("MemberID", p.MemberID); err != nil {
		return err
	}
	if err := checkText("Name", p.Name); err != nil {
		return err
	}
	if len(p.Scopes) > maxScopes {
		return fmt.Errorf("%w: Scopes has %d entries, want at most %d", ErrInvalidInput, len(p.Scopes), maxScopes)
	}
	for i, s := range p.Scopes {
		if !validScope(s) {
			return fmt.Errorf("%w: Scopes[%d] must be 1 to %d printable ASCII characters without space, '\"' or '\\'", ErrInvalidInput, i, maxScopeLen)
		}
		if slices.Contains(p.Scopes[:i], s) {
			return fmt.Errorf("%w: Scopes[%d] repeats an earlier scope", ErrInvalidInput, i)
		}
	}
	if !p.ExpiresAt.IsZero() && !p.ExpiresAt.After(now) {
		return fmt.Errorf("%w: ExpiresAt is not in the future", ErrInvalidInput)
	}
	if p.ExpiresAt.Year() > maxYear {
		// Beyond what SQL date types hold (MySQL's DATETIME ends there).
		return fmt.Errorf("%w: ExpiresAt is after the year %d", ErrInvalidInput, maxYear)
	}
	return checkAllowedIPs(p.AllowedIPs)
}

// checkAllowedIPs refuses an allowlist that is too long, or holds a prefix
// that is invalid, not in its canonical form, or repeated.
func checkAllowedIPs(prefixes []netip.Prefix) error {
	if len(prefixes) > maxAllowedIPs {
		return fmt.Errorf("%w: AllowedIPs has %d prefixes, want at most %d", ErrInvalidInput, len(prefixes), maxAllowedIPs)
	}
	for i, pf := range prefixes {
		switch {
		case !pf.IsValid():
			return fmt.Errorf("%w: AllowedIPs[%d] is not a valid prefix (write it as netip.ParsePrefix reads it: 192.0.2.0/24, 2001:db8::/32)", ErrInvalidInput, i)
		case pf.Addr().Is4In6():
			return fmt.Errorf("%w: AllowedIPs[%d] is an IPv4-mapped IPv6 prefix: write it as an IPv4 prefix (client addresses are compared as IPv4)", ErrInvalidInput, i)
		case pf != pf.Masked():
			return fmt.Errorf("%w: AllowedIPs[%d] has bits set beyond its length: write it as %s", ErrInvalidInput, i, pf.Masked())
		case slices.Contains(prefixes[:i], pf):
			return fmt.Errorf("%w: AllowedIPs[%d] repeats an earlier prefix", ErrInvalidInput, i)
		}
	}
	return nil
}

// checkAccountID refuses account ids that no token can have: see IssueParams.
func checkAccountID(id string) error { return fieldError("AccountID", accountIDProblem(id)) }

// checkText refuses a text field that is too long, not UTF-8, or holds a
// control character.
func checkText(field, s string) error { return fieldError(field, textProblem(s)) }

// fieldError names the field and its problem, never its value; nil when
// there is no problem.
func fieldError(field, problem string) error {
	if problem == "" {
		return nil
	}
	return fmt.Errorf("%w: %s %s", ErrInvalidInput, field, problem)
}

// accountIDProblem says what makes id impossible as an account id, or ""
// when nothing does. It does not allocate: the middleware runs it on every
// account header, malformed ones included.
func accountIDProblem(id string) string {
	if id == "" {
		return "is empty"
	}
	if len(id) <= maxTextLen && plainID(id) {
		return "" // printable ASCII without ':' or space: nearly every id, in one pass
	}
	if p := textProblem(id); p != "" {
		return p
	}
	if strings.ContainsRune(id, ':') {
		return "contains ':'"
	}
	first, _ := utf8.DecodeRuneInString(id)
	last, _ := utf8.DecodeLastRuneInString(id)
	if unicode.IsSpace(first) || unicode.IsSpace(last) {
		return "begins or ends with white space"
	}
	return ""
}

// plainID reports whether s is printable ASCII without ':' and spaces, which
// passes every rule of accountIDProblem.
func plainID(s string) bool {
	for i := range len(s) {
		if c := s[i]; c <= ' ' || c > '~' || c == ':' {
			return false
		}
	}
	return true
}

// textProblem is checkText's test, without allocating.
func textProblem(s string) string {
	switch {
	case len(s) > maxTextLen:
		return "is longer than 128 bytes"
	case !utf8.ValidString(s):
		return "is not valid UTF-8"
	case strings.ContainsFunc(s, unicode.IsControl):
		return "contains a control character"
	}
	return ""
}

// validScope reports whether s is an RFC 6749 scope-token of allowed length.
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

// IssueParams describes a token to issue. AccountID is required; the other
// fields are optional.
//
// AccountID, MemberID and Name are at most 128 bytes of UTF-8 without control
// characters; AccountID must not contain ':' (it separates the account from
// the secret in HTTP Basic credentials) nor begin or end with white space.
// Scopes are at most 32 distinct RFC 6749 scope tokens of at most 64 bytes
// each (printable ASCII without space, '"' or '\'). ExpiresAt, when not zero,
// must be in the future and at most in the year 9999; it is stored truncated
// to the microsecond. With WithDefaultLifetime, a zero ExpiresAt means now
// plus that lifetime; with WithMaxLifetime, ExpiresAt must be set (by the
// caller or the default) and at most that far ahead.
//
// AllowedIPs, when not empty, are the only client addresses the token
// verifies from (see WithClientAddr and MiddlewareConfig.ClientAddr for
// where the address comes from): at most 32 distinct prefixes in canonical
// form (no bits set beyond the prefix length, as Prefix.Masked gives; IPv4
// as IPv4, not mapped into IPv6). A single address is a /32 or /128.
type IssueParams struct {
	AccountID, MemberID, Name string
	Scopes                    []string
	ExpiresAt                 time.Time
	AllowedIPs                []netip.Prefix
}
