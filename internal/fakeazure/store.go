package fakeazure

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
)

// population generates the users as the tenant created them: user i's properties before any
// change, from i alone.
type population struct{ realistic bool }

func (p population) appendUPN(dst []byte, i int) []byte {
	if p.realistic {
		return realisticUser(i).appendUPN(dst)
	}
	return appendUPN(dst, i)
}

func (p population) appendDisplayName(dst []byte, i int) []byte {
	if p.realistic {
		return realisticUser(i).appendDisplayName(dst)
	}
	return appendDisplayName(dst, i)
}

func (p population) appendValue(dst []byte, i int, prop property) []byte {
	if p.realistic {
		return appendRealValue(dst, i, prop)
	}
	return appendValue(dst, i, prop)
}

func (p population) accountEnabled(i int) bool {
	if p.realistic {
		return !realisticUser(i).disabled()
	}
	return i%50 != 49
}

func (p population) guest(i int) bool {
	return p.realistic && realisticUser(i).guest()
}

// life is where a user is: listed, soft-deleted (restorable) or hard-deleted (gone).
type life uint8

const (
	lifeListed life = iota
	lifeSoftDeleted
	lifeHardDeleted
)

// What a change can change, as bits of a logEntry's mask.
const (
	trackDisplayName uint8 = 1 << iota
	trackJobTitle
	trackUPN
	trackLife  // created, deleted or restored
	numTracked = 4
)

// trackedBit is the bit of a tracked property, 0 for the others.
func trackedBit(p property) uint8 {
	switch p {
	case propDisplayName:
		return trackDisplayName
	case propJobTitle:
		return trackJobTitle
	case propUserPrincipalName:
		return trackUPN
	}
	return 0
}

// userState is what changed about one user since the tenant was created.
type userState struct {
	life      life
	overrides uint8 // tracked bits whose value here replaces the population's
	displayName,
	jobTitle,
	upn string
	pos [numTracked]int32 // log position of the latest change of each tracked bit, -1 for none
}

// latest is the log position of the user's latest change among mask's bits, -1 for none.
func (st *userState) latest(mask uint8) int32 {
	p := int32(-1)
	for b := range numTracked {
		if mask&(1<<b) != 0 {
			p = max(p, st.pos[b])
		}
	}
	return p
}

// logEntry is one change, in the order changes were made: delta rounds read it.
type logEntry struct {
	user int32
	mask uint8
}

// userStore holds the tenant's users as they are now: the population as created and the changes
// made since. Readers hold mu for reading while they walk and render, so a change is never seen
// half made; changes hold it for writing.
type userStore struct {
	mu            sync.RWMutex
	pop           population
	caseSensitive bool
	total         int // users ever created, listed or not: indexes 0 to total-1
	listedCount   int
	changed       []uint64 // bit i is set when user i has a state; nil until the first change
	states        map[int32]*userState
	log           []logEntry
	renamed       map[string]int32 // case-folded UPNs that renames gave, to the user holding each
	serial        int              // updates and renames so far, which vary what they set
	picks         uint64           // the generator that picks the users a Change changes
	index         *prefixIndex     // nil until a filter needs it
	indexed       atomic.Bool

	examined atomic.Int64 // users walks have looked at, so tests can see what a page costs

	links        atomic.Uint64 // delta links issued so far; each link carries its serial
	expiredBelow atomic.Uint64 // delta links with a serial up to this have expired
	expiry       atomic.Int32  // how an expired delta link is answered, a DeltaExpiry
}

func newUserStore(users int, realistic, caseSensitive bool) *userStore {
	return &userStore{pop: population{realistic}, caseSensitive: caseSensitive, total: users, listedCount: users}
}

// state returns user i's state, nil when the user never changed. The caller holds mu.
func (s *userStore) state(i int) *userState {
	if s.changed == nil || i>>6 >= len(s.changed) || s.changed[i>>6]&(1<<(i&63)) == 0 {
		return nil
	}
	return s.states[int32(i)]
}

// listed reports whether user i is listed now. The caller holds mu.
func (s *userStore) listed(i int) bool {
	if i < 0 || i >= s.total {
		return false
	}
	st := s.state(i)
	return st == nil || st.life == lifeListed
}

func (s *userStore) appendUPN(dst []byte, i int) []byte {
	if st := s.state(i); st != nil && st.overrides&trackUPN != 0 {
		return append(dst, st.upn...)
	}
	return s.pop.appendUPN(dst, i)
}

func (s *userStore) appendDisplayName(dst []byte, i int) []byte {
	if st := s.state(i); st != nil && st.overrides&trackDisplayName != 0 {
		return append(dst, st.displayName...)
	}
	return s.pop.appendDisplayName(dst, i)
}

func (s *userStore) accountEnabled(i int) bool { return s.pop.accountEnabled(i) }
func (s *userStore) guest(i int) bool          { return s.pop.guest(i) }

// upn is user i's userPrincipalName now. The caller holds mu.
func (s *userStore) upn(i int) string {
	var scratch [128]byte
	return string(s.appendUPN(scratch[:0], i))
}

// appendUser appends user i as it is now, as a JSON object holding props in their order.
func (s *userStore) appendUser(dst []byte, i int, props []property) []byte {
	st := s.state(i)
	if st == nil && !s.pop.realistic {
		return appendUser(dst, i, props) // the synthetic tenant, unchanged: as fast as ever
	}
	dst = append(dst, '{')
	for k, p := range props {
		if k > 0 {
			dst = append(dst, ',')
		}
		dst = appendJSONString(dst, p.String())
		dst = append(dst, ':')
		dst = s.appendValue(dst, i, p, st)
	}
	return append(dst, '}')
}

// appendValue appends the JSON value of property p of user i, whose state is st.
func (s *userStore) appendValue(dst []byte, i int, p property, st *userState) []byte {
	if st != nil && st.overrides&trackedBit(p) != 0 {
		switch p {
		case propDisplayName:
			return appendJSONString(dst, st.displayName)
		case propJobTitle:
			return appendJSONString(dst, st.jobTitle)
		case propUserPrincipalName:
			return appendJSONString(dst, st.upn)
		}
	}
	return s.pop.appendValue(dst, i, p)
}

// walk appends to out the users of the page that starts at user from: up to top listed users
// that pass f, in index order. It returns them and the index of the next user that passes, or
// -1 for none. A filter on a userPrincipalName prefix walks the prefix's index, so a page costs
// about the page, whatever the tenant's size. The caller holds mu, and built the index first.
func (s *userStore) walk(f *userFilter, from, top int, out []int32) ([]int32, int) {
	examined := 0
	next := -1
	if cands, ok := s.candidates(f); ok {
		k := sort.Search(len(cands), func(k int) bool { return int(cands[k]) >= from })
		for ; k < len(cands); k++ {
			i := int(cands[k])
			examined++
			if !f.matches(s, i) {
				continue
			}
			if len(out) == top {
				next = i
				break
			}
			out = append(out, int32(i))
		}
	} else {
		for i := from; i < s.total; i++ {
			examined++
			if !s.listed(i) || !f.matches(s, i) {
				continue
			}
			if len(out) == top {
				next = i
				break
			}
			out = append(out, int32(i))
		}
	}
	s.examined.Add(int64(examined))
	return out, next
}

// count is how many listed users pass f. The caller holds mu, and built the index first.
func (s *userStore) count(f *userFilter) int {
	if f.root == nil {
		return s.listedCount
	}
	n := 0
	if cands, ok := s.candidates(f); ok {
		for _, i := range cands {
			if f.matches(s, int(i)) {
				n++
			}
		}
		s.examined.Add(int64(len(cands)))
		return n
	}
	for i := range s.total {
		if s.listed(i) && f.matches(s, i) {
			n++
		}
	}
	s.examined.Add(int64(s.total))
	return n
}

// candidates are the listed users whose UPN begins as f's prefix does, when the index can tell.
func (s *userStore) candidates(f *userFilter) ([]int32, bool) {
	if !f.hasPrefix || s.index == nil {
		return nil, false
	}
	return s.index.candidates(f.prefix)
}

// ensureIndex builds the prefix index, once: a 1,000,000-user tenant takes a fraction of a
// second and about 12 MB.
func (s *userStore) ensureIndex() {
	if s.indexed.Load() {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buildIndexLocked()
}

func (s *userStore) buildIndexLocked() {
	if s.index == nil {
		s.index = buildIndex(s)
		s.indexed.Store(true)
	}
}

// listedUsers returns the indexes of the listed users, in listing order.
func (s *userStore) listedUsers() []int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]int, 0, s.listedCount)
	for i := range s.total {
		if s.listed(i) {
			out = append(out, i)
		}
	}
	return out
}

// touch returns user i's state, making one that holds the population's values if there is none.
// The caller holds mu for writing.
func (s *userStore) touch(i int) *userState {
	if st := s.state(i); st != nil {
		return st
	}
	if s.states == nil {
		s.states = map[int32]*userState{}
	}
	for need := (s.total + 63) >> 6; len(s.changed) < need; {
		s.changed = append(s.changed, 0)
	}
	st := &userState{pos: [numTracked]int32{-1, -1, -1, -1}}
	s.states[int32(i)] = st
	s.changed[i>>6] |= 1 << (i & 63)
	return st
}

// record appends a change of mask's bits of user i to the log.
func (s *userStore) record(i int, st *userState, mask uint8) {
	p := int32(len(s.log))
	s.log = append(s.log, logEntry{user: int32(i), mask: mask})
	for b := range numTracked {
		if mask&(1<<b) != 0 {
			st.pos[b] = p
		}
	}
}

// unlist and relist keep the index and the count in step when a user leaves or rejoins the
// listing. The caller holds mu for writing.
func (s *userStore) unlist(i int) {
	if s.index != nil {
		s.index.remove(int32(i), s.appendUPN(nil, i))
	}
	s.listedCount--
}

func (s *userStore) relist(i int) {
	if s.index != nil {
		s.index.add(int32(i), s.appendUPN(nil, i))
	}
	s.listedCount++
}

// softDeleted returns the soft-deleted users, in index order. The caller holds mu.
func (s *userStore) softDeleted() []int {
	var out []int
	for i, st := range s.states {
		if st.life == lifeSoftDeleted {
			out = append(out, int(i))
		}
	}
	slices.Sort(out)
	return out
}

// UPN returns user i's userPrincipalName now, renamed or not, deleted or not; "" for an index
// never created.
func (g *Graph) UPN(i int) string {
	s := g.store
	s.mu.RLock()
	defer s.mu.RUnlock()
	if i < 0 || i >= s.total {
		return ""
	}
	return s.upn(i)
}

// UserJSON returns user i as the fake Graph lists it now, holding just props in the order given,
// whatever the tenant's kind and changes: what a listing's page holds for the user. Names match
// case-insensitively; names the fake tenant does not know are left out.
func (g *Graph) UserJSON(i int, props []string) []byte {
	ps := make([]property, 0, len(props))
	for _, name := range props {
		if p, ok := lookupProperty(name); ok {
			ps = append(ps, p)
		}
	}
	s := g.store
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.appendUser(nil, i, ps)
}

// Listed reports whether user i is listed now: created and not deleted.
func (g *Graph) Listed(i int) bool {
	s := g.store
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.listed(i)
}

// ListedUsers returns the indexes of the users listed now, in the order an unfiltered listing
// returns them: what a full listing should find.
func (g *Graph) ListedUsers() []int { return g.store.listedUsers() }

// PrefixCounts returns how many listed users have each userPrincipalName prefix of n
// characters (1 to 3), folded to lower case: the exact distribution a split listing meets.
func (g *Graph) PrefixCounts(n int) map[string]int {
	n = min(max(n, 1), indexDepth)
	s := g.store
	s.mu.RLock()
	defer s.mu.RUnlock()
	counts := map[uint32]int{}
	var scratch [128]byte
	for i := range s.total {
		if s.listed(i) {
			upn := s.appendUPN(scratch[:0], i)
			counts[prefixKey(upn, min(n, len(upn)), true)]++
		}
	}
	out := make(map[string]int, len(counts))
	for k, c := range counts {
		b := make([]byte, k>>24)
		for j := range b {
			b[j] = byte(k >> (8 * j))
		}
		out[string(b)] = c
	}
	return out
}

// validUPN checks upn as Entra does: a name of A-Z a-z 0-9 ' . - _ ! # ^ ~, not ending with a
// period, then @ and a domain.
func validUPN(upn string) error {
	name, domain, ok := strings.Cut(upn, "@")
	if !ok || name == "" || domain == "" || strings.Contains(domain, "@") {
		return errors.New("a UPN is name@domain")
	}
	if strings.HasSuffix(name, ".") {
		return errors.New("a UPN's name may not end with a period")
	}
	for _, c := range []byte(name) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("'.-_!#^~", c) >= 0) {
			return fmt.Errorf("a UPN's name may not hold %q", c)
		}
	}
	for _, c := range []byte(domain) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '-') {
			return fmt.Errorf("a UPN's domain may not hold %q", c)
		}
	}
	return nil
}
