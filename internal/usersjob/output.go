package usersjob

import (
	"fmt"

	"graphuserstimer/internal/joblog"
	"graphuserstimer/internal/storage"
)

// output is where one run's users or changes go, the same for a full
// listing and a delta round: their log lines (when LogEach), the export
// (when Export), and at the end the summary line and sentence, which say
// what became of the export.
type output struct {
	job  *Job
	r    *run
	noun string // what a line is, for errors: "user" or "change"
	exp  *export
	// writers is every line writer, flushed at the end of each page and
	// of the run.
	writers []*joblog.ObjectWriter
	saved   *storage.Committed // the export, once committed
}

// newOutput starts a run's output of objects called noun, exported, when
// the job exports, under kind/.
func (j *Job) newOutput(r *run, kind, noun string) (*output, error) {
	o := &output{job: j, r: r, noun: noun}
	if j.opts.Export {
		exp, err := j.newExport(r, kind, jsonLinesGzip)
		if err != nil {
			return nil, err
		}
		o.exp = exp
	}
	return o, nil
}

// lines is a writer of log lines called msg, or nil when the job logs no
// line for each object. Each writer writes its lines whole, so those of
// different writers never interleave.
func (o *output) lines(msg string) *joblog.ObjectWriter {
	if !o.job.opts.LogEach {
		return nil
	}
	w := o.job.out.Objects(msg)
	o.writers = append(o.writers, w)
	return w
}

// flush writes every writer's lines; the first error is returned.
func (o *output) flush() error {
	var first error
	for _, w := range o.writers {
		if err := w.Flush(); err != nil && first == nil {
			first = fmt.Errorf("write %s lines: %w", o.noun, err)
		}
	}
	return first
}

// export adds obj to the export, if there is one.
func (o *output) export(obj []byte) error {
	if o.exp == nil {
		return nil
	}
	return o.exp.write(obj)
}

// exportsAny reports whether there is an export and it holds an object.
func (o *output) exportsAny() bool { return o.exp != nil && o.exp.written() > 0 }

// commit makes the export, if there is one, visible.
func (o *output) commit() error {
	if o.exp == nil {
		return nil
	}
	saved, err := o.exp.commit(o.r)
	if err != nil {
		return err
	}
	o.saved = &saved
	return nil
}

// abort drops the export unless it was committed.
func (o *output) abort() {
	if o.exp != nil {
		o.exp.abort()
	}
}

// report logs the result line msg with attrs and keeps the summary for
// the response, each followed by what became of the export.
func (o *output) report(msg string, attrs []any, summary string) {
	switch {
	case o.saved != nil:
		attrs = append(attrs, "export", o.saved.Name, "export_bytes", o.saved.Bytes)
		summary += fmt.Sprintf(" Exported to %s/%s (%d bytes).", o.job.opts.Store.Name(), o.saved.Name, o.saved.Bytes)
	case o.exp != nil:
		// Only a round without a change gets here: no empty blob.
		attrs = append(attrs, "exported", false)
		summary += " Nothing to export: no blob written."
	}
	o.job.out.Results().Info(msg, attrs...)
	o.r.note(summary)
}
