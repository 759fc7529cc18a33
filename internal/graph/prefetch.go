package graph

import (
	"context"
	"io"
	"net/http"
)

// prefetch is a page request sent ahead of its turn, while the page before
// it is still being read, so that its wait for the first byte overlaps that
// read. A listing keeps at most one.
type prefetch struct {
	url    string
	cancel context.CancelFunc
	done   chan struct{}
	resp   *http.Response
	err    error
}

// fetchAhead sends the request for pageURL now and hands its response over
// later, through take.
func (pg *pager) fetchAhead(ctx context.Context, pageURL string) *prefetch {
	ctx, cancel := context.WithCancel(ctx)
	p := &prefetch{url: pageURL, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		p.resp, p.err = pg.get(ctx, pageURL)
	}()
	return p
}

// isFor reports whether p is the request for pageURL; a nil prefetch is for
// nothing.
func (p *prefetch) isFor(pageURL string) bool { return p != nil && p.url == pageURL }

// take waits for the response; it is the caller's from then on, and
// closing its body lets the request's context go.
func (p *prefetch) take() (*http.Response, error) {
	<-p.done
	if p.err != nil {
		p.cancel()
		return nil, p.err
	}
	p.resp.Body = cancelOnClose{p.resp.Body, p.cancel}
	return p.resp, nil
}

// discard abandons a request sent ahead that will not be read. A nil
// prefetch is a no-op.
func (p *prefetch) discard() {
	if p == nil {
		return
	}
	p.cancel()
	if resp, err := p.take(); err == nil {
		resp.Body.Close()
	}
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
