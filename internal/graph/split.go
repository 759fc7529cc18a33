package graph

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"unicode"
	"unicode/utf8"
)

// A listing that does not fit on one page is split into parts, one per
// prefix of userPrincipalName: $filter=startsWith(userPrincipalName,'ja'),
// the only range a /users filter offers without advanced queries. One part
// per character a UPN may begin with covers every user; a part that the
// first page's sample shows to be large is split again by its next
// character, so that no part bounds the run. The parts are listed by a fixed
// number of streams, largest first, every one with everything the single
// cursor has: fetch-ahead, retries, re-reads, restarts, origin checks.
//
// What the split cannot know it finds out: whether startsWith ignores case
// (a probe; when it does not, both cases are listed), and how many users
// there are (Graph's $count, which the total is checked against). Each part
// costs a request at least, empty or not: that is the split's price.

// upnOthers are the characters other than letters a UPN may hold before its
// @, as Entra allows them.
const upnOthers = "0123456789'.-_!#^~"

// maxPrefix is the longest prefix the split makes.
const maxPrefix = 4

// part is one prefix of the split and its estimated size in pages.
type part struct {
	prefix string
	pages  int
}

// sample is the UPNs the first page showed.
type sample struct{ upns []string }

// observe notes a user's userPrincipalName.
func (s *sample) observe(user []byte) {
	var u struct {
		UPN string `json:"userPrincipalName"`
	}
	if json.Unmarshal(user, &u) == nil && u.UPN != "" {
		s.upns = append(s.upns, u.UPN)
	}
}

// hasUPN reports whether the listing's users carry their userPrincipalName.
func hasUPN(sel []string) bool {
	return slices.ContainsFunc(sel, func(p string) bool { return strings.EqualFold(p, "userPrincipalName") })
}

// split lists every user by parts in streams, after the first page, whose
// users first handed over and which stopped at more; and checks the total
// against Graph's count.
func (ls *userListing) split(ctx context.Context, first *userReading, more string, smp *sample) error {
	if len(smp.upns) == 0 {
		// The listing does not select the UPN: a sample of its own, one
		// request, whose users are only looked at.
		p := ls.g.newPager("list users", "sample", ls.usersURL(ls.q.Filter, 999, []string{"userPrincipalName"}), watcher(smp.observe))
		if _, err := p.firstPage(ctx); err != nil {
			return err
		}
	}

	var (
		wg              sync.WaitGroup
		expected        int
		countErr        error
		insensitive     bool
		probeErr        error
		probeUPN, probe = probeFor(smp.upns)
	)
	wg.Go(func() { expected, countErr = ls.count(ctx) })
	if probeUPN != "" {
		wg.Go(func() {
			filter := "startsWith(userPrincipalName," + odataString(probe) + ")"
			found := watcher(func([]byte) { insensitive = true })
			_, probeErr = ls.g.newPager("list users", "probe", ls.usersURL(filter, 1, []string{"id"}), found).firstPage(ctx)
		})
	}
	wg.Wait()
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	if countErr != nil {
		ls.sink.Warn(fmt.Sprintf("warning: could not get Graph's count of the users (%v): the listing is not checked against it", countErr))
	} else {
		ls.g.tally.add(func(st *Stats) { st.Expected, st.Counted = expected, true })
		// Room for every user, and some for the count's lag.
		ls.seen.reserve(expected + expected/16)
	}
	if probeErr != nil {
		ls.sink.Warn(fmt.Sprintf("warning: could not find out whether startsWith ignores case (%v): listing both cases", probeErr))
		insensitive = false
	}

	parts := planSplit(smp.upns, expected, insensitive, ls.q.PageSize, ls.q.Streams)
	if countErr == nil && ceilDiv(expected, max(ls.q.PageSize, 1))-1 <= splitBound(parts, ls.q.Streams) {
		// The pages left to the first cursor take no more round trips
		// than the split would, and cost fewer requests: it goes on.
		return first.pg.resume(ctx, more, first)
	}
	// The first page's users without an id come again in their prefix's
	// listing: the streams take them from here.
	ls.sampled = &sampledWithoutID{left: first.noID.handed}
	streams := min(ls.q.Streams, len(parts))
	ls.g.tally.add(func(st *Stats) { st.Streams = streams })
	if err := ls.runStreams(ctx, parts, streams, first.epoch); err != nil {
		return err
	}
	if st := ls.g.tally.snapshot(); st.Counted && st.Expected-st.Users > countSlack(st.Expected) {
		ls.sink.Warn(fmt.Sprintf("warning: listed %d users where Graph counts %d: %d more than its count's eventual "+
			"consistency explains; users whose userPrincipalName begins with a character the split does not "+
			"know may be missing (GRAPH_USERS_PARALLEL=1 lists them with one cursor)", st.Users, st.Expected, st.Expected-st.Users))
	}
	return nil
}

// splitBound is how many round trips the parts take at least in streams:
// as many as the largest has pages, and as their requests divided by the
// streams.
func splitBound(parts []part, streams int) int {
	requests, largest := 0, 0
	for _, p := range parts {
		requests += p.pages
		largest = max(largest, p.pages)
	}
	return max(largest, ceilDiv(requests, max(streams, 1)))
}

// countSlack is how far a listing may fall short of Graph's count before it
// is worth a warning: the count is eventually consistent, so users removed
// meanwhile can still be in it.
func countSlack(expected int) int { return max(10, expected/1000) }

// runStreams lists the parts in order, streams at a time, and stops every
// stream at the first failure. It is the one owner of the streams: it
// starts them, bounds them and cancels them.
func (ls *userListing) runStreams(ctx context.Context, parts []part, streams int, sampled epoch) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		next     atomic.Int64
		wg       sync.WaitGroup
		once     sync.Once
		firstErr error
	)
	for s := range streams {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= len(parts) {
					return
				}
				p := parts[i].prefix
				filter := "startsWith(userPrincipalName," + odataString(p) + ")"
				if ls.q.Filter != "" {
					filter = "(" + ls.q.Filter + ") and " + filter
				}
				r := ls.newReading(s, "prefix "+odataString(p), ls.usersURL(filter, ls.q.PageSize, ls.q.Select))
				// The first page's users come again: that is no duplicate.
				r.mine = []epoch{sampled}
				if err := r.pg.run(ctx); err != nil {
					once.Do(func() {
						firstErr = err
						cancel(err)
					})
					return
				}
			}
		})
	}
	wg.Wait()
	return firstErr
}

// odataString writes s as an OData string literal.
func odataString(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// probeFor picks a UPN from the sample whose case can be swapped, and
// returns it with its case swapped: startsWith ignores case when it finds
// that user by it. It returns "" when no UPN has a letter.
func probeFor(upns []string) (upn, swapped string) {
	for _, u := range upns {
		s := strings.Map(func(r rune) rune {
			switch {
			case unicode.IsUpper(r):
				return unicode.ToLower(r)
			case unicode.IsLower(r):
				return unicode.ToUpper(r)
			}
			return r
		}, u)
		if s != u {
			return u, s
		}
	}
	return "", ""
}

// planSplit divides the listing into parts: one per character a UPN may
// begin with (letters in both cases unless startsWith ignores case); then,
// while it shortens the run, the part the sample estimates largest is split
// by its next character, up to maxPrefix characters. A run takes at least
// as many round trips as its largest part has pages, and as its requests
// divided by the streams, every part costing one request at least: a split
// is worth it while it lowers the larger of the two. The parts come largest
// first, so that no large part starts last. Without a count there is no
// estimate: one part per first character, the sample's most frequent first.
func planSplit(upns []string, expected int, insensitive bool, top, streams int) []part {
	letters := "abcdefghijklmnopqrstuvwxyz"
	if !insensitive {
		letters += strings.ToUpper(letters)
	}
	firsts := letters + upnOthers
	nexts := firsts + "@"
	folded := make([]string, len(upns))
	for i, u := range upns {
		folded[i] = u
		if insensitive {
			folded[i] = strings.ToLower(u)
		}
	}
	top, streams = max(top, 1), max(streams, 1)
	pages := func(n int) int {
		if expected == 0 || len(upns) == 0 {
			return n // no count: the sample's frequency orders the parts
		}
		return max(1, ceilDiv(ceilDiv(expected*n, len(upns)), top))
	}

	type node struct {
		part
		members []string
	}
	var nodes []node
	for _, c := range firsts {
		m := withPrefix(folded, string(c))
		nodes = append(nodes, node{part{string(c), pages(len(m))}, m})
	}
	byPages := func(a, b node) int { return cmp.Compare(b.pages, a.pages) }
	slices.SortStableFunc(nodes, byPages)
	requests := 0
	for _, n := range nodes {
		requests += n.pages
	}
	bound := func(largest, requests int) int { return max(largest, ceilDiv(requests, streams)) }
	for expected > 0 {
		// The largest part bounds the run while it has more pages than a
		// stream's share of the requests; if it cannot be split, nothing
		// shortens the run.
		big := nodes[0]
		if big.pages <= ceilDiv(requests, streams) || utf8.RuneCountInString(big.prefix) >= maxPrefix {
			break
		}
		var children []node
		added := -big.pages
		for _, c := range nexts {
			m := withPrefix(big.members, big.prefix+string(c))
			child := node{part{big.prefix + string(c), pages(len(m))}, m}
			children = append(children, child)
			added += child.pages
		}
		largest := 0
		if len(nodes) > 1 {
			largest = nodes[1].pages
		}
		for _, c := range children {
			largest = max(largest, c.pages)
		}
		if bound(largest, requests+added) > bound(big.pages, requests) {
			break
		}
		nodes = append(nodes[1:], children...)
		slices.SortStableFunc(nodes, byPages)
		requests += added
	}
	parts := make([]part, len(nodes))
	for i, n := range nodes {
		parts[i] = n.part
	}
	return parts
}

// withPrefix returns the members that begin with prefix.
func withPrefix(members []string, prefix string) []string {
	var out []string
	for _, m := range members {
		if strings.HasPrefix(m, prefix) {
			out = append(out, m)
		}
	}
	return out
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

// count asks Graph how many users the listing's $count counts, with the
// eventual consistency $count needs, retrying as a page would be.
func (ls *userListing) count(ctx context.Context) (int, error) {
	rawURL := ls.g.c.ep.URL("/v1.0/users/$count", "$filter", ls.q.Filter)
	p := ls.g.newPager("list users", "count", rawURL, nil)
	p.header = http.Header{"ConsistencyLevel": {"eventual"}}
	n := 0
	err := p.fetch(ctx, rawURL, func(resp *http.Response) *failure {
		body, err := io.ReadAll(io.LimitReader(resp.Body, 64))
		if err != nil {
			return &failure{err: err, why: fmt.Sprintf("the count broke off (%v)", err)}
		}
		// Graph writes the count as text, after a byte order mark.
		text := strings.TrimSpace(strings.TrimPrefix(string(body), "\ufeff"))
		n, err = strconv.Atoi(text)
		if err != nil || n < 0 {
			return &failure{err: fmt.Errorf("graph's count %.20q is not a number of users", text)}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}
