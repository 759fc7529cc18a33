package graph

import (
	"io"
	"testing"

	"graphuserstimer/internal/fakeazure"
)

// benchPage is a page of 999 users with every default property, as Graph
// sends it: the nextLink first, then the users.
func benchPage() []byte {
	b := []byte(`{"@odata.context":"https://graph.microsoft.com/v1.0/$metadata#users","@odata.nextLink":"https://graph.microsoft.com/v1.0/users?$skiptoken=x","value":[`)
	for i := range 999 {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, fakeazure.UserJSON(i, fakeazure.DefaultProperties)...)
	}
	return append(b, "]}"...)
}

// chunkReader hands its bytes over at most n at a time, as a TLS
// connection does (16 KiB records).
type chunkReader struct {
	b []byte
	n int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.b) == 0 {
		return 0, io.EOF
	}
	k := copy(p[:min(len(p), c.n)], c.b)
	c.b = c.b[k:]
	return k, nil
}

// BenchmarkDecodePage decodes a page of 999 ordinary users read 16 KiB at
// a time, with the reader's buffer kept from page to page as the pager
// keeps it: the fast path every listing takes.
func BenchmarkDecodePage(b *testing.B) {
	page := benchPage()
	var p pageReader
	h := pageHandler{link: func(string, bool) {}, user: func(_, _ []byte) error { return nil }}
	b.SetBytes(int64(len(page)))
	b.ReportAllocs()
	for b.Loop() {
		if err := p.decode(&chunkReader{b: page, n: 16 << 10}, h); err != nil {
			b.Fatal(err)
		}
	}
}
