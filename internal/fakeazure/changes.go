package fakeazure

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// A Graph's tenant can change between and during listings, safely while it serves: users are
// added, updated, renamed, soft-deleted, restored and hard-deleted. /v1.0/users, $count, every
// $filter and /v1.0/users/delta answer from the tenant as it is when each request arrives;
// deleted users are not listed, and a change is logged for delta rounds. A tenant that never
// changed serves as fast as one that cannot.

// Changes asks Graph.Change for a number of changes of each kind; the fake picks the users.
type Changes struct {
	// Add creates users at the next indexes, with the population's properties for those
	// indexes.
	Add int `json:"add"`
	// Update changes the jobTitle of listed users, and the displayName of every second one.
	Update int `json:"update"`
	// Rename gives listed users a new userPrincipalName that begins with another letter, so
	// that the user moves to another startsWith prefix.
	Rename int `json:"rename"`
	// SoftDelete deletes listed users restorably: delta reports them removed as "changed".
	SoftDelete int `json:"softDelete"`
	// HardDelete deletes listed users for good: delta reports them removed as "deleted".
	HardDelete int `json:"hardDelete"`
	// Restore brings soft-deleted users back, from before this Change.
	Restore int `json:"restore"`
}

// Changed lists, by index, the users a Change changed: fewer than asked when the tenant had too
// few users to pick from.
type Changed struct {
	Added       []int `json:"added"`
	Updated     []int `json:"updated"`
	Renamed     []int `json:"renamed"`
	SoftDeleted []int `json:"softDeleted"`
	HardDeleted []int `json:"hardDeleted"`
	Restored    []int `json:"restored"`
}

// UserUpdate is what Graph.UpdateUser sets; an empty field is left as it is.
type UserUpdate struct {
	DisplayName string
	JobTitle    string
}

// ErrNoSuchUser is returned for a change of a user the tenant does not hold as the change needs:
// an index never created, a user already deleted, or one not deleted that is to be restored.
var ErrNoSuchUser = errors.New("no such user")

// Change makes the changes c asks for at once, restoring first, so that a restored user was
// deleted by an earlier Change, then adding, updating, renaming and deleting, each user at most
// once, and says which users changed. The same Changes on the same tenant picks the same users.
func (g *Graph) Change(c Changes) Changed {
	s := g.store
	s.mu.Lock()
	defer s.mu.Unlock()
	var out Changed
	picked := map[int]bool{}

	soft := s.softDeleted()
	for k := 0; k < c.Restore && len(soft) > 0; k++ {
		j := int(s.nextPick() % uint64(len(soft)))
		i := soft[j]
		soft = append(soft[:j], soft[j+1:]...)
		s.restore(i)
		picked[i] = true
		out.Restored = append(out.Restored, i)
	}
	for range c.Add {
		out.Added = append(out.Added, s.add())
	}
	for _, i := range s.pickListed(c.Update, picked) {
		s.update(i, s.nextUpdate(i))
		out.Updated = append(out.Updated, i)
	}
	for _, i := range s.pickListed(c.Rename, picked) {
		s.rename(i, s.nextUPN(i))
		out.Renamed = append(out.Renamed, i)
	}
	for _, i := range s.pickListed(c.SoftDelete, picked) {
		s.softDelete(i)
		out.SoftDeleted = append(out.SoftDeleted, i)
	}
	for _, i := range s.pickListed(c.HardDelete, picked) {
		s.hardDelete(i)
		out.HardDeleted = append(out.HardDeleted, i)
	}
	return out
}

// AddUsers creates n users and returns their indexes.
func (g *Graph) AddUsers(n int) []int {
	return g.Change(Changes{Add: n}).Added
}

// UpdateUser changes user i's displayName or jobTitle, or both.
func (g *Graph) UpdateUser(i int, u UserUpdate) error {
	s := g.store
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.listed(i) {
		return fmt.Errorf("update user %d: %w", i, ErrNoSuchUser)
	}
	if u.DisplayName == "" && u.JobTitle == "" {
		return nil
	}
	s.update(i, u)
	return nil
}

// RenameUser changes user i's userPrincipalName to upn, refusing, as Graph does, a UPN with
// characters a UPN may not have or one another user holds, in any case.
func (g *Graph) RenameUser(i int, upn string) error {
	s := g.store
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.listed(i) {
		return fmt.Errorf("rename user %d: %w", i, ErrNoSuchUser)
	}
	if err := validUPN(upn); err != nil {
		return fmt.Errorf("rename user %d to %q: %w", i, upn, err)
	}
	if j, taken := s.holder(upn); taken && j != i {
		return fmt.Errorf("rename user %d to %q: user %d already has it", i, upn, j)
	}
	s.rename(i, upn)
	return nil
}

// SoftDeleteUser deletes listed user i restorably.
func (g *Graph) SoftDeleteUser(i int) error {
	return g.changeOne(i, "soft-delete", func(s *userStore) bool { return s.listed(i) }, (*userStore).softDelete)
}

// HardDeleteUser deletes user i, listed or soft-deleted, for good.
func (g *Graph) HardDeleteUser(i int) error {
	return g.changeOne(i, "hard-delete", func(s *userStore) bool {
		st := s.state(i)
		return s.listed(i) || st != nil && st.life == lifeSoftDeleted
	}, (*userStore).hardDelete)
}

// RestoreUser brings soft-deleted user i back.
func (g *Graph) RestoreUser(i int) error {
	return g.changeOne(i, "restore", func(s *userStore) bool {
		st := s.state(i)
		return i < s.total && st != nil && st.life == lifeSoftDeleted
	}, (*userStore).restore)
}

func (g *Graph) changeOne(i int, what string, ok func(*userStore) bool, change func(*userStore, int)) error {
	s := g.store
	s.mu.Lock()
	defer s.mu.Unlock()
	if !ok(s) {
		return fmt.Errorf("%s user %d: %w", what, i, ErrNoSuchUser)
	}
	change(s, i)
	return nil
}

// add creates the user at the next index. The caller holds s.mu for writing.
func (s *userStore) add() int {
	i := s.total
	s.total++
	st := s.touch(i)
	st.life = lifeListed
	s.relist(i)
	s.record(i, st, trackLife)
	return i
}

func (s *userStore) update(i int, u UserUpdate) {
	st := s.touch(i)
	var mask uint8
	if u.DisplayName != "" {
		st.displayName = u.DisplayName
		mask |= trackDisplayName
	}
	if u.JobTitle != "" {
		st.jobTitle = u.JobTitle
		mask |= trackJobTitle
	}
	st.overrides |= mask
	s.record(i, st, mask)
}

func (s *userStore) rename(i int, upn string) {
	if s.index != nil {
		s.index.remove(int32(i), s.appendUPN(nil, i))
	}
	st := s.touch(i)
	if st.overrides&trackUPN != 0 {
		delete(s.renamed, strings.ToLower(st.upn))
	}
	st.upn = upn
	st.overrides |= trackUPN
	if s.renamed == nil {
		s.renamed = map[string]int32{}
	}
	s.renamed[strings.ToLower(upn)] = int32(i)
	if s.index != nil {
		s.index.add(int32(i), []byte(upn))
	}
	s.record(i, st, trackUPN)
}

func (s *userStore) softDelete(i int) {
	s.unlist(i)
	st := s.touch(i)
	st.life = lifeSoftDeleted
	s.record(i, st, trackLife)
}

func (s *userStore) hardDelete(i int) {
	if s.listed(i) {
		s.unlist(i)
	}
	st := s.touch(i)
	st.life = lifeHardDeleted
	if st.overrides&trackUPN != 0 {
		delete(s.renamed, strings.ToLower(st.upn)) // the UPN is free again
	}
	s.record(i, st, trackLife)
}

func (s *userStore) restore(i int) {
	st := s.touch(i)
	st.life = lifeListed
	s.relist(i)
	s.record(i, st, trackLife)
}

// nextPick draws from the generator that picks users: deterministic, so that the same Changes
// on the same tenant change the same users.
func (s *userStore) nextPick() uint64 {
	s.picks++
	return mix64(s.picks ^ 0x632be59bd9b4e019)
}

// pickListed picks up to n listed users not picked yet, and marks them picked.
func (s *userStore) pickListed(n int, picked map[int]bool) []int {
	var out []int
	for tries := 0; len(out) < n && s.total > 0 && tries < 20*n+1000; tries++ {
		i := int(s.nextPick() % uint64(s.total))
		if picked[i] || !s.listed(i) {
			continue
		}
		picked[i] = true
		out = append(out, i)
	}
	return out
}

// nextUpdate is what Change sets on user i: another jobTitle every time, and for every second
// update a displayName that says the user moved department.
func (s *userStore) nextUpdate(i int) UserUpdate {
	s.serial++
	var scratch [128]byte
	title := jobTitles[(i+s.serial)%len(jobTitles)]
	if st := s.state(i); st != nil && st.overrides&trackJobTitle != 0 && st.jobTitle == title {
		title = jobTitles[(i+s.serial+1)%len(jobTitles)]
	}
	u := UserUpdate{JobTitle: title}
	if s.serial%2 == 0 {
		name := string(s.pop.appendDisplayName(scratch[:0], i))
		u.DisplayName = name + " (" + departments[s.serial%len(departments)] + ")"
	}
	return u
}

// nextUPN makes a new UPN for user i that no user holds and that begins with another letter:
// a realistic user takes another first name, keeps its surname and gets the rename's serial,
// adele.vance17 becoming nestor.vance.12; a synthetic one becomes adele.renamed12. Neither
// shape is one the population makes, so only other renames could hold it.
func (s *userStore) nextUPN(i int) string {
	var scratch [128]byte
	first := strings.ToLower(string(s.appendUPN(scratch[:0], i)[:1]))
	for {
		s.serial++
		var upn string
		if s.pop.realistic {
			upn = realisticRename(i, s.serial, first)
		} else {
			name := givenNames[s.serial%len(givenNames)]
			if strings.EqualFold(name[:1], first) {
				name = givenNames[(s.serial+1)%len(givenNames)]
			}
			upn = strings.ToLower(name) + ".renamed" + strconv.Itoa(s.serial) + "@contoso.onmicrosoft.com"
		}
		if _, taken := s.renamed[strings.ToLower(upn)]; !taken {
			return upn
		}
	}
}

func realisticRename(i, serial int, first string) string {
	u := realisticUser(i)
	slot := uint32(mix64(uint64(serial)^0x3c6ef372fe94f82b)) & (realBlock - 1)
	e := &realTable.entries[realTable.entry[slot]]
	for e.kind != realKindName || e.text[:1] == first {
		slot = (slot + 1) & (realBlock - 1)
		e = &realTable.entries[realTable.entry[slot]]
	}
	sur := realSurnames[serial%len(realSurnames)].ascii
	if u.e.kind == realKindName {
		_, sur = u.surname()
	}
	local := e.text + "." + sur + "." + strconv.Itoa(serial)
	if u.guest() {
		return local + "_" + u.guestDomain() + realGuestDomain
	}
	return local + realMemberDomain
}

// holder finds the user, not hard-deleted, whose UPN is upn in any case. It looks at every user:
// an explicit rename is rare. The caller holds s.mu.
func (s *userStore) holder(upn string) (int, bool) {
	if i, ok := s.renamed[strings.ToLower(upn)]; ok {
		return int(i), true
	}
	var scratch [128]byte
	for i := range s.total {
		st := s.state(i)
		if st != nil && (st.life == lifeHardDeleted || st.overrides&trackUPN != 0) {
			continue
		}
		if strings.EqualFold(string(s.pop.appendUPN(scratch[:0], i)), upn) {
			return i, true
		}
	}
	return 0, false
}
