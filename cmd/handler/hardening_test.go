package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"graphuserstimer/internal/fakeazure"
)

// What a malformed or hostile answer from Graph must not do to a run, end
// to end.

func TestDeltaModeRefusesADeltaLinkToAnotherHostAndKeepsItsPlace(t *testing.T) {
	var reached atomic.Int32
	foreign := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { reached.Add(1) }))
	t.Cleanup(foreign.Close)
	acct := newAccount(t)
	az, h := newDeltaAzure(t, 250)
	name := acct.newContainer("origin")
	env := acct.deltaSettings(t, az, name)

	runOnce(t, az, env).ok(t)
	_, before, found := acct.readState(t, name)
	require.True(t, found)

	c := az.graph.Change(fakeazure.Changes{Update: 20})
	// The round's one page ends, after its changes as Graph writes it, with
	// a deltaLink on another host.
	h.onDelta(func(fakeazure.PageRequest) fakeazure.Fault {
		return fakeazure.Fault{NextLink: foreign.URL + fakeazure.UsersDeltaPath + "?$deltatoken=stolen", LinkAfterValue: true}
	})
	failed := runOnce(t, az, env)
	reason := failed.failure(t)
	assert.Contains(t, reason, "refusing to send the token to "+foreign.URL, "the run names the link's host")
	assert.NotContains(t, reason, "stolen", "never the link's token")
	_, after, _ := acct.readState(t, name)
	assert.Equal(t, string(before), string(after), "the saved state is unchanged, byte for byte")
	assert.Zero(t, reached.Load(), "nothing was sent to the other host")

	// The next run carries on from the saved link: a round, not a full
	// listing blamed on GRAPH_ENDPOINT.
	h.onFault(nil)
	next := runOnce(t, az, env)
	next.ok(t)
	assert.Empty(t, next.users, "no full listing")
	assert.NotContains(t, strings.Join(next.logs, "\n"), "GRAPH_ENDPOINT")
	assert.Equal(t, idSet(c.Updated), ids(next.changed))
}

func TestListingLogsEveryUserGraphSendsWithoutAnID(t *testing.T) {
	const users = 250
	az := newFaultyAzure(t, users, func(fakeazure.PageRequest) fakeazure.Fault { return fakeazure.Fault{WithoutID: true} })
	env := az.settings(t)
	// accountEnabled alone: without their ids, users are alike, most of
	// them byte for byte.
	env["GRAPH_USERS_SELECT"] = "accountEnabled"
	env["GRAPH_USERS_PAGE_SIZE"] = "100"
	want := map[string]int{}
	for i := range users {
		want[string(az.graph.UserJSON(i, []string{"accountEnabled"}))]++
	}

	h := startHandler(t, env)
	inv, err := h.host.Invoke(context.Background(), "GraphUsersTimer", invocationBody(t, "timer.json"))
	require.NoError(t, err)
	resp := decodeResponse(t, inv)
	require.NoError(t, h.stop())
	require.Equal(t, 200, inv.Status, "logs %v", resp.Logs)

	got := map[string]int{}
	var summary map[string]any
	for _, line := range jsonLines(t, h.stdout.String()) {
		switch line["msg"] {
		case "user":
			assert.NotContains(t, line, "id")
			b, err := json.Marshal(map[string]any{"accountEnabled": line["accountEnabled"]})
			require.NoError(t, err)
			got[string(b)]++
		case "users listed":
			summary = line
		}
	}
	assert.Equal(t, want, got, "every user logged, those alike too")
	require.NotNil(t, summary)
	assert.Equal(t, float64(users), summary["users"])
	assert.Equal(t, float64(users), summary["withoutId"])
	assert.Equal(t, 0.0, summary["duplicates"], "a user without an id is nobody's duplicate")

	warned := 0
	for _, l := range resp.Logs {
		if strings.HasPrefix(l, "warning: ") && strings.Contains(l, "without an id") {
			warned++
		}
	}
	assert.Equal(t, 1, warned, "one warning a run: %q", resp.Logs)
	assert.Contains(t, resp.Logs[len(resp.Logs)-1], "250 users without an id")
}
