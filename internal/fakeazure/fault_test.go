package fakeazure

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// faultServer is a Graph of 30 users whose faults a test sets per request.
func faultServer(t *testing.T, fault func(PageRequest) Fault) (*httptest.Server, *[]PageRequest) {
	t.Helper()
	var mu sync.Mutex
	var seen []PageRequest
	g := NewGraph(GraphOptions{Users: 30, Token: graphToken, Fault: func(pr PageRequest) Fault {
		mu.Lock()
		seen = append(seen, pr)
		mu.Unlock()
		return fault(pr)
	}})
	srv := httptest.NewTLSServer(g)
	t.Cleanup(srv.Close)
	return srv, &seen
}

func fetch(t *testing.T, srv *httptest.Server, target string) (*http.Response, []byte, error) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, target, nil)
	require.NoError(t, err)
	req.Header = bearer(graphToken)
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp, body, err
}

func TestFaultCountsAttemptsPerPage(t *testing.T) {
	srv, seen := faultServer(t, func(PageRequest) Fault { return Fault{} })
	first := srv.URL + "/v1.0/users?$top=10"
	fetch(t, srv, first)
	resp, body, _ := fetch(t, srv, first)
	next := pageOf(t, graphResponse{resp.StatusCode, resp.Header, body}).NextLink
	fetch(t, srv, next)
	assert.Equal(t, []PageRequest{
		{Page: 0, Offset: 0, Attempt: 1, Path: UsersPath},
		{Page: 0, Offset: 0, Attempt: 2, Path: UsersPath},
		{Page: 1, Offset: 10, Attempt: 1, Path: UsersPath},
	}, *seen)
}

func TestFaultAnswersAStatusWithGraphsErrorShapeAndHeaders(t *testing.T) {
	srv, _ := faultServer(t, func(PageRequest) Fault {
		return Fault{Status: 429, Code: "TooManyRequests", Message: "Too many requests.", Header: http.Header{"Retry-After": {"2.128"}}}
	})
	resp, body, err := fetch(t, srv, srv.URL+"/v1.0/users")
	require.NoError(t, err)
	assert.Equal(t, 429, resp.StatusCode)
	assert.Equal(t, "2.128", resp.Header.Get("Retry-After"))
	e := errorOf(t, graphResponse{resp.StatusCode, resp.Header, body}, 429, "TooManyRequests")
	assert.Equal(t, "Too many requests.", e.Error.Message)
}

func TestFaultCutsTheBodyAfterSomeUsers(t *testing.T) {
	srv, _ := faultServer(t, func(PageRequest) Fault { return Fault{Cut: true, CutAfterUsers: 3} })
	resp, body, err := fetch(t, srv, srv.URL+"/v1.0/users?$top=10&$select=id")
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)
	assert.Equal(t, 200, resp.StatusCode)
	for _, i := range []int{0, 1, 2} {
		assert.Contains(t, string(body), UserID(i))
	}
	assert.NotContains(t, string(body), UserID(4))
	assert.False(t, strings.HasSuffix(string(body), "]}"))
}

func TestFaultSendsGarbage(t *testing.T) {
	srv, _ := faultServer(t, func(PageRequest) Fault { return Fault{Garbage: true} })
	resp, body, err := fetch(t, srv, srv.URL+"/v1.0/users")
	require.NoError(t, err)
	assert.Equal(t, 200, resp.StatusCode)
	assert.True(t, strings.HasPrefix(string(body), "<html>"))
}

func TestFaultMovesAndReplacesTheNextLink(t *testing.T) {
	srv, _ := faultServer(t, func(PageRequest) Fault {
		return Fault{LinkAfterValue: true, NextLink: "https://evil.example/v1.0/users"}
	})
	resp, body, err := fetch(t, srv, srv.URL+"/v1.0/users?$top=10")
	require.NoError(t, err)
	s := string(body)
	assert.Greater(t, strings.Index(s, `"@odata.nextLink"`), strings.Index(s, `"value"`))
	assert.Equal(t, 200, resp.StatusCode)
	var p page
	require.NoError(t, json.Unmarshal(body, &p))
	assert.Equal(t, "https://evil.example/v1.0/users", p.NextLink)
	assert.Len(t, p.Value, 10)
}

func TestFaultDelaysAndPacesThePage(t *testing.T) {
	srv, _ := faultServer(t, func(PageRequest) Fault {
		return Fault{Delay: 50 * time.Millisecond, BytesPerSecond: 20_000}
	})
	start := time.Now()
	resp, body, err := fetch(t, srv, srv.URL+"/v1.0/users?$top=30")
	require.NoError(t, err)
	took := time.Since(start)
	min := 50*time.Millisecond + time.Duration(float64(len(body))/20_000*float64(time.Second))
	assert.GreaterOrEqual(t, took, min-10*time.Millisecond, "%d bytes", len(body))
	assert.Len(t, pageOf(t, graphResponse{resp.StatusCode, resp.Header, body}).Value, 30)
}

func TestFaultLeavesTheIDsOutOfAPage(t *testing.T) {
	srv, _ := faultServer(t, func(pr PageRequest) Fault { return Fault{WithoutID: pr.Page == 0} })
	users := func(target string) (string, []map[string]any) {
		resp, body, err := fetch(t, srv, target)
		require.NoError(t, err)
		p := pageOf(t, graphResponse{resp.StatusCode, resp.Header, body})
		var us []map[string]any
		for _, v := range p.Value {
			var u map[string]any
			require.NoError(t, json.Unmarshal(v, &u))
			us = append(us, u)
		}
		return p.NextLink, us
	}
	next, first := users(srv.URL + "/v1.0/users?$top=10&$select=id,accountEnabled")
	require.Len(t, first, 10)
	for _, u := range first {
		assert.NotContains(t, u, "id", "though $select asks for it")
		assert.Contains(t, u, "accountEnabled")
	}
	_, second := users(next)
	assert.Equal(t, UserID(10), second[0]["id"], "a page without the fault has them")
}
