package graph

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"testing/iotest"
)

// FuzzDecodePage checks the streaming decoder against encoding/json: it
// reads exactly the pages encoding/json reads, with the same users, ids and
// nextLinks, and says of every other body whether it broke off or is broken,
// as encoding/json would see it, however the body's bytes arrive.
func FuzzDecodePage(f *testing.F) {
	// Graph's own bodies, which payloads_test.go reads too, and the odd
	// ones written for the decoder.
	var paths []string
	for _, dir := range []string{filepath.Join("..", "..", "testdata", "graph"), filepath.Join("..", "..", "testdata", "fuzz", "FuzzDecodePage")} {
		found, err := filepath.Glob(filepath.Join(dir, "*.json"))
		if err != nil || len(found) == 0 {
			f.Fatalf("no seeds in %s: %v", dir, err)
		}
		paths = append(paths, found...)
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var users [][]byte
		var links []string
		err := decodePage(bytes.NewReader(body), pageHandler{
			link: func(s string, _ bool) { links = append(links, s) },
			user: func(u, id []byte) error {
				checkUser(t, u, id)
				users = append(users, bytes.Clone(u))
				return nil
			},
		})
		// A byte at a time, the last with io.EOF, the decoder reads the
		// same: what it finds does not hang on how the body arrives.
		var slowUsers [][]byte
		var slowLinks []string
		slowErr := decodePage(iotest.DataErrReader(iotest.OneByteReader(bytes.NewReader(body))), pageHandler{
			link: func(s string, _ bool) { slowLinks = append(slowLinks, s) },
			user: func(u, _ []byte) error { slowUsers = append(slowUsers, bytes.Clone(u)); return nil },
		})
		if fmt.Sprint(err) != fmt.Sprint(slowErr) || !slices.Equal(links, slowLinks) || !slices.EqualFunc(users, slowUsers, bytes.Equal) {
			t.Fatalf("%q read whole: %q %q %v; a byte at a time: %q %q %v", body, users, links, err, slowUsers, slowLinks, slowErr)
		}
		wantUsers, wantLinks, ok := readPage(body)
		if err == nil {
			if !ok {
				t.Fatalf("accepted %q, which encoding/json does not read as a page", body)
			}
			if !slices.EqualFunc(users, wantUsers, func(a []byte, b json.RawMessage) bool { return bytes.Equal(a, b) }) {
				t.Fatalf("handed over %q, encoding/json reads %q", users, wantUsers)
			}
			if !slices.Equal(links, wantLinks) {
				t.Fatalf("read nextLinks %q, encoding/json reads %q", links, wantLinks)
			}
			return
		}
		if ok {
			t.Fatalf("refused %q, which encoding/json reads as a page: %v", body, err)
		}
		checkPageError(t, body, err)
	})
}

// checkUser checks that u is a JSON object and that id is its "id" as
// encoding/json reads it, the one the exactly-once check hashes.
func checkUser(t *testing.T, u, id []byte) {
	t.Helper()
	if !json.Valid(u) || u[0] != '{' {
		t.Fatalf("handed over %q, which is not a JSON object", u)
	}
	var v map[string]any
	if err := json.Unmarshal(u, &v); err != nil {
		t.Fatal(err)
	}
	want, isString := v["id"].(string)
	switch {
	case isString && id == nil:
		t.Fatalf("the scan found no id in %s, JSON says %q", u, want)
	case !isString && id != nil:
		t.Fatalf("the scan found id %q in %s, where JSON has none", id, u)
	case isString:
		var got string
		if err := json.Unmarshal(append(append([]byte{'"'}, id...), '"'), &got); err != nil || got != want {
			t.Fatalf("the scan found id %q in %s, JSON says %q", id, u, want)
		}
	}
}

// checkPageError checks that a refused body is refused for the right
// reason.
func checkPageError(t *testing.T, body []byte, err error) {
	t.Helper()
	var se *PageSyntaxError
	var tl *TooLargeError
	var he errHandler
	switch {
	case errors.As(err, &he):
		t.Fatalf("a handler error for %q, from a handler that never fails: %v", body, err)
	case errors.Is(err, ErrPageCut):
		// All of the body could still begin a page: encoding/json finds
		// nothing wrong in it but its end.
		if jerr := json.NewDecoder(bytes.NewReader(body)).Decode(new(any)); jerr != io.EOF && jerr != io.ErrUnexpectedEOF {
			t.Fatalf("called %q cut off, where encoding/json says %v: %v", body, jerr, err)
		}
		if errors.As(err, &se) {
			t.Fatalf("called %q both cut off and broken: %v", body, err)
		}
	case errors.As(err, &se):
		if se.Offset < 0 || se.Offset >= int64(len(body)) {
			t.Fatalf("broken at byte %d of %d bytes: %v", se.Offset, len(body), err)
		}
		// Everything before the offset was fine: cut there, the body
		// broke off, or is a whole page followed by what broke it.
		prefixErr := decodePage(bytes.NewReader(body[:se.Offset]), pageHandler{
			link: func(string, bool) {},
			user: func(_, _ []byte) error { return nil },
		})
		if prefixErr != nil && !errors.Is(prefixErr, ErrPageCut) {
			t.Fatalf("%q is broken at byte %d (%v), but the bytes before it are too: %v", body, se.Offset, err, prefixErr)
		}
	case errors.As(err, &tl):
	default:
		t.Fatalf("an error of no known kind for %q: %v", body, err)
	}
}

// readPage reads body with encoding/json as a page: an object with exactly
// one member named value (its name's escapes decoded), an array of objects,
// and nextLinks, if any, that are strings and not empty. It returns the
// users' bytes and the nextLinks in the order they come.
func readPage(body []byte) (users []json.RawMessage, links []string, ok bool) {
	if !json.Valid(body) {
		return nil, nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, nil, false
	}
	values := 0
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, false
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, nil, false
		}
		switch tok.(string) {
		case "value":
			values++
			if raw[0] != '[' || json.Unmarshal(raw, &users) != nil {
				return nil, nil, false
			}
			for _, u := range users {
				if u[0] != '{' {
					return nil, nil, false
				}
			}
		case "@odata.nextLink":
			var link string
			if raw[0] != '"' || json.Unmarshal(raw, &link) != nil || link == "" {
				return nil, nil, false
			}
			links = append(links, link)
		}
	}
	return users, links, values == 1
}
