package graph

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Query says which users a listing returns, how many fit on a page and how
// many streams may list them at once.
type Query struct {
	// Select lists the properties each user carries; it should hold "id".
	Select []string
	// Filter is an OData $filter, or empty for every user.
	Filter string
	// PageSize is the page size, sent as $top: 1 to 999.
	PageSize int
	// Streams is how many listings may run at once when the users do not
	// fit on one page: each lists the users whose userPrincipalName starts
	// with one prefix. 0 or 1 is a single cursor.
	Streams int
}

// Stats counts what a listing did. With several streams, the counts add up
// over them.
type Stats struct {
	// Users is how many users were handed to the sink, each once.
	Users int
	// Pages is how many pages were read to the end.
	Pages int
	// Retries is how many requests or pages were tried again.
	Retries int
	// Throttled is how many responses were 429, 503 or 504.
	Throttled int
	// Restarts is how many times a listing began again at its first page
	// because a page token expired.
	Restarts int
	// Duplicates is how many users Graph sent again after they were handed
	// over, and were skipped: not those a page read again or a restarted
	// listing repeats, but a user Graph itself lists twice, such as one
	// renamed while streams list it.
	Duplicates int
	// WithoutID is how many of the users came without an id, though the
	// listing asks for one: each is handed over, since no user without an
	// id can be told from another, and none is ever a duplicate.
	WithoutID int
	// Streams is how many streams listed users at once: 1 for a single
	// cursor, which is also what a tenant that fits on one page takes.
	Streams int
	// Expected is Graph's own count of the users, when a split listing
	// asked for it (Counted): eventually consistent, so it may lag.
	Expected int
	// Counted says Expected holds Graph's count.
	Counted bool
}

// Sink receives what a listing finds. Only User is required. With several
// streams, User and Page are called from each stream's goroutine: stream,
// from 0, says which, and calls for one stream never overlap.
type Sink struct {
	// User receives each user's JSON object exactly once per listing. The
	// bytes are only valid during the call. An error ends the listing.
	User func(stream int, user []byte) error
	// Warn receives a line for each retry and restart, as it happens. It
	// must be safe for concurrent use.
	Warn func(msg string)
	// Page receives the running totals, over every stream, after each page
	// stream read.
	Page func(stream int, total Stats)
}

// ListUsers lists the users of the tenant from GET /v1.0/users, following
// @odata.nextLink to the last page, and hands each user to the sink exactly
// once: a page whose body breaks off is fetched again and its users already
// handed over are skipped, and so is every user already handed over when an
// expired page token makes the listing start over, or when Graph sends a
// user twice. A user without an id, which Graph sends only in a malformed
// answer, is handed over even when another alike came before it: nothing
// tells the two apart (Stats.WithoutID). With q.Streams above 1 and more
// users than one page holds, the listing is split by the first characters
// of userPrincipalName (see split.go). The Stats say how far the listing
// got, on error too.
func (c *Client) ListUsers(ctx context.Context, q Query, sink Sink) (Stats, error) {
	if sink.Warn == nil {
		sink.Warn = func(string) {}
	}
	if sink.Page == nil {
		sink.Page = func(int, Stats) {}
	}
	ls := &userListing{g: newPagerGroup(c, sink.Warn), q: q, sink: sink, seen: newIDSet()}
	defer ls.seen.close()
	err := ls.list(ctx)
	return ls.g.tally.snapshot(), err
}

// userListing is one call's listing of users: the record of users handed
// over and the pagers' group, shared by all its readings.
type userListing struct {
	g    *pagerGroup
	q    Query
	sink Sink
	seen *idSet
	// sampled is the users without an id of a split listing's first page;
	// warnWithoutID warns of the first user without an id of the call.
	sampled       *sampledWithoutID
	warnWithoutID sync.Once
}

// list lists every user, with one cursor, or split into streams when the
// query allows it and the first page shows there is more than one.
func (ls *userListing) list(ctx context.Context) error {
	first := ls.newReading(0, "", ls.usersURL(ls.q.Filter, ls.q.PageSize, ls.q.Select))
	ls.g.tally.add(func(st *Stats) { st.Streams = 1 })
	if ls.q.Streams <= 1 {
		return first.pg.run(ctx)
	}
	// The first page alone, and no page fetched ahead: a tenant that fits
	// on it costs one request, and a larger one is listed by streams.
	sample := &sample{}
	if hasUPN(ls.q.Select) {
		first.pg.consumer = watched{first, sample.observe}
	}
	more, err := first.pg.firstPage(ctx)
	if err != nil || more == "" {
		return err
	}
	return ls.split(ctx, first, more, sample)
}

// usersURL is the first page's URL of a listing of the users filter
// matches, with top to a page and the properties sel.
func (ls *userListing) usersURL(filter string, top int, sel []string) string {
	t := ""
	if top > 0 {
		t = strconv.Itoa(top)
	}
	return ls.g.c.ep.URL("/v1.0/users", "$select", strings.Join(sel, ","), "$top", t, "$filter", filter)
}

// newReading returns a reading of the listing that starts at first, whose
// users go to the sink as stream's; label names it in messages.
func (ls *userListing) newReading(stream int, label, first string) *userReading {
	r := &userReading{ls: ls, stream: stream}
	r.pg = ls.g.newPager("list users", label, first, r)
	return r
}

// userReading is the consumer of one reading of a listing, from its first
// page to its last: it hands each user to the sink unless the listing
// handed it over before.
type userReading struct {
	ls     *userListing
	pg     *pager
	stream int
	// pages, users, duplicates are what the reading has not yet added to
	// the totals.
	pages, users, duplicates int
	// handedOver counts the users this reading handed over.
	handedOver int
	// epoch is the current pass's; mine are the earlier readings that
	// this one repeats on purpose: the same reading before a restart, and
	// the first page that a split listing starts from.
	epoch epoch
	mine  []epoch
	// onPage holds the users handed over from the current page, and again
	// those of them from earlier attempts at it, to be skipped when it is
	// read again.
	onPage []idKey
	again  map[idKey]bool
	// noID counts the users without an id, which onPage cannot hold.
	noID withoutID
}

// pass begins a pass from the first page: the first, or again after a page
// token expired.
func (r *userReading) pass() {
	if r.epoch != 0 {
		r.mine = append(r.mine, r.epoch)
	}
	r.epoch = r.ls.seen.newEpoch()
	r.noID.restart()
}

// attempt starts an attempt at a page.
func (r *userReading) attempt(again bool) {
	if !again {
		r.onPage = r.onPage[:0]
		r.again = nil
		r.noID.newPage()
	}
	r.noID.atPage()
}

// broke keeps the users handed over from the page, to skip them when it
// is read again.
func (r *userReading) broke() (int, string) {
	r.again = make(map[idKey]bool, len(r.onPage))
	for _, k := range r.onPage {
		r.again[k] = true
	}
	return len(r.again) + r.noID.onThisPage, "users"
}

// page counts a page read whole, and reports the totals.
func (r *userReading) page(context.Context, string) error {
	r.pages++
	r.noID.pageDone()
	r.ls.sink.Page(r.stream, r.addUp())
	return nil
}

func (r *userReading) total() int { return r.handedOver }

func (r *userReading) end() { r.addUp() }

// addUp adds what the reading counted since the last time to the totals,
// and returns them, the page just read included.
func (r *userReading) addUp() Stats {
	users, dups, pages, noID := r.users, r.duplicates, r.pages, r.noID.pending
	r.users, r.duplicates, r.pages, r.noID.pending = 0, 0, 0, 0
	return r.ls.g.tally.add(func(st *Stats) {
		st.Users += users
		st.Duplicates += dups
		st.Pages += pages
		st.WithoutID += noID
	})
}

// item hands a user to the sink unless it was handed over before in this
// call. A repeat is counted as a duplicate unless this reading repeats it
// on purpose: an earlier attempt at this page, the reading before a
// restart, or the first page a split listing starts from.
func (r *userReading) item(user, id []byte) error {
	if len(id) == 0 {
		// No id, or an empty one: nothing to tell a duplicate by.
		return r.itemWithoutID(user)
	}
	seen := r.ls.seen
	k := seen.key(id)
	added, had := seen.add(k, r.epoch)
	if !added {
		switch {
		case r.again[k]:
		case slices.Contains(r.mine, had):
			// Counted once: if Graph sends it again now, that is a duplicate.
			seen.retag(k, r.epoch)
		default:
			r.duplicates++
		}
		return nil
	}
	r.onPage = append(r.onPage, k)
	if err := r.ls.sink.User(r.stream, user); err != nil {
		return err
	}
	r.users++
	r.handedOver++
	return nil
}

// watched is a consumer whose items see also looks at: the first page of a
// split listing, which is also its sample.
type watched struct {
	pageConsumer
	see func(item []byte)
}

func (w watched) item(obj, id []byte) error {
	w.see(obj)
	return w.pageConsumer.item(obj, id)
}

// watcher is a consumer that only looks at each item, and hands none over:
// the sample's own reading, the case probe. Its pages are no pages of the
// listing.
type watcher func(item []byte)

func (w watcher) pass()                              {}
func (w watcher) attempt(bool)                       {}
func (w watcher) item(obj, _ []byte) error           { w(obj); return nil }
func (w watcher) broke() (int, string)               { return 0, "users" }
func (w watcher) page(context.Context, string) error { return nil }
func (w watcher) total() int                         { return 0 }
func (w watcher) end()                               {}
