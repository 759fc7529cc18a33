package graph

import (
	"encoding/json"
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

func TestScanValueReadsAnIDWhoseNameIsEscapedAsEncodingJSONDoes(t *testing.T) {
	tests := []struct {
		obj  string
		want string // "" when the object has no string id
	}{
		{`{"\u0069d":"b"}`, "b"},
		{`{"i\u0064":"b"}`, "b"},
		{`{"\u0069\u0064":"b"}`, "b"},
		{`{"\u0049\u0044":"b"}`, ""}, // "ID": names are matched exactly
		{`{"id":"a","\u0069d":"b"}`, "b"},
		{`{"\u0069d":"a","id":"b"}`, "b"},
		{`{"id":"a","\u0069d":null}`, ""},
		{`{"\u0069d":7}`, ""},
		{`{"\u0069d\u0000":"b"}`, ""},
		{`{"\"id\"":"b"}`, ""},
		{`{"x":{"\u0069d":"nested"}}`, ""},
		{`{"x":{"\u0069d":"nested"},"\u0069d":"top"}`, "top"},
	}
	for _, tt := range tests {
		n, st, span := scanValue([]byte(tt.obj), 0)
		require.Equal(t, scanDone, st, tt.obj)
		require.Equal(t, len(tt.obj), n, tt.obj)
		var v map[string]any
		require.NoError(t, json.Unmarshal([]byte(tt.obj), &v))
		jsonID, _ := v["id"].(string)
		require.Equal(t, tt.want, jsonID, "the table agrees with encoding/json: %s", tt.obj)
		assert.Equal(t, tt.want, tt.obj[span[0]:span[1]], tt.obj)
	}
}

func TestDecodePageReadsItsOwnMemberNamesEscaped(t *testing.T) {
	link, users, err := collect(t, `{"\u0040odata.next\u004cink":"https://g/next","\u0076alue":[{"id":"1"}]}`)
	require.NoError(t, err)
	assert.Equal(t, "https://g/next", link)
	assert.Equal(t, []string{`{"id":"1"}`}, users)

	_, _, err = collect(t, `{"value":[],"\u0076alue":[]}`)
	require.ErrorAs(t, err, new(*PageSyntaxError), "a second value array, however its name is written")
}

func TestScanValueStopsAtTheDepthEncodingJSONStopsAt(t *testing.T) {
	for _, depth := range []int{0, 2} {
		ok := strings.Repeat("[", maxNestingDepth-depth) + strings.Repeat("]", maxNestingDepth-depth)
		_, st, _ := scanValue([]byte(ok), depth)
		assert.Equal(t, scanDone, st)
		tooDeep := "[" + ok + "]"
		_, st, _ = scanValue([]byte(tooDeep), depth)
		assert.Equal(t, scanInvalid, st)
	}
	// The page's object, its value array and the user's object hold the
	// user's members: encoding/json allows 9997 arrays more, not 9998.
	for arrays, ok := range map[int]bool{maxNestingDepth - 3: true, maxNestingDepth - 2: false} {
		page := `{"value":[{"a":` + strings.Repeat("[", arrays) + strings.Repeat("]", arrays) + `}]}`
		require.Equal(t, ok, json.Unmarshal([]byte(page), new(any)) == nil)
		_, users, err := collect(t, page)
		if ok {
			require.NoError(t, err)
			assert.Len(t, users, 1)
			continue
		}
		require.ErrorAs(t, err, new(*PageSyntaxError))
	}
}
