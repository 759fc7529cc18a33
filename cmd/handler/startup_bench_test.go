package main

import (
	"bytes"
	"graphuserstimer/internal/fakeazure"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"
)

// BenchmarkStartup measures how long the handler takes from exec to its
// first answer to GET /, which the Functions host waits for before it sends
// an invocation: each iteration starts the binary, polls GET / every
// millisecond, and kills it. It reports the median and 90th percentile of
// those times, and the size of the binary as it is deployed: linux/amd64,
// stripped, without cgo. The binary timed is that one when this machine is
// linux/amd64, one built the same way for this machine otherwise.
func BenchmarkStartup(b *testing.B) {
	dir := b.TempDir()
	deployed := filepath.Join(dir, "handler-linux-amd64")
	buildHandler(b, deployed, "linux", "amd64")
	info, err := os.Stat(deployed)
	if err != nil {
		b.Fatal(err)
	}
	bin := deployed
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		bin = filepath.Join(dir, "handler")
		buildHandler(b, bin, runtime.GOOS, runtime.GOARCH)
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		b.Fatal(err)
	}
	clientID := fakeazure.NewClientID()

	var times []time.Duration
	for b.Loop() {
		times = append(times, startOnce(b, bin, root, clientID))
	}
	slices.Sort(times)
	b.ReportMetric(percentile(times, 50).Seconds()*1e3, "median-ms")
	b.ReportMetric(percentile(times, 90).Seconds()*1e3, "p90-ms")
	b.ReportMetric(float64(info.Size())/1e6, "binary-MB")
}

// buildHandler builds this package to out for goos/goarch as README's
// Deploy section does.
func buildHandler(b testing.TB, out, goos, goarch string) {
	b.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		b.Fatalf("no go command to build the handler with: %v", err)
	}
	cmd := exec.Command(gobin, "build", "-trimpath", "-ldflags=-s -w", "-o", out, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+goos, "GOARCH="+goarch)
	if msg, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, msg)
	}
}

// startOnce starts the handler with the settings the host would give it and
// returns how long it took to answer GET /.
func startOnce(b *testing.B, bin, root, clientID string) time.Duration {
	b.Helper()
	port := freePort(b)
	cmd := exec.Command(bin)
	cmd.Dir = root
	// No IDENTITY_ENDPOINT: the credential uses IMDS, and building it makes
	// no request.
	cmd.Env = []string{
		"AZURE_CLIENT_ID=" + clientID,
		"GRAPH_USERS_SCHEDULE=0 0 * * * *",
		"FUNCTIONS_CUSTOMHANDLER_PORT=" + port,
		"FUNCTIONS_APP_ROOT_PATH=" + root,
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	probe := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: time.Second}
	ready := "http://127.0.0.1:" + port + "/"

	start := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Kill()
		<-exited
	}()
	for {
		resp, err := probe.Get(ready)
		if err == nil {
			elapsed := time.Since(start)
			resp.Body.Close()
			return elapsed
		}
		if time.Since(start) > 10*time.Second {
			_ = cmd.Process.Kill()
			exitErr := <-exited
			exited <- exitErr // for the deferred wait
			b.Fatalf("the handler did not answer GET / within 10 s: %v\n%s", err, stderr.Bytes())
		}
		select {
		case exitErr := <-exited:
			exited <- exitErr // for the deferred wait
			b.Fatalf("the handler exited before it answered GET /: %v\n%s", exitErr, stderr.Bytes())
		case <-time.After(time.Millisecond):
		}
	}
}

// percentile returns the p-th percentile of sorted, by the nearest rank.
func percentile(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := (p*len(sorted) + 99) / 100
	return sorted[max(rank, 1)-1]
}
