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
	"syscall"
	"time"
)

// Query says which users a listing returns and how many fit on a page.
type Query struct {
	// Select lists the properties each user carries; it should hold "id".
	Select []string
	// Filter is an OData $filter, or empty for every user.
	Filter string
	// Top is the page size, 1 to 999.
	Top int
}

// Stats counts what a listing did.
type Stats struct {
	// Users is how many users were handed to the sink, each once.
	Users int
	// Pages is how many pages were read to the end.
	Pages int
	// Retries is how many requests or pages were tried again.
	Retries int
	// Throttled is how many responses were 429, 503 or 504.
	Throttled int
	// Restarts is how many times the listing began again at the first page
	// because a page token expired.
	Restarts int
	// Duplicates is how many users Graph sent again after they were handed
	// over, and were skipped: not those a page read again or a restarted
	// listing repeats, but a user Graph itself lists twice.
	Duplicates int
}

// Sink receives what a listing finds. Only User is required.
type Sink struct {
	// User receives each user's JSON object exactly once per listing. The
	// bytes are only valid during the call. An error ends the listing.
	User func(user []byte) error
	// Warn receives a line for each retry and restart, as it happens.
	Warn func(msg string)
	// Page receives the running totals after each page.
	Page func(Stats)
}

// maxRestarts bounds how often an expired page token starts the listing
// over.
const maxRestarts = 3

// ListUsers lists the users of the tenant from GET /v1.0/users, following
// @odata.nextLink to the last page, and hands each user to the sink exactly
// once: a page whose body breaks off is fetched again and its users already
// handed over are skipped, and so is every user already handed over when an
// expired page token makes the listing start over. The Stats say how far the
// listing got, on error too.
func (c *Client) ListUsers(ctx context.Context, q Query, sink Sink) (Stats, error) {
	if sink.Warn == nil {
		sink.Warn = func(string) {}
	}
	if sink.Page == nil {
		sink.Page = func(Stats) {}
	}
	seen := newIDSet()
	defer seen.close()
	l := &lister{c: c, sink: sink, first: c.usersURL(q), seen: seen}
	err := l.run(ctx)
	return l.st, err
}

// usersURL is the first page's URL.
func (c *Client) usersURL(q Query) string {
	top := ""
	if q.Top > 0 {
		top = strconv.Itoa(q.Top)
	}
	return c.ep.URL("/v1.0/users", "$select", strings.Join(q.Select, ","), "$top", top, "$filter", q.Filter)
}

// lister is one listing's state.
type lister struct {
	c     *Client
	sink  Sink
	first string
	st    Stats
	seen  *idSet
	// epoch is the current reading's; mine are the earlier readings that
	// this one repeats on purpose, the same listing before a restart.
	epoch epoch
	mine  []epoch
	// onPage holds the users handed over from the current page, and again
	// those of them from earlier attempts at it, to be skipped when it is
	// read again.
	onPage []idKey
	again  map[idKey]bool
	// renewed says a new token was asked for on the current page, after
	// Graph refused the one before.
	renewed bool
	// followed holds a keyed hash of every link this reading followed: a
	// link followed twice is a loop.
	followed map[[2]uint64]bool
	// reader's buffer serves every page.
	reader pageReader
}

// run follows the listing from its first page to its last.
func (l *lister) run(ctx context.Context) error {
	var ahead *prefetch
	defer func() { ahead.discard() }()
	l.startReading()
	for pageURL := l.first; pageURL != ""; {
		if err := l.follow(pageURL); err != nil {
			return fmt.Errorf("list users page %d: %w", l.st.Pages+1, err)
		}
		link, next, err := l.page(ctx, pageURL, ahead)
		ahead = next
		if l.expired(err, pageURL) {
			l.st.Restarts++
			l.sink.Warn(fmt.Sprintf("warning: the page token expired after %d users on %d pages; listing again from the first page, skipping users already logged", l.st.Users, l.st.Pages))
			l.startReading()
			pageURL = l.first
			continue
		}
		if err != nil {
			return fmt.Errorf("list users page %d: %w", l.st.Pages+1, err)
		}
		l.st.Pages++
		l.sink.Page(l.st)
		pageURL = link
	}
	return nil
}

// startReading begins a reading of the listing from its first page: the
// first, or again after a page token expired.
func (l *lister) startReading() {
	if l.epoch != 0 {
		l.mine = append(l.mine, l.epoch)
	}
	l.epoch = l.seen.newEpoch()
	l.followed = map[[2]uint64]bool{}
}

// follow records that the reading follows link, and refuses a link it
// followed already: Graph would be handing the same users over again and
// again.
func (l *lister) follow(link string) error {
	h := [2]uint64{maphash.String(l.seen.seeds[0], link), maphash.String(l.seen.seeds[1], link)}
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
	return ok && re.Code == CodeExpiredPageToken && pageURL != l.first && l.st.Restarts < maxRestarts
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
	l.renewed = false
	var next *prefetch // the next page's request, kept across attempts
	for attempt := 0; ; attempt++ {
		link, f := l.attempt(ctx, pageURL, ahead, &next)
		ahead = nil
		if f == nil {
			return link, next, nil
		}
		if f.why == "" || attempt >= l.c.retry.maxRetries {
			next.discard()
			if f.why == "" {
				return "", nil, f.err
			}
			return "", nil, f.exhausted(attempt + 1)
		}
		if err := l.retry(ctx, attempt, f.why, f.wait); err != nil {
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
	// wait is how long the response asked the client to wait, or zero for
	// the client's own backoff.
	wait time.Duration
	// broken marks a page whose body could not be read whole.
	broken bool
}

// exhausted is the error once attempts attempts have all failed.
func (f *failure) exhausted(attempts int) error {
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
	var resp *http.Response
	var err error
	if ahead != nil {
		resp, err = ahead.take()
	} else {
		resp, err = l.get(ctx, pageURL)
	}
	if err != nil {
		if !transient(ctx, err) {
			return "", &failure{err: err}
		}
		return "", &failure{err: err, why: fmt.Sprintf("request failed (%v)", err)}
	}
	if resp.StatusCode != http.StatusOK {
		return "", l.refused(resp)
	}

	err = l.reader.decode(resp.Body, pageHandler{
		link: func(s string, beforeValue bool) {
			link = s
			if *next != nil && !(*next).isFor(s) {
				(*next).discard()
				*next = nil
			}
			if beforeValue && *next == nil && s != "" {
				*next = l.fetchAhead(ctx, s)
			}
		},
		user: l.emit,
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
	l.again = make(map[idKey]bool, len(l.onPage))
	for _, k := range l.onPage {
		l.again[k] = true
	}
	return "", &failure{err: err, broken: true,
		why: fmt.Sprintf("the page broke off after %d of its users (%v)", len(l.again), err)}
}

// refused turns a page's answer that is not 200 into a failure. The error
// body is read whatever the status, which also lets the connection be
// reused for the retry.
func (l *lister) refused(resp *http.Response) *failure {
	if throttled(resp.StatusCode) {
		l.st.Throttled++
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
		return &failure{err: re, why: status + ": Graph refused the token; trying again with a new one", wait: time.Millisecond}
	case !retriable(re.StatusCode):
		return &failure{err: re}
	case d > l.c.retry.maxDelay:
		return &failure{err: fmt.Errorf("graph asked to wait %s, over the %s limit: %w", d, l.c.retry.maxDelay, re)}
	case !named:
		d = 0
	}
	return &failure{err: re, why: status, wait: d}
}

// get sends the request for one page.
func (l *lister) get(ctx context.Context, pageURL string) (*http.Response, error) {
	return l.c.ep.Stream(ctx, pageURL, nil)
}

// retry counts a retry, says why, and waits d, or a backoff when d is zero.
func (l *lister) retry(ctx context.Context, attempt int, why string, d time.Duration) error {
	if d == 0 {
		d = l.c.retry.backoff(attempt + 1)
	}
	l.st.Retries++
	l.sink.Warn(fmt.Sprintf("warning: page %d: %s; retry %d of %d in %s", l.st.Pages+1, why, attempt+1, l.c.retry.maxRetries, d.Round(time.Millisecond)))
	return wait(ctx, d)
}

// emit hands a user to the sink unless it was handed over before in this
// run. A repeat is counted as a duplicate unless this reading repeats it on
// purpose: an earlier attempt at this page, or the listing before a restart.
func (l *lister) emit(user, id []byte) error {
	k := l.seen.key(user, id)
	added, had := l.seen.add(k, l.epoch)
	if !added {
		switch {
		case l.again[k]:
		case slices.Contains(l.mine, had):
			// Counted once: if Graph sends it again now, that is a duplicate.
			l.seen.retag(k, l.epoch)
		default:
			l.st.Duplicates++
		}
		return nil
	}
	l.onPage = append(l.onPage, k)
	if err := l.sink.User(user); err != nil {
		return err
	}
	l.st.Users++
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
