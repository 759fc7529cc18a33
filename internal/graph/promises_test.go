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

// The promises an attack on the listing tried to break, each at the
// package's level.

// requestURIs records the request URI of each request the fake Graph
// serves, for faults that need the links the client follows.
type requestURIs struct {
	mu   sync.Mutex
	last string
	all  []string
}

func (r *requestURIs) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.last = req.URL.RequestURI()
		r.all = append(r.all, r.last)
		r.mu.Unlock()
		h.ServeHTTP(w, req)
	})
}

// current is the URI of the request being served; faults run inside it.
func (r *requestURIs) current() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last
}

// newRecordedTenant is a tenant whose requests are recorded; fault may read
// the recording to answer with links.
func newRecordedTenant(t *testing.T, users int, fault func(uris *requestURIs, pr fakeazure.PageRequest) fakeazure.Fault) (*tenant, *requestURIs) {
	t.Helper()
	uris := &requestURIs{}
	ft := fakeazure.NewTenant(t, fakeazure.TenantOptions{
		Graph: fakeazure.GraphOptions{Users: users, Fault: func(pr fakeazure.PageRequest) fakeazure.Fault { return fault(uris, pr) }},
		Wrap:  uris.wrap,
	})
	client, err := graph.NewClient(ft.URL, ft.Credential(t), &graph.ClientOptions{Transport: ft.Transport(), RetryDelay: time.Millisecond})
	require.NoError(t, err)
	return &tenant{Tenant: ft, client: client}, uris
}

// foreignHost is a server no token may reach; it fails the test if one does.
func foreignHost(t *testing.T, tls bool) *httptest.Server {
	t.Helper()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("a request reached the foreign host: %s %s (Authorization set: %v)", r.Method, r.URL, r.Header.Get("Authorization") != "")
	})
	var s *httptest.Server
	if tls {
		s = httptest.NewTLSServer(h)
	} else {
		s = httptest.NewServer(h)
	}
	t.Cleanup(s.Close)
	return s
}

func TestListUsersFollowsARedirectOnlyOnGraphsOwnOrigin(t *testing.T) {
	other := foreignHost(t, true)
	plain := foreignHost(t, false)
	redirect := func(status int, location func(tn *tenant, uri string) string) func(*tenant, *requestURIs, fakeazure.PageRequest) fakeazure.Fault {
		return func(tn *tenant, uris *requestURIs, pr fakeazure.PageRequest) fakeazure.Fault {
			if pr.Page == 1 && pr.Attempt == 1 {
				return fakeazure.Fault{Status: status, Header: http.Header{"Location": {location(tn, uris.current())}}}
			}
			return fakeazure.Fault{}
		}
	}
	tests := []struct {
		name    string
		fault   func(*tenant, *requestURIs, fakeazure.PageRequest) fakeazure.Fault
		wantErr string // empty: every user once
	}{
		{
			name:  "a 307 to the same page on the same origin is followed",
			fault: redirect(307, func(tn *tenant, uri string) string { return tn.URL.String() + uri + "&moved=1" }),
		},
		{
			name:  "a relative 308 is resolved and followed",
			fault: redirect(308, func(_ *tenant, uri string) string { return uri + "&moved=1" }),
		},
		{
			name:    "a 307 to another port of the same host",
			fault:   redirect(307, func(*tenant, string) string { return other.URL + "/v1.0/users" }),
			wantErr: "refusing to follow a 307 redirect to " + other.URL,
		},
		{
			name: "a 302 from https to plain http on the same host and port",
			fault: redirect(302, func(tn *tenant, uri string) string {
				return "http://" + tn.URL.Host + uri
			}),
			wantErr: "refusing to follow a 302 redirect to http://",
		},
		{
			name:    "a 301 to a plain http host",
			fault:   redirect(301, func(*tenant, string) string { return plain.URL + "/v1.0/users?$skiptoken=steal" }),
			wantErr: "refusing to follow a 301 redirect to " + plain.URL,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var tn *tenant
			tn, _ = newRecordedTenant(t, 150, func(uris *requestURIs, pr fakeazure.PageRequest) fakeazure.Fault {
				return tt.fault(tn, uris, pr)
			})
			ids, st, err := tn.list(t, graph.Query{Select: []string{"id"}, PageSize: 50})
			if tt.wantErr == "" {
				require.NoError(t, err)
				assertEveryUserOnce(t, ids, 150)
				return
			}
			var oe *graph.OriginError
			require.ErrorAs(t, err, &oe)
			assert.Contains(t, err.Error(), tt.wantErr)
			assert.NotContains(t, err.Error(), "steal", "a link's path and query are never repeated")
			assert.NotContains(t, err.Error(), tn.Token)
			assert.Equal(t, 50, st.Users, "the first page's users, then the listing stops")
		})
	}
}

func TestListUsersRefusesEndlessRedirects(t *testing.T) {
	var tn *tenant
	tn, _ = newRecordedTenant(t, 10, func(uris *requestURIs, pr fakeazure.PageRequest) fakeazure.Fault {
		return fakeazure.Fault{Status: 307, Header: http.Header{"Location": {tn.URL.String() + uris.current() + "&again=1"}}}
	})
	_, _, err := tn.list(t, graph.Query{Select: []string{"id"}, PageSize: 50})
	var re *graph.RedirectError
	require.ErrorAs(t, err, &re)
	assert.Contains(t, err.Error(), "more than 5 redirects")
	assert.Equal(t, 6, tn.Graph.Requests(), "the first request and five redirects")
}

func TestListUsersStopsAtALinkThatLoopsBack(t *testing.T) {
	tests := map[string]func(uris *requestURIs, pr fakeazure.PageRequest) fakeazure.Fault{
		"page 2 links to itself": func(uris *requestURIs, pr fakeazure.PageRequest) fakeazure.Fault {
			if pr.Page == 1 {
				return fakeazure.Fault{NextLink: "self"}
			}
			return fakeazure.Fault{}
		},
		"page 3 links back to page 2": func(uris *requestURIs, pr fakeazure.PageRequest) fakeazure.Fault {
			if pr.Page == 2 {
				return fakeazure.Fault{NextLink: "page 2"}
			}
			return fakeazure.Fault{}
		},
	}
	for name, fault := range tests {
		t.Run(name, func(t *testing.T) {
			var tn *tenant
			tn, _ = newRecordedTenant(t, 250, func(uris *requestURIs, pr fakeazure.PageRequest) fakeazure.Fault {
				f := fault(uris, pr)
				switch f.NextLink {
				case "self":
					f.NextLink = tn.URL.String() + uris.current()
				case "page 2":
					f.NextLink = tn.URL.String() + uris.all[1]
				}
				return f
			})
			ids, _, err := tn.list(t, graph.Query{Select: []string{"id"}, PageSize: 50})
			require.ErrorIs(t, err, graph.ErrLinkLoop)
			for id, n := range ids {
				assert.Equal(t, 1, n, "user %s", id)
			}
			assert.LessOrEqual(t, tn.Graph.Requests(), 4, "the loop is refused before its link is sent")
		})
	}
}

func TestListUsersLogsAUserGraphRepeatsOnceAndCountsIt(t *testing.T) {
	// Page 2's nextLink starts page 3 ten users early: Graph hands users 90
	// to 99 over twice.
	var tn *tenant
	tn, _ = newRecordedTenant(t, 250, func(uris *requestURIs, pr fakeazure.PageRequest) fakeazure.Fault {
		if pr.Offset == 50 {
			uri := uris.current()
			if i := strings.Index(uri, "&$skiptoken="); i >= 0 {
				uri = uri[:i]
			}
			return fakeazure.Fault{NextLink: tn.URL.String() + uri + "&$skiptoken=" + fakeazure.SkipToken(90, 2)}
		}
		return fakeazure.Fault{}
	})
	ids, st, err := tn.list(t, graph.Query{Select: []string{"id"}, PageSize: 50})
	require.NoError(t, err)
	assertEveryUserOnce(t, ids, 250)
	assert.Equal(t, 10, st.Duplicates)
	assert.Equal(t, 250, st.Users)
}

func TestListUsersCountsNoDuplicatesForPagesReadAgain(t *testing.T) {
	tn := newFaultyTenant(t, 250, func(pr fakeazure.PageRequest) fakeazure.Fault {
		switch {
		case pr.Page == 2 && pr.Attempt == 1:
			return fakeazure.Fault{Cut: true, CutAfterUsers: 30}
		case pr.Page == 3 && pr.Attempt == 1:
			return fakeazure.Fault{Status: 400, Code: graph.CodeExpiredPageToken}
		}
		return fakeazure.Fault{}
	}, tenantOptions{})
	ids, st, err := tn.list(t, graph.Query{Select: []string{"id"}, PageSize: 50})
	require.NoError(t, err)
	assertEveryUserOnce(t, ids, 250)
	assert.Equal(t, 1, st.Restarts)
	assert.Equal(t, 1, st.Retries)
	assert.Zero(t, st.Duplicates, "users read again on purpose are not Graph's duplicates")
}

func TestListUsersGetsANewTokenWhenGraphRefusesOneThatWorked(t *testing.T) {
	tn := newFaultyTenant(t, 150, func(pr fakeazure.PageRequest) fakeazure.Fault {
		if pr.Page == 1 && pr.Attempt == 1 {
			return fakeazure.Fault{Status: 401, Code: "InvalidAuthenticationToken", Message: "Lifetime validation failed, the token is expired."}
		}
		return fakeazure.Fault{}
	}, tenantOptions{})
	var warnings []string
	ids := map[string]int{}
	st, err := tn.client.ListUsers(context.Background(), graph.Query{Select: []string{"id"}, PageSize: 50}, graph.Sink{
		User: func(_ int, u []byte) error { ids[idOf(t, u)]++; return nil },
		Warn: func(msg string) { warnings = append(warnings, msg) },
	})
	require.NoError(t, err)
	assertEveryUserOnce(t, ids, 150)
	assert.Equal(t, 1, st.Retries)
	assert.Equal(t, 2, tn.Identity.Requests(), "a new token, not the cached one Graph refused")
	require.Len(t, warnings, 1)
	assert.Contains(t, warnings[0], "Graph refused the token; trying again with a new one")
}

func TestListUsersFailsWhenGraphRefusesTheNewTokenToo(t *testing.T) {
	tn := newFaultyTenant(t, 150, func(pr fakeazure.PageRequest) fakeazure.Fault {
		if pr.Page == 1 {
			return fakeazure.Fault{Status: 401, Code: "InvalidAuthenticationToken"}
		}
		return fakeazure.Fault{}
	}, tenantOptions{})
	_, st, err := tn.list(t, graph.Query{Select: []string{"id"}, PageSize: 50})
	var re *graph.ResponseError
	require.ErrorAs(t, err, &re)
	assert.Equal(t, 401, re.StatusCode)
	assert.Equal(t, 1, st.Pages)
	assert.Equal(t, 2, tn.Identity.Requests())
}

func TestListUsersBoundsATokenEndpointThatHangs(t *testing.T) {
	hang := func(int) fakeazure.Fault { return fakeazure.Fault{Delay: time.Minute} }
	ft := fakeazure.NewTenant(t, fakeazure.TenantOptions{Graph: fakeazure.GraphOptions{Users: 10}, TokenFault: hang})
	client, err := graph.NewClient(ft.URL, ft.Credential(t), &graph.ClientOptions{
		Transport: ft.Transport(), RetryDelay: time.Millisecond,
		// A stall timeout shorter than the token's bound: the wait for a
		// token is not Graph stalling.
		StallTimeout: 50 * time.Millisecond, TokenTimeout: 400 * time.Millisecond,
	})
	require.NoError(t, err)
	var warnings atomic.Int32
	start := time.Now()
	_, err = client.ListUsers(context.Background(), graph.Query{Select: []string{"id"}, PageSize: 50}, graph.Sink{
		User: func(int, []byte) error { return nil },
		Warn: func(string) { warnings.Add(1) },
	})
	var te *graph.TokenError
	require.ErrorAs(t, err, &te)
	assert.Equal(t, 400*time.Millisecond, te.Timeout)
	assert.Contains(t, err.Error(), "no token within 400ms")
	assert.Zero(t, warnings.Load(), "nothing retried as if Graph stalled")
	assert.Zero(t, ft.Graph.Requests(), "no request reaches Graph without a token")
	assert.Less(t, time.Since(start), 5*time.Second)
}

func TestListUsersRetriesAPageThatCameWholeButInvalidOnceOnly(t *testing.T) {
	tn := newFaultyTenant(t, 150, func(pr fakeazure.PageRequest) fakeazure.Fault {
		if pr.Page == 1 {
			return fakeazure.Fault{Garbage: true}
		}
		return fakeazure.Fault{}
	}, tenantOptions{})
	var warnings []string
	_, st, err := tn.listWarn(t, graph.Query{Select: []string{"id"}, PageSize: 50}, &warnings)
	var se *graph.PageSyntaxError
	require.ErrorAs(t, err, &se)
	assert.Contains(t, err.Error(), "not a valid page, 2 times")
	assert.Contains(t, err.Error(), "at byte 0", "the failure names where the body went wrong")
	assert.Equal(t, 1, st.Retries, "retried once, not six times as a cut body is")
	require.Len(t, warnings, 1)
	assert.Contains(t, warnings[0], "came whole but is not a valid page")
	assert.NotContains(t, warnings[0], "broke off")
}

func TestListUsersAnnouncesTheOneRetryOfAPageThatCameWholeButInvalid(t *testing.T) {
	tests := map[string]struct {
		faults []fakeazure.Fault // page 2's first attempts
		want   []string          // the warnings' ends
	}{
		"invalid, then whole": {
			faults: []fakeazure.Fault{{Garbage: true}},
			want:   []string{"; retry 1 of 1 in "},
		},
		"cut, invalid, then whole": {
			faults: []fakeazure.Fault{{Cut: true, CutAfterUsers: 10}, {Garbage: true}},
			want:   []string{"; retry 1 of 6 in ", "; retry 1 of 1 in "},
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			tn := newFaultyTenant(t, 150, func(pr fakeazure.PageRequest) fakeazure.Fault {
				if pr.Page == 1 && pr.Attempt <= len(tt.faults) {
					return tt.faults[pr.Attempt-1]
				}
				return fakeazure.Fault{}
			}, tenantOptions{})
			var warnings []string
			ids, st, err := tn.listWarn(t, graph.Query{Select: []string{"id"}, PageSize: 50}, &warnings)
			require.NoError(t, err)
			assertEveryUserOnce(t, ids, 150)
			assert.Equal(t, len(tt.faults), st.Retries)
			require.Len(t, warnings, len(tt.want))
			for k, want := range tt.want {
				assert.Contains(t, warnings[k], want)
			}
		})
	}
}

func TestListUsersRetriesACutPageWithTheWholeBudget(t *testing.T) {
	tn := newFaultyTenant(t, 150, func(pr fakeazure.PageRequest) fakeazure.Fault {
		if pr.Page == 1 && pr.Attempt <= 5 {
			return fakeazure.Fault{Cut: true, CutAfterUsers: 10}
		}
		return fakeazure.Fault{}
	}, tenantOptions{})
	ids, st, err := tn.list(t, graph.Query{Select: []string{"id"}, PageSize: 50})
	require.NoError(t, err)
	assertEveryUserOnce(t, ids, 150)
	assert.Equal(t, 5, st.Retries)
}
