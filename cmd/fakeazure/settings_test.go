package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"graphuserstimer/internal/config"
	"graphuserstimer/internal/fakeazure"
)

// flagDefaults reads the defaults -h prints: what `make fake`, which passes
// only -users, runs with.
func flagDefaults(t *testing.T) map[string]string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"-h"}, noEnv, &stdout, &stderr))
	defaults := map[string]string{}
	usage := regexp.MustCompile(`(?m)^\s+-([a-z-]+)[^\n]*\n(?:\s{4,}[^\n]*\n)*?[^\n]*\(default "([^"]*)"\)`)
	for _, m := range usage.FindAllStringSubmatch(stderr.String(), -1) {
		defaults[m[1]] = m[2]
	}
	require.NotEmpty(t, defaults, "usage: %s", stderr.String())
	return defaults
}

// TestLocalSettingsExampleWorksAsIsWithMakeFake checks that the settings
// `func start` gives the handler name the fakes `make fake` starts, and that
// the handler accepts them.
func TestLocalSettingsExampleWorksAsIsWithMakeFake(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "local.settings.json.example"))
	require.NoError(t, err)
	var ls struct {
		IsEncrypted bool
		Values      map[string]string
	}
	require.NoError(t, json.Unmarshal(b, &ls))
	assert.False(t, ls.IsEncrypted)
	v := ls.Values

	d := flagDefaults(t)
	assert.Equal(t, "http://"+d["identity-addr"]+fakeazure.AppServicePath, v["IDENTITY_ENDPOINT"])
	assert.Equal(t, d["identity-header"], v["IDENTITY_HEADER"])
	assert.Equal(t, "http://"+d["graph-addr"], v["GRAPH_ENDPOINT"])
	assert.Equal(t, d["client-id"], v["AZURE_CLIENT_ID"])
	assert.Equal(t, "custom", v["FUNCTIONS_WORKER_RUNTIME"], "a custom handler")
	assert.Equal(t, "UseDevelopmentStorage=true", v["AzureWebJobsStorage"], "the timer's storage is Azurite")

	_, err = config.Load(func(k string) string { return v[k] })
	assert.NoError(t, err, "the handler starts with these settings")
}

// TestRunServesTheDirectorySoGrantCanBeTriedLocally does with HTTP what
// `grant -auth managed-identity` does against the fakes: the fake identity's
// token finds its own service principal and assigns it User.Read.All.
func TestRunServesTheDirectorySoGrantCanBeTriedLocally(t *testing.T) {
	const header = "another-identity-header"
	clientID := fakeazure.NewClientID()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stdout, stdoutW := io.Pipe()
	var stderr lockedBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-users", "1", "-identity-addr", "127.0.0.1:0", "-graph-addr", "127.0.0.1:0",
			"-client-id", clientID, "-identity-header", header}, noEnv, stdoutW, &stderr)
		stdoutW.Close()
	}()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	require.NoError(t, err, "stderr: %s", stderr.String())
	m := regexp.MustCompile(`^IDENTITY_ENDPOINT=(\S+) GRAPH_ENDPOINT=(\S+) `).FindStringSubmatch(line)
	require.NotNil(t, m, line)
	t.Setenv("IDENTITY_ENDPOINT", m[1])
	t.Setenv("IDENTITY_HEADER", header)
	graph := m[2]

	cred, err := azidentity.NewManagedIdentityCredential(&azidentity.ManagedIdentityCredentialOptions{ID: azidentity.ClientID(clientID)})
	require.NoError(t, err)
	tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{graph + "/.default"}})
	require.NoError(t, err)
	call := func(method, target, body string) (int, map[string]any) {
		req, err := http.NewRequestWithContext(ctx, method, target, strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+tok.Token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		var out map[string]any
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
		return resp.StatusCode, out
	}
	lookup := func(appID string) map[string]any {
		status, out := call(http.MethodGet, graph+"/v1.0/servicePrincipals?$filter="+url.QueryEscape("appId eq '"+appID+"'"), "")
		require.Equal(t, http.StatusOK, status, out)
		require.Len(t, out["value"], 1, out)
		return out["value"].([]any)[0].(map[string]any)
	}

	me, graphSP := lookup(clientID), lookup(fakeazure.GraphAppID)
	assert.Equal(t, "graphusers-id", me["displayName"])
	status, out := call(http.MethodPost, graph+"/v1.0/servicePrincipals/"+graphSP["id"].(string)+"/appRoleAssignedTo",
		fmt.Sprintf(`{"principalId":%q,"resourceId":%q,"appRoleId":"df021288-bdef-4463-88db-98f22de89214"}`, me["id"], graphSP["id"]))
	assert.Equal(t, http.StatusCreated, status, out)

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after the context ended")
	}
	assert.Contains(t, stderr.String(), "server=graph method=POST path=/v1.0/servicePrincipals/")
	assert.NotContains(t, stderr.String(), tok.Token)
}
