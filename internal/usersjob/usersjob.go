// Package usersjob is one run of the job: list every user of the tenant
// through Graph, or, in delta mode, only what changed since the last run;
// log each one, export them to Blob Storage when asked, and sum up. When a
// run fails, it says what to do next.
package usersjob

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"graphuserstimer/internal/graph"
	"graphuserstimer/internal/joblog"
	"graphuserstimer/internal/storage"
)

// Mode is what a run lists.
type Mode string

const (
	// List lists every user, every run.
	List Mode = "list"
	// Delta lists every user once, then only the changes since the run
	// before, keeping its place in Blob Storage.
	Delta Mode = "delta"
)

// Options configures a Job.
type Options struct {
	// Query says which users to list, their page size and how many
	// streams may list them.
	Query graph.Query
	// Mode is List or Delta; empty means List.
	Mode Mode
	// LogEach gives every user, or every change, a log line of its own.
	LogEach bool
	// Export writes each run's users, or a delta round's changes, to Store.
	Export bool
	// Store is the container of the delta state and the exports: required
	// by Delta and Export.
	Store *storage.Container
	// StorageSetting names the storage connection in error messages.
	StorageSetting string
	// Function names the timer function: its delta state is the blob
	// state/<HostID>/<Function>.json.
	Function string
	// HostID is the Functions host's ID, which keeps apart the apps that
	// share a storage account: the state and the exports are kept under
	// it, as users/<HostID>/ and changes/<HostID>/. Required with Store.
	HostID string
	// ClientID names the managed identity in error messages.
	ClientID string
	// IdentitySource names where tokens come from, in error messages.
	IdentitySource string
	// RunTimeout, when not zero, bounds each run: it stops, says how far it
	// got and fails (a delta round: keeps its place and succeeds) before
	// the host's functionTimeout kills the process.
	RunTimeout time.Duration
	// ProgressEvery is how many pages go between progress lines; zero means
	// DefaultProgressEvery.
	ProgressEvery int
	// Now tells the time; nil means time.Now.
	Now func() time.Time
}

// DefaultProgressEvery is how many pages go between progress lines, so that a
// long run shows in the log stream that it is alive.
const DefaultProgressEvery = 10

// Job lists the tenant's users. It is built once at start-up and reused by
// every invocation, so the client's token cache outlives a run. Its runs
// must not overlap: the handler starts one at a time.
type Job struct {
	client *graph.Client
	out    *joblog.Output
	log    *slog.Logger
	opts   Options

	created bool // the container is known to exist
}

// New returns a Job that lists users through client and logs to out.
func New(client *graph.Client, out *joblog.Output, opts Options) *Job {
	if opts.Mode == "" {
		opts.Mode = List
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Job{client: client, out: out, log: out.Logger(), opts: opts}
}

// Run does one run. It returns the lines for the invocation response: the
// warnings and a summary; on failure, how far it got.
func (j *Job) Run(ctx context.Context) ([]string, error) {
	r := &run{job: j, start: j.opts.Now().UTC()}
	r.ctx, r.cancel = context.WithCancel(ctx)
	if j.opts.RunTimeout > 0 {
		r.ctx, r.cancel = context.WithTimeout(ctx, j.opts.RunTimeout)
	}
	defer r.cancel()
	var err error
	if j.opts.Mode == Delta {
		err = j.runDelta(r)
	} else {
		err = j.prepareStore(r)
		if err == nil {
			_, err = j.listAll(r, "full")
		}
	}
	return r.logs, err
}

// run is one run's state: its context, when it began, and the lines for
// the invocation response.
type run struct {
	job    *Job
	ctx    context.Context
	cancel context.CancelFunc
	start  time.Time

	mu   sync.Mutex
	logs []string
}

// warn logs a warning on stderr and keeps it for the response. Safe for
// concurrent use, as streams warn.
func (r *run) warn(msg string) {
	r.job.log.Warn(msg)
	r.mu.Lock()
	r.logs = append(r.logs, msg)
	r.mu.Unlock()
}

// note keeps a line for the response.
func (r *run) note(msg string) {
	r.mu.Lock()
	r.logs = append(r.logs, msg)
	r.mu.Unlock()
}

// elapsed is how long the run has taken.
func (r *run) elapsed() time.Duration { return r.job.opts.Now().Sub(r.start) }

// prepareStore makes sure the container exists when the run needs it,
// before Graph is asked anything: a storage failure known now fails now.
func (j *Job) prepareStore(r *run) error {
	if j.created || j.opts.Store == nil || (j.opts.Mode != Delta && !j.opts.Export) {
		return nil
	}
	if err := j.opts.Store.Create(r.ctx); err != nil {
		return j.advise(r.ctx, err, graph.Stats{})
	}
	j.created = true
	return nil
}

// progress says how many users on how many pages.
func progress(st graph.Stats) string {
	return plural(st.Users, "user") + " on " + plural(st.Pages, "page")
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// advise adds to err what to do next, where the job knows: every hint the
// job gives is here, from the facts the graph and storage packages report
// and how far the run got (st).
func (j *Job) advise(ctx context.Context, err error, st graph.Stats) error {
	switch {
	case j.opts.RunTimeout > 0 && errors.Is(err, context.DeadlineExceeded):
		err = fmt.Errorf("the run reached its deadline of %s, set to stop before the host's functionTimeout "+
			"(host.json; GRAPH_USERS_RUN_TIMEOUT overrides it): %w", j.opts.RunTimeout, err)
	case ctx.Err() != nil:
		// Stopped from outside, such as by a signal: say by what.
		if cause := context.Cause(ctx); cause != nil && !errors.Is(err, cause) {
			err = fmt.Errorf("%w: %w", cause, err)
		}
	}
	if se, ok := errors.AsType[*storage.Error](err); ok {
		return j.adviseStorage(err, se)
	}
	if te, ok := errors.AsType[*graph.TokenError](err); ok {
		switch {
		case te.StatusCode == http.StatusBadRequest:
			return fmt.Errorf("%w: the managed identity with client ID %s is not assigned to this Function App: "+
				"assign it (README, \"Deploy\") or set AZURE_CLIENT_ID to the client ID of one that is", err, j.opts.ClientID)
		case te.StatusCode == 0:
			return fmt.Errorf("%w: the identity endpoint (%s) gave no token: check that the Function App has "+
				"a managed identity and that AZURE_CLIENT_ID (%s) is its client ID", err, j.opts.IdentitySource, j.opts.ClientID)
		}
		return fmt.Errorf("%w: check that the Function App has a managed identity and that AZURE_CLIENT_ID (%s) is its client ID", err, j.opts.ClientID)
	}
	if _, ok := errors.AsType[*graph.OriginError](err); ok {
		return fmt.Errorf("%w: the token only ever goes to GRAPH_ENDPOINT; a Graph that links or redirects elsewhere "+
			"is not Graph or is misconfigured: check GRAPH_ENDPOINT and any proxy in front of it", err)
	}
	if errors.Is(err, graph.ErrLinkLoop) {
		return fmt.Errorf("%w: this is Graph's fault, or a proxy's; the next run starts afresh", err)
	}
	re, ok := errors.AsType[*graph.ResponseError](err)
	if !ok {
		return err
	}
	switch {
	case re.StatusCode == http.StatusForbidden:
		return fmt.Errorf("%w: grant the managed identity the Microsoft Graph application permission User.Read.All "+
			"(README, \"Grant User.Read.All to the identity\"); a new grant can take a few minutes to apply", err)
	case re.StatusCode == http.StatusUnauthorized && st.Pages > 0:
		return fmt.Errorf("%w: Graph rejected the token mid-run, after %s, and a new one as well: the identity's "+
			"access may have been revoked meanwhile; the next run asks again", err, plural(st.Pages, "page"))
	case re.StatusCode == http.StatusUnauthorized:
		return fmt.Errorf("%w: Graph refused the token: check that GRAPH_ENDPOINT is the Graph root the token's audience names "+
			"(the token is asked for GRAPH_ENDPOINT/.default)", err)
	case re.StatusCode == http.StatusBadRequest && j.opts.Query.Filter != "" && j.opts.Query.Streams > 1:
		return fmt.Errorf("%w: if Graph refuses GRAPH_USERS_FILTER combined with startsWith(userPrincipalName,…), "+
			"as the parallel streams send it, set GRAPH_USERS_PARALLEL=1 to list with one cursor", err)
	case re.Code == graph.CodeExpiredPageToken:
		return fmt.Errorf("%w: the page token expired before the next page was read, again after every restart", err)
	}
	return err
}

// adviseStorage says what to do about a failed storage operation. Every
// hint names the storage connection's setting; the operation's error
// already names the container and the blob.
func (j *Job) adviseStorage(err error, se *storage.Error) error {
	setting := j.opts.StorageSetting + " (GRAPH_USERS_STORAGE names it)"
	where := se.Container
	if se.Blob != "" {
		where += "/" + se.Blob
	}
	switch {
	case errors.Is(se, storage.ErrAuthentication) && se.Auth == storage.ManagedIdentity:
		return fmt.Errorf("%w: storage refused the managed identity's token for %s: check that its blob service "+
			"endpoint is the storage account's, in the identity's tenant and cloud", err, setting)
	case errors.Is(se, storage.ErrAuthentication):
		return fmt.Errorf("%w: storage refused the account key of %s: the key or signature is wrong, rotated or "+
			"expired (or this machine's clock is off): copy the storage account's current connection string into it", err, setting)
	case errors.Is(se, storage.ErrLeased):
		account := se.Account
		if account == "" {
			account = "<account>"
		}
		return fmt.Errorf("%w: a lease is held on the blob %s of the storage account of %s, and the job writes it only "+
			"when nobody holds one; if nothing should hold it, break it with `az storage blob lease break --account-name %s "+
			"--container-name %s --blob-name %s`, and the next run writes it", err, where, setting, account, se.Container, se.Blob)
	case errors.Is(se, storage.ErrForbidden):
		return fmt.Errorf("%w: give the identity the job signs in to storage with the role Storage Blob Data "+
			"Contributor on the container %s or its storage account (README, \"Delta mode\"), or check %s", err, se.Container, setting)
	case errors.Is(se, storage.ErrUnreachable):
		return fmt.Errorf("%w: the storage account did not answer: check %s "+
			"and that the account allows this Function App's network", err, setting)
	case errors.Is(se, storage.ErrConflict):
		return fmt.Errorf("%w: someone else wrote it since this run read it, such as a second Function App with "+
			"the same host ID (AzureFunctionsWebHost__hostid) on the storage of %s and GRAPH_USERS_CONTAINER; nothing was overwritten, and the next run reads it afresh", err, setting)
	case se.StatusCode == http.StatusUnauthorized:
		return fmt.Errorf("%w: storage refused the job's credentials: check %s", err, setting)
	}
	return fmt.Errorf("%w: in the storage account of %s", err, setting)
}
