package graph_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"graphuserstimer/internal/fakeazure"
	"graphuserstimer/internal/graph"
)

// Users whose id Graph leaves out, though $select asks for it: none can be
// told from another, so none is ever taken for a duplicate.

// withoutIDs is a tenant whose Graph leaves out the ids of the pages its
// fault says, and its twin, the same users with no fault.
type withoutIDs struct {
	*tenant
	twin *tenant
}

func newWithoutIDs(t *testing.T, users int, realistic bool, fault func(pr fakeazure.PageRequest) fakeazure.Fault) *withoutIDs {
	t.Helper()
	newTenant := func(fault func(pr fakeazure.PageRequest) fakeazure.Fault) *tenant {
		ft := fakeazure.NewTenant(t, fakeazure.TenantOptions{Graph: fakeazure.GraphOptions{Users: users, Realistic: realistic, Fault: fault}})
		client, err := graph.NewClient(ft.URL, ft.Credential(t), &graph.ClientOptions{Transport: ft.Transport(), RetryDelay: time.Millisecond})
		require.NoError(t, err)
		return &tenant{Tenant: ft, client: client}
	}
	return &withoutIDs{tenant: newTenant(fault), twin: newTenant(nil)}
}

// withoutIDRun is one listing's users by what they hold, id aside, and
// by id when they have one.
type withoutIDRun struct {
	held     map[string]int
	ids      map[string]int
	st       graph.Stats
	err      error
	warnings []string
}

func listHeld(t *testing.T, tn *tenant, q graph.Query) withoutIDRun {
	t.Helper()
	var mu sync.Mutex
	r := withoutIDRun{held: map[string]int{}, ids: map[string]int{}}
	r.st, r.err = tn.client.ListUsers(context.Background(), q, graph.Sink{
		User: func(_ int, u []byte) error {
			var m map[string]any
			require.NoError(t, json.Unmarshal(u, &m))
			id, _ := m["id"].(string)
			delete(m, "id")
			held, err := json.Marshal(m)
			require.NoError(t, err)
			mu.Lock()
			defer mu.Unlock()
			r.held[string(held)]++
			if id != "" {
				r.ids[id]++
			}
			return nil
		},
		Warn: func(msg string) {
			mu.Lock()
			defer mu.Unlock()
			r.warnings = append(r.warnings, msg)
		},
	})
	return r
}

// expected is what a listing of the twin hands over, by what the users
// hold.
func (w *withoutIDs) expected(t *testing.T, q graph.Query) map[string]int {
	t.Helper()
	r := listHeld(t, w.twin, q)
	require.NoError(t, r.err)
	require.Zero(t, r.st.WithoutID)
	return r.held
}

// warnedOnce checks that the run warned once of users without an id.
func warnedOnce(t *testing.T, warnings []string) {
	t.Helper()
	n := 0
	for _, w := range warnings {
		if strings.Contains(w, "without an id") {
			n++
		}
	}
	assert.Equal(t, 1, n, "one warning a run: %q", warnings)
}

func TestListUsersLogsEveryUserWithoutAnID(t *testing.T) {
	// accountEnabled alone: users without an id are alike, many of them
	// byte for byte.
	q := graph.Query{Select: []string{"id", "accountEnabled"}, PageSize: 100}
	tests := []struct {
		name     string
		fault    func(pr fakeazure.PageRequest) fakeazure.Fault
		without  int // users without an id
		restarts int
		retries  int
		warning  string // one of the warnings, when set
	}{
		{
			name:    "on every page",
			fault:   func(fakeazure.PageRequest) fakeazure.Fault { return fakeazure.Fault{WithoutID: true} },
			without: 250,
		},
		{
			name: "on one page",
			fault: func(pr fakeazure.PageRequest) fakeazure.Fault {
				return fakeazure.Fault{WithoutID: pr.Page == 1}
			},
			without: 100,
		},
		{
			name: "on a page read again",
			fault: func(pr fakeazure.PageRequest) fakeazure.Fault {
				return fakeazure.Fault{WithoutID: true, Cut: pr.Page == 1 && pr.Attempt == 1, CutAfterUsers: 30}
			},
			without: 250,
			retries: 1,
			warning: "the page broke off after 30 of its users",
		},
		{
			name: "in a listing started over",
			fault: func(pr fakeazure.PageRequest) fakeazure.Fault {
				if pr.Page == 2 && pr.Attempt == 1 {
					return fakeazure.Fault{Status: 400, Code: graph.CodeExpiredPageToken}
				}
				return fakeazure.Fault{WithoutID: true}
			},
			without:  250,
			restarts: 1,
		},
		{
			name: "on a page read again, and a listing started over",
			fault: func(pr fakeazure.PageRequest) fakeazure.Fault {
				switch {
				case pr.Page == 1 && pr.Attempt == 1:
					return fakeazure.Fault{WithoutID: true, Cut: true, CutAfterUsers: 30}
				case pr.Page == 2 && pr.Attempt == 1:
					return fakeazure.Fault{Status: 400, Code: graph.CodeExpiredPageToken}
				}
				return fakeazure.Fault{WithoutID: true}
			},
			without:  250,
			restarts: 1,
			retries:  1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWithoutIDs(t, 250, false, tt.fault)
			want := w.expected(t, q)
			r := listHeld(t, w.tenant, q)
			require.NoError(t, r.err)
			assert.Equal(t, want, r.held, "every user, once")
			for id, n := range r.ids {
				assert.Equal(t, 1, n, "user %s", id)
			}
			assert.Len(t, r.ids, 250-tt.without)
			assert.Equal(t, 250, r.st.Users)
			assert.Equal(t, tt.without, r.st.WithoutID)
			assert.Zero(t, r.st.Duplicates, "a user without an id is nobody's duplicate")
			assert.Equal(t, tt.restarts, r.st.Restarts)
			assert.Equal(t, tt.retries, r.st.Retries)
			warnedOnce(t, r.warnings)
			if tt.warning != "" {
				assert.Contains(t, strings.Join(r.warnings, "\n"), tt.warning)
			}
		})
	}
}

func TestListUsersLogsEveryUserWithoutAnIDInStreams(t *testing.T) {
	const users = 5_000
	for name, sel := range map[string][]string{
		"users alike":           {"id", "accountEnabled"},
		"users told apart, UPN": {"id", "accountEnabled", "userPrincipalName"},
	} {
		t.Run(name, func(t *testing.T) {
			w := newWithoutIDs(t, users, true, func(pr fakeazure.PageRequest) fakeazure.Fault {
				return fakeazure.Fault{WithoutID: pr.Path == fakeazure.UsersPath}
			})
			q := graph.Query{Select: sel, PageSize: 999, Streams: 16}
			want := w.expected(t, q)
			r := listHeld(t, w.tenant, q)
			require.NoError(t, r.err)
			assert.Equal(t, 16, r.st.Streams)
			assert.Equal(t, want, r.held, "every user once: the first page's, listed again by their prefix, too")
			assert.Equal(t, users, r.st.Users)
			assert.Equal(t, users, r.st.WithoutID)
			assert.Zero(t, r.st.Duplicates)
			warnedOnce(t, r.warnings)
		})
	}
}
