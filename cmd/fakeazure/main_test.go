package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"graphuserstimer/internal/fakeazure"
)

// lockedBuffer is a bytes.Buffer the servers' goroutines can write while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func noEnv(string) string { return "" }

var readyLine = regexp.MustCompile(`^IDENTITY_ENDPOINT=(http://127\.0\.0\.1:\d+/msi/token) GRAPH_ENDPOINT=(http://127\.0\.0\.1:\d+) users=25\n$`)

func TestRunServesTheFakesUntilTheContextEnds(t *testing.T) {
	const header = "distinctive-identity-header"
	// MSAL caches tokens process-wide by identity: a fresh client ID keeps a token from an
	// earlier run (-count=2) from being reused against this run's token.
	clientID := fakeazure.NewClientID()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stdout, stdoutW := io.Pipe()
	var stderr lockedBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-users", "25", "-identity-addr", "127.0.0.1:0", "-graph-addr", "127.0.0.1:0",
			"-client-id", clientID, "-identity-header", header}, noEnv, stdoutW, &stderr)
		stdoutW.Close()
	}()

	line, err := bufio.NewReader(stdout).ReadString('\n')
	require.NoError(t, err, "stderr: %s", stderr.String())
	m := readyLine.FindStringSubmatch(line)
	require.NotNil(t, m, "ready line %q", line)
	identityEndpoint, graphEndpoint := m[1], m[2]

	t.Setenv("IDENTITY_ENDPOINT", identityEndpoint)
	t.Setenv("IDENTITY_HEADER", header)
	t.Setenv("IDENTITY_SERVER_THUMBPRINT", "")
	cred, err := azidentity.NewManagedIdentityCredential(&azidentity.ManagedIdentityCredentialOptions{ID: azidentity.ClientID(clientID)})
	require.NoError(t, err)
	tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://graph.microsoft.com/.default"}})
	require.NoError(t, err)

	var ids []string
	pages := 0
	for link := graphEndpoint + "/v1.0/users?$select=id&$top=10"; link != ""; pages++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, link, nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+tok.Token)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		var page struct {
			NextLink string `json:"@odata.nextLink"`
			Value    []struct{ ID string }
		}
		err = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		for _, u := range page.Value {
			ids = append(ids, u.ID)
		}
		link = page.NextLink
	}
	require.Len(t, ids, 25)
	for i, id := range ids {
		assert.Equal(t, fakeazure.UserID(i), id)
	}

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after the context ended")
	}
	logs := stderr.String()
	assert.Equal(t, 1, strings.Count(logs, "server=identity method=GET path=/msi/token status=200"), logs)
	assert.Equal(t, pages, strings.Count(logs, "server=graph method=GET path=/v1.0/users status=200"), logs)
	assert.NotContains(t, logs, tok.Token)
	assert.NotContains(t, logs, header)
	assert.NotContains(t, logs, "skiptoken")
}

func TestRunRefusesToListenBeyondLoopback(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:7172", ":7172", "192.0.2.1:7172", "localhost:7172", "[::]:7172"} {
		t.Run(addr, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), []string{"-identity-addr", "127.0.0.1:0", "-graph-addr", addr}, noEnv, &stdout, &stderr)

			require.Error(t, err)
			assert.Contains(t, err.Error(), "-graph-addr")
			assert.Contains(t, err.Error(), "not a loopback address")
			assert.Empty(t, stdout.String(), "no ready line")
		})
	}
}

func TestRunRefusesBadFlags(t *testing.T) {
	for _, args := range [][]string{{"-users", "-1"}, {"-users", "many"}, {"extra"}, {"-latency", "-1s"}, {"-latency", "soon"}, {"-bytes-per-second", "-5"}} {
		var stdout, stderr bytes.Buffer
		assert.Error(t, run(context.Background(), args, noEnv, &stdout, &stderr), "%q", args)
		assert.Empty(t, stdout.String())
	}
}
