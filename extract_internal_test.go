package apitoken

import (
	"encoding/base64"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The default extractor is Chain(FromBearer(""), FromBasic()), which it
// only shortens, on every kind of request: the same credentials, the same
// "not found", the same error, and the same schemes when probed.
func TestDefaultExtractorIsTheChain(t *testing.T) {
	chain := Chain(FromBearer(""), FromBasic())
	secret := newSecret("apitoken_")
	basic := func(s string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte(s)) }
	cases := []struct {
		name          string
		authorization []string
		account       []string
	}{
		{"none", nil, nil},
		{"bearer", []string{"Bearer " + secret}, []string{"acme"}},
		{"bearer, lower case", []string{"bearer " + secret}, []string{"acme"}},
		{"bearer without account", []string{"Bearer " + secret}, nil},
		{"bearer, two accounts", []string{"Bearer " + secret}, []string{"acme", "globex"}},
		{"bearer, malformed account", []string{"Bearer " + secret}, []string{"ac:me"}},
		{"bearer, two spaces", []string{"Bearer  " + secret}, []string{"acme"}},
		{"bearer, tab", []string{"Bearer\t" + secret}, []string{"acme"}},
		{"bearer, trailing text", []string{"Bearer " + secret + " x"}, []string{"acme"}},
		{"bearer, padding", []string{"Bearer " + secret + "=="}, []string{"acme"}},
		{"bearer, empty", []string{"Bearer"}, []string{"acme"}},
		{"bearer and basic headers", []string{"Bearer " + secret, basic("acme:" + secret)}, []string{"acme"}},
		{"basic", []string{basic("acme:" + secret)}, nil},
		{"basic with an account header", []string{basic("acme:" + secret)}, []string{"globex"}},
		{"basic without colon", []string{basic("acme")}, nil},
		{"basic, empty secret", []string{basic("acme:")}, nil},
		{"basic, not base64", []string{"Basic !!!"}, nil},
		{"another scheme", []string{"Token " + secret}, []string{"acme"}},
		{"a scheme starting like bearer", []string{"Bearerx " + secret}, []string{"acme"}},
		{"oversized", []string{"Bearer " + string(make([]byte, maxCredentialLen))}, []string{"acme"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.Header["Authorization"] = tc.authorization
			r.Header[defaultAccountHeader] = tc.account
			wantC, wantOK, wantErr := chain(r)
			gotC, gotOK, gotErr := defaultExtractor(r)
			assert.Equal(t, wantC, gotC)
			assert.Equal(t, wantOK, gotOK)
			assert.Equal(t, wantErr, gotErr)
		})
	}
	want, got := describe(chain), describe(defaultExtractor)
	require.NoError(t, got.err)
	assert.Equal(t, want.schemes, got.schemes)
	assert.Equal(t, want.forms, got.forms)
}

// isToken68, which reads words of letters and digits at once, agrees with
// the grammar read a byte at a time, on strings built from the characters
// that matter.
func TestIsToken68(t *testing.T) {
	reference := func(s string) bool {
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
	const chars = "aZ09-._~+/= \\x00\x80\xff:\""
	rnd := rand.New(rand.NewPCG(7, 8))
	for range 20000 {
		b := make([]byte, rnd.IntN(40))
		for i := range b {
			if rnd.IntN(4) == 0 {
				b[i] = chars[rnd.IntN(len(chars))]
			} else {
				b[i] = "abcXYZ0189"[rnd.IntN(10)]
			}
		}
		require.Equal(t, reference(string(b)), isToken68(string(b)), "%q", b)
	}
}
