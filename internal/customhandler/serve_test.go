package customhandler

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// runnerFunc is a Runner from a function.
type runnerFunc func(ctx context.Context) ([]string, error)

func (f runnerFunc) Run(ctx context.Context) ([]string, error) { return f(ctx) }

// serve runs Serve on a loopback port until the test ends or stop is
// called, and returns its address.
func serve(t *testing.T, runner Runner, o ServeOptions) (addr string, stop func() error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	h := NewServer(slog.New(slog.NewTextHandler(io.Discard, nil)), Function{Name: "F", Binding: "timer"}, runner)
	go func() { done <- Serve(ctx, ln, h, o) }()
	stopped := false
	stop = func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(10 * time.Second):
			return context.DeadlineExceeded
		}
	}
	t.Cleanup(func() { _ = stop() })
	return ln.Addr().String(), stop
}

// stuckInvocation opens a connection and sends an invocation whose chunked
// body never finishes arriving.
func stuckInvocation(t *testing.T, addr string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	_, err = io.WriteString(conn, "POST /F HTTP/1.1\r\nHost: "+addr+"\r\nTransfer-Encoding: chunked\r\n"+
		"Content-Type: application/json; charset=utf-8\r\n\r\n5\r\n{\"Dat\r\n")
	require.NoError(t, err)
	return conn
}

func TestServeDropsAnInvocationWhoseBodyNeverEnds(t *testing.T) {
	ran := make(chan struct{}, 1)
	addr, _ := serve(t, runnerFunc(func(context.Context) ([]string, error) { ran <- struct{}{}; return nil, nil }),
		ServeOptions{ReadTimeout: 300 * time.Millisecond})
	conn := stuckInvocation(t, addr)

	start := time.Now()
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(5*time.Second)))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err == nil {
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
		resp.Body.Close()
	}
	assert.Less(t, time.Since(start), 3*time.Second, "the stuck request is dropped after the read timeout")
	assert.Empty(t, ran, "nothing ran for a body that never arrived")

	// The handler goes on serving.
	resp, err = http.Post("http://"+addr+"/F", "application/json", strings.NewReader(`{}`))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
}

func TestServeStopsWithoutWaitingOnAStuckInvocation(t *testing.T) {
	addr, stop := serve(t, runnerFunc(func(context.Context) ([]string, error) { return nil, nil }),
		ServeOptions{ReadTimeout: time.Minute, ShutdownGrace: time.Minute})
	stuckInvocation(t, addr)
	time.Sleep(50 * time.Millisecond) // the handler is now reading the body

	start := time.Now()
	require.NoError(t, stop())
	assert.Less(t, time.Since(start), 3*time.Second, "a body still arriving is given up when the handler stops")
}

func TestServeCancelsARunWhenItStopsAndAnswersItsInvocation(t *testing.T) {
	started := make(chan struct{})
	addr, stop := serve(t, runnerFunc(func(ctx context.Context) ([]string, error) {
		close(started)
		<-ctx.Done()
		return []string{"stopped early"}, context.Cause(ctx)
	}), ServeOptions{})
	answered := make(chan *http.Response, 1)
	go func() {
		resp, err := http.Post("http://"+addr+"/F", "application/json", strings.NewReader(`{}`))
		if assert.NoError(t, err) {
			answered <- resp
		}
	}()
	<-started
	start := time.Now()
	require.NoError(t, stop())
	assert.Less(t, time.Since(start), 2*time.Second)
	resp := <-answered
	defer resp.Body.Close()
	assert.Equal(t, http.StatusInternalServerError, resp.StatusCode, "the run's failure reaches the host")
}
