package usersjob

import (
	"fmt"
	"time"

	"graphuserstimer/internal/graph"
	"graphuserstimer/internal/joblog"
)

// listAll lists every user: logs each one (when LogEach), exports each one
// (when Export) and writes the summary, which carries mode. The export
// becomes visible only if the listing succeeds.
func (j *Job) listAll(r *run, mode string) (graph.Stats, error) {
	o, err := j.newOutput(r, "users", "user")
	if err != nil {
		return graph.Stats{}, err
	}
	defer o.abort()
	st, err := j.client.ListUsers(r.ctx, j.opts.Query, j.listSink(r, o))
	if ferr := o.flush(); err == nil {
		err = ferr
	}
	if err == nil {
		if err := o.commit(); err != nil {
			// The commit has said what to do about storage.
			return st, fmt.Errorf("listed %s, then could not save their export: %w", progress(st), err)
		}
	}
	if err != nil {
		return st, fmt.Errorf("stopped after %s in %s (%d retries, %d throttled): %w",
			progress(st), r.elapsed().Round(time.Millisecond), st.Retries, st.Throttled, j.advise(r.ctx, err, st))
	}
	o.report("users listed", listAttrs(r, mode, st), listSummary(r, st))
	return st, nil
}

// listSink logs and exports each user, gathering each stream's lines in a
// writer of its own, which writes them whole: lines of different streams
// never interleave.
func (j *Job) listSink(r *run, o *output) graph.Sink {
	var users []*joblog.ObjectWriter
	if j.opts.LogEach {
		users = make([]*joblog.ObjectWriter, max(1, j.opts.Query.Streams))
		for i := range users {
			users[i] = o.lines("user")
		}
	}
	every := j.opts.ProgressEvery
	if every <= 0 {
		every = DefaultProgressEvery
	}
	return graph.Sink{
		User: func(stream int, user []byte) error {
			if users != nil {
				if err := users[stream].Write(user); err != nil {
					return err
				}
			}
			return o.export(user)
		},
		Warn: r.warn,
		Page: func(stream int, st graph.Stats) {
			if users != nil {
				// A write error surfaces from the next Write or the last Flush.
				_ = users[stream].Flush()
			}
			if st.Pages%every == 0 {
				j.logProgress(r, st)
			}
		},
	}
}

// logProgress says how far the listing got, so that a long run shows in
// the log stream that it is alive.
func (j *Job) logProgress(r *run, st graph.Stats) {
	elapsed := r.elapsed()
	j.log.Info("progress", "users", st.Users, "pages", st.Pages,
		"users_per_s", int(float64(st.Users)/max(elapsed.Seconds(), 1e-3)),
		"retries", st.Retries, "throttled", st.Throttled)
}

// listAttrs is the result line of a listing that succeeded.
func listAttrs(r *run, mode string, st graph.Stats) []any {
	attrs := []any{
		"mode", mode,
		"users", st.Users,
		"pages", st.Pages,
		"duration_ms", r.elapsed().Milliseconds(),
		"retries", st.Retries,
		"throttled", st.Throttled,
		"restarts", st.Restarts,
		"duplicates", st.Duplicates,
		"withoutId", st.WithoutID,
		"streams", st.Streams,
	}
	if st.Counted {
		attrs = append(attrs, "expected", st.Expected)
	}
	return attrs
}

// listSummary is the sentence of a listing that succeeded.
func listSummary(r *run, st graph.Stats) string {
	summary := fmt.Sprintf("Listed %s in %s (%d retries, %d throttled responses, %d restarts",
		progress(st), r.elapsed().Round(time.Millisecond), st.Retries, st.Throttled, st.Restarts)
	if st.Streams > 1 {
		summary += fmt.Sprintf(", %d streams", st.Streams)
	}
	if st.Counted {
		summary += fmt.Sprintf(", Graph counts %d", st.Expected)
	}
	if st.Duplicates > 0 {
		summary += fmt.Sprintf(", %d users Graph sent twice logged once", st.Duplicates)
	}
	if st.WithoutID > 0 {
		summary += fmt.Sprintf(", %d users without an id, each logged", st.WithoutID)
	}
	return summary + ")."
}
