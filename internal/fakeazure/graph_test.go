package fakeazure

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const graphToken = "graph-bearer-token"

// graphServer is a Graph behind an https test server.
type graphServer struct {
	*Graph
	srv *httptest.Server
}

func newGraphServer(t *testing.T, users int) graphServer {
	t.Helper()
	return newGraphServerWith(t, GraphOptions{Users: users})
}

// newGraphServerWith serves a Graph with o's knobs, and the test token.
func newGraphServerWith(t *testing.T, o GraphOptions) graphServer {
	t.Helper()
	o.Token = graphToken
	g := NewGraph(o)
	srv := httptest.NewTLSServer(g)
	t.Cleanup(srv.Close)
	return graphServer{g, srv}
}

// graphResponse is one answer as the client saw it.
type graphResponse struct {
	status int
	header http.Header
	raw    []byte
}

func (gs graphServer) get(t *testing.T, target string, header http.Header) graphResponse {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, target, nil)
	require.NoError(t, err)
	req.Header = header
	resp, err := gs.srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return graphResponse{resp.StatusCode, resp.Header, raw}
}

func bearer(token string) http.Header { return http.Header{"Authorization": {"Bearer " + token}} }

// page is a decoded 200 body of /v1.0/users.
type page struct {
	Context  string            `json:"@odata.context"`
	NextLink string            `json:"@odata.nextLink"`
	Value    []json.RawMessage `json:"value"`
}

// pageOf checks that r is a Graph page and decodes it.
func pageOf(t *testing.T, r graphResponse) page {
	t.Helper()
	require.Equal(t, http.StatusOK, r.status, "%s", r.raw)
	assert.Equal(t, pageContentType, r.header.Get("Content-Type"))
	assert.Regexp(t, guidPattern, r.header.Get("request-id"))
	var p page
	require.NoError(t, json.Unmarshal(r.raw, &p))
	want := []string{"@odata.context", "@odata.nextLink", "value"}
	if p.NextLink == "" {
		want = []string{"@odata.context", "value"}
	}
	assert.Equal(t, want, keys(t, r.raw), "nextLink comes before value, in the raw body")
	return p
}

// listAll follows nextLinks from first and returns every page.
func (gs graphServer) listAll(t *testing.T, first string) []page {
	t.Helper()
	var pages []page
	for link := first; link != ""; {
		p := pageOf(t, gs.get(t, link, bearer(graphToken)))
		pages = append(pages, p)
		link = p.NextLink
		require.Less(t, len(pages), 1000, "paging never ends")
	}
	return pages
}

// ids decodes the id of every user on the pages.
func ids(t *testing.T, pages []page) []string {
	t.Helper()
	var out []string
	for _, p := range pages {
		for _, v := range p.Value {
			var u struct{ ID string }
			require.NoError(t, json.Unmarshal(v, &u))
			out = append(out, u.ID)
		}
	}
	return out
}

func userIDs(indexes ...int) []string {
	out := make([]string, len(indexes))
	for k, i := range indexes {
		out[k] = UserID(i)
	}
	return out
}

func TestGraphPagesThroughEveryUserFollowingNextLinks(t *testing.T) {
	gs := newGraphServer(t, 50)
	host := strings.TrimPrefix(gs.srv.URL, "https://")

	pages := gs.listAll(t, gs.srv.URL+"/v1.0/users?$select=id,displayName&$top=7")

	require.Len(t, pages, 8, "50 users in pages of 7")
	for k, p := range pages {
		assert.Equal(t, gs.srv.URL+"/v1.0/$metadata#users(id,displayName)", p.Context)
		if k == len(pages)-1 {
			assert.Empty(t, p.NextLink, "the last page has no nextLink")
			assert.Len(t, p.Value, 1)
			continue
		}
		assert.Len(t, p.Value, 7)
		next, err := url.Parse(p.NextLink)
		require.NoError(t, err)
		assert.Equal(t, "https", next.Scheme)
		assert.Equal(t, host, next.Host)
		assert.Equal(t, "/v1.0/users", next.Path)
		assert.Equal(t, "id,displayName", next.Query().Get("$select"))
		assert.Equal(t, "7", next.Query().Get("$top"))
		assert.NotEmpty(t, next.Query().Get("$skiptoken"))
	}
	want := make([]int, 50)
	for i := range want {
		want[i] = i
	}
	assert.Equal(t, userIDs(want...), ids(t, pages))
	assert.JSONEq(t, string(UserJSON(0, []string{"id", "displayName"})), string(pages[0].Value[0]))
	assert.Equal(t, `{"id":"`+UserID(0)+`","displayName":"User 000000"}`, string(pages[0].Value[0]), "users in $select order")
	assert.Equal(t, 8, gs.Requests())
}

func TestGraphDefaultsToHundredUsersAPageWithGraphsDefaultProperties(t *testing.T) {
	gs := newGraphServer(t, 250)

	pages := gs.listAll(t, gs.srv.URL+"/v1.0/users")

	require.Len(t, pages, 3)
	assert.Len(t, pages[0].Value, 100)
	assert.Len(t, pages[2].Value, 50)
	assert.Equal(t, gs.srv.URL+"/v1.0/$metadata#users", pages[0].Context)
	next, err := url.Parse(pages[0].NextLink)
	require.NoError(t, err)
	assert.Equal(t, []string{"$skiptoken"}, mapKeys(next.Query()), "nextLink adds only the page token")
	assert.Equal(t, DefaultProperties, keys(t, pages[1].Value[0]))
	assert.Equal(t, string(UserJSON(100, DefaultProperties)), string(pages[1].Value[0]))
}

func mapKeys(q url.Values) []string {
	var out []string
	for k := range q {
		out = append(out, k)
	}
	return out
}

func TestGraphFiltersByCaseInsensitivePrefix(t *testing.T) {
	gs := newGraphServer(t, 50)
	tests := []struct {
		name   string
		filter string
		want   []int
	}{
		{"displayName prefixes ignore case and decode escapes", "startswith(displayName,'ZOË')", []int{5, 21, 37}},
		{"spaces around a literal are allowed", "startswith(displayName, 'dana \"dj')", []int{11, 27, 43}},
		{"userPrincipalName prefixes ignore case", "startswith(userPrincipalName,'USER00004')", []int{40, 41, 42, 43, 44, 45, 46, 47, 48, 49}},
		{"a doubled quote in a literal matches a quote", "startswith(displayName,'Dana \"DJ\" O''Neil 00002')", []int{27}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := url.Values{"$filter": {tt.filter}, "$top": {"2"}}
			pages := gs.listAll(t, gs.srv.URL+"/v1.0/users?"+q.Encode())

			assert.Equal(t, userIDs(tt.want...), ids(t, pages))
			for _, p := range pages[:len(pages)-1] {
				next, err := url.Parse(p.NextLink)
				require.NoError(t, err)
				assert.Equal(t, tt.filter, next.Query().Get("$filter"), "nextLink keeps $filter")
			}
		})
	}
}

func TestGraphEmptyTenantHasOneEmptyPage(t *testing.T) {
	gs := newGraphServer(t, 0)

	r := gs.get(t, gs.srv.URL+"/v1.0/users?$select=id", bearer(graphToken))

	p := pageOf(t, r)
	assert.Empty(t, p.NextLink)
	assert.NotNil(t, p.Value)
	assert.Empty(t, p.Value)
	assert.True(t, bytes.HasSuffix(r.raw, []byte(`,"value":[]}`)), "%s", r.raw)
}

// graphErrorBody is Graph's error shape.
type graphErrorBody struct {
	Error struct {
		Code       string
		Message    string
		InnerError struct {
			Date            string
			RequestID       string `json:"request-id"`
			ClientRequestID string `json:"client-request-id"`
		}
	}
}

// errorOf checks that r is a Graph error with status and code, and decodes it.
func errorOf(t *testing.T, r graphResponse, status int, code string) graphErrorBody {
	t.Helper()
	require.Equal(t, status, r.status, "%s", r.raw)
	assert.Equal(t, "application/json", r.header.Get("Content-Type"))
	var e graphErrorBody
	require.NoError(t, json.Unmarshal(r.raw, &e), "%s", r.raw)
	assert.Equal(t, code, e.Error.Code)
	assert.NotEmpty(t, e.Error.Message)
	assert.Regexp(t, `^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$`, e.Error.InnerError.Date)
	assert.Equal(t, r.header.Get("request-id"), e.Error.InnerError.RequestID)
	assert.Equal(t, r.header.Get("client-request-id"), e.Error.InnerError.ClientRequestID)
	return e
}

func TestGraphRefusesQueriesGraphRefuses(t *testing.T) {
	gs := newGraphServer(t, 50)
	tests := []struct {
		name, query, code, message string
	}{
		{"$top of 0 is out of range", "$top=0", "Request_UnsupportedQuery", "Invalid page size specified: '0'. Must be between 1 and 999 inclusive."},
		{"$top of 1000 is out of range", "$top=1000", "Request_UnsupportedQuery", "Invalid page size specified: '1000'. Must be between 1 and 999 inclusive."},
		{"$top must be an integer", "$top=abc", "BadRequest", ""},
		{"$select of an unknown property", "$select=id,foo", "BadRequest", "Could not find a property named 'foo' on type 'microsoft.graph.user'."},
		{"$filter other than startswith", "$filter=" + url.QueryEscape("endswith(mail,'x')"), "Request_UnsupportedQuery", ""},
		{"$filter on an unsupported property", "$filter=" + url.QueryEscape("startswith(jobTitle,'x')"), "Request_UnsupportedQuery", ""},
		{"$filter with an unterminated literal", "$filter=" + url.QueryEscape("startswith(displayName,'x)"), "Request_UnsupportedQuery", ""},
		{"a $skiptoken this Graph did not issue", "$skiptoken=bm90LWEtdG9rZW4", "Request_BadRequest", ""},
		{"a $skiptoken that is not base64", "$skiptoken=%25%25", "Request_BadRequest", ""},
		{"a $skiptoken beyond the tenant", "$skiptoken=" + encodeSkipToken(51, 1), "Request_BadRequest", ""},
		{"an option given twice", "$top=5&$top=6", "BadRequest", ""},
		{"an option the fake does not implement", "$orderby=displayName", "Request_UnsupportedQuery", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := bearer(graphToken)
			h.Set("client-request-id", "0a1b2c3d-0000-4000-8000-000000000001")
			r := gs.get(t, gs.srv.URL+"/v1.0/users?"+tt.query, h)

			e := errorOf(t, r, http.StatusBadRequest, tt.code)
			if tt.message != "" {
				assert.Equal(t, tt.message, e.Error.Message)
			}
			assert.Equal(t, "0a1b2c3d-0000-4000-8000-000000000001", e.Error.InnerError.ClientRequestID, "client-request-id is echoed")
		})
	}
}

func TestGraphRefusesMissingAndWrongTokensWithoutEchoingThem(t *testing.T) {
	gs := newGraphServer(t, 5)
	tests := []struct {
		name    string
		header  http.Header
		message string
	}{
		{"no Authorization header", http.Header{}, "Access token is empty."},
		{"a bearer without a token", http.Header{"Authorization": {"Bearer "}}, "Access token is empty."},
		{"another scheme", http.Header{"Authorization": {"Basic " + graphToken}}, "Access token is empty."},
		{"a wrong token", bearer("stolen-token-value"), "Access token validation failure. Invalid audience."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := gs.get(t, gs.srv.URL+"/v1.0/users", tt.header)

			e := errorOf(t, r, http.StatusUnauthorized, "InvalidAuthenticationToken")
			assert.Equal(t, tt.message, e.Error.Message)
			assert.NotContains(t, string(r.raw), "stolen-token-value")
			assert.NotContains(t, string(r.raw), graphToken)
			assert.Contains(t, r.header.Get("WWW-Authenticate"), "Bearer")
			assert.Equal(t, e.Error.InnerError.RequestID, e.Error.InnerError.ClientRequestID,
				"without a client-request-id, Graph reuses the request id")
		})
	}
	assert.Equal(t, len(tests), gs.Requests(), "refused requests count too")
}

func TestGraphAnswersOtherPathsAndMethodsWithItsErrorShape(t *testing.T) {
	gs := newGraphServer(t, 5)

	errorOf(t, gs.get(t, gs.srv.URL+"/v1.0/groups", bearer(graphToken)), http.StatusNotFound, "Request_ResourceNotFound")
	assert.Zero(t, gs.Requests(), "only /v1.0/users requests count")

	req, err := http.NewRequest(http.MethodPost, gs.srv.URL+"/v1.0/users", strings.NewReader("{}"))
	require.NoError(t, err)
	req.Header = bearer(graphToken)
	resp, err := gs.srv.Client().Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
	assert.Equal(t, "GET", resp.Header.Get("Allow"))
}

func BenchmarkGraphPageOf999Users(b *testing.B) {
	g := NewGraph(GraphOptions{Users: 100_000, Token: graphToken})
	req := httptest.NewRequest(http.MethodGet, "https://graph.test/v1.0/users?$top=999&$skiptoken="+encodeSkipToken(50_000, 50), nil)
	req.Header = bearer(graphToken)
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		g.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
		b.SetBytes(int64(w.Body.Len()))
	}
}
