package apitoken

import (
	"crypto/fips140"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"hash"
	"reflect"
	"sync"
	"unsafe"
)

// defaultHashKey keys the hash when the application sets none. It is public,
// so it only separates our digests from plain SHA-256 ones; WithHashKey adds
// a real secret.
var defaultHashKey = []byte("github.com/apitoken-go/apitoken hash key, v1")

// A hasher computes the keyed digests by which stores keep secrets: under
// the current hash key (WithHashKey), and under each previous one
// (WithPreviousHashKeys). It is the one place where secrets are hashed.
//
// Why HMAC-SHA-256: secrets carry about 190 random bits, so one pass of a
// keyed hash is the approved protection at rest (NIST SP 800-63B-4
// §3.1.2.2); a password hash (bcrypt, argon2) would only add 10^5 times the
// cost per request against guessing that is already impossible, and its
// salt would forbid the indexed lookup by hash. Among keyed hashes,
// HMAC-SHA-256 measured cheapest here (SHA-NI): about 2.7x faster than keyed
// BLAKE2b-256 even through crypto/hmac (BenchmarkHash in hash_bench_test.go,
// BenchmarkKeyedHash in internal/bench).
type hasher struct {
	current  *mac
	previous []*mac // in the order WithPreviousHashKeys gave them
}

func newHasher(key []byte, previous [][]byte) *hasher {
	k := &hasher{current: newMAC(key)}
	for _, p := range previous {
		k.previous = append(k.previous, newMAC(p))
	}
	return k
}

// hash returns the digest of secret under the current key.
func (k *hasher) hash(secret string) Hash { return k.current.sum(secret) }

// A mac computes HMAC-SHA-256 (RFC 2104) under one key. HMAC is
//
//	SHA-256((K ^ opad) || SHA-256((K ^ ipad) || message))
//
// and K ^ ipad, K ^ opad are one block each: a mac hashes those two blocks
// once, in newMAC, and keeps the two SHA-256 states they leave. A sum copies
// the inner state into a digest on the stack, writes the message, finishes it,
// then does the same from the outer state with the inner digest: the two
// compressions of the message and of the inner digest, and nothing else (a
// secret of up to 55 bytes, padded here, is one block after the key's).
// crypto/hmac restores the same states by unmarshalling them on every Reset,
// and wraps each step in calls that cost, per verification, more than the
// two compressions themselves.
//
// The states are copied by value: crypto/sha256's digest is a struct without
// pointers behind the hash.Hash, which newMAC checks (its type, its size,
// that it holds no pointer) before relying on it, and which it checks again
// against crypto/hmac on a known input. Should either check fail (another
// Go release, a BoringCrypto build), or in FIPS 140-3 mode (GODEBUG
// fips140=on), the mac uses crypto/hmac through a pool instead: the same
// digests, slower.
type mac struct {
	inner, outer hash.Hash // SHA-256 states after K^ipad and K^opad; never written after newMAC
	slow         bool      // the states cannot be copied: use crypto/hmac
	pool         sync.Pool // of *macScratch, on the slow path
}

// macScratch is what one sum on the slow path needs: a crypto/hmac instance
// and a buffer for its sums, which would escape to the heap if it were a
// local passed to Sum through the interface.
type macScratch struct {
	h   hash.Hash
	buf [2 * sha256.Size]byte
}

// digestSize is the size of crypto/sha256's digest struct in the Go
// releases whose layout the mac copies; digestState is one such struct.
const digestSize = 120

type digestState [digestSize / 8]uint64 // words, which the compiler copies inline

// copyableDigest is the type of the digest sha256.New returns, when a state
// of it can be copied by value; nil otherwise.
var copyableDigest = func() reflect.Type {
	t := reflect.TypeOf(sha256.New())
	if t.Kind() != reflect.Pointer {
		return nil
	}
	e := t.Elem()
	if e.Size() != digestSize || e.Name() != "Digest" || e.PkgPath() != "crypto/internal/fips140/sha256" || hasPointers(e) {
		return nil
	}
	return t
}()

// hasPointers reports whether a value of type t holds a pointer the garbage
// collector would see: a copy of its bytes is then not a copy of its value.
func hasPointers(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Complex64, reflect.Complex128:
		return false
	case reflect.Array:
		return t.Len() > 0 && hasPointers(t.Elem())
	case reflect.Struct:
		for i := range t.NumField() {
			if hasPointers(t.Field(i).Type) {
				return true
			}
		}
		return false
	default:
		return true
	}
}

// state returns the digest behind h, which must be of copyableDigest's type.
func state(h hash.Hash) *digestState {
	return (*digestState)((*[2]unsafe.Pointer)(unsafe.Pointer(&h))[1])
}

func newMAC(key []byte) *mac {
	// In FIPS 140-3 mode the MAC must be the module's own HMAC.
	if copyableDigest == nil || fips140.Enabled() {
		return newSlowMAC(key)
	}
	// The key block as HMAC defines it: a key longer than a block is hashed
	// first, a shorter one padded with zeros.
	var block [sha256.BlockSize]byte
	if len(key) > len(block) {
		sum := sha256.Sum256(key)
		copy(block[:], sum[:])
	} else {
		copy(block[:], key)
	}
	m := &mac{inner: sha256.New(), outer: sha256.New()}
	var pad [sha256.BlockSize]byte
	for i, b := range block {
		pad[i] = b ^ 0x36
	}
	m.inner.Write(pad[:])
	for i, b := range block {
		pad[i] = b ^ 0x5c
	}
	m.outer.Write(pad[:])
	// The proof that copying the states and reading the chaining value is
	// HMAC on this build, for a message of one block and one of two.
	for _, probe := range []string{"apitoken: a mac is crypto/hmac", "apitoken: the states of a mac are those of crypto/hmac, hash for hash"} {
		want := hmac.New(sha256.New, key)
		want.Write([]byte(probe))
		if got := m.sum(probe); !hmac.Equal(got[:], want.Sum(nil)) {
			return newSlowMAC(key)
		}
	}
	return m
}

// newSlowMAC returns a mac that uses crypto/hmac, through a pool.
func newSlowMAC(key []byte) *mac {
	m := &mac{slow: true}
	m.pool.New = func() any { return &macScratch{h: hmac.New(sha256.New, key)} }
	return m
}

// sum returns the HMAC-SHA-256 of secret under the mac's key.
func (m *mac) sum(secret string) Hash {
	var h Hash
	if m.slow {
		s := m.pool.Get().(*macScratch)
		s.h.Reset()
		s.h.Write(bytesOf(secret))
		copy(h[:], s.h.Sum(s.buf[:0]))
		m.pool.Put(s)
		return h
	}
	// d stays on the stack, as in sha256.Sum256: the compiler knows its
	// type, so the calls below are direct and nothing escapes.
	d := sha256.New()
	if len(secret) <= oneBlock {
		// Every secret of a prefix up to 16 bytes. The message is padded
		// here, as SHA-256 pads it, into the one block that follows the key
		// block; the digest is then only asked to compress whole blocks,
		// and its chaining value read back, which spares the buffering and
		// the copies of Sum. The same for the outer hash, whose message is
		// the 32 bytes of the inner one.
		var blk [sha256.BlockSize]byte
		copy(blk[:], secret)
		blk[len(secret)] = 0x80
		binary.BigEndian.PutUint64(blk[sha256.BlockSize-8:], uint64(sha256.BlockSize+len(secret))*8)
		*state(d) = *state(m.inner)
		d.Write(blk[:])
		blk = [sha256.BlockSize]byte{}
		chainValue(d, blk[:sha256.Size])
		blk[sha256.Size] = 0x80
		binary.BigEndian.PutUint64(blk[sha256.BlockSize-8:], (sha256.BlockSize+sha256.Size)*8)
		*state(d) = *state(m.outer)
		d.Write(blk[:])
		chainValue(d, h[:])
		return h
	}
	var buf [2 * sha256.Size]byte
	*state(d) = *state(m.inner)
	d.Write(bytesOf(secret))
	inner := d.Sum(buf[:0])
	*state(d) = *state(m.outer)
	d.Write(inner)
	copy(h[:], d.Sum(buf[sha256.Size:sha256.Size]))
	return h
}

// oneBlock is the longest message whose padding fits in one block with it:
// the 0x80 byte and the 8-byte length.
const oneBlock = sha256.BlockSize - 9

// chainValue writes the chaining value of d, big-endian, to out: after a
// whole number of blocks, including the padding, the hash. It is the first
// field of crypto/sha256's digest, an [8]uint32, which newMAC's check on a
// known input confirms.
func chainValue(d hash.Hash, out []byte) {
	v := (*[8]uint32)(unsafe.Pointer(state(d)))
	for i, w := range v {
		binary.BigEndian.PutUint32(out[4*i:], w)
	}
}
