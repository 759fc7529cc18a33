package graph_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"graphuserstimer/internal/fakeazure"
	"graphuserstimer/internal/graph"
)

// throttledOnce is a fake Graph fault: the first request answers 429 with
// Retry-After: retryAfter, and every later one the page.
func throttledOnce(retryAfter string) func(fakeazure.PageRequest) fakeazure.Fault {
	return func(pr fakeazure.PageRequest) fakeazure.Fault {
		if pr.Attempt == 1 {
			return fakeazure.Fault{Status: 429, Code: "TooManyRequests", Header: http.Header{"Retry-After": {retryAfter}}}
		}
		return fakeazure.Fault{}
	}
}

func TestListUsersFailsAtOnceOnEveryWaitOverTheLimit(t *testing.T) {
	for _, retryAfter := range []string{"120", "10000000000", "99999999999999999999999", "Fri, 31 Dec 9999 23:59:59 GMT"} {
		t.Run(retryAfter, func(t *testing.T) {
			tn := newFaultyTenant(t, 5, throttledOnce(retryAfter), tenantOptions{})
			start := time.Now()
			_, st, err := tn.list(t, graph.Query{Select: []string{"id"}, PageSize: 10})
			require.Error(t, err)
			assert.Contains(t, err.Error(), "over the 1m0s limit")
			var re *graph.ResponseError
			require.ErrorAs(t, err, &re)
			assert.Equal(t, 429, re.StatusCode)
			assert.Equal(t, 0, st.Retries)
			assert.Equal(t, 1, tn.Graph.Requests())
			assert.Less(t, time.Since(start), 5*time.Second)
		})
	}
}

func TestListUsersBacksOffWhenRetryAfterIsNoNumber(t *testing.T) {
	for _, retryAfter := range []string{"NaN", "-Inf", "1e10", "1_0", "0x10", "-5", ""} {
		t.Run(retryAfter, func(t *testing.T) {
			tn := newFaultyTenant(t, 5, throttledOnce(retryAfter), tenantOptions{})
			var warnings []string
			ids := map[string]int{}
			st, err := tn.client.ListUsers(t.Context(), graph.Query{Select: []string{"id"}, PageSize: 10}, graph.Sink{
				User: func(_ int, u []byte) error { ids[idOf(t, u)]++; return nil },
				Warn: func(msg string) { warnings = append(warnings, msg) },
			})
			require.NoError(t, err)
			assertEveryUserOnce(t, ids, 5)
			assert.Equal(t, 1, st.Retries)
			require.Len(t, warnings, 1)
			// The client's own backoff: RetryDelay, 1 ms, with jitter.
			assert.True(t, strings.HasSuffix(warnings[0], " in 1ms"), "%s", warnings[0])
		})
	}
}

func TestListUsersRetriesAtOnceWhenGraphAsksForNoWait(t *testing.T) {
	tests := []struct {
		name     string
		status   int
		header   http.Header
		failures int
		wantErr  bool
	}{
		{"a 500 with Retry-After: 0", 500, http.Header{"Retry-After": {"0"}}, 3, false},
		{"a 503 with retry-after-ms: 0", 503, http.Header{"Retry-After-Ms": {"0"}}, 3, false},
		{"a 429 with Retry-After: 0.000", 429, http.Header{"Retry-After": {"0.000"}}, 6, false},
		{"still within the budget of six retries", 500, http.Header{"Retry-After": {"0"}}, 7, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ft := fakeazure.NewTenant(t, fakeazure.TenantOptions{Graph: fakeazure.GraphOptions{Users: 5,
				Fault: func(pr fakeazure.PageRequest) fakeazure.Fault {
					if pr.Attempt <= tt.failures {
						return fakeazure.Fault{Status: tt.status, Code: "UnknownError", Header: tt.header}
					}
					return fakeazure.Fault{}
				}}})
			// The client's own backoff would be an hour, longer than the
			// run's deadline: wait refuses it at once rather than sleep. Only
			// a retry that waits nothing can get through.
			client, err := graph.NewClient(ft.URL, ft.Credential(t), &graph.ClientOptions{
				Transport: ft.Transport(), RetryDelay: time.Hour, MaxRetryDelay: 2 * time.Hour})
			require.NoError(t, err)
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
			defer cancel()
			var warnings []string
			users := 0
			st, err := client.ListUsers(ctx, graph.Query{Select: []string{"id"}, PageSize: 10}, graph.Sink{
				User: func(int, []byte) error { users++; return nil },
				Warn: func(msg string) { warnings = append(warnings, msg) },
			})
			retries := min(tt.failures, 6)
			if tt.wantErr {
				var re *graph.ResponseError
				require.ErrorAs(t, err, &re)
				assert.Equal(t, tt.status, re.StatusCode)
			} else {
				require.NoError(t, err)
				assert.Equal(t, 5, users)
			}
			assert.Equal(t, retries, st.Retries)
			assert.Equal(t, retries+1, ft.Graph.Requests())
			require.Len(t, warnings, retries)
			for k, w := range warnings {
				assert.True(t, strings.HasSuffix(w, fmt.Sprintf("; retry %d of 6 in 0s", k+1)), "%s", w)
			}
		})
	}
}
