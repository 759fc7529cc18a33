package graph

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Query says which users a listing returns, how many fit on a page and how
// many streams may list them at once.
type Query struct {
	// Select lists the properties each user carries; it should hold "id".
	Select []string
	// Filter is an OData $filter, or empty for every user.
	Filter string
	// Top is the page size, 1 to 999.
	Top int
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

// maxRestarts bounds how often an expired page token starts a listing over.
const maxRestarts = 3

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
	ls := &listing{c: c, q: q, sink: sink, seen: newIDSet()}
	defer ls.seen.close()
	err := ls.list(ctx)
	return ls.tally.snapshot(), err
}

// listing is one run's listing: the record of users handed over, the
// totals and the throttling gate, shared by all its readings.
type listing struct {
	c     *Client
	q     Query
	sink  Sink
	seen  *idSet
	tally tally
	gate  gate
	// sampled is the users without an id of a split listing's first page;
	// warnWithoutID warns of the first user without an id of the run.
	sampled       *sampledWithoutID
	warnWithoutID sync.Once
}

// list lists every user, with one cursor, or split into streams when the
// query allows it and the first page shows there is more than one.
func (ls *listing) list(ctx context.Context) error {
	first := ls.newLister(0, "", ls.usersURL(ls.q.Filter, ls.q.Top, ls.q.Select))
	ls.tally.add(func(st *Stats) { st.Streams = 1 })
	if ls.q.Streams <= 1 {
		return first.run(ctx)
	}
	// The first page alone, and no page fetched ahead: a tenant that fits
	// on it costs one request, and a larger one is listed by streams.
	first.firstPageOnly = true
	sample := &sample{}
	if hasUPN(ls.q.Select) {
		first.observe = sample.observe
	}
	if err := first.run(ctx); err != nil {
		return err
	}
	if first.more == "" {
		return nil
	}
	return ls.split(ctx, first, sample)
}

// usersURL is the first page's URL of a listing of the users filter
// matches, with top to a page and the properties sel.
func (ls *listing) usersURL(filter string, top int, sel []string) string {
	t := ""
	if top > 0 {
		t = strconv.Itoa(top)
	}
	return ls.c.ep.URL("/v1.0/users", "$select", strings.Join(sel, ","), "$top", t, "$filter", filter)
}

// newLister returns a reading of the listing that starts at first, whose
// users go to the sink as stream's; label names it in messages.
func (ls *listing) newLister(stream int, label, first string) *lister {
	return &lister{ls: ls, c: ls.c, stream: stream, label: label, first: first}
}

// tally is the running totals of a listing, over its streams.
type tally struct {
	mu sync.Mutex
	st Stats
}

// add changes the totals and returns them as they are then.
func (t *tally) add(f func(*Stats)) Stats {
	t.mu.Lock()
	defer t.mu.Unlock()
	f(&t.st)
	return t.st
}

func (t *tally) snapshot() Stats { return t.add(func(*Stats) {}) }

// gate holds every stream's next request back while Graph asks the app to
// wait: Graph throttles the app, not one stream.
type gate struct {
	mu    sync.Mutex
	until time.Time
}

// hold keeps requests back for d from now, unless they are held longer.
func (g *gate) hold(d time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if t := time.Now().Add(d); t.After(g.until) {
		g.until = t
	}
}

// pass waits until requests may go again.
func (g *gate) pass(ctx context.Context) error {
	g.mu.Lock()
	d := time.Until(g.until)
	g.mu.Unlock()
	if d <= 0 {
		return nil
	}
	return wait(ctx, d)
}

// lister is one reading of a listing: from its first page to its last,
// restarted when a page token expires.
type lister struct {
	ls     *listing
	c      *Client
	stream int
	label  string // such as "prefix 'ja'", or empty for the only cursor
	first  string
	header http.Header // sent with every request
	// firstPageOnly stops the reading after its first page, with no page
	// fetched ahead; more is then the link it stopped at.
	firstPageOnly bool
	more          string
	// observe, when set, sees each user of the reading, handed over or not;
	// with observeOnly, users are only seen, never handed over.
	observe     func(user []byte)
	observeOnly bool
	// A delta round's reading hands its changes to these instead: onUser
	// each change, atPage the start of each attempt at a page (whether the
	// page is read again), pageDone each page read, with the link the round
	// carries on from; handedOnPage says how many changes of the current
	// page were handed over, for warnings; deltaLink is the link its last
	// page ends with.
	onUser       func(change, id []byte) error
	atPage       func(again bool)
	pageDone     func(link string) error
	handedOnPage func() int
	deltaLink    string
	// pages counts this reading's pages, of which counted are in the
	// totals; users and duplicates are what it has not yet added to them.
	pages, users, duplicates int
	counted, restarts        int
	// handed counts the users this reading handed over.
	handed int
	// epoch is the current reading's; mine are the earlier readings that
	// this one repeats on purpose: the same listing before a restart, and
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
	// renewed says a new token was asked for on the current page, after
	// Graph refused the one before; malformed counts the attempts at it
	// that came whole but were not a valid page.
	renewed   bool
	malformed int
	// followed holds a keyed hash of every link this reading followed: a
	// link followed twice is a loop.
	followed map[[2]uint64]bool
	// reader's buffer serves every page.
	reader pageReader
}

// where names the page the reading is at, for messages.
func (l *lister) where() string {
	if l.label == "" {
		return fmt.Sprintf("page %d", l.pages+1)
	}
	return fmt.Sprintf("%s, page %d", l.label, l.pages+1)
}

// failed says where the reading failed: which page of a listing, or of a
// delta round, whose label says so already.
func (l *lister) failed(err error) error {
	if l.onUser != nil {
		return fmt.Errorf("%s: %w", l.where(), err)
	}
	return fmt.Errorf("list users %s: %w", l.where(), err)
}

// run follows the reading from its first page to its last.
func (l *lister) run(ctx context.Context) error {
	l.startReading()
	return l.read(ctx, l.first)
}

// resume goes on with a reading that stopped after its first page, from
// the link it stopped at, to its last page.
func (l *lister) resume(ctx context.Context) error {
	l.firstPageOnly = false
	return l.read(ctx, l.more)
}

// read follows the reading from the page at from to its last.
func (l *lister) read(ctx context.Context, from string) error {
	var ahead *prefetch
	defer func() {
		ahead.discard()
		l.addUp()
	}()
	for pageURL := from; pageURL != ""; {
		if err := l.follow(pageURL); err != nil {
			return l.failed(err)
		}
		link, next, err := l.page(ctx, pageURL, ahead)
		ahead = next
		if l.expired(err, pageURL) {
			l.restarts++
			l.ls.tally.add(func(st *Stats) { st.Restarts++ })
			l.warn(fmt.Sprintf("the page token expired after %d users on %d pages; listing again from the first page, skipping users already logged", l.handed, l.pages))
			l.startReading()
			pageURL = l.first
			continue
		}
		if err != nil {
			return l.failed(err)
		}
		l.pages++
		l.noID.pageDone()
		if l.pageDone != nil {
			next := link
			if next == "" {
				next = l.deltaLink
			}
			if err := l.pageDone(next); err != nil {
				return err
			}
		} else {
			l.ls.sink.Page(l.stream, l.addUp())
		}
		pageURL = link
		if l.firstPageOnly {
			l.more = link
			return nil
		}
	}
	return nil
}

// addUp adds what the reading counted since the last time to the totals,
// and returns them, the page just read included.
func (l *lister) addUp() Stats {
	users, dups, pages, noID := l.users, l.duplicates, l.pages-l.counted, l.noID.pending
	l.users, l.duplicates, l.counted, l.noID.pending = 0, 0, l.pages, 0
	if l.observeOnly {
		// A sample's or a probe's page lists no user: it is no page of
		// the listing.
		pages = 0
	}
	return l.ls.tally.add(func(st *Stats) {
		st.Users += users
		st.Duplicates += dups
		st.Pages += pages
		st.WithoutID += noID
	})
}

// warn reports a retry or restart of this reading.
func (l *lister) warn(msg string) {
	if l.label != "" {
		msg = l.label + ": " + msg
	}
	l.ls.sink.Warn("warning: " + msg)
}

// startReading begins a reading of the listing from its first page: the
// first, or again after a page token expired.
func (l *lister) startReading() {
	if l.epoch != 0 {
		l.mine = append(l.mine, l.epoch)
	}
	l.epoch = l.ls.seen.newEpoch()
	l.followed = map[[2]uint64]bool{}
	l.noID.restart()
}

// follow records that the reading follows link, and refuses a link it
// followed already: Graph would be handing the same users over again and
// again.
func (l *lister) follow(link string) error {
	seeds := &l.ls.seen.seeds
	h := [2]uint64{maphash.String(seeds[0], link), maphash.String(seeds[1], link)}
	if l.followed[h] {
		return ErrLinkLoop
	}
	l.followed[h] = true
	return nil
}

// ErrLinkLoop is a nextLink that leads back to a page the listing already
// read.
var ErrLinkLoop = errors.New("graph's @odata.nextLink leads back to a page already read in this listing: " +
	"stopped rather than list the same users again and again")

// expired reports whether err is a page token that expired and the listing
// may start over for it.
func (l *lister) expired(err error, pageURL string) bool {
	re, ok := errors.AsType[*ResponseError](err)
	return ok && re.Code == CodeExpiredPageToken && pageURL != l.first && l.restarts < maxRestarts
}

// page reads one page, retrying what is worth retrying, and returns its
// nextLink ("" on the last page) and the request for the next page, when
// one was sent ahead. ahead, when it is for this page, stands for the first
// attempt's request.
func (l *lister) page(ctx context.Context, pageURL string, ahead *prefetch) (string, *prefetch, error) {
	if !ahead.isFor(pageURL) {
		ahead.discard()
		ahead = nil
	}
	l.onPage = l.onPage[:0]
	l.again = nil
	l.noID.newPage()
	l.renewed, l.malformed = false, 0
	var next *prefetch // the next page's request, kept across attempts
	for attempt := 0; ; attempt++ {
		link, f := l.attempt(ctx, pageURL, ahead, &next)
		ahead = nil
		if f == nil {
			return link, next, nil
		}
		if f.why == "" || attempt >= l.c.retry.maxRetries || l.malformed > maxInvalidRetries {
			next.discard()
			if f.why == "" {
				return "", nil, f.err
			}
			return "", nil, f.exhausted(attempt + 1)
		}
		if err := l.retry(ctx, attempt, f); err != nil {
			next.discard()
			return "", nil, err
		}
	}
}

// failure is how an attempt at a page went wrong, and whether it is worth
// another.
type failure struct {
	// err is what went wrong.
	err error
	// why says, in a warning's words, why the page is read again; empty
	// when it is not worth another attempt.
	why string
	// wait is how long to wait before the next attempt: what the response
	// asked for when named, zero included, which is to retry at once;
	// otherwise zero stands for the client's own backoff.
	wait  time.Duration
	named bool
	// broken marks a page whose body could not be read whole; invalid, one
	// that came whole but was not a valid page, which is worth
	// maxInvalidRetries retries only.
	broken, invalid bool
}

// maxInvalidRetries is how often a page that came whole but was not a valid
// page is read again: once, in case something on the way garbled it. Graph
// sent it so, and would send it so six times.
const maxInvalidRetries = 1

// exhausted is the error once attempts attempts have all failed.
func (f *failure) exhausted(attempts int) error {
	if _, ok := errors.AsType[*PageSyntaxError](f.err); ok {
		return fmt.Errorf("the page came whole but was not a valid page, %d times: %w", attempts, f.err)
	}
	if f.broken {
		return fmt.Errorf("page body broken %d times, last: %w", attempts, f.err)
	}
	return f.err
}

// attempt reads the page at pageURL once: from ahead when it is not nil,
// else from a request of its own. It returns the page's nextLink, or how it
// failed. *next is the request for the page after, sent ahead as soon as
// the nextLink is read before the users; one sent on an earlier attempt is
// kept when the nextLink is the same.
func (l *lister) attempt(ctx context.Context, pageURL string, ahead *prefetch, next **prefetch) (link string, f *failure) {
	resp, f := l.open(ctx, pageURL, ahead)
	if f != nil {
		return "", f
	}
	user, delta := l.emit, func(string) {}
	if l.onUser != nil {
		user, delta = l.onUser, func(s string) { l.deltaLink = s }
		l.atPage(l.again != nil)
	}
	l.noID.atPage()
	err := l.reader.decode(resp.Body, pageHandler{
		link: func(s string, beforeValue bool) {
			link = s
			if *next != nil && !(*next).isFor(s) {
				(*next).discard()
				*next = nil
			}
			if beforeValue && *next == nil && s != "" && !l.firstPageOnly {
				*next = l.fetchAhead(ctx, s)
			}
		},
		user:  user,
		delta: delta,
	})
	resp.Body.Close()
	if err == nil {
		if *next != nil && !(*next).isFor(link) {
			(*next).discard()
			*next = nil
		}
		return link, nil
	}
	if h, ok := err.(errHandler); ok {
		return "", &failure{err: h.err}
	}
	if ctx.Err() != nil {
		return "", &failure{err: context.Cause(ctx)}
	}
	if _, ok := errors.AsType[*TooLargeError](err); ok {
		// The same page holds the same user every time.
		return "", &failure{err: err}
	}
	l.again = make(map[idKey]bool, len(l.onPage))
	for _, k := range l.onPage {
		l.again[k] = true
	}
	handed, noun := len(l.again)+l.noID.onThisPage, "users"
	if l.handedOnPage != nil {
		handed, noun = l.handedOnPage(), "changes"
	}
	if _, ok := errors.AsType[*PageSyntaxError](err); ok {
		l.malformed++
		return "", &failure{err: err, broken: true, invalid: true,
			why: fmt.Sprintf("the page came whole but is not a valid page, after %d of its %s (%v)", handed, noun, err)}
	}
	return "", &failure{err: err, broken: true,
		why: fmt.Sprintf("the page broke off after %d of its %s (%v)", handed, noun, err)}
}

// open sends the request for rawURL, or takes ahead's when it is not nil,
// and returns the response when it is a 200; otherwise how it failed.
func (l *lister) open(ctx context.Context, rawURL string, ahead *prefetch) (*http.Response, *failure) {
	var resp *http.Response
	var err error
	if ahead != nil {
		resp, err = ahead.take()
	} else {
		resp, err = l.get(ctx, rawURL)
	}
	if err != nil {
		if !transient(ctx, err) {
			return nil, &failure{err: err}
		}
		return nil, &failure{err: err, why: fmt.Sprintf("request failed (%v)", err)}
	}
	if resp.StatusCode != http.StatusOK {
		return nil, l.refused(resp)
	}
	return resp, nil
}

// refused turns a page's answer that is not 200 into a failure. The error
// body is read whatever the status, which also lets the connection be
// reused for the retry. A wait Graph asks for holds every stream back.
func (l *lister) refused(resp *http.Response) *failure {
	if throttled(resp.StatusCode) {
		l.ls.tally.add(func(st *Stats) { st.Throttled++ })
	}
	d, named := RetryAfter(resp.Header, time.Now())
	status := resp.Status
	re := ReadResponseError(resp)
	switch {
	case re.StatusCode == http.StatusUnauthorized && !l.renewed:
		// A token that worked can be revoked, or end early: one more try
		// with a new one. Twice refused, it is refused.
		l.renewed = true
		l.c.ep.RenewToken()
		return &failure{err: re, why: status + ": Graph refused the token; trying again with a new one", wait: time.Millisecond, named: true}
	case !retriable(re.StatusCode):
		return &failure{err: re}
	case d > l.c.retry.maxDelay:
		asked := d.String()
		if d == maxWait {
			asked = "longer than anyone waits"
		}
		return &failure{err: fmt.Errorf("graph asked to wait %s, over the %s limit: %w", asked, l.c.retry.maxDelay, re)}
	case !named:
		d = 0
	}
	if named && throttled(re.StatusCode) {
		l.ls.gate.hold(d)
	}
	return &failure{err: re, why: status, wait: d, named: named}
}

// get sends the request for one page, once the gate lets it.
func (l *lister) get(ctx context.Context, pageURL string) (*http.Response, error) {
	if err := l.ls.gate.pass(ctx); err != nil {
		return nil, err
	}
	return l.c.ep.Stream(ctx, pageURL, l.header)
}

// retry counts a retry, says why, and waits what f asks for: Graph's wait
// when it named one (Retry-After: 0 is now), the client's backoff when not.
func (l *lister) retry(ctx context.Context, attempt int, f *failure) error {
	d := f.wait
	if !f.named {
		d = l.c.retry.backoff(attempt + 1)
	}
	l.ls.tally.add(func(st *Stats) { st.Retries++ })
	// The budget announced is the one this kind of failure has.
	n, of := attempt+1, l.c.retry.maxRetries
	if f.invalid {
		n, of = l.malformed, maxInvalidRetries
	}
	// warn names the reading; the page is enough here.
	l.warn(fmt.Sprintf("page %d: %s; retry %d of %d in %s", l.pages+1, f.why, n, of, d.Round(time.Millisecond)))
	return wait(ctx, d)
}

// emit hands a user to the sink unless it was handed over before in this
// run. A repeat is counted as a duplicate unless this reading repeats it on
// purpose: an earlier attempt at this page, the listing before a restart,
// or the first page a split listing starts from.
func (l *lister) emit(user, id []byte) error {
	if l.observe != nil {
		l.observe(user)
	}
	if l.observeOnly {
		return nil
	}
	if len(id) == 0 {
		// No id, or an empty one: nothing to tell a duplicate by.
		return l.emitWithoutID(user)
	}
	k := l.ls.seen.key(id)
	added, had := l.ls.seen.add(k, l.epoch)
	if !added {
		switch {
		case l.again[k]:
		case slices.Contains(l.mine, had):
			// Counted once: if Graph sends it again now, that is a duplicate.
			l.ls.seen.retag(k, l.epoch)
		default:
			l.duplicates++
		}
		return nil
	}
	l.onPage = append(l.onPage, k)
	if err := l.ls.sink.User(l.stream, user); err != nil {
		return err
	}
	l.users++
	l.handed++
	return nil
}

// transient reports whether a failed request may succeed if sent again: a
// network failure, not a refused token or origin, and not the run ending.
func transient(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	if _, ok := errors.AsType[*TokenError](err); ok {
		return false
	}
	if _, ok := errors.AsType[*OriginError](err); ok {
		return false
	}
	if _, ok := errors.AsType[net.Error](err); ok {
		return true
	}
	return errors.Is(err, ErrStalled) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET)
}
