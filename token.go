package apitoken

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"time"
	"unsafe"
)

// Token is the metadata of an issued token. It never holds the secret nor its
// hash, so it is safe to log, print and return to clients.
type Token struct {
	// ID is public, unique and stable: a UUIDv7 string, which sorts by time.
	// Use it to name a token in a list and to delete it.
	ID string

	// AccountID is the account the token authenticates; MemberID the member
	// of the account who issued it; Name a label chosen by that member.
	AccountID, MemberID, Name string

	// Scopes are the permissions granted to the token, checked by
	// RequireScope. Nil when there are none.
	Scopes []string

	// CreatedAt is when the token was issued. ExpiresAt is when it stops
	// verifying; zero means never. LastUsedAt is when it last verified, zero
	// when unknown. All are UTC with microsecond precision.
	CreatedAt, ExpiresAt, LastUsedAt time.Time

	// Disabled is set by Issuer.Disable and cleared by Issuer.Enable: a
	// disabled token refuses like an invalid one, stays listed, and can be
	// enabled again.
	Disabled bool

	// Hint is the last 4 characters of the secret, kept in clear: what a
	// person sees at the end of theirs, to tell which listed token it is.
	// It is filled at Issue and Rotate; tokens issued by versions before it
	// existed have an empty Hint.
	Hint string

	// AllowedIPs are the client addresses the token may be used from; empty
	// means any address. See IssueParams.AllowedIPs.
	AllowedIPs []netip.Prefix

	// LastUsedIP is the client address of the last use, recorded with
	// LastUsedAt (the same coalesced write); the zero Addr when unknown.
	LastUsedIP netip.Addr
}

// HasScope reports whether the token grants scope: the rule RequireScope
// applies to each scope it requires, for callers outside net/http (a gRPC
// method, a job). Scopes are compared exactly, with no hierarchy or
// wildcard.
func (t Token) HasScope(scope string) bool {
	return slices.Contains(t.Scopes, scope)
}

// Hash is the keyed SHA-256 digest of a secret: what a Store keeps and looks
// up instead of the secret. Its value never prints: fmt verbs, JSON, text
// encodings and log/slog all show it redacted. A Store reads its bytes with
// h[:].
type Hash [32]byte

const redacted = "[REDACTED]"

// String returns a redacted placeholder, never the digest.
func (Hash) String() string { return redacted }

// Format prints a redacted placeholder for every verb, %x and %#v included.
func (Hash) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, redacted) }

// LogValue makes log/slog print a redacted placeholder.
func (Hash) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalText makes encoding/json and other text encoders print a redacted
// placeholder.
func (Hash) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// The secret format is <prefix>_<body><checksum>: body is bodyLen base62
// characters drawn uniformly from crypto/rand (about 190 bits), checksum the
// CRC32 (IEEE) of everything before it in checksumLen base62 digits.
const (
	bodyLen      = 32
	checksumLen  = 6
	maxPrefixLen = 32
	base62       = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
)

// A secret is <prefix>_<32 base62 characters><6 base62 characters>: a
// prefix of 1 to 32 characters of [a-z0-9_] starting with a letter, about
// 190 random bits, and a checksum.
const (
	// DefaultPrefix is the prefix of secrets issued without WithPrefix. Set
	// your own: secret scanners and the secret-scanning partner programs
	// route a leaked secret to its issuer by a prefix unique to it, and
	// gitleaks' default rules miss most secrets of this one (its
	// generic-api-key rule drops every match that contains the word
	// "token"). A rule built from Issuer.Pattern finds them.
	DefaultPrefix = "apitoken"

	// Pattern is a regular expression (RE2 and PCRE syntax) that matches
	// every secret this package issues, whatever its prefix, for secret
	// scanners. A scanner that knows the prefix should match
	// `\b<prefix>_[0-9A-Za-z]{38}\b` and may confirm a hit with the checksum:
	// the last six characters are the big-endian base62 digits
	// (0-9, A-Z, a-z) of the CRC32 (IEEE) of all characters before them.
	Pattern = `\b[a-z][a-z0-9_]{0,31}_[0-9A-Za-z]{38}\b`
)

// digit maps a byte to its base62 value, or to 0xff if it is not in the
// alphabet.
var digit = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for i := range len(base62) {
		t[base62[i]] = byte(i)
	}
	return t
}()

// newSecret returns a fresh secret that starts with head (the prefix and '_').
func newSecret(head string) string {
	buf := make([]byte, len(head)+bodyLen+checksumLen)
	copy(buf, head)
	body := buf[len(head) : len(head)+bodyLen]
	var rnd [bodyLen + 16]byte
	for n := 0; n < bodyLen; {
		rand.Read(rnd[:]) // never fails: crypto/rand crashes the program instead
		for _, b := range rnd {
			// 248 = 4*62: rejecting larger bytes keeps every character
			// equally likely (no modulo bias).
			if b >= 248 {
				continue
			}
			body[n] = base62[b%62]
			if n++; n == bodyLen {
				break
			}
		}
	}
	putChecksum(buf[len(head)+bodyLen:], checksumIEEE(string(buf[:len(head)+bodyLen])))
	return string(buf)
}

// hintLen is the length of Token.Hint.
const hintLen = 4

// hintOf returns the Hint of a secret: its last hintLen characters, all
// within the checksum, so that the hint tells nothing of the random body
// that the checksum does not already.
func hintOf(secret string) string {
	return secret[len(secret)-hintLen:]
}

// putChecksum writes c as checksumLen big-endian base62 digits into dst.
func putChecksum(dst []byte, c uint32) {
	for i := checksumLen - 1; i >= 0; i-- {
		dst[i] = base62[c%62]
		c /= 62
	}
}

// wellFormed reports whether s has the shape of a secret that starts with
// head, whose CRC-32 is headCRC (the Issuer computes it once): length,
// prefix, alphabet and checksum. It does not allocate. It reads the checksum
// first: a mistyped secret, the common malformed one, is refused after the
// CRC alone, and the alphabet of the body is scanned only for a secret whose
// checksum holds. A secret of any prefix is checked by passing its own
// prefix as head.
func wellFormed(s, head string, headCRC uint32) bool {
	n := len(s) - checksumLen
	if n-len(head) != bodyLen || s[:len(head)] != head {
		return false
	}
	// Unrolled: the six digits of the checksum. digit is 0xff outside the
	// alphabet and below 62 in it, so bit 7 of bad marks a stray byte; and
	// 62^6 > 2^32, so a wrong checksum cannot wrap around to a right one.
	tail := s[n:]
	_ = tail[checksumLen-1]
	d0, d1, d2, d3, d4, d5 := digit[tail[0]], digit[tail[1]], digit[tail[2]], digit[tail[3]], digit[tail[4]], digit[tail[5]]
	bad := d0 | d1 | d2 | d3 | d4 | d5
	sum := ((((uint64(d0)*62+uint64(d1))*62+uint64(d2))*62+uint64(d3))*62+uint64(d4))*62 + uint64(d5)
	body := s[len(head):n]
	if bad&0x80 != 0 || sum != uint64(updateIEEE(headCRC, body)) {
		return false
	}
	for i := 0; i < bodyLen; i += 8 {
		if !base62Word(binary.LittleEndian.Uint64(bytesOf(body[i : i+8]))) {
			return false
		}
	}
	return true
}

// base62Word reports whether each of the 8 bytes of w is in the alphabet
// [0-9A-Za-z], with a few word operations instead of 8 lookups: for bytes
// under 0x80, (b|0x80) - lo keeps its high bit if and only if b >= lo, and
// (hi|0x80) - b if and only if b <= hi, and neither borrows from the next
// byte.
func base62Word(w uint64) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	if w&highs != 0 {
		return false
	}
	set := w | highs
	in := (set-ones*'0')&(ones*'9'|highs-w) |
		(set-ones*'A')&(ones*'Z'|highs-w) |
		(set-ones*'a')&(ones*'z'|highs-w)
	return in&highs == highs
}

// WellFormed reports whether secret has the shape of a secret this package
// issues, under any prefix: a valid prefix, '_', 32 base62 characters and a
// checksum that matches them. It calls no store and allocates nothing: a
// scanner or a leak report confirms a match with it before anything else.
// An Issuer accepts only secrets of its own prefix.
func WellFormed(secret string) bool {
	n := len(secret) - bodyLen - checksumLen // the length of the prefix and '_'
	if n < 2 || n > maxPrefixLen+1 || secret[n-1] != '_' || !validPrefix(secret[:n-1]) {
		return false
	}
	return wellFormed(secret, secret[:n], checksumIEEE(secret[:n]))
}

// Pattern returns the regular expression (RE2 and PCRE syntax) that matches
// the secrets of this Issuer's prefix, and no other: the one to give a
// secret scanner (gitleaks, trufflehog, a GitHub custom pattern), narrower
// than the package's Pattern, which matches every prefix. A match is
// confirmed with WellFormed.
func (iss *Issuer) Pattern() string {
	return `\b` + iss.head + `[0-9A-Za-z]{38}\b`
}

// bytesOf returns a read-only view of s, so that hashing a secret does not
// copy it. Callers must not modify or retain the slice.
func bytesOf(s string) []byte {
	return unsafe.Slice(unsafe.StringData(s), len(s))
}
