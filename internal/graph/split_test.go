package graph_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"graphuserstimer/internal/fakeazure"
	"graphuserstimer/internal/graph"
)

// splitRun is one split listing's outcome.
type splitRun struct {
	ids      map[string]int
	st       graph.Stats
	err      error
	warnings []string
}

// listSplit lists tn with q, counting each id; streams call User at once.
func listSplit(t *testing.T, tn *tenant, q graph.Query) splitRun {
	t.Helper()
	var mu sync.Mutex
	r := splitRun{ids: map[string]int{}}
	r.st, r.err = tn.client.ListUsers(context.Background(), q, graph.Sink{
		User: func(_ int, u []byte) error {
			id := idOf(t, u)
			mu.Lock()
			r.ids[id]++
			mu.Unlock()
			return nil
		},
		Warn: func(msg string) {
			mu.Lock()
			r.warnings = append(r.warnings, msg)
			mu.Unlock()
		},
	})
	return r
}

// assertListedOnce checks that every user the fake lists was handed over
// exactly once, and no other.
func assertListedOnce(t *testing.T, g *fakeazure.Graph, ids map[string]int) {
	t.Helper()
	listed := g.ListedUsers()
	require.Len(t, ids, len(listed), "as many users as the tenant lists")
	for _, i := range listed {
		if !assert.Equal(t, 1, ids[fakeazure.UserID(i)], "user %d (%s)", i, g.UPN(i)) {
			return
		}
	}
}

// newSplitTenant is a realistic tenant of users, its Graph configured by o.
func newSplitTenant(t *testing.T, users int, o fakeazure.GraphOptions, wrap func(http.Handler) http.Handler) *tenant {
	t.Helper()
	o.Users, o.Realistic = users, true
	ft := fakeazure.NewTenant(t, fakeazure.TenantOptions{Graph: o, Wrap: wrap})
	client, err := graph.NewClient(ft.URL, ft.Credential(t), &graph.ClientOptions{Transport: ft.Transport(), RetryDelay: time.Millisecond})
	require.NoError(t, err)
	return &tenant{Tenant: ft, client: client}
}

// isPart reports whether a request is for a part of the split, not the
// probe that asks for one whole UPN.
func isPart(pr fakeazure.PageRequest) bool {
	return pr.Path == fakeazure.UsersPath && pr.Prefix != "" && len(pr.Prefix) <= 4
}

var splitQuery = graph.Query{Select: []string{"id", "displayName", "userPrincipalName"}, PageSize: 999, Streams: 16}

func TestListUsersOfATenantThatFitsOnePageCostsOneRequest(t *testing.T) {
	tn := newSplitTenant(t, 700, fakeazure.GraphOptions{}, nil)
	r := listSplit(t, tn, splitQuery)
	require.NoError(t, r.err)
	assertListedOnce(t, tn.Graph, r.ids)
	assert.Equal(t, 1, tn.Graph.Requests(), "one page, one request: no count, no probe, no stream")
	assert.Equal(t, 1, r.st.Streams)
	assert.False(t, r.st.Counted)
}

func TestListUsersSplitsALargeTenantIntoStreams(t *testing.T) {
	const users = 40_000
	tn := newSplitTenant(t, users, fakeazure.GraphOptions{}, nil)
	r := listSplit(t, tn, splitQuery)
	require.NoError(t, r.err)
	assertListedOnce(t, tn.Graph, r.ids)
	assert.Equal(t, 16, r.st.Streams)
	assert.True(t, r.st.Counted)
	assert.Equal(t, users, r.st.Expected)
	assert.Equal(t, users, r.st.Users)
	assert.Zero(t, r.st.Duplicates, "the first page's users, listed again by their prefix, are no duplicates")
	assert.Empty(t, r.warnings)
}

func TestListUsersSplitsWithoutTheUPNSelected(t *testing.T) {
	tn := newSplitTenant(t, 5_000, fakeazure.GraphOptions{}, nil)
	q := splitQuery
	q.Select = []string{"id", "displayName"}
	r := listSplit(t, tn, q)
	require.NoError(t, r.err)
	assertListedOnce(t, tn.Graph, r.ids)
	assert.Equal(t, 16, r.st.Streams, "a sample of UPNs of its own plans the split")
}

func TestListUsersSplitsWithTheFilterOfTheSettings(t *testing.T) {
	tn := newSplitTenant(t, 8_000, fakeazure.GraphOptions{}, nil)
	q := splitQuery
	q.Filter = "userType eq 'Guest'"
	q.PageSize = 100
	r := listSplit(t, tn, q)
	require.NoError(t, r.err)
	guests := 0
	for _, i := range tn.Graph.ListedUsers() {
		if strings.Contains(tn.Graph.UPN(i), "#EXT#") {
			guests++
			assert.Equal(t, 1, r.ids[fakeazure.UserID(i)], "guest %d", i)
		}
	}
	require.Positive(t, guests)
	assert.Len(t, r.ids, guests, "the guests, and only them")
	assert.Equal(t, guests, r.st.Expected, "counted with the same filter")
}

func TestListUsersListsBothCasesWhereStartsWithHeedsCase(t *testing.T) {
	tn := newSplitTenant(t, 20_000, fakeazure.GraphOptions{CaseSensitiveStartsWith: true}, nil)
	r := listSplit(t, tn, splitQuery)
	require.NoError(t, r.err)
	// Some UPNs begin with an upper-case letter: listing one case only
	// would miss them, and the count would show it.
	assertListedOnce(t, tn.Graph, r.ids)
	assert.Empty(t, r.warnings)
}

func TestListUsersWarnsOfAShortfallAgainstGraphsCount(t *testing.T) {
	tn := newSplitTenant(t, 5_000, fakeazure.GraphOptions{CountSkew: 120}, nil)
	r := listSplit(t, tn, splitQuery)
	require.NoError(t, r.err)
	assertListedOnce(t, tn.Graph, r.ids)
	assert.Equal(t, 5_120, r.st.Expected)
	require.Len(t, r.warnings, 1)
	assert.Contains(t, r.warnings[0], "listed 5000 users where Graph counts 5120")
}

func TestListUsersToleratesTheCountsEventualConsistency(t *testing.T) {
	tn := newSplitTenant(t, 5_000, fakeazure.GraphOptions{CountSkew: 8}, nil)
	r := listSplit(t, tn, splitQuery)
	require.NoError(t, r.err)
	assert.Empty(t, r.warnings, "a few users short of an eventually consistent count is no warning")
}

func TestListUsersHoldsEveryStreamBackWhileGraphThrottles(t *testing.T) {
	const pause = time.Second
	var (
		mu     sync.Mutex
		starts []time.Time
		once   atomic.Bool
	)
	wrap := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			starts = append(starts, time.Now())
			mu.Unlock()
			h.ServeHTTP(w, r)
		})
	}
	tn := newSplitTenant(t, 30_000, fakeazure.GraphOptions{
		Latency: 20 * time.Millisecond,
		Fault: func(pr fakeazure.PageRequest) fakeazure.Fault {
			if isPart(pr) && pr.Page == 1 && once.CompareAndSwap(false, true) {
				return fakeazure.Fault{Status: 429, Code: "TooManyRequests", Header: http.Header{"Retry-After": {"1"}}}
			}
			return fakeazure.Fault{}
		},
	}, wrap)
	// The stream that met the 429 warns just after it holds every stream
	// back: from then on, for the pause, no request may start.
	var warned time.Time
	ids := map[string]int{}
	st, err := tn.client.ListUsers(context.Background(), splitQuery, graph.Sink{
		User: func(_ int, u []byte) error {
			mu.Lock()
			ids[idOf(t, u)]++
			mu.Unlock()
			return nil
		},
		Warn: func(string) {
			mu.Lock()
			warned = time.Now()
			mu.Unlock()
		},
	})
	require.NoError(t, err)
	assertListedOnce(t, tn.Graph, ids)
	assert.Equal(t, 1, st.Throttled)

	mu.Lock()
	defer mu.Unlock()
	require.False(t, warned.IsZero())
	held := 0
	for _, s := range starts {
		// A request already past the gate may reach the server a moment
		// after the warning: on a loaded machine under the race detector,
		// up to a tenth of a second was seen.
		if s.After(warned.Add(250*time.Millisecond)) && s.Before(warned.Add(pause-100*time.Millisecond)) {
			held++
			t.Logf("a request %s after the warning", s.Sub(warned))
		}
	}
	assert.Zero(t, held, "no stream sent a request while Graph asked the app to wait")
}

func TestListUsersSurvivesFaultsOnOneStreamWhileOthersRun(t *testing.T) {
	onPrefix := func(f fakeazure.Fault) func(pr fakeazure.PageRequest) fakeazure.Fault {
		var once atomic.Bool
		return func(pr fakeazure.PageRequest) fakeazure.Fault {
			if isPart(pr) && pr.Page == 1 && once.CompareAndSwap(false, true) {
				return f
			}
			return fakeazure.Fault{}
		}
	}
	tests := map[string]fakeazure.Fault{
		"a 429":                  {Status: 429, Header: http.Header{"Retry-After": {"0.05"}}},
		"a body cut off":         {Cut: true, CutAfterUsers: 100},
		"an expired page token":  {Status: 400, Code: graph.CodeExpiredPageToken},
		"a page that is not one": {Garbage: true},
	}
	for name, f := range tests {
		t.Run(name, func(t *testing.T) {
			tn := newSplitTenant(t, 25_000, fakeazure.GraphOptions{Fault: onPrefix(f)}, nil)
			r := listSplit(t, tn, splitQuery)
			require.NoError(t, r.err)
			assertListedOnce(t, tn.Graph, r.ids)
			assert.Zero(t, r.st.Duplicates)
			require.NotEmpty(t, r.warnings)
			assert.Contains(t, r.warnings[0], "prefix '", "the warning names the stream's prefix")
		})
	}
}

func TestListUsersStopsEveryStreamAtAForeignLink(t *testing.T) {
	foreign := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("a request reached the foreign host: %s", r.URL)
	}))
	defer foreign.Close()
	var once atomic.Bool
	tn := newSplitTenant(t, 25_000, fakeazure.GraphOptions{Fault: func(pr fakeazure.PageRequest) fakeazure.Fault {
		if isPart(pr) && pr.Page == 0 && once.CompareAndSwap(false, true) {
			return fakeazure.Fault{NextLink: foreign.URL + "/v1.0/users?$skiptoken=steal"}
		}
		return fakeazure.Fault{}
	}}, nil)
	r := listSplit(t, tn, splitQuery)
	var oe *graph.OriginError
	require.ErrorAs(t, r.err, &oe)
	assert.Contains(t, r.err.Error(), "prefix '")
	for id, n := range r.ids {
		assert.Equal(t, 1, n, "user %s", id)
	}
}

func TestListUsersLogsAUserRenamedMidRunOnce(t *testing.T) {
	const users = 20_000
	var tn *tenant
	var renamed atomic.Int64
	renamed.Store(-1)
	tn = newSplitTenant(t, users, fakeazure.GraphOptions{Fault: func(pr fakeazure.PageRequest) fakeazure.Fault {
		// When the largest prefix's first page is asked for, a user of it
		// not on the first page moves to a prefix listed last.
		if isPart(pr) && renamed.Load() < 0 {
			for i := 1_000; i < users; i++ {
				if strings.HasPrefix(strings.ToLower(tn.Graph.UPN(i)), strings.ToLower(pr.Prefix)) && renamed.CompareAndSwap(-1, int64(i)) {
					break
				}
			}
		}
		return fakeazure.Fault{}
	}}, nil)
	ids := map[string]int{}
	var mu sync.Mutex
	st, err := tn.client.ListUsers(context.Background(), splitQuery, graph.Sink{User: func(_ int, u []byte) error {
		id := idOf(t, u)
		mu.Lock()
		defer mu.Unlock()
		ids[id]++
		if i := renamed.Load(); i >= 0 && id == fakeazure.UserID(int(i)) && !strings.HasPrefix(tn.Graph.UPN(int(i)), "zz") {
			// Seen under its old name: now it moves.
			require.NoError(t, tn.Graph.RenameUser(int(i), "zzz.renamed"+tn.Graph.UPN(int(i))))
		}
		return nil
	}})
	require.NoError(t, err)
	require.GreaterOrEqual(t, renamed.Load(), int64(0))
	assertListedOnce(t, tn.Graph, ids)
	assert.Equal(t, 1, st.Duplicates, "seen under both names, logged once, counted once")
}

func TestListUsersGoesOnWithOneCursorWhereTheSplitWouldNotPay(t *testing.T) {
	// Three pages: one cursor needs two more round trips; 44 parts in 16
	// streams would need three, and 44 requests.
	tn := newSplitTenant(t, 2_500, fakeazure.GraphOptions{}, nil)
	r := listSplit(t, tn, splitQuery)
	require.NoError(t, r.err)
	assertListedOnce(t, tn.Graph, r.ids)
	assert.Equal(t, 1, r.st.Streams)
	assert.Equal(t, 3, r.st.Pages, "the first page, then the cursor's two others")
	assert.Equal(t, 5, tn.Graph.Requests(), "the first page, the count, the probe and two pages")
	assert.True(t, r.st.Counted)
	assert.Equal(t, 2_500, r.st.Expected)
}
