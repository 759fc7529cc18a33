package graph

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// pageHandler receives what a page holds as the decoder meets it: the
// nextLink, saying whether it came before the users, and each user's JSON
// object. The user bytes are only valid during the call.
type pageHandler struct {
	link func(nextLink string, beforeValue bool)
	user func(user []byte) error
}

// errHandler marks an error returned by a pageHandler, as opposed to one in
// the page itself.
type errHandler struct{ err error }

func (e errHandler) Error() string { return e.err.Error() }
func (e errHandler) Unwrap() error { return e.err }

// decodePage reads one Graph collection page from r as a stream, one user at
// a time, so a page never sits in memory whole. An error that is not an
// errHandler means the page is broken: cut off, not JSON, or not a page.
func decodePage(r io.Reader, h pageHandler) error {
	dec := json.NewDecoder(r)
	if err := expectDelim(dec, '{'); err != nil {
		return err
	}
	var raw json.RawMessage
	sawValue := false
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fmt.Errorf("read page: %w", err)
		}
		key, _ := tok.(string)
		switch key {
		case "@odata.nextLink":
			var link string
			if err := dec.Decode(&link); err != nil {
				return fmt.Errorf("read @odata.nextLink: %w", err)
			}
			h.link(link, !sawValue)
		case "value":
			if sawValue {
				return errors.New("page has two value arrays")
			}
			sawValue = true
			if err := expectDelim(dec, '['); err != nil {
				return fmt.Errorf("read value: %w", err)
			}
			for dec.More() {
				// Decoding into the same RawMessage reuses its bytes.
				if err := dec.Decode(&raw); err != nil {
					return fmt.Errorf("read user: %w", err)
				}
				if len(raw) == 0 || raw[0] != '{' {
					return fmt.Errorf("read user: %.40s is not a JSON object", raw)
				}
				if err := h.user(raw); err != nil {
					return errHandler{err}
				}
			}
			if err := expectDelim(dec, ']'); err != nil {
				return fmt.Errorf("read value: %w", err)
			}
		default:
			if err := dec.Decode(&raw); err != nil {
				return fmt.Errorf("read %q: %w", key, err)
			}
		}
	}
	if err := expectDelim(dec, '}'); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("read page: data after the page's closing brace")
	}
	if !sawValue {
		return errors.New("read page: no value array")
	}
	return nil
}

func expectDelim(dec *json.Decoder, want json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("read page: %w", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != want {
		return fmt.Errorf("read page: found %v where %q belongs", tok, want)
	}
	return nil
}

// memberString returns the raw bytes of the string value of key in the JSON
// object obj, which must be valid JSON, as the decoder guarantees. Like
// encoding/json, it takes the last of repeated keys.
func memberString(obj []byte, key string) (val []byte, found bool) {
	i := skipSpace(obj, 0)
	if i >= len(obj) || obj[i] != '{' {
		return nil, false
	}
	i++
	for {
		i = skipSpace(obj, i)
		if i >= len(obj) || obj[i] != '"' {
			return val, found
		}
		kEnd := skipString(obj, i)
		k := obj[i+1 : kEnd-1]
		i = skipSpace(obj, kEnd) + 1 // the colon
		i = skipSpace(obj, i)
		end := skipValue(obj, i)
		if string(k) == key {
			val, found = nil, false
			if obj[i] == '"' {
				val, found = obj[i+1:end-1], true
			}
		}
		i = skipSpace(obj, end)
		if i >= len(obj) || obj[i] != ',' {
			return val, found
		}
		i++
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index just past the string starting at b[i].
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(b)
}

// skipValue returns the index just past the value starting at b[i].
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return i
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				i = skipString(b, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return i
	default:
		for i < len(b) && b[i] != ',' && b[i] != '}' && b[i] != ']' && b[i] != ' ' && b[i] != '\n' && b[i] != '\r' && b[i] != '\t' {
			i++
		}
		return i
	}
}
