package functions

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// addSeeds adds every file of the repository's testdata/fuzz/<name> folder to
// the fuzz target's seed corpus.
func addSeeds(f *testing.F, name string) {
	f.Helper()
	paths, err := filepath.Glob(filepath.Join("..", "..", "testdata", "fuzz", name, "*"))
	if err != nil || len(paths) == 0 {
		f.Fatalf("no seeds for %s: %v", name, err)
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
	addSeeds(f, "FuzzDecodeInvocation")
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
