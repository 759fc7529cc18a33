// Command fakeazure serves the project's local stand-ins for Azure on loopback: the App Service
// managed identity endpoint (and IMDS) on one address, Microsoft Graph's /v1.0/users (with its
// $count and delta) and the directory's /v1.0/servicePrincipals on another, so the handler and
// grant can run on a laptop with no Azure at all.
//
// The fake tenant holds -users users, named userNNNNNN@contoso.onmicrosoft.com, or, with
// -realistic, as a real directory names them (adele.vance17@contoso.com, guests, skewed first
// letters), which a split listing should meet before production does. -latency waits before the
// first byte of every Graph response and -bytes-per-second paces each body, as a distant Graph
// would.
//
// The Graph address also serves one endpoint Graph does not have, outside any Graph path, so a
// local demo can change the tenant between two runs:
//
//	POST /fakeazure/changes
//	{"add":N,"update":N,"rename":N,"softDelete":N,"hardDelete":N,"restore":N}
//
// Every count is optional. It answers 200 with the users each change touched, by index, id and
// userPrincipalName, and how many users are listed now. For example:
//
//	curl -d '{"add":5,"rename":2,"softDelete":3}' http://127.0.0.1:7172/fakeazure/changes
//
// It prints one line naming the endpoints, logs one line per request to stderr, and stops on
// SIGINT or SIGTERM.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"graphuserstimer/internal/fakeazure"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "fakeazure:", err)
		os.Exit(1)
	}
}

// run serves the fakes until ctx ends or, with -handler, plays the Functions host for one
// invocation of that handler against them. getenv supplies the app settings the host passes on.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("fakeazure", flag.ContinueOnError)
	fs.SetOutput(stderr)
	users := fs.Int("users", 2500, "number of users in the fake tenant")
	realistic := fs.Bool("realistic", false, "name users as a real directory does: adele.vance17@contoso.com, guests, skewed first letters")
	latency := fs.Duration("latency", 0, "wait this long before the first byte of every Graph response, such as 200ms")
	bytesPerSecond := fs.Int("bytes-per-second", 0, "pace every Graph page to this many bytes a second (0: as fast as it goes)")
	identityAddr := fs.String("identity-addr", "127.0.0.1:7171", "loopback `address` of the managed identity endpoint (port 0 picks one)")
	graphAddr := fs.String("graph-addr", "127.0.0.1:7172", "loopback `address` of the fake Graph (port 0 picks one)")
	clientID := fs.String("client-id", "11111111-2222-3333-4444-555555555555", "client ID of the one user-assigned identity")
	header := fs.String("identity-header", "local-identity-header", "IDENTITY_HEADER value callers must send")
	var hf hostFlags
	fs.StringVar(&hf.handler, "handler", "", "play the Functions host: start this handler `binary`, invoke it once, print its logs and response, stop")
	fs.StringVar(&hf.appRoot, "app-root", ".", "with -handler: the function app's root `folder` (host.json, GraphUsersTimer/)")
	fs.StringVar(&hf.invocation, "invocation", "testdata/invocations/timer.json", "with -handler: the invocation body `file` to POST")
	fs.StringVar(&hf.changes, "changes", "", "with -handler: after the first invocation, change the fake tenant as this `JSON` says, "+
		`such as {"add":5,"update":20,"rename":2,"softDelete":3,"hardDelete":2}, and invoke again`)
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		return nil // the usage is already on stderr
	}
	if err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *users < 0 {
		return fmt.Errorf("-users %d: want 0 or more", *users)
	}
	if *latency < 0 || *bytesPerSecond < 0 {
		return fmt.Errorf("-latency %s, -bytes-per-second %d: want 0 or more", *latency, *bytesPerSecond)
	}

	token, err := randomToken()
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	identity := newFake(logger, "identity", fakeazure.NewIdentity(fakeazure.IdentityOptions{
		ClientID: *clientID, Header: *header, Token: token}))
	// The one identity may also grant app roles, so `grant` can be tried
	// against these fakes: locally it plays the administrator too.
	directory := fakeazure.NewDirectory(fakeazure.DirectoryOptions{AdminToken: token,
		ManagedIdentities: []fakeazure.ManagedIdentity{{ClientID: *clientID, Name: "graphusers-id"}}})
	g := fakeazure.NewGraph(fakeazure.GraphOptions{Users: *users, Token: token, Directory: directory,
		Realistic: *realistic, Latency: *latency, BytesPerSecond: *bytesPerSecond})
	graph := newFake(logger, "graph", withChanges(g))
	if err := identity.listen("-identity-addr", *identityAddr); err != nil {
		return err
	}
	defer identity.ln.Close()
	if err := graph.listen("-graph-addr", *graphAddr); err != nil {
		return err
	}
	defer graph.ln.Close()

	fakes := []*fake{identity, graph}
	errs := make(chan error, len(fakes))
	for _, f := range fakes {
		go func() { errs <- f.serve() }()
	}
	fmt.Fprintf(stdout, "IDENTITY_ENDPOINT=http://%s%s GRAPH_ENDPOINT=http://%s users=%d\n",
		identity.ln.Addr(), fakeazure.AppServicePath, graph.ln.Addr(), *users)

	var serveErr error
	if hf.handler != "" {
		hostCtx, cancel := context.WithCancel(ctx)
		hosted := make(chan error, 1)
		go func() {
			hosted <- playHost(hostCtx, hf, hostEnv{
				getenv:           getenv,
				clientID:         *clientID,
				identityEndpoint: "http://" + identity.ln.Addr().String() + fakeazure.AppServicePath,
				identityHeader:   *header,
				graphEndpoint:    "http://" + graph.ln.Addr().String(),
				change:           g.Change,
			}, stdout, stderr)
		}()
		select {
		case serveErr = <-hosted:
		case serveErr = <-errs:
		}
		cancel()
	} else {
		select {
		case <-ctx.Done():
		case serveErr = <-errs:
		}
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	for _, f := range fakes {
		if err := f.srv.Shutdown(shutdownCtx); err != nil {
			serveErr = errors.Join(serveErr, fmt.Errorf("shut down %s: %w", f.name, err))
		}
	}
	return serveErr
}

// fake is one of the fakes and the server it runs on.
type fake struct {
	name string
	srv  *http.Server
	ln   net.Listener
}

// newFake serves h, logging each request's method, path, status and duration; never its headers
// or query, which carry the identity header and page tokens.
func newFake(logger *slog.Logger, name string, h http.Handler) *fake {
	logged := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(rec, r)
		logger.Info("request", "server", name, "method", r.Method, "path", r.URL.Path,
			"status", rec.status, "duration", time.Since(start))
	})
	return &fake{name: name, srv: &http.Server{Handler: logged, ReadHeaderTimeout: 10 * time.Second}}
}

// listen listens on addr, which must be a loopback IP and port: the fakes hand a token to anyone
// who asks, so they never listen where other machines can reach them.
func (f *fake) listen(flagName, addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%s %q: %w", flagName, addr, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%s %q: not a loopback address; use 127.0.0.1:<port> or [::1]:<port>: the fakes give a token to anyone who asks", flagName, addr)
	}
	if f.ln, err = net.Listen("tcp", addr); err != nil {
		return fmt.Errorf("%s: %w", flagName, err)
	}
	return nil
}

// serve serves until the server is shut down.
func (f *fake) serve() error {
	if err := f.srv.Serve(f.ln); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve %s: %w", f.name, err)
	}
	return nil
}

// randomToken makes the access token both fakes share for this run.
func randomToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("make access token: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// statusRecorder remembers the status a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(status int) {
	r.status = status
	r.ResponseWriter.WriteHeader(status)
}
