package apitoken_test

import (
	"context"
	"encoding/base64"
	"errors"
	"hash/crc32"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/apitoken-go/apitoken"
	"github.com/apitoken-go/apitoken/memstore"
)

// fuzzStore is a memstore that counts lookups.
type fuzzStore struct {
	*memstore.Store
	lookups atomic.Int64
}

func (s *fuzzStore) Lookup(ctx context.Context, h apitoken.Hash) (apitoken.Record, error) {
	s.lookups.Add(1)
	return s.Store.Lookup(ctx, h)
}

// fuzzFixture is an Issuer holding one token of acctA.
func fuzzFixture(f *testing.F) (*apitoken.Issuer, *fuzzStore, string, apitoken.Token) {
	f.Helper()
	st := &fuzzStore{Store: memstore.New()}
	iss, err := apitoken.NewIssuer(st)
	if err != nil {
		f.Fatal(err)
	}
	secret, tok, err := iss.Issue(context.Background(), apitoken.IssueParams{AccountID: acctA})
	if err != nil {
		f.Fatal(err)
	}
	return iss, st, secret, tok
}

// securityInputs are the inputs of SECURITY.md, built around an issued
// secret: whole Authorization values.
func securityInputs(secret string) []string {
	mid := len(secret) / 2
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	return []string{
		"Bearer " + secret, "bearer " + secret, "BEARER " + secret,
		"Bearer", "Bearer ", "Bearer  " + secret, "Bearer\t" + secret, "Bearer " + secret + " x",
		`Bearer "` + secret + `"`, "Token " + secret, "Bearer " + flipCase(secret),
		"Bearer " + secret[:mid] + secret[mid+1:], "Bearer " + secret[:mid] + "x" + secret[mid:],
		"Bearer " + changeChecksum(secret), "Bearer " + strings.Replace(secret, "_", "-", 1),
		"Bearer " + secret[:mid] + "\u200b" + secret[mid:],
		"Bearer " + secret + "\r", "Bearer " + secret + "\n", "Bearer " + secret + "\x00",
		"Bearer " + strings.Repeat("a", 8<<10),
		"Basic " + b64(acctA+":"+secret), "basic " + b64(acctA+":"+secret),
		"Basic", "Basic ", "Basic ===", "Basic Zm9v", "Basic " + b64(":"), "Basic " + b64(":tok"),
		"Basic " + b64("acct:"), "Basic " + b64(acctA+":"+secret+":x"), "Basic " + b64("acct\x00:"+secret),
		"Basic " + b64("\xff\xfe:"+secret), "Basic \xff\xfe", "\xff\xfe\xfd", "", ":",
	}
}

// wellFormedSecret is the test's own format check: the published Pattern,
// the issuer's prefix and length, and the CRC32 checksum.
func wellFormedSecret(s string, length int) bool {
	if len(s) != length || !strings.HasPrefix(s, apitoken.DefaultPrefix+"_") || !fullPattern.MatchString(s) {
		return false
	}
	body, sum := s[:len(s)-6], s[len(s)-6:]
	c := crc32.ChecksumIEEE([]byte(body))
	want := make([]byte, 6)
	for i := 5; i >= 0; i-- {
		want[i] = fuzzBase62[c%62]
		c /= 62
	}
	return sum == string(want)
}

// asciiLower folds ASCII letters only: HTTP schemes are ASCII, and Unicode
// folding would make "baſic" (long s) equal "basic".
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

const fuzzBase62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

var fullPattern = regexp.MustCompile(`^(?:` + apitoken.Pattern + `)$`)

// FuzzVerifySecret: Verify never panics, succeeds only for the issued pair,
// and lets no malformed secret reach the store.
func FuzzVerifySecret(f *testing.F) {
	iss, st, secret, tok := fuzzFixture(f)
	for _, in := range securityInputs(secret) {
		f.Add(acctA, in)
		if _, cred, ok := strings.Cut(in, " "); ok {
			f.Add(acctA, cred)
		}
	}
	f.Add(acctA, secret)
	f.Add(acctB, secret)
	f.Add("", secret)
	f.Add(acctA, secret+"\x00")
	f.Add(acctA, strings.ToUpper(secret))
	f.Fuzz(func(t *testing.T, account, s string) {
		before := st.lookups.Load()
		got, err := iss.Verify(context.Background(), account, s)
		lookups := st.lookups.Load() - before
		if err == nil {
			if account != acctA || s != secret {
				t.Fatalf("Verify accepted a pair that was not issued (%d-byte secret)", len(s))
			}
			if got.ID != tok.ID {
				t.Fatalf("Verify returned token %s, want %s", got.ID, tok.ID)
			}
			return
		}
		if !errors.Is(err, apitoken.ErrInvalidToken) || err.Error() != apitoken.ErrInvalidToken.Error() {
			t.Fatalf("Verify refused with %v, want ErrInvalidToken with its constant text", err)
		}
		if account == acctA && s == secret {
			t.Fatal("Verify refused the issued pair")
		}
		wf := wellFormedSecret(s, len(secret))
		if lookups > 0 && !wf {
			t.Fatalf("a malformed secret reached the store (%d lookups)", lookups)
		}
		if lookups > 1 {
			t.Fatalf("Verify made %d lookups, want at most one", lookups)
		}
		if wf && (account == acctA || account == acctB) && lookups != 1 {
			t.Fatal("a well-formed secret was refused without asking the store")
		}
	})
}

// FuzzMiddleware: the middleware never panics, answers 200, 400 or 401, and
// 200 exactly for the issued pair.
func FuzzMiddleware(f *testing.F) {
	iss, _, secret, tok := fuzzFixture(f)
	for _, in := range securityInputs(secret) {
		f.Add(in, acctA, false)
	}
	f.Add("Bearer "+secret, acctA, true)
	f.Add("Bearer "+secret, "", false)
	f.Add("Bearer "+secret, acctB, false)
	f.Add("Bearer "+secret, strings.Repeat("a", 1025), false)
	f.Add("Bearer "+secret, "acct\x00A", false)
	f.Add("Bearer "+secret, "acct:A", false)
	f.Add("Basic "+base64.StdEncoding.EncodeToString([]byte(acctA+":"+secret)), "", true)

	basicWant := base64.StdEncoding.EncodeToString([]byte(acctA + ":" + secret))
	var ran atomic.Int64
	h := iss.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ran.Add(1)
		got, ok := apitoken.FromContext(r.Context())
		if !ok || got.ID != tok.ID {
			w.WriteHeader(http.StatusTeapot) // fails the test below
		}
	}))
	f.Fuzz(func(t *testing.T, authz, account string, twice bool) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header["Authorization"] = []string{authz}
		if twice {
			r.Header["Authorization"] = []string{authz, authz}
		}
		r.Header["X-Account-Id"] = []string{account}
		before := ran.Load()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		called := ran.Load() > before

		scheme, cred, _ := strings.Cut(authz, " ")
		scheme = asciiLower(scheme)
		valid := !twice && (scheme == "bearer" && cred == secret && account == acctA ||
			scheme == "basic" && cred == basicWant)
		switch rec.Code {
		case http.StatusOK:
			if !valid {
				t.Fatalf("200 for a pair that was not issued (twice=%v)", twice)
			}
			if !called {
				t.Fatal("200 without calling the handler")
			}
			return
		case http.StatusBadRequest, http.StatusUnauthorized:
		default:
			t.Fatalf("status %d, want 200, 400 or 401", rec.Code)
		}
		if valid {
			t.Fatalf("status %d for the issued pair", rec.Code)
		}
		if called {
			t.Fatal("the handler ran on a refusal")
		}
		if body := rec.Body.String(); strings.Contains(body, secret) || (len(cred) >= 8 && strings.Contains(body, cred)) {
			t.Fatal("the body echoes the credentials")
		}
		if !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), `Bearer realm="api"`) {
			t.Fatal("a refusal without a Bearer challenge")
		}
		if rec.Header().Get("Cache-Control") != "no-store" {
			t.Fatal("a refusal without Cache-Control: no-store")
		}
	})
}

// FuzzWellFormed: WellFormed never panics and agrees with the published
// rule, written out apart: the package's Pattern over the whole string and
// the CRC32 of everything before the last six characters.
func FuzzWellFormed(f *testing.F) {
	_, _, secret, _ := fuzzFixture(f)
	for _, in := range securityInputs(secret) {
		f.Add(in)
	}
	f.Add(secret)
	f.Add("a_" + secret[len(secret)-38:])
	f.Add("my_app_" + secret[len(secret)-38:])
	f.Fuzz(func(t *testing.T, s string) {
		want := fullPattern.MatchString(s)
		if want {
			body, sum := s[:len(s)-6], s[len(s)-6:]
			c := crc32.ChecksumIEEE([]byte(body))
			digits := make([]byte, 6)
			for i := 5; i >= 0; i-- {
				digits[i] = fuzzBase62[c%62]
				c /= 62
			}
			want = sum == string(digits)
		}
		if got := apitoken.WellFormed(s); got != want {
			t.Fatalf("WellFormed = %v for a %d-byte input, want %v", got, len(s), want)
		}
	})
}
