package table

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// masks runs each test twice: with the keys of ids and accounts as they are,
// and with every key colliding, which sends all but one id and one account
// through the overflow maps.
var masks = []struct {
	name string
	mask uint64
}{
	{"distinct keys", math.MaxUint64},
	{"every key collides", 0},
}

func newTable(mask uint64) *Table {
	t := New()
	t.mask = mask
	return t
}

func forMasks(t *testing.T, test func(t *testing.T, tb *Table)) {
	for _, m := range masks {
		t.Run(m.name, func(t *testing.T) { test(t, newTable(m.mask)) })
	}
}

var base = time.Date(2026, time.November, 27, 12, 34, 56, 123456000, time.UTC)

var seq int

// rec returns a record with a fresh id and hash in the account.
func rec(account string) Record {
	seq++
	var h [32]byte
	h[0], h[1], h[31] = byte(seq), byte(seq>>8), byte(seq>>16)
	return Record{
		Token: Token{ID: fmt.Sprintf("id-%d", seq), AccountID: account, CreatedAt: base.Add(time.Duration(seq) * time.Second)},
		Hash:  h,
	}
}

// requireGet checks that the record with want's hash is want, field by
// field, times to the instant and in UTC.
func requireGet(t *testing.T, tb *Table, want Record) {
	t.Helper()
	got, ok := tb.Get(want.Hash)
	require.True(t, ok, "Get must find the record with id %q", want.ID)
	assertRecord(t, want, got)
}

func assertRecord(t *testing.T, want, got Record) {
	t.Helper()
	assert.Equal(t, want.Hash, got.Hash)
	assertToken(t, want.Token, got.Token)
}

func assertToken(t *testing.T, want, got Token) {
	t.Helper()
	for _, tm := range []struct {
		name      string
		want, got time.Time
	}{{"CreatedAt", want.CreatedAt, got.CreatedAt}, {"ExpiresAt", want.ExpiresAt, got.ExpiresAt}, {"LastUsedAt", want.LastUsedAt, got.LastUsedAt}} {
		if tm.want.IsZero() {
			assert.True(t, tm.got.IsZero(), "%s must stay zero, got %s", tm.name, tm.got)
			assert.Equal(t, time.Time{}, tm.got, "%s: a zero time reads back as time.Time{}", tm.name)
			continue
		}
		assert.Same(t, time.UTC, tm.got.Location(), "%s must read back in UTC", tm.name)
		assert.True(t, tm.want.Truncate(time.Microsecond).Equal(tm.got), "%s: got %s, want %s", tm.name, tm.got, tm.want)
	}
	if len(want.Scopes) == 0 {
		assert.Nil(t, got.Scopes, "no scopes read back nil")
	}
	want.Scopes = slices.Clip(want.Scopes)
	if len(want.Scopes) == 0 {
		want.Scopes = nil
	}
	want.CreatedAt, want.ExpiresAt, want.LastUsedAt = got.CreatedAt, got.ExpiresAt, got.LastUsedAt
	assert.Equal(t, want, got)
}

// checkInvariants checks every index against the slots, and the arena's
// garbage count against the live texts.
func checkInvariants(t *testing.T, tb *Table) {
	t.Helper()
	live, text := 0, 0
	accounts := map[string]int{}
	for i := range tb.slots {
		s := &tb.slots[i]
		if s.n == 0 {
			assert.Equal(t, slot{}, *s, "a free slot is cleared")
			continue
		}
		live++
		text += padded(s.n)
		assert.Equal(t, ref{uint32(i), s.off}, tb.byHash[s.hash], "byHash finds slot %d and its text", i)
		j, ok := tb.findID(string(tb.text(uint32(i), fieldID)))
		assert.True(t, ok && j == uint32(i), "the id of slot %d finds it", i)
		accounts[string(tb.text(uint32(i), fieldAccountID))]++
	}
	assert.Equal(t, live, tb.Len())
	assert.Equal(t, len(tb.slots)-live, len(tb.free), "every free slot is on the free list")
	assert.Equal(t, live, len(tb.byID)+len(tb.byIDOverflow), "one id entry per record")
	assert.Equal(t, len(accounts), len(tb.byAccount)+len(tb.byAccountOverflow), "one chain per account")
	assert.Equal(t, len(tb.arena)-tb.garbage, text, "garbage counts the arena bytes of deleted records")
	assert.Zero(t, len(tb.arena)%textAlign, "texts are padded to textAlign bytes")
	for acct, n := range accounts {
		c, _, _ := tb.findAccount(acct)
		assert.Equal(t, n, int(c.len), "the chain of %q counts its records", acct)
		seen, prev := 0, uint32(none)
		for i := c.head; i != none; i = tb.slots[i].next {
			assert.Equal(t, prev, tb.slots[i].prev, "the chain of %q links both ways", acct)
			assert.Equal(t, acct, string(tb.text(i, fieldAccountID)), "the chain of %q holds only its records", acct)
			prev = i
			seen++
		}
		assert.Equal(t, n, seen, "the chain of %q reaches every record", acct)
	}
}

func TestRoundTrip(t *testing.T) {
	paris, err := time.LoadLocation("Europe/Paris")
	require.NoError(t, err)
	long := strings.Repeat("é", 64)
	tests := []struct {
		name string
		edit func(r *Record)
	}{
		{"every field set", func(r *Record) {
			r.MemberID, r.Name, r.Scopes = "member-42", `deploy key "prod" ☃`, []string{"read", "write", "admin:org"}
			r.ExpiresAt = base.Add(30*24*time.Hour + 876543*time.Microsecond)
			r.LastUsedAt = base.Add(time.Hour + time.Microsecond)
		}},
		{"empty texts, no scopes, zero times", func(r *Record) {}},
		{"hint, allowed prefixes of both families, disabled, last address", func(r *Record) {
			r.Hint, r.Disabled = "x9Zq", true
			r.AllowedIPs = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("2001:db8::/32"),
				netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("2001:db8::1/128"), netip.MustParsePrefix("10.1.2.3/32")}
			r.LastUsedIP = netip.MustParseAddr("2001:db8::7")
			r.Scopes = []string{"read"}
		}},
		{"an IPv4 last address", func(r *Record) { r.LastUsedIP = netip.MustParseAddr("198.51.100.7") }},
		{"empty account id and id", func(r *Record) { r.ID, r.AccountID = "", "" }},
		{"empty scopes read back nil", func(r *Record) { r.Scopes = []string{} }},
		{"empty scope strings", func(r *Record) { r.Scopes = []string{"", "a", ""} }},
		{"long texts, many scopes", func(r *Record) {
			r.AccountID, r.MemberID, r.Name = long, long, strings.Repeat("n", 70000)
			for i := range 300 {
				r.Scopes = append(r.Scopes, fmt.Sprintf("scope-%d", i))
			}
		}},
		{"bytes that are not UTF-8", func(r *Record) { r.ID, r.Name = "\xff\x00id", "\x80" }},
		{"times in another zone read back in UTC", func(r *Record) {
			r.CreatedAt = base.In(paris)
			r.ExpiresAt = base.Add(time.Hour).In(paris)
		}},
		{"times below the microsecond are truncated", func(r *Record) {
			r.CreatedAt = base.Add(999 * time.Nanosecond)
			r.LastUsedAt = base.Add(time.Microsecond + time.Nanosecond)
		}},
		{"the Unix epoch is not the zero time", func(r *Record) {
			r.CreatedAt, r.ExpiresAt = time.Unix(0, 0), time.Unix(0, 0).UTC()
		}},
		{"times before the epoch and far ahead", func(r *Record) {
			r.CreatedAt = time.Date(1, time.January, 1, 0, 0, 0, 1000, time.UTC)
			r.ExpiresAt = time.Date(9999, time.December, 31, 23, 59, 59, 999999000, time.UTC)
			r.LastUsedAt = time.Date(1969, time.December, 31, 23, 59, 59, 999999000, time.UTC)
		}},
	}
	forMasks(t, func(t *testing.T, tb *Table) {
		var all []Record
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				r := rec("acct-" + tt.name)
				tt.edit(&r)
				want := r
				want.Scopes = slices.Clone(r.Scopes)
				require.True(t, tb.Put(r))
				for i := range r.Scopes {
					r.Scopes[i] = "changed" // Put must not retain the slice
				}
				requireGet(t, tb, want)
				toks := tb.Account(want.AccountID)
				require.Len(t, toks, 1)
				assertToken(t, want.Token, toks[0])
				all = append(all, want)
			})
		}
		for _, r := range all {
			requireGet(t, tb, r)
		}
		checkInvariants(t, tb)
	})
}

func TestReadsShareNothing(t *testing.T) {
	tb := New()
	r := rec("acme")
	r.Scopes = []string{"read", "write"}
	require.True(t, tb.Put(r))
	got, ok := tb.Get(r.Hash)
	require.True(t, ok)
	got.Scopes[0] = "admin"
	toks := tb.Account("acme")
	toks[0].Scopes[1] = "admin"
	requireGet(t, tb, Record{Token: Token{ID: r.ID, AccountID: "acme", Scopes: []string{"read", "write"}, CreatedAt: r.CreatedAt}, Hash: r.Hash})
}

func TestDuplicates(t *testing.T) {
	forMasks(t, func(t *testing.T, tb *Table) {
		first := rec("acme")
		require.True(t, tb.Put(first))

		sameHash := rec("acme")
		sameHash.Hash = first.Hash
		assert.False(t, tb.Put(sameHash), "a duplicate hash is refused")
		assert.False(t, tb.HasID(sameHash.ID), "a refused Put stores nothing")

		sameID := rec("globex")
		sameID.ID = first.ID
		assert.False(t, tb.Put(sameID), "a duplicate id is refused, whatever the account")
		assert.False(t, tb.Has(sameID.Hash), "a refused Put stores nothing")
		assert.Zero(t, tb.AccountLen("globex"), "a refused Put stores nothing")

		requireGet(t, tb, first)
		checkInvariants(t, tb)
	})
}

// IDs compare byte for byte: UUIDs differing in case, or by a space, are
// distinct records.
func TestIDsAreByteExact(t *testing.T) {
	const id = "019ac5e2-7b1c-7abc-8def-0123456789ab"
	forMasks(t, func(t *testing.T, tb *Table) {
		variants := []string{id, strings.ToUpper(id), id + " ", id[:len(id)-1], "{" + id + "}", "urn:uuid:" + id}
		recs := make([]Record, len(variants))
		for i, v := range variants {
			recs[i] = rec("acme")
			recs[i].ID = v
			require.True(t, tb.Put(recs[i]), "id %q is new", v)
		}
		for _, r := range recs {
			requireGet(t, tb, r)
		}
		assert.False(t, tb.Delete("acme", strings.ToLower("019AC5E2-7B1C-7ABC-8DEF-0123456789AC")), "an unknown id")
		require.True(t, tb.Delete("acme", strings.ToUpper(id)))
		assert.False(t, tb.Has(recs[1].Hash))
		assert.True(t, tb.HasID(id), "deleting the upper-case id leaves the lower-case one")
		for _, r := range append(recs[:1:1], recs[2:]...) {
			requireGet(t, tb, r)
		}
		checkInvariants(t, tb)
	})
}

func TestAccounts(t *testing.T) {
	forMasks(t, func(t *testing.T, tb *Table) {
		a1, a2, a3 := rec("acme"), rec("acme"), rec("acme")
		upper := rec("ACME")
		require.True(t, tb.Put(a1))
		require.True(t, tb.Put(a2))
		require.True(t, tb.Put(upper))
		require.True(t, tb.Put(a3))
		assert.Equal(t, 3, tb.AccountLen("acme"))
		assert.Equal(t, 1, tb.AccountLen("ACME"))
		assert.Zero(t, tb.AccountLen("initech"))
		assert.Empty(t, tb.Account("initech"))
		assert.ElementsMatch(t, []Token{a1.Token, a2.Token, a3.Token}, tb.Account("acme"))

		assert.False(t, tb.Delete("ACME", a2.ID), "a token of another account (byte for byte) is not deleted")
		// Deleting the middle, the head and the tail of the chain.
		for _, r := range []Record{a2, a3, a1} {
			require.True(t, tb.Delete("acme", r.ID))
			assert.False(t, tb.Delete("acme", r.ID), "a deleted token is gone")
			checkInvariants(t, tb)
		}
		assert.Zero(t, tb.AccountLen("acme"))
		require.True(t, tb.Put(a1), "an account whose last token was deleted takes new ones")
		assert.Equal(t, []Token{a1.Token}, tb.Account("acme"))

		assert.Equal(t, 1, tb.DeleteAccount("acme"))
		assert.Zero(t, tb.DeleteAccount("acme"))
		requireGet(t, tb, upper)
		assert.Equal(t, 1, tb.Len())
		checkInvariants(t, tb)
	})
}

func TestDeleteExpired(t *testing.T) {
	forMasks(t, func(t *testing.T, tb *Table) {
		cut := base.Add(time.Hour)
		expiring := func(at time.Time) Record {
			r := rec("acme")
			r.ExpiresAt = at
			return r
		}
		expired := []Record{expiring(cut.Add(-time.Microsecond)), expiring(cut), expiring(time.Unix(0, 0))}
		live := []Record{rec("acme"), expiring(cut.Add(time.Microsecond))}
		for _, r := range append(slices.Clone(expired), live...) {
			require.True(t, tb.Put(r))
		}
		assert.Equal(t, len(expired), tb.DeleteExpired(cut))
		for _, r := range expired {
			assert.False(t, tb.Has(r.Hash))
		}
		for _, r := range live {
			requireGet(t, tb, r)
		}
		assert.Zero(t, tb.DeleteExpired(cut))
		checkInvariants(t, tb)
	})
}

func TestSetExpiry(t *testing.T) {
	forMasks(t, func(t *testing.T, tb *Table) {
		r := rec("acme")
		require.True(t, tb.Put(r))
		at := base.Add(time.Hour + time.Microsecond)
		assert.False(t, tb.SetExpiry("acme", r.ID, base, at), "from is not the token's expiry")
		assert.False(t, tb.SetExpiry("ACME", r.ID, time.Time{}, at), "another account")
		assert.False(t, tb.SetExpiry("acme", "unknown", time.Time{}, at), "an unknown id")
		requireGet(t, tb, r)
		require.True(t, tb.SetExpiry("acme", r.ID, time.Time{}, at))
		assert.False(t, tb.SetExpiry("acme", r.ID, time.Time{}, base), "the expiry is no longer zero")
		r.ExpiresAt = at
		requireGet(t, tb, r)
		require.True(t, tb.SetExpiry("acme", r.ID, at, base))
		r.ExpiresAt = base
		requireGet(t, tb, r)
	})
}

func TestSetLastUsed(t *testing.T) {
	ip := netip.MustParseAddr("192.0.2.1")
	forMasks(t, func(t *testing.T, tb *Table) {
		r := rec("acme")
		require.True(t, tb.Put(r))
		assert.False(t, tb.SetLastUsed("unknown", base, ip))
		require.True(t, tb.SetLastUsed(r.ID, base.Add(time.Hour), ip))
		r.LastUsedAt, r.LastUsedIP = base.Add(time.Hour), ip
		requireGet(t, tb, r)
		require.True(t, tb.SetLastUsed(r.ID, base, netip.MustParseAddr("::1")), "an earlier use is accepted")
		requireGet(t, tb, r) // and ignored, with its address
		require.True(t, tb.SetLastUsed(r.ID, base.Add(2*time.Hour), netip.Addr{}))
		r.LastUsedAt, r.LastUsedIP = base.Add(2*time.Hour), netip.Addr{}
		requireGet(t, tb, r) // a later use from an unknown address forgets the address
	})
}

func TestSetDisabled(t *testing.T) {
	forMasks(t, func(t *testing.T, tb *Table) {
		r, other := rec("acme"), rec("ACME")
		require.True(t, tb.Put(r))
		require.True(t, tb.Put(other))
		assert.False(t, tb.SetDisabled("ACME", r.ID, true), "another account's token")
		assert.False(t, tb.SetDisabled("acme", "unknown", true))
		require.True(t, tb.SetDisabled("acme", r.ID, true))
		r.Disabled = true
		requireGet(t, tb, r)
		requireGet(t, tb, other)
		require.True(t, tb.SetDisabled("acme", r.ID, false))
		r.Disabled = false
		requireGet(t, tb, r)
	})
}

func TestDeleteMember(t *testing.T) {
	forMasks(t, func(t *testing.T, tb *Table) {
		var alice, keep []Record
		for i := range 6 {
			r := rec("acme")
			r.MemberID = []string{"alice", "bob", "Alice"}[i%3]
			if r.MemberID == "alice" {
				alice = append(alice, r)
			} else {
				keep = append(keep, r)
			}
			require.True(t, tb.Put(r))
		}
		elsewhere := rec("other")
		elsewhere.MemberID = "alice"
		require.True(t, tb.Put(elsewhere))
		keep = append(keep, elsewhere)
		assert.Equal(t, len(alice), tb.DeleteMember("acme", "alice"))
		for _, r := range alice {
			assert.False(t, tb.Has(r.Hash))
		}
		for _, r := range keep {
			requireGet(t, tb, r)
		}
		assert.Zero(t, tb.DeleteMember("acme", "alice"))
		checkInvariants(t, tb)
	})
}

func TestDeleteUnused(t *testing.T) {
	forMasks(t, func(t *testing.T, tb *Table) {
		cut := base.Add(time.Hour)
		usedBefore, neverUsedOld, usedAfter, neverUsedNew := rec("a"), rec("b"), rec("a"), rec("b")
		usedBefore.LastUsedAt = cut.Add(-time.Microsecond)
		usedAfter.CreatedAt, usedAfter.LastUsedAt = base.Add(-time.Hour), cut // used at the cut: used since
		neverUsedNew.CreatedAt = cut
		for _, r := range []Record{usedBefore, neverUsedOld, usedAfter, neverUsedNew} {
			require.True(t, tb.Put(r))
		}
		assert.Equal(t, 1, tb.DeleteUnused(cut, 1), "at most limit")
		assert.Equal(t, 1, tb.DeleteUnused(cut, 10))
		assert.Zero(t, tb.DeleteUnused(cut, 10))
		assert.False(t, tb.Has(usedBefore.Hash))
		assert.False(t, tb.Has(neverUsedOld.Hash))
		requireGet(t, tb, usedAfter)
		requireGet(t, tb, neverUsedNew)
		checkInvariants(t, tb)
	})
}

func TestExpiring(t *testing.T) {
	forMasks(t, func(t *testing.T, tb *Table) {
		var want []string
		for i := range 40 {
			r := rec(fmt.Sprintf("acct-%d", i%3))
			// Ten expiry times, four tokens each, in no order.
			r.ExpiresAt = base.Add(time.Duration((i*7)%10) * time.Hour)
			require.True(t, tb.Put(r))
		}
		never := rec("acct-0")
		require.True(t, tb.Put(never))
		before := base.Add(8 * time.Hour)
		var all []Token
		after, afterID := time.Time{}, ""
		for {
			page := tb.Expiring(after, afterID, before, 3)
			assert.LessOrEqual(t, len(page), 3)
			all = append(all, page...)
			if len(page) < 3 {
				break
			}
			after, afterID = page[len(page)-1].ExpiresAt, page[len(page)-1].ID
		}
		require.Len(t, all, 32, "eight expiry times before the cut, four tokens each")
		assert.True(t, slices.IsSortedFunc(all, func(a, b Token) int {
			if c := a.ExpiresAt.Compare(b.ExpiresAt); c != 0 {
				return c
			}
			return strings.Compare(a.ID, b.ID)
		}), "soonest first, ties by id")
		for _, tok := range all {
			want = append(want, tok.ID)
			assert.True(t, tok.ExpiresAt.Before(before))
		}
		assert.Len(t, slices.Compact(slices.Sorted(slices.Values(want))), 32, "no token twice across pages")
	})
}

func TestRehash(t *testing.T) {
	forMasks(t, func(t *testing.T, tb *Table) {
		r, other := rec("acme"), rec("acme")
		require.True(t, tb.Put(r))
		require.True(t, tb.Put(other))
		to := rec("").Hash
		h, ok := tb.HashOf("acme", r.ID)
		assert.True(t, ok && h == r.Hash, "HashOf finds the record's hash")
		_, ok = tb.HashOf("ACME", r.ID)
		assert.False(t, ok, "HashOf of another account")
		_, ok = tb.HashOf("acme", "unknown")
		assert.False(t, ok, "HashOf of an unknown id")
		assert.False(t, tb.Rehash("acme", r.ID, other.Hash, to), "from is not the token's hash")
		assert.False(t, tb.Rehash("ACME", r.ID, r.Hash, to), "another account")
		assert.False(t, tb.Rehash("acme", r.ID, r.Hash, other.Hash), "to is taken")
		requireGet(t, tb, r)
		requireGet(t, tb, other)
		require.True(t, tb.Rehash("acme", r.ID, r.Hash, to))
		assert.False(t, tb.Has(r.Hash))
		r.Hash = to
		requireGet(t, tb, r)
		h, _ = tb.HashOf("acme", r.ID)
		assert.Equal(t, to, h, "HashOf gives the new hash")
		require.True(t, tb.Delete("acme", r.ID))
		assert.False(t, tb.Has(to), "Delete drops the new hash")
		checkInvariants(t, tb)
	})
}

func TestFreeSlotsAreReused(t *testing.T) {
	tb := New()
	recs := make([]Record, 100)
	for i := range recs {
		recs[i] = rec("acme")
		require.True(t, tb.Put(recs[i]))
	}
	for _, r := range recs[:50] {
		require.True(t, tb.Delete("acme", r.ID))
	}
	assert.Len(t, tb.free, 50)
	for i := range 50 {
		recs[i] = rec("globex")
		require.True(t, tb.Put(recs[i]))
	}
	assert.Len(t, tb.slots, 100, "new records take the free slots")
	assert.Empty(t, tb.free)
	for _, r := range recs {
		requireGet(t, tb, r)
	}
	checkInvariants(t, tb)
}

func TestCompaction(t *testing.T) {
	forMasks(t, func(t *testing.T, tb *Table) {
		recs := make([]Record, 2000)
		for i := range recs {
			recs[i] = rec(fmt.Sprintf("acct-%d", i%7))
			recs[i].Name = strings.Repeat("x", i%50)
			recs[i].Scopes = []string{"read", fmt.Sprint(i)}
			require.True(t, tb.Put(recs[i]))
		}
		full := len(tb.arena)
		// Delete three records in four, in an order unrelated to the arena's.
		var kept []Record
		for i, r := range recs {
			if i%4 == 0 {
				kept = append(kept, r)
				continue
			}
			require.True(t, tb.Delete(r.AccountID, r.ID))
		}
		checkInvariants(t, tb)
		assert.Less(t, len(tb.arena), full*3/5, "the arena was compacted")
		assert.LessOrEqual(t, tb.garbage*2, len(tb.arena), "at most half the arena is garbage")
		for _, r := range kept {
			requireGet(t, tb, r)
		}
		for _, r := range kept {
			require.True(t, tb.Delete(r.AccountID, r.ID))
		}
		assert.Zero(t, tb.Len())
		assert.Empty(t, tb.arena, "an empty table gives its arena back")
		assert.Empty(t, tb.slots, "an empty table gives its slots back")
		checkInvariants(t, tb)
	})
}

// TestModel runs random operations on a Table and on a plain map, and checks
// that they agree.
func TestModel(t *testing.T) {
	forMasks(t, func(t *testing.T, tb *Table) {
		rnd := rand.New(rand.NewPCG(1, 2))
		model := map[string]Record{} // by id
		accounts := []string{"a", "b", "A", "", "acct-long-" + strings.Repeat("z", 40)}
		ids := func() []string {
			out := make([]string, 0, len(model))
			for id := range model {
				out = append(out, id)
			}
			slices.Sort(out)
			return out
		}
		pick := func() (Record, bool) {
			all := ids()
			if len(all) == 0 {
				return Record{}, false
			}
			return model[all[rnd.IntN(len(all))]], true
		}
		for step := range 5000 {
			switch op := rnd.IntN(10); {
			case op < 4:
				r := rec(accounts[rnd.IntN(len(accounts))])
				r.Name = strings.Repeat("n", rnd.IntN(30))
				if rnd.IntN(2) == 0 {
					r.ExpiresAt = base.Add(time.Duration(rnd.IntN(100)) * time.Minute)
				}
				require.True(t, tb.Put(r))
				model[r.ID] = r
			case op < 6:
				if r, ok := pick(); ok {
					require.True(t, tb.Delete(r.AccountID, r.ID))
					delete(model, r.ID)
				}
			case op < 7:
				if r, ok := pick(); ok {
					to := rec("").Hash
					require.True(t, tb.Rehash(r.AccountID, r.ID, r.Hash, to))
					r.Hash = to
					model[r.ID] = r
				}
			case op < 8:
				if r, ok := pick(); ok {
					at := base.Add(time.Duration(rnd.IntN(100)) * time.Minute)
					require.True(t, tb.SetLastUsed(r.ID, at, netip.Addr{}))
					if at.After(r.LastUsedAt) {
						r.LastUsedAt = at
					}
					model[r.ID] = r
				}
			case op < 9 && step%50 == 0:
				acct := accounts[rnd.IntN(len(accounts))]
				n := 0
				for id, r := range model {
					if r.AccountID == acct {
						delete(model, id)
						n++
					}
				}
				require.Equal(t, n, tb.DeleteAccount(acct))
			case step%100 == 0:
				before := base.Add(time.Duration(rnd.IntN(100)) * time.Minute)
				n := 0
				for id, r := range model {
					if !r.ExpiresAt.IsZero() && !r.ExpiresAt.After(before) {
						delete(model, id)
						n++
					}
				}
				require.Equal(t, n, tb.DeleteExpired(before))
			}
			if step%500 == 0 {
				checkInvariants(t, tb)
			}
		}
		require.Equal(t, len(model), tb.Len())
		for _, r := range model {
			requireGet(t, tb, r)
		}
		for _, acct := range accounts {
			var want []Token
			for _, r := range model {
				if r.AccountID == acct {
					want = append(want, r.Token)
				}
			}
			got := tb.Account(acct)
			byID := func(a, b Token) int { return cmp.Compare(a.ID, b.ID) }
			slices.SortFunc(want, byID)
			slices.SortFunc(got, byID)
			require.Len(t, got, len(want))
			for i := range want {
				assertToken(t, want[i], got[i])
			}
			assert.Equal(t, len(want), tb.AccountLen(acct))
		}
		checkInvariants(t, tb)
	})
}

// A lookup by hash allocates only the record's Scopes: its strings view the
// arena.
func TestGetAllocations(t *testing.T) {
	tb := New()
	r := rec("acme")
	r.MemberID, r.Name = "member", "name"
	require.True(t, tb.Put(r))
	var tok Token
	assert.Zero(t, testing.AllocsPerRun(100, func() { _, _ = tb.Get(r.Hash) }), "without scopes")
	assert.Zero(t, testing.AllocsPerRun(100, func() { _ = tb.GetToken(r.Hash, &tok) }), "GetToken without scopes")
	r = rec("acme")
	r.Scopes = []string{"read", "write"}
	require.True(t, tb.Put(r))
	assert.Equal(t, 1.0, testing.AllocsPerRun(100, func() { _, _ = tb.Get(r.Hash) }), "with scopes")
	assert.Equal(t, 1.0, testing.AllocsPerRun(100, func() { _ = tb.GetToken(r.Hash, &tok) }), "GetToken with scopes")
	assert.Zero(t, testing.AllocsPerRun(100, func() { _, _ = tb.Get([32]byte{0xff}) }), "a miss")
}

// The strings of a read view the arena: they must stay what they were
// through every later change of the Table, compaction and emptying
// included, while new texts of the same sizes are written.
func TestReadsOutliveTheTable(t *testing.T) {
	forMasks(t, func(t *testing.T, tb *Table) {
		recs := make([]Record, 400)
		for i := range recs {
			recs[i] = rec(fmt.Sprintf("acct-%d", i%7))
			recs[i].MemberID, recs[i].Name = fmt.Sprint("m", i), strings.Repeat("n", i%20)
			recs[i].Scopes = []string{"read", fmt.Sprint("s", i)}
			require.True(t, tb.Put(recs[i]))
		}
		type read struct{ got, want Token }
		var reads []read
		keep := func(got Token) {
			want := got
			want.ID, want.AccountID = strings.Clone(got.ID), strings.Clone(got.AccountID)
			want.MemberID, want.Name = strings.Clone(got.MemberID), strings.Clone(got.Name)
			want.Scopes = slices.Clone(got.Scopes)
			for j := range want.Scopes {
				want.Scopes[j] = strings.Clone(want.Scopes[j])
			}
			reads = append(reads, read{got, want})
		}
		for _, r := range recs {
			got, ok := tb.Get(r.Hash)
			require.True(t, ok)
			keep(got.Token)
		}
		for _, tok := range tb.Account("acct-3") {
			keep(tok)
		}
		round := 0
		overwrite := func() {
			round++
			for i := range recs {
				c := string(rune('a' + round))
				r := rec(fmt.Sprintf("acct-%d", i%7))
				r.MemberID, r.Name = strings.Repeat(c, len(recs[i].MemberID)), strings.Repeat(c, i%20)
				r.Scopes = []string{strings.Repeat(c, 4), strings.Repeat(c, len(recs[i].Scopes[1]))}
				require.True(t, tb.Put(r))
			}
		}
		// Deleting three in four compacts; deleting the rest empties the
		// Table, which gives its arena back; writing again refills it.
		for i, r := range recs {
			if i%4 != 0 {
				require.True(t, tb.Delete(r.AccountID, r.ID))
			}
		}
		overwrite()
		for _, tok := range tb.Account("acct-5") {
			keep(tok) // views of the compacted arena
		}
		for i, r := range recs {
			if i%4 == 0 {
				require.True(t, tb.Delete(r.AccountID, r.ID))
			}
		}
		for _, a := range []string{"acct-0", "acct-1", "acct-2", "acct-3", "acct-4", "acct-5", "acct-6"} {
			tb.DeleteAccount(a)
		}
		require.Zero(t, tb.Len())
		overwrite()
		// A Table emptied in one step, with no compaction before.
		one := newTable(tb.mask)
		r := rec("solo")
		r.Name, r.Scopes = "first", []string{"one"}
		require.True(t, one.Put(r))
		got, ok := one.Get(r.Hash)
		require.True(t, ok)
		keep(got.Token)
		require.True(t, one.Delete(r.AccountID, r.ID))
		r = rec("solo")
		r.Name, r.Scopes = "again", []string{"two"}
		require.True(t, one.Put(r))
		runtime.GC()
		for _, r := range reads {
			require.Equal(t, r.want, r.got, "a string read from a Table changed after the Table did")
		}
	})
}

func TestAux(t *testing.T) {
	tb := New()
	a, b := rec("acme"), rec("acme")
	require.True(t, tb.Put(a))
	require.True(t, tb.Put(b))
	v, ok := tb.Aux(a.Hash)
	require.True(t, ok)
	assert.Zero(t, v, "a new record's aux is 0")

	require.True(t, tb.SetAux(a.Hash, 7))
	require.True(t, tb.SetAux(b.Hash, 9))
	got, v, ok := tb.GetAux(a.Hash)
	require.True(t, ok)
	assert.Equal(t, uint32(7), v)
	assert.Equal(t, a.ID, got.ID)
	v, _ = tb.Aux(b.Hash)
	assert.Equal(t, uint32(9), v, "each record keeps its own")

	var unknown [32]byte
	unknown[5] = 0xee
	assert.False(t, tb.SetAux(unknown, 1))
	_, ok = tb.Aux(unknown)
	assert.False(t, ok)
	_, _, ok = tb.GetAux(unknown)
	assert.False(t, ok)

	require.True(t, tb.Delete("acme", a.ID))
	c := rec("acme")
	require.True(t, tb.Put(c), "takes a's free slot")
	v, _ = tb.Aux(c.Hash)
	assert.Zero(t, v, "a reused slot does not keep the aux of its last record")
	v, _ = tb.Aux(b.Hash)
	assert.Equal(t, uint32(9), v)
}
