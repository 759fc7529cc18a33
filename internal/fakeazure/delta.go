package fakeazure

import (
	"encoding/base64"
	"encoding/binary"
	"math/bits"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// GET /v1.0/users/delta, as Graph serves it (learn.microsoft.com/graph/delta-query-overview and
// /graph/api/user-delta):
//
//   - The first request may carry $select; query options go on the first request only, and
//     the links carry them in their state token. $top is ignored, as Graph ignores it on user
//     delta; $filter, $orderby, $expand and $count are refused.
//   - Pages hold 200 entries, or what Prefer: odata.maxpagesize asks for (1 to 999, answered
//     with Preference-Applied). Every page has @odata.nextLink or, on the last, @odata.deltaLink,
//     absolute.
//   - The initial round lists every user in its current state, and every deleted one as removed;
//     its deltaLink tracks changes made since the round began, so a change made while the
//     initial round was paged comes again in the next round.
//   - A round from a deltaLink returns each user changed since the link was issued, once, in
//     its current state, in the order of the changes; a user that changes again while the round
//     is paged comes again later in the same round, as Graph's may. A soft-deleted user comes as
//     removed with reason "changed", a hard-deleted one with "deleted". With $select, a change of
//     a property not selected is not reported. Prefer: return=minimal sends only id and the
//     properties that changed (a created or restored user whole).
//   - $deltatoken=latest answers no users and a deltaLink from now.
//   - ExpireDeltaLinks makes the links issued so far expire.

// deltaPageSize is how many entries a delta page holds without Prefer: odata.maxpagesize.
const deltaPageSize = 200

// DeltaExpiry is how the fake Graph answers a request with a delta link that has expired.
type DeltaExpiry int

const (
	// ExpirySyncStateNotFound answers 400 Bad Request with code syncStateNotFound, as Graph
	// answers a deltaLink older than seven days.
	ExpirySyncStateNotFound DeltaExpiry = iota
	// ExpiryGone answers 410 Gone with code resyncRequired and a Location header holding the
	// initial request with an empty $deltatoken, as Graph does when it must resynchronize.
	ExpiryGone
)

// ExpireDeltaLinks makes every delta link issued so far expire, nextLinks and deltaLinks alike:
// a request with one is answered as how says, and the client must start a full round again.
// Links issued afterwards work.
func (g *Graph) ExpireDeltaLinks(how DeltaExpiry) {
	s := g.store
	s.expiry.Store(int32(how))
	s.expiredBelow.Store(s.links.Load())
}

// deltaToken is the state a delta link carries.
type deltaToken struct {
	initial  bool
	serial   uint64 // the link's serial, which its expiry is judged by
	base     int    // initial: log position when the round began; otherwise where the round began
	cursor   int    // initial: the next user's index; otherwise the next log position
	page     int
	selected bool
	props    []property
}

const (
	deltaTokenMarker  = "DSdl"
	deltaTokenVersion = 1
	deltaTokenFixed   = len(deltaTokenMarker) + 1 + 1 + 8 + 8 + 8 + 4 + 1
)

func (t deltaToken) encode() string {
	props := t.props
	if !t.selected {
		props = nil // the defaults need no room
	}
	b := make([]byte, deltaTokenFixed, deltaTokenFixed+len(props))
	copy(b, deltaTokenMarker)
	k := len(deltaTokenMarker)
	b[k] = deltaTokenVersion
	if t.initial {
		b[k+1] |= 1
	}
	if t.selected {
		b[k+1] |= 2
	}
	binary.BigEndian.PutUint64(b[k+2:], t.serial)
	binary.BigEndian.PutUint64(b[k+10:], uint64(t.base))
	binary.BigEndian.PutUint64(b[k+18:], uint64(t.cursor))
	binary.BigEndian.PutUint32(b[k+26:], uint32(t.page))
	b[k+30] = byte(len(props))
	for _, p := range props {
		b = append(b, byte(p))
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeDeltaToken reads a token this Graph issued, checking it against the log's length and the
// tenant's size so that no token can point past them.
func decodeDeltaToken(token string, logLen, total int) (deltaToken, bool) {
	b, err := base64.RawURLEncoding.DecodeString(token)
	k := len(deltaTokenMarker)
	if err != nil || len(b) < deltaTokenFixed || string(b[:k]) != deltaTokenMarker || b[k] != deltaTokenVersion ||
		len(b) != deltaTokenFixed+int(b[k+30]) {
		return deltaToken{}, false
	}
	t := deltaToken{
		initial:  b[k+1]&1 != 0,
		selected: b[k+1]&2 != 0,
		serial:   binary.BigEndian.Uint64(b[k+2:]),
	}
	base, cursor := binary.BigEndian.Uint64(b[k+10:]), binary.BigEndian.Uint64(b[k+18:])
	page := binary.BigEndian.Uint32(b[k+26:])
	if base > uint64(logLen) || page > 1<<30 ||
		t.initial && cursor > uint64(total) || !t.initial && (cursor < base || cursor > uint64(logLen)) {
		return deltaToken{}, false
	}
	t.base, t.cursor, t.page = int(base), int(cursor), int(page)
	for _, c := range b[deltaTokenFixed:] {
		if int(c) >= len(propertyNames) {
			return deltaToken{}, false
		}
		t.props = append(t.props, property(c))
	}
	if !t.selected {
		t.props = defaultProps
	}
	return t, true
}

// deltaOptions are the query options of /v1.0/users/delta this fake implements.
var deltaOptions = []string{"$select", "$deltatoken", "$skiptoken", "$top"}

// deltaRequest is one request of a delta round, its query and headers read.
type deltaRequest struct {
	props     []property
	selected  bool
	token     string // $skiptoken or $deltatoken as sent
	hasToken  bool
	latest    bool // $deltatoken=latest
	pageSize  int
	preferMin bool
}

// serveDelta answers GET /v1.0/users/delta.
func (g *Graph) serveDelta(w http.ResponseWriter, r *http.Request, ids requestIDs) {
	dr := deltaRequest{props: defaultProps, pageSize: deltaPageSize}
	e := parseOptions(r.URL.RawQuery, deltaOptions, func(option, value string) *graphError {
		switch option {
		case "$select":
			props, e := parseSelect(value)
			if props != nil {
				dr.props, dr.selected = props, true
			}
			return e
		case "$deltatoken", "$skiptoken":
			if dr.hasToken || dr.latest {
				return badRequest("Request_BadRequest", "A delta request carries one state token.")
			}
			switch {
			case option == "$deltatoken" && strings.EqualFold(value, "latest"):
				dr.latest = true
			case option == "$deltatoken" && value == "": // the Location of a 410: start over
			default:
				dr.token, dr.hasToken = value, true
			}
		}
		return nil // $top: Graph ignores it on user delta
	})
	if e == nil && dr.hasToken && dr.selected {
		e = badRequest("Request_UnsupportedQuery",
			"Query options go on the first delta request only: the nextLink or deltaLink carries them.")
	}
	if e != nil {
		g.fail(w, r, ids, e)
		return
	}
	dr.pageSize, dr.preferMin = parsePrefer(r.Header)

	s := g.store
	s.mu.RLock()
	logLen, total := len(s.log), s.total
	s.mu.RUnlock()
	t := deltaToken{initial: true, base: logLen, selected: dr.selected, props: dr.props}
	switch {
	case dr.latest:
		t = deltaToken{base: logLen, cursor: logLen, selected: dr.selected, props: dr.props}
	case dr.hasToken:
		var ok bool
		if t, ok = decodeDeltaToken(dr.token, logLen, total); !ok {
			g.fail(w, r, ids, badRequest("Request_BadRequest", "The delta token is invalid. Follow @odata.nextLink or @odata.deltaLink exactly as it was sent."))
			return
		}
	}
	round := uint64(t.base) << 1
	if t.initial {
		round |= 1
	}
	f := g.fault(PageRequest{Path: UsersDeltaPath, Page: t.page, Offset: t.cursor}, round)
	if !g.begin(w, r, ids, f) {
		return
	}
	if dr.hasToken && t.serial <= s.expiredBelow.Load() {
		g.expired(w, r, ids, t)
		return
	}
	minimal := dr.preferMin && !t.initial && !dr.latest
	var applied []string
	if dr.pageSize != deltaPageSize {
		applied = append(applied, "odata.maxpagesize="+strconv.Itoa(dr.pageSize))
	}
	if minimal {
		applied = append(applied, "return=minimal")
	}
	if applied != nil {
		w.Header().Set("Preference-Applied", strings.Join(applied, ", "))
	}

	buf := pagePool.Get().(*pageBuf)
	defer pagePool.Put(buf)
	var ends *[]int
	if f.Cut || f.Stall {
		buf.ends = buf.ends[:0]
		ends = &buf.ends
	}
	size := dr.pageSize
	if dr.latest {
		size = 0
	}
	s.mu.RLock()
	buf.body = g.renderDelta(buf.body[:0], baseURL(r), t, size, minimal, f, ends, buf)
	s.mu.RUnlock()
	g.send(w, r, f, pageContentType, buf.body, buf.ends)
}

// parsePrefer reads the Prefer headers: the page size asked for, within 1 to 999 (200 when none
// is), and whether the client prefers minimal answers.
func parsePrefer(h http.Header) (pageSize int, minimal bool) {
	pageSize = deltaPageSize
	for _, v := range h.Values("Prefer") {
		for part := range strings.SplitSeq(v, ",") {
			name, value, _ := strings.Cut(strings.TrimSpace(part), "=")
			value = strings.Trim(strings.TrimSpace(value), `"`)
			switch strings.ToLower(strings.TrimSpace(name)) {
			case "odata.maxpagesize", "maxpagesize":
				if n, err := strconv.Atoi(value); err == nil && n > 0 {
					pageSize = min(n, maxTop)
				}
			case "return":
				minimal = strings.EqualFold(value, "minimal")
			}
		}
	}
	return pageSize, minimal
}

// expired answers a request whose link has expired, as ExpireDeltaLinks said.
func (g *Graph) expired(w http.ResponseWriter, r *http.Request, ids requestIDs, t deltaToken) {
	if DeltaExpiry(g.store.expiry.Load()) != ExpiryGone {
		writeGraphError(w, ids, badRequest("syncStateNotFound",
			"The sync state generation is not found. The delta token is expired and data must be synchronized again."))
		return
	}
	restart := baseURL(r) + UsersDeltaPath + "?"
	if t.selected {
		restart += "$select=" + url.QueryEscape(selectList(t.props)) + "&"
	}
	w.Header().Set("Location", restart+"$deltatoken=")
	writeGraphError(w, ids, &graphError{http.StatusGone, "resyncRequired",
		"The delta token is no longer valid, and the app must reset the sync state."})
}

// renderDelta appends the body of the delta page t points at, of up to size entries. The
// caller holds the store's lock for reading.
func (g *Graph) renderDelta(dst []byte, base string, t deltaToken, size int, minimal bool, f Fault, ends *[]int, buf *pageBuf) []byte {
	s := g.store
	users := buf.users[:0]
	rel := relevance(t.props)
	var next deltaToken // the state of the page's link
	last := false
	switch {
	case size == 0: // $deltatoken=latest
		next, last = deltaToken{base: len(s.log), cursor: len(s.log)}, true
	case t.initial:
		end := min(s.total, t.cursor+size)
		for i := t.cursor; i < end; i++ {
			users = append(users, int32(i))
		}
		next = deltaToken{initial: true, base: t.base, cursor: end, page: t.page + 1}
		if end == s.total {
			next, last = deltaToken{base: t.base, cursor: t.base}, true
		}
	default:
		p := t.cursor
		for ; p < len(s.log); p++ {
			e := s.log[p]
			if e.mask&rel == 0 || s.states[e.user].latest(rel) != int32(p) {
				continue // not reported with this $select, or comes later in the round
			}
			if len(users) == size {
				break
			}
			users = append(users, e.user)
		}
		next = deltaToken{base: t.base, cursor: p, page: t.page + 1}
		if p == len(s.log) {
			next, last = deltaToken{base: p, cursor: p}, true
		}
	}
	buf.users = users
	next.selected, next.props = t.selected, t.props
	next.serial = s.links.Add(1)

	dst = append(dst, `{"@odata.context":`...)
	metadata := base + "/v1.0/$metadata#users"
	if t.selected && t.page == 0 {
		metadata += "(" + selectList(t.props) + ")"
	}
	dst = appendJSONString(dst, metadata)
	name, link := `,"@odata.nextLink":`, base+UsersDeltaPath+"?$skiptoken="+next.encode()
	if last {
		name, link = `,"@odata.deltaLink":`, base+UsersDeltaPath+"?$deltatoken="+next.encode()
	}
	if f.NextLink != "" {
		link = f.NextLink
	}
	if !f.LinkAfterValue {
		dst = appendJSONString(append(dst, name...), link)
	}
	dst = append(dst, `,"value":[`...)
	since := int32(t.base)
	for k, i := range users {
		if k > 0 {
			dst = append(dst, ',')
		}
		dst = s.appendDeltaUser(dst, int(i), t.props, minimal, since)
		if ends != nil {
			*ends = append(*ends, len(dst))
		}
	}
	dst = append(dst, ']')
	if f.LinkAfterValue {
		dst = appendJSONString(append(dst, name...), link)
	}
	return append(dst, '}')
}

// relevance is the mask of changes a round with these properties reports: changes of the
// tracked properties among them, and creations, deletions and restores.
func relevance(props []property) uint8 {
	m := trackLife
	for _, p := range props {
		m |= trackedBit(p)
	}
	return m
}

// appendDeltaUser appends user i as a delta entry: removed, or the user with props, id always
// among them; minimal keeps just id and the properties changed since log position since.
func (s *userStore) appendDeltaUser(dst []byte, i int, props []property, minimal bool, since int32) []byte {
	st := s.state(i)
	if st != nil && st.life != lifeListed {
		reason := "changed"
		if st.life == lifeHardDeleted {
			reason = "deleted"
		}
		dst = append(dst, `{"@odata.type":"#microsoft.graph.user","id":"`...)
		dst = appendUserID(dst, i)
		return append(append(append(dst, `","@removed":{"reason":"`...), reason...), `"}}`...)
	}
	whole := !minimal || st == nil || st.pos[bitIndex(trackLife)] >= since
	dst = append(dst, '{')
	n := 0
	for _, p := range props {
		if !whole && p != propID {
			b := trackedBit(p)
			if b == 0 || st.pos[bitIndex(b)] < since {
				continue
			}
		}
		if n > 0 {
			dst = append(dst, ',')
		}
		n++
		dst = appendJSONString(dst, p.String())
		dst = append(dst, ':')
		dst = s.appendValue(dst, i, p, st)
	}
	if !slices.Contains(props, propID) {
		if n > 0 {
			dst = append(dst, ',')
		}
		dst = append(appendUserID(append(dst, `"id":"`...), i), '"')
	}
	return append(dst, '}')
}

func bitIndex(b uint8) int { return bits.TrailingZeros8(b) }
