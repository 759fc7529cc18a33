package graph

import (
	"hash/maphash"
	"slices"
)

// idSet remembers the users a listing handed over, 8 bytes each: a hash of
// the user's id (of the whole object when it has none).
type idSet struct {
	seed   maphash.Seed
	sorted []uint64 // handed over before the latest restart, sorted
	recent []uint64 // handed over since, in order
}

func (s *idSet) hash(user []byte) uint64 {
	if s.seed == (maphash.Seed{}) {
		s.seed = maphash.MakeSeed()
	}
	if id, ok := memberString(user, "id"); ok {
		return maphash.Bytes(s.seed, id)
	}
	return maphash.Bytes(s.seed, user)
}

func (s *idSet) add(h uint64) { s.recent = append(s.recent, h) }

// before reports whether h was handed over before the latest restart.
func (s *idSet) before(h uint64) bool {
	if len(s.sorted) == 0 {
		return false
	}
	_, found := slices.BinarySearch(s.sorted, h)
	return found
}

// since returns the hashes added since recent held n of them.
func (s *idSet) since(n int) map[uint64]bool {
	m := make(map[uint64]bool, len(s.recent)-n)
	for _, h := range s.recent[n:] {
		m[h] = true
	}
	return m
}

// restart makes everything handed over so far count as before.
func (s *idSet) restart() {
	s.sorted = append(s.sorted, s.recent...)
	slices.Sort(s.sorted)
	s.recent = nil
}
