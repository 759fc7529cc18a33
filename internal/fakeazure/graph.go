package fakeazure

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The paths of the fake Graph's user endpoints, which PageRequest.Path names.
const (
	UsersPath      = "/v1.0/users"
	UsersDeltaPath = "/v1.0/users/delta"
	UsersCountPath = "/v1.0/users/$count"
)

const (
	defaultTop      = 100
	maxTop          = 999
	pageContentType = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"
)

// GraphOptions configure a Graph. The zero value of every knob serves as Graph does, at once.
type GraphOptions struct {
	Users int    // tenant size when created; users added later take the next indexes
	Token string // the only bearer token accepted
	// Fault, when set, is asked before each authorized, well-formed request of /v1.0/users,
	// /v1.0/users/delta or /v1.0/users/$count what to do to its response. Nil serves every
	// response as Graph does.
	Fault func(PageRequest) Fault
	// Directory, when set, is served under /v1.0/servicePrincipals: Token
	// may read it, only the directory's AdminToken may also write.
	Directory *Directory

	// Realistic names users as a real directory does (see RealisticUPN): skewed first letters,
	// mixed case, guests, digits and punctuation. Otherwise user i is userNNNNNN@contoso.onmicrosoft.com
	// (see UserJSON).
	Realistic bool
	// CaseSensitiveStartsWith makes startsWith compare case as well, as a directory that did
	// not fold case would: a split listing's probe should notice. Entra ignores case.
	CaseSensitiveStartsWith bool
	// CountSkew is added to every count, of /v1.0/users/$count and @odata.count (never below
	// zero), as an eventually consistent count can be off: a listing's total then differs.
	CountSkew int
	// Latency is the wait before the first byte of every response of the user endpoints,
	// errors included, unless a Fault sets Delay. It waits on a timer, and ends early when the
	// client goes away.
	Latency time.Duration
	// BytesPerSecond, when positive, paces the body of every page and count to this rate,
	// unless a Fault sets its own.
	BytesPerSecond int
}

// PageRequest identifies one request for a page of a listing, of a delta round or for a count.
type PageRequest struct {
	// Page is the page's index within its listing, from 0: the first page of a $filter's
	// listing is 0 too. In an unfiltered listing of a tenant that never changed it is the
	// page's first user's offset divided by $top.
	Page int
	// Offset is the index of the page's first user in a listing; in a delta round, the
	// position the page starts at.
	Offset int
	// Attempt counts the requests for this page of this listing so far, from 1: a retry or a
	// restarted listing asks again. Each $filter, and each delta round, counts apart, so a test
	// can fault one stream of a split listing while the others run.
	Attempt int
	// Path is UsersPath, UsersDeltaPath or UsersCountPath.
	Path string
	// Filter is the $filter the listing or count asked for, as sent; "" for none.
	Filter string
	// Prefix is the prefix of the filter's startsWith(userPrincipalName,'…') clause, alone or
	// joined to others by and; "" when there is none.
	Prefix string
}

// Fault is what the fake Graph does to one response. The zero Fault serves
// the page as it is.
type Fault struct {
	// Status, when not zero, answers with this status and Graph's error
	// shape instead of the page.
	Status int
	// Code and Message go into the error body with Status.
	Code, Message string
	// Header is added to the response, such as Retry-After.
	Header http.Header
	// Cut ends the page's body early, the connection closed mid-body, just
	// after CutAfterUsers whole users, inside the next one.
	Cut           bool
	CutAfterUsers int
	// Stall sends the page as far as Cut would, then nothing more, with the
	// connection open, until the client gives up.
	Stall bool
	// Garbage answers 200 with a body that is not JSON.
	Garbage bool
	// NextLink, when set, replaces the page's @odata.nextLink; in a delta
	// round, the link the page carries, next or delta.
	NextLink string
	// LinkAfterValue writes @odata.nextLink after value, as OData allows.
	LinkAfterValue bool
	// Delay waits this long before the response's first byte, instead of
	// GraphOptions.Latency.
	Delay time.Duration
	// BytesPerSecond, when positive, paces the body to this rate, instead of
	// GraphOptions.BytesPerSecond.
	BytesPerSecond int
	// WithoutID leaves the id out of each user of a /v1.0/users page,
	// though $select asks for it: a malformed answer, which a client must
	// still take every user of.
	WithoutID bool
}

// Graph fakes Microsoft Graph's user endpoints over a tenant of generated users (see UserID,
// UserJSON and RealisticUPN) that tests may change while it serves (see Change):
//
//   - GET /v1.0/users, with $select, $top, $filter (see GraphOptions), $count and
//     @odata.nextLink paging;
//   - GET /v1.0/users/$count, with ConsistencyLevel: eventual;
//   - GET /v1.0/users/delta, with $select, $deltatoken=latest, nextLink and deltaLink rounds,
//     Prefer: odata.maxpagesize and return=minimal;
//
// each with the latency, pacing and faults GraphOptions ask for, and, with a Directory, the
// service principal calls of a grant. It is safe for concurrent use.
type Graph struct {
	opts     GraphOptions
	store    *userStore
	requests atomic.Int64

	mu       sync.Mutex
	attempts map[attemptKey]int // requests so far by page, when opts.Fault is set
}

// attemptKey names one page of one listing, count or delta round.
type attemptKey struct {
	path, filter string
	round        uint64 // the delta round's start, plus one for an initial round
	offset       int
}

// NewGraph returns a Graph serving o.Users users to callers bearing o.Token.
func NewGraph(o GraphOptions) *Graph {
	o.Users = max(o.Users, 0)
	return &Graph{opts: o, store: newUserStore(o.Users, o.Realistic, o.CaseSensitiveStartsWith)}
}

// Requests returns how many requests of the user endpoints (/v1.0/users, its $count and delta)
// were served so far, whatever their status.
func (g *Graph) Requests() int { return int(g.requests.Load()) }

// ServeHTTP answers the user endpoints as Graph does, /v1.0/servicePrincipals from the Directory
// when there is one, and any other request with Graph's error shape.
func (g *Graph) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, servicePrincipalsPath) {
		g.serveDirectory(w, r)
		return
	}
	ids := newRequestIDs(r)
	ids.set(w.Header())
	endpoint := usersEndpoint(r.URL.Path)
	if endpoint == "" {
		writeGraphError(w, ids, &graphError{http.StatusNotFound, "Request_ResourceNotFound",
			fmt.Sprintf("Resource not found for the segment '%s'.", path.Base(r.URL.Path))})
		return
	}
	g.requests.Add(1)
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		g.fail(w, r, ids, &graphError{http.StatusMethodNotAllowed, "BadRequest",
			"Specified HTTP method is not allowed for the request target."})
		return
	}
	if e := g.authorize(r.Header.Get("Authorization")); e != nil {
		g.fail(w, r, ids, e)
		return
	}
	switch endpoint {
	case UsersPath:
		g.serveList(w, r, ids)
	case UsersCountPath:
		g.serveCount(w, r, ids)
	case UsersDeltaPath:
		g.serveDelta(w, r, ids)
	}
}

// usersEndpoint names the user endpoint p is, "" for none. The delta function may also be
// called by its qualified name, as Graph's SDKs do.
func usersEndpoint(p string) string {
	switch p {
	case UsersPath, UsersCountPath, UsersDeltaPath:
		return p
	case UsersPath + "/delta()", UsersPath + "/microsoft.graph.delta", UsersPath + "/microsoft.graph.delta()":
		return UsersDeltaPath
	}
	return ""
}

// fault asks opts.Fault what to do to the response to pr, counting its attempt.
func (g *Graph) fault(pr PageRequest, round uint64) Fault {
	if g.opts.Fault == nil {
		return Fault{}
	}
	g.mu.Lock()
	if g.attempts == nil {
		g.attempts = map[attemptKey]int{}
	}
	k := attemptKey{path: pr.Path, filter: pr.Filter, round: round, offset: pr.Offset}
	g.attempts[k]++
	pr.Attempt = g.attempts[k]
	g.mu.Unlock()
	return g.opts.Fault(pr)
}

// begin does what f asks before a response's body: its headers, the wait before the first byte,
// and an error status instead of the body. It reports whether the body should follow.
func (g *Graph) begin(w http.ResponseWriter, r *http.Request, ids requestIDs, f Fault) bool {
	for k, vs := range f.Header {
		w.Header()[k] = vs
	}
	delay := f.Delay
	if delay <= 0 {
		delay = g.opts.Latency
	}
	if !wait(r.Context(), delay) {
		return false
	}
	if f.Status != 0 {
		writeGraphError(w, ids, &graphError{f.Status, f.Code, f.Message})
		return false
	}
	return true
}

// fail answers e after the usual latency.
func (g *Graph) fail(w http.ResponseWriter, r *http.Request, ids requestIDs, e *graphError) {
	if wait(r.Context(), g.opts.Latency) {
		writeGraphError(w, ids, e)
	}
}

// wait waits d on a timer, and reports false if ctx ended first.
func wait(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// authorize checks the bearer token without ever repeating it.
func (g *Graph) authorize(header string) *graphError {
	scheme, token, _ := strings.Cut(header, " ")
	if !strings.EqualFold(scheme, "Bearer") || token == "" {
		return &graphError{http.StatusUnauthorized, "InvalidAuthenticationToken", "Access token is empty."}
	}
	if subtle.ConstantTimeCompare([]byte(token), []byte(g.opts.Token)) != 1 {
		return &graphError{http.StatusUnauthorized, "InvalidAuthenticationToken",
			"Access token validation failure. Invalid audience."}
	}
	return nil
}

// pageBuf is a page's scratch: its body and its users. A page of 999 users is about half a
// megabyte.
type pageBuf struct {
	body  []byte
	users []int32
	ends  []int
}

var pagePool = sync.Pool{New: func() any { return &pageBuf{body: make([]byte, 0, 64<<10), users: make([]int32, 0, maxTop)} }}

// serveList answers GET /v1.0/users.
func (g *Graph) serveList(w http.ResponseWriter, r *http.Request, ids requestIDs) {
	s := g.store
	s.mu.RLock()
	total := s.total
	s.mu.RUnlock()
	q, e := parseListQuery(r.URL.RawQuery, total)
	if e != nil {
		g.fail(w, r, ids, e)
		return
	}
	if q.filter.hasPrefix {
		s.ensureIndex()
	}
	f := g.fault(PageRequest{Path: UsersPath, Page: q.page, Offset: q.offset, Filter: q.filter.text, Prefix: q.filter.prefix}, 0)
	if !g.begin(w, r, ids, f) {
		return
	}
	buf := pagePool.Get().(*pageBuf)
	defer pagePool.Put(buf)
	var ends *[]int // where each user's JSON ends, to know where to cut
	if f.Cut || f.Stall {
		buf.ends = buf.ends[:0]
		ends = &buf.ends
	}
	// Without the header Graph ignores $count=true; it counts on the first page only.
	count := q.count && !q.tokenSent && eventual(r)

	s.mu.RLock()
	users, next := s.walk(&q.filter, q.offset, q.top, buf.users[:0])
	n := -1
	if count {
		n = max(0, s.count(&q.filter)+g.opts.CountSkew)
	}
	buf.body = g.renderPage(buf.body[:0], baseURL(r), q, f, ends, users, next, n)
	s.mu.RUnlock()
	buf.users = users
	g.send(w, r, f, pageContentType, buf.body, buf.ends)
}

// eventual reports whether r asks for Graph's advanced queries.
func eventual(r *http.Request) bool {
	return strings.EqualFold(strings.TrimSpace(r.Header.Get("ConsistencyLevel")), "eventual")
}

// send writes a response's body as f says: the one place a page or a count is answered.
func (g *Graph) send(w http.ResponseWriter, r *http.Request, f Fault, contentType string, body []byte, ends []int) {
	if f.Garbage {
		body = []byte("<html><body>502 Bad Gateway</body></html>")
	}
	if f.Cut || f.Stall {
		// The whole length is announced and part of it sent: the client sees
		// the connection close mid-body, or go quiet.
		cut := min(24, len(body)-1)
		if f.CutAfterUsers > 0 && f.CutAfterUsers <= len(ends) {
			cut = min(ends[f.CutAfterUsers-1]+12, len(body)-1)
		}
		w.Header().Set("Content-Type", contentType)
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body[:max(cut, 0)])
		if fl, ok := w.(http.Flusher); ok {
			fl.Flush()
		}
		if f.Stall {
			<-r.Context().Done()
		}
		panic(http.ErrAbortHandler)
	}
	bps := f.BytesPerSecond
	if bps <= 0 {
		bps = g.opts.BytesPerSecond
	}
	if bps > 0 {
		writePaced(w, r, contentType, body, bps)
		return
	}
	writeBody(w, http.StatusOK, contentType, body)
}

// writePaced writes body at about bytesPerSecond, in 10 ms slices, until the client goes away.
func writePaced(w http.ResponseWriter, r *http.Request, contentType string, body []byte, bytesPerSecond int) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	const slice = 10 * time.Millisecond
	chunk := max(1, bytesPerSecond/int(time.Second/slice))
	start := time.Now()
	for sent := 0; sent < len(body); {
		n := min(chunk, len(body)-sent)
		if _, err := w.Write(body[sent : sent+n]); err != nil {
			return
		}
		sent += n
		if fl, ok := w.(http.Flusher); ok {
			fl.Flush()
		}
		due := start.Add(time.Duration(float64(sent) / float64(bytesPerSecond) * float64(time.Second)))
		if !wait(r.Context(), time.Until(due)) {
			return
		}
	}
}

// renderPage appends the body of a page of users, with only q.props; next is the first user of
// the next page, or -1. Like Graph, it writes @odata.count and @odata.nextLink before value;
// count is -1 for none.
func (g *Graph) renderPage(dst []byte, base string, q listQuery, f Fault, ends *[]int, users []int32, next, count int) []byte {
	dst = append(dst, `{"@odata.context":`...)
	metadata := base + "/v1.0/$metadata#users"
	if q.selected {
		metadata += "(" + q.selectList + ")"
	}
	dst = appendJSONString(dst, metadata)
	if count >= 0 {
		dst = strconv.AppendInt(append(dst, `,"@odata.count":`...), int64(count), 10)
	}
	link := f.NextLink
	if link == "" && next >= 0 {
		link = q.nextLink(base, next)
	}
	if link != "" && !f.LinkAfterValue {
		dst = append(dst, `,"@odata.nextLink":`...)
		dst = appendJSONString(dst, link)
	}
	props := q.props
	if f.WithoutID {
		props = slices.DeleteFunc(slices.Clone(props), func(p property) bool { return p == propID })
	}
	dst = append(dst, `,"value":[`...)
	for k, i := range users {
		if k > 0 {
			dst = append(dst, ',')
		}
		dst = g.store.appendUser(dst, int(i), props)
		if ends != nil {
			*ends = append(*ends, len(dst))
		}
	}
	dst = append(dst, ']')
	if link != "" && f.LinkAfterValue {
		dst = append(dst, `,"@odata.nextLink":`...)
		dst = appendJSONString(dst, link)
	}
	return append(dst, '}')
}

// serveCount answers GET /v1.0/users/$count: text, the number of users that pass $filter.
func (g *Graph) serveCount(w http.ResponseWriter, r *http.Request, ids requestIDs) {
	if !eventual(r) {
		g.fail(w, r, ids, badRequest("Request_BadRequest", "$count is not currently supported."))
		return
	}
	var filter userFilter
	e := parseOptions(r.URL.RawQuery, []string{"$filter"}, func(option, value string) (e *graphError) {
		filter, e = parseFilter(value)
		return e
	})
	if e != nil {
		g.fail(w, r, ids, e)
		return
	}
	s := g.store
	if filter.hasPrefix {
		s.ensureIndex()
	}
	f := g.fault(PageRequest{Path: UsersCountPath, Filter: filter.text, Prefix: filter.prefix}, 0)
	if !g.begin(w, r, ids, f) {
		return
	}
	s.mu.RLock()
	n := max(0, s.count(&filter)+g.opts.CountSkew)
	s.mu.RUnlock()
	g.send(w, r, f, "text/plain", strconv.AppendInt(nil, int64(n), 10), nil)
}

// baseURL is the scheme and host the caller used, which Graph's links are built from.
func baseURL(r *http.Request) string {
	if r.TLS != nil {
		return "https://" + r.Host
	}
	return "http://" + r.Host
}

// listQuery is one page request: the query options of GET /v1.0/users, the page token decoded.
type listQuery struct {
	props      []property
	selected   bool   // $select was sent; otherwise props are the defaults
	selectList string // props' names, comma-separated
	top        int
	topSent    bool
	filter     userFilter
	count      bool // $count=true
	offset     int  // the page's first user, or where to look for it
	page       int  // the page's index in its listing
	tokenSent  bool
}

// nextLink is the absolute URL of the page starting at user next, keeping the caller's options.
func (q listQuery) nextLink(base string, next int) string {
	var b strings.Builder
	b.WriteString(base + UsersPath)
	sep := "?"
	add := func(name, value string) {
		b.WriteString(sep + name + "=" + url.QueryEscape(value))
		sep = "&"
	}
	if q.selected {
		add("$select", q.selectList)
	}
	if q.topSent {
		add("$top", strconv.Itoa(q.top))
	}
	if q.filter.text != "" {
		add("$filter", q.filter.text)
	}
	if q.count {
		add("$count", "true")
	}
	add("$skiptoken", encodeSkipToken(next, q.page+1))
	return b.String()
}

// listOptions are the query options of /v1.0/users this fake implements.
var listOptions = []string{"$select", "$top", "$filter", "$count", "$skiptoken"}

// parseListQuery reads the query options of GET /v1.0/users, refusing those Graph would refuse
// and those this fake does not implement. total bounds the page token.
func parseListQuery(raw string, total int) (listQuery, *graphError) {
	q := listQuery{props: defaultProps, top: defaultTop}
	e := parseOptions(raw, listOptions, func(option, value string) *graphError {
		switch option {
		case "$select":
			return q.parseSelect(value)
		case "$top":
			return q.parseTop(value)
		case "$filter":
			var e *graphError
			q.filter, e = parseFilter(value)
			return e
		case "$count":
			return q.parseCount(value)
		}
		var e *graphError
		q.offset, q.page, e = decodeSkipToken(value, total)
		q.tokenSent = true
		return e
	})
	return q, e
}

// parseOptions splits a raw query into its $ options and hands each to set, refusing options
// not in allowed and options given twice. Options without $ are ignored, as Graph does.
func parseOptions(raw string, allowed []string, set func(option, value string) *graphError) *graphError {
	seen := make([]bool, len(allowed))
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		k, v, _ := strings.Cut(pair, "=")
		name, err1 := url.QueryUnescape(k)
		value, err2 := url.QueryUnescape(v)
		if err1 != nil || err2 != nil {
			return badRequest("BadRequest", "The query specified in the URI is not valid.")
		}
		if !strings.HasPrefix(name, "$") {
			continue
		}
		option := strings.ToLower(name)
		n := slices.Index(allowed, option)
		if n < 0 {
			return badRequest("Request_UnsupportedQuery", fmt.Sprintf(
				"Query option '%s' is not supported by this fake here; it implements %s.", name, strings.Join(allowed, ", ")))
		}
		if seen[n] {
			return badRequest("BadRequest", fmt.Sprintf(
				"Query option '%s' was specified more than once, but it must be specified at most once.", option))
		}
		seen[n] = true
		if e := set(option, value); e != nil {
			return e
		}
	}
	return nil
}

func badRequest(code, message string) *graphError {
	return &graphError{http.StatusBadRequest, code, message}
}

// parseSelect reads a comma-separated $select; blank items are skipped and repeats collapse.
func (q *listQuery) parseSelect(value string) *graphError {
	props, e := parseSelect(value)
	if e != nil || props == nil {
		return e
	}
	q.props, q.selected, q.selectList = props, true, selectList(props)
	return nil
}

// parseSelect reads a $select, nil for an empty one.
func parseSelect(value string) ([]property, *graphError) {
	var props []property
	for item := range strings.SplitSeq(value, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		p, ok := lookupProperty(item)
		if !ok {
			return nil, badRequest("BadRequest", fmt.Sprintf(
				"Could not find a property named '%s' on type 'microsoft.graph.user'.", item))
		}
		if !slices.Contains(props, p) {
			props = append(props, p)
		}
	}
	return props, nil
}

func selectList(props []property) string {
	names := make([]string, len(props))
	for k, p := range props {
		names[k] = p.String()
	}
	return strings.Join(names, ",")
}

// parseTop reads $top, which Graph limits to 1..999 for users.
func (q *listQuery) parseTop(value string) *graphError {
	n, err := strconv.Atoi(value)
	if err != nil {
		return badRequest("BadRequest", fmt.Sprintf(
			"Invalid value '%s' for query option '$top': it must be an integer.", value))
	}
	if n < 1 || n > maxTop {
		return badRequest("Request_UnsupportedQuery", fmt.Sprintf(
			"Invalid page size specified: '%d'. Must be between 1 and %d inclusive.", n, maxTop))
	}
	q.top, q.topSent = n, true
	return nil
}

// parseCount reads $count, true or false.
func (q *listQuery) parseCount(value string) *graphError {
	b, err := strconv.ParseBool(value)
	if err != nil || (value != "true" && value != "false") {
		return badRequest("BadRequest", fmt.Sprintf(
			"Invalid value '%s' for query option '$count': it must be true or false.", value))
	}
	q.count = b
	return nil
}

// Page tokens are opaque to callers: base64url of a marker, a format version, the offset of the
// page's first user and the page's index in its listing.
const (
	skipTokenMarker  = "DSpt"
	skipTokenVersion = 2
	skipTokenLen     = len(skipTokenMarker) + 1 + 8 + 4
)

func encodeSkipToken(offset, page int) string {
	var b [skipTokenLen]byte
	copy(b[:], skipTokenMarker)
	b[len(skipTokenMarker)] = skipTokenVersion
	binary.BigEndian.PutUint64(b[len(skipTokenMarker)+1:], uint64(offset))
	binary.BigEndian.PutUint32(b[len(skipTokenMarker)+9:], uint32(page))
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// decodeSkipToken returns the offset and page a token holds, refusing tokens this Graph did not
// issue.
func decodeSkipToken(token string, total int) (offset, page int, e *graphError) {
	invalid := badRequest("Request_BadRequest", "The $skiptoken is invalid. Follow @odata.nextLink exactly as it was sent.")
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(b) != skipTokenLen || string(b[:len(skipTokenMarker)]) != skipTokenMarker ||
		b[len(skipTokenMarker)] != skipTokenVersion {
		return 0, 0, invalid
	}
	o := binary.BigEndian.Uint64(b[len(skipTokenMarker)+1:])
	p := binary.BigEndian.Uint32(b[len(skipTokenMarker)+9:])
	if o > uint64(total) || p > 1<<30 {
		return 0, 0, invalid
	}
	return int(o), int(p), nil
}
