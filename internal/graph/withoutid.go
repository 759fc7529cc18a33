package graph

import (
	"fmt"
	"hash/maphash"
	"sync"
)

// A user without an id, which Graph leaves out only in a malformed answer
// since every listing selects it, cannot be told from another: two users
// alike in every property they carry are two users. So no record of the
// run decides that one is a duplicate. What a reading repeats on purpose it
// still skips, by content and count, as a delta round does: a page read
// again, or a listing started over, skips as many users alike as it handed
// over there before, and a split listing's streams skip the first page's,
// which its prefix lists again.

// contentKey is a keyed hash of a user's bytes.
type contentKey [2]uint64

// withoutID is a reading's count of the users without an id it handed
// over, and of those it met since it began, by content. Its maps are made
// when the first such user comes.
type withoutID struct {
	// handed is how many of each the reading handed over, or took from
	// the first page of a split listing, over all its attempts and
	// restarts.
	handed map[contentKey]int
	// met is how many of each the current pass met, up to the last page
	// read whole; onPage, how many the current attempt at a page met.
	met, onPage map[contentKey]int
	// pending is how many it handed over that the totals do not have yet;
	// onThisPage, how many of the current page, by any attempt at it.
	pending, onThisPage int
}

// meet counts a user without an id, k, and reports whether to hand it
// over: not when this pass has met no more users alike than were handed.
func (w *withoutID) meet(k contentKey) bool {
	if w.handed == nil {
		w.handed, w.met, w.onPage = map[contentKey]int{}, map[contentKey]int{}, map[contentKey]int{}
	}
	w.onPage[k]++
	return w.met[k]+w.onPage[k] > w.handed[k]
}

// hand records that a user alike k was handed over, counted when counted.
func (w *withoutID) hand(k contentKey, counted bool) {
	w.handed[k]++
	if counted {
		w.pending++
		w.onThisPage++
	}
}

// newPage starts a page, read for the first time.
func (w *withoutID) newPage() { w.onThisPage = 0 }

// atPage starts an attempt at a page: what an earlier attempt met is met
// again.
func (w *withoutID) atPage() { clear(w.onPage) }

// pageDone adds the page's users to what the pass met.
func (w *withoutID) pageDone() {
	for k, n := range w.onPage {
		w.met[k] += n
	}
	clear(w.onPage)
}

// restart begins a new pass from the first page.
func (w *withoutID) restart() {
	clear(w.met)
	clear(w.onPage)
}

// sampledWithoutID is the users without an id a split listing's first page
// handed over, by content: the streams take them, so that the stream whose
// prefix lists one again does not hand it over twice. It is safe for
// concurrent use.
type sampledWithoutID struct {
	mu   sync.Mutex
	left map[contentKey]int
}

// take reports whether a user alike k was on the first page and not yet
// taken.
func (s *sampledWithoutID) take(k contentKey) bool {
	if s == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.left[k] == 0 {
		return false
	}
	s.left[k]--
	return true
}

// itemWithoutID hands over a user without an id unless this reading met it
// before, or a split listing's first page handed it over, and warns of the
// first one of the call.
func (r *userReading) itemWithoutID(user []byte) error {
	seeds := &r.ls.seen.seeds
	k := contentKey{maphash.Bytes(seeds[0], user), maphash.Bytes(seeds[1], user)}
	if !r.noID.meet(k) {
		return nil
	}
	if r.ls.sampled.take(k) {
		r.noID.hand(k, false)
		return nil
	}
	r.ls.warnWithoutID.Do(func() {
		r.pg.warn(fmt.Sprintf("page %d: Graph sent a user without an id, though the listing asks for it: "+
			"it is logged all the same, as is every user without an id, none taken for a duplicate "+
			"(the summary's withoutId counts them)", r.pg.pages+1))
	})
	if err := r.ls.sink.User(r.stream, user); err != nil {
		return err
	}
	r.noID.hand(k, true)
	r.users++
	r.handedOver++
	return nil
}
