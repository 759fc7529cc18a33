package fakeazure

import (
	"slices"
	"unicode/utf8"
)

// prefixIndex lists the listed users by the first one, two and three characters of their
// userPrincipalName, case-folded unless startsWith is case-sensitive: each list is an int32
// slice of indexes in order, so a page of a prefix filter starts with a binary search and walks
// just the users it may return. It costs 12 bytes a user.
type prefixIndex struct {
	fold    bool
	buckets map[uint32][]int32
}

// indexDepth is the longest prefix the index lists users by.
const indexDepth = 3

// prefixKey packs the first n bytes of upn and n into a map key.
func prefixKey(upn []byte, n int, fold bool) uint32 {
	k := uint32(n) << 24
	for j := range n {
		c := upn[j]
		if fold && 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		k |= uint32(c) << (8 * j)
	}
	return k
}

// shorter is the key of the first n bytes of a key of more.
func shorter(k uint32, n int) uint32 {
	return k&(1<<(8*n)-1) | uint32(n)<<24
}

// buildIndex indexes every listed user of s: one pass finds each user's key and counts each
// list's length, a second fills lists allocated to size. The caller holds s.mu for writing.
func buildIndex(s *userStore) *prefixIndex {
	x := &prefixIndex{fold: !s.caseSensitive, buckets: map[uint32][]int32{}}
	keys := make([]uint32, s.total) // 0 for users not listed
	counts := map[uint32]int{}
	var scratch [128]byte
	for i := range s.total {
		if !s.listed(i) {
			continue
		}
		upn := s.appendUPN(scratch[:0], i)
		n := min(indexDepth, len(upn))
		k := prefixKey(upn, n, x.fold)
		keys[i] = k
		for m := 1; m <= n; m++ {
			counts[shorter(k, m)]++
		}
	}
	for k, c := range counts {
		x.buckets[k] = make([]int32, 0, c)
	}
	for i, k := range keys {
		if k == 0 {
			continue
		}
		for m := 1; m <= int(k>>24); m++ {
			b := shorter(k, m)
			x.buckets[b] = append(x.buckets[b], int32(i))
		}
	}
	return x
}

// add lists user i under its UPN's prefixes, in index order.
func (x *prefixIndex) add(i int32, upn []byte) {
	n := min(indexDepth, len(upn))
	for m := 1; m <= n; m++ {
		k := prefixKey(upn, m, x.fold)
		b := x.buckets[k]
		at, found := slices.BinarySearch(b, i)
		if !found {
			x.buckets[k] = slices.Insert(b, at, i)
		}
	}
}

// remove takes user i off its UPN's prefixes.
func (x *prefixIndex) remove(i int32, upn []byte) {
	n := min(indexDepth, len(upn))
	for m := 1; m <= n; m++ {
		k := prefixKey(upn, m, x.fold)
		b := x.buckets[k]
		if at, found := slices.BinarySearch(b, i); found {
			x.buckets[k] = slices.Delete(b, at, at+1)
		}
	}
}

// candidates returns the users whose UPN begins with the first characters of prefix, as
// startsWith compares them: a superset of the users that begin with all of prefix. It reports
// false when the prefix is empty, which every user matches.
func (x *prefixIndex) candidates(prefix string) ([]int32, bool) {
	var key [indexDepth]byte
	n := 0
	for _, r := range prefix {
		if n == indexDepth {
			break
		}
		c, ok := byte(r), r < utf8.RuneSelf
		if x.fold {
			c, ok = asciiFold(r)
		}
		if !ok {
			return nil, true // UPNs are ASCII: no user begins with this
		}
		key[n] = c
		n++
	}
	if n == 0 {
		return nil, false
	}
	return x.buckets[prefixKey(key[:n], n, x.fold)], true
}
