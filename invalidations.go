package apitoken

// invalidationWindow is how many invalidations a cache remembers by token:
// a fill is dropped only if its own token (or account) was invalidated
// while it was under way, as long as fewer than this many invalidations
// came meanwhile; after more, it is dropped anyway. At 1,000 deletes per
// second it covers fills of up to 4 seconds, far beyond a store lookup.
const invalidationWindow = 4096

// invalidations remembers the latest invalidations of a cache, each with the
// generation (the cache's count of invalidations) it was made at, so that a
// fill begun at an earlier generation can tell whether its token was among
// them. Its memory is bounded: a ring of the last window invalidations, and
// a map from each of their tokens to the latest generation it was
// invalidated at. The cache's mutex guards it.
//
// With a window of 0 it remembers none, and any invalidation drops every
// fill under way: the cache's behaviour before invalidations were told
// apart by token, kept to measure against.
type invalidations struct {
	latest  map[invalidation]uint64 // an empty id stands for the whole account
	ring    []datedInvalidation     // the last len(ring) invalidations
	head    int                     // the next entry of ring to write
	cleared uint64                  // the generation of the last clear
}

type datedInvalidation struct {
	invalidation
	gen uint64
}

func newInvalidations(window int) invalidations {
	return invalidations{latest: make(map[invalidation]uint64, window), ring: make([]datedInvalidation, window)}
}

// add records the invalidation, at generation gen, of the account's token
// with that id, or of all its tokens when id is empty.
func (v *invalidations) add(gen uint64, accountID, id string) {
	if len(v.ring) == 0 {
		return
	}
	key := invalidation{accountID, id}
	if old := v.ring[v.head]; old.gen != 0 && v.latest[old.invalidation] == old.gen {
		delete(v.latest, old.invalidation)
	}
	v.ring[v.head] = datedInvalidation{key, gen}
	v.head = (v.head + 1) % len(v.ring)
	v.latest[key] = gen
}

// clear records that every token was invalidated at generation gen.
func (v *invalidations) clear(gen uint64) { v.cleared = gen }

// since reports whether the account's token with that id was invalidated
// after generation from, the cache being at generation now: by itself, with
// its account, or by a clear, or possibly, when more invalidations came
// since than the window remembers.
func (v *invalidations) since(from, now uint64, accountID, id string) bool {
	switch {
	case now == from:
		return false
	case v.cleared > from, now-from > uint64(len(v.ring)):
		return true
	}
	return v.latest[invalidation{accountID, id}] > from || v.latest[invalidation{accountID, ""}] > from
}
