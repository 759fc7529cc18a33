package graph

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"os"
	"slices"
)

// idSet remembers the users a listing handed over, as a 64-bit hash of each
// user's id (of the whole object when it has none). The current page's
// hashes stay in memory, to skip its users when it is read again; the run's
// go to an unlinked temporary file, 8 bytes a user, read back only when an
// expired page token restarts the listing. So memory stays that of a page
// whatever the tenant's size. Without a temporary file, they stay in memory.
type idSet struct {
	seed   maphash.Seed
	page   []uint64 // handed over from the current page
	sorted []uint64 // handed over before the latest restart, sorted

	file *os.File      // every hash handed over this run, when spilled
	w    *bufio.Writer // buffers writes to file
	mem  []uint64      // every hash handed over this run, when not
}

func newIDSet() *idSet {
	s := &idSet{seed: maphash.MakeSeed()}
	if f, err := os.CreateTemp("", "graphuserstimer-ids-*"); err == nil {
		// Unlinked at once: the file goes when the process does, killed or not.
		_ = os.Remove(f.Name())
		s.file, s.w = f, bufio.NewWriterSize(f, 64<<10)
	}
	return s
}

// hash is the hash of a user's id, or of the whole user when id is nil.
func (s *idSet) hash(user, id []byte) uint64 {
	if id != nil {
		return maphash.Bytes(s.seed, id)
	}
	return maphash.Bytes(s.seed, user)
}

// newPage starts remembering a new page's users apart.
func (s *idSet) newPage() { s.page = s.page[:0] }

// add records that the user with hash h was handed over.
func (s *idSet) add(h uint64) error {
	s.page = append(s.page, h)
	if s.w == nil {
		s.mem = append(s.mem, h)
		return nil
	}
	if _, err := s.w.Write(binary.LittleEndian.AppendUint64(s.w.AvailableBuffer(), h)); err != nil {
		return fmt.Errorf("remember logged users: %w", err)
	}
	return nil
}

// before reports whether h was handed over before the latest restart.
func (s *idSet) before(h uint64) bool {
	if len(s.sorted) == 0 {
		return false
	}
	_, found := slices.BinarySearch(s.sorted, h)
	return found
}

// onPage returns the hashes handed over from the current page so far.
func (s *idSet) onPage() map[uint64]bool {
	m := make(map[uint64]bool, len(s.page))
	for _, h := range s.page {
		m[h] = true
	}
	return m
}

// restart makes everything handed over so far count as before.
func (s *idSet) restart() error {
	all := s.mem
	if s.file != nil {
		var err error
		if all, err = s.readBack(); err != nil {
			return err
		}
	}
	s.sorted = slices.Clone(all)
	slices.Sort(s.sorted)
	return nil
}

// readBack reads every hash written to the file.
func (s *idSet) readBack() ([]uint64, error) {
	if err := s.w.Flush(); err != nil {
		return nil, fmt.Errorf("remember logged users: %w", err)
	}
	end, err := s.file.Seek(0, io.SeekCurrent)
	if err != nil {
		return nil, fmt.Errorf("remember logged users: %w", err)
	}
	b := make([]byte, end)
	if _, err := s.file.ReadAt(b, 0); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read back logged users: %w", err)
	}
	all := make([]uint64, 0, len(b)/8)
	for i := 0; i+8 <= len(b); i += 8 {
		all = append(all, binary.LittleEndian.Uint64(b[i:]))
	}
	return all, nil
}

// close lets the file go.
func (s *idSet) close() {
	if s.file != nil {
		s.file.Close()
	}
}
