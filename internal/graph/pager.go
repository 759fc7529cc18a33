package graph

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"
)

// A pageConsumer takes the items of the pages a pager reads, and says what
// they mean: a user to hand over once, a change of a delta round, a UPN for
// the sample. The pager calls it from one goroutine, one call at a time:
//
//   - pass, before the first page, and again each time an expired page
//     token makes the pager start over from its first page. What the
//     consumer handed over before the restart comes again.
//   - attempt, before each attempt at a page. again is true when an
//     earlier attempt at the same page broke off after passing some of its
//     items, which the page passes again: the consumer skips those it
//     handed over. false means a new page.
//   - item, for each item of the page in order, with the raw bytes of its
//     id, nil when it has none; both are valid only during the call. An
//     error ends the reading: the pager returns it as it is, and retries
//     nothing.
//   - broke, when an attempt broke off after item was called: it returns
//     how many of the page's items it has handed over, over all attempts,
//     and what they are ("users"), for the warning.
//   - page, once a page was read whole, with its nextLink, "" on the last
//     page, and the reading's context. An error ends the reading, returned
//     as it is.
//   - total, when the pager starts over: how many items the consumer has
//     handed over since the reading began, for the warning.
//   - end, once the reading stops: after its last page, on error, and after
//     the one page of firstPage. What the consumer counted goes to the
//     totals there if not before.
//
// A consumer that also has a deltaLink(link string) method is given the
// @odata.deltaLink that ends a delta round's last page, before page;
// without it that member is skipped, unread.
type pageConsumer interface {
	pass()
	attempt(again bool)
	item(obj, id []byte) error
	broke() (handed int, noun string)
	page(ctx context.Context, nextLink string) error
	total() int
	end()
}

// deltaLinkConsumer is a pageConsumer that takes a delta round's deltaLink.
type deltaLinkConsumer interface {
	deltaLink(link string)
}

// maxRestarts bounds how often an expired page token starts a reading over.
const maxRestarts = 3

// pagerGroup is what the pagers of one call share: the totals, the throttle
// gate, the warnings and the seeds of the link hashes.
type pagerGroup struct {
	c     *Client
	tally tally
	gate  gate
	warn  func(msg string)
	seeds [2]maphash.Seed
}

func newPagerGroup(c *Client, warn func(string)) *pagerGroup {
	if warn == nil {
		warn = func(string) {}
	}
	return &pagerGroup{c: c, warn: warn, seeds: [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}}
}

// tally is the running totals of a call, over its pagers.
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

// gate holds every pager's next request back while Graph asks the app to
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

// pager is the paging engine: it reads a Graph collection from its first
// page to its last, following @odata.nextLink, and hands each page's items
// to its consumer. It owns everything a page needs: the request for the
// next page sent ahead (prefetch.go), the retries and their budget, the
// re-reading of a page whose body broke off, the restart from the first
// page when a page token expires, the refusal of a link that loops, the
// origin check of every link (Endpoint), and the gate that holds every
// pager of its group back while Graph throttles.
type pager struct {
	g        *pagerGroup
	consumer pageConsumer
	first    string
	header   http.Header // sent with every request
	// op and label name the reading in errors and warnings: op such as
	// "list users", or empty when the label says it; label such as
	// "prefix 'ja'", or empty for a listing's only cursor.
	op, label string
	// pages counts the pages read, over restarts; restarts, the restarts.
	pages, restarts int
	// brokeOff says an attempt at the current page broke off after
	// passing items; renewed, that a new token was asked for on it;
	// malformed counts the attempts at it that came whole but were not a
	// valid page.
	brokeOff, renewed bool
	malformed         int
	// followed holds a keyed hash of every link this reading followed: a
	// link followed twice is a loop.
	followed map[[2]uint64]bool
	// reader's buffer serves every page.
	reader pageReader
}

// newPager returns a pager of the group that reads from first and hands
// the items to c.
func (g *pagerGroup) newPager(op, label, first string, c pageConsumer) *pager {
	return &pager{g: g, consumer: c, op: op, label: label, first: first}
}

// where names the page the reading is at, for messages.
func (p *pager) where() string {
	if p.label == "" {
		return fmt.Sprintf("page %d", p.pages+1)
	}
	return fmt.Sprintf("%s, page %d", p.label, p.pages+1)
}

// failed says where the reading failed.
func (p *pager) failed(err error) error {
	if p.op == "" {
		return fmt.Errorf("%s: %w", p.where(), err)
	}
	return fmt.Errorf("%s %s: %w", p.op, p.where(), err)
}

// warn reports a retry or restart of this reading.
func (p *pager) warn(msg string) {
	if p.label != "" {
		msg = p.label + ": " + msg
	}
	p.g.warn("warning: " + msg)
}

// run reads from the first page to the last.
func (p *pager) run(ctx context.Context) error {
	p.startPass()
	_, err := p.read(ctx, p.first, false)
	return err
}

// firstPage reads the first page alone, with no page fetched ahead, and
// returns its nextLink, from which resume goes on.
func (p *pager) firstPage(ctx context.Context) (more string, err error) {
	p.startPass()
	return p.read(ctx, p.first, true)
}

// resume goes on from more, the link firstPage stopped at, to the last
// page, handing the items to c from now on.
func (p *pager) resume(ctx context.Context, more string, c pageConsumer) error {
	p.consumer = c
	_, err := p.read(ctx, more, false)
	return err
}

// read follows the pages from the one at from to the last, or to the
// first page read when onePage; it returns the nextLink it stopped at.
func (p *pager) read(ctx context.Context, from string, onePage bool) (string, error) {
	var ahead *prefetch
	defer func() {
		ahead.discard()
		p.consumer.end()
	}()
	for pageURL := from; pageURL != ""; {
		if err := p.follow(pageURL); err != nil {
			return "", p.failed(err)
		}
		link, next, err := p.page(ctx, pageURL, ahead, !onePage)
		ahead = next
		if p.expired(err, pageURL) {
			p.restart()
			pageURL = p.first
			continue
		}
		if err != nil {
			return "", p.failed(err)
		}
		p.pages++
		if err := p.consumer.page(ctx, link); err != nil {
			return "", err
		}
		if onePage {
			return link, nil
		}
		pageURL = link
	}
	return "", nil
}

// restart starts the reading over from its first page, after a page token
// expired.
func (p *pager) restart() {
	p.restarts++
	p.g.tally.add(func(st *Stats) { st.Restarts++ })
	p.warn(fmt.Sprintf("the page token expired after %d users on %d pages; listing again from the first page, skipping users already logged", p.consumer.total(), p.pages))
	p.startPass()
}

// startPass begins a pass from the first page: no link followed yet.
func (p *pager) startPass() {
	p.followed = map[[2]uint64]bool{}
	p.consumer.pass()
}

// follow records that the reading follows link, and refuses a link it
// followed already: Graph would be handing the same items over again and
// again.
func (p *pager) follow(link string) error {
	seeds := &p.g.seeds
	h := [2]uint64{maphash.String(seeds[0], link), maphash.String(seeds[1], link)}
	if p.followed[h] {
		return ErrLinkLoop
	}
	p.followed[h] = true
	return nil
}

// ErrLinkLoop is a nextLink that leads back to a page the listing already
// read.
var ErrLinkLoop = errors.New("graph's @odata.nextLink leads back to a page already read in this listing: " +
	"stopped rather than list the same users again and again")

// expired reports whether err is a page token that expired and the reading
// may start over for it.
func (p *pager) expired(err error, pageURL string) bool {
	re, ok := errors.AsType[*ResponseError](err)
	return ok && re.Code == CodeExpiredPageToken && pageURL != p.first && p.restarts < maxRestarts
}

// page reads one page, retrying what is worth retrying, and returns its
// nextLink ("" on the last page) and the request for the next page, when
// prefetching one was sent ahead. ahead, when it is for this page, stands
// for the first attempt's request.
func (p *pager) page(ctx context.Context, pageURL string, ahead *prefetch, prefetching bool) (string, *prefetch, error) {
	if !ahead.isFor(pageURL) {
		ahead.discard()
		ahead = nil
	}
	p.brokeOff, p.renewed, p.malformed = false, false, 0
	var link string
	var next *prefetch // the next page's request, kept across attempts
	err := p.try(ctx, func() *failure {
		var f *failure
		link, f = p.attempt(ctx, pageURL, ahead, &next, prefetching)
		ahead = nil
		return f
	})
	if err != nil {
		next.discard()
		return "", nil, err
	}
	return link, next, nil
}

// try is the one retry loop: it calls once until it succeeds, fails in a
// way not worth another attempt, or runs out of attempts, and waits
// between attempts what the failure asks for.
func (p *pager) try(ctx context.Context, once func() *failure) error {
	for attempt := 0; ; attempt++ {
		f := once()
		if f == nil {
			return nil
		}
		if f.why == "" {
			return f.err
		}
		if attempt >= p.g.c.retry.maxRetries || p.malformed > maxInvalidRetries {
			return f.exhausted(attempt + 1)
		}
		if err := p.retry(ctx, attempt, f); err != nil {
			return err
		}
	}
}

// failure is how an attempt went wrong, and whether it is worth another.
type failure struct {
	// err is what went wrong.
	err error
	// why says, in a warning's words, why the request is sent again; empty
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
// failed. *next is the request for the page after, sent ahead when
// prefetching as soon as the nextLink is read before the items; one sent
// on an earlier attempt is kept when the nextLink is the same.
func (p *pager) attempt(ctx context.Context, pageURL string, ahead *prefetch, next **prefetch, prefetching bool) (link string, f *failure) {
	resp, f := p.open(ctx, pageURL, ahead)
	if f != nil {
		return "", f
	}
	h := pageHandler{
		link: func(s string, beforeValue bool) {
			link = s
			if *next != nil && !(*next).isFor(s) {
				(*next).discard()
				*next = nil
			}
			if beforeValue && *next == nil && s != "" && prefetching {
				*next = p.fetchAhead(ctx, s)
			}
		},
		user: p.consumer.item,
	}
	if d, ok := p.consumer.(deltaLinkConsumer); ok {
		h.delta = d.deltaLink
	}
	p.consumer.attempt(p.brokeOff)
	err := p.reader.decode(resp.Body, h)
	resp.Body.Close()
	if err == nil {
		if *next != nil && !(*next).isFor(link) {
			(*next).discard()
			*next = nil
		}
		return link, nil
	}
	return "", p.broken(ctx, err)
}

// broken is the failure of an attempt whose page did not come whole.
func (p *pager) broken(ctx context.Context, err error) *failure {
	if h, ok := err.(errHandler); ok {
		return &failure{err: h.err}
	}
	if ctx.Err() != nil {
		return &failure{err: context.Cause(ctx)}
	}
	if _, ok := errors.AsType[*TooLargeError](err); ok {
		// The same page holds the same item every time.
		return &failure{err: err}
	}
	p.brokeOff = true
	handed, noun := p.consumer.broke()
	if _, ok := errors.AsType[*PageSyntaxError](err); ok {
		p.malformed++
		return &failure{err: err, broken: true, invalid: true,
			why: fmt.Sprintf("the page came whole but is not a valid page, after %d of its %s (%v)", handed, noun, err)}
	}
	return &failure{err: err, broken: true,
		why: fmt.Sprintf("the page broke off after %d of its %s (%v)", handed, noun, err)}
}

// fetch sends one request for rawURL and hands its 200 response to read,
// retrying as a page would be: the call for an answer that is no page,
// such as $count's.
func (p *pager) fetch(ctx context.Context, rawURL string, read func(*http.Response) *failure) error {
	return p.try(ctx, func() *failure {
		resp, f := p.open(ctx, rawURL, nil)
		if f != nil {
			return f
		}
		defer resp.Body.Close()
		return read(resp)
	})
}

// open sends the request for rawURL, or takes ahead's when it is not nil,
// and returns the response when it is a 200; otherwise how it failed.
func (p *pager) open(ctx context.Context, rawURL string, ahead *prefetch) (*http.Response, *failure) {
	var resp *http.Response
	var err error
	if ahead != nil {
		resp, err = ahead.take()
	} else {
		resp, err = p.get(ctx, rawURL)
	}
	if err != nil {
		if !transient(ctx, err) {
			return nil, &failure{err: err}
		}
		return nil, &failure{err: err, why: fmt.Sprintf("request failed (%v)", err)}
	}
	if resp.StatusCode != http.StatusOK {
		return nil, p.refused(resp)
	}
	return resp, nil
}

// refused turns an answer that is not 200 into a failure. The error body
// is read whatever the status, which also lets the connection be reused for
// the retry. A wait Graph asks for holds every pager of the group back.
func (p *pager) refused(resp *http.Response) *failure {
	if throttled(resp.StatusCode) {
		p.g.tally.add(func(st *Stats) { st.Throttled++ })
	}
	d, named := RetryAfter(resp.Header, time.Now())
	status := resp.Status
	re := ReadResponseError(resp)
	switch {
	case re.StatusCode == http.StatusUnauthorized && !p.renewed:
		// A token that worked can be revoked, or end early: one more try
		// with a new one. Twice refused, it is refused.
		p.renewed = true
		p.g.c.ep.RenewToken()
		return &failure{err: re, why: status + ": Graph refused the token; trying again with a new one", wait: time.Millisecond, named: true}
	case !retriable(re.StatusCode):
		return &failure{err: re}
	case d > p.g.c.retry.maxDelay:
		asked := d.String()
		if d == maxWait {
			asked = "longer than anyone waits"
		}
		return &failure{err: fmt.Errorf("graph asked to wait %s, over the %s limit: %w", asked, p.g.c.retry.maxDelay, re)}
	case !named:
		d = 0
	}
	if named && throttled(re.StatusCode) {
		p.g.gate.hold(d)
	}
	return &failure{err: re, why: status, wait: d, named: named}
}

// get sends the request for one page, once the gate lets it.
func (p *pager) get(ctx context.Context, pageURL string) (*http.Response, error) {
	if err := p.g.gate.pass(ctx); err != nil {
		return nil, err
	}
	return p.g.c.ep.Stream(ctx, pageURL, p.header)
}

// retry counts a retry, says why, and waits what f asks for: Graph's wait
// when it named one (Retry-After: 0 is now), the client's backoff when not.
func (p *pager) retry(ctx context.Context, attempt int, f *failure) error {
	d := f.wait
	if !f.named {
		d = p.g.c.retry.backoff(attempt + 1)
	}
	p.g.tally.add(func(st *Stats) { st.Retries++ })
	// The budget announced is the one this kind of failure has.
	n, of := attempt+1, p.g.c.retry.maxRetries
	if f.invalid {
		n, of = p.malformed, maxInvalidRetries
	}
	// warn names the reading; the page is enough here.
	p.warn(fmt.Sprintf("page %d: %s; retry %d of %d in %s", p.pages+1, f.why, n, of, d.Round(time.Millisecond)))
	return wait(ctx, d)
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
