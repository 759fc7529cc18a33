//go:build !unix

package graph

// pageSize is the unit slabs are sized in.
const pageSize = 4096

// allocSlab returns size zeroed bytes for the record, from the heap.
func allocSlab(size int) []byte { return make([]byte, size) }

// freeSlab lets the collector take b.
func freeSlab([]byte) {}
