package graph

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// collect decodes a page and returns its nextLink and users as strings.
func collect(t *testing.T, body string) (string, []string, error) {
	t.Helper()
	var link string
	var users []string
	err := decodePage(strings.NewReader(body), pageHandler{
		link: func(s string, _ bool) { link = s },
		user: func(u, _ []byte) error { users = append(users, string(u)); return nil },
	})
	return link, users, err
}

func TestDecodePageReadsTheLinkBeforeOrAfterTheUsers(t *testing.T) {
	for _, body := range []string{
		`{"@odata.context":"c","@odata.nextLink":"https://g/next","value":[{"id":"1"},{"id":"2","x":{"y":[1,"]"]}}]}`,
		`{"value":[{"id":"1"},{"id":"2","x":{"y":[1,"]"]}}],"@odata.nextLink":"https://g/next","@odata.context":"c"}`,
		"{\n  \"@odata.nextLink\" : \"https://g/next\",\n  \"value\" : [ {\"id\":\"1\"} ,\n {\"id\":\"2\",\"x\":{\"y\":[1,\"]\"]}} ]\n}\n",
	} {
		link, users, err := collect(t, body)
		require.NoError(t, err, body)
		assert.Equal(t, "https://g/next", link)
		assert.Equal(t, []string{`{"id":"1"}`, `{"id":"2","x":{"y":[1,"]"]}}`}, users)
	}
}

func TestDecodePageAcceptsAnEmptyPageWithALink(t *testing.T) {
	link, users, err := collect(t, `{"@odata.nextLink":"https://g/next","value":[]}`)
	require.NoError(t, err)
	assert.Equal(t, "https://g/next", link)
	assert.Empty(t, users)
}

func TestDecodePageCallsTheLinkBeforeTheFirstUser(t *testing.T) {
	var events []string
	err := decodePage(strings.NewReader(`{"@odata.nextLink":"n","value":[{"id":"1"}]}`), pageHandler{
		link: func(string, bool) { events = append(events, "link") },
		user: func(_, _ []byte) error { events = append(events, "user"); return nil },
	})
	require.NoError(t, err)
	assert.Equal(t, []string{"link", "user"}, events)
}

func TestDecodePageReportsABrokenPage(t *testing.T) {
	tests := map[string]string{
		"a body cut off in a user":       `{"value":[{"id":"1"},{"id":"2","displayName":"Ad`,
		"a body cut off between users":   `{"value":[{"id":"1"},`,
		"a body cut off after the array": `{"value":[{"id":"1"}]`,
		"an escaped control character":   "{\"value\":[{\"id\":\"a\x01\"}]}",
		"an empty body":                  ``,
		"HTML":                           `<html>gateway timeout</html>`,
		"no value array":                 `{"@odata.nextLink":"n"}`,
		"a user that is not an object":   `{"value":["1"]}`,
		"a value that is not an array":   `{"value":{"id":"1"}}`,
		"data after the page":            `{"value":[]}{"value":[]}`,
		"two value arrays":               `{"value":[],"value":[]}`,
	}
	for name, body := range tests {
		t.Run(name, func(t *testing.T) {
			_, _, err := collect(t, body)
			require.Error(t, err)
			_, fromHandler := err.(errHandler)
			assert.False(t, fromHandler)
		})
	}
}

func TestDecodePageKeepsTheUsersReadBeforeABreak(t *testing.T) {
	_, users, err := collect(t, `{"value":[{"id":"1"},{"id":"2"},{"id":"3","di`)
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)
	assert.Equal(t, []string{`{"id":"1"}`, `{"id":"2"}`}, users)
}

func TestDecodePageStopsAtAHandlerError(t *testing.T) {
	stop := errors.New("disk full")
	n := 0
	err := decodePage(strings.NewReader(`{"value":[{"id":"1"},{"id":"2"}]}`), pageHandler{
		link: func(string, bool) {},
		user: func(_, _ []byte) error { n++; return stop },
	})
	require.ErrorIs(t, err, stop)
	assert.IsType(t, errHandler{}, err)
	assert.Equal(t, 1, n)
}

func TestScanValueFindsTheTopLevelID(t *testing.T) {
	tests := []struct {
		obj  string
		want string
		ok   bool
	}{
		{`{"id":"a1"}`, "a1", true},
		{`{"displayName":"x","id":"a2","mail":null}`, "a2", true},
		{`{ "nested" : {"id":"no"} , "id" : "a3" }`, "a3", true},
		{`{"list":[{"id":"no"},"id"],"id":"a4"}`, "a4", true},
		{`{"s":"has \"id\":\"no\" inside","id":"a5"}`, "a5", true},
		{`{"n":-12.5e+3,"t":true,"f":false,"z":null,"id":"a6"}`, "a6", true},
		{`{"id":"first","id":"last"}`, "last", true},
		{`{"id":"first","id":null}`, "", false},
		{`{"displayName":"no id"}`, "", false},
		{`{"id":42}`, "", false},
		{`{}`, "", false},
	}
	for _, tt := range tests {
		n, st, span := scanValue([]byte(tt.obj))
		require.Equal(t, scanDone, st, tt.obj)
		assert.Equal(t, len(tt.obj), n, tt.obj)
		assert.Equal(t, tt.ok, span[1] > 0, tt.obj)
		assert.Equal(t, tt.want, tt.obj[span[0]:span[1]], tt.obj)
	}
}

func TestScanValueTellsIncompleteFromInvalid(t *testing.T) {
	for _, in := range []string{`{`, `{"id":"a`, `{"id":"\u00`, `[1,`, `tr`, `{"a":1`, `"abc`, `-`, `1.`, `1e`, `1e+`} {
		_, st, _ := scanValue([]byte(in))
		assert.Equal(t, scanIncomplete, st, in)
	}
	for _, in := range []string{`}`, `{1:2}`, `{"a" 1}`, `[1 2]`, `tru3`, `"\x"`, `"\u00zz"`, "\"\x01\"", `[01]`, `-a`, `1.e3`, `{"a":1,}`, `[1,]`, `+1`, `nul!`} {
		_, st, _ := scanValue([]byte(in))
		assert.Equal(t, scanInvalid, st, in)
	}
}

func TestDecodePageSaysWhetherTheLinkCameBeforeTheUsers(t *testing.T) {
	for body, want := range map[string]bool{
		`{"@odata.nextLink":"n","value":[]}`: true,
		`{"value":[],"@odata.nextLink":"n"}`: false,
	} {
		var before []bool
		err := decodePage(strings.NewReader(body), pageHandler{
			link: func(_ string, b bool) { before = append(before, b) },
			user: func(_, _ []byte) error { return nil },
		})
		require.NoError(t, err)
		assert.Equal(t, []bool{want}, before, body)
	}
}
