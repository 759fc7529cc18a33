package graph

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
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
	l := &lister{c: c, sink: sink, first: c.usersURL(q), seen: newIDSet()}
	defer l.seen.close()
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
	// again holds the users handed over from the current page on earlier
	// attempts at it, to be skipped when it is read again.
	again map[uint64]bool
	// reader's buffer serves every page.
	reader pageReader
}

// run follows the listing from its first page to its last.
func (l *lister) run(ctx context.Context) error {
	var ahead *prefetch
	defer func() { ahead.discard() }()
	for pageURL := l.first; pageURL != ""; {
		link, next, err := l.page(ctx, pageURL, ahead)
		ahead = next
		if l.expired(err, pageURL) {
			l.st.Restarts++
			l.sink.Warn(fmt.Sprintf("warning: the page token expired after %d users on %d pages; listing again from the first page, skipping users already logged", l.st.Users, l.st.Pages))
			if err := l.seen.restart(); err != nil {
				return err
			}
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
	l.seen.newPage()
	l.again = nil
	for attempt := 0; ; attempt++ {
		link, next, f := l.attempt(ctx, pageURL, ahead)
		ahead = nil
		if f == nil {
			return link, next, nil
		}
		next.discard()
		if f.why == "" {
			return "", nil, f.err
		}
		if attempt >= l.c.retry.maxRetries {
			return "", nil, f.exhausted(attempt + 1)
		}
		if err := l.retry(ctx, attempt, f.why, f.wait); err != nil {
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
// else from a request of its own. It returns the page's nextLink and the
// next page's request, sent ahead as soon as the nextLink was read before
// the users; or how it failed.
func (l *lister) attempt(ctx context.Context, pageURL string, ahead *prefetch) (link string, next *prefetch, f *failure) {
	var resp *http.Response
	var err error
	if ahead != nil {
		resp, err = ahead.take()
	} else {
		resp, err = l.get(ctx, pageURL)
	}
	if err != nil {
		if !transient(ctx, err) {
			return "", nil, &failure{err: err}
		}
		return "", nil, &failure{err: err, why: fmt.Sprintf("request failed (%v)", err)}
	}
	if resp.StatusCode != http.StatusOK {
		return "", nil, l.refused(resp)
	}

	err = l.reader.decode(resp.Body, pageHandler{
		link: func(s string, beforeValue bool) {
			link = s
			if next != nil && !next.isFor(s) {
				next.discard()
				next = nil
			}
			if beforeValue && next == nil && s != "" {
				next = l.fetchAhead(ctx, s)
			}
		},
		user: l.emit,
	})
	resp.Body.Close()
	if err == nil {
		if next != nil && !next.isFor(link) {
			next.discard()
			next = nil
		}
		return link, next, nil
	}
	if h, ok := err.(errHandler); ok {
		return "", next, &failure{err: h.err}
	}
	if ctx.Err() != nil {
		return "", next, &failure{err: context.Cause(ctx)}
	}
	l.again = l.seen.onPage()
	return "", next, &failure{err: err, broken: true,
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

// emit hands a user to the sink unless it was handed over before: on an
// earlier attempt at this page or before a restart.
func (l *lister) emit(user, id []byte) error {
	h := l.seen.hash(user, id)
	if l.again[h] || l.seen.before(h) {
		return nil
	}
	if err := l.sink.User(user); err != nil {
		return err
	}
	l.st.Users++
	return l.seen.add(h)
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
