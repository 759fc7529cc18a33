package fakeazure

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func eventualBearer() http.Header {
	h := bearer(graphToken)
	h.Set("ConsistencyLevel", "eventual")
	return h
}

// countOf checks that r is a $count answer and returns its number.
func countOf(t *testing.T, r graphResponse) int {
	t.Helper()
	require.Equal(t, http.StatusOK, r.status, "%s", r.raw)
	assert.Equal(t, "text/plain", r.header.Get("Content-Type"))
	n, err := strconv.Atoi(string(r.raw))
	require.NoError(t, err, "%q", r.raw)
	return n
}

func TestCountNeedsConsistencyLevelEventual(t *testing.T) {
	gs := newGraphServer(t, 40)

	e := errorOf(t, gs.get(t, gs.srv.URL+"/v1.0/users/$count", bearer(graphToken)), http.StatusBadRequest, "Request_BadRequest")
	assert.Equal(t, "$count is not currently supported.", e.Error.Message)

	assert.Equal(t, 40, countOf(t, gs.get(t, gs.srv.URL+"/v1.0/users/$count", eventualBearer())))
	assert.Equal(t, 40, countOf(t, gs.get(t, gs.srv.URL+"/v1.0/users/%24count", eventualBearer())), "an escaped $ is the same path")
}

func TestCountAppliesTheFilterAndFollowsChanges(t *testing.T) {
	gs := newGraphServerWith(t, GraphOptions{Users: 5000, Realistic: true})
	filter := "(accountEnabled eq true) and startsWith(userPrincipalName,'j')"
	target := gs.srv.URL + "/v1.0/users/$count?" + url.Values{"$filter": {filter}}.Encode()

	assert.Len(t, gs.listFiltered(t, filter, 999), countOf(t, gs.get(t, target, eventualBearer())))

	j := gs.expected(func(_ int, upn string) bool { return folded(upn, "j") })
	gone := gs.ListedUsers()[0]
	require.NoError(t, gs.SoftDeleteUser(gone))
	assert.Equal(t, 4999, countOf(t, gs.get(t, gs.srv.URL+"/v1.0/users/$count", eventualBearer())), "a deleted user is not counted")
	assert.Len(t, j, countOf(t, gs.get(t, gs.srv.URL+"/v1.0/users/$count?$filter="+url.QueryEscape("startsWith(userPrincipalName,'J')"), eventualBearer()))+
		boolInt(folded(gs.UPN(gone), "j")))
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestCountSkewMakesTheCountWrongAsEventualConsistencyCan(t *testing.T) {
	short := newGraphServerWith(t, GraphOptions{Users: 50, CountSkew: -7})
	over := newGraphServerWith(t, GraphOptions{Users: 50, CountSkew: 3})
	empty := newGraphServerWith(t, GraphOptions{Users: 2, CountSkew: -7})

	assert.Equal(t, 43, countOf(t, short.get(t, short.srv.URL+"/v1.0/users/$count", eventualBearer())))
	assert.Equal(t, 53, countOf(t, over.get(t, over.srv.URL+"/v1.0/users/$count", eventualBearer())))
	assert.Equal(t, 0, countOf(t, empty.get(t, empty.srv.URL+"/v1.0/users/$count", eventualBearer())), "never below zero")
	var p struct {
		Count int `json:"@odata.count"`
	}
	r := short.get(t, short.srv.URL+"/v1.0/users?$count=true", eventualBearer())
	require.NoError(t, json.Unmarshal(r.raw, &p))
	assert.Equal(t, 43, p.Count, "@odata.count is skewed too")
}

func TestCountTrueAddsTheCountToTheFirstPageOnlyWithTheHeader(t *testing.T) {
	gs := newGraphServer(t, 25)
	first := gs.srv.URL + "/v1.0/users?$count=true&$top=10&$select=id"

	r := gs.get(t, first, eventualBearer())
	require.Equal(t, http.StatusOK, r.status, "%s", r.raw)
	assert.Equal(t, []string{"@odata.context", "@odata.count", "@odata.nextLink", "value"}, keys(t, r.raw))
	var p struct {
		Count    *int   `json:"@odata.count"`
		NextLink string `json:"@odata.nextLink"`
	}
	require.NoError(t, json.Unmarshal(r.raw, &p))
	require.NotNil(t, p.Count)
	assert.Equal(t, 25, *p.Count)
	next, err := url.Parse(p.NextLink)
	require.NoError(t, err)
	assert.Equal(t, "true", next.Query().Get("$count"), "nextLink keeps $count")

	second := pageOf(t, gs.get(t, p.NextLink, eventualBearer()))
	assert.Len(t, second.Value, 10, "later pages have no count")

	plain := pageOf(t, gs.get(t, first, bearer(graphToken)))
	assert.Len(t, plain.Value, 10, "without the header, $count=true is ignored")

	errorOf(t, gs.get(t, gs.srv.URL+"/v1.0/users?$count=yes", eventualBearer()), http.StatusBadRequest, "BadRequest")
}

func TestCountRefusesOptionsItDoesNotImplementAndIsFaultable(t *testing.T) {
	var seen []PageRequest
	gs := newGraphServerWith(t, GraphOptions{Users: 10, Fault: func(pr PageRequest) Fault {
		seen = append(seen, pr)
		if pr.Attempt == 1 {
			return Fault{Status: http.StatusTooManyRequests, Code: "TooManyRequests", Message: "Too many requests.", Header: http.Header{"Retry-After": {"1"}}}
		}
		return Fault{}
	}})
	target := gs.srv.URL + "/v1.0/users/$count?$filter=" + url.QueryEscape("startsWith(userPrincipalName,'user00000')")

	errorOf(t, gs.get(t, gs.srv.URL+"/v1.0/users/$count?$top=5", eventualBearer()), http.StatusBadRequest, "Request_UnsupportedQuery")
	r := gs.get(t, target, eventualBearer())
	errorOf(t, r, http.StatusTooManyRequests, "TooManyRequests")
	assert.Equal(t, "1", r.header.Get("Retry-After"))
	assert.Equal(t, 10, countOf(t, gs.get(t, target, eventualBearer())))

	require.Len(t, seen, 2)
	assert.Equal(t, PageRequest{Path: UsersCountPath, Filter: "startsWith(userPrincipalName,'user00000')", Prefix: "user00000", Attempt: 2}, seen[1])
}
