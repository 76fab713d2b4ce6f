package apitoken

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// base62Word agrees with the alphabet table on every byte value at every
// position of a word, and on random words.
func TestBase62Word(t *testing.T) {
	inAlphabet := func(w uint64) bool {
		for range 8 {
			if digit[byte(w)] == 0xff {
				return false
			}
			w >>= 8
		}
		return true
	}
	const valid = 0x3061417a5a39307a // "z09Zza1A0a": all in the alphabet
	require.True(t, base62Word(valid))
	for pos := range 8 {
		for b := range 256 {
			w := valid&^(0xff<<(8*pos)) | uint64(b)<<(8*pos)
			require.Equal(t, inAlphabet(w), base62Word(w), "byte %#x at position %d", b, pos)
		}
	}
	rnd := rand.New(rand.NewPCG(5, 6))
	for range 100000 {
		w := rnd.Uint64()
		if rnd.IntN(2) == 0 {
			w &^= 0x8080808080808080 // mostly ASCII, where the ranges matter
		}
		require.Equal(t, inAlphabet(w), base62Word(w), "word %#x", w)
	}
}
