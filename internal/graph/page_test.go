package graph

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"

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
		n, st, span := scanValue([]byte(tt.obj), 0)
		require.Equal(t, scanDone, st, tt.obj)
		assert.Equal(t, len(tt.obj), n, tt.obj)
		assert.Equal(t, tt.ok, span[1] > 0, tt.obj)
		assert.Equal(t, tt.want, tt.obj[span[0]:span[1]], tt.obj)
	}
}

func TestScanValueTellsIncompleteFromInvalid(t *testing.T) {
	for _, in := range []string{`{`, `{"id":"a`, `{"id":"\u00`, `[1,`, `tr`, `{"a":1`, `"abc`, `-`, `1.`, `1e`, `1e+`} {
		_, st, _ := scanValue([]byte(in), 0)
		assert.Equal(t, scanIncomplete, st, in)
	}
	for _, in := range []string{`}`, `{1:2}`, `{"a" 1}`, `[1 2]`, `tru3`, `"\x"`, `"\u00zz"`, "\"\x01\"", `[01]`, `-a`, `1.e3`, `{"a":1,}`, `[1,]`, `+1`, `nul!`} {
		_, st, _ := scanValue([]byte(in), 0)
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

// failingReader hands over its bytes, then fails with err.
type failingReader struct {
	b   []byte
	err error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if len(f.b) == 0 {
		return 0, f.err
	}
	n := copy(p, f.b)
	f.b = f.b[n:]
	return n, nil
}

func TestDecodePageTellsABodyCutOffFromOneThatIsWholeButBroken(t *testing.T) {
	cut := map[string]string{
		"an empty body":                     ``,
		"only space":                        " \n",
		"a body cut off in a user's string": `{"value":[{"id":"1"},{"id":"2","displayName":"Ad`,
		"a body cut off between users":      `{"value":[{"id":"1"},`,
		"a body cut off after the array":    `{"value":[{"id":"1"}]`,
		"a body cut off in a literal":       `{"value":[{"id":"1","accountEnabled":tru`,
		"a body cut off after a number":     `{"value":[{"id":"1","n":12`,
		"a body cut off in an escape":       `{"value":[{"id":"1","s":"\u00`,
		"a body cut off before the users":   `{"@odata.nextLink":"https://g/next"`,
		"a body cut off in a member name":   `{"@odata.next`,
	}
	for name, body := range cut {
		t.Run(name, func(t *testing.T) {
			_, _, err := collect(t, body)
			require.ErrorIs(t, err, ErrPageCut)
			require.ErrorIs(t, err, io.ErrUnexpectedEOF)
			assert.NotErrorAs(t, err, new(*PageSyntaxError))
			assert.Contains(t, err.Error(), fmt.Sprintf("byte %d", len(body)), "the error says where the body ended")
		})
	}

	broken := []struct {
		name, body, at string // at: the text at the offset the error names
	}{
		{"a trailing comma in a user, as in a docs sample", "{\n  \"value\": [\n    {\n      \"id\": \"6ea91a8d\",\n      \"mail\": null,\n    }\n  ]\n}", "}\n  ]"},
		{"a trailing comma in the array", `{"value":[{"id":"1"},]}`, "]}"},
		{"a trailing comma in the page", `{"value":[],}`, "}"},
		{"HTML", `<html>gateway timeout</html>`, "<html>"},
		{"an array, not an object", ` [{"id":"1"}]`, `[{"id"`},
		{"no value array", `{"@odata.nextLink":"https://g/next"}`, "}"},
		{"an empty object", `{}`, "}"},
		{"a user that is not an object", `{"value":[{"id":"1"},"2"]}`, `"2"]}`},
		{"a value that is not an array", `{"value":{"id":"1"}}`, `{"id":"1"}}`},
		{"two value arrays", `{"value":[],"value":[]}`, `"value":[]}`},
		{"data after the page", `{"value":[]} {"value":[]}`, `{"value":[]}`},
		{"a control character in a string", "{\"value\":[{\"id\":\"a\x01\"}]}", "\x01\"}]}"},
		{"a bad escape", `{"value":[{"id":"a\x"}]}`, `x"}]}`},
		{"a bad literal", `{"value":[{"ok":tru3}]}`, `3}]}`},
		{"a number with a leading zero", `{"value":[{"n":01}]}`, `1}]}`},
		{"something where a comma belongs", `{"value":[{"id":"1"} {"id":"2"}]}`, `{"id":"2"}]}`},
		{"something after the users where a comma belongs", `{"value":[] "x":1}`, `"x":1}`},
		{"a member name that is not a string", `{value:[]}`, `value:[]}`},
		{"a missing colon", `{"value" []}`, `[]}`},
	}
	for _, tt := range broken {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := collect(t, tt.body)
			var se *PageSyntaxError
			require.ErrorAs(t, err, &se)
			assert.NotErrorIs(t, err, ErrPageCut)
			off := strings.LastIndex(tt.body, tt.at)
			require.GreaterOrEqual(t, off, 0)
			assert.Equal(t, int64(off), se.Offset, "offset of %q in %q: %v", tt.at, tt.body, err)
			assert.Contains(t, err.Error(), fmt.Sprintf("byte %d", off))
		})
	}
}

func TestDecodePageCallsAFailedReadACut(t *testing.T) {
	reset := errors.New("connection reset by peer")
	for _, body := range []string{`{"value":[{"id":"1"},{"id":`, `{"value":[{"id":"1"}]}`} {
		var users []string
		err := decodePage(&failingReader{b: []byte(body), err: reset}, pageHandler{
			link: func(string, bool) {},
			user: func(u, _ []byte) error { users = append(users, string(u)); return nil },
		})
		require.ErrorIs(t, err, ErrPageCut, body)
		require.ErrorIs(t, err, reset, body)
		assert.NotErrorAs(t, err, new(*PageSyntaxError))
		assert.Equal(t, []string{`{"id":"1"}`}, users, "the users before the failure are handed over")
	}
}

func TestDecodePageSaysABrokenBodyIsBrokenEvenWhenItIsCutToo(t *testing.T) {
	// What was read already cannot start a page: a retry of the same
	// answer will not mend it, however the body ended.
	_, _, err := collect(t, `{"value":[{"id":"1"},"2",{"id":"3","di`)
	require.ErrorAs(t, err, new(*PageSyntaxError))
	assert.NotErrorIs(t, err, ErrPageCut)
}

func TestDecodePageRefusesANextLinkThatIsNotALink(t *testing.T) {
	for _, link := range []string{`null`, `""`, `1`, `true`, `{}`, `["https://g/next"]`} {
		for _, body := range []string{
			`{"@odata.nextLink":` + link + `,"value":[{"id":"1"}]}`,
			`{"value":[{"id":"1"}],"@odata.nextLink":` + link + `}`,
		} {
			called := false
			err := decodePage(strings.NewReader(body), pageHandler{
				link: func(string, bool) { called = true },
				user: func(_, _ []byte) error { return nil },
			})
			var se *PageSyntaxError
			require.ErrorAs(t, err, &se, "%s is a broken page, not the last one", body)
			assert.Equal(t, int64(strings.Index(body, `"@odata.nextLink":`+link)+len(`"@odata.nextLink":`)), se.Offset, body)
			assert.Contains(t, err.Error(), "@odata.nextLink", body)
			assert.False(t, called, body)
		}
	}
}

func TestDecodePageTakesAPageWithoutANextLinkForTheLast(t *testing.T) {
	called := false
	err := decodePage(strings.NewReader(`{"@odata.context":"c","value":[{"id":"1"}]}`), pageHandler{
		link: func(string, bool) { called = true },
		user: func(_, _ []byte) error { return nil },
	})
	require.NoError(t, err)
	assert.False(t, called)
}

// readers hand a body over in the ways an HTTP body may: all at once, a
// byte at a time, half of what is asked, and with the last bytes and
// io.EOF in one call.
var readers = map[string]func(string) io.Reader{
	"whole":          func(s string) io.Reader { return strings.NewReader(s) },
	"byte by byte":   func(s string) io.Reader { return iotest.OneByteReader(strings.NewReader(s)) },
	"by halves":      func(s string) io.Reader { return iotest.HalfReader(strings.NewReader(s)) },
	"EOF with data":  func(s string) io.Reader { return iotest.DataErrReader(strings.NewReader(s)) },
	"bytes with EOF": func(s string) io.Reader { return iotest.DataErrReader(iotest.OneByteReader(strings.NewReader(s))) },
}

func TestDecodePageReadsTheSameWhateverTheReadsAre(t *testing.T) {
	bodies := []string{
		`{"@odata.nextLink":"https://g/next","value":[{"id":"1"},{"id":"2","x":{"y":[1,"]"]}}]}`,
		`{"value":[]}`,
		`{"value":[]} `,
		`{"value":[]}x`,
		`{"value":[]}{}`,
		`{"value":[{"id":"1"}]`,
		`{"value":[{"id":"1"},`,
		`{"value":[{"id":"1",}]}`,
		`{"value":[{"n":12}],"x":-0.5e+3}`,
		`{"value":[{"n":12`,
		``,
	}
	for _, body := range bodies {
		want := ""
		for name, reader := range readers {
			var users []string
			err := decodePage(reader(body), pageHandler{
				link: func(string, bool) {},
				user: func(u, _ []byte) error { users = append(users, string(u)); return nil },
			})
			got := fmt.Sprintf("%q %v", users, err)
			if want == "" {
				want = got
				continue
			}
			assert.Equal(t, want, got, "%s read %s", body, name)
		}
	}
}
