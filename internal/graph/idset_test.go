package graph

import (
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestIDSetKeepsAGUIDsSixteenBytes(t *testing.T) {
	s := newIDSet()
	defer s.close()
	k := s.key([]byte("87d349ed-44d7-43e1-9a83-5f2406dee5bd"))
	assert.Equal(t, idKey{0x87, 0xd3, 0x49, 0xed, 0x44, 0xd7, 0x43, 0xe1, 0x9a, 0x83, 0x5f, 0x24, 0x06, 0xde, 0xe5, 0xbd}, k)
	assert.Equal(t, k, s.key([]byte("87D349ED-44D7-43E1-9A83-5F2406DEE5BD")), "a GUID's case does not make another user")
}

func TestIDSetNeverTakesTwoGUIDsForOne(t *testing.T) {
	s := newIDSet()
	defer s.close()
	e := s.newEpoch()
	// GUIDs that differ in one bit only, at every position: whatever a
	// hash of them would do, the record keeps them apart.
	base := idKey{}
	added, _ := s.add(base, e)
	require.True(t, added)
	for bit := range 128 {
		k := base
		k[bit/8] ^= 1 << (bit % 8)
		added, _ := s.add(k, e)
		require.True(t, added, "bit %d", bit)
	}
	keys, _ := s.size()
	assert.Equal(t, 129, keys)
}

func TestIDSetHashesWhatIsNotAGUIDWide(t *testing.T) {
	s := newIDSet()
	defer s.close()
	for _, id := range []string{"user-1", "87d349ed-44d7-43e1-9a83-5f2406dee5b", "87d349ed+44d7-43e1-9a83-5f2406dee5bd", "87d349ed-44d7-43e1-9a83-5f2406dee5bz"} {
		k := s.key([]byte(id))
		assert.NotEqual(t, idKey{}, k)
	}
}

func TestIDSetRemembersEveryUserAndItsEpoch(t *testing.T) {
	s := newIDSet()
	defer s.close()
	first, second := s.newEpoch(), s.newEpoch()
	const n = 50_000
	key := func(i int) idKey { return s.key(fmt.Appendf(nil, "%08x-0000-4000-8000-%012x", i, i*7919)) }
	for i := range n {
		added, _ := s.add(key(i), first)
		require.True(t, added, "user %d", i)
	}
	for i := range n {
		added, had := s.add(key(i), second)
		require.False(t, added, "user %d", i)
		require.Equal(t, first, had)
	}
	s.retag(key(7), second)
	_, had := s.add(key(7), first)
	assert.Equal(t, second, had)
	keys, bytes := s.size()
	assert.Equal(t, n, keys)
	assert.LessOrEqual(t, bytes, max(n*slotSize*5/2, firstPages*pageSize*idShards),
		"the first pages, or at most about half the slots empty")
}

func TestIDSetIsSafeForStreamsAtOnce(t *testing.T) {
	s := newIDSet()
	defer s.close()
	e := s.newEpoch()
	const streams, each = 8, 5_000
	var wg sync.WaitGroup
	addedBy := make([]int, streams)
	for w := range streams {
		wg.Go(func() {
			// Every stream offers every user: each is added exactly once.
			for i := range each {
				if added, _ := s.add(s.key(fmt.Appendf(nil, "u%d", i)), e); added {
					addedBy[w]++
				}
			}
		})
	}
	wg.Wait()
	total := 0
	for _, n := range addedBy {
		total += n
	}
	assert.Equal(t, each, total)
	keys, _ := s.size()
	assert.Equal(t, each, keys)
}
