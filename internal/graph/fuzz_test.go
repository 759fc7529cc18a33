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
		users := 0
		err := decodePage(bytes.NewReader(body), pageHandler{
			link: func(string, bool) {},
			user: func(u, id []byte) error {
				if !json.Valid(u) || u[0] != '{' {
					t.Fatalf("handed over %q, which is not a JSON object", u)
				}
				// The id the exactly-once check hashes is the one JSON gives.
				var v map[string]any
				if err := json.Unmarshal(u, &v); err != nil {
					t.Fatal(err)
				}
				want, isString := v["id"].(string)
				if isString && id != nil {
					var got string
					if err := json.Unmarshal(append(append([]byte{'"'}, id...), '"'), &got); err != nil || got != want {
						t.Fatalf("the scan found id %q in %s, JSON says %q", id, u, want)
					}
				}
				if isString && id == nil && !bytes.Contains(u, []byte(`\`)) {
					t.Fatalf("the scan found no id in %s", u)
				}
				if !isString && id != nil {
					t.Fatalf("the scan found id %q in %s, where JSON has none", id, u)
				}
				users++
				return nil
			},
		})
		if err == nil && !json.Valid(body) {
			t.Fatalf("accepted %q, which is not JSON", body)
		}
		// And the other way round: a page encoding/json reads is one the
		// scan reads, with the same users.
		var page struct {
			Value []json.RawMessage `json:"value"`
		}
		if json.Valid(body) && json.Unmarshal(body, &page) == nil && page.Value != nil && err != nil {
			if _, fromHandler := err.(errHandler); !fromHandler && validPageShape(body) {
				t.Fatalf("refused %q, which encoding/json reads: %v", body, err)
			}
		}
		if err == nil && users != len(page.Value) {
			t.Fatalf("handed over %d users, encoding/json reads %d", users, len(page.Value))
		}
	})
}

// validPageShape reports whether body is an object whose value member is an
// array of objects, which is all decodePage asks of a valid page.
func validPageShape(body []byte) bool {
	var top map[string]json.RawMessage
	if json.Unmarshal(body, &top) != nil {
		return false
	}
	var users []json.RawMessage
	if json.Unmarshal(top["value"], &users) != nil {
		return false
	}
	if link, ok := top["@odata.nextLink"]; ok {
		var s *string
		if json.Unmarshal(link, &s) != nil || s == nil || *s == "" {
			return false
		}
	}
	for _, u := range users {
		if len(u) == 0 || u[0] != '{' {
			return false
		}
	}
	return bytes.Count(body, []byte(`"value"`)) == 1
}
