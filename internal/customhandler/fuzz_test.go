package customhandler

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// addSeeds adds every file of the repository's testdata folders dirs to the
// fuzz target's seed corpus.
func addSeeds(f *testing.F, dirs ...string) {
	f.Helper()
	var paths []string
	for _, dir := range dirs {
		p, err := filepath.Glob(filepath.Join("..", "..", "testdata", dir, "*"))
		if err != nil || len(p) == 0 {
			f.Fatalf("no seeds in testdata/%s: %v", dir, err)
		}
		paths = append(paths, p...)
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// isObject reports whether b is one JSON object.
func isObject(b []byte) bool {
	b = bytes.TrimLeft(b, " \t\r\n")
	return json.Valid(b) && len(b) > 0 && b[0] == '{'
}

func FuzzDecodeInvocation(f *testing.F) {
	// The invocations the tests send, as the host sends them, and the odd
	// ones only the fuzz target sends.
	addSeeds(f, "invocations", filepath.Join("fuzz", "FuzzDecodeInvocation"))
	f.Fuzz(func(t *testing.T, body []byte) {
		inv, err := DecodeInvocation(body)
		if (err == nil) != isObject(body) {
			t.Fatalf("DecodeInvocation(%q) error %v: only a body that is not a JSON object may fail", body, err)
		}
		if err != nil {
			return
		}
		// Reading the timer never fails a run, whatever the binding holds.
		for name := range inv.Data {
			inv.Timer(name)
		}
		inv.Timer("timer")
	})
}
