package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"graphuserstimer/internal/config"
	"graphuserstimer/internal/fakeazure"
)

// hostFlags say which handler to host and how to invoke it.
type hostFlags struct {
	handler, appRoot, invocation string
	// changes, when set, is the JSON of the fakeazure.Changes made to the
	// tenant between a first invocation and a second.
	changes string
}

// hostEnv is what the handler's environment is made of: the app settings
// passed through, and the fakes' endpoints.
type hostEnv struct {
	getenv                                     func(string) string
	clientID, identityEndpoint, identityHeader string
	graphEndpoint                              string
	// change changes the fake tenant.
	change func(fakeazure.Changes) fakeazure.Changed
}

// passedSettings are the job's own app settings: set in the environment of
// `make run`, they reach the handler as they would through the host. The
// fakes set AZURE_CLIENT_ID and GRAPH_ENDPOINT themselves. The storage
// connection that GRAPH_USERS_STORAGE names comes too, as a connection
// string or as identity-based settings.
func passedSettings(getenv func(string) string) []string {
	var names []string
	for _, s := range config.Settings {
		if s.Origin == config.ByOperator && s.Name != config.ClientIDSetting && s.Name != config.GraphEndpointSetting {
			names = append(names, s.Name)
		}
	}
	conn := getenv(config.StorageSetting)
	if conn == "" {
		conn = "AzureWebJobsStorage"
	}
	names = append(names, conn)
	for _, k := range []string{"blobServiceUri", "serviceUri", "accountName", "credential", "clientId"} {
		names = append(names, conn+"__"+k)
	}
	return names
}

// defaultSchedule is the schedule the handler is given when `make run` names
// none: the host needs one to index the function, though it is never due
// while the fake host plays it.
const defaultSchedule = "0 0 * * * *"

// playHost does what the Functions host does for one timer invocation: it
// starts the handler in the app root with the port and settings in its
// environment, polls GET / until it answers, POSTs the invocation, prints the
// response and stops the handler.
func playHost(ctx context.Context, hf hostFlags, he hostEnv, stdout, stderr io.Writer) error {
	root, err := filepath.Abs(hf.appRoot)
	if err != nil {
		return fmt.Errorf("-app-root: %w", err)
	}
	handler, err := filepath.Abs(hf.handler)
	if err != nil {
		return fmt.Errorf("-handler: %w", err)
	}
	body, err := os.ReadFile(hf.invocation)
	if err != nil {
		return fmt.Errorf("-invocation: %w", err)
	}
	var changes *fakeazure.Changes
	if hf.changes != "" {
		changes = &fakeazure.Changes{}
		dec := json.NewDecoder(strings.NewReader(hf.changes))
		dec.DisallowUnknownFields()
		if err := dec.Decode(changes); err != nil {
			return fmt.Errorf("-changes %q: %w", hf.changes, err)
		}
	}
	function, err := functionName(root)
	if err != nil {
		return err
	}
	port, err := freePort()
	if err != nil {
		return err
	}

	env := []string{
		"PATH=" + he.getenv("PATH"),
		"HOME=" + he.getenv("HOME"),
		"FUNCTIONS_CUSTOMHANDLER_PORT=" + port,
		"FUNCTIONS_CUSTOMHANDLER_WORKER_ID=" + fmt.Sprint(time.Now().UnixNano()),
		"FUNCTIONS_APP_ROOT_PATH=" + root,
		"AZURE_CLIENT_ID=" + he.clientID,
		"IDENTITY_ENDPOINT=" + he.identityEndpoint,
		"IDENTITY_HEADER=" + he.identityHeader,
		"GRAPH_ENDPOINT=" + he.graphEndpoint,
	}
	for _, name := range passedSettings(he.getenv) {
		if v := he.getenv(name); v != "" {
			env = append(env, name+"="+v)
		}
	}
	if he.getenv(config.ScheduleSetting) == "" {
		env = append(env, config.ScheduleSetting+"="+defaultSchedule)
	}
	cmd := exec.Command(handler)
	cmd.Dir = root
	cmd.Env = env
	cmd.Stdout = stdout
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start the handler: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer stopHandler(cmd, exited)

	host := fakeazure.Host{URL: "http://127.0.0.1:" + port}
	ready := make(chan error, 1)
	go func() { ready <- host.WaitReady(ctx) }()
	select {
	case err := <-ready:
		if err != nil {
			return err
		}
	case err := <-exited:
		exited <- err
		return fmt.Errorf("the handler exited before it answered GET /: %v", err)
	}

	if err := invoke(ctx, host, function, body, stdout); err != nil || changes == nil {
		return err
	}
	changed := he.change(*changes)
	fmt.Fprintf(stdout, "changed the fake tenant: %d added, %d updated, %d renamed, %d soft-deleted, %d hard-deleted, %d restored\n",
		len(changed.Added), len(changed.Updated), len(changed.Renamed), len(changed.SoftDeleted), len(changed.HardDeleted), len(changed.Restored))
	return invoke(ctx, host, function, body, stdout)
}

// invoke POSTs one invocation and prints the response.
func invoke(ctx context.Context, host fakeazure.Host, function string, body []byte, stdout io.Writer) error {
	inv, err := host.Invoke(ctx, function, body)
	if err != nil {
		return err
	}
	var pretty bytes.Buffer
	if json.Indent(&pretty, inv.Body, "", "  ") != nil {
		pretty.Reset()
		pretty.Write(inv.Body)
	}
	fmt.Fprintf(stdout, "POST /%s -> %d %s\n%s\n", function, inv.Status, inv.Header.Get("Content-Type"), strings.TrimSpace(pretty.String()))
	if inv.Status != 200 {
		return fmt.Errorf("the invocation failed with status %d", inv.Status)
	}
	return nil
}

// stopHandler asks the handler to stop, and kills it if it does not.
func stopHandler(cmd *exec.Cmd, exited chan error) {
	_ = cmd.Process.Signal(os.Interrupt)
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
	}
}

// functionName is the name of the app's one function: its folder's.
func functionName(root string) (string, error) {
	paths, err := filepath.Glob(filepath.Join(root, "*", "function.json"))
	if err != nil || len(paths) != 1 {
		return "", fmt.Errorf("-app-root %s: want exactly one <function>/function.json, found %d", root, len(paths))
	}
	return filepath.Base(filepath.Dir(paths[0])), nil
}

// freePort asks the kernel for a free loopback port, as the host does.
func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	if port == 0 {
		return "", errors.New("find a free port: got port 0")
	}
	return strconv.Itoa(port), nil
}
