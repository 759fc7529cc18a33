package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"graphuserstimer/internal/fakeazure"
)

// The streams' promises through the whole program: the default split,
// every user exactly once, one whole JSON line per user, the summary's
// streams, expected and duplicates, and the fault suite on one stream while
// the others run.

// isPart reports whether a request is for a part of the split, not the
// probe that asks for one whole UPN.
func isPart(pr fakeazure.PageRequest) bool {
	return pr.Path == fakeazure.UsersPath && pr.Prefix != "" && len(pr.Prefix) <= 4
}

// onOnePart faults the first request that is page page of a part.
func onOnePart(page int, f fakeazure.Fault) func(fakeazure.PageRequest) fakeazure.Fault {
	var once atomic.Bool
	return func(pr fakeazure.PageRequest) fakeazure.Fault {
		if isPart(pr) && pr.Page == page && once.CompareAndSwap(false, true) {
			return f
		}
		return fakeazure.Fault{}
	}
}

// streamSettings are the settings of a run with the default number of
// streams and pages of 500 users.
func streamSettings(t *testing.T, az *azure) map[string]string {
	env := az.settings(t)
	delete(env, "GRAPH_USERS_PARALLEL") // the default, 16
	env["GRAPH_USERS_PAGE_SIZE"] = "500"
	return env
}

func TestStreamsListARealisticTenantOnceEach(t *testing.T) {
	const users = 30_000
	az := newAzureFrom(t, fakeazure.GraphOptions{Users: users, Realistic: true}, nil)
	o := invokeOnce(t, az, streamSettings(t, az))

	require.Equal(t, 200, o.status, "logs %v\nstderr %s", o.logs, o.stderr)
	require.Len(t, o.ids, users)
	for _, i := range az.graph.ListedUsers() {
		require.Equal(t, 1, o.ids[fakeazure.UserID(i)], "user %d", i)
	}
	require.NotNil(t, o.summary)
	assert.Equal(t, 16.0, o.summary["streams"])
	assert.Equal(t, float64(users), o.summary["expected"])
	assert.Equal(t, float64(users), o.summary["users"])
	assert.Equal(t, 0.0, o.summary["duplicates"])
	assert.Contains(t, strings.Join(o.logs, "\n"), "16 streams, Graph counts 30000")
	// jsonLines refused any line that is not whole JSON: lines of
	// different streams never interleave.
}

func TestStreamsOfATenantOfOnePageAreOneRequest(t *testing.T) {
	az := newAzureFrom(t, fakeazure.GraphOptions{Users: 400, Realistic: true}, nil)
	o := invokeOnce(t, az, streamSettings(t, az))
	require.Equal(t, 200, o.status)
	assert.Len(t, o.ids, 400)
	assert.Equal(t, 1, az.graph.Requests())
	assert.Equal(t, 1.0, o.summary["streams"])
	assert.NotContains(t, o.summary, "expected", "no count for a tenant that fits a page")
}

func TestStreamsFaultsOnOneStreamEveryUserOnceOrAClearFailure(t *testing.T) {
	foreign := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("a request reached the foreign host: %s %s", r.Method, r.URL)
	}))
	defer foreign.Close()
	const users = 12_000
	tests := []struct {
		name    string
		fault   func(fakeazure.PageRequest) fakeazure.Fault
		wantErr []string       // nil: every user once
		stats   map[string]int // summary fields on success
		logs    []string       // words in the response's Logs
	}{
		{
			name:  "a 429 on one stream",
			fault: onOnePart(1, fakeazure.Fault{Status: 429, Code: "TooManyRequests", Header: header("Retry-After", "0.05")}),
			stats: map[string]int{"throttled": 1, "retries": 1},
			logs:  []string{"429", "prefix '"},
		},
		{
			name:  "a body cut on one stream",
			fault: onOnePart(1, fakeazure.Fault{Cut: true, CutAfterUsers: 200}),
			stats: map[string]int{"retries": 1, "duplicates": 0},
			// Which part's second page is cut, and so after how many users,
			// depends on which stream gets there first.
			logs: []string{"prefix '", "the page broke off after"},
		},
		{
			name:  "an expired page token on one stream",
			fault: onOnePart(1, fakeazure.Fault{Status: 400, Code: "Directory_ExpiredPageToken", Message: "The specified page token value has expired."}),
			stats: map[string]int{"restarts": 1, "duplicates": 0},
			logs:  []string{"page token expired", "listing again from the first page"},
		},
		{
			name:    "a nextLink to another host on one stream",
			fault:   onOnePart(0, fakeazure.Fault{NextLink: foreign.URL + "/v1.0/users?$skiptoken=steal"}),
			wantErr: []string{"refusing to send the token to " + foreign.URL, "GRAPH_ENDPOINT", "prefix '"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			az := newAzureFrom(t, fakeazure.GraphOptions{Users: users, Realistic: true, Fault: tt.fault}, nil)
			o := invokeOnce(t, az, streamSettings(t, az))
			if tt.wantErr != nil {
				assert.Equal(t, 500, o.status)
				for _, w := range tt.wantErr {
					assert.Contains(t, o.logs[len(o.logs)-1], w)
					assert.Contains(t, o.stderr, w)
				}
				for id, n := range o.ids {
					assert.Equal(t, 1, n, "user %s is logged once even in a failed run", id)
				}
				return
			}
			require.Equal(t, 200, o.status, "logs %v\nstderr %s", o.logs, o.stderr)
			require.Len(t, o.ids, users)
			for _, i := range az.graph.ListedUsers() {
				require.Equal(t, 1, o.ids[fakeazure.UserID(i)], "user %d", i)
			}
			for k, v := range tt.stats {
				assert.Equal(t, float64(v), o.summary[k], k)
			}
			for _, w := range tt.logs {
				assert.Contains(t, strings.Join(o.logs, "\n"), w)
			}
		})
	}
}
