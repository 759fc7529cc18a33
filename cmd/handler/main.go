// Command handler is the GraphUsersTimer custom handler: the Azure Functions
// host starts it, waits for GET / to answer, and POSTs each timer invocation
// to /GraphUsersTimer.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"graphuserstimer/internal/config"
	"graphuserstimer/internal/customhandler"
	"graphuserstimer/internal/graph"
	"graphuserstimer/internal/joblog"
	"graphuserstimer/internal/usersjob"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args, os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "GraphUsersTimer: %v\n", err)
		os.Exit(1)
	}
}

// run starts the handler and serves the host until ctx ends.
func run(ctx context.Context, _ []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := config.Load(getenv)
	if err != nil {
		return err
	}
	root := getenv("FUNCTIONS_APP_ROOT_PATH")
	if root == "" {
		root = "."
	}
	app, err := customhandler.LoadApp(root)
	if err != nil {
		return err
	}
	runTimeout, err := cfg.RunTimeoutWithin(app.FunctionTimeout)
	if err != nil {
		return err
	}
	out := joblog.New(stdout, stderr, cfg.LogLevel)
	log := out.Logger()

	// MSAL picks the identity source from the process environment once, here:
	// the App Service endpoint when IDENTITY_ENDPOINT and IDENTITY_HEADER are
	// set, IMDS otherwise.
	cred, err := azidentity.NewManagedIdentityCredential(&azidentity.ManagedIdentityCredentialOptions{
		ID: azidentity.ClientID(cfg.ClientID),
	})
	if err != nil {
		return fmt.Errorf("managed identity %s: %w", cfg.ClientID, err)
	}
	client, err := graph.NewClient(cfg.GraphEndpoint, cred, nil)
	if err != nil {
		return err
	}
	job := usersjob.New(client, out, usersjob.Options{
		Query:          graph.Query{Select: cfg.Select, Filter: cfg.Filter, Top: cfg.PageSize},
		LogEach:        cfg.LogEach,
		ClientID:       cfg.ClientID,
		IdentitySource: identitySource(getenv),
		RunTimeout:     runTimeout,
	})

	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.Port)))
	if err != nil {
		return fmt.Errorf("listen on %s (FUNCTIONS_CUSTOMHANDLER_PORT): %w", strconv.Itoa(cfg.Port), err)
	}
	srv := &http.Server{
		Handler:           customhandler.NewServer(log, app.Function, job),
		ReadHeaderTimeout: 10 * time.Second,
	}
	log.Info("handler ready",
		"addr", ln.Addr().String(),
		"function", app.Function.Name,
		"graph", cfg.GraphEndpoint.String(),
		"client_id", cfg.ClientID,
		"identity_source", identitySource(getenv),
		"run_timeout", runTimeout.String(),
	)

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		return fmt.Errorf("shut down: %w", err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}

// identitySource names where tokens come from, for the start-up line.
func identitySource(getenv func(string) string) string {
	if getenv("IDENTITY_ENDPOINT") != "" && getenv("IDENTITY_HEADER") != "" {
		return "App Service (IDENTITY_ENDPOINT)"
	}
	return "IMDS"
}
