// Package azurite starts the real Azure Storage emulator, Azurite, for tests:
// its blob service alone, on a free loopback port, with its data in the test's
// temporary folder. Tests of storage run against it, never against a mock.
package azurite

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The emulator's well-known account. Its key is published in Azurite's and
// Azure's documentation: it guards nothing.
const (
	// AccountName is the account every Azurite serves.
	AccountName = "devstoreaccount1"
	// AccountKey is AccountName's shared key.
	AccountKey = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

// BinEnv names the environment variable that overrides where azurite-blob is.
const BinEnv = "AZURITE_BIN"

// How long Azurite may take to listen, and to close before it is killed. A
// busy two-core machine running every package's tests at once starts node in
// a few seconds; graceful close waits for idle keep-alive connections, which
// --blobKeepAliveTimeout bounds.
const (
	startTimeout = 60 * time.Second
	stopTimeout  = 15 * time.Second
)

// Options configure StartWith. The zero value is plain http, shared key only.
type Options struct {
	// OAuth serves https with a certificate made for this server and accepts
	// bearer tokens as Azurite's --oauth basic does: it checks the token's
	// issuer, audience and lifetime, not its signature.
	OAuth bool
}

// Server is one running azurite-blob. Its methods are safe for concurrent use.
type Server struct {
	t    testing.TB
	bin  string
	dir  string
	args []string
	cert *x509.Certificate // nil for plain http

	mu   sync.Mutex
	port int  // 0 until the first start has listened
	proc *run // nil when stopped
	last *run // the latest process, running or not
}

// run is one process of the server: Restart starts another.
type run struct {
	cmd    *exec.Cmd
	out    *output
	exited chan struct{} // closed when cmd has been waited for
	err    error         // cmd.Wait's, once exited is closed
}

// Start starts Azurite's blob service on a free loopback port, with its data
// in a fresh t.TempDir(), and stops it in t.Cleanup. It fails the test when
// Azurite is not installed (run make azurite-install) or does not listen in
// time.
func Start(t testing.TB) *Server {
	t.Helper()
	return StartWith(t, Options{})
}

// StartWith is Start with options.
func StartWith(t testing.TB, o Options) *Server {
	t.Helper()
	bin, err := findBinary()
	if err != nil {
		t.Fatalf("azurite: %v", err)
	}
	s := &Server{t: t, bin: bin, dir: t.TempDir()}
	s.args = []string{
		"--blobHost", "127.0.0.1",
		"--location", filepath.Join(s.dir, "data"),
		"--silent",
		// azblob sends a newer storage API version than Azurite 3.35.0 knows.
		"--skipApiVersionCheck",
		// Headers and parameters Azurite does not implement are ignored, as
		// Azure ignores those it does not need, instead of failing the call.
		"--loose",
		"--disableTelemetry",
		// Graceful close waits for idle connections: keep them short so Stop
		// is quick.
		"--blobKeepAliveTimeout", "1",
		// The debug log tells when Azurite has finished starting (start).
		"--debug", filepath.Join(s.dir, "debug.log"),
	}
	if o.OAuth {
		cert, certFile, keyFile, err := writeCertificate(s.dir)
		if err != nil {
			t.Fatalf("azurite: %v", err)
		}
		s.cert = cert
		s.args = append(s.args, "--oauth", "basic", "--cert", certFile, "--key", keyFile)
	}
	t.Cleanup(s.Stop)
	if err := s.start(); err != nil {
		t.Fatalf("azurite: %v", err)
	}
	return s
}

// findBinary finds azurite-blob: $AZURITE_BIN, or where make azurite-install
// puts it under the module root.
func findBinary() (string, error) {
	if bin := os.Getenv(BinEnv); bin != "" {
		if _, err := os.Stat(bin); err != nil {
			return "", fmt.Errorf("%s=%s: %w", BinEnv, bin, err)
		}
		return bin, nil
	}
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(root, ".azurite", "npm", "node_modules", ".bin", "azurite-blob")
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("%s is missing: run `make azurite-install` (make test does), or set %s", bin, BinEnv)
	}
	return bin, nil
}

// moduleRoot walks up from the working directory, which go test sets to the
// package's folder, to the folder that holds go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory: set " + BinEnv)
		}
		dir = parent
	}
}

// listening is the line azurite-blob prints once it accepts connections.
var listening = regexp.MustCompile(`successfully listens on https?://127\.0\.0\.1:(\d+)`)

// start runs azurite-blob on s.port (a free port when 0) and waits until it
// listens.
func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		return nil
	}
	args := append(append([]string(nil), s.args...), "--blobPort", strconv.Itoa(s.port))
	debugLog := filepath.Join(s.dir, "debug.log")
	logged := int64(0) // the debug log's size before this start: a restart appends
	if fi, err := os.Stat(debugLog); err == nil {
		logged = fi.Size()
	}
	cmd := exec.Command(s.bin, args...)
	cmd.Dir = s.dir
	cmd.SysProcAttr = sysProcAttr()
	out := &output{}
	ports := make(chan int, 1)
	cmd.Stderr = out
	cmd.Stdout = io.MultiWriter(out, &lineWriter{line: func(line []byte) {
		if m := listening.FindSubmatch(line); m != nil {
			port, _ := strconv.Atoi(string(m[1]))
			select {
			case ports <- port:
			default:
			}
		}
	}})
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", s.bin, err)
	}
	p := &run{cmd: cmd, out: out, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()

	timer := time.NewTimer(startTimeout)
	defer timer.Stop()
	select {
	case port := <-ports:
		s.port = port
		s.proc, s.last = p, p
		// Azurite handles SIGTERM, saving its metadata, only from a moment
		// after it says it listens: once it has logged that telemetry is
		// off, which it does just before. Until then a SIGTERM kills it, and
		// what was written is lost to Restart.
		err := s.answers(timer.C)
		if err == nil {
			err = waitForLine(debugLog, logged, "Telemetry", timer.C)
		}
		if err != nil {
			kill(p)
			s.proc = nil
			return fmt.Errorf("%w; its output:\n%s", err, out)
		}
		return nil
	case <-p.exited:
		return fmt.Errorf("azurite-blob exited before it listened (%v): it runs on Node.js, 20 or newer for the release make azurite-install installs; its output:\n%s", p.err, out)
	case <-timer.C:
		kill(p)
		return fmt.Errorf("azurite-blob did not listen within %s; its output:\n%s", startTimeout, out)
	}
}

// answers waits until the blob service answers an HTTP request, whatever the
// answer, or until timeout fires.
func (s *Server) answers(timeout <-chan time.Time) error {
	c := s.Client()
	c.Timeout = time.Second
	endpoint := fmt.Sprintf("%s://127.0.0.1:%d/%s?comp=list", s.scheme(), s.port, AccountName)
	for {
		resp, err := c.Get(endpoint)
		if err == nil {
			resp.Body.Close()
			return nil
		}
		select {
		case <-timeout:
			return fmt.Errorf("azurite-blob listened but did not answer within %s: %w", startTimeout, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// waitForLine waits until the file holds text past offset, or until
// timeout fires.
func waitForLine(file string, offset int64, text string, timeout <-chan time.Time) error {
	for {
		if data, err := os.ReadFile(file); err == nil && int64(len(data)) > offset &&
			bytes.Contains(data[offset:], []byte(text)) {
			return nil
		}
		select {
		case <-timeout:
			return fmt.Errorf("azurite-blob did not log %q to %s within %s", text, file, startTimeout)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Stop stops the server and waits until it has exited: from then on, a
// connection to its port is refused. Stopping a stopped server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.proc
	if p == nil {
		return
	}
	s.proc = nil
	// SIGTERM lets Azurite save its metadata, so Restart finds what was
	// written before the stop.
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(stopTimeout):
		kill(p)
		s.t.Logf("azurite: killed after %s without closing; its output:\n%s", stopTimeout, p.out)
	}
}

// kill ends p at once and waits for it.
func kill(p *run) {
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// Restart starts a stopped server again on the same port and data folder, so
// a test can bring storage back after a fault. It fails the test when the
// port has been taken meanwhile. Restarting a running server does nothing.
func (s *Server) Restart() {
	s.t.Helper()
	if err := s.start(); err != nil {
		s.t.Fatalf("azurite: restart: %v", err)
	}
}

// Port is the port the server listens on.
func (s *Server) Port() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.port
}

// BlobEndpoint is the blob service URL of the emulator's account, such as
// http://127.0.0.1:10000/devstoreaccount1.
func (s *Server) BlobEndpoint() string {
	return fmt.Sprintf("%s://127.0.0.1:%d/%s", s.scheme(), s.Port(), AccountName)
}

func (s *Server) scheme() string {
	if s.cert != nil {
		return "https"
	}
	return "http"
}

// ConnectionString is a connection string for the emulator's account on this
// server: the well-known account name and key, and BlobEndpoint.
func (s *Server) ConnectionString() string {
	return fmt.Sprintf("AccountName=%s;AccountKey=%s;BlobEndpoint=%s", AccountName, AccountKey, s.BlobEndpoint())
}

// Certificate is the server's self-signed certificate, nil for plain http.
func (s *Server) Certificate() *x509.Certificate { return s.cert }

// Client returns an HTTP client that trusts the server's certificate, if it
// has one.
func (s *Server) Client() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if s.cert != nil {
		pool := x509.NewCertPool()
		pool.AddCert(s.cert)
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Transport: tr}
}

// Output is what the latest process has printed.
func (s *Server) Output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.last == nil {
		return ""
	}
	return s.last.out.String()
}

// Dial checks that the server accepts connections now.
func (s *Server) Dial() error {
	c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port())), time.Second)
	if err != nil {
		return err
	}
	return c.Close()
}

// lineWriter calls line with each whole line written to it.
type lineWriter struct {
	line    func([]byte)
	partial []byte
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			break
		}
		w.line(w.partial[:i])
		w.partial = w.partial[i+1:]
	}
	return len(p), nil
}

// output collects a process's output for failure messages, keeping the last
// maxOutput bytes.
type output struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

const maxOutput = 64 << 10

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.buf.Write(p)
	if over := o.buf.Len() - maxOutput; over > 0 {
		o.buf.Next(over)
	}
	return len(p), nil
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}
