package usersjob

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"graphuserstimer/internal/graph"
	"graphuserstimer/internal/joblog"
	"graphuserstimer/internal/storage"
)

// format is how an export encodes its objects into bytes: another format
// is another value of this type, in a file of its own (jsonlgz.go is the
// one the job writes).
type format struct {
	// ext ends the export's name.
	ext string
	// contentType is the blob's Content-Type.
	contentType string
	// newEncoder starts encoding into w, the blob's bytes.
	newEncoder func(w io.Writer) (encoder, error)
}

// encoder writes an export's objects. The export calls it under its lock,
// one call at a time.
type encoder interface {
	// Encode writes one object: compact JSON, as its log line carries it.
	// obj is the caller's again when Encode returns.
	Encode(obj []byte) error
	// Close writes what the encoder holds back, before the blob's commit.
	Close() error
}

// exportTime is how an export's name says when its run began:
// 2026-11-30T23-00-00.000Z, with no colon, which some tools refuse in
// names. The milliseconds keep apart the exports of runs that begin in the
// same second, such as a manual run after a timer's: committing a block
// list replaces a blob of the same name whole.
const exportTime = "2006-01-02T15-04-05.000Z"

// saveTimeout is how long a run whose deadline has come may still take to
// keep its place: commit its export and write its state. The run timeout
// leaves 30 s before the host's functionTimeout.
const saveTimeout = 15 * time.Second

// afterRun is a context for keeping the run's place: the run's own while it
// lasts, then one of saveTimeout.
func afterRun(r *run) (context.Context, context.CancelFunc) {
	if r.ctx.Err() == nil {
		return context.WithCancel(r.ctx)
	}
	return context.WithTimeout(context.WithoutCancel(r.ctx), saveTimeout)
}

// export is one run's export file, written as the run goes and committed
// at its end.
type export struct {
	blob   *storage.BlobWriter
	cancel context.CancelFunc // ends the staging's context
	done   bool

	mu    sync.Mutex
	enc   encoder
	lines int64 // written so far
}

// linePool recycles the buffers lines are made in, one per stream at a
// time.
var linePool = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

// newExport starts the run's export under kind/<host id>/, named by when it
// began, in the format f.
func (j *Job) newExport(r *run, kind string, f format) (*export, error) {
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
	name := kind + "/" + j.opts.HostID + "/" + r.start.Format(exportTime) + f.ext
	blob, err := j.opts.Store.NewBlobWriter(ctx, name, f.contentType)
	if err != nil {
		cancel()
		return nil, j.advise(r.ctx, err, graph.Stats{})
	}
	enc, err := f.newEncoder(blob)
	if err != nil {
		blob.Abort()
		cancel()
		return nil, fmt.Errorf("export %s: %w", name, err)
	}
	return &export{blob: blob, enc: enc, cancel: cancel}, nil
}

// write adds an object, the same the log line carries. Safe for concurrent
// use by streams: the object is copied before the lock is taken.
func (x *export) write(obj []byte) error {
	buf := linePool.Get().(*[]byte)
	defer linePool.Put(buf)
	line, err := joblog.AppendLine((*buf)[:0], obj)
	*buf = line
	if err != nil {
		return fmt.Errorf("export line: %w", err)
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if err := x.enc.Encode(line); err != nil {
		return err
	}
	x.lines++
	return nil
}

// written is how many objects the export holds.
func (x *export) written() int64 {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.lines
}

// commit makes the export visible. A run whose context has ended (a delta
// round that reached its deadline) still commits what it wrote, with a
// short time of its own.
func (x *export) commit(r *run) (storage.Committed, error) {
	x.done = true
	defer x.cancel()
	ctx, cancel := afterRun(r)
	defer cancel()
	x.mu.Lock()
	err := x.enc.Close()
	x.mu.Unlock()
	var c storage.Committed
	if err == nil {
		c, err = x.blob.Commit(ctx)
	} else {
		x.blob.Abort()
	}
	if err != nil {
		return c, r.job.advise(ctx, err, graph.Stats{})
	}
	return c, nil
}

// abort drops an export that was not committed: nothing becomes visible.
func (x *export) abort() {
	if !x.done {
		x.blob.Abort()
		x.cancel()
	}
}
