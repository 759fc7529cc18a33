package fakeazure

import (
	"crypto/rand"
	"encoding/json"
	"net/http"
	"strconv"
	"unicode/utf8"
)

// writeJSON answers with status and v encoded as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "encode response: "+err.Error(), http.StatusInternalServerError)
		return
	}
	writeBody(w, status, "application/json", body)
}

// writeBody is where every fake response is written, with an exact Content-Length so a client
// can tell a complete body from a cut one.
func writeBody(w http.ResponseWriter, status int, contentType string, body []byte) {
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body) // the client hung up; nobody is left to tell
}

// appendJSONString appends s as a JSON string. Like OData's JSON writer, it escapes every
// non-ASCII character as \uXXXX, so clients must decode escapes rather than rely on raw UTF-8.
func appendJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	appendU := func(dst []byte, r rune) []byte {
		return append(dst, '\\', 'u', hex[r>>12&0xf], hex[r>>8&0xf], hex[r>>4&0xf], hex[r&0xf])
	}
	dst = append(dst, '"')
	for k := 0; k < len(s); {
		c := s[k]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c == '\n':
				dst = append(dst, '\\', 'n')
			case c == '\r':
				dst = append(dst, '\\', 'r')
			case c == '\t':
				dst = append(dst, '\\', 't')
			case c < 0x20 || c == 0x7f:
				dst = appendU(dst, rune(c))
			default:
				dst = append(dst, c)
			}
			k++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[k:])
		k += n
		if r > 0xffff {
			r -= 0x10000
			dst = appendU(dst, 0xd800+(r>>10))
			r = 0xdc00 + r&0x3ff
		}
		dst = appendU(dst, r)
	}
	return append(dst, '"')
}

// NewClientID returns a random client ID for a test's identity. MSAL caches
// tokens process-wide, by identity and resource, so every test that gets a
// token needs an identity of its own.
func NewClientID() string { return newGUID() }

// newGUID returns a random version 4 GUID, as Azure uses for request and correlation ids.
func newGUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	b[6] = 0x40 | b[6]&0x0f
	b[8] = 0x80 | b[8]&0x3f
	return string(appendGUID(make([]byte, 0, 36), b))
}
