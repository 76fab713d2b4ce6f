package apitoken

import (
	"hash/crc32"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// checksumIEEE is hash/crc32's CRC-32 (IEEE) on inputs of every length up
// to a few blocks of 8, random and all-ones.
func TestChecksumIEEE(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 4))
	for n := range 100 {
		b := make([]byte, n)
		for range 20 {
			for i := range b {
				b[i] = byte(rnd.Uint32())
			}
			require.Equal(t, crc32.ChecksumIEEE(b), checksumIEEE(string(b)), "%d random bytes", n)
		}
		for i := range b {
			b[i] = 0xff
		}
		require.Equal(t, crc32.ChecksumIEEE(b), checksumIEEE(string(b)), "%d bytes 0xff", n)
		for cut := range n {
			require.Equal(t, crc32.ChecksumIEEE(b), updateIEEE(checksumIEEE(string(b[:cut])), string(b[cut:])), "%d bytes cut at %d", n, cut)
		}
	}
	require.Equal(t, uint32(0xcbf43926), checksumIEEE("123456789"), "the check value of CRC-32/ISO-HDLC")
}
