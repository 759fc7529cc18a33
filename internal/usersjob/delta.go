package usersjob

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"graphuserstimer/internal/graph"
	"graphuserstimer/internal/joblog"
	"graphuserstimer/internal/storage"
)

// runDelta does a delta mode run: a full listing when there is no state yet
// or it cannot be followed, a round of changes from the saved link
// otherwise. Storage is read before Graph is asked anything.
func (j *Job) runDelta(r *run) error {
	if err := j.prepareStore(r); err != nil {
		return err
	}
	if err := j.checkHostID(); err != nil {
		return err
	}
	blob := &stateBlob{store: j.opts.Store, name: stateName(j.opts.HostID, j.opts.Function)}
	st, found, err := blob.read(r.ctx)
	if err != nil {
		return fmt.Errorf("read the delta state: %w", j.advise(r.ctx, err, graph.Stats{}))
	}
	if !found {
		j.noteOldState(r, blob)
		return j.fullListing(r, blob)
	}
	if why := j.unusable(r, blob, st); why != "" {
		r.warn(why)
		return j.fullListing(r, blob)
	}
	from := st.Link
	if st.ExportFrom != "" && j.opts.Export {
		r.warn("warning: the last delta round stopped before its export was saved: reading its changes again " +
			"from where that export began, so that each lands in an export")
		from = st.ExportFrom
	}
	err = j.round(r, blob, st, from)
	if expired, ok := errors.AsType[*graph.DeltaExpiredError](err); ok {
		r.warn(fmt.Sprintf("warning: Graph no longer knows the saved delta link (%v): listing every user again", expired.Response))
		return j.fullListing(r, blob)
	}
	return err
}

// unusable says why the saved state cannot be followed, as a warning, or
// is "" when it can.
func (j *Job) unusable(r *run, blob *stateBlob, st state) string {
	switch age := r.start.Sub(st.LinkSince); {
	case age > linkLifetime:
		return fmt.Sprintf("warning: the saved delta link is %s old, older than the 7 days Graph keeps one: listing every user again",
			age.Round(time.Hour))
	case st.Select != nil && !sameSelect(st.Select, j.opts.Query.Select):
		return fmt.Sprintf("warning: GRAPH_USERS_SELECT has changed since the saved delta link was taken (%s then, %s now), "+
			"and a round reports only the properties its link was taken with: listing every user again",
			strings.Join(st.Select, ","), strings.Join(j.opts.Query.Select, ","))
	case !j.client.OwnsLink(st.Link) || st.ExportFrom != "" && !j.client.OwnsLink(st.ExportFrom):
		// The state is another Graph's: its link was saved before
		// GRAPH_ENDPOINT changed, and that Graph never gets the token.
		return "warning: the saved delta link is not on GRAPH_ENDPOINT, which has changed since it was saved: listing every user again"
	case !isUsersDeltaLink(st.Link) || st.ExportFrom != "" && !isUsersDeltaLink(st.ExportFrom):
		// Followed, such a link would log every user it lists as changed
		// and save its links, and every later run would do the same.
		bad := st.Link
		if isUsersDeltaLink(bad) {
			bad = st.ExportFrom
		}
		return fmt.Sprintf("warning: the delta state %s/%s holds a link that is not a users delta link of GRAPH_ENDPOINT "+
			"(its path is %q, not %s, or it carries no $deltatoken or $skiptoken), such as one edited by hand or "+
			"another function's: listing every user again", j.opts.Store.Name(), blob.name, linkPath(bad), usersDeltaPath)
	}
	return ""
}

// usersDeltaPath is the path of the users delta function as Graph writes
// it in its links.
const usersDeltaPath = "/v1.0/users/delta"

// isUsersDeltaLink reports whether link, on GRAPH_ENDPOINT (OwnsLink checks
// that), is a link of a users delta round: the delta function of
// /v1.0/users, by its short or its qualified name, with the token of a
// round. The path is compared as Graph writes it.
func isUsersDeltaLink(link string) bool {
	u, err := url.Parse(link)
	if err != nil {
		return false
	}
	switch u.Path {
	case usersDeltaPath, usersDeltaPath + "()", "/v1.0/users/microsoft.graph.delta", "/v1.0/users/microsoft.graph.delta()":
	default:
		return false
	}
	q := u.Query()
	return q.Get("$deltatoken") != "" || q.Get("$skiptoken") != ""
}

// linkPath is link's path for a message: never its query, whose tokens
// are the tenant's place.
func linkPath(link string) string {
	u, err := url.Parse(link)
	if err != nil {
		return "unreadable"
	}
	return u.Path
}

// checkHostID refuses to keep anything in storage without a host ID: the
// blobs of every app sharing the account would mix.
func (j *Job) checkHostID() error {
	if j.opts.HostID == "" {
		return errors.New("no host ID to keep the state and exports under: set AzureFunctionsWebHost__hostid")
	}
	return nil
}

// noteOldState says, when there is no state yet, whether an earlier
// version's, kept before states were kept by host ID, is there. It is not
// taken over: any app sharing the account may have written it, and
// following another app's link is what keeping states apart prevents.
func (j *Job) noteOldState(r *run, blob *stateBlob) {
	old := oldStateName(j.opts.Function)
	if _, _, err := j.opts.Store.Get(r.ctx, old); err != nil {
		return
	}
	r.warn(fmt.Sprintf("warning: the delta state is now kept per Function App, as %s/%s; the state an earlier version "+
		"kept at %s/%s, which any app sharing the storage account may have written, is not used: listing every user; "+
		"delete that blob once no app of the account runs an earlier version",
		j.opts.Store.Name(), blob.name, j.opts.Store.Name(), old))
}

// fullListing lists every user, as list mode does, after taking a delta
// link to now, and saves that link once the listing is done: what changes
// while it runs comes in the next round, where logging it again does no
// harm. A listing that fails saves nothing.
func (j *Job) fullListing(r *run, blob *stateBlob) error {
	link, err := j.client.DeltaLatest(r.ctx, j.opts.Query.Select)
	if err != nil {
		return fmt.Errorf("get a delta link before the full listing: %w", j.advise(r.ctx, err, graph.Stats{}))
	}
	stats, err := j.listAll(r, "full")
	if err != nil {
		return err
	}
	st := state{
		Link:          link,
		LinkSince:     r.start,
		Select:        j.opts.Query.Select,
		FullListingAt: r.start,
		Last:          stateRun{At: j.opts.Now().UTC(), Mode: "full", Users: stats.Users, Pages: stats.Pages},
	}
	if err := blob.write(r.ctx, st); err != nil {
		return fmt.Errorf("listed every user, then could not save the delta state: %w", j.advise(r.ctx, err, stats))
	}
	return nil
}

// round follows one round of changes from the link from, logging and
// exporting each, and keeps its place in the state after every page whose
// lines are written. A round that reaches the run's deadline keeps its
// place, commits what it exported and succeeds with a warning.
func (j *Job) round(r *run, blob *stateBlob, prev state, from string) error {
	o, err := j.newOutput(r, "changes", "change")
	if err != nil {
		return err
	}
	defer o.abort()
	next := prev
	next.ExportFrom = ""
	if o.exp != nil {
		// Until its export is committed, a failed run carries on from
		// where the export began.
		next.ExportFrom = from
	}
	st, err := j.client.Delta(r.ctx, from, j.roundSink(r, o, blob, &next))
	if ferr := o.flush(); err == nil && ferr != nil {
		err = ferr
	}
	stopped := err != nil && j.opts.RunTimeout > 0 && errors.Is(r.ctx.Err(), context.DeadlineExceeded) &&
		!errors.Is(err, storage.ErrConflict)
	if _, expired := errors.AsType[*graph.DeltaExpiredError](err); expired {
		return err
	}
	if err != nil && !stopped {
		return fmt.Errorf("stopped after %d changes on %s in %s (%d retries, %d throttled): %w",
			st.Changed+st.Removed, plural(st.Pages, "page"), r.elapsed().Round(time.Millisecond), st.Retries, st.Throttled,
			j.advise(r.ctx, err, graph.Stats{Pages: st.Pages}))
	}
	if err := j.saveRound(r, o, blob, next, st, stopped); err != nil {
		return err
	}
	if stopped {
		r.warn(fmt.Sprintf("warning: the delta round reached the run's deadline of %s after %s: its place is saved, "+
			"and the next run carries on from there", j.opts.RunTimeout, plural(st.Pages, "page")))
	}
	o.report("changes listed", roundAttrs(r, st, stopped), roundSummary(r, st))
	return nil
}

// roundSink logs and exports each change and, after each page, keeps the
// round's place in next and the state blob.
func (j *Job) roundSink(r *run, o *output, blob *stateBlob, next *state) graph.DeltaSink {
	lines := changeLines{changed: o.lines("user changed"), removed: o.lines("user removed")}
	return graph.DeltaSink{
		Change: func(c graph.Change) error {
			if err := lines.write(c); err != nil {
				return err
			}
			return o.export(c.JSON)
		},
		Page: func(link string, last bool, st graph.DeltaStats) error {
			// The lines first, then the place: a change is logged once, and
			// a crash repeats one page at most.
			if err := o.flush(); err != nil {
				return err
			}
			next.Link = link
			if last {
				next.LinkSince = j.opts.Now().UTC()
			}
			next.Last = stateRun{At: j.opts.Now().UTC(), Mode: "delta", Changed: st.Changed, Removed: st.Removed, Pages: st.Pages}
			if err := blob.write(r.ctx, *next); err != nil {
				return fmt.Errorf("save the delta state: %w", err)
			}
			return nil
		},
		Warn: r.warn,
	}
}

// changeLines logs a round's changes in two writers, one for the users
// changed and one for those removed (both nil without LogEach), keeping
// Graph's order: a user may come twice on a page, removed and then back,
// so before a line goes to one writer the other's lines go out.
type changeLines struct {
	changed, removed *joblog.ObjectWriter
	last             *joblog.ObjectWriter // the writer of the latest line
}

// write logs c: a removal of a user with an id as its id and reason, any
// other change as Graph sent it.
func (l *changeLines) write(c graph.Change) error {
	if l.changed == nil {
		return nil
	}
	w, line := l.changed, c.JSON
	if c.Removed != "" {
		w = l.removed
	}
	if c.Removed != "" && c.ID != "" {
		line, _ = json.Marshal(struct {
			ID     string `json:"id"`
			Reason string `json:"reason"`
		}{c.ID, c.Removed})
	}
	if l.last != nil && l.last != w {
		if err := l.last.Flush(); err != nil {
			return fmt.Errorf("write change lines: %w", err)
		}
	}
	l.last = w
	return w.Write(line)
}

// saveRound keeps the place of a round that ended, at its deadline or not:
// commits its export, if it has a change (a round without one writes no
// empty blob), then saves the state with no export pending. A round
// without an export that did not stop saved its place with its last page.
func (j *Job) saveRound(r *run, o *output, blob *stateBlob, next state, st graph.DeltaStats, stopped bool) error {
	if o.exp == nil && !stopped {
		return nil
	}
	if o.exportsAny() {
		if err := o.commit(); err != nil {
			return fmt.Errorf("listed %d changes, then could not save their export: %w", st.Changed+st.Removed, err)
		}
	}
	next.ExportFrom = ""
	next.Last.Stopped = stopped
	ctx, cancel := afterRun(r)
	defer cancel()
	if err := blob.write(ctx, next); err != nil {
		return fmt.Errorf("save the delta state: %w", j.advise(ctx, err, graph.Stats{Pages: st.Pages}))
	}
	return nil
}

// roundAttrs is the result line of a round that ended.
func roundAttrs(r *run, st graph.DeltaStats, stopped bool) []any {
	attrs := []any{
		"mode", "delta",
		"changed", st.Changed,
		"removed", st.Removed,
		"pages", st.Pages,
		"duration_ms", r.elapsed().Milliseconds(),
		"retries", st.Retries,
		"throttled", st.Throttled,
		"withoutId", st.WithoutID,
	}
	if stopped {
		attrs = append(attrs, "stopped", true)
	}
	return attrs
}

// roundSummary is the sentence of a round that ended.
func roundSummary(r *run, st graph.DeltaStats) string {
	summary := fmt.Sprintf("Listed %d changes (%d new or updated users, %d removed) on %s in %s (%d retries, %d throttled responses).",
		st.Changed+st.Removed, st.Changed, st.Removed, plural(st.Pages, "page"), r.elapsed().Round(time.Millisecond), st.Retries, st.Throttled)
	if st.WithoutID > 0 {
		summary += fmt.Sprintf(" %s without an id, each logged.", plural(st.WithoutID, "change"))
	}
	return summary
}
