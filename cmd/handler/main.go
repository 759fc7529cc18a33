// Command handler is the GraphUsersTimer custom handler: the Azure Functions
// host starts it, waits for GET / to answer, and POSTs each timer invocation
// to /GraphUsersTimer.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	azlog "github.com/Azure/azure-sdk-for-go/sdk/azcore/log"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"graphuserstimer/internal/config"
	"graphuserstimer/internal/customhandler"
	"graphuserstimer/internal/graph"
	"graphuserstimer/internal/joblog"
	"graphuserstimer/internal/storage"
	"graphuserstimer/internal/usersjob"
)

func main() {
	ctx, cancel := context.WithCancelCause(context.Background())
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		sig := <-sigs
		// A second signal ends the process at once.
		signal.Stop(sigs)
		cancel(&stopped{sig})
	}()
	if err := run(ctx, os.Args, os.Getenv, os.Stdout, os.Stderr); err != nil {
		// The last line, too, is a JSON line the host can file, written as
		// every other line is.
		joblog.New(io.Discard, os.Stderr, slog.LevelError).Logger().Error("handler stopped", "error", err.Error())
		os.Exit(1)
	}
}

// stopped is why the handler stops: a signal, such as the host scaling in or
// a deployment.
type stopped struct{ sig os.Signal }

func (s *stopped) Error() string {
	name := s.sig.String()
	if s.sig == syscall.SIGTERM {
		name = "SIGTERM"
	} else if s.sig == os.Interrupt {
		name = "SIGINT"
	}
	return "the handler was stopped by " + name + " (the host scaling in, a restart or a deployment)"
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
	if getenv(sdkLogging) == "all" {
		routeSDKLog(log)
	}

	job, err := newJob(cfg, app, root, runTimeout, getenv, out)
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.Port)))
	if err != nil {
		return fmt.Errorf("listen on %s (FUNCTIONS_CUSTOMHANDLER_PORT): %w", strconv.Itoa(cfg.Port), err)
	}
	log.Info("handler ready",
		"addr", ln.Addr().String(),
		"function", app.Function.Name,
		"graph", cfg.GraphEndpoint.String(),
		"client_id", cfg.ClientID,
		"identity_source", identitySource(getenv),
		"run_timeout", runTimeout.String(),
	)
	err = customhandler.Serve(ctx, ln, customhandler.NewServer(log, app.Function, job), customhandler.ServeOptions{})
	if cause := context.Cause(ctx); err == nil && cause != nil && !errors.Is(cause, context.Canceled) {
		log.Info("handler stopped", "reason", cause.Error())
	}
	return err
}

// newJob builds the job once, with the credential and the pipeline whose
// token cache every invocation shares.
func newJob(cfg config.Config, app customhandler.App, root string, runTimeout time.Duration,
	getenv func(string) string, out *joblog.Output) (*usersjob.Job, error) {
	// MSAL picks the identity source from the process environment once, here:
	// the App Service endpoint when IDENTITY_ENDPOINT and IDENTITY_HEADER are
	// set, IMDS otherwise.
	cred, err := azidentity.NewManagedIdentityCredential(&azidentity.ManagedIdentityCredentialOptions{
		ID: azidentity.ClientID(cfg.ClientID),
	})
	if err != nil {
		return nil, fmt.Errorf("managed identity %s: %w", cfg.ClientID, err)
	}
	client, err := graph.NewClient(cfg.GraphEndpoint, cred, nil)
	if err != nil {
		return nil, err
	}
	store, err := openStore(cfg)
	if err != nil {
		return nil, err
	}
	var hostID string
	if store != nil {
		// The state and the exports are kept under it, apart from those of
		// other apps sharing the storage account.
		if hostID, err = customhandler.HostID(getenv, root); err != nil {
			return nil, err
		}
		if storage.LooksSecret(hostID) {
			// It names blobs, which summaries print.
			return nil, storage.SecretError(customhandler.HostIDSetting, "the app's own host ID, lowercase letters, digits and dashes")
		}
	}
	return usersjob.New(client, out, usersjob.Options{
		Query:          graph.Query{Select: cfg.Select, Filter: cfg.Filter, PageSize: cfg.PageSize, Streams: cfg.Parallel},
		Mode:           usersjob.Mode(cfg.Mode),
		LogEach:        cfg.LogEach,
		Export:         cfg.Export,
		Store:          store,
		StorageSetting: cfg.Storage.Setting,
		Function:       app.Function.Name,
		HostID:         hostID,
		ClientID:       cfg.ClientID,
		IdentitySource: identitySource(getenv),
		RunTimeout:     runTimeout,
	}), nil
}

// openStore opens the container of the delta state and the exports, when
// the settings need one. It sends nothing: the first run that needs it
// creates the container.
func openStore(cfg config.Config) (*storage.Container, error) {
	if cfg.Mode != config.ModeDelta && !cfg.Export {
		return nil, nil
	}
	var o storage.Options
	if cfg.Storage.Auth == storage.ManagedIdentity {
		// Identity is nil for the system-assigned identity.
		cred, err := azidentity.NewManagedIdentityCredential(&azidentity.ManagedIdentityCredentialOptions{ID: cfg.Storage.Identity()})
		if err != nil {
			return nil, fmt.Errorf("managed identity for %s: %w", cfg.Storage.Setting, err)
		}
		o.Credential = cred
	}
	store, err := storage.Open(cfg.Storage, cfg.Container, &o)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", config.ContainerSetting, err)
	}
	return store, nil
}

// sdkLogging is the Azure SDK's own switch: set to "all", azcore writes
// every request, retry and token event to stderr as plain text, which the
// host would file among the JSON lines as errors.
const sdkLogging = "AZURE_SDK_GO_LOGGING"

// routeSDKLog sends the Azure SDK's log events through the job's logger
// instead, as JSON lines. The SDK redacts Authorization headers and query
// values itself. Its listener is process-wide, as the setting is.
func routeSDKLog(log *slog.Logger) {
	azlog.SetListener(func(ev azlog.Event, msg string) {
		log.Info("azure sdk", "event", string(ev), "detail", msg)
	})
}

// identitySource names where tokens come from, for the start-up line and
// errors: the endpoint, never the header that guards it.
func identitySource(getenv func(string) string) string {
	if getenv("IDENTITY_ENDPOINT") != "" && getenv("IDENTITY_HEADER") != "" {
		return "App Service, IDENTITY_ENDPOINT " + getenv("IDENTITY_ENDPOINT")
	}
	return "IMDS, http://169.254.169.254"
}
