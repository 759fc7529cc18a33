package graph

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

func FuzzDecodePage(f *testing.F) {
	paths, err := filepath.Glob(filepath.Join("..", "..", "testdata", "fuzz", "FuzzDecodePage", "*"))
	if err != nil || len(paths) == 0 {
		f.Fatalf("no seeds: %v", err)
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		err := decodePage(bytes.NewReader(body), pageHandler{
			link: func(string, bool) {},
			user: func(u []byte) error {
				if !json.Valid(u) || u[0] != '{' {
					t.Fatalf("handed over %q, which is not a JSON object", u)
				}
				// The id the exactly-once check hashes is the one JSON gives.
				var v map[string]any
				if err := json.Unmarshal(u, &v); err != nil {
					t.Fatal(err)
				}
				want, isString := v["id"].(string)
				got, ok := memberString(u, "id")
				if isString && ok {
					var s string
					if err := json.Unmarshal(append(append([]byte{'"'}, got...), '"'), &s); err != nil || s != want {
						t.Fatalf("memberString found id %q in %s, JSON says %q", got, u, want)
					}
				}
				if isString && !ok && !bytes.Contains(u, []byte(`\`)) {
					t.Fatalf("memberString found no id in %s", u)
				}
				return nil
			},
		})
		if err == nil && !json.Valid(body) {
			t.Fatalf("accepted %q, which is not JSON", body)
		}
	})
}
