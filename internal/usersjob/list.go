package usersjob

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"graphuserstimer/internal/graph"
	"graphuserstimer/internal/joblog"
	"graphuserstimer/internal/storage"
)

// exportTime is how an export's name says when its run began:
// 2026-11-30T23-00-00.000Z, with no colon, which some tools refuse in
// names. The milliseconds keep apart the exports of runs that begin in the
// same second, such as a manual run after a timer's: committing a block
// list replaces a blob of the same name whole.
const exportTime = "2006-01-02T15-04-05.000Z"

// listAll lists every user: logs each one (when LogEach), exports each one
// (when Export) and writes the summary, which carries mode. The export
// becomes visible only if the listing succeeds.
func (j *Job) listAll(r *run, mode string) (graph.Stats, error) {
	var exp *export
	if j.opts.Export {
		var err error
		if exp, err = j.newExport(r, "users"); err != nil {
			return graph.Stats{}, err
		}
		defer exp.abort()
	}

	// Each stream gathers its user lines in a writer of its own, which
	// writes them whole: lines of different streams never interleave.
	var users []*joblog.ObjectWriter
	if j.opts.LogEach {
		users = make([]*joblog.ObjectWriter, max(1, j.opts.Query.Streams))
		for i := range users {
			users[i] = j.out.Objects("user")
		}
	}
	every := j.opts.ProgressEvery
	if every <= 0 {
		every = DefaultProgressEvery
	}
	sink := graph.Sink{
		User: func(stream int, user []byte) error {
			if users != nil {
				if err := users[stream].Write(user); err != nil {
					return err
				}
			}
			if exp != nil {
				return exp.write(user)
			}
			return nil
		},
		Warn: r.warn,
		Page: func(stream int, st graph.Stats) {
			if users != nil {
				// A write error surfaces from the next Write or the last Flush.
				_ = users[stream].Flush()
			}
			if st.Pages%every == 0 {
				elapsed := r.elapsed()
				j.log.Info("progress", "users", st.Users, "pages", st.Pages,
					"users_per_s", int(float64(st.Users)/max(elapsed.Seconds(), 1e-3)),
					"retries", st.Retries, "throttled", st.Throttled)
			}
		},
	}

	st, err := j.client.ListUsers(r.ctx, j.opts.Query, sink)
	for _, w := range users {
		if ferr := w.Flush(); err == nil && ferr != nil {
			err = fmt.Errorf("write user lines: %w", ferr)
		}
	}
	var saved storage.Committed
	if err == nil && exp != nil {
		saved, err = exp.commit(r)
	}
	if err != nil {
		return st, fmt.Errorf("stopped after %s in %s (%d retries, %d throttled): %w",
			progress(st), r.elapsed().Round(time.Millisecond), st.Retries, st.Throttled, j.advise(r.ctx, err, st))
	}

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
	if exp != nil {
		attrs = append(attrs, "export", saved.Name, "export_bytes", saved.Bytes)
	}
	j.out.Results().Info("users listed", attrs...)

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
	summary += ")."
	if exp != nil {
		summary += fmt.Sprintf(" Exported to %s/%s (%d bytes).", j.opts.Store.Name(), saved.Name, saved.Bytes)
	}
	r.note(summary)
	return st, nil
}

// export is one run's export file, written as the run goes and committed
// at its end.
type export struct {
	e      *storage.Export
	cancel context.CancelFunc // ends the staging's context
	done   bool
	lines  atomic.Int64 // written so far
}

// lines recycles the buffers lines are made in, one per stream at a time.
var lines = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

// newExport starts the run's export under kind/<host id>/, named by when it
// began.
func (j *Job) newExport(r *run, kind string) (*export, error) {
	// Blocks are staged under a context of their own, which outlives the
	// run's deadline by the time a run may take to keep its place: a round
	// stopped at its deadline commits what it read, blocks in flight
	// included. A run that fails aborts the export, which stops them.
	ctx, cancel := context.WithCancel(context.WithoutCancel(r.ctx))
	if dl, ok := r.ctx.Deadline(); ok {
		ctx, cancel = context.WithDeadline(context.WithoutCancel(r.ctx), dl.Add(saveTimeout))
	}
	if err := j.checkHostID(); err != nil {
		cancel()
		return nil, err
	}
	e, err := j.opts.Store.NewExport(ctx, kind+"/"+j.opts.HostID+"/"+r.start.Format(exportTime)+".jsonl.gz")
	if err != nil {
		cancel()
		return nil, j.advise(r.ctx, err, graph.Stats{})
	}
	return &export{e: e, cancel: cancel}, nil
}

// write adds an object as one line, the same the log line carries. Safe for
// concurrent use by streams: Export serialises its lines, so write copies
// the object before it takes the lock.
func (x *export) write(obj []byte) error {
	buf := lines.Get().(*[]byte)
	defer lines.Put(buf)
	line, err := joblog.AppendLine((*buf)[:0], obj)
	*buf = line
	if err != nil {
		return fmt.Errorf("export line: %w", err)
	}
	if err := x.e.WriteLine(line); err != nil {
		return err
	}
	x.lines.Add(1)
	return nil
}

// commit makes the export visible. A run whose context has ended (a delta
// round that reached its deadline) still commits what it wrote, with a
// short time of its own.
func (x *export) commit(r *run) (storage.Committed, error) {
	x.done = true
	defer x.cancel()
	ctx, cancel := afterRun(r)
	defer cancel()
	c, err := x.e.Commit(ctx)
	if err != nil {
		return c, r.job.advise(ctx, err, graph.Stats{})
	}
	return c, nil
}

// abort drops an export that was not committed: nothing becomes visible.
func (x *export) abort() {
	if !x.done {
		x.e.Abort()
		x.cancel()
	}
}
