package apitoken

import (
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCacheInvalidationMessages(t *testing.T) {
	longest := strings.Repeat("a", maxTextLen)
	for _, tc := range []struct {
		name, accountID, id string
		kind                byte
	}{
		{"one token", "acme", "0190b9a6-2f4c-7d3e-9a1b-5c6d7e8f9a0b", msgToken},
		{"every token of an account", "acme", "", msgAccount},
		{"one-byte ids", "a", "b", msgToken},
		{"longest ids", longest, longest, msgToken},
		{"longest account", longest, "", msgAccount},
		{"UTF-8 and bytes that look like a header", "caf\u00e9\x01t", "\x01a\x00", msgToken},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg := encodeInvalidation(tc.accountID, tc.id)
			assert.Less(t, len(msg), 300, "Bus promises messages under 300 bytes")
			assert.Equal(t, byte(msgVersion), msg[0])
			assert.Equal(t, tc.kind, msg[1])
			accountID, id, ok := decodeInvalidation(msg)
			require.True(t, ok)
			assert.Equal(t, tc.accountID, accountID)
			assert.Equal(t, tc.id, id)
		})
	}
}

func TestCacheInvalidationMessagesRefused(t *testing.T) {
	valid := encodeInvalidation("acme", "id1")
	for _, tc := range []struct {
		name string
		msg  []byte
	}{
		{"nil", nil},
		{"empty", []byte{}},
		{"version only", []byte{msgVersion}},
		{"no account length", []byte{msgVersion, msgToken}},
		{"version 0", append([]byte{0}, valid[1:]...)},
		{"version 2", append([]byte{2}, valid[1:]...)},
		{"unknown kind", append([]byte{msgVersion, 'x'}, valid[2:]...)},
		{"empty account id", []byte{msgVersion, msgAccount, 0}},
		{"empty account id, with a token id", append([]byte{msgVersion, msgToken, 0}, "id1"...)},
		{"account id longer than the message", []byte{msgVersion, msgAccount, 5, 'a', 'c'}},
		{"account id truncated by one byte", valid[:3+len("acme")-1]},
		{"token kind, nothing after the account", append([]byte{msgVersion, msgToken, 4}, "acme"...)},
		{"account message with trailing bytes", append([]byte{msgVersion, msgAccount, 4}, "acmeX"...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, ok := decodeInvalidation(tc.msg)
			assert.False(t, ok, "an unreadable message must empty the cache, not be applied")
		})
	}
}

// FuzzCacheInvalidationMessages: decoding never panics, and whatever it
// accepts encodes back to the same message.
func FuzzCacheInvalidationMessages(f *testing.F) {
	f.Add(encodeInvalidation("acme", "id1"))
	f.Add(encodeInvalidation("acme", ""))
	f.Add([]byte{msgVersion, msgAccount, 200, 'a'})
	f.Fuzz(func(t *testing.T, msg []byte) {
		accountID, id, ok := decodeInvalidation(msg)
		if !ok {
			return
		}
		if accountID == "" {
			t.Fatal("accepted an empty account id")
		}
		if got := encodeInvalidation(accountID, id); string(got) != string(msg) {
			t.Fatalf("decoded %q, %q, which encodes to %q, not %q", accountID, id, got, msg)
		}
	})
}

// cacheRec returns a record of account with id, whose hash derives from
// both.
func cacheRec(account, id string) Record {
	var h Hash
	copy(h[:], account+"/"+id)
	return Record{Token: Token{ID: id, AccountID: account, Scopes: []string{"read"}}, Hash: h}
}

// checkRing checks the cache's invariants: every cached record's ring
// position names its hash, and the cache holds at most size records.
func checkRing(t *testing.T, c *cache) {
	t.Helper()
	require.LessOrEqual(t, c.recs.Len(), len(c.ring), "the cache holds at most size records")
	live := 0
	for i, e := range c.ring {
		if p, ok := c.recs.Aux(e.h); e.used && ok && p == uint32(i) {
			live++
		}
	}
	require.Equal(t, c.recs.Len(), live, "every cached record has a ring position that names it")
}

func TestCacheRing(t *testing.T) {
	t0 := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	const ttl = time.Minute
	has := func(c *cache, r Record, at time.Time) bool {
		_, ok := c.get(r.Hash, at)
		return ok
	}

	t.Run("evicts in fill order", func(t *testing.T) {
		c := newCache(3, ttl, t0)
		recs := []Record{cacheRec("a", "1"), cacheRec("a", "2"), cacheRec("b", "3"), cacheRec("b", "4"), cacheRec("a", "5")}
		for i, r := range recs {
			c.put(r, c.generation(), t0.Add(time.Duration(i)))
			checkRing(t, c)
		}
		for i, r := range recs {
			assert.Equal(t, i >= 2, has(c, r, t0), "record %d", i)
		}
	})

	t.Run("a hit returns a copy", func(t *testing.T) {
		c := newCache(3, ttl, t0)
		r := cacheRec("a", "1")
		c.put(r, c.generation(), t0)
		r.Scopes[0] = "admin"
		got, ok := c.get(r.Hash, t0)
		require.True(t, ok)
		assert.Equal(t, []string{"read"}, got.Scopes, "put keeps no reference to the caller's Scopes")
		got.Scopes[0] = "admin"
		got, _ = c.get(r.Hash, t0)
		assert.Equal(t, []string{"read"}, got.Scopes, "get returns a copy")
	})

	t.Run("an entry lives from its fill for the TTL", func(t *testing.T) {
		c := newCache(3, ttl, t0)
		r := cacheRec("a", "1")
		c.put(r, c.generation(), t0)
		assert.True(t, has(c, r, t0.Add(ttl-time.Nanosecond)))
		assert.False(t, has(c, r, t0.Add(ttl)))
		c.put(r, c.generation(), t0.Add(ttl/2))
		assert.False(t, has(c, r, t0.Add(ttl)), "a put within the TTL keeps the first fill's deadline")
		c.put(r, c.generation(), t0.Add(ttl))
		assert.True(t, has(c, r, t0.Add(2*ttl-time.Nanosecond)), "a put past the TTL fills again")
		checkRing(t, c)
		assert.Equal(t, 1, c.recs.Len())
	})

	t.Run("a put begun before an invalidation of its token is dropped, of another kept", func(t *testing.T) {
		others := func(c *cache, n int) {
			for i := range n {
				c.invalidate("b", strconv.Itoa(i))
			}
		}
		for _, inv := range []struct {
			name string
			f    func(c *cache)
			kept bool
		}{
			{"of that token", func(c *cache) { c.invalidate("a", "1") }, false},
			{"of the account", func(c *cache) { c.invalidate("a", "") }, false},
			{"of everything", func(c *cache) { c.clear() }, false},
			{"of another token", func(c *cache) { c.invalidate("b", "9") }, true},
			{"of the same id in another account", func(c *cache) { c.invalidate("b", "1") }, true},
			{"of another token of the account", func(c *cache) { c.invalidate("a", "2") }, true},
			{"of another account", func(c *cache) { c.invalidate("b", "") }, true},
			{"of that token, then a window of others", func(c *cache) { c.invalidate("a", "1"); others(c, invalidationWindow-1) }, false},
			{"of a window of others", func(c *cache) { others(c, invalidationWindow) }, true},
			{"of more others than the window remembers", func(c *cache) { others(c, invalidationWindow+1) }, false},
		} {
			t.Run(inv.name, func(t *testing.T) {
				c := newCache(3, ttl, t0)
				r := cacheRec("a", "1")
				gen := c.generation()
				inv.f(c)
				c.put(r, gen, t0)
				assert.Equal(t, inv.kept, has(c, r, t0))
				if !inv.kept {
					assert.Equal(t, uint64(1), c.fillsDropped())
				}
				c.put(r, c.generation(), t0)
				assert.True(t, has(c, r, t0), "a put begun after it is kept")
			})
		}
	})

	t.Run("with a window of 0, any invalidation drops every fill under way", func(t *testing.T) {
		c := newCache(3, ttl, t0)
		c.inv = newInvalidations(0)
		r := cacheRec("a", "1")
		gen := c.generation()
		c.invalidate("b", "9")
		c.put(r, gen, t0)
		assert.False(t, has(c, r, t0))
	})

	t.Run("invalidate drops the token or the account, nothing else", func(t *testing.T) {
		c := newCache(8, ttl, t0)
		a1, a2, b1 := cacheRec("a", "1"), cacheRec("a", "2"), cacheRec("b", "3")
		for _, r := range []Record{a1, a2, b1} {
			c.put(r, c.generation(), t0)
		}
		c.invalidate("b", "1") // id 1 is account a's
		assert.True(t, has(c, a1, t0), "an id is invalidated only in its account")
		c.invalidate("a", "1")
		assert.False(t, has(c, a1, t0))
		assert.True(t, has(c, a2, t0))
		c.invalidate("a", "")
		assert.False(t, has(c, a2, t0))
		assert.True(t, has(c, b1, t0))
		checkRing(t, c)
	})

	t.Run("invariants under random operations", func(t *testing.T) {
		rng := rand.New(rand.NewPCG(1, 2))
		c := newCache(5, ttl, t0)
		now := t0
		for range 5000 {
			now = now.Add(time.Duration(rng.IntN(int(ttl / 4))))
			id := string(rune('a' + rng.IntN(12)))
			account := string(rune('A' + rng.IntN(3)))
			r := cacheRec(account, id)
			switch op := rng.IntN(20); {
			case op < 14:
				c.put(r, c.generation(), now)
				_, ok := c.get(r.Hash, now)
				// The id may be cached under another account: then it stays out.
				_, inAccount := c.recs.HashOf(account, id)
				assert.Equal(t, inAccount, ok)
				assert.True(t, c.recs.HasID(id))
			case op < 17:
				c.invalidate(account, id)
				assert.False(t, has(c, r, now))
			case op < 19:
				c.invalidate(account, "")
				assert.Zero(t, c.recs.AccountLen(account))
			default:
				c.clear()
				assert.Zero(t, c.recs.Len())
			}
			checkRing(t, c)
		}
	})
}
