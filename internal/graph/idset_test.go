package graph

import (
	"fmt"
	"hash/maphash"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestIDSetRemembersEveryUserAcrossRestarts(t *testing.T) {
	for name, s := range map[string]*idSet{"spilled to a file": newIDSet(), "in memory": {seed: maphash.MakeSeed()}} {
		t.Run(name, func(t *testing.T) {
			defer s.close()
			user := func(i int) (user, id []byte) {
				id = fmt.Appendf(nil, "user-%d", i)
				return fmt.Appendf(nil, `{"displayName":"x","id":"%s"}`, id), id
			}
			for i := range 100_000 {
				require.NoError(t, s.add(s.hash(user(i))))
			}
			assert.False(t, s.before(s.hash(user(5))), "nothing counts as before until a restart")

			require.NoError(t, s.restart())
			for i := range 100_000 {
				require.True(t, s.before(s.hash(user(i))), "user %d", i)
			}
			assert.False(t, s.before(s.hash(user(100_000))))

			require.NoError(t, s.add(s.hash(user(100_000))))
			require.NoError(t, s.restart())
			assert.True(t, s.before(s.hash(user(100_000))), "a second restart knows users from after the first")
		})
	}
}

func TestIDSetTellsThisPagesUsersApart(t *testing.T) {
	s := newIDSet()
	defer s.close()
	a, b, c := s.hash(nil, []byte("a")), s.hash(nil, []byte("b")), s.hash(nil, []byte("c"))
	require.NoError(t, s.add(a))
	s.newPage()
	require.NoError(t, s.add(b))
	require.NoError(t, s.add(c))
	assert.Equal(t, map[uint64]bool{b: true, c: true}, s.onPage())
}

func TestIDSetHashesTheIDWherePropertiesDiffer(t *testing.T) {
	s := &idSet{seed: maphash.MakeSeed()}
	assert.Equal(t, s.hash([]byte(`{"id":"a","mail":null}`), []byte("a")), s.hash([]byte(`{"mail":"new@x","id":"a"}`), []byte("a")),
		"a user is the same user when other properties change between reads")
	assert.NotEqual(t, s.hash([]byte(`{"mail":"a"}`), nil), s.hash([]byte(`{"mail":"b"}`), nil), "without an id, the whole object counts")
}
