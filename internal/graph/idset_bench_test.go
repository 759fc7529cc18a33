package graph

import (
	"fmt"
	"testing"
)

// BenchmarkIDSetAdd adds the ids of a million-user tenant, as GUIDs are
// written in a page: the record's cost per user.
func BenchmarkIDSetAdd(b *testing.B) {
	const users = 1_000_000
	ids := make([][]byte, users)
	for i := range ids {
		ids[i] = fmt.Appendf(nil, "%08x-%04x-4%03x-8%03x-%012x", uint32(i*2654435761), i&0xffff, i&0xfff, (i>>12)&0xfff, uint64(i)*0x9e3779b97f4a7c15&0xffffffffffff)
	}
	b.ResetTimer()
	for b.Loop() {
		s := newIDSet()
		e := s.newEpoch()
		for _, id := range ids {
			s.add(s.key(id), e)
		}
		s.close()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*users), "ns/user")
}
