package fakeazure

import (
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
	"unicode"
	"unicode/utf8"
)

const (
	usersPath       = "/v1.0/users"
	defaultTop      = 100
	maxTop          = 999
	pageContentType = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"
)

// GraphOptions configure a Graph.
type GraphOptions struct {
	Users int    // tenant size
	Token string // the only bearer token accepted
	// Fault, when set, is asked before each authorized, well-formed
	// /v1.0/users request what to do to its response. Nil serves every page
	// as Graph does.
	Fault func(PageRequest) Fault
	// Directory, when set, is served under /v1.0/servicePrincipals: Token
	// may read it, only the directory's AdminToken may also write.
	Directory *Directory
}

// PageRequest identifies one request for a page.
type PageRequest struct {
	// Page is the page's index in an unfiltered listing: its first user's
	// offset divided by $top.
	Page int
	// Offset is the index of the page's first user.
	Offset int
	// Attempt counts the requests for this page so far, from 1: a retry or
	// a restarted listing asks again.
	Attempt int
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
	// NextLink, when set, replaces the page's @odata.nextLink.
	NextLink string
	// LinkAfterValue writes @odata.nextLink after value, as OData allows.
	LinkAfterValue bool
	// Delay waits this long before the response's first byte.
	Delay time.Duration
	// BytesPerSecond, when positive, paces the body to this rate.
	BytesPerSecond int
}

// Graph fakes Microsoft Graph's GET /v1.0/users over a tenant of synthetic users (see UserID and
// UserJSON), with $select, $top, $filter=startswith(...) and @odata.nextLink paging, the faults
// GraphOptions.Fault asks for, and, with a Directory, the service principal calls of a grant. It
// is safe for concurrent use.
type Graph struct {
	opts     GraphOptions
	requests atomic.Int64

	mu       sync.Mutex
	attempts map[int]int // requests so far by page offset, when opts.Fault is set
}

// NewGraph returns a Graph serving o.Users users to callers bearing o.Token.
func NewGraph(o GraphOptions) *Graph {
	o.Users = max(o.Users, 0)
	return &Graph{opts: o}
}

// Requests returns how many /v1.0/users requests were served so far, whatever their status.
func (g *Graph) Requests() int { return int(g.requests.Load()) }

// ServeHTTP answers GET /v1.0/users as Graph does, /v1.0/servicePrincipals from the Directory
// when there is one, and any other request with Graph's error shape.
func (g *Graph) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, servicePrincipalsPath) {
		g.serveDirectory(w, r)
		return
	}
	ids := newRequestIDs(r)
	ids.set(w.Header())
	if r.URL.Path != usersPath {
		writeGraphError(w, ids, &graphError{http.StatusNotFound, "Request_ResourceNotFound",
			fmt.Sprintf("Resource not found for the segment '%s'.", path.Base(r.URL.Path))})
		return
	}
	g.requests.Add(1)
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		writeGraphError(w, ids, &graphError{http.StatusMethodNotAllowed, "BadRequest",
			"Specified HTTP method is not allowed for the request target."})
		return
	}
	if e := g.authorize(r.Header.Get("Authorization")); e != nil {
		writeGraphError(w, ids, e)
		return
	}
	q, e := g.parseQuery(r.URL.RawQuery)
	if e != nil {
		writeGraphError(w, ids, e)
		return
	}
	if g.opts.Fault == nil {
		g.writePage(w, r, baseURL(r), q, Fault{})
		return
	}
	f := g.opts.Fault(g.pageRequest(q))
	for k, vs := range f.Header {
		w.Header()[k] = vs
	}
	if f.Delay > 0 {
		select {
		case <-time.After(f.Delay):
		case <-r.Context().Done():
			return
		}
	}
	if f.Status != 0 {
		writeGraphError(w, ids, &graphError{f.Status, f.Code, f.Message})
		return
	}
	g.writePage(w, r, baseURL(r), q, f)
}

// pageRequest counts a request for the page q asks for.
func (g *Graph) pageRequest(q listQuery) PageRequest {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.attempts == nil {
		g.attempts = map[int]int{}
	}
	g.attempts[q.offset]++
	return PageRequest{Page: q.offset / q.top, Offset: q.offset, Attempt: g.attempts[q.offset]}
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

// pagePool recycles page buffers: a page of 999 users is about half a megabyte.
var pagePool = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

// writePage renders the page q asks for and writes it, as f says: the one
// place a page is answered.
func (g *Graph) writePage(w http.ResponseWriter, r *http.Request, base string, q listQuery, f Fault) {
	buf := pagePool.Get().(*[]byte)
	defer pagePool.Put(buf)
	var ends []int
	var endsp *[]int // where each user's JSON ends, to know where to cut
	if f.Cut || f.Stall {
		endsp = &ends
	}
	body := g.renderPage((*buf)[:0], base, q, f, endsp)
	*buf = body
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
		w.Header().Set("Content-Type", pageContentType)
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body[:cut])
		if fl, ok := w.(http.Flusher); ok {
			fl.Flush()
		}
		if f.Stall {
			<-r.Context().Done()
		}
		panic(http.ErrAbortHandler)
	}
	if f.BytesPerSecond > 0 {
		writePaced(w, body, f.BytesPerSecond)
		return
	}
	writeBody(w, http.StatusOK, pageContentType, body)
}

// writePaced writes body at about bytesPerSecond, in 10 ms slices.
func writePaced(w http.ResponseWriter, body []byte, bytesPerSecond int) {
	w.Header().Set("Content-Type", pageContentType)
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
		time.Sleep(time.Until(due))
	}
}

// renderPage appends the body of the page that starts at user q.offset: up to q.top users that
// match q.filter, with only q.props. Like Graph, it writes @odata.nextLink before value, so it
// first finds where the page ends and where the next one starts.
func (g *Graph) renderPage(dst []byte, base string, q listQuery, f Fault, ends *[]int) []byte {
	end := q.offset
	for found := 0; end < g.opts.Users && found < q.top; end++ {
		if q.filter.matches(end) {
			found++
		}
	}
	next := end
	for next < g.opts.Users && !q.filter.matches(next) {
		next++
	}

	dst = append(dst, `{"@odata.context":`...)
	metadata := base + "/v1.0/$metadata#users"
	if q.selected {
		metadata += "(" + q.selectList + ")"
	}
	dst = appendJSONString(dst, metadata)
	link := f.NextLink
	if link == "" && next < g.opts.Users {
		link = q.nextLink(base, next)
	}
	if link != "" && !f.LinkAfterValue {
		dst = append(dst, `,"@odata.nextLink":`...)
		dst = appendJSONString(dst, link)
	}
	dst = append(dst, `,"value":[`...)
	first := true
	for i := q.offset; i < end; i++ {
		if !q.filter.matches(i) {
			continue
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = appendUser(dst, i, q.props)
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
	offset     int
}

// nextLink is the absolute URL of the page starting at user next, keeping the caller's options.
func (q listQuery) nextLink(base string, next int) string {
	var b strings.Builder
	b.WriteString(base + usersPath)
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
	add("$skiptoken", encodeSkipToken(next))
	return b.String()
}

// queryOptions are the query options this fake implements.
var queryOptions = [...]string{"$select", "$top", "$filter", "$skiptoken"}

// parseQuery reads the query options of GET /v1.0/users, refusing those Graph would refuse and
// those this fake does not implement.
func (g *Graph) parseQuery(raw string) (listQuery, *graphError) {
	q := listQuery{props: defaultProps, top: defaultTop}
	var seen [len(queryOptions)]bool
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		k, v, _ := strings.Cut(pair, "=")
		name, err1 := url.QueryUnescape(k)
		value, err2 := url.QueryUnescape(v)
		if err1 != nil || err2 != nil {
			return q, badRequest("BadRequest", "The query specified in the URI is not valid.")
		}
		if !strings.HasPrefix(name, "$") {
			continue
		}
		option := strings.ToLower(name)
		n := slices.Index(queryOptions[:], option)
		if n < 0 {
			return q, badRequest("Request_UnsupportedQuery", fmt.Sprintf(
				"Query option '%s' is not supported by this fake; it implements $select, $top, $filter and $skiptoken.", name))
		}
		if seen[n] {
			return q, badRequest("BadRequest", fmt.Sprintf(
				"Query option '%s' was specified more than once, but it must be specified at most once.", option))
		}
		seen[n] = true
		var e *graphError
		switch option {
		case "$select":
			e = q.parseSelect(value)
		case "$top":
			e = q.parseTop(value)
		case "$filter":
			q.filter, e = parseFilter(value)
		case "$skiptoken":
			q.offset, e = g.decodeSkipToken(value)
		}
		if e != nil {
			return q, e
		}
	}
	return q, nil
}

func badRequest(code, message string) *graphError {
	return &graphError{http.StatusBadRequest, code, message}
}

// parseSelect reads a comma-separated $select; blank items are skipped and repeats collapse.
func (q *listQuery) parseSelect(value string) *graphError {
	var props []property
	for item := range strings.SplitSeq(value, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		p, ok := lookupProperty(item)
		if !ok {
			return badRequest("BadRequest", fmt.Sprintf(
				"Could not find a property named '%s' on type 'microsoft.graph.user'.", item))
		}
		if !slices.Contains(props, p) {
			props = append(props, p)
		}
	}
	if len(props) == 0 {
		return nil
	}
	names := make([]string, len(props))
	for k, p := range props {
		names[k] = p.String()
	}
	q.props, q.selected, q.selectList = props, true, strings.Join(names, ",")
	return nil
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

// userFilter is a parsed $filter: startswith(prop,'prefix'), case-insensitive. The zero value
// matches every user.
type userFilter struct {
	text   string // as sent, carried into nextLink
	prop   property
	prefix string
}

// parseFilter reads startswith(displayName,'...') or startswith(userPrincipalName,'...'), the
// only filters this fake implements; a quote inside the literal is doubled, as OData has it.
func parseFilter(text string) (userFilter, *graphError) {
	unsupported := badRequest("Request_UnsupportedQuery", "Unsupported or invalid query filter clause: "+
		"this fake implements only startswith(displayName,'...') and startswith(userPrincipalName,'...').")
	fn, rest, ok := strings.Cut(text, "(")
	if !ok || !strings.EqualFold(strings.TrimSpace(fn), "startswith") {
		return userFilter{}, unsupported
	}
	name, rest, ok := strings.Cut(rest, ",")
	p, known := lookupProperty(strings.TrimSpace(name))
	if !ok || !known || (p != propDisplayName && p != propUserPrincipalName) {
		return userFilter{}, unsupported
	}
	rest = strings.TrimSpace(rest)
	if !strings.HasPrefix(rest, "'") {
		return userFilter{}, unsupported
	}
	var prefix strings.Builder
	k := 1
	for {
		if k >= len(rest) {
			return userFilter{}, unsupported
		}
		if rest[k] == '\'' {
			if k+1 < len(rest) && rest[k+1] == '\'' {
				prefix.WriteByte('\'')
				k += 2
				continue
			}
			break
		}
		prefix.WriteByte(rest[k])
		k++
	}
	if strings.TrimSpace(rest[k+1:]) != ")" {
		return userFilter{}, unsupported
	}
	return userFilter{text: text, prop: p, prefix: prefix.String()}, nil
}

// matches reports whether user i passes the filter.
func (f userFilter) matches(i int) bool {
	if f.text == "" {
		return true
	}
	var scratch [64]byte
	if f.prop == propDisplayName {
		return hasPrefixFold(appendDisplayName(scratch[:0], i), f.prefix)
	}
	return hasPrefixFold(appendUPN(scratch[:0], i), f.prefix)
}

// hasPrefixFold reports whether s starts with prefix under Unicode case folding.
func hasPrefixFold(s []byte, prefix string) bool {
	for _, want := range prefix {
		got, n := utf8.DecodeRune(s)
		if n == 0 || !runeEqualFold(got, want) {
			return false
		}
		s = s[n:]
	}
	return true
}

func runeEqualFold(a, b rune) bool {
	for r := a; ; {
		if r == b {
			return true
		}
		if r = unicode.SimpleFold(r); r == a {
			return false
		}
	}
}

// Page tokens are opaque to callers: base64url of a marker, a format version and the offset of
// the page's first user. The version leaves room for tokens that carry more, such as an expiry.
const (
	skipTokenMarker  = "DSpt"
	skipTokenVersion = 1
	skipTokenLen     = len(skipTokenMarker) + 1 + 8
)

func encodeSkipToken(offset int) string {
	var b [skipTokenLen]byte
	copy(b[:], skipTokenMarker)
	b[len(skipTokenMarker)] = skipTokenVersion
	binary.BigEndian.PutUint64(b[len(skipTokenMarker)+1:], uint64(offset))
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// decodeSkipToken returns the offset a token holds, refusing tokens this Graph did not issue.
func (g *Graph) decodeSkipToken(token string) (int, *graphError) {
	invalid := badRequest("Request_BadRequest", "The $skiptoken is invalid. Follow @odata.nextLink exactly as it was sent.")
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(b) != skipTokenLen || string(b[:len(skipTokenMarker)]) != skipTokenMarker ||
		b[len(skipTokenMarker)] != skipTokenVersion {
		return 0, invalid
	}
	offset := binary.BigEndian.Uint64(b[len(skipTokenMarker)+1:])
	if offset > uint64(g.opts.Users) {
		return 0, invalid
	}
	return int(offset), nil
}
