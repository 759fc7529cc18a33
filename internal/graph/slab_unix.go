//go:build unix

package graph

import "syscall"

// pageSize is the unit slabs are sized in.
var pageSize = syscall.Getpagesize()

// allocSlab returns size zeroed bytes outside the Go heap: anonymous memory
// mapped for the record alone, which the garbage collector never scans nor
// counts, and which freeSlab gives straight back to the system. Where the
// system refuses, the heap serves.
func allocSlab(size int) []byte {
	b, err := syscall.Mmap(-1, 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return make([]byte, size)
	}
	return b
}

// freeSlab gives a slab from allocSlab back.
func freeSlab(b []byte) {
	if syscall.Munmap(b) != nil {
		// A slab from the heap: the collector takes it.
		return
	}
}
