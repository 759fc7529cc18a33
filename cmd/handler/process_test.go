package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"graphuserstimer/internal/fakeazure"
)

// process is the built handler running as the host runs it: a process of
// its own, with the app settings in its environment.
type process struct {
	cmd            *exec.Cmd
	host           fakeazure.Host
	stdout, stderr *syncBuffer
	exited         chan error
}

// startProcess builds the handler and starts it with env, through sh when
// shell is not empty (shell runs first, then execs the handler as "$0").
func startProcess(t *testing.T, env map[string]string, shell string) *process {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "handler")
	buildHandler(t, bin, runtime.GOOS, runtime.GOARCH)
	cmd := exec.Command(bin)
	if shell != "" {
		cmd = exec.Command("/bin/sh", "-c", shell+`; exec "$0"`, bin)
	}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	p := &process{cmd: cmd, host: fakeazure.Host{URL: "http://127.0.0.1:" + env["FUNCTIONS_CUSTOMHANDLER_PORT"]},
		stdout: &syncBuffer{}, stderr: &syncBuffer{}, exited: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = p.stdout, p.stderr
	require.NoError(t, cmd.Start())
	go func() { p.exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.exited
		p.exited <- nil
	})
	require.NoError(t, p.host.WaitReady(context.Background()), "stderr: %s", p.stderr)
	return p
}

// assertEveryLineIsJSON checks that out is JSON lines, whole, the last one
// included, and returns them.
func assertEveryLineIsJSON(t *testing.T, name, out string) []map[string]any {
	t.Helper()
	require.True(t, out == "" || strings.HasSuffix(out, "\n"), "%s ends with a whole line", name)
	var lines []map[string]any
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &m), "%s line %q is not JSON", name, line)
		lines = append(lines, m)
	}
	return lines
}

func TestASignalStopsTheRunAtOnceAndSaysHowFarItGot(t *testing.T) {
	// 100 pages of 50 users, each page 100 ms late: a run of ten seconds.
	az := newFaultyAzure(t, 5000, func(fakeazure.PageRequest) fakeazure.Fault {
		return fakeazure.Fault{Delay: 100 * time.Millisecond}
	})
	env := az.settings(t)
	env["GRAPH_USERS_PAGE_SIZE"] = "50"
	p := startProcess(t, env, "")

	answered := make(chan fakeazure.Invocation, 1)
	go func() {
		inv, err := p.host.Invoke(context.Background(), "GraphUsersTimer", invocationBody(t, "timer.json"))
		assert.NoError(t, err)
		answered <- inv
	}()
	require.Eventually(t, func() bool { return strings.Count(p.stdout.String(), `"msg":"user"`) >= 150 },
		10*time.Second, 10*time.Millisecond, "three pages listed")
	signalled := time.Now()
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))

	var inv fakeazure.Invocation
	select {
	case inv = <-answered:
	case <-time.After(5 * time.Second):
		t.Fatal("the pending invocation was not answered")
	}
	select {
	case err := <-p.exited:
		p.exited <- err
		require.NoError(t, err, "a clean stop exits 0; stderr: %s", p.stderr)
	case <-time.After(5 * time.Second):
		t.Fatal("the handler did not exit within 5 s of SIGTERM")
	}
	assert.Less(t, time.Since(signalled), 5*time.Second)

	assert.Equal(t, 500, inv.Status)
	resp := decodeResponse(t, inv)
	require.NotEmpty(t, resp.Logs)
	last := resp.Logs[len(resp.Logs)-1]
	assert.Contains(t, last, "stopped by SIGTERM")
	assert.Regexp(t, `stopped after \d+ users on \d+ pages`, last)

	ids := map[string]int{}
	for _, line := range assertEveryLineIsJSON(t, "stdout", p.stdout.String()) {
		if line["msg"] == "user" {
			ids[line["id"].(string)]++
		}
	}
	assert.Less(t, len(ids), 5000, "the run stopped, it did not list on through a grace period")
	for id, n := range ids {
		assert.Equal(t, 1, n, "user %s", id)
	}
	errs := assertEveryLineIsJSON(t, "stderr", p.stderr.String())
	require.NotEmpty(t, errs)
	var failed map[string]any
	for _, line := range errs {
		if line["msg"] == "invocation failed" {
			failed = line
		}
	}
	require.NotNil(t, failed, "stderr: %s", p.stderr)
	assert.Contains(t, failed["error"], "stopped by SIGTERM")
	for _, out := range []string{p.stdout.String(), p.stderr.String(), string(inv.Body)} {
		assert.NotContains(t, out, az.token)
		assert.NotContains(t, out, az.header)
	}
}

func TestAHandlerThatCannotWriteFilesListsEveryUser(t *testing.T) {
	const users = 12_000
	az := newAzure(t, users)
	for name, shell := range map[string]string{
		// Every write to a file fails, as on a full disk.
		"no file may grow": "ulimit -f 0",
		// No temporary file can be made at all.
		"TMPDIR is not a folder": "",
	} {
		t.Run(name, func(t *testing.T) {
			env := az.settings(t)
			env["GRAPH_USERS_PAGE_SIZE"] = "999"
			env["TMPDIR"] = t.TempDir()
			if shell == "" {
				env["TMPDIR"] = filepath.Join(env["TMPDIR"], "a-file")
				require.NoError(t, os.WriteFile(env["TMPDIR"], nil, 0o600))
			}
			p := startProcess(t, env, shell)
			inv, err := p.host.Invoke(context.Background(), "GraphUsersTimer", invocationBody(t, "timer.json"))
			require.NoError(t, err)
			require.Equal(t, 200, inv.Status, "body %s\nstderr %s", inv.Body, p.stderr)
			require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
			err = <-p.exited
			p.exited <- err
			var exit *exec.ExitError
			require.False(t, errors.As(err, &exit), "exit: %v", err)

			ids := map[string]int{}
			for _, line := range assertEveryLineIsJSON(t, "stdout", p.stdout.String()) {
				if line["msg"] == "user" {
					ids[line["id"].(string)]++
				}
			}
			assert.Len(t, ids, users)
			assert.NotContains(t, p.stderr.String(), `"level":"warn"`, "nothing to warn about: the record needs no file")
		})
	}
}
