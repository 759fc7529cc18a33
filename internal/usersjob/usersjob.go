// Package usersjob is one run of the job: list every user of the tenant
// through Graph, log each one, and sum up.
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
)

// Options configures a Job.
type Options struct {
	// Query says which users to list and their page size.
	Query graph.Query
	// LogEach gives every user a log line of its own.
	LogEach bool
	// ClientID names the managed identity in error messages.
	ClientID string
	// IdentitySource names where tokens come from, in error messages.
	IdentitySource string
	// RunTimeout, when not zero, bounds each run: it stops, says how far it
	// got and fails before the host's functionTimeout kills the process.
	RunTimeout time.Duration
	// ProgressEvery is how many pages go between progress lines; zero means
	// DefaultProgressEvery.
	ProgressEvery int
}

// DefaultProgressEvery is how many pages go between progress lines, so that a
// long run shows in the log stream that it is alive.
const DefaultProgressEvery = 10

// Job lists the tenant's users. It is built once at start-up and reused by
// every invocation, so the client's token cache outlives a run.
type Job struct {
	client *graph.Client
	out    *joblog.Output
	log    *slog.Logger
	opts   Options
}

// New returns a Job that lists users through client and logs to out.
func New(client *graph.Client, out *joblog.Output, opts Options) *Job {
	return &Job{client: client, out: out, log: out.Logger(), opts: opts}
}

// Run lists every user once. It returns the lines for the invocation
// response: the warnings and a summary; on failure, how far it got.
func (j *Job) Run(ctx context.Context) ([]string, error) {
	start := time.Now()
	if j.opts.RunTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, j.opts.RunTimeout)
		defer cancel()
	}
	var (
		mu   sync.Mutex
		logs []string
	)
	sink := graph.Sink{
		User: func(int, []byte) error { return nil },
		Warn: func(msg string) {
			j.log.Warn(msg)
			mu.Lock()
			logs = append(logs, msg)
			mu.Unlock()
		},
	}
	// Each stream gathers its user lines in a writer of its own, which
	// writes them whole: lines of different streams never interleave.
	var users []*joblog.ObjectWriter
	if j.opts.LogEach {
		users = make([]*joblog.ObjectWriter, max(1, j.opts.Query.Streams))
		for i := range users {
			users[i] = j.out.Objects("user")
		}
		sink.User = func(stream int, user []byte) error { return users[stream].Write(user) }
	}
	every := j.opts.ProgressEvery
	if every <= 0 {
		every = DefaultProgressEvery
	}
	sink.Page = func(stream int, st graph.Stats) {
		if users != nil {
			// A write error surfaces from the next Write or the last Flush.
			_ = users[stream].Flush()
		}
		if st.Pages%every == 0 {
			elapsed := time.Since(start)
			j.log.Info("progress", "users", st.Users, "pages", st.Pages,
				"users_per_s", int(float64(st.Users)/max(elapsed.Seconds(), 1e-3)),
				"retries", st.Retries, "throttled", st.Throttled)
		}
	}

	st, err := j.client.ListUsers(ctx, j.opts.Query, sink)
	for _, w := range users {
		if ferr := w.Flush(); err == nil && ferr != nil {
			err = fmt.Errorf("write user lines: %w", ferr)
		}
	}
	elapsed := time.Since(start)
	if err != nil {
		return logs, fmt.Errorf("stopped after %s in %s (%d retries, %d throttled): %w",
			progress(st), elapsed.Round(time.Millisecond), st.Retries, st.Throttled, j.advise(ctx, err, st))
	}
	attrs := []any{
		"users", st.Users,
		"pages", st.Pages,
		"duration_ms", elapsed.Milliseconds(),
		"retries", st.Retries,
		"throttled", st.Throttled,
		"restarts", st.Restarts,
		"duplicates", st.Duplicates,
		"streams", st.Streams,
	}
	if st.Counted {
		attrs = append(attrs, "expected", st.Expected)
	}
	j.out.Results().Info("users listed", attrs...)
	summary := fmt.Sprintf("Listed %s in %s (%d retries, %d throttled responses, %d restarts",
		progress(st), elapsed.Round(time.Millisecond), st.Retries, st.Throttled, st.Restarts)
	if st.Streams > 1 {
		summary += fmt.Sprintf(", %d streams", st.Streams)
	}
	if st.Counted {
		summary += fmt.Sprintf(", Graph counts %d", st.Expected)
	}
	if st.Duplicates > 0 {
		summary += fmt.Sprintf(", %d users Graph sent twice logged once", st.Duplicates)
	}
	return append(logs, summary+")."), nil
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
// job gives is here, from the facts the graph package reports and how far
// the run got (st).
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
