package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"graphuserstimer/internal/fakeazure"
)

// on applies a fault to one attempt at one page and serves everything else.
func on(page, attempt int, f fakeazure.Fault) func(fakeazure.PageRequest) fakeazure.Fault {
	return func(pr fakeazure.PageRequest) fakeazure.Fault {
		if pr.Page == page && pr.Attempt == attempt {
			return f
		}
		return fakeazure.Fault{}
	}
}

// atOffset applies a fault to every attempt at the page that starts at
// user offset.
func atOffset(offset int, f fakeazure.Fault) func(fakeazure.PageRequest) fakeazure.Fault {
	return func(pr fakeazure.PageRequest) fakeazure.Fault {
		if pr.Offset == offset {
			return f
		}
		return fakeazure.Fault{}
	}
}

// always applies a fault to every attempt at one page.
func always(page int, f fakeazure.Fault) func(fakeazure.PageRequest) fakeazure.Fault {
	return func(pr fakeazure.PageRequest) fakeazure.Fault {
		if pr.Page == page {
			return f
		}
		return fakeazure.Fault{}
	}
}

// each chains faults: the first that is not the zero Fault wins.
func each(fs ...func(fakeazure.PageRequest) fakeazure.Fault) func(fakeazure.PageRequest) fakeazure.Fault {
	return func(pr fakeazure.PageRequest) fakeazure.Fault {
		for _, f := range fs {
			if got := f(pr); !got.IsZero() {
				return got
			}
		}
		return fakeazure.Fault{}
	}
}

func header(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return h
}

// outcome is what one faulty run produced.
type outcome struct {
	status  int
	logs    []string
	ids     map[string]int
	summary map[string]any
	stdout  string
	stderr  string
}

// invokeOnce runs the whole program against az, invokes it once, and stops it.
func invokeOnce(t *testing.T, az *azure, env map[string]string) outcome {
	t.Helper()
	h := startHandler(t, env)
	inv, err := h.host.Invoke(context.Background(), "GraphUsersTimer", invocationBody(t, "timer.json"))
	require.NoError(t, err)
	resp := decodeResponse(t, inv)
	require.NoError(t, h.stop())

	o := outcome{status: inv.Status, logs: resp.Logs, ids: map[string]int{}, stdout: h.stdout.String(), stderr: h.stderr.String()}
	for _, line := range jsonLines(t, o.stdout) {
		switch line["msg"] {
		case "user":
			o.ids[line["id"].(string)]++
		case "users listed":
			o.summary = line
		}
	}
	for _, out := range []string{o.stdout, o.stderr, string(inv.Body)} {
		assert.NotContains(t, out, az.token, "no token in any output")
		assert.NotContains(t, out, az.header, "no IDENTITY_HEADER in any output")
		assert.NotContains(t, strings.ToLower(out), "bearer ", "no Authorization value in any output")
	}
	return o
}

func TestFaultsEveryUserOnceOrAClearFailure(t *testing.T) {
	const users, top = 250, 50 // five pages
	foreign := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("a request reached the foreign host: %s %s", r.Method, r.URL)
	}))
	defer foreign.Close()

	tests := []struct {
		name    string
		fault   func(fakeazure.PageRequest) fakeazure.Fault
		env     map[string]string
		wantErr []string       // nil: the run succeeds with every user once
		stats   map[string]int // summary fields on success
		logs    []string       // words in the response's Logs
	}{
		{
			name:  "429 with a fractional Retry-After",
			fault: on(2, 1, fakeazure.Fault{Status: 429, Code: "TooManyRequests", Header: header("Retry-After", "0.05")}),
			stats: map[string]int{"retries": 1, "throttled": 1},
			logs:  []string{"429", "retry 1 of 6 in 50ms"},
		},
		{
			name:  "429 with retry-after-ms",
			fault: on(1, 1, fakeazure.Fault{Status: 429, Header: header("retry-after-ms", "30")}),
			stats: map[string]int{"retries": 1, "throttled": 1},
			logs:  []string{"in 30ms"},
		},
		{
			name:  "503 then 504 with Retry-After",
			fault: each(on(0, 1, fakeazure.Fault{Status: 503, Header: header("Retry-After", "0.01")}), on(0, 2, fakeazure.Fault{Status: 504, Header: header("Retry-After", "0.02")})),
			stats: map[string]int{"retries": 2, "throttled": 2},
		},
		{
			name:  "500 without a Retry-After backs off",
			fault: on(3, 1, fakeazure.Fault{Status: 500, Code: "UnknownError"}),
			stats: map[string]int{"retries": 1, "throttled": 0},
		},
		{
			name:  "a body cut after half its users",
			fault: on(2, 1, fakeazure.Fault{Cut: true, CutAfterUsers: 25}),
			stats: map[string]int{"retries": 1},
			logs:  []string{"page 3: the page broke off after 25 of its users"},
		},
		{
			name:  "a body cut twice at different users",
			fault: each(on(1, 1, fakeazure.Fault{Cut: true, CutAfterUsers: 10}), on(1, 2, fakeazure.Fault{Cut: true, CutAfterUsers: 40})),
			stats: map[string]int{"retries": 2},
		},
		{
			name:  "a body cut before its first user",
			fault: on(0, 1, fakeazure.Fault{Cut: true}),
			stats: map[string]int{"retries": 1},
		},
		{
			name:  "a page that is not JSON",
			fault: on(4, 1, fakeazure.Fault{Garbage: true}),
			stats: map[string]int{"retries": 1},
		},
		{
			name:  "the nextLink after value",
			fault: func(fakeazure.PageRequest) fakeazure.Fault { return fakeazure.Fault{LinkAfterValue: true} },
			stats: map[string]int{"retries": 0, "pages": 5},
		},
		{
			name:  "an expired page token restarts the listing",
			fault: on(3, 1, fakeazure.Fault{Status: 400, Code: "Directory_ExpiredPageToken", Message: "The specified page token value has expired and can no longer be included in your request."}),
			stats: map[string]int{"restarts": 1, "pages": 8},
			logs:  []string{"page token expired after 150 users on 3 pages", "listing again from the first page"},
		},
		{
			name:    "a page token that always expires",
			fault:   always(1, fakeazure.Fault{Status: 400, Code: "Directory_ExpiredPageToken", Message: "The specified page token value has expired."}),
			wantErr: []string{"stopped after 50 users", "Directory_ExpiredPageToken", "400"},
		},
		{
			name:    "a nextLink to another host",
			fault:   on(1, 1, fakeazure.Fault{NextLink: foreign.URL + "/v1.0/users?$skiptoken=steal"}),
			wantErr: []string{"refusing to send the token to " + foreign.URL, "GRAPH_ENDPOINT", "stopped after 100 users on 2 pages"},
		},
		{
			name:    "a nextLink to another scheme and port",
			fault:   on(0, 1, fakeazure.Fault{NextLink: "https://127.0.0.1:1/v1.0/users"}),
			wantErr: []string{"refusing to send the token to https://127.0.0.1:1", "stopped after 50 users on 1 page"},
		},
		{
			name:    "a 307 to another port of this host",
			fault:   on(1, 1, fakeazure.Fault{Status: 307, Header: header("Location", foreign.URL+"/v1.0/users?$skiptoken=steal")}),
			wantErr: []string{"refusing to follow a 307 redirect to " + foreign.URL, "GRAPH_ENDPOINT", "stopped after 50 users on 1 page"},
		},
		{
			name:  "a 307 on Graph's own origin is followed",
			fault: on(1, 1, fakeazure.Fault{Status: 307, Header: header("Location", "/v1.0/users?$top=50&$skiptoken="+fakeazure.SkipToken(50, 1))}),
			stats: map[string]int{"retries": 0, "pages": 5},
		},
		{
			name:  "Graph sends ten users twice",
			fault: atOffset(50, fakeazure.Fault{NextLink: "/v1.0/users?$top=50&$skiptoken=" + fakeazure.SkipToken(90, 2)}),
			stats: map[string]int{"duplicates": 10},
			logs:  []string{"10 users Graph sent twice logged once"},
		},
		{
			name: "a nextLink that leads back to a page already read",
			fault: func(pr fakeazure.PageRequest) fakeazure.Fault {
				if pr.Offset == 50 || pr.Offset == 100 {
					return fakeazure.Fault{NextLink: "/v1.0/users?$top=50&$skiptoken=" + fakeazure.SkipToken(100, 2)}
				}
				return fakeazure.Fault{}
			},
			wantErr: []string{"leads back to a page already read", "stopped after 150 users on 3 pages"},
		},
		{
			name:  "a 401 mid-run, then a new token works",
			fault: on(2, 1, fakeazure.Fault{Status: 401, Code: "InvalidAuthenticationToken", Message: "Lifetime validation failed, the token is expired."}),
			stats: map[string]int{"retries": 1},
			logs:  []string{"Graph refused the token; trying again with a new one"},
		},
		{
			name:    "a 401 mid-run, and for the new token too",
			fault:   always(2, fakeazure.Fault{Status: 401, Code: "InvalidAuthenticationToken"}),
			wantErr: []string{"rejected the token mid-run, after 2 pages", "401", "stopped after 100 users on 2 pages"},
		},
		{
			name:    "403 without User.Read.All",
			fault:   always(0, fakeazure.Fault{Status: 403, Code: "Authorization_RequestDenied", Message: "Insufficient privileges to complete the operation."}),
			wantErr: []string{"403", "Authorization_RequestDenied", "User.Read.All", "Grant User.Read.All to the identity"},
		},
		{
			name:    "429 on every attempt",
			fault:   always(2, fakeazure.Fault{Status: 429, Code: "TooManyRequests", Header: header("Retry-After", "0.01")}),
			wantErr: []string{"stopped after 100 users on 2 pages", "6 retries, 7 throttled", "429"},
		},
		{
			name:    "a Retry-After longer than a wait may be",
			fault:   on(0, 1, fakeazure.Fault{Status: 429, Header: header("Retry-After", "120")}),
			wantErr: []string{"graph asked to wait 2m0s, over the 1m0s limit", "429"},
		},
		{
			name:  "a Graph slower than the run's deadline",
			fault: func(fakeazure.PageRequest) fakeazure.Fault { return fakeazure.Fault{Delay: 150 * time.Millisecond} },
			env:   map[string]string{"GRAPH_USERS_RUN_TIMEOUT": "400ms"},
			// How far it got depends on the machine's load; that it says so does not.
			wantErr: []string{"stopped after ", " users on ", "the run reached its deadline of 400ms", "GRAPH_USERS_RUN_TIMEOUT"},
		},
		{
			name:    "a throttled wait that would pass the deadline",
			fault:   on(1, 1, fakeazure.Fault{Status: 429, Header: header("Retry-After", "30")}),
			env:     map[string]string{"GRAPH_USERS_RUN_TIMEOUT": "5s"},
			wantErr: []string{"stopped after 50 users on 1 page", "waiting 30s to retry would pass the run's deadline"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var az *azure
			az = newFaultyAzure(t, users, func(pr fakeazure.PageRequest) fakeazure.Fault {
				f := tt.fault(pr)
				// A link written from the root is Graph's own: absolute.
				if strings.HasPrefix(f.NextLink, "/") {
					f.NextLink = az.graphURL + f.NextLink
				}
				return f
			})
			env := az.settings(t)
			env["GRAPH_USERS_PAGE_SIZE"] = "50"
			for k, v := range tt.env {
				env[k] = v
			}
			start := time.Now()
			o := invokeOnce(t, az, env)

			if tt.wantErr != nil {
				assert.Equal(t, 500, o.status)
				require.NotEmpty(t, o.logs)
				for _, w := range tt.wantErr {
					assert.Contains(t, o.logs[len(o.logs)-1], w)
					assert.Contains(t, o.stderr, w, "the failure's reason is on stderr")
				}
				assert.Nil(t, o.summary)
				for id, n := range o.ids {
					assert.Equal(t, 1, n, "user %s is logged once even in a failed run", id)
				}
				assert.Less(t, time.Since(start), 10*time.Second)
				return
			}
			require.Equal(t, 200, o.status, "logs %v\nstderr %s", o.logs, o.stderr)
			require.Len(t, o.ids, users, "every user")
			for i := range users {
				assert.Equal(t, 1, o.ids[fakeazure.UserID(i)], "user %d exactly once", i)
			}
			require.NotNil(t, o.summary)
			assert.Equal(t, float64(users), o.summary["users"])
			for k, v := range tt.stats {
				assert.Equal(t, float64(v), o.summary[k], k)
			}
			for _, w := range tt.logs {
				assert.Contains(t, strings.Join(o.logs, "\n"), w)
			}
			if tt.stats["retries"] > 0 || tt.stats["restarts"] > 0 {
				assert.Contains(t, o.stderr, `"level":"warn"`, "retries and restarts are warnings on stderr")
			}
		})
	}
}

func TestAnInvocationDuringARunStartsNoSecondListing(t *testing.T) {
	var slow atomic.Bool
	slow.Store(true)
	az := newFaultyAzure(t, 120, func(pr fakeazure.PageRequest) fakeazure.Fault {
		if pr.Page == 0 && slow.Load() {
			return fakeazure.Fault{Delay: 500 * time.Millisecond}
		}
		return fakeazure.Fault{}
	})
	env := az.settings(t)
	env["GRAPH_USERS_PAGE_SIZE"] = "50"
	h := startHandler(t, env)

	first := make(chan fakeazure.Invocation, 1)
	go func() {
		inv, err := h.host.Invoke(context.Background(), "GraphUsersTimer", invocationBody(t, "timer.json"))
		assert.NoError(t, err)
		first <- inv
	}()
	require.Eventually(t, func() bool { return az.graph.Requests() == 1 }, 5*time.Second, time.Millisecond)

	second, err := h.host.Invoke(context.Background(), "GraphUsersTimer", invocationBody(t, "timer-past-due-first-run.json"))
	require.NoError(t, err)
	assert.Equal(t, 200, second.Status)
	assert.Contains(t, decodeResponse(t, second).Logs[0], "already in progress")
	select {
	case <-first:
		t.Fatal("the second invocation waited for the first")
	default:
	}

	inv := <-first
	assert.Equal(t, 200, inv.Status)
	assert.Contains(t, decodeResponse(t, inv).Logs[0], "Listed 120 users on 3 pages")
	assert.Equal(t, 3, az.graph.Requests(), "one listing")
}

func TestTokenEndpointFaults(t *testing.T) {
	once := func(f fakeazure.Fault) func(int) fakeazure.Fault {
		return func(attempt int) fakeazure.Fault {
			if attempt == 1 {
				return f
			}
			return fakeazure.Fault{}
		}
	}
	tests := []struct {
		name    string
		fault   func(int) fakeazure.Fault
		env     map[string]string
		wantErr []string // nil: the run succeeds with every user
	}{
		{
			name:    "a token endpoint that hangs",
			fault:   func(int) fakeazure.Fault { return fakeazure.Fault{Delay: time.Minute} },
			env:     map[string]string{"GRAPH_USERS_RUN_TIMEOUT": "1s"},
			wantErr: []string{"get a token for", "the identity endpoint (App Service, IDENTITY_ENDPOINT http://127.0.0.1:", "gave no token", "AZURE_CLIENT_ID"},
		},
		{name: "a 503 is retried", fault: once(fakeazure.Fault{Status: 503, Header: header("Retry-After", "0")})},
		{name: "a 429 is retried", fault: once(fakeazure.Fault{Status: 429, Header: header("Retry-After", "0")})},
		{name: "a token response cut off is retried", fault: once(fakeazure.Fault{Cut: true})},
		{
			name:    "a token response that is not JSON",
			fault:   func(int) fakeazure.Fault { return fakeazure.Fault{Garbage: true} },
			wantErr: []string{"get a token for", "ManagedIdentityCredential", "AZURE_CLIENT_ID", "stopped after 0 users on 0 pages"},
		},
		{
			name:    "a 403 from the token endpoint",
			fault:   func(int) fakeazure.Fault { return fakeazure.Fault{Status: 403, Message: "Forbidden by policy."} },
			wantErr: []string{"get a token for", "403", "AZURE_CLIENT_ID"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			az := newAzureWith(t, 120, nil, tt.fault)
			env := az.settings(t)
			env["GRAPH_USERS_PAGE_SIZE"] = "50"
			for k, v := range tt.env {
				env[k] = v
			}
			o := invokeOnce(t, az, env)
			if tt.wantErr != nil {
				assert.Equal(t, 500, o.status)
				for _, w := range tt.wantErr {
					assert.Contains(t, o.logs[len(o.logs)-1], w)
					assert.Contains(t, o.stderr, w)
				}
				t.Log(o.logs[len(o.logs)-1])
				assert.Zero(t, az.graph.Requests(), "no token, no request to Graph")
				return
			}
			require.Equal(t, 200, o.status, "logs %v\nstderr %s", o.logs, o.stderr)
			assert.Len(t, o.ids, 120)
			assert.Equal(t, 1, az.identity.Requests(), "one token, after the retry")
		})
	}
}
