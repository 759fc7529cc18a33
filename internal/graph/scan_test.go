package graph

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// bigUserPage is a page of one user whose displayName makes it size bytes
// long.
func bigUserPage(size int) string {
	head, tail := `{"id":"1","displayName":"`, `"}`
	return `{"value":[` + head + strings.Repeat("x", size-len(head)-len(tail)) + tail + `]}`
}

// scannedFor decodes body read 16 KiB at a time, as from a TLS connection,
// and returns how many bytes the scanner went over.
func scannedFor(t *testing.T, body string) int64 {
	t.Helper()
	var p pageReader
	users := 0
	err := p.decode(&chunkReader{b: []byte(body), n: 16 << 10}, pageHandler{
		link: func(string, bool) {},
		user: func(_, _ []byte) error { users++; return nil },
	})
	require.NoError(t, err)
	require.Equal(t, 1, users)
	return p.scanned
}

func TestDecodePageScansALargeUserInLinearTime(t *testing.T) {
	small, large := scannedFor(t, bigUserPage(1<<20)), scannedFor(t, bigUserPage(4<<20))
	ratio := float64(large) / float64(small)
	assert.InDelta(t, 4, ratio, 1, "a user 4 times as large costs about 4 times the scanning, not 16 (%d vs %d bytes)", large, small)
	assert.Less(t, large, int64(3*(4<<20)), "each byte is scanned a few times at most, however the body arrives")
}

func TestDecodePageRefusesAUserOverTheLimit(t *testing.T) {
	_, users, err := collect(t, bigUserPage(maxValueSize))
	require.NoError(t, err, "a user of exactly the limit is read")
	require.Len(t, users, 1)

	var p pageReader
	err = p.decode(&chunkReader{b: []byte(bigUserPage(maxValueSize + 1)), n: 16 << 10}, pageHandler{
		link: func(string, bool) {},
		user: func(_, _ []byte) error { t.Fatal("a user over the limit is never handed over"); return nil },
	})
	tooLarge, ok := errors.AsType[*TooLargeError](err)
	require.True(t, ok, "%v", err)
	assert.Equal(t, int64(len(`{"value":[`)), tooLarge.Offset)
	assert.Contains(t, err.Error(), "8 MiB")
	assert.Contains(t, err.Error(), "user")
	assert.Less(t, cap(p.buf), 4*maxValueSize, "the buffer stops growing at the limit")
}

func TestDecodePageRefusesAnyMemberOverTheLimit(t *testing.T) {
	body := `{"@odata.context":"` + strings.Repeat("c", maxValueSize) + `","value":[]}`
	_, _, err := collect(t, body)
	_, ok := errors.AsType[*TooLargeError](err)
	require.True(t, ok, "%v", err)
}
