package graph

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
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
	var ahead *pending // the next page's request, sent early
	defer func() { ahead.discard() }()
	next := l.first
	for next != "" {
		link, fetched, err := l.page(ctx, next, ahead)
		ahead = fetched
		if re, ok := errors.AsType[*ResponseError](err); ok && re.Code == CodeExpiredPageToken &&
			next != l.first && l.st.Restarts < maxRestarts {
			l.st.Restarts++
			l.sink.Warn(fmt.Sprintf("warning: the page token expired after %d users on %d pages; listing again from the first page, skipping users already logged", l.st.Users, l.st.Pages))
			if err := l.seen.restart(); err != nil {
				return l.st, err
			}
			next = l.first
			continue
		}
		if err != nil {
			return l.st, fmt.Errorf("list users page %d: %w", l.st.Pages+1, err)
		}
		l.st.Pages++
		l.sink.Page(l.st)
		next = link
	}
	return l.st, nil
}

// pending is a page request sent ahead of its turn: at most one at a time,
// while the page before it is still being read.
type pending struct {
	url    string
	cancel context.CancelFunc
	done   chan struct{}
	resp   *http.Response
	err    error
}

// fetchAhead sends the request for url now and hands its response over later.
func (l *lister) fetchAhead(ctx context.Context, url string) *pending {
	ctx, cancel := context.WithCancel(ctx)
	p := &pending{url: url, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		p.resp, p.err = l.c.send(ctx, url)
	}()
	return p
}

// take waits for the response; it is the caller's from then on, and
// closing its body lets the request's context go.
func (p *pending) take() (*http.Response, error) {
	<-p.done
	if p.err != nil {
		p.cancel()
		return nil, p.err
	}
	p.resp.Body = cancelOnClose{p.resp.Body, p.cancel}
	return p.resp, nil
}

// cancelOnClose cancels a request's context when its body is closed.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}

// discard abandons a request sent ahead that will not be read. A nil
// pending is a no-op.
func (p *pending) discard() {
	if p == nil {
		return
	}
	p.cancel()
	if resp, err := p.take(); err == nil {
		resp.Body.Close()
	}
}

// usersURL is the first page's URL.
func (c *Client) usersURL(q Query) string {
	var b strings.Builder
	b.WriteString(c.endpoint.String())
	b.WriteString("/v1.0/users?$select=")
	b.WriteString(queryEscape(strings.Join(q.Select, ",")))
	if q.Top > 0 {
		b.WriteString("&$top=")
		b.WriteString(strconv.Itoa(q.Top))
	}
	if q.Filter != "" {
		b.WriteString("&$filter=")
		b.WriteString(queryEscape(q.Filter))
	}
	return b.String()
}

// queryEscape escapes a query value with %20 for spaces, as OData expects.
func queryEscape(s string) string {
	return strings.ReplaceAll(url.QueryEscape(s), "+", "%20")
}

// lister is one listing's state.
type lister struct {
	c     *Client
	sink  Sink
	first string
	st    Stats
	seen  *idSet
	// reader's buffer serves every page.
	reader pageReader
}

// page reads one page, retrying what is worth retrying, and returns its
// nextLink ("" on the last page). ahead, when it is for this page, stands
// for the first request. When the nextLink comes before the users, as Graph
// sends it, the next page's request goes out before this page is read, and
// page returns it too.
func (l *lister) page(ctx context.Context, pageURL string, ahead *pending) (link string, next *pending, err error) {
	if ahead != nil && ahead.url != pageURL {
		ahead.discard()
		ahead = nil
	}
	defer func() {
		ahead.discard()
		if err != nil {
			next.discard()
			next = nil
		}
	}()
	l.seen.newPage()
	var again map[uint64]bool // users of this page already handed over
	for attempt := 0; ; attempt++ {
		canRetry := attempt < l.c.retry.maxRetries
		var resp *http.Response
		if ahead != nil {
			resp, err = ahead.take()
			ahead = nil
		} else {
			resp, err = l.c.send(ctx, pageURL)
		}
		if err != nil {
			if !canRetry || !transient(ctx, err) {
				return "", next, err
			}
			if err := l.retry(ctx, attempt, fmt.Sprintf("request failed (%v)", err), 0); err != nil {
				return "", next, err
			}
			continue
		}

		if resp.StatusCode != http.StatusOK {
			if throttled(resp.StatusCode) {
				l.st.Throttled++
			}
			if !canRetry || !retriable(resp.StatusCode) {
				return "", next, newResponseError(resp)
			}
			d, named := RetryAfter(resp.Header, time.Now())
			if d > l.c.retry.maxDelay {
				re := newResponseError(resp)
				return "", next, fmt.Errorf("graph asked to wait %s, over the %s limit: %w", d, l.c.retry.maxDelay, re)
			}
			drain(resp)
			if !named {
				d = 0
			}
			if err := l.retry(ctx, attempt, resp.Status, d); err != nil {
				return "", next, err
			}
			continue
		}

		link = ""
		err = l.reader.decode(resp.Body, pageHandler{
			link: func(s string, beforeValue bool) {
				link = s
				if next != nil && next.url != s {
					next.discard()
					next = nil
				}
				if beforeValue && next == nil && s != "" {
					next = l.fetchAhead(ctx, s)
				}
			},
			user: func(u, id []byte) error { return l.emit(u, id, again) },
		})
		resp.Body.Close()
		if err == nil {
			if next != nil && next.url != link {
				next.discard()
				next = nil
			}
			return link, next, nil
		}
		if h, ok := err.(errHandler); ok {
			return "", next, h.err
		}
		if ctx.Err() != nil {
			return "", next, context.Cause(ctx)
		}
		if !canRetry {
			return "", next, fmt.Errorf("page body broken %d times, last: %w", attempt+1, err)
		}
		again = l.seen.onPage()
		reason := fmt.Sprintf("the page broke off after %d of its users (%v)", len(again), err)
		if err := l.retry(ctx, attempt, reason, 0); err != nil {
			return "", next, err
		}
	}
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
// earlier attempt at this page (again) or before a restart.
func (l *lister) emit(user, id []byte, again map[uint64]bool) error {
	h := l.seen.hash(user, id)
	if again[h] || l.seen.before(h) {
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
	if _, ok := errors.AsType[net.Error](err); ok {
		return true
	}
	return errors.Is(err, errStalled) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET)
}

// drain reads what is left of a response body, up to a bound, so the
// connection can be reused, and closes it.
func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
	resp.Body.Close()
}

// TokenError is a failure to get a token for Graph from the credential.
type TokenError struct {
	// Scope is the scope the token was asked for.
	Scope string
	// Err is the credential's error.
	Err error
}

func (e *TokenError) Error() string { return fmt.Sprintf("get a token for %s: %v", e.Scope, e.Err) }

// Unwrap returns the credential's error.
func (e *TokenError) Unwrap() error { return e.Err }

// tokenCredential marks its credential's errors as TokenErrors.
type tokenCredential struct{ azcore.TokenCredential }

func (c tokenCredential) GetToken(ctx context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	tk, err := c.TokenCredential.GetToken(ctx, o)
	if err != nil {
		return tk, &TokenError{Scope: strings.Join(o.Scopes, " "), Err: err}
	}
	return tk, nil
}
