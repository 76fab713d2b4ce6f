package apitoken

import (
	"crypto/hmac"
	"crypto/sha256"
	"testing"
)

// hashBenchStore lets BenchmarkHash build an Issuer without importing
// memstore, which would be an import cycle in an internal test. The
// benchmark never calls it.
type hashBenchStore struct{ Store }

// BenchmarkHash compares the keyed hashes a Store could index secrets by, on
// a real secret, to back the choice explained on the mac type in issuer.go.
// It is internal because the Issuer's hash is unexported. plain-sha256 is
// the unkeyed floor; the others are the candidates, each used the way a hot
// path would use it (reused state, no allocation) plus hmac.New per call to
// show what pooling saves. Keyed BLAKE2b, the one candidate outside the
// standard library, is measured in internal/bench (BenchmarkKeyedHash), so
// that the root module needs no golang.org/x/crypto.
//
//	go test -run '^$' -bench '^BenchmarkHash$' -benchmem -count 6 .
func BenchmarkHash(b *testing.B) {
	iss, err := NewIssuer(hashBenchStore{})
	if err != nil {
		b.Fatal(err)
	}
	secret := newSecret(iss.head)
	key := defaultHashKey
	var sink [32]byte

	b.Run("hash=plain-sha256", func(b *testing.B) {
		for b.Loop() {
			sink = sha256.Sum256(bytesOf(secret))
		}
	})
	b.Run("hash=hmac-sha256-pooled", func(b *testing.B) {
		// What Verify and Issue pay: the Issuer's own pooled HMAC (its hasher).
		for b.Loop() {
			sink = iss.keys.hash(secret)
		}
	})
	b.Run("hash=hmac-sha256-new", func(b *testing.B) {
		// hmac.New hashes the key into fresh inner and outer states each
		// time: the cost the pool avoids.
		for b.Loop() {
			m := hmac.New(sha256.New, key)
			m.Write(bytesOf(secret))
			copy(sink[:], m.Sum(nil))
		}
	})
	_ = sink
}
