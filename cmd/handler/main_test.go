package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"graphuserstimer/internal/fakeazure"
)

// syncBuffer is a bytes.Buffer that the handler writes to while the test
// reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func freePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

// azure is a fake Azure for one test: the App Service identity endpoint and
// Graph, on loopback over http, as in a local run.
type azure struct {
	clientID, header, token string
	identity                *fakeazure.Identity
	graph                   *fakeazure.Graph
	identityURL, graphURL   string
}

func newAzure(t *testing.T, users int) *azure {
	t.Helper()
	return newFaultyAzure(t, users, nil)
}

// newFaultyAzure is newAzure with a fake Graph that does what fault says.
func newFaultyAzure(t *testing.T, users int, fault func(fakeazure.PageRequest) fakeazure.Fault) *azure {
	t.Helper()
	return newAzureWith(t, users, fault, nil)
}

// newAzureWith is newAzure with a fake Graph and a fake identity endpoint
// that do what their faults say.
func newAzureWith(t *testing.T, users int, fault func(fakeazure.PageRequest) fakeazure.Fault, tokenFault func(int) fakeazure.Fault) *azure {
	t.Helper()
	return newAzureFrom(t, fakeazure.GraphOptions{Users: users, Fault: fault}, tokenFault)
}

// newAzureFrom is newAzure with a fake Graph configured by o, whose Token is
// the fake Azure's, and a fake identity endpoint that does what tokenFault
// says.
func newAzureFrom(t *testing.T, o fakeazure.GraphOptions, tokenFault func(int) fakeazure.Fault) *azure {
	t.Helper()
	return fromTenant(fakeazure.NewTenant(t, fakeazure.TenantOptions{Graph: o, TokenFault: tokenFault, AppService: true}))
}

// fromTenant is the fake Azure of a tenant in App Service mode.
func fromTenant(tn *fakeazure.Tenant) *azure {
	return &azure{
		clientID: tn.ClientID, header: tn.Header, token: tn.Token,
		identity: tn.Identity, graph: tn.Graph,
		identityURL: tn.IdentityEndpoint, graphURL: tn.URL.String(),
	}
}

// settings are the app settings the host would pass for this fake Azure.
func (a *azure) settings(t *testing.T) map[string]string {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	require.NoError(t, err)
	return map[string]string{
		"FUNCTIONS_CUSTOMHANDLER_PORT": freePort(t),
		"FUNCTIONS_APP_ROOT_PATH":      root,
		"AZURE_CLIENT_ID":              a.clientID,
		"IDENTITY_ENDPOINT":            a.identityURL,
		"IDENTITY_HEADER":              a.header,
		"GRAPH_ENDPOINT":               a.graphURL,
		"GRAPH_USERS_SCHEDULE":         "0 0 * * * *",
		// One cursor: the tests of streams say so.
		"GRAPH_USERS_PARALLEL": "1",
	}
}

// handler is the whole program running in-process.
type handler struct {
	host           fakeazure.Host
	stdout, stderr *syncBuffer
	stop           func() error
}

func startHandler(t *testing.T, env map[string]string) *handler {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	h := &handler{
		host:   fakeazure.Host{URL: "http://127.0.0.1:" + env["FUNCTIONS_CUSTOMHANDLER_PORT"]},
		stdout: &syncBuffer{}, stderr: &syncBuffer{},
	}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"handler"}, func(k string) string { return env[k] }, h.stdout, h.stderr)
	}()
	var once sync.Once
	var runErr error
	h.stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(15 * time.Second):
				runErr = fmt.Errorf("run did not return after its context ended")
			}
		})
		return runErr
	}
	t.Cleanup(func() { _ = h.stop() })
	require.NoError(t, h.host.WaitReady(ctx), "stderr: %s", h.stderr)
	return h
}

func invocationBody(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "invocations", name))
	require.NoError(t, err)
	return b
}

// response is the invocation response's shape, with ReturnValue kept raw.
type response struct {
	Outputs     map[string]any  `json:"Outputs"`
	Logs        []string        `json:"Logs"`
	ReturnValue json.RawMessage `json:"ReturnValue"`
}

func decodeResponse(t *testing.T, inv fakeazure.Invocation) response {
	t.Helper()
	assert.Equal(t, "application/json", inv.Header.Get("Content-Type"))
	var r response
	require.NoError(t, json.Unmarshal(inv.Body, &r), "body %s", inv.Body)
	require.NotNil(t, r.Outputs, "Outputs is an object, never null")
	assert.Empty(t, r.Outputs)
	assert.Equal(t, "null", string(r.ReturnValue))
	return r
}

// jsonLines decodes every stdout line, failing on any that is not JSON.
func jsonLines(t *testing.T, out string) []map[string]any {
	t.Helper()
	var lines []map[string]any
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &m), "stdout line %q is not JSON", sc.Text())
		lines = append(lines, m)
	}
	return lines
}

func TestRunListsEveryUserForATimerInvocation(t *testing.T) {
	const users = 2345
	az := newAzure(t, users)
	env := az.settings(t)
	env["GRAPH_USERS_PAGE_SIZE"] = "100"
	env["GRAPH_USERS_SELECT"] = "displayName,userPrincipalName,mail,jobTitle"
	h := startHandler(t, env)

	inv, err := h.host.Invoke(context.Background(), "GraphUsersTimer", invocationBody(t, "timer.json"))
	require.NoError(t, err)
	require.Equal(t, 200, inv.Status, "body %s, stderr %s", inv.Body, h.stderr)
	resp := decodeResponse(t, inv)
	require.Len(t, resp.Logs, 1, "the response carries the summary, not one line per user")
	assert.Contains(t, resp.Logs[0], "Listed 2345 users on 24 pages")
	require.NoError(t, h.stop())

	ids := map[string]int{}
	var summary map[string]any
	var progress []any
	for _, line := range jsonLines(t, h.stdout.String()) {
		switch line["msg"] {
		case "progress":
			progress = append(progress, line["pages"])
			assert.Contains(t, line, "users_per_s")
		case "user":
			id, _ := line["id"].(string)
			ids[id]++
			assert.Equal(t, "info", line["level"])
			for _, p := range []string{"time", "displayName", "userPrincipalName", "mail", "jobTitle"} {
				assert.Contains(t, line, p, "user %s", id)
			}
			assert.Len(t, line, 8, "time, level, msg, id and the four selected properties")
		case "users listed":
			summary = line
		}
	}
	require.Len(t, ids, users, "one line per user")
	for i := range users {
		assert.Equal(t, 1, ids[fakeazure.UserID(i)], "user %d is logged once", i)
	}
	assert.Equal(t, []any{10.0, 20.0}, progress, "a progress line every ten pages")
	require.NotNil(t, summary, "a summary line")
	assert.Equal(t, float64(users), summary["users"])
	assert.Equal(t, float64(24), summary["pages"])
	for _, k := range []string{"duration_ms", "retries", "throttled"} {
		assert.Contains(t, summary, k)
	}
	assert.Equal(t, []string{az.graphURL}, az.identity.Resources(), "one token, for GRAPH_ENDPOINT's resource")
}

func TestRunGetsOneTokenForManyInvocations(t *testing.T) {
	az := newAzure(t, 30)
	h := startHandler(t, az.settings(t))

	for _, file := range []string{"timer.json", "timer-monitor-off.json", "timer-past-due-first-run.json", "timer-retry.json", "timer-unknown-fields.json"} {
		inv, err := h.host.Invoke(context.Background(), "GraphUsersTimer", invocationBody(t, file))
		require.NoError(t, err)
		require.Equal(t, 200, inv.Status, "%s: %s", file, inv.Body)
		assert.Contains(t, decodeResponse(t, inv).Logs[0], "Listed 30 users on 1 page", file)
	}
	assert.Equal(t, 1, az.identity.Requests(), "the credential is built once and its token reused")
	assert.Equal(t, 5, az.graph.Requests())
}

func TestRunRejectsBadRequestsAndKeepsServing(t *testing.T) {
	az := newAzure(t, 3)
	h := startHandler(t, az.settings(t))
	tests := []struct {
		name, method, path string
		body               []byte
		status             int
	}{
		{"invalid JSON", "POST", "/GraphUsersTimer", []byte(`{"Data":`), 400},
		{"a body over 1 MiB", "POST", "/GraphUsersTimer", bytes.Repeat([]byte(" "), 1<<20+1), 413},
		{"the wrong method", "GET", "/GraphUsersTimer", nil, 405},
		{"an unknown function", "POST", "/OtherFunction", []byte(`{}`), 404},
		{"a path with the wrong case", "POST", "/graphuserstimer", []byte(`{}`), 404},
		{"a readiness probe with POST", "POST", "/", []byte(`{}`), 405},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, h.host.URL+tt.path, bytes.NewReader(tt.body))
			req.RequestURI = ""
			resp, err := httpClient.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			assert.Equal(t, tt.status, resp.StatusCode)
			assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
			var body struct{ Error string }
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
			assert.NotEmpty(t, body.Error)
		})
	}

	inv, err := h.host.Invoke(context.Background(), "GraphUsersTimer", invocationBody(t, "timer.json"))
	require.NoError(t, err)
	assert.Equal(t, 200, inv.Status, "the handler still serves after bad requests")
}

func TestRunFailsAnInvocationWithItsReasonOnStderr(t *testing.T) {
	tests := []struct {
		name  string
		setup func(a *azure, env map[string]string)
		want  []string
	}{
		{
			name: "an identity not assigned to the app",
			setup: func(a *azure, env map[string]string) {
				env["AZURE_CLIENT_ID"] = fakeazure.NewClientID()
			},
			want: []string{"not assigned to this Function App", "AZURE_CLIENT_ID", "400"},
		},
		{
			name: "a token Graph does not accept",
			setup: func(a *azure, env map[string]string) {
				other := httptest.NewServer(fakeazure.NewGraph(fakeazure.GraphOptions{Users: 3, Token: "another-token"}))
				t.Cleanup(other.Close)
				env["GRAPH_ENDPOINT"] = other.URL
			},
			want: []string{"401", "InvalidAuthenticationToken", "GRAPH_ENDPOINT"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			az := newAzure(t, 3)
			env := az.settings(t)
			tt.setup(az, env)
			h := startHandler(t, env)

			inv, err := h.host.Invoke(context.Background(), "GraphUsersTimer", invocationBody(t, "timer.json"))
			require.NoError(t, err)
			assert.Equal(t, 500, inv.Status)
			resp := decodeResponse(t, inv)
			require.NotEmpty(t, resp.Logs)
			require.NoError(t, h.stop())

			stderr := h.stderr.String()
			for _, w := range tt.want {
				assert.Contains(t, resp.Logs[len(resp.Logs)-1], w)
				assert.Contains(t, stderr, w, "the host throws a failed body away: stderr keeps the reason")
			}
			for _, out := range []string{h.stdout.String(), stderr, string(inv.Body)} {
				assert.NotContains(t, out, az.token)
				assert.NotContains(t, out, az.header)
			}
		})
	}
}

func TestRunRefusesBadSettingsNamingEach(t *testing.T) {
	env := map[string]string{
		"FUNCTIONS_CUSTOMHANDLER_PORT": "eighty",
		"GRAPH_ENDPOINT":               "http://graph.example.com",
		"GRAPH_USERS_PAGE_SIZE":        "5000",
	}
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), nil, func(k string) string { return env[k] }, &stdout, &stderr)
	require.Error(t, err)
	for _, name := range []string{"FUNCTIONS_CUSTOMHANDLER_PORT", "AZURE_CLIENT_ID", "GRAPH_ENDPOINT", "GRAPH_USERS_PAGE_SIZE"} {
		assert.Contains(t, err.Error(), name)
	}
	assert.Empty(t, stdout.String())
}

func TestRunRefusesAnAppRootWithoutTheFunction(t *testing.T) {
	env := map[string]string{"AZURE_CLIENT_ID": fakeazure.NewClientID(), "GRAPH_USERS_SCHEDULE": "0 0 * * * *", "FUNCTIONS_APP_ROOT_PATH": t.TempDir()}
	err := run(context.Background(), nil, func(k string) string { return env[k] }, &bytes.Buffer{}, &bytes.Buffer{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "FUNCTIONS_APP_ROOT_PATH")
}

var httpClient = &http.Client{Timeout: 30 * time.Second}

func TestRunWritesUserLinesAndTheSummaryWhateverTheLogLevel(t *testing.T) {
	for _, level := range []string{"warn", "error"} {
		t.Run(level, func(t *testing.T) {
			az := newAzure(t, 1500)
			env := az.settings(t)
			env["LOG_LEVEL"] = level
			h := startHandler(t, env)
			inv, err := h.host.Invoke(context.Background(), "GraphUsersTimer", invocationBody(t, "timer.json"))
			require.NoError(t, err)
			require.Equal(t, 200, inv.Status)
			require.NoError(t, h.stop())

			users, summaries := 0, 0
			for _, line := range jsonLines(t, h.stdout.String()) {
				switch line["msg"] {
				case "user":
					users++
				case "users listed":
					summaries++
					assert.Equal(t, 1500.0, line["users"])
				case "handler ready", "invocation started", "progress":
					t.Errorf("a diagnostic info line at LOG_LEVEL=%s: %v", level, line)
				}
			}
			assert.Equal(t, 1500, users, "user lines are the job's output")
			assert.Equal(t, 1, summaries)
		})
	}
}
