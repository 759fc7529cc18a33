package fakeazure

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// deltaPage is a decoded 200 body of /v1.0/users/delta.
type deltaPage struct {
	Context   string            `json:"@odata.context"`
	NextLink  string            `json:"@odata.nextLink"`
	DeltaLink string            `json:"@odata.deltaLink"`
	Value     []json.RawMessage `json:"value"`
	header    http.Header
}

// deltaPageOf checks that r is a delta page, with exactly one link, before value.
func deltaPageOf(t *testing.T, r graphResponse) deltaPage {
	t.Helper()
	require.Equal(t, http.StatusOK, r.status, "%s", r.raw)
	assert.Equal(t, pageContentType, r.header.Get("Content-Type"))
	var p deltaPage
	require.NoError(t, json.Unmarshal(r.raw, &p))
	p.header = r.header
	link := "@odata.nextLink"
	if p.DeltaLink != "" {
		link = "@odata.deltaLink"
	}
	assert.Equal(t, []string{"@odata.context", link, "value"}, keys(t, r.raw), "one link, before value")
	assert.True(t, (p.NextLink == "") != (p.DeltaLink == ""), "a nextLink or a deltaLink, never both")
	return p
}

// deltaRound follows a round from first to its deltaLink and returns its entries and pages.
func (gs graphServer) deltaRound(t *testing.T, first string, header http.Header) ([]map[string]any, []deltaPage) {
	t.Helper()
	var entries []map[string]any
	var pages []deltaPage
	for link := first; ; {
		h := bearer(graphToken)
		for k, vs := range header {
			h[k] = vs
		}
		p := deltaPageOf(t, gs.get(t, link, h))
		pages = append(pages, p)
		for _, v := range p.Value {
			var e map[string]any
			require.NoError(t, json.Unmarshal(v, &e))
			entries = append(entries, e)
		}
		if p.DeltaLink != "" {
			return entries, pages
		}
		link = p.NextLink
		require.Less(t, len(pages), 1000, "the round never ends")
	}
}

func last(pages []deltaPage) string { return pages[len(pages)-1].DeltaLink }

func entryIDs(entries []map[string]any) []string {
	out := make([]string, len(entries))
	for k, e := range entries {
		out[k] = e["id"].(string)
	}
	return out
}

// byID indexes entries by id; a user that comes twice keeps its last entry.
func byID(entries []map[string]any) map[string]map[string]any {
	out := map[string]map[string]any{}
	for _, e := range entries {
		out[e["id"].(string)] = e
	}
	return out
}

func removed(reason, id string) map[string]any {
	return map[string]any{"@odata.type": "#microsoft.graph.user", "id": id, "@removed": map[string]any{"reason": reason}}
}

func prefer(v string) http.Header { return http.Header{"Prefer": {v}} }

func TestDeltaInitialRoundListsEveryUserInPagesOf200(t *testing.T) {
	gs := newGraphServer(t, 450)
	host := strings.TrimPrefix(gs.srv.URL, "https://")

	entries, pages := gs.deltaRound(t, gs.srv.URL+"/v1.0/users/delta", nil)

	require.Len(t, pages, 3)
	assert.Equal(t, []int{200, 200, 50}, []int{len(pages[0].Value), len(pages[1].Value), len(pages[2].Value)})
	assert.Equal(t, gs.srv.URL+"/v1.0/$metadata#users", pages[0].Context)
	for k, p := range pages {
		link, token := p.NextLink, "$skiptoken"
		if k == len(pages)-1 {
			link, token = p.DeltaLink, "$deltatoken"
		}
		u, err := url.Parse(link)
		require.NoError(t, err)
		assert.Equal(t, "https", u.Scheme, "links are absolute")
		assert.Equal(t, host, u.Host)
		assert.Equal(t, "/v1.0/users/delta", u.Path)
		assert.Equal(t, []string{token}, mapKeys(u.Query()), "the token carries the state")
	}
	want := make([]int, 450)
	for i := range want {
		want[i] = i
	}
	assert.Equal(t, userIDs(want...), entryIDs(entries))
	assert.Equal(t, string(UserJSON(7, DefaultProperties)), string(pages[0].Value[7]), "Graph's default properties")
}

func TestDeltaHonoursMaxPageSizeAndKeepsSelectInItsLinks(t *testing.T) {
	gs := newGraphServer(t, 100)

	entries, pages := gs.deltaRound(t, gs.srv.URL+"/v1.0/users/delta?$select=displayName,jobTitle&$top=5", prefer("odata.maxpagesize=30"))

	require.Len(t, pages, 4, "$top is ignored, Prefer is honoured")
	assert.Len(t, pages[0].Value, 30)
	assert.Equal(t, "odata.maxpagesize=30", pages[0].header.Get("Preference-Applied"))
	assert.Equal(t, gs.srv.URL+"/v1.0/$metadata#users(displayName,jobTitle)", pages[0].Context)
	for _, p := range pages {
		for _, v := range p.Value {
			assert.Equal(t, []string{"displayName", "jobTitle", "id"}, keys(t, v), "id always comes, after the selected properties")
		}
	}
	assert.Len(t, entries, 100)

	_, pages = gs.deltaRound(t, gs.srv.URL+"/v1.0/users/delta?$select=id", prefer(`odata.maxpagesize="5000"`))
	assert.Len(t, pages[0].Value, 100)
	assert.Equal(t, "odata.maxpagesize=999", pages[0].header.Get("Preference-Applied"), "Graph's largest page")
}

func TestDeltaLatestStartsFromNow(t *testing.T) {
	gs := newGraphServer(t, 100)
	require.NoError(t, gs.UpdateUser(1, UserUpdate{JobTitle: "Before"}))

	p := deltaPageOf(t, gs.get(t, gs.srv.URL+"/v1.0/users/delta?$deltatoken=latest&$select=id,jobTitle", bearer(graphToken)))
	assert.Empty(t, p.Value)
	assert.NotNil(t, p.Value)
	require.NotEmpty(t, p.DeltaLink)
	require.NoError(t, gs.UpdateUser(2, UserUpdate{JobTitle: "After"}))

	entries, _ := gs.deltaRound(t, p.DeltaLink, nil)
	assert.Equal(t, []map[string]any{{"jobTitle": "After", "id": UserID(2)}}, entries)
}

func TestDeltaRoundReportsEachChangeOnceInItsCurrentState(t *testing.T) {
	gs := newGraphServer(t, 60)
	_, pages := gs.deltaRound(t, gs.srv.URL+"/v1.0/users/delta", nil)
	link := last(pages)

	added := gs.AddUsers(2)
	require.NoError(t, gs.UpdateUser(1, UserUpdate{JobTitle: "Tester"}))
	require.NoError(t, gs.UpdateUser(2, UserUpdate{DisplayName: "Two Renamed"}))
	require.NoError(t, gs.RenameUser(3, "three@contoso.onmicrosoft.com"))
	require.NoError(t, gs.SoftDeleteUser(4))
	require.NoError(t, gs.HardDeleteUser(5))
	require.NoError(t, gs.SoftDeleteUser(6))
	require.NoError(t, gs.HardDeleteUser(6))
	require.NoError(t, gs.SoftDeleteUser(7))
	require.NoError(t, gs.RestoreUser(7))
	require.NoError(t, gs.UpdateUser(8, UserUpdate{JobTitle: "First"}))
	require.NoError(t, gs.UpdateUser(8, UserUpdate{JobTitle: "Second"}))

	entries, pages := gs.deltaRound(t, link, prefer("odata.maxpagesize=3"))

	assert.Greater(t, len(pages), 3, "the round is paged")
	assert.ElementsMatch(t, userIDs(1, 2, 3, 4, 5, 6, 7, 8, added[0], added[1]), entryIDs(entries), "each changed user once, no other")
	got := byID(entries)
	assert.Equal(t, removed("changed", UserID(4)), got[UserID(4)], "soft-deleted")
	assert.Equal(t, removed("deleted", UserID(5)), got[UserID(5)], "hard-deleted")
	assert.Equal(t, removed("deleted", UserID(6)), got[UserID(6)], "soft-, then hard-deleted")
	assert.Equal(t, "Tester", got[UserID(1)]["jobTitle"])
	assert.Equal(t, "Two Renamed", got[UserID(2)]["displayName"])
	assert.Equal(t, "three@contoso.onmicrosoft.com", got[UserID(3)]["userPrincipalName"])
	assert.Equal(t, "Second", got[UserID(8)]["jobTitle"], "the current state")
	for _, i := range []int{1, 2, 3, 7, 8, added[0]} {
		assert.Equal(t, DefaultProperties, keysOf(t, got[UserID(i)]), "without return=minimal, every property, user %d", i)
	}
	var again map[string]any
	require.NoError(t, json.Unmarshal(UserJSON(7, DefaultProperties), &again))
	assert.Equal(t, again, got[UserID(7)], "a restored user comes whole")

	entries, pages = gs.deltaRound(t, last(pages), nil)
	assert.Empty(t, entries, "nothing changed since")
	assert.Len(t, pages, 1)
}

// keysOf lists a decoded object's keys in DefaultProperties order, to compare sets of properties.
func keysOf(t *testing.T, m map[string]any) []string {
	t.Helper()
	var out []string
	for _, k := range DefaultProperties {
		if _, ok := m[k]; ok {
			out = append(out, k)
		}
	}
	assert.Len(t, out, len(m), "only known properties: %v", m)
	return out
}

func TestDeltaMinimalSendsOnlyWhatChanged(t *testing.T) {
	gs := newGraphServer(t, 30)
	_, pages := gs.deltaRound(t, gs.srv.URL+"/v1.0/users/delta", nil)
	require.NoError(t, gs.UpdateUser(1, UserUpdate{JobTitle: "Tester"}))
	require.NoError(t, gs.UpdateUser(2, UserUpdate{DisplayName: "Two Renamed", JobTitle: "Lead"}))
	require.NoError(t, gs.RenameUser(3, "three@contoso.onmicrosoft.com"))
	added := gs.AddUsers(1)[0]

	entries, round := gs.deltaRound(t, last(pages), prefer("return=minimal"))

	assert.Equal(t, "return=minimal", round[0].header.Get("Preference-Applied"))
	got := byID(entries)
	assert.Equal(t, map[string]any{"jobTitle": "Tester", "id": UserID(1)}, got[UserID(1)])
	assert.Equal(t, map[string]any{"displayName": "Two Renamed", "jobTitle": "Lead", "id": UserID(2)}, got[UserID(2)])
	assert.Equal(t, map[string]any{"userPrincipalName": "three@contoso.onmicrosoft.com", "id": UserID(3)}, got[UserID(3)])
	assert.Equal(t, DefaultProperties, keysOf(t, got[UserID(added)]), "a new user comes whole")

	_, pages = gs.deltaRound(t, gs.srv.URL+"/v1.0/users/delta", prefer("return=minimal"))
	assert.Empty(t, pages[0].header.Get("Preference-Applied"), "an initial round is always whole")
}

func TestDeltaWithSelectIgnoresChangesOfOtherProperties(t *testing.T) {
	gs := newGraphServer(t, 30)
	_, pages := gs.deltaRound(t, gs.srv.URL+"/v1.0/users/delta?$select=displayName", nil)
	require.NoError(t, gs.UpdateUser(1, UserUpdate{JobTitle: "Not tracked"}))
	require.NoError(t, gs.UpdateUser(2, UserUpdate{DisplayName: "Tracked"}))
	require.NoError(t, gs.SoftDeleteUser(3))
	require.NoError(t, gs.UpdateUser(4, UserUpdate{DisplayName: "Tracked too"}))
	require.NoError(t, gs.UpdateUser(4, UserUpdate{JobTitle: "A later change of another property"}))

	entries, _ := gs.deltaRound(t, last(pages), nil)

	assert.Equal(t, []map[string]any{
		{"displayName": "Tracked", "id": UserID(2)},
		removed("changed", UserID(3)),
		{"displayName": "Tracked too", "id": UserID(4)},
	}, entries)
}

func TestDeltaRepeatsAUserThatChangesAgainDuringTheRound(t *testing.T) {
	gs := newGraphServer(t, 30)
	_, pages := gs.deltaRound(t, gs.srv.URL+"/v1.0/users/delta?$select=jobTitle", nil)
	for i := range 6 {
		require.NoError(t, gs.UpdateUser(i, UserUpdate{JobTitle: "First"}))
	}

	p := deltaPageOf(t, gs.get(t, last(pages), http.Header{"Authorization": bearer(graphToken)["Authorization"], "Prefer": {"odata.maxpagesize=2"}}))
	require.Equal(t, []string{UserID(0), UserID(1)}, entryIDs(decodeAll(t, p.Value)))
	require.NoError(t, gs.UpdateUser(0, UserUpdate{JobTitle: "Second"}))
	rest, _ := gs.deltaRound(t, p.NextLink, prefer("odata.maxpagesize=2"))

	assert.Equal(t, userIDs(2, 3, 4, 5, 0), entryIDs(rest), "user 0 comes again, after the others")
	assert.Equal(t, "Second", rest[len(rest)-1]["jobTitle"])
}

func decodeAll(t *testing.T, raws []json.RawMessage) []map[string]any {
	t.Helper()
	out := make([]map[string]any, len(raws))
	for k, v := range raws {
		require.NoError(t, json.Unmarshal(v, &out[k]))
	}
	return out
}

func TestDeltaInitialRoundReportsRemovedUsersAndTheNextRoundReplaysItsChanges(t *testing.T) {
	gs := newGraphServer(t, 12)
	require.NoError(t, gs.SoftDeleteUser(2))
	require.NoError(t, gs.HardDeleteUser(3))

	p := deltaPageOf(t, gs.get(t, gs.srv.URL+"/v1.0/users/delta?$select=id,displayName", http.Header{
		"Authorization": bearer(graphToken)["Authorization"], "Prefer": {"odata.maxpagesize=6"}}))
	first := decodeAll(t, p.Value)
	assert.Equal(t, removed("changed", UserID(2)), first[2])
	assert.Equal(t, removed("deleted", UserID(3)), first[3])
	require.NoError(t, gs.UpdateUser(1, UserUpdate{DisplayName: "Changed while the round was paged"}))
	require.NoError(t, gs.UpdateUser(9, UserUpdate{DisplayName: "Changed before the round got here"}))
	rest, pages := gs.deltaRound(t, p.NextLink, prefer("odata.maxpagesize=6"))
	assert.Len(t, rest, 6)

	replayed, _ := gs.deltaRound(t, last(pages), nil)
	assert.Equal(t, userIDs(1, 9), entryIDs(replayed), "changes made while the initial round was paged come in the next round")
}

func TestExpiredDeltaLinksAnswerAsGraphDoes(t *testing.T) {
	gs := newGraphServer(t, 20)
	_, pages := gs.deltaRound(t, gs.srv.URL+"/v1.0/users/delta?$select=displayName", prefer("odata.maxpagesize=5"))
	deltaLink, nextLink := last(pages), pages[0].NextLink

	gs.ExpireDeltaLinks(ExpirySyncStateNotFound)

	for _, link := range []string{deltaLink, nextLink} {
		e := errorOf(t, gs.get(t, link, bearer(graphToken)), http.StatusBadRequest, "syncStateNotFound")
		assert.Equal(t, "The sync state generation is not found. The delta token is expired and data must be synchronized again.", e.Error.Message)
	}
	entries, pages := gs.deltaRound(t, gs.srv.URL+"/v1.0/users/delta?$select=displayName", nil)
	assert.Len(t, entries, 20, "a full round starts over")
	deltaLink = last(pages)
	deltaPageOf(t, gs.get(t, deltaLink, bearer(graphToken)))

	gs.ExpireDeltaLinks(ExpiryGone)

	r := gs.get(t, deltaLink, bearer(graphToken))
	e := errorOf(t, r, http.StatusGone, "resyncRequired")
	assert.Equal(t, "The delta token is no longer valid, and the app must reset the sync state.", e.Error.Message)
	location := r.header.Get("Location")
	assert.Equal(t, gs.srv.URL+"/v1.0/users/delta?$select=displayName&$deltatoken=", location)
	entries, _ = gs.deltaRound(t, location, nil)
	assert.Len(t, entries, 20, "the Location starts a full round")
	assert.Equal(t, []string{"displayName", "id"}, keysOfEntry(entries[0]))
}

func keysOfEntry(e map[string]any) []string {
	var out []string
	for _, k := range []string{"displayName", "id"} {
		if _, ok := e[k]; ok {
			out = append(out, k)
		}
	}
	return out
}

func TestDeltaRefusesWhatGraphRefuses(t *testing.T) {
	gs := newGraphServer(t, 20)
	p := deltaPageOf(t, gs.get(t, gs.srv.URL+"/v1.0/users/delta", http.Header{
		"Authorization": bearer(graphToken)["Authorization"], "Prefer": {"odata.maxpagesize=5"}}))
	tests := []struct {
		name, target, code string
	}{
		{"a $filter", "/v1.0/users/delta?$filter=" + url.QueryEscape("startsWith(userPrincipalName,'a')"), "Request_UnsupportedQuery"},
		{"an $orderby", "/v1.0/users/delta?$orderby=displayName", "Request_UnsupportedQuery"},
		{"$select on a nextLink", strings.TrimPrefix(p.NextLink, gs.srv.URL) + "&$select=id", "Request_UnsupportedQuery"},
		{"a token this Graph did not issue", "/v1.0/users/delta?$deltatoken=bm90LWEtdG9rZW4", "Request_BadRequest"},
		{"two tokens", "/v1.0/users/delta?$deltatoken=latest&$skiptoken=x", "Request_BadRequest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errorOf(t, gs.get(t, gs.srv.URL+tt.target, bearer(graphToken)), http.StatusBadRequest, tt.code)
		})
	}
	errorOf(t, gs.get(t, gs.srv.URL+"/v1.0/users/delta", bearer("wrong")), http.StatusUnauthorized, "InvalidAuthenticationToken")
}

func TestDeltaAnswersToTheFunctionsQualifiedNames(t *testing.T) {
	gs := newGraphServer(t, 3)
	for _, p := range []string{"/v1.0/users/delta()", "/v1.0/users/microsoft.graph.delta", "/v1.0/users/microsoft.graph.delta()"} {
		entries, _ := gs.deltaRound(t, gs.srv.URL+p, nil)
		assert.Len(t, entries, 3, p)
	}
}

func TestFaultsApplyToDeltaPages(t *testing.T) {
	var seen []PageRequest
	gs := newGraphServerWith(t, GraphOptions{Users: 10, Fault: func(pr PageRequest) Fault {
		seen = append(seen, pr)
		switch {
		case pr.Page == 1 && pr.Attempt == 1:
			return Fault{Status: http.StatusServiceUnavailable, Code: "serviceNotAvailable", Message: "Try again later."}
		case pr.Page == 1 && pr.Attempt == 2:
			return Fault{Cut: true, CutAfterUsers: 2}
		}
		return Fault{}
	}})
	h := http.Header{"Authorization": bearer(graphToken)["Authorization"], "Prefer": {"odata.maxpagesize=4"}}
	p := deltaPageOf(t, gs.get(t, gs.srv.URL+"/v1.0/users/delta", h))

	errorOf(t, gs.get(t, p.NextLink, h), http.StatusServiceUnavailable, "serviceNotAvailable")
	req, err := http.NewRequest(http.MethodGet, p.NextLink, nil)
	require.NoError(t, err)
	req.Header = h
	resp, err := gs.srv.Client().Do(req)
	require.NoError(t, err)
	_, err = readAll(resp)
	assert.Error(t, err, "the body is cut")
	p = deltaPageOf(t, gs.get(t, p.NextLink, h))

	assert.Len(t, p.Value, 4)
	require.Len(t, seen, 4)
	for k, pr := range seen {
		assert.Equal(t, UsersDeltaPath, pr.Path)
		assert.Equal(t, []int{0, 1, 1, 1}[k], pr.Page)
		assert.Equal(t, []int{1, 1, 2, 3}[k], pr.Attempt)
	}
	assert.Equal(t, 4, seen[1].Offset, "a page of the initial round starts at a user")
}

func readAll(resp *http.Response) ([]byte, error) {
	defer resp.Body.Close()
	return io.ReadAll(resp.Body)
}
