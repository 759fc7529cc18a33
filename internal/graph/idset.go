package graph

import (
	"encoding/binary"
	"hash/maphash"
	"math/bits"
	"sync"
	"sync/atomic"
)

// idKey is what the run's record keeps of a user: the 16 bytes of its id
// when the id is a GUID, as Entra's are, so that two users can never be
// taken for one; otherwise a 128-bit keyed hash of the id. A user without
// an id is never in the record (see withoutid.go).
type idKey [16]byte

// epoch tells apart the readings of a listing that hand users over: the
// sample page, each prefix's listing, each restart of one. A repeated user
// is a duplicate Graph sent only if its earlier reading was not one the
// current reading repeats on purpose. Epoch 0 marks an empty slot.
type epoch uint16

// idSet is the run's record of the users handed over, safe for concurrent
// use by every stream of a listing. It is an open-addressing hash table
// split into shards, each with its own lock, whose slots live outside the
// Go heap (see slab): the garbage collector neither scans them nor counts
// them towards its heap goal, and they go back to the system when the run
// ends. Nothing is written to disk, so a full or
// read-only TMPDIR cannot fail a run.
type idSet struct {
	seeds  [2]maphash.Seed
	mix    uint64
	shards [idShards]idShard
	epochs atomic.Uint32
}

// idShards is how many shards the record has: growing one shard at a time
// keeps the memory a growth needs small.
const idShards = 256

// slotSize is a slot's bytes: the key, then its epoch.
const slotSize = 16 + 2

// idShard is one shard: n keys in cap slots of slab.
type idShard struct {
	mu   sync.Mutex
	slab []byte
	cap  uint64
	n    uint64
}

func newIDSet() *idSet {
	s := &idSet{seeds: [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}}
	s.mix = maphash.Bytes(s.seeds[0], []byte("mix")) | 1
	return s
}

// key is the record's key for a user with the raw id bytes id.
func (s *idSet) key(id []byte) idKey {
	var k idKey
	if parseGUID(id, &k) {
		return k
	}
	binary.LittleEndian.PutUint64(k[:8], maphash.Bytes(s.seeds[0], id))
	binary.LittleEndian.PutUint64(k[8:], maphash.Bytes(s.seeds[1], id))
	return k
}

// parseGUID reads a GUID written 8-4-4-4-12 in hex digits of either case
// into k.
func parseGUID(b []byte, k *idKey) bool {
	if len(b) != 36 || b[8] != '-' || b[13] != '-' || b[18] != '-' || b[23] != '-' {
		return false
	}
	var bad byte
	for j, i := range guidDigits {
		hi, lo := hexValue[b[i]], hexValue[b[i+1]]
		bad |= hi | lo
		k[j] = hi<<4 | lo
	}
	return bad&0xf0 == 0
}

// guidDigits are where each byte's two hex digits begin in a GUID's text.
var guidDigits = [16]int{0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34}

// hexValue is each byte's value as a hex digit, or 0xff for one that is not.
var hexValue = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = byte(c - '0')
	}
	for c := 'a'; c <= 'f'; c++ {
		t[c] = byte(c-'a') + 10
		t[c-'a'+'A'] = byte(c-'a') + 10
	}
	return t
}()

// newEpoch hands out an epoch for a new reading. Past the last one, every
// reading shares it: users are still handed over once, only the count of
// duplicates may then take a repeat for one.
func (s *idSet) newEpoch() epoch {
	n := s.epochs.Add(1)
	if n > 0xffff {
		return 0xffff
	}
	return epoch(n)
}

// hash spreads a key over shards and slots, whatever its bytes: GUIDs from
// another source than Entra need not be random.
func (s *idSet) hash(k *idKey) uint64 {
	a := binary.LittleEndian.Uint64(k[:8])
	b := binary.LittleEndian.Uint64(k[8:])
	hi, lo := bits.Mul64(a^s.mix, b^0x9e3779b97f4a7c15)
	return hi ^ lo
}

// slotOf is where a key of hash h starts its search among n slots: the
// hash's bits below the shard's, scaled to n without a division.
func slotOf(h, n uint64) uint64 {
	hi, _ := bits.Mul64(h<<8, n)
	return hi
}

// add records k as handed over in epoch e, unless it is there already. It
// reports whether it added k and, when it did not, the epoch k has.
func (s *idSet) add(k idKey, e epoch) (added bool, had epoch) {
	h := s.hash(&k)
	sh := &s.shards[h>>56]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if (sh.n+1)*5 > sh.cap*4 {
		sh.grow(s)
	}
	i := slotOf(h, sh.cap)
	for {
		slot := sh.slab[i*slotSize : (i+1)*slotSize]
		got := epoch(binary.LittleEndian.Uint16(slot[16:]))
		if got == 0 {
			copy(slot, k[:])
			binary.LittleEndian.PutUint16(slot[16:], uint16(e))
			sh.n++
			return true, 0
		}
		if idKey(slot[:16]) == k {
			return false, got
		}
		if i++; i == sh.cap {
			i = 0
		}
	}
}

// retag moves k, which must be recorded, to epoch e.
func (s *idSet) retag(k idKey, e epoch) {
	h := s.hash(&k)
	sh := &s.shards[h>>56]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	for i := slotOf(h, sh.cap); ; {
		slot := sh.slab[i*slotSize : (i+1)*slotSize]
		if binary.LittleEndian.Uint16(slot[16:]) == 0 {
			return
		}
		if idKey(slot[:16]) == k {
			binary.LittleEndian.PutUint16(slot[16:], uint16(e))
			return
		}
		if i++; i == sh.cap {
			i = 0
		}
	}
}

// reserve sizes the record for n keys at once, so that it does not grow
// on the way: growing moves every key again. A split listing knows n from
// Graph's count.
func (s *idSet) reserve(n int) {
	perShard := uint64(n)/idShards + 1
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		for (perShard+1)*5 > sh.cap*4 {
			sh.grow(s)
		}
		sh.mu.Unlock()
	}
}

// firstPages is a shard's size in pages at first: four pages of every
// shard are 4 MiB of address space, memory only as keys land in it, and
// spare a small tenant's record the growths, each a mapping of its own.
const firstPages = 4

// grow gives the shard half as many slots again (firstPages at first) and
// moves its keys over. Called with the shard locked.
func (sh *idShard) grow(s *idSet) {
	size := max(len(sh.slab)*3/2, firstPages*pageSize)
	size = (size + pageSize - 1) / pageSize * pageSize
	slab := allocSlab(size)
	newCap := uint64(size / slotSize)
	for i := uint64(0); i < sh.cap; i++ {
		slot := sh.slab[i*slotSize : (i+1)*slotSize]
		if binary.LittleEndian.Uint16(slot[16:]) == 0 {
			continue
		}
		k := idKey(slot[:16])
		j := slotOf(s.hash(&k), newCap)
		for binary.LittleEndian.Uint16(slab[j*slotSize+16:]) != 0 {
			if j++; j == newCap {
				j = 0
			}
		}
		copy(slab[j*slotSize:], slot)
	}
	if sh.slab != nil {
		freeSlab(sh.slab)
	}
	sh.slab, sh.cap = slab, newCap
}

// size is how many keys the record holds and how much memory its slots
// take.
func (s *idSet) size() (keys, bytes int) {
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		keys += int(sh.n)
		bytes += len(sh.slab)
		sh.mu.Unlock()
	}
	return keys, bytes
}

// close gives the record's memory back. The record is not used after.
func (s *idSet) close() {
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		if sh.slab != nil {
			freeSlab(sh.slab)
		}
		sh.slab, sh.cap, sh.n = nil, 0, 0
		sh.mu.Unlock()
	}
}
