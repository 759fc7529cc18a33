package graph_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
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

// tenant is a fake tenant with a Client that reaches it through the real
// managed identity credential.
type tenant struct {
	*fakeazure.Tenant
	client *graph.Client
}

func newTenant(t testing.TB, users int) *tenant {
	t.Helper()
	return newFaultyTenant(t, users, nil, tenantOptions{})
}

// tenantOptions tune a test tenant beyond its faults.
type tenantOptions struct {
	// connState hears of the fake Graph's connections.
	connState func(net.Conn, http.ConnState)
	// stall is the client's StallTimeout; zero leaves the default.
	stall time.Duration
}

// newFaultyTenant is newTenant with a fake Graph that does what fault says.
func newFaultyTenant(t testing.TB, users int, fault func(fakeazure.PageRequest) fakeazure.Fault, o tenantOptions) *tenant {
	t.Helper()
	ft := fakeazure.NewTenant(t, fakeazure.TenantOptions{
		Graph:     fakeazure.GraphOptions{Users: users, Fault: fault},
		ConnState: o.connState,
	})
	client, err := graph.NewClient(ft.URL, ft.Credential(t), &graph.ClientOptions{
		Transport: ft.Transport(), RetryDelay: time.Millisecond, StallTimeout: o.stall,
	})
	require.NoError(t, err)
	return &tenant{Tenant: ft, client: client}
}

// list lists every user and counts each id.
func (tn *tenant) list(t testing.TB, q graph.Query) (map[string]int, graph.Stats, error) {
	t.Helper()
	ids := map[string]int{}
	st, err := tn.client.ListUsers(context.Background(), q, graph.Sink{User: func(_ int, u []byte) error {
		ids[idOf(t, u)]++
		return nil
	}})
	return ids, st, err
}

// listWarn is list, keeping the warnings.
func (tn *tenant) listWarn(t testing.TB, q graph.Query, warnings *[]string) (map[string]int, graph.Stats, error) {
	t.Helper()
	ids := map[string]int{}
	st, err := tn.client.ListUsers(context.Background(), q, graph.Sink{
		User: func(_ int, u []byte) error { ids[idOf(t, u)]++; return nil },
		Warn: func(msg string) { *warnings = append(*warnings, msg) },
	})
	return ids, st, err
}

func idOf(t testing.TB, user []byte) string {
	var v struct{ ID string }
	require.NoError(t, json.Unmarshal(user, &v))
	return v.ID
}

func assertEveryUserOnce(t *testing.T, ids map[string]int, users int) {
	t.Helper()
	assert.Len(t, ids, users)
	for i := range users {
		if !assert.Equal(t, 1, ids[fakeazure.UserID(i)], "user %d", i) {
			return
		}
	}
}

func TestListUsersFollowsEveryPageOverTLS(t *testing.T) {
	const users = 2_345
	tn := newTenant(t, users)
	ids, st, err := tn.list(t, graph.Query{Select: []string{"id", "displayName"}, PageSize: 100})
	require.NoError(t, err)

	assertEveryUserOnce(t, ids, users)
	assert.Equal(t, graph.Stats{Users: users, Pages: 24, Streams: 1}, st)
	assert.Equal(t, 24, tn.Graph.Requests())
	assert.Equal(t, 1, tn.Identity.Requests(), "one token for the whole listing")
	assert.Equal(t, []string{tn.URL.String()}, tn.Identity.Resources(), "the scope is GRAPH_ENDPOINT/.default")
}

func TestListUsersWithTheLargestPages(t *testing.T) {
	tn := newTenant(t, 2_000)
	ids, st, err := tn.list(t, graph.Query{Select: []string{"id"}, PageSize: 999})
	require.NoError(t, err)
	assertEveryUserOnce(t, ids, 2_000)
	assert.Equal(t, 3, st.Pages)
}

func TestListUsersOfAnEmptyTenant(t *testing.T) {
	tn := newTenant(t, 0)
	ids, st, err := tn.list(t, graph.Query{Select: []string{"id"}, PageSize: 10})
	require.NoError(t, err)
	assert.Empty(t, ids)
	assert.Equal(t, graph.Stats{Pages: 1, Streams: 1}, st)
}

func TestListUsersSendsTheFilter(t *testing.T) {
	tn := newTenant(t, 250)
	// Users 100 to 199 have user principal names starting "user0001".
	ids, _, err := tn.list(t, graph.Query{Select: []string{"id", "displayName"}, Filter: "startswith(userPrincipalName,'user0001')", PageSize: 30})
	require.NoError(t, err)
	assert.Len(t, ids, 100)
	for i := 100; i < 200; i++ {
		assert.Equal(t, 1, ids[fakeazure.UserID(i)], "user %d", i)
	}
}

func TestListUsersPassesGraphsRefusalOn(t *testing.T) {
	tn := newTenant(t, 10)
	_, st, err := tn.list(t, graph.Query{Select: []string{"id", "noSuchProperty"}, PageSize: 10})
	require.Error(t, err)
	var ge *graph.ResponseError
	require.ErrorAs(t, err, &ge)
	assert.Equal(t, 400, ge.StatusCode)
	assert.Contains(t, ge.Message, "noSuchProperty")
	assert.NotEmpty(t, ge.RequestID)
	assert.Equal(t, 0, st.Retries, "a 400 is not retried")
}

func TestListUsersStopsWhenTheSinkFails(t *testing.T) {
	tn := newTenant(t, 50)
	stop := fmt.Errorf("stdout closed")
	n := 0
	st, err := tn.client.ListUsers(context.Background(), graph.Query{Select: []string{"id"}, PageSize: 10}, graph.Sink{
		User: func(int, []byte) error {
			if n++; n == 15 {
				return stop
			}
			return nil
		},
	})
	require.ErrorIs(t, err, stop)
	assert.Equal(t, 14, st.Users)
	assert.Equal(t, 1, st.Pages)
}

func TestListUsersEndsWithTheContext(t *testing.T) {
	tn := newTenant(t, 50)
	ctx, cancel := context.WithTimeout(context.Background(), time.Nanosecond)
	defer cancel()
	<-ctx.Done()
	_, err := tn.client.ListUsers(ctx, graph.Query{Select: []string{"id"}, PageSize: 10}, graph.Sink{User: func(int, []byte) error { return nil }})
	require.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestListUsersDrainsAThrottledResponseAndReusesItsConnection(t *testing.T) {
	var conns atomic.Int32
	tn := newFaultyTenant(t, 30, func(pr fakeazure.PageRequest) fakeazure.Fault {
		if pr.Attempt <= 2 {
			return fakeazure.Fault{Status: 429, Code: "TooManyRequests", Message: strings.Repeat("slow down ", 500), Header: http.Header{"Retry-After": {"0.01"}}}
		}
		return fakeazure.Fault{}
	}, tenantOptions{connState: func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}})
	// One page, so that no request goes out ahead on a connection of its own.
	ids, st, err := tn.list(t, graph.Query{Select: []string{"id"}, PageSize: 50})
	require.NoError(t, err)
	assertEveryUserOnce(t, ids, 30)
	assert.Equal(t, 2, st.Throttled)
	assert.Equal(t, 2, st.Retries)
	assert.Equal(t, int32(1), conns.Load(), "every throttled body was read to its end, so one connection served all")
}

func TestListUsersWaitsAsLongAsAnHTTPDateSays(t *testing.T) {
	var asked time.Time
	tn := newFaultyTenant(t, 5, func(pr fakeazure.PageRequest) fakeazure.Fault {
		if pr.Attempt == 1 {
			asked = time.Now()
			return fakeazure.Fault{Status: 503, Header: http.Header{"Retry-After": {asked.Add(2 * time.Second).UTC().Format(http.TimeFormat)}}}
		}
		return fakeazure.Fault{}
	}, tenantOptions{})
	ids, st, err := tn.list(t, graph.Query{Select: []string{"id"}, PageSize: 10})
	require.NoError(t, err)
	assert.Len(t, ids, 5)
	assert.Equal(t, 1, st.Throttled)
	// The date has whole seconds: the wait ends in the second it names.
	assert.GreaterOrEqual(t, time.Since(asked), time.Second)
}

func TestListUsersRefusesANextLinkThatDropsTLS(t *testing.T) {
	var tn *tenant
	tn = newFaultyTenant(t, 30, func(fakeazure.PageRequest) fakeazure.Fault {
		// The same host and port as the https endpoint, over plain http.
		return fakeazure.Fault{NextLink: "http://" + tn.URL.Host + "/v1.0/users?$skiptoken=x"}
	}, tenantOptions{})
	_, st, err := tn.list(t, graph.Query{Select: []string{"id"}, PageSize: 10})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "refusing to send the token to http://"+tn.URL.Host)
	assert.Equal(t, 10, st.Users)
	assert.Equal(t, 1, tn.Graph.Requests(), "nothing was sent to the downgraded link")
}

// timeline records when each page was asked for and when its last user was
// handed over.
type timeline struct {
	mu        sync.Mutex
	requested map[int]time.Time
	done      []time.Time
}

func (tl *timeline) fault(f fakeazure.Fault) func(fakeazure.PageRequest) fakeazure.Fault {
	return func(pr fakeazure.PageRequest) fakeazure.Fault {
		tl.mu.Lock()
		defer tl.mu.Unlock()
		if _, ok := tl.requested[pr.Page]; !ok {
			tl.requested[pr.Page] = time.Now()
		}
		return f
	}
}

func (tl *timeline) list(t *testing.T, tn *tenant) map[string]int {
	t.Helper()
	ids := map[string]int{}
	_, err := tn.client.ListUsers(context.Background(), graph.Query{Select: []string{"id", "displayName"}, PageSize: 50}, graph.Sink{
		User: func(_ int, u []byte) error { ids[idOf(t, u)]++; return nil },
		Page: func(int, graph.Stats) { tl.done = append(tl.done, time.Now()) },
	})
	require.NoError(t, err)
	return ids
}

func TestListUsersFetchesOnePageAheadWhenTheLinkComesFirst(t *testing.T) {
	tl := &timeline{requested: map[int]time.Time{}}
	// Each page of 50 users, about 4 KB, takes some 100 ms to arrive.
	tn := newFaultyTenant(t, 200, tl.fault(fakeazure.Fault{BytesPerSecond: 40_000}), tenantOptions{})
	ids := tl.list(t, tn)
	assertEveryUserOnce(t, ids, 200)

	require.Len(t, tl.done, 4)
	for k := range 3 {
		assert.True(t, tl.requested[k+1].Before(tl.done[k]), "page %d is asked for while page %d is read", k+2, k+1)
	}
	for k := range 2 {
		assert.True(t, tl.requested[k+2].After(tl.done[k]), "never more than one page ahead: page %d waits for page %d", k+3, k+1)
	}
	assert.Equal(t, 4, tn.Graph.Requests())
}

func TestListUsersFollowsALinkAfterTheUsersWithoutFetchingAhead(t *testing.T) {
	tl := &timeline{requested: map[int]time.Time{}}
	tn := newFaultyTenant(t, 200, tl.fault(fakeazure.Fault{BytesPerSecond: 40_000, LinkAfterValue: true}), tenantOptions{})
	ids := tl.list(t, tn)
	assertEveryUserOnce(t, ids, 200)

	require.Len(t, tl.done, 4)
	for k := range 3 {
		assert.True(t, tl.requested[k+1].After(tl.done[k]), "page %d is asked for after page %d", k+2, k+1)
	}
}

func TestListUsersUsesThePageFetchedAheadAcrossRereadsOfItsPage(t *testing.T) {
	tn := newFaultyTenant(t, 200, func(pr fakeazure.PageRequest) fakeazure.Fault {
		if pr.Page == 1 {
			return fakeazure.Fault{Status: 403, Code: "Authorization_RequestDenied"}
		}
		// Page 0 breaks after its link and 20 users, twice, so it is read
		// three times and its nextLink seen three times.
		if pr.Page == 0 && pr.Attempt <= 2 {
			return fakeazure.Fault{Cut: true, CutAfterUsers: 20}
		}
		return fakeazure.Fault{}
	}, tenantOptions{})
	ids, st, err := tn.list(t, graph.Query{Select: []string{"id"}, PageSize: 50})
	var re *graph.ResponseError
	require.ErrorAs(t, err, &re)
	assert.Equal(t, 403, re.StatusCode)
	assert.Len(t, ids, 50, "page 1's users, each once")
	assert.Equal(t, 1, st.Pages)
	assert.Equal(t, 4, tn.Graph.Requests(), "page 2 was asked for once, ahead, and that answer was the one used")
}

func TestListUsersAbandonsThePageFetchedAheadWhenItsPageFails(t *testing.T) {
	tn := newFaultyTenant(t, 200, func(pr fakeazure.PageRequest) fakeazure.Fault {
		if pr.Page == 0 {
			return fakeazure.Fault{Cut: true, CutAfterUsers: 20}
		}
		return fakeazure.Fault{}
	}, tenantOptions{})
	ids, st, err := tn.list(t, graph.Query{Select: []string{"id"}, PageSize: 50})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "page body broken 7 times")
	assert.Len(t, ids, 20, "the users read before the break, each once")
	assert.Equal(t, 0, st.Pages)
	assert.Equal(t, 8, tn.Graph.Requests(), "seven tries at page 1 and one request ahead for page 2, never repeated")
}

func TestListUsersGivesUpAStalledPageAndReadsItAgain(t *testing.T) {
	tests := map[string]fakeazure.Fault{
		"no answer at all":         {Delay: 5 * time.Second},
		"a body that goes quiet":   {Stall: true, CutAfterUsers: 30},
		"a body quiet from the go": {Stall: true},
	}
	for name, stall := range tests {
		t.Run(name, func(t *testing.T) {
			tn := newFaultyTenant(t, 200, func(pr fakeazure.PageRequest) fakeazure.Fault {
				if pr.Page == 1 && pr.Attempt == 1 {
					return stall
				}
				return fakeazure.Fault{}
			}, tenantOptions{stall: 300 * time.Millisecond})
			var warnings []string
			ids := map[string]int{}
			start := time.Now()
			st, err := tn.client.ListUsers(context.Background(), graph.Query{Select: []string{"id"}, PageSize: 50}, graph.Sink{
				User: func(_ int, u []byte) error { ids[idOf(t, u)]++; return nil },
				Warn: func(msg string) { warnings = append(warnings, msg) },
			})
			require.NoError(t, err)
			assertEveryUserOnce(t, ids, 200)
			assert.Equal(t, 1, st.Retries)
			require.Len(t, warnings, 1)
			assert.Contains(t, warnings[0], "no byte arrived for 300ms")
			assert.Less(t, time.Since(start), 4*time.Second, "the stalled attempt was given up, not waited out")
		})
	}
}
