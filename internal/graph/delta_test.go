package graph_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"graphuserstimer/internal/fakeazure"
	"graphuserstimer/internal/graph"
)

// deltaSelect is what the delta tests ask Graph for: jobTitle, so that
// the updates the fake makes are reported.
var deltaSelect = []string{"id", "displayName", "userPrincipalName", "jobTitle"}

// handed is one change a round handed over, copied out of the call.
type handed struct {
	id, removed string
	obj         map[string]any
}

// pageCall is one call of DeltaSink.Page.
type pageCall struct {
	link string
	last bool
	st   graph.DeltaStats
}

// deltaRecord is what a round handed to its sink.
type deltaRecord struct {
	changes  []handed
	pages    []pageCall
	warnings []string
}

// sink records the round's calls; change, when set, is called after each
// change is recorded and its error ends the round.
func (rec *deltaRecord) sink(t *testing.T, change func(graph.Change) error) graph.DeltaSink {
	t.Helper()
	return graph.DeltaSink{
		Change: func(c graph.Change) error {
			var obj map[string]any
			require.NoError(t, json.Unmarshal(c.JSON, &obj), "%s", c.JSON)
			assert.Equal(t, c.ID, obj["id"], "the change's id is its object's")
			rec.changes = append(rec.changes, handed{id: c.ID, removed: c.Removed, obj: obj})
			if change != nil {
				return change(c)
			}
			return nil
		},
		Page: func(link string, last bool, st graph.DeltaStats) error {
			rec.pages = append(rec.pages, pageCall{link, last, st})
			return nil
		},
		Warn: func(msg string) { rec.warnings = append(rec.warnings, msg) },
	}
}

// count is how many times each user's id was handed over.
func (rec *deltaRecord) count() map[string]int {
	n := map[string]int{}
	for _, c := range rec.changes {
		n[c.id]++
	}
	return n
}

// latest is each user's last change of the round.
func (rec *deltaRecord) latest() map[string]handed {
	m := map[string]handed{}
	for _, c := range rec.changes {
		m[c.id] = c
	}
	return m
}

// deltaTenant is a tenant whose Graph asks a fault about its requests
// once the test has its deltaLink: the request for $deltatoken=latest
// and the round's first page are the same page to the fake.
type deltaTenant struct {
	*tenant
	armed atomic.Bool
}

// newDeltaTenant is a tenant of users whose Graph asks fault, which may
// change the tenant through the *fakeazure.Graph it is given.
func newDeltaTenant(t *testing.T, users int, fault func(g *fakeazure.Graph, pr fakeazure.PageRequest) fakeazure.Fault) *deltaTenant {
	t.Helper()
	dt := &deltaTenant{}
	var g atomic.Pointer[fakeazure.Graph]
	dt.tenant = newFaultyTenant(t, users, func(pr fakeazure.PageRequest) fakeazure.Fault {
		if fault == nil || !dt.armed.Load() {
			return fakeazure.Fault{}
		}
		return fault(g.Load(), pr)
	}, tenantOptions{})
	g.Store(dt.Graph)
	return dt
}

// latestLink is a deltaLink to now, asked for with deltaSelect; the
// faults apply from then on.
func (dt *deltaTenant) latestLink(t *testing.T) string {
	t.Helper()
	link, err := dt.client.DeltaLatest(context.Background(), deltaSelect)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(link, dt.URL.String()+fakeazure.UsersDeltaPath+"?$deltatoken="), "an absolute deltaLink: %s", link)
	dt.armed.Store(true)
	return link
}

// updateUsers gives users from to to-1 a new jobTitle, in that order: the
// round reports them in that order, 200 to a page.
func updateUsers(t *testing.T, g *fakeazure.Graph, from, to int, title string) {
	t.Helper()
	for i := from; i < to; i++ {
		require.NoError(t, g.UpdateUser(i, fakeazure.UserUpdate{JobTitle: title}))
	}
}

// deltaPath answers fault for the requests of a delta round, and serves
// every other request.
func deltaPath(fault func(g *fakeazure.Graph, pr fakeazure.PageRequest) fakeazure.Fault) func(*fakeazure.Graph, fakeazure.PageRequest) fakeazure.Fault {
	return func(g *fakeazure.Graph, pr fakeazure.PageRequest) fakeazure.Fault {
		if pr.Path != fakeazure.UsersDeltaPath {
			return fakeazure.Fault{}
		}
		return fault(g, pr)
	}
}

func TestDeltaLatestReturnsALinkAndNoChange(t *testing.T) {
	tn := newDeltaTenant(t, 120, nil)
	link := tn.latestLink(t)
	assert.Equal(t, 1, tn.Graph.Requests(), "one request, no user listed")

	var rec deltaRecord
	st, err := tn.client.Delta(context.Background(), link, rec.sink(t, nil))
	require.NoError(t, err)
	assert.Empty(t, rec.changes, "nothing changed since the link")
	assert.Equal(t, graph.DeltaStats{Pages: 1}, st)
	require.Len(t, rec.pages, 1)
	assert.True(t, rec.pages[0].last)
	assert.Contains(t, rec.pages[0].link, "$deltatoken=", "a round ends with a deltaLink")
}

func TestDeltaHandsOverExactlyTheChangesOfARound(t *testing.T) {
	tn := newDeltaTenant(t, 400, nil)
	link := tn.latestLink(t)

	added := tn.Graph.AddUsers(3)
	updateUsers(t, tn.Graph, 0, 250, "Auditor")
	require.NoError(t, tn.Graph.UpdateUser(260, fakeazure.UserUpdate{DisplayName: "Renamed 260"}))
	require.NoError(t, tn.Graph.SoftDeleteUser(300))
	require.NoError(t, tn.Graph.SoftDeleteUser(301))
	require.NoError(t, tn.Graph.HardDeleteUser(302))
	require.NoError(t, tn.Graph.SoftDeleteUser(303))
	require.NoError(t, tn.Graph.HardDeleteUser(303))

	var rec deltaRecord
	st, err := tn.client.Delta(context.Background(), link, rec.sink(t, nil))
	require.NoError(t, err)

	changed := map[string]bool{}
	for i := range 250 {
		changed[fakeazure.UserID(i)] = true
	}
	changed[fakeazure.UserID(260)] = true
	for _, i := range added {
		changed[fakeazure.UserID(i)] = true
	}
	removed := map[string]string{
		fakeazure.UserID(300): "changed", fakeazure.UserID(301): "changed",
		fakeazure.UserID(302): "deleted", fakeazure.UserID(303): "deleted",
	}
	counts := rec.count()
	assert.Len(t, counts, len(changed)+len(removed), "every change, and no other user")
	for id, n := range counts {
		assert.Equal(t, 1, n, "user %s once", id)
	}
	for _, c := range rec.changes {
		if reason, ok := removed[c.id]; ok {
			assert.Equal(t, reason, c.removed, "user %s removed, and why", c.id)
			assert.Equal(t, map[string]any{"reason": reason}, c.obj["@removed"])
			continue
		}
		assert.True(t, changed[c.id], "user %s changed", c.id)
		assert.Empty(t, c.removed)
	}
	assert.Equal(t, graph.DeltaStats{Changed: 254, Removed: 4, Pages: 2}, st)

	// 258 changes: a page of 200 and one of 58.
	require.Len(t, rec.pages, 2)
	assert.False(t, rec.pages[0].last)
	assert.Contains(t, rec.pages[0].link, "$skiptoken=", "after the first page, the round carries on from its nextLink")
	assert.Equal(t, graph.DeltaStats{Changed: 200, Pages: 1}, rec.pages[0].st, "the counts as the page ends")
	assert.True(t, rec.pages[1].last)
	assert.Contains(t, rec.pages[1].link, "$deltatoken=", "the last page gives the new deltaLink")
	assert.NotEqual(t, link, rec.pages[1].link)
	assert.Equal(t, st, rec.pages[1].st)

	var next deltaRecord
	_, err = tn.client.Delta(context.Background(), rec.pages[1].link, next.sink(t, nil))
	require.NoError(t, err)
	assert.Empty(t, next.changes, "the new deltaLink starts after these changes")
}

func TestDeltaAsksForMinimalChanges(t *testing.T) {
	tn := newDeltaTenant(t, 50, nil)
	link := tn.latestLink(t)
	require.NoError(t, tn.Graph.UpdateUser(1, fakeazure.UserUpdate{JobTitle: "Tester"}))
	require.NoError(t, tn.Graph.UpdateUser(2, fakeazure.UserUpdate{DisplayName: "Two Renamed", JobTitle: "Lead"}))
	added := tn.Graph.AddUsers(1)[0]

	var rec deltaRecord
	_, err := tn.client.Delta(context.Background(), link, rec.sink(t, nil))
	require.NoError(t, err)

	got := rec.latest()
	require.Len(t, got, 3)
	assert.Equal(t, map[string]any{"id": fakeazure.UserID(1), "jobTitle": "Tester"}, got[fakeazure.UserID(1)].obj,
		"an updated user carries its id and what changed, no more")
	assert.Equal(t, map[string]any{"id": fakeazure.UserID(2), "displayName": "Two Renamed", "jobTitle": "Lead"}, got[fakeazure.UserID(2)].obj)
	var whole map[string]any
	require.NoError(t, json.Unmarshal(fakeazure.UserJSON(added, deltaSelect), &whole))
	assert.Equal(t, whole, got[fakeazure.UserID(added)].obj, "a new user comes whole")
}

func TestDeltaReadsACutPageAgainWithoutHandingItsChangesTwice(t *testing.T) {
	tn := newDeltaTenant(t, 500, deltaPath(func(_ *fakeazure.Graph, pr fakeazure.PageRequest) fakeazure.Fault {
		switch {
		case pr.Page == 1 && pr.Attempt == 1:
			return fakeazure.Fault{Cut: true, CutAfterUsers: 70}
		case pr.Page == 1 && pr.Attempt == 2:
			return fakeazure.Fault{Cut: true, CutAfterUsers: 120}
		}
		return fakeazure.Fault{}
	}))
	link := tn.latestLink(t)
	updateUsers(t, tn.Graph, 0, 450, "Cut") // pages of 200, 200 and 50

	var rec deltaRecord
	st, err := tn.client.Delta(context.Background(), link, rec.sink(t, nil))
	require.NoError(t, err)

	counts := rec.count()
	require.Len(t, counts, 450)
	for i := range 450 {
		require.Equal(t, 1, counts[fakeazure.UserID(i)], "user %d handed over once", i)
	}
	for k, c := range rec.changes {
		require.Equal(t, fakeazure.UserID(k), c.id, "in Graph's order")
	}
	assert.Equal(t, graph.DeltaStats{Changed: 450, Pages: 3, Retries: 2}, st)
	assert.Len(t, rec.pages, 3, "one Page call a page, however often it was read")
	require.Len(t, rec.warnings, 2)
	assert.Contains(t, rec.warnings[0], "delta round: page 2: the page broke off after 70 of its changes")
	assert.Contains(t, rec.warnings[1], "delta round: page 2: the page broke off after 120 of its changes")
}

func TestDeltaLosesNoChangeWhenAPageReadAgainHasChangedMeanwhile(t *testing.T) {
	// A page cut after 50 changes is read again; meanwhile, user 210, one
	// of the 50 already handed over, changes again, so Graph sends the page
	// without it and sends it again at the end of the round. What the page
	// holds moved up by one: the changes already handed are not the first
	// 50 of the page any more.
	tn := newDeltaTenant(t, 500, deltaPath(func(g *fakeazure.Graph, pr fakeazure.PageRequest) fakeazure.Fault {
		switch {
		case pr.Page == 1 && pr.Attempt == 1:
			return fakeazure.Fault{Cut: true, CutAfterUsers: 50}
		case pr.Page == 1 && pr.Attempt == 2:
			if err := g.UpdateUser(210, fakeazure.UserUpdate{JobTitle: "Again"}); err != nil {
				return fakeazure.Fault{Status: 500, Message: err.Error()}
			}
		}
		return fakeazure.Fault{}
	}))
	link := tn.latestLink(t)
	updateUsers(t, tn.Graph, 0, 450, "Cut")

	var rec deltaRecord
	st, err := tn.client.Delta(context.Background(), link, rec.sink(t, nil))
	require.NoError(t, err)

	counts := rec.count()
	for i := range 450 {
		want := 1
		if i == 210 {
			want = 2
		}
		assert.Equal(t, want, counts[fakeazure.UserID(i)], "user %d", i)
	}
	assert.Equal(t, "Again", rec.latest()[fakeazure.UserID(210)].obj["jobTitle"], "the later change is the newer")
	assert.Equal(t, 451, st.Changed)
}

func TestDeltaHandsOverAUserChangedTwiceInARoundTwice(t *testing.T) {
	var once atomic.Bool
	tn := newDeltaTenant(t, 500, deltaPath(func(g *fakeazure.Graph, pr fakeazure.PageRequest) fakeazure.Fault {
		// While the round is read, user 5, handed over on its first page,
		// changes again, and user 300, not changed before, is deleted.
		if pr.Page == 1 && once.CompareAndSwap(false, true) {
			if err := g.UpdateUser(5, fakeazure.UserUpdate{JobTitle: "Second"}); err != nil {
				return fakeazure.Fault{Status: 500, Message: err.Error()}
			}
			if err := g.SoftDeleteUser(300); err != nil {
				return fakeazure.Fault{Status: 500, Message: err.Error()}
			}
		}
		return fakeazure.Fault{}
	}))
	link := tn.latestLink(t)
	updateUsers(t, tn.Graph, 0, 250, "First")

	var rec deltaRecord
	st, err := tn.client.Delta(context.Background(), link, rec.sink(t, nil))
	require.NoError(t, err)

	var five []string
	for _, c := range rec.changes {
		if c.id == fakeazure.UserID(5) {
			five = append(five, c.obj["jobTitle"].(string))
		}
	}
	assert.Equal(t, []string{"First", "Second"}, five, "both changes, in the order they were made")
	assert.Equal(t, "changed", rec.latest()[fakeazure.UserID(300)].removed)
	assert.Equal(t, graph.DeltaStats{Changed: 251, Removed: 1, Pages: 2}, st)
}

func TestDeltaSaysWhenItsLinkHasExpired(t *testing.T) {
	tests := []struct {
		name   string
		expire func(tn *deltaTenant, fail *atomic.Pointer[fakeazure.Fault])
		status int
	}{
		{
			name: "400 syncStateNotFound",
			expire: func(tn *deltaTenant, _ *atomic.Pointer[fakeazure.Fault]) {
				tn.Graph.ExpireDeltaLinks(fakeazure.ExpirySyncStateNotFound)
			},
			status: 400,
		},
		{
			name: "410 Gone",
			expire: func(tn *deltaTenant, _ *atomic.Pointer[fakeazure.Fault]) {
				tn.Graph.ExpireDeltaLinks(fakeazure.ExpiryGone)
			},
			status: 410,
		},
		{
			name: "400 SyncStateNotFound in another casing",
			expire: func(_ *deltaTenant, fail *atomic.Pointer[fakeazure.Fault]) {
				fail.Store(&fakeazure.Fault{Status: 400, Code: "SyncStateNotFound", Message: "The sync state generation is not found."})
			},
			status: 400,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var fail atomic.Pointer[fakeazure.Fault]
			tn := newDeltaTenant(t, 50, deltaPath(func(_ *fakeazure.Graph, _ fakeazure.PageRequest) fakeazure.Fault {
				if f := fail.Load(); f != nil {
					return *f
				}
				return fakeazure.Fault{}
			}))
			link := tn.latestLink(t)
			updateUsers(t, tn.Graph, 0, 3, "Late")
			tt.expire(tn, &fail)

			var rec deltaRecord
			_, err := tn.client.Delta(context.Background(), link, rec.sink(t, nil))
			var expired *graph.DeltaExpiredError
			require.ErrorAs(t, err, &expired)
			assert.Equal(t, tt.status, expired.Response.StatusCode)
			assert.Contains(t, err.Error(), "the delta link has expired")
			assert.Empty(t, rec.changes)
			assert.Empty(t, rec.pages, "no place to keep")
		})
	}
}

func TestDeltaSaysWhenANextLinkOfItsRoundHasExpired(t *testing.T) {
	var expire atomic.Bool
	tn := newDeltaTenant(t, 500, deltaPath(func(g *fakeazure.Graph, pr fakeazure.PageRequest) fakeazure.Fault {
		if pr.Page == 1 && expire.CompareAndSwap(false, true) {
			g.ExpireDeltaLinks(fakeazure.ExpiryGone)
		}
		return fakeazure.Fault{}
	}))
	link := tn.latestLink(t)
	updateUsers(t, tn.Graph, 0, 300, "Late")

	var rec deltaRecord
	st, err := tn.client.Delta(context.Background(), link, rec.sink(t, nil))
	var expired *graph.DeltaExpiredError
	require.ErrorAs(t, err, &expired)
	assert.Equal(t, http.StatusGone, expired.Response.StatusCode)
	assert.Equal(t, graph.DeltaStats{Changed: 200, Pages: 1}, st, "what it handed before")
	assert.Len(t, rec.changes, 200)
}

func TestDeltaPassesOtherRefusalsOn(t *testing.T) {
	tn := newDeltaTenant(t, 50, deltaPath(func(_ *fakeazure.Graph, pr fakeazure.PageRequest) fakeazure.Fault {
		return fakeazure.Fault{Status: 400, Code: "Request_BadRequest", Message: "Invalid request."}
	}))
	tn.armed.Store(true)
	_, err := tn.client.Delta(context.Background(), tn.URL.String()+fakeazure.UsersDeltaPath+"?$deltatoken=x", graph.DeltaSink{
		Change: func(graph.Change) error { return nil },
	})
	var re *graph.ResponseError
	require.ErrorAs(t, err, &re)
	assert.Equal(t, "Request_BadRequest", re.Code)
	var expired *graph.DeltaExpiredError
	assert.False(t, errors.As(err, &expired), "a 400 of another code is not an expired link")
}

func TestDeltaCountsRetriesAndThrottling(t *testing.T) {
	var first atomic.Bool
	tn := newDeltaTenant(t, 500, deltaPath(func(_ *fakeazure.Graph, pr fakeazure.PageRequest) fakeazure.Fault {
		switch {
		case pr.Page == 0 && first.CompareAndSwap(false, true):
			return fakeazure.Fault{Status: 429, Code: "TooManyRequests", Header: http.Header{"Retry-After": {"0.01"}}}
		case pr.Page == 1 && pr.Attempt == 1:
			return fakeazure.Fault{Status: 503, Header: http.Header{"Retry-After": {"0.01"}}}
		case pr.Page == 1 && pr.Attempt == 2:
			return fakeazure.Fault{Status: 500, Code: "UnknownError"}
		}
		return fakeazure.Fault{}
	}))
	link := tn.latestLink(t)
	updateUsers(t, tn.Graph, 0, 300, "Busy")

	var rec deltaRecord
	st, err := tn.client.Delta(context.Background(), link, rec.sink(t, nil))
	require.NoError(t, err)
	assert.Equal(t, graph.DeltaStats{Changed: 300, Pages: 2, Retries: 3, Throttled: 2}, st)
	require.Len(t, rec.pages, 2)
	assert.Equal(t, graph.DeltaStats{Changed: 200, Pages: 1, Retries: 1, Throttled: 1}, rec.pages[0].st, "the counts so far, as each page ends")
	require.Len(t, rec.warnings, 3)
	assert.Contains(t, rec.warnings[0], "delta round: page 1: 429")
}

func TestDeltaStoppedByTheContextReturnsWhatItHanded(t *testing.T) {
	tn := newDeltaTenant(t, 500, nil)
	link := tn.latestLink(t)
	updateUsers(t, tn.Graph, 0, 450, "Stopped")

	t.Run("between pages", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var rec deltaRecord
		sink := rec.sink(t, nil)
		page := sink.Page
		sink.Page = func(link string, last bool, st graph.DeltaStats) error {
			cancel()
			return page(link, last, st)
		}
		st, err := tn.client.Delta(ctx, link, sink)
		require.ErrorIs(t, err, context.Canceled)
		assert.Equal(t, graph.DeltaStats{Changed: 200, Pages: 1}, st)
		assert.Len(t, rec.changes, 200)
		require.Len(t, rec.pages, 1, "the place after the last page read")
	})
	t.Run("within a page", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var rec deltaRecord
		st, err := tn.client.Delta(ctx, link, rec.sink(t, func(graph.Change) error {
			if len(rec.changes) == 250 {
				cancel()
			}
			return nil
		}))
		require.ErrorIs(t, err, context.Canceled)
		assert.Equal(t, len(rec.changes), st.Changed, "every change handed over is counted")
		assert.GreaterOrEqual(t, st.Changed, 250)
		assert.LessOrEqual(t, st.Changed, 400, "no change of a page after the one it stopped in")
		// The page may have come whole before the context ended: then it
		// was read to its end, and its place handed over.
		assert.Len(t, rec.pages, st.Pages)
		assert.GreaterOrEqual(t, st.Changed, 200*st.Pages)
	})
	t.Run("by the sink", func(t *testing.T) {
		stop := errors.New("stdout closed")
		var rec deltaRecord
		st, err := tn.client.Delta(context.Background(), link, rec.sink(t, func(graph.Change) error {
			if len(rec.changes) == 30 {
				return stop
			}
			return nil
		}))
		require.ErrorIs(t, err, stop)
		assert.Equal(t, graph.DeltaStats{Changed: 29}, st, "the change the sink refused is not counted")
	})
}

func TestDeltaOwnsOnlyLinksOfItsEndpoint(t *testing.T) {
	tn := newDeltaTenant(t, 10, nil)
	link := tn.latestLink(t)
	assert.True(t, tn.client.OwnsLink(link))
	for _, other := range []string{
		strings.Replace(link, "https://", "http://", 1),
		strings.Replace(link, tn.URL.Host, "127.0.0.1:1", 1),
		"https://graph.microsoft.com/v1.0/users/delta?$deltatoken=x",
		"/v1.0/users/delta?$deltatoken=x",
		"::not a URL",
	} {
		assert.False(t, tn.client.OwnsLink(other), other)
	}
}

func TestDeltaNamesItsRoundOnceInAnError(t *testing.T) {
	var armed atomic.Bool
	ft := fakeazure.NewTenant(t, fakeazure.TenantOptions{
		Graph: fakeazure.GraphOptions{Users: 10},
		Wrap: func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if armed.Load() && r.URL.Path == fakeazure.UsersDeltaPath {
					// A page that neither goes on nor ends the round.
					w.Header().Set("Content-Type", "application/json")
					_, _ = w.Write([]byte(`{"value":[]}`))
					return
				}
				h.ServeHTTP(w, r)
			})
		},
	})
	client, err := graph.NewClient(ft.URL, ft.Credential(t), &graph.ClientOptions{Transport: ft.Transport(), RetryDelay: time.Millisecond})
	require.NoError(t, err)
	link, err := client.DeltaLatest(context.Background(), deltaSelect)
	require.NoError(t, err)
	armed.Store(true)

	var rec deltaRecord
	_, err = client.Delta(context.Background(), link, rec.sink(t, nil))
	require.Error(t, err)
	assert.True(t, strings.HasPrefix(err.Error(), "delta round, page 1: "), "%v", err)
	assert.NotContains(t, err.Error(), "delta delta")
	assert.Contains(t, err.Error(), "neither @odata.nextLink nor @odata.deltaLink")
	assert.Empty(t, rec.pages)
}

func TestDeltaRefusesALinkToAnotherOriginWhenItArrives(t *testing.T) {
	other := foreignHost(t, true)
	foreign := other.URL + fakeazure.UsersDeltaPath + "?$deltatoken=steal"
	tests := []struct {
		name      string
		page      int // the page that carries the foreign link, from 0
		wantPages int // Page calls before it
	}{
		{"a nextLink", 0, 0},
		{"a nextLink after a page", 1, 1},
		{"the round's deltaLink", 2, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tn := newDeltaTenant(t, 500, deltaPath(func(_ *fakeazure.Graph, pr fakeazure.PageRequest) fakeazure.Fault {
				if pr.Page == tt.page {
					return fakeazure.Fault{NextLink: foreign}
				}
				return fakeazure.Fault{}
			}))
			link := tn.latestLink(t)
			updateUsers(t, tn.Graph, 0, 450, "Moved") // pages of 200, 200 and 50

			var rec deltaRecord
			_, err := tn.client.Delta(context.Background(), link, rec.sink(t, nil))
			var oe *graph.OriginError
			require.ErrorAs(t, err, &oe)
			assert.Contains(t, err.Error(), other.URL, "the error names the link's host")
			assert.Contains(t, err.Error(), fmt.Sprintf("delta round, page %d: ", tt.page+1))
			assert.NotContains(t, err.Error(), "steal", "a link's path and query are never repeated")
			require.Len(t, rec.pages, tt.wantPages, "the page with the foreign link keeps no place")
			for _, p := range rec.pages {
				assert.NotContains(t, p.link, other.URL)
				assert.False(t, p.last)
			}
			assert.Empty(t, rec.warnings, "not retried")
		})
	}
}

func TestDeltaHandsOverEveryChangeWithoutAnID(t *testing.T) {
	var armed atomic.Bool
	ft := fakeazure.NewTenant(t, fakeazure.TenantOptions{
		Graph: fakeazure.GraphOptions{Users: 10},
		Wrap: func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if !armed.Load() || r.URL.Path != fakeazure.UsersDeltaPath {
					h.ServeHTTP(w, r)
					return
				}
				// Graph leaves out ids it always sends: two changes alike,
				// and a removal, without one.
				w.Header().Set("Content-Type", "application/json")
				fmt.Fprintf(w, `{"value":[{"displayName":"A"},{"displayName":"A"},{"id":"%s","displayName":"B"},`+
					`{"@removed":{"reason":"deleted"}}],"@odata.deltaLink":"https://%s/v1.0/users/delta?$deltatoken=next"}`,
					fakeazure.UserID(1), r.Host)
			})
		},
	})
	client, err := graph.NewClient(ft.URL, ft.Credential(t), &graph.ClientOptions{Transport: ft.Transport(), RetryDelay: time.Millisecond})
	require.NoError(t, err)
	link, err := client.DeltaLatest(context.Background(), deltaSelect)
	require.NoError(t, err)
	armed.Store(true)

	var changes []graph.Change
	var warnings []string
	var pages []string
	st, err := client.Delta(context.Background(), link, graph.DeltaSink{
		Change: func(c graph.Change) error {
			c.JSON = append([]byte(nil), c.JSON...)
			changes = append(changes, c)
			return nil
		},
		Page: func(link string, _ bool, _ graph.DeltaStats) error {
			pages = append(pages, link)
			return nil
		},
		Warn: func(msg string) { warnings = append(warnings, msg) },
	})
	require.NoError(t, err)
	require.Len(t, changes, 4, "every change, those alike too")
	assert.Equal(t, []string{"", "", fakeazure.UserID(1), ""}, []string{changes[0].ID, changes[1].ID, changes[2].ID, changes[3].ID})
	assert.Equal(t, `{"displayName":"A"}`, string(changes[1].JSON))
	assert.Equal(t, "deleted", changes[3].Removed)
	assert.Equal(t, graph.DeltaStats{Changed: 3, Removed: 1, WithoutID: 3, Pages: 1}, st)
	assert.Len(t, pages, 1, "the round keeps its place")
	require.Len(t, warnings, 1, "one warning a round")
	assert.Contains(t, warnings[0], "without an id")
}
