package graph

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"graphuserstimer/internal/fakeazure"
)

// groupIDs is a consumer that keeps the ids of a collection's items in
// order, each page's once it came whole.
type groupIDs struct{ ids, onPage []string }

func (g *groupIDs) pass() { g.ids = g.ids[:0] }

// attempt starts the page anew: an attempt that broke off is read again
// whole, and what it passed is taken from the new attempt.
func (g *groupIDs) attempt(bool) { g.onPage = g.onPage[:0] }

func (g *groupIDs) item(_, id []byte) error {
	g.onPage = append(g.onPage, strings.Trim(string(id), `"`))
	return nil
}

func (g *groupIDs) broke() (int, string) { return len(g.onPage), "groups" }

func (g *groupIDs) page(context.Context, string) error {
	g.ids = append(g.ids, g.onPage...)
	return nil
}

func (g *groupIDs) total() int { return len(g.ids) }
func (g *groupIDs) end()       {}

// groupsPages serves /v1.0/groups as three pages of two groups, linked by
// $skiptoken: its first answer to the second page is a 503, and its first
// to the third breaks off after one group.
type groupsPages struct {
	mu       sync.Mutex
	requests map[int]int
}

func (s *groupsPages) serve(w http.ResponseWriter, r *http.Request, root string) {
	page, _ := strconv.Atoi(r.URL.Query().Get("$skiptoken"))
	s.mu.Lock()
	s.requests[page]++
	n := s.requests[page]
	s.mu.Unlock()
	if page == 1 && n == 1 {
		w.Header().Set("Retry-After", "0")
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	body := `{"@odata.context":"` + root + `/v1.0/$metadata#groups",`
	if page < 2 {
		body += fmt.Sprintf(`"@odata.nextLink":"%s/v1.0/groups?$skiptoken=%d",`, root, page+1)
	}
	body += fmt.Sprintf(`"value":[{"id":"g%d","displayName":"Group %d"},{"id":"g%d","displayName":"Group %d"}]}`,
		2*page, 2*page, 2*page+1, 2*page+1)
	w.Header().Set("Content-Type", "application/json")
	if page == 2 && n == 1 {
		// The declared length is not met: the client reads a body cut off.
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		cut := strings.Index(body, `,{"id":"g5"`)
		_, _ = w.Write([]byte(body[:cut]))
		return
	}
	_, _ = w.Write([]byte(body))
}

// Another collection is a consumer and a URL: the pager follows its links,
// retries a refused request and reads a broken page again for it as it
// does for users.
func TestPagerListsAnotherCollection(t *testing.T) {
	groups := &groupsPages{requests: map[int]int{}}
	var root, token string
	tn := fakeazure.NewTenant(t, fakeazure.TenantOptions{
		Graph: fakeazure.GraphOptions{Users: 1},
		Wrap: func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/v1.0/groups" {
					h.ServeHTTP(w, r)
					return
				}
				if r.Header.Get("Authorization") != "Bearer "+token {
					w.WriteHeader(http.StatusUnauthorized)
					return
				}
				groups.serve(w, r, root)
			})
		},
	})
	root, token = tn.URL.String(), tn.Token
	c, err := NewClient(tn.URL, tn.Credential(t), &ClientOptions{Transport: tn.Transport(), RetryDelay: time.Millisecond})
	require.NoError(t, err)

	var warnings []string
	g := newPagerGroup(c, func(msg string) { warnings = append(warnings, msg) })
	ids := &groupIDs{}
	require.NoError(t, g.newPager("list groups", "", c.ep.URL("/v1.0/groups", "$select", "id,displayName"), ids).run(context.Background()))

	assert.Equal(t, []string{"g0", "g1", "g2", "g3", "g4", "g5"}, ids.ids, "every group once, in order")
	assert.Equal(t, map[int]int{0: 1, 1: 2, 2: 2}, groups.requests, "each page once, and once more the 503 and the broken one")
	assert.Equal(t, 2, g.tally.snapshot().Retries)
	require.Len(t, warnings, 2)
	assert.Contains(t, warnings[0], "page 2: 503")
	assert.Contains(t, warnings[1], "page 3: the page broke off after 1 of its groups")
}
