// Package bench holds the benchmarks that need a dependency the library
// modules must not require (golang.org/x/crypto here), and the loopback
// load test in loadtest/.
package bench

import (
	"crypto/hmac"
	"crypto/sha256"
	"hash"
	"sync"
	"testing"

	"golang.org/x/crypto/blake2b"
)

// secret has the shape and length of a secret the Issuer makes.
const secret = "apitoken_DoNotUseThisExampleTokenAnywhere2Exu8m"

// key has the length of a hash key an application gives WithHashKey.
var key = []byte("0123456789abcdef0123456789abcdef")

// BenchmarkKeyedHash compares keyed BLAKE2b-256 with the pooled
// HMAC-SHA-256 the Issuer uses (see BenchmarkHash in the root package for
// the Issuer's own), each used the way a hot path would use it, beside the
// plain SHA-256 floor in the same run.
//
//	go test -run '^$' -bench '^BenchmarkKeyedHash$' -benchmem -count 6 ./internal/bench
func BenchmarkKeyedHash(b *testing.B) {
	msg := []byte(secret)
	var sink [32]byte

	b.Run("hash=plain-sha256", func(b *testing.B) {
		for b.Loop() {
			sink = sha256.Sum256(msg)
		}
	})
	b.Run("hash=hmac-sha256-pooled", func(b *testing.B) {
		pool := sync.Pool{New: func() any { return hmac.New(sha256.New, key) }}
		for b.Loop() {
			h := pool.Get().(hash.Hash)
			h.Reset()
			h.Write(msg)
			h.Sum(sink[:0])
			pool.Put(h)
		}
	})
	b.Run("hash=blake2b256-keyed-reused", func(b *testing.B) {
		// One keyed instance reset each time: the cheapest way to use
		// keyed BLAKE2b, better than a pool can do.
		h, err := blake2b.New256(key)
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			h.Reset()
			h.Write(msg)
			h.Sum(sink[:0])
		}
	})
	b.Run("hash=blake2b256-keyed-pooled", func(b *testing.B) {
		// The same through a sync.Pool, as the Issuer would have to use it
		// (a hash.Hash is not safe for concurrent use).
		pool := sync.Pool{New: func() any {
			h, err := blake2b.New256(key)
			if err != nil {
				panic(err)
			}
			return h
		}}
		for b.Loop() {
			h := pool.Get().(hash.Hash)
			h.Reset()
			h.Write(msg)
			h.Sum(sink[:0])
			pool.Put(h)
		}
	})
	_ = sink
}
