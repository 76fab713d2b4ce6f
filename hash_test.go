package apitoken

import (
	"crypto/fips140"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The mac is HMAC-SHA-256: for random keys (shorter than a block, a block,
// longer, which HMAC hashes first) and random messages, on the path that
// copies digest states and on the crypto/hmac fallback, it gives what
// crypto/hmac gives.
func TestMACIsHMAC(t *testing.T) {
	require.NotNil(t, copyableDigest, "this Go release's SHA-256 digest can be copied by value: the fast path must be on")
	rnd := rand.New(rand.NewPCG(1, 2))
	bytes := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rnd.Uint32())
		}
		return b
	}
	keyLens := []int{0, 1, 16, 32, 44, 55, 63, 64, 65, 100, 128, 200}
	msgLens := []int{0, 1, 47, 55, 56, 63, 64, 65, 119, 120, 128, 300}
	for range 20 {
		for _, kl := range keyLens {
			key := bytes(kl)
			fast := newMAC(key)
			// In FIPS 140-3 mode only the module's HMAC is used.
			require.Equal(t, fips140.Enabled(), fast.slow, "the states' copy must agree with crypto/hmac")
			slow := newSlowMAC(key)
			for _, ml := range msgLens {
				msg := string(bytes(ml))
				want := hmac.New(sha256.New, key)
				want.Write([]byte(msg))
				sum := want.Sum(nil)
				for range 2 { // a pooled scratch is reused
					got := fast.sum(msg)
					require.Equal(t, sum, got[:], "key of %d bytes, message of %d", kl, ml)
					got = slow.sum(msg)
					require.Equal(t, sum, got[:], "fallback, key of %d bytes, message of %d", kl, ml)
				}
			}
		}
	}
	// RFC 4231, test case 2.
	got := newMAC([]byte("Jefe")).sum("what do ya want for nothing?")
	assert.Equal(t, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843", hex.EncodeToString(got[:]))
}

// A state is copied only from a digest type without pointers.
func TestHasPointers(t *testing.T) {
	assert.False(t, hasPointers(reflect.TypeFor[struct {
		h [8]uint32
		x [64]byte
		n int
		b bool
	}]()))
	assert.True(t, hasPointers(reflect.TypeFor[struct{ s string }]()))
	assert.True(t, hasPointers(reflect.TypeFor[[2]*int]()))
	assert.True(t, hasPointers(reflect.TypeFor[struct{ b []byte }]()))
}

// The hash of a verification allocates nothing.
func TestMACAllocations(t *testing.T) {
	m := newMAC(defaultHashKey)
	secret := strings.Repeat("a", 47)
	assert.Zero(t, testing.AllocsPerRun(1000, func() { _ = m.sum(secret) }))
}
