// Package table keeps token records in memory without a pointer per record,
// so that a garbage collection with a million records resident costs about
// what it costs without them.
//
// A Table holds each record's fixed fields (hash, times, Disabled, the last
// use's address) in one slice of pointer-free slots and its texts (ID,
// AccountID, MemberID, Name, Hint, Scopes, AllowedIPs) in one byte arena; its indexes, by hash, by id and by account, are maps whose
// keys and values hold no pointers. The garbage collector scans none of it:
// a million records make a few thousand heap objects (the slices and the
// maps' inner tables), not millions. A Record read from a Table is rebuilt
// from the slot and the arena: its strings view the arena, and its Scopes
// and AllowedIPs are new slices (the allocations of a read: none for a token
// without either).
//
// The arena's bytes are never written again once a record's text is
// appended: a new text goes after the others, and compacting, or emptying
// the Table, makes a new arena and leaves the old one to the garbage
// collector. So a string read from a Table stays what it was for as long as
// it lives, whatever the Table does next; it keeps the arena it views alive,
// as a substring keeps its string.
//
// Deleted records leave free slots, reused by the next records, and garbage
// in the arena, compacted once it is more than half the arena. Like a map, a
// Table keeps the slots of its largest size until it is empty.
//
// The package cannot import apitoken (the root package uses it), so it has
// its own Token and Record; Token has the fields of apitoken.Token in the same
// order, so that the conversions apitoken.Token(tok) and table.Token(tok) are
// free, and stop compiling if the two ever differ.
package table

import (
	"container/heap"
	"encoding/binary"
	"hash/maphash"
	"math"
	"net/netip"
	"time"
	"unsafe"
)

// Token has the fields of apitoken.Token, in its order.
type Token struct {
	ID                               string
	AccountID, MemberID, Name        string
	Scopes                           []string
	CreatedAt, ExpiresAt, LastUsedAt time.Time
	Disabled                         bool
	Hint                             string
	AllowedIPs                       []netip.Prefix
	LastUsedIP                       netip.Addr
}

// Record has the fields of apitoken.Record.
type Record struct {
	Token
	Hash [32]byte
}

// Table is a set of records, indexed by hash, by id and by account. IDs and
// account ids compare byte for byte. Times are kept to the microsecond
// (truncated) and read back in UTC; zero times stay zero, and Scopes read back
// nil when there are none.
//
// A Table is not safe for concurrent use: callers lock. Methods that only
// read (Len, Has, HasID, Get, HashOf, AccountLen, Account) may run
// concurrently with each other under a read lock. The zero value is not usable; call New.
type Table struct {
	seed maphash.Seed

	slots []slot
	free  []uint32 // indexes of free slots, reused before slots grows

	// arena holds the texts of the records, each padded to a multiple of
	// textAlign bytes; garbage counts the bytes of it that belong to deleted
	// records.
	arena   []byte
	garbage int

	// byHash gives the slot of a record and the offset of its text, which
	// the slot also holds: a lookup can then fetch both from memory at once
	// instead of one after the other.
	byHash map[[32]byte]ref

	// byID and byAccount are keyed by the maphash of the id or account id,
	// which keeps strings, hence pointers, out of the maps. The slot (or the
	// chain's first slot) holds the text, compared on every read, so a
	// collision is never taken for a match: an id or account whose key is
	// taken by another goes to the overflow maps, which random seeds keep
	// empty in practice.
	byID         map[uint64]uint32
	byIDOverflow map[string]uint32

	byAccount         map[uint64]chain
	byAccountOverflow map[string]chain

	// mask is ANDed with every key: tests clear it to make all keys collide.
	mask uint64
}

// slot is one record's fixed fields. It holds no pointer.
type slot struct {
	hash [32]byte

	// Microseconds since the Unix epoch; noTime for the zero time.
	created, expires, lastUsed int64

	off uint32 // where the record's text starts in arena, in textAlign bytes
	n   uint32 // length of the text; 0 marks a free slot (a text is never empty)

	// The record's neighbours in its account's chain, or none.
	prev, next uint32

	aux uint32 // the caller's, by SetAux; 0 for a new record

	// lastIP is the address of the last use, in its 16-byte form; lastIPLen
	// is 4 or 16 as it was IPv4 or IPv6, 0 when unknown. A zone is not kept.
	lastIP    [16]byte
	lastIPLen uint8

	disabled bool
}

// ref is where a record is: its slot, and the offset of its text.
type ref struct {
	slot, off uint32
}

// chain is the doubly linked list of an account's slots.
type chain struct {
	head, len uint32
}

const (
	// none ends a chain. It is also the one slot index never used.
	none = math.MaxUint32

	// noTime stands for the zero time.Time: time.Time.UnixMicro is only
	// defined well inside the int64 range, so no other time maps to it.
	noTime = math.MinInt64

	// textAlign is the unit of text offsets: with 32-bit offsets, the arena
	// can hold 32 GiB.
	textAlign = 8
)

// New returns an empty Table.
func New() *Table {
	return &Table{
		seed:              maphash.MakeSeed(),
		byHash:            make(map[[32]byte]ref),
		byID:              make(map[uint64]uint32),
		byIDOverflow:      make(map[string]uint32),
		byAccount:         make(map[uint64]chain),
		byAccountOverflow: make(map[string]chain),
		mask:              math.MaxUint64,
	}
}

// Len returns the number of records.
func (t *Table) Len() int { return len(t.byHash) }

// Has reports whether a record has the hash h.
func (t *Table) Has(h [32]byte) bool {
	_, ok := t.byHash[h]
	return ok
}

// HasID reports whether a record has the id.
func (t *Table) HasID(id string) bool {
	_, ok := t.findID(id)
	return ok
}

// Get returns the record whose hash is h. Its strings view the arena, which
// is never written again (see the package doc); its slices are its own.
func (t *Table) Get(h [32]byte) (Record, bool) {
	r, ok := t.byHash[h]
	if !ok {
		return Record{}, false
	}
	rec := Record{Hash: h}
	t.token(&rec.Token, &t.slots[r.slot], r.off)
	return rec, true
}

// GetToken is Get writing the token into dst, which spares the copies of a
// large result on the path of every request. It leaves dst alone when no
// record has the hash h.
func (t *Table) GetToken(h [32]byte, dst *Token) bool {
	r, ok := t.byHash[h]
	if ok {
		t.token(dst, &t.slots[r.slot], r.off)
	}
	return ok
}

// Aux returns the value SetAux gave the record whose hash is h (0 if none).
func (t *Table) Aux(h [32]byte) (uint32, bool) {
	r, ok := t.byHash[h]
	if !ok {
		return 0, false
	}
	return t.slots[r.slot].aux, true
}

// GetAux is Get and Aux in one lookup.
func (t *Table) GetAux(h [32]byte) (Record, uint32, bool) {
	r, ok := t.byHash[h]
	if !ok {
		return Record{}, 0, false
	}
	s := &t.slots[r.slot]
	rec := Record{Hash: h}
	t.token(&rec.Token, s, r.off)
	return rec, s.aux, true
}

// GetTokenAux is GetToken and Aux in one lookup.
func (t *Table) GetTokenAux(h [32]byte, dst *Token) (uint32, bool) {
	r, ok := t.byHash[h]
	if !ok {
		return 0, false
	}
	s := &t.slots[r.slot]
	t.token(dst, s, r.off)
	return s.aux, true
}

// SetAux keeps v with the record whose hash is h, for the caller (the
// verification cache keeps its ring position there), and reports whether
// a record has the hash.
func (t *Table) SetAux(h [32]byte, v uint32) bool {
	r, ok := t.byHash[h]
	if ok {
		t.slots[r.slot].aux = v
	}
	return ok
}

// HashOf returns the hash of the record with the id if it belongs to the
// account.
func (t *Table) HashOf(accountID, id string) ([32]byte, bool) {
	i, ok := t.findIDInAccount(accountID, id)
	if !ok {
		return [32]byte{}, false
	}
	return t.slots[i].hash, true
}

// AccountLen returns the number of records of the account.
func (t *Table) AccountLen(accountID string) int {
	c, _, _ := t.findAccount(accountID)
	return int(c.len)
}

// Account returns the tokens of the account, in no particular order, read as
// Get reads them.
func (t *Table) Account(accountID string) []Token {
	c, _, _ := t.findAccount(accountID)
	toks := make([]Token, c.len)
	j := 0
	for i := c.head; i != none; i = t.slots[i].next {
		t.token(&toks[j], &t.slots[i], t.slots[i].off)
		j++
	}
	return toks
}

// Put adds rec and reports true, unless a record has its hash or its id: then
// it changes nothing and reports false. It does not retain rec.Scopes.
func (t *Table) Put(rec Record) bool {
	if t.Has(rec.Hash) || t.HasID(rec.ID) {
		return false
	}
	if len(t.free) == 0 && len(t.slots) == none {
		panic("table: too many records")
	}
	off, n := t.appendText(&rec.Token)
	i := uint32(len(t.slots))
	if last := len(t.free) - 1; last >= 0 {
		i, t.free = t.free[last], t.free[:last]
	} else {
		t.slots = append(t.slots, slot{})
	}
	t.slots[i] = slot{
		hash:     rec.Hash,
		created:  micros(rec.CreatedAt),
		expires:  micros(rec.ExpiresAt),
		lastUsed: micros(rec.LastUsedAt),
		off:      off,
		n:        n,
		prev:     none,
		next:     none,
		disabled: rec.Disabled,
	}
	t.slots[i].lastIP, t.slots[i].lastIPLen = packAddr(rec.LastUsedIP)
	t.byHash[rec.Hash] = ref{i, off}

	if k := t.key(rec.ID); t.hasIDKey(k) {
		t.byIDOverflow[rec.ID] = i
	} else {
		t.byID[k] = i
	}

	c, k, overflow := t.findAccount(rec.AccountID)
	if c.len == 0 {
		// A new account takes its key unless another account holds it.
		_, overflow = t.byAccount[k]
	}
	if c.head != none {
		t.slots[c.head].prev = i
	}
	t.slots[i].next = c.head
	c.head = i
	c.len++
	t.setChain(rec.AccountID, k, overflow, c)
	return true
}

// Delete removes the record with the id if it belongs to the account, and
// reports whether it did.
func (t *Table) Delete(accountID, id string) bool {
	i, ok := t.findIDInAccount(accountID, id)
	if ok {
		t.remove(i)
		t.compact()
	}
	return ok
}

// DeleteAccount removes every record of the account and returns how many it
// removed.
func (t *Table) DeleteAccount(accountID string) int {
	c, _, _ := t.findAccount(accountID)
	for i := c.head; i != none; {
		next := t.slots[i].next
		t.remove(i)
		i = next
	}
	t.compact()
	return int(c.len)
}

// DeleteExpired removes every record whose ExpiresAt is set and at or before
// before, and returns how many it removed. It reads every slot.
func (t *Table) DeleteExpired(before time.Time) int {
	n := 0
	for i := range t.slots {
		s := &t.slots[i]
		if s.n != 0 && s.expires != noTime && !fromMicros(s.expires).After(before) {
			t.remove(uint32(i))
			n++
		}
	}
	t.compact()
	return n
}

// SetExpiry changes the ExpiresAt of the record with the id, if it belongs to
// the account, from from to to, and reports whether it did: it changes
// nothing when the record's ExpiresAt is not from.
func (t *Table) SetExpiry(accountID, id string, from, to time.Time) bool {
	i, ok := t.findIDInAccount(accountID, id)
	if !ok || !fromMicros(t.slots[i].expires).Equal(from) {
		return false
	}
	t.slots[i].expires = micros(to)
	return true
}

// SetLastUsed sets the LastUsedAt of the record with the id to at, and its
// LastUsedIP to ip, if at is later, and reports whether a record has the
// id.
func (t *Table) SetLastUsed(id string, at time.Time, ip netip.Addr) bool {
	i, ok := t.findID(id)
	if !ok {
		return false
	}
	if s := &t.slots[i]; at.After(fromMicros(s.lastUsed)) {
		s.lastUsed = micros(at)
		s.lastIP, s.lastIPLen = packAddr(ip)
	}
	return true
}

// SetDisabled sets the Disabled of the record with the id, if it belongs to
// the account, and reports whether it does.
func (t *Table) SetDisabled(accountID, id string, disabled bool) bool {
	i, ok := t.findIDInAccount(accountID, id)
	if ok {
		t.slots[i].disabled = disabled
	}
	return ok
}

// DeleteMember removes every record of the account whose MemberID is
// memberID, and returns how many it removed. It reads the account's chain.
func (t *Table) DeleteMember(accountID, memberID string) int {
	c, _, _ := t.findAccount(accountID)
	n := 0
	for i := c.head; i != none; {
		next := t.slots[i].next
		if string(t.text(i, fieldMemberID)) == memberID {
			t.remove(i)
			n++
		}
		i = next
	}
	t.compact()
	return n
}

// DeleteUnused removes up to limit records not used since since: last used
// before it, or never used and created before it. It returns how many it
// removed, and reads every slot.
func (t *Table) DeleteUnused(since time.Time, limit int) int {
	cut := micros(since)
	n := 0
	for i := range t.slots {
		if n == limit {
			break
		}
		s := &t.slots[i]
		last := s.lastUsed
		if last == noTime {
			last = s.created
		}
		if s.n != 0 && last < cut {
			t.remove(uint32(i))
			n++
		}
	}
	t.compact()
	return n
}

// Expiring returns up to limit tokens whose ExpiresAt is set and before
// before, and that come after (after, afterID) in the order of (ExpiresAt,
// ID), in that order. It reads every slot and holds at most limit of them.
func (t *Table) Expiring(after time.Time, afterID string, before time.Time, limit int) []Token {
	from, to := micros(after), micros(before)
	h := &expiryHeap{t: t}
	for i := range t.slots {
		s := &t.slots[i]
		if s.n == 0 || s.expires == noTime || s.expires >= to || s.expires < from {
			continue
		}
		if s.expires == from && string(t.text(uint32(i), fieldID)) <= afterID {
			continue
		}
		if h.Len() < limit {
			heap.Push(h, uint32(i))
		} else if h.Len() > 0 && h.less(uint32(i), h.slots[0]) {
			h.slots[0] = uint32(i)
			heap.Fix(h, 0)
		}
	}
	toks := make([]Token, h.Len())
	for j := len(toks) - 1; j >= 0; j-- {
		i := heap.Pop(h).(uint32)
		t.token(&toks[j], &t.slots[i], t.slots[i].off)
	}
	return toks
}

// expiryHeap is a max-heap of slots by (ExpiresAt, ID): its root is the
// latest of those kept, the first to drop when a sooner one comes.
type expiryHeap struct {
	t     *Table
	slots []uint32
}

func (h *expiryHeap) less(a, b uint32) bool {
	sa, sb := &h.t.slots[a], &h.t.slots[b]
	if sa.expires != sb.expires {
		return sa.expires < sb.expires
	}
	return string(h.t.text(a, fieldID)) < string(h.t.text(b, fieldID))
}

func (h *expiryHeap) Len() int           { return len(h.slots) }
func (h *expiryHeap) Less(i, j int) bool { return h.less(h.slots[j], h.slots[i]) }
func (h *expiryHeap) Swap(i, j int)      { h.slots[i], h.slots[j] = h.slots[j], h.slots[i] }
func (h *expiryHeap) Push(x any)         { h.slots = append(h.slots, x.(uint32)) }
func (h *expiryHeap) Pop() any {
	last := h.slots[len(h.slots)-1]
	h.slots = h.slots[:len(h.slots)-1]
	return last
}

// Rehash changes the hash of the record with the id, if it belongs to the
// account and has the hash from, to to, and reports whether it did. It changes
// nothing when a record has the hash to.
func (t *Table) Rehash(accountID, id string, from, to [32]byte) bool {
	i, ok := t.findIDInAccount(accountID, id)
	if !ok || t.slots[i].hash != from || t.Has(to) {
		return false
	}
	delete(t.byHash, from)
	t.byHash[to] = ref{i, t.slots[i].off}
	t.slots[i].hash = to
	return true
}

// findID returns the slot of the record with the id.
func (t *Table) findID(id string) (uint32, bool) {
	if i, ok := t.byID[t.key(id)]; ok && string(t.text(i, fieldID)) == id {
		return i, true
	}
	i, ok := t.byIDOverflow[id]
	return i, ok
}

// findIDInAccount returns the slot of the record with the id if it belongs to
// the account.
func (t *Table) findIDInAccount(accountID, id string) (uint32, bool) {
	i, ok := t.findID(id)
	if !ok || string(t.text(i, fieldAccountID)) != accountID {
		return 0, false
	}
	return i, true
}

// key returns the key of an id or account id in byID or byAccount.
func (t *Table) key(s string) uint64 {
	return maphash.String(t.seed, s) & t.mask
}

// hasIDKey reports whether a record's id has the key k.
func (t *Table) hasIDKey(k uint64) bool {
	_, ok := t.byID[k]
	return ok
}

// findAccount returns the account's chain (empty when it has no records), its
// key and whether the chain is in the overflow map.
func (t *Table) findAccount(accountID string) (c chain, k uint64, overflow bool) {
	k = t.key(accountID)
	if c, ok := t.byAccount[k]; ok && string(t.text(c.head, fieldAccountID)) == accountID {
		return c, k, false
	}
	if c, ok := t.byAccountOverflow[accountID]; ok {
		return c, k, true
	}
	return chain{head: none}, k, false
}

// setChain stores the account's chain, or drops it when it is empty.
func (t *Table) setChain(accountID string, k uint64, overflow bool, c chain) {
	switch {
	case overflow && c.len == 0:
		delete(t.byAccountOverflow, accountID)
	case overflow:
		t.byAccountOverflow[accountID] = c
	case c.len == 0:
		delete(t.byAccount, k)
	default:
		t.byAccount[k] = c
	}
}

// remove frees slot i and drops it from every index. The arena keeps its
// text as garbage until compact.
func (t *Table) remove(i uint32) {
	s := &t.slots[i]
	delete(t.byHash, s.hash)

	id := t.text(i, fieldID)
	k := maphash.Bytes(t.seed, id) & t.mask
	if j, ok := t.byID[k]; ok && j == i {
		delete(t.byID, k)
	} else {
		delete(t.byIDOverflow, string(id))
	}

	accountID := string(t.text(i, fieldAccountID)) // a copy: the chain may outlive this slot's text
	c, k, overflow := t.findAccount(accountID)
	if s.prev != none {
		t.slots[s.prev].next = s.next
	} else {
		c.head = s.next
	}
	if s.next != none {
		t.slots[s.next].prev = s.prev
	}
	c.len--
	t.setChain(accountID, k, overflow, c)

	t.garbage += padded(s.n)
	*s = slot{}
	t.free = append(t.free, i)
}

// compact copies the live texts to a new arena when more than half of the
// arena is garbage, and the garbage outweighs the slots it must read: each
// byte copied, each slot read and each offset updated in byHash was paid for
// by a byte deleted, so deletion stays O(1) amortized. It copies into a new
// arena, never within the old one, which earlier reads may still view.
func (t *Table) compact() {
	if t.Len() == 0 {
		// Nothing to copy: give all the memory back.
		t.slots, t.free, t.arena, t.garbage = nil, nil, nil, 0
		return
	}
	if t.garbage*2 <= len(t.arena) || t.garbage < compactPerSlot*len(t.slots) {
		return
	}
	arena := make([]byte, 0, len(t.arena)-t.garbage)
	for i := range t.slots {
		s := &t.slots[i]
		if s.n == 0 {
			continue
		}
		off := uint32(len(arena) / textAlign)
		start := int(s.off) * textAlign
		arena = append(arena, t.arena[start:start+padded(s.n)]...)
		s.off = off
		t.byHash[s.hash] = ref{uint32(i), off}
	}
	t.arena, t.garbage = arena, 0
}

// compactPerSlot is the garbage, in bytes, that pays for reading one slot
// in compact.
const compactPerSlot = 8

// A record's text is a header of uvarints (the lengths of ID, AccountID,
// MemberID, Name and Hint, the number of Scopes, the length of each scope,
// the number of AllowedIPs) followed by the bytes of those strings, in that
// order, and then each allowed prefix as its address's length (4 or 16),
// its address and its number of bits.
const (
	fieldID = iota
	fieldAccountID
	fieldMemberID
)

// appendText appends the text of tok to the arena and returns where it is.
// It writes only past len(t.arena): the bytes before it are viewed by the
// strings of earlier reads, and must never change (see the package doc).
func (t *Table) appendText(tok *Token) (off, n uint32) {
	start := len(t.arena) // a multiple of textAlign
	if start/textAlign > math.MaxUint32 {
		panic("table: more than 32 GiB of text")
	}
	b := t.arena
	strs := [...]string{tok.ID, tok.AccountID, tok.MemberID, tok.Name, tok.Hint}
	for _, s := range strs {
		b = binary.AppendUvarint(b, uint64(len(s)))
	}
	b = binary.AppendUvarint(b, uint64(len(tok.Scopes)))
	for _, s := range tok.Scopes {
		b = binary.AppendUvarint(b, uint64(len(s)))
	}
	b = binary.AppendUvarint(b, uint64(len(tok.AllowedIPs)))
	for _, s := range strs {
		b = append(b, s...)
	}
	for _, s := range tok.Scopes {
		b = append(b, s...)
	}
	for _, p := range tok.AllowedIPs {
		a, l := packAddr(p.Addr())
		b = append(b, l)
		b = append(b, a[16-int(l):]...)
		b = append(b, byte(p.Bits()))
	}
	if len(b)-start > math.MaxUint32 {
		panic("table: a record of more than 4 GiB")
	}
	n = uint32(len(b) - start)
	t.arena = append(b, make([]byte, padded(n)-int(n))...)
	return uint32(start / textAlign), n
}

// padded returns the bytes a text of length n takes in the arena.
func padded(n uint32) int {
	return (int(n) + textAlign - 1) &^ (textAlign - 1)
}

// textAt returns a view of the text of length n at offset off.
func (t *Table) textAt(off, n uint32) []byte {
	start := int(off) * textAlign
	return t.arena[start : start+int(n)]
}

// header reads the header of a text: the lengths of its strings, the
// number of scopes, where the scope lengths start, the number of allowed
// prefixes, and where the strings start.
func header(text []byte) (lens [nStrings]int, scopes, scopeLens, prefixes, body int) {
	p := 0
	if len(text) >= nStrings+1 && (text[0]|text[1]|text[2]|text[3]|text[4]|text[5])&0x80 == 0 {
		// The lengths and the count under 128, a byte each: every text of
		// a token the Issuer made.
		lens = [nStrings]int{int(text[0]), int(text[1]), int(text[2]), int(text[3]), int(text[4])}
		scopes, p = int(text[5]), nStrings+1
	} else {
		for f := range lens {
			lens[f], p = uvarint(text, p)
		}
		scopes, p = uvarint(text, p)
	}
	scopeLens = p
	for range scopes {
		if text[p] < 0x80 {
			p++
		} else {
			_, p = uvarint(text, p)
		}
	}
	if text[p] < 0x80 {
		return lens, scopes, scopeLens, int(text[p]), p + 1
	}
	prefixes, p = uvarint(text, p)
	return lens, scopes, scopeLens, prefixes, p
}

// uvarint reads the uvarint at text[p:] and returns it with the offset that
// follows it.
func uvarint(text []byte, p int) (v, next int) {
	u, n := binary.Uvarint(text[p:])
	return int(u), p + n
}

// nStrings is the number of strings in a text before its scopes.
const nStrings = 5

// text returns a view of one of the four strings of slot i's record. It
// aliases the arena: callers compare it and drop it.
func (t *Table) text(i uint32, field int) []byte {
	text := t.textAt(t.slots[i].off, t.slots[i].n)
	lens, _, _, _, p := header(text)
	for _, l := range lens[:field] {
		p += l
	}
	return text[p : p+lens[field]]
}

// token rebuilds into dst the token of slot s, whose text is at off (s.off,
// given apart so that a lookup need not wait for s to load to read the
// text). Its strings view the arena, which is never written again; only
// Scopes and AllowedIPs, when there are some, are allocated.
func (t *Table) token(dst *Token, s *slot, off uint32) {
	text := t.textAt(off, s.n)
	lens, nScopes, p, nPrefixes, body := header(text)
	str := unsafe.String(unsafe.SliceData(text[body:]), len(text)-body)
	q := lens[0] + lens[1]
	dst.ID, dst.AccountID = str[:lens[0]], str[lens[0]:q]
	dst.MemberID, q = str[q:q+lens[2]], q+lens[2]
	dst.Name, q = str[q:q+lens[3]], q+lens[3]
	dst.Hint, q = str[q:q+lens[4]], q+lens[4]
	dst.Scopes = nil
	if nScopes > 0 {
		dst.Scopes = make([]string, nScopes)
		for j := range dst.Scopes {
			l := int(text[p])
			if l < 0x80 {
				p++
			} else {
				l, p = uvarint(text, p)
			}
			dst.Scopes[j] = str[q : q+l]
			q += l
		}
	}
	dst.AllowedIPs = nil
	if nPrefixes > 0 {
		dst.AllowedIPs = make([]netip.Prefix, nPrefixes)
		b := text[body+q:]
		for j := range dst.AllowedIPs {
			l := int(b[0])
			var a [16]byte
			copy(a[16-l:], b[1:1+l])
			dst.AllowedIPs[j] = netip.PrefixFrom(unpackAddr(a, uint8(l)), int(b[1+l]))
			b = b[2+l:]
		}
	}
	dst.CreatedAt = fromMicros(s.created)
	dst.ExpiresAt = fromMicros(s.expires)
	dst.LastUsedAt = fromMicros(s.lastUsed)
	dst.Disabled = s.disabled
	dst.LastUsedIP = unpackAddr(s.lastIP, s.lastIPLen)
}

// micros returns t in microseconds since the Unix epoch, truncated, or noTime
// for the zero time.
func micros(t time.Time) int64 {
	if t.IsZero() {
		return noTime
	}
	return t.UnixMicro()
}

// fromMicros is the inverse of micros, in UTC.
func fromMicros(us int64) time.Time {
	if us == noTime {
		return time.Time{}
	}
	return time.UnixMicro(us).UTC()
}

// packAddr returns a in its 16-byte form (IPv4 in the last 4 bytes) with its
// length, 4 or 16, or 0 for the zero Addr. The zone is dropped.
func packAddr(a netip.Addr) ([16]byte, uint8) {
	switch {
	case a.Is4():
		var b [16]byte
		v4 := a.As4()
		copy(b[12:], v4[:])
		return b, 4
	case a.Is6():
		return a.As16(), 16
	}
	return [16]byte{}, 0
}

// unpackAddr is the inverse of packAddr.
func unpackAddr(b [16]byte, l uint8) netip.Addr {
	switch l {
	case 4:
		return netip.AddrFrom4([4]byte(b[12:]))
	case 16:
		return netip.AddrFrom16(b)
	}
	return netip.Addr{}
}
