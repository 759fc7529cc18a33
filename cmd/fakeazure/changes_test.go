package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"graphuserstimer/internal/fakeazure"
)

func post(t *testing.T, target, body string) (int, []byte) {
	t.Helper()
	resp, err := http.Post(target, "application/json", strings.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, raw
}

func TestChangesEndpointChangesTheTenantAndSaysHow(t *testing.T) {
	g := fakeazure.NewGraph(fakeazure.GraphOptions{Users: 50, Realistic: true})
	srv := httptest.NewServer(withChanges(g))
	t.Cleanup(srv.Close)

	status, raw := post(t, srv.URL+changesPath, `{"add":2,"update":3,"rename":1,"softDelete":4,"hardDelete":1}`)

	require.Equal(t, http.StatusOK, status, "%s", raw)
	var got changesResponse
	require.NoError(t, json.Unmarshal(raw, &got))
	require.Len(t, got.Added, 2)
	assert.Equal(t, changedUser{Index: 50, ID: fakeazure.UserID(50), UserPrincipalName: fakeazure.RealisticUPN(50)}, got.Added[0])
	assert.Len(t, got.Updated, 3)
	require.Len(t, got.Renamed, 1)
	assert.Equal(t, g.UPN(got.Renamed[0].Index), got.Renamed[0].UserPrincipalName)
	assert.NotEqual(t, fakeazure.RealisticUPN(got.Renamed[0].Index), got.Renamed[0].UserPrincipalName)
	assert.Len(t, got.SoftDeleted, 4)
	assert.Len(t, got.HardDeleted, 1)
	assert.Equal(t, 52-5, got.Listed)
	assert.Len(t, g.ListedUsers(), 47)

	status, raw = post(t, srv.URL+changesPath, `{"restore":10}`)
	require.Equal(t, http.StatusOK, status, "%s", raw)
	require.NoError(t, json.Unmarshal(raw, &got))
	assert.Len(t, got.Restored, 4, "only the soft-deleted come back")
}

func TestChangesEndpointRefusesWhatItCannotDo(t *testing.T) {
	g := fakeazure.NewGraph(fakeazure.GraphOptions{Users: 5})
	srv := httptest.NewServer(withChanges(g))
	t.Cleanup(srv.Close)

	for _, body := range []string{`{"ad":1}`, `{"add":-1}`, `{"add":200000}`, `[1]`, `{"add":1}{"add":1}`, ``} {
		status, raw := post(t, srv.URL+changesPath, body)
		assert.Equal(t, http.StatusBadRequest, status, "%s: %s", body, raw)
	}
	assert.Len(t, g.ListedUsers(), 5, "nothing changed")

	resp, err := http.Get(srv.URL + changesPath)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)

	resp, err = http.Get(srv.URL + "/v1.0/fakeazure/changes")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusNotFound, resp.StatusCode, "no Graph path reaches it")
}

func TestRunServesARealisticSlowTenantThatADemoCanChange(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stdout, stdoutW := io.Pipe()
	var stderr lockedBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-users", "30", "-realistic", "-latency", "150ms", "-identity-addr", "127.0.0.1:0",
			"-graph-addr", "127.0.0.1:0"}, noEnv, stdoutW, &stderr)
		stdoutW.Close()
	}()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	require.NoError(t, err, "stderr: %s", stderr.String())
	m := regexp.MustCompile(`GRAPH_ENDPOINT=(\S+) `).FindStringSubmatch(line)
	require.NotNil(t, m, line)
	graph := m[1]

	status, raw := post(t, graph+changesPath, `{"add":1}`)
	require.Equal(t, http.StatusOK, status, "%s", raw)
	var got changesResponse
	require.NoError(t, json.Unmarshal(raw, &got))
	assert.Equal(t, fakeazure.RealisticUPN(30), got.Added[0].UserPrincipalName, "-realistic names users as a directory does")
	assert.Equal(t, 31, got.Listed)

	start := time.Now()
	resp, err := http.Get(graph + "/v1.0/users")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	assert.GreaterOrEqual(t, time.Since(start), 150*time.Millisecond, "-latency delays Graph's answers")

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after the context ended")
	}
	assert.Contains(t, stderr.String(), "server=graph method=POST path=/fakeazure/changes status=200")
}
