package graph

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"maps"
	"net/http"
	"strings"
	"sync"
)

// A delta round follows GET /v1.0/users/delta from a deltaLink to the next:
// every user changed since the link was issued, once or more, as Graph sends
// them. It cannot be split: delta's $filter takes only ids. It is read with
// the same pager as a listing (fetch-ahead, retries, re-reads, origin
// checks), but its changes are handed over as they come, a user changed
// twice twice, since the later change is the newer; only a page read again
// skips what an earlier attempt at it handed over.

// DeltaStats counts what a delta round did.
type DeltaStats struct {
	// Changed is how many changes were a new or updated user.
	Changed int
	// Removed is how many changes were a removed user.
	Removed int
	// Pages is how many pages were read to the end.
	Pages int
	// Retries is how many requests or pages were tried again.
	Retries int
	// Throttled is how many responses were 429, 503 or 504.
	Throttled int
	// WithoutID is how many of the changes came without an id, which
	// Graph always sends: each is handed over all the same.
	WithoutID int
}

// Change is one change of a delta round.
type Change struct {
	// JSON is the change's object as Graph sent it: a user's id and the
	// properties Graph sent, or its id and @removed. It is only valid
	// during the call.
	JSON []byte
	// ID is the user's id; empty when Graph left it out, in a malformed
	// answer (DeltaStats.WithoutID counts those).
	ID string
	// Removed is "" for a new or updated user; for a removed one, why:
	// "changed" (deleted, and restorable for 30 days) or "deleted" (gone
	// for good).
	Removed string
}

// DeltaSink receives a round's changes. Change is required.
type DeltaSink struct {
	// Change receives each change, in Graph's order. An error ends the
	// round.
	Change func(Change) error
	// Page receives, after each page's changes were handed over, the link
	// the round carries on from: the next page's, or, after the last page,
	// the round's new deltaLink (last is then true). Keeping it is keeping
	// the round's place: a round that stops carries on from there, and at
	// worst repeats one page. An error ends the round.
	Page func(link string, last bool, st DeltaStats) error
	// Warn receives a line for each retry, as it happens.
	Warn func(msg string)
}

// DeltaExpiredError is a deltaLink, or a nextLink of its round, that Graph no
// longer knows: a link lives for 7 days for directory objects. The way out
// is a full listing and a new link.
type DeltaExpiredError struct {
	// Response is Graph's answer: 410, or 400 with syncStateNotFound.
	Response *ResponseError
}

func (e *DeltaExpiredError) Error() string {
	return "the delta link has expired: " + e.Response.Error()
}

func (e *DeltaExpiredError) Unwrap() error { return e.Response }

// DeltaLatest returns a deltaLink to now for the users' properties sel:
// GET /v1.0/users/delta?$select=…&$deltatoken=latest, which hands over no
// user. A round from it reports what changes from now on.
func (c *Client) DeltaLatest(ctx context.Context, sel []string) (string, error) {
	link := ""
	_, err := c.delta(ctx, c.ep.URL("/v1.0/users/delta", "$select", strings.Join(sel, ","), "$deltatoken", "latest"), DeltaSink{
		Change: func(Change) error {
			return errors.New("graph sent a change for $deltatoken=latest, which asks for none")
		},
		Page: func(l string, last bool, _ DeltaStats) error {
			if last {
				link = l
			}
			return nil
		},
	}, nil)
	return link, err
}

// OwnsLink reports whether link, such as a delta link an earlier run saved,
// is on this client's Graph endpoint. One that is not, saved before
// GRAPH_ENDPOINT changed, is never followed: Delta would refuse it with an
// *OriginError, as it refuses any link that would take the token elsewhere.
func (c *Client) OwnsLink(link string) bool {
	_, err := c.ep.CheckOrigin(link)
	return err == nil
}

// Delta follows a round from link, a deltaLink or a nextLink of a round
// that stopped, to its new deltaLink, with Prefer: return=minimal: an
// updated user carries only the properties that changed.
func (c *Client) Delta(ctx context.Context, link string, sink DeltaSink) (DeltaStats, error) {
	return c.delta(ctx, link, sink, http.Header{"Prefer": {"return=minimal"}})
}

// delta reads a round from first.
func (c *Client) delta(ctx context.Context, first string, sink DeltaSink, header http.Header) (DeltaStats, error) {
	if sink.Page == nil {
		sink.Page = func(string, bool, DeltaStats) error { return nil }
	}
	r := newDeltaRound(newPagerGroup(c, sink.Warn), first, sink)
	r.pg.header = header
	err := r.pg.run(ctx)
	st := r.stats()
	if re, ok := errors.AsType[*ResponseError](err); ok && expiredLink(re) {
		return st, &DeltaExpiredError{Response: re}
	}
	return st, err
}

// expiredLink reports whether Graph answered that a delta link has expired.
func expiredLink(re *ResponseError) bool {
	return re.StatusCode == http.StatusGone ||
		re.StatusCode == http.StatusBadRequest && strings.EqualFold(re.Code, "syncStateNotFound")
}

// deltaRound is the consumer of a round's pages, and its state between
// them.
type deltaRound struct {
	pg    *pager
	sink  DeltaSink
	st    DeltaStats
	seeds [2]maphash.Seed
	// handed holds a keyed hash of each change of the current page handed
	// over, by any attempt at it, and how many times; before is what of it
	// earlier attempts handed and this one has not met again yet. A page
	// read again after it broke off skips the changes already handed over
	// by what they hold, not by where they are: when the tenant changed
	// between the attempts, Graph may send the page with a change less (a
	// user changed again comes later in the round) and the others moved up.
	// A change that holds the same bytes as one handed over says nothing
	// new, wherever it is; a user that comes twice on a page with different
	// properties comes twice, and the second is the newer.
	handed, before map[[2]uint64]int
	// onPage is how many changes of the current page were handed over.
	onPage int
	// link is the @odata.deltaLink the round's last page ends with.
	link string
	// warnWithoutID warns of the round's first change without an id.
	warnWithoutID func()
}

func newDeltaRound(g *pagerGroup, first string, sink DeltaSink) *deltaRound {
	r := &deltaRound{
		sink:   sink,
		seeds:  [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()},
		handed: map[[2]uint64]int{},
		before: map[[2]uint64]int{},
	}
	r.pg = g.newPager("", "delta round", first, r)
	r.warnWithoutID = sync.OnceFunc(func() {
		r.pg.warn(fmt.Sprintf("page %d: Graph sent a change without an id, though it always sends one: "+
			"it is handed over all the same, as is every change without an id", r.pg.pages+1))
	})
	return r
}

func (r *deltaRound) pass() {}

// attempt starts an attempt at a page: a new one, or the same again.
func (r *deltaRound) attempt(again bool) {
	if !again {
		clear(r.handed)
		r.onPage = 0
	}
	clear(r.before)
	maps.Copy(r.before, r.handed)
}

func (r *deltaRound) broke() (int, string) { return r.onPage, "changes" }

// total is what the restart's warning counts: a round's pager counts no
// users.
func (r *deltaRound) total() int { return 0 }

func (r *deltaRound) end() {}

func (r *deltaRound) deltaLink(link string) { r.link = link }

// page hands the sink the link the round carries on from, once it is
// known to be on the round's origin.
func (r *deltaRound) page(ctx context.Context, next string) error {
	link := next
	if link == "" {
		link = r.link
	}
	if link == "" {
		// The page just read, which where would count past.
		return fmt.Errorf("%s, page %d: %w", r.pg.label, r.pg.pages, &PageSyntaxError{Msg: "a delta page with neither @odata.nextLink nor @odata.deltaLink"})
	}
	if _, err := r.pg.g.c.ep.CheckOrigin(link); err != nil {
		// Refused before the sink keeps it: a round's place is never on
		// another origin, where the next run would find a link that is
		// not GRAPH_ENDPOINT's. Nothing was sent there.
		return fmt.Errorf("%s, page %d: %w", r.pg.label, r.pg.pages, err)
	}
	r.st.Pages = r.pg.pages
	last := link == r.link
	if err := r.sink.Page(link, last, r.stats()); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil && !last {
		// The next page may have come already, fetched ahead: a round
		// told to stop hands no more changes over once its place is kept.
		return context.Cause(ctx)
	}
	return nil
}

// item hands one change over, unless an earlier attempt at this page
// handed the same.
func (r *deltaRound) item(obj, id []byte) error {
	h := [2]uint64{maphash.Bytes(r.seeds[0], obj), maphash.Bytes(r.seeds[1], obj)}
	if r.before[h] > 0 {
		r.before[h]--
		return nil
	}
	c := Change{JSON: obj, ID: string(id)}
	if bytes.Contains(obj, []byte(`"@removed"`)) {
		var v struct {
			Removed *struct {
				Reason string `json:"reason"`
			} `json:"@removed"`
		}
		if err := json.Unmarshal(obj, &v); err == nil && v.Removed != nil {
			c.Removed = v.Removed.Reason
			if c.Removed == "" {
				c.Removed = "unknown"
			}
		}
	}
	if c.ID == "" {
		// Failing the round would fail every run after it at the same
		// page, until its link expires: the change is handed over.
		r.warnWithoutID()
	}
	if err := r.sink.Change(c); err != nil {
		return err
	}
	if c.ID == "" {
		r.st.WithoutID++
	}
	r.handed[h]++
	r.onPage++
	if c.Removed != "" {
		r.st.Removed++
	} else {
		r.st.Changed++
	}
	return nil
}

// stats is the round's counts, with its pager's retries and throttling.
func (r *deltaRound) stats() DeltaStats {
	st := r.pg.g.tally.snapshot()
	out := r.st
	out.Retries, out.Throttled = st.Retries, st.Throttled
	return out
}
