package main

import (
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAStartUpFailureIsWrittenAsEveryOtherLine(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "handler")
	buildHandler(t, bin, runtime.GOOS, runtime.GOARCH)
	cmd := exec.Command(bin)
	cmd.Env = []string{"GRAPH_USERS_SCHEDULE=0 0 * * * *"} // AZURE_CLIENT_ID is missing
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	cmd.Stdout, cmd.Stderr = stdout, stderr

	err := cmd.Run()
	var exit *exec.ExitError
	require.True(t, errors.As(err, &exit), "the handler exits with an error: %v", err)
	assert.Equal(t, 1, exit.ExitCode())
	assert.Empty(t, stdout.String())
	lines := assertEveryLineIsJSON(t, "stderr", stderr.String())
	require.Len(t, lines, 1, "one line says why")
	assert.Equal(t, "error", lines[0]["level"], "levels are lower case, as on every other line")
	assert.Equal(t, "handler stopped", lines[0]["msg"])
	assert.Contains(t, lines[0]["error"], "AZURE_CLIENT_ID")
}

func TestTheSDKsOwnLogIsWrittenAsJSONLines(t *testing.T) {
	az := newAzure(t, 120)
	env := az.settings(t)
	env["GRAPH_USERS_PAGE_SIZE"] = "50"
	env["AZURE_SDK_GO_LOGGING"] = "all"
	p := startProcess(t, env, "")

	inv, err := p.host.Invoke(context.Background(), "GraphUsersTimer", invocationBody(t, "timer.json"))
	require.NoError(t, err)
	require.Equal(t, 200, inv.Status, "body %s\nstderr %s", inv.Body, p.stderr)
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	err = <-p.exited
	p.exited <- err
	require.NoError(t, err, "stderr: %s", p.stderr)

	events := map[string]int{}
	users := 0
	for _, line := range assertEveryLineIsJSON(t, "stdout", p.stdout.String()) {
		switch line["msg"] {
		case "azure sdk":
			events[line["event"].(string)]++
			assert.NotEmpty(t, line["detail"])
		case "user":
			users++
		}
	}
	assertEveryLineIsJSON(t, "stderr", p.stderr.String())
	assert.Equal(t, 120, users)
	assert.Positive(t, events["Request"], "the SDK's request events are logged: %v", events)
	assert.Positive(t, events["Response"], "and its responses: %v", events)
	for _, out := range []string{p.stdout.String(), p.stderr.String()} {
		assert.NotContains(t, out, az.token)
		assert.NotContains(t, out, az.header)
	}
}
