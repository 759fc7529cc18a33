package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"graphuserstimer/internal/azurite"
	"graphuserstimer/internal/fakeazure"
	"graphuserstimer/internal/storage"
)

// Delta mode and exports, end to end: the whole program against the fake
// identity endpoint, the fake Graph and the real Azurite, through the real
// azidentity, azcore and azblob.

// testHostID is the host ID the tests' app names outright.
const testHostID = "test-app"

// stateBlob is where the handler keeps its place: under the host ID, the
// function's name.
const stateBlob = "state/" + testHostID + "/GraphUsersTimer.json"

// deltaSelect makes jobTitle a selected property, so that every update the
// fake tenant makes is reported.
const deltaSelect = "displayName,userPrincipalName,mail,jobTitle"

// hooks lets a test change, run by run, what the fake Graph does: the
// fault it answers with, and a rewrite of its responses.
type hooks struct {
	fault atomic.Pointer[func(fakeazure.PageRequest) fakeazure.Fault]
	wrap  atomic.Pointer[func(http.ResponseWriter, *http.Request, http.Handler)]
}

// onFault makes f answer every request from now on; nil serves them all.
func (h *hooks) onFault(f func(fakeazure.PageRequest) fakeazure.Fault) {
	if f == nil {
		h.fault.Store(nil)
		return
	}
	h.fault.Store(&f)
}

// onDelta makes f answer the requests of /v1.0/users/delta from now on.
func (h *hooks) onDelta(f func(fakeazure.PageRequest) fakeazure.Fault) {
	h.onFault(func(pr fakeazure.PageRequest) fakeazure.Fault {
		if pr.Path != fakeazure.UsersDeltaPath {
			return fakeazure.Fault{}
		}
		return f(pr)
	})
}

func (h *hooks) answer(pr fakeazure.PageRequest) fakeazure.Fault {
	if f := h.fault.Load(); f != nil {
		return (*f)(pr)
	}
	return fakeazure.Fault{}
}

// newDeltaAzure is newAzure whose fake Graph does what hooks say.
func newDeltaAzure(t *testing.T, users int) (*azure, *hooks) {
	t.Helper()
	return newDeltaAzureFrom(t, fakeazure.GraphOptions{Users: users})
}

// newDeltaAzureFrom is newDeltaAzure with a fake Graph configured by o.
func newDeltaAzureFrom(t *testing.T, o fakeazure.GraphOptions) (*azure, *hooks) {
	t.Helper()
	h := &hooks{}
	o.Fault = h.answer
	tn := fakeazure.NewTenant(t, fakeazure.TenantOptions{Graph: o, AppService: true, Wrap: func(graph http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if wrap := h.wrap.Load(); wrap != nil {
				(*wrap)(w, r, graph)
				return
			}
			graph.ServeHTTP(w, r)
		})
	}})
	return fromTenant(tn), h
}

// account is one Azurite for a test function; each subtest takes a
// container of its own.
type account struct {
	srv *azurite.Server
	n   atomic.Int32
}

func newAccount(t *testing.T) *account {
	t.Helper()
	return &account{srv: azurite.Start(t)}
}

// newContainer names a container no other test of the account uses.
func (a *account) newContainer(prefix string) string {
	return fmt.Sprintf("%s-%d", prefix, a.n.Add(1))
}

// deltaSettings are az's settings in delta mode, keeping the state in
// container of this account.
func (a *account) deltaSettings(t *testing.T, az *azure, container string) map[string]string {
	t.Helper()
	env := az.settings(t)
	env["GRAPH_USERS_MODE"] = "delta"
	env["GRAPH_USERS_STORAGE"] = "AzureWebJobsStorage"
	env["AzureWebJobsStorage"] = a.srv.ConnectionString()
	env["GRAPH_USERS_CONTAINER"] = container
	env["GRAPH_USERS_SELECT"] = deltaSelect
	env["GRAPH_USERS_PAGE_SIZE"] = "100"
	env["AzureFunctionsWebHost__hostid"] = testHostID
	return env
}

// open opens container through internal/storage, as the handler does.
func (a *account) open(t *testing.T, name string) *storage.Container {
	t.Helper()
	conn, err := storage.ParseConnection("AzureWebJobsStorage", func(k string) string {
		if k == "AzureWebJobsStorage" {
			return a.srv.ConnectionString()
		}
		return ""
	}, "")
	require.NoError(t, err)
	c, err := storage.Open(conn, name, nil)
	require.NoError(t, err)
	return c
}

// blobClient is azblob's own client of container, to list and download
// what the handler wrote.
func (a *account) blobClient(t *testing.T, name string) *container.Client {
	t.Helper()
	cred, err := container.NewSharedKeyCredential(azurite.AccountName, azurite.AccountKey)
	require.NoError(t, err)
	c, err := container.NewClientWithSharedKeyCredential(a.srv.BlobEndpoint()+"/"+name, cred, nil)
	require.NoError(t, err)
	return c
}

// blobs lists the committed blobs of container under prefix.
func (a *account) blobs(t *testing.T, name, prefix string) []string {
	t.Helper()
	names := []string{}
	pager := a.blobClient(t, name).NewListBlobsFlatPager(&container.ListBlobsFlatOptions{Prefix: &prefix})
	for pager.More() {
		page, err := pager.NextPage(testCtx(t))
		require.NoError(t, err)
		for _, b := range page.Segment.BlobItems {
			names = append(names, *b.Name)
		}
	}
	return names
}

// export is a committed export as a client downloads it.
type export struct {
	size        int64
	contentType string
	lines       []map[string]any
}

// download downloads the export called name and reads every line.
func (a *account) download(t *testing.T, container, name string) export {
	t.Helper()
	resp, err := a.blobClient(t, container).NewBlobClient(name).DownloadStream(testCtx(t), nil)
	require.NoError(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	x := export{size: int64(len(data))}
	if resp.ContentType != nil {
		x.contentType = *resp.ContentType
	}
	zr, err := gzip.NewReader(bytes.NewReader(data))
	require.NoError(t, err, "an export is gzip")
	plain, err := io.ReadAll(zr)
	require.NoError(t, err)
	for line := range strings.SplitSeq(strings.TrimSuffix(string(plain), "\n"), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &m), "export line %q", line)
		x.lines = append(x.lines, m)
	}
	return x
}

// state is the state blob as the handler writes it.
type state struct {
	Version    int       `json:"version"`
	Link       string    `json:"link"`
	LinkSince  time.Time `json:"linkSince"`
	ExportFrom string    `json:"exportFrom"`
	Last       struct {
		Mode    string `json:"mode"`
		Stopped bool   `json:"stopped"`
	} `json:"last"`
}

// readState reads the state blob of container back through
// internal/storage; found is false when there is none.
func (a *account) readState(t *testing.T, container string) (st state, raw []byte, found bool) {
	t.Helper()
	return a.readStateAt(t, container, stateBlob)
}

// readStateAt reads the state blob called blob.
func (a *account) readStateAt(t *testing.T, container, blob string) (st state, raw []byte, found bool) {
	t.Helper()
	raw, _, err := a.open(t, container).Get(testCtx(t), blob)
	if errors.Is(err, storage.ErrNotFound) {
		return state{}, nil, false
	}
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(raw, &st), "%s", raw)
	return st, raw, true
}

// writeState writes the state blob as another writer would: created, or
// replaced whatever it holds.
func (a *account) writeState(t *testing.T, container string, data []byte) {
	t.Helper()
	a.writeStateAt(t, container, stateBlob, data)
}

// writeStateAt writes data as the blob called blob, whatever it holds.
func (a *account) writeStateAt(t *testing.T, container, blob string, data []byte) {
	t.Helper()
	c := a.open(t, container)
	require.NoError(t, c.Create(testCtx(t)))
	_, etag, err := c.Get(testCtx(t), blob)
	if !errors.Is(err, storage.ErrNotFound) {
		require.NoError(t, err)
	}
	_, err = c.Put(testCtx(t), blob, data, etag)
	require.NoError(t, err)
}

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// deltaOutcome is what one run of delta mode or an export produced.
type deltaOutcome struct {
	outcome
	// users, changed and removed are the objects of the "user", "user
	// changed" and "user removed" lines, without time, level and msg, in
	// the order they were written.
	users, changed, removed []map[string]any
	// order is the msg and id of every user, change and removal line, in
	// order.
	order []string
	// changes is the "changes listed" summary; summary (of outcome) is
	// "users listed".
	changes map[string]any
}

// runOnce runs the whole program once with env, on a port of its own.
func runOnce(t *testing.T, az *azure, env map[string]string) deltaOutcome {
	t.Helper()
	e := make(map[string]string, len(env))
	for k, v := range env {
		e[k] = v
	}
	e["FUNCTIONS_CUSTOMHANDLER_PORT"] = freePort(t)
	o := deltaOutcome{outcome: invokeOnce(t, az, e)}
	for _, line := range jsonLines(t, o.stdout) {
		msg, _ := line["msg"].(string)
		obj := func() map[string]any {
			m := map[string]any{}
			for k, v := range line {
				if k != "time" && k != "level" && k != "msg" {
					m[k] = v
				}
			}
			o.order = append(o.order, msg+" "+fmt.Sprint(m["id"]))
			return m
		}
		switch msg {
		case "user":
			o.users = append(o.users, obj())
		case "user changed":
			o.changed = append(o.changed, obj())
		case "user removed":
			o.removed = append(o.removed, obj())
		case "changes listed":
			o.changes = line
		}
	}
	for _, out := range []string{o.stdout, o.stderr} {
		assert.NotContains(t, out, azurite.AccountKey, "no account key in any output")
	}
	return o
}

// failure is the reason a failed run gives, checked to be on stderr too.
func (o deltaOutcome) failure(t *testing.T) string {
	t.Helper()
	require.Equal(t, 500, o.status, "logs %v", o.logs)
	require.NotEmpty(t, o.logs)
	last := o.logs[len(o.logs)-1]
	assert.True(t, strings.HasPrefix(last, "failed: "), last)
	// stderr is JSON lines: the reason is there as log/slog writes it.
	var reason bytes.Buffer
	enc := json.NewEncoder(&reason)
	enc.SetEscapeHTML(false)
	require.NoError(t, enc.Encode(strings.TrimPrefix(last, "failed: ")))
	assert.Contains(t, o.stderr, strings.Trim(strings.TrimSpace(reason.String()), `"`), "the host throws a failed body away: stderr keeps the reason")
	assert.Nil(t, o.changes, "no summary of changes")
	return last
}

// ok checks the run succeeded.
func (o deltaOutcome) ok(t *testing.T) {
	t.Helper()
	require.Equal(t, 200, o.status, "logs %v\nstderr %s", o.logs, o.stderr)
}

// ids counts the ids of objects.
func ids(objs []map[string]any) map[string]int {
	n := map[string]int{}
	for _, o := range objs {
		n[o["id"].(string)]++
	}
	return n
}

// idSet is the ids of users, by index, each once: a user added and then
// updated is one change.
func idSet(users ...[]int) map[string]int {
	n := map[string]int{}
	for _, us := range users {
		for _, i := range us {
			n[fakeazure.UserID(i)] = 1
		}
	}
	return n
}

// properties are the user properties a line may carry besides id.
var properties = map[string]bool{"id": true, "displayName": true, "userPrincipalName": true, "mail": true, "jobTitle": true}

// wholeUser is user i as a full listing logs it now.
func wholeUser(t *testing.T, az *azure, i int) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(az.graph.UserJSON(i, strings.Split("id,"+deltaSelect, ",")), &m))
	return m
}

func TestDeltaMode(t *testing.T) {
	acct := newAccount(t)

	t.Run("lists every user first, then only what changed", func(t *testing.T) {
		az, _ := newDeltaAzure(t, 250)
		name := acct.newContainer("delta")
		env := acct.deltaSettings(t, az, name)

		first := runOnce(t, az, env)
		first.ok(t)
		assert.Equal(t, idSet(rangeOf(0, 250)), ids(first.users), "every user, once")
		require.NotNil(t, first.summary)
		assert.Equal(t, "full", first.summary["mode"])
		assert.Equal(t, 250.0, first.summary["users"])
		assert.Equal(t, 3.0, first.summary["pages"])
		assert.Nil(t, first.changes)
		assert.Empty(t, first.changed)
		st, _, found := acct.readState(t, name)
		require.True(t, found, "the state blob is created")
		assert.Equal(t, 1, st.Version)
		assert.True(t, strings.HasPrefix(st.Link, az.graphURL+fakeazure.UsersDeltaPath+"?$deltatoken="), st.Link)
		assert.WithinDuration(t, time.Now(), st.LinkSince, time.Minute)
		assert.Equal(t, "full", st.Last.Mode)
		assert.Empty(t, st.ExportFrom)

		c := az.graph.Change(fakeazure.Changes{Add: 3, Update: 20, SoftDelete: 2, HardDelete: 2})
		second := runOnce(t, az, env)
		second.ok(t)
		assert.Empty(t, second.users, "no full listing")
		assert.Nil(t, second.summary)
		assert.Equal(t, idSet(c.Added, c.Updated), ids(second.changed), "exactly the new and updated users, once each")
		for _, line := range second.changed {
			assert.Contains(t, line, "id")
			for k := range line {
				assert.True(t, properties[k], "%s is a selected property", k)
			}
		}
		for _, i := range c.Added {
			for _, line := range second.changed {
				if line["id"] == fakeazure.UserID(i) {
					assert.Equal(t, wholeUser(t, az, i), line, "a new user comes whole")
				}
			}
		}
		for _, i := range c.Updated {
			for _, line := range second.changed {
				if line["id"] == fakeazure.UserID(i) {
					assert.Contains(t, line, "jobTitle", "what changed")
					assert.NotContains(t, line, "mail", "and no more: return=minimal")
				}
			}
		}
		wantRemoved := map[string]string{}
		for _, i := range c.SoftDeleted {
			wantRemoved[fakeazure.UserID(i)] = "changed"
		}
		for _, i := range c.HardDeleted {
			wantRemoved[fakeazure.UserID(i)] = "deleted"
		}
		gotRemoved := map[string]string{}
		for _, line := range second.removed {
			assert.Len(t, line, 2, "id and reason: %v", line)
			gotRemoved[line["id"].(string)] = line["reason"].(string)
		}
		assert.Equal(t, wantRemoved, gotRemoved)
		require.NotNil(t, second.changes)
		assert.Equal(t, "delta", second.changes["mode"])
		assert.Equal(t, 23.0, second.changes["changed"])
		assert.Equal(t, 4.0, second.changes["removed"])
		assert.Equal(t, 1.0, second.changes["pages"])
		for _, k := range []string{"duration_ms", "retries", "throttled"} {
			assert.Contains(t, second.changes, k)
		}
		require.Len(t, second.logs, 1, "the summary, not a line a change")
		assert.Contains(t, second.logs[0], "Listed 27 changes (23 new or updated users, 4 removed) on 1 page")
		next, _, _ := acct.readState(t, name)
		assert.NotEqual(t, st.Link, next.Link, "a new link")
		assert.Equal(t, "delta", next.Last.Mode)

		third := runOnce(t, az, env)
		third.ok(t)
		assert.Empty(t, third.changed)
		assert.Empty(t, third.removed)
		assert.Empty(t, third.users)
		require.NotNil(t, third.changes)
		assert.Equal(t, 0.0, third.changes["changed"])
		assert.Equal(t, 0.0, third.changes["removed"])
	})

	t.Run("a change made while the first listing runs comes in the next round", func(t *testing.T) {
		// Realistic names, and enough of them, for a split that pays.
		az, h := newDeltaAzureFrom(t, fakeazure.GraphOptions{Users: 5000, Realistic: true})
		env := acct.deltaSettings(t, az, acct.newContainer("during"))
		env["GRAPH_USERS_PARALLEL"] = "4"
		var once sync.Once
		h.onFault(func(pr fakeazure.PageRequest) fakeazure.Fault {
			if pr.Path == fakeazure.UsersPath && pr.Page == 1 {
				once.Do(func() {
					// User 0 is on the first page, read already.
					assert.NoError(t, az.graph.UpdateUser(0, fakeazure.UserUpdate{JobTitle: "Meanwhile"}))
				})
			}
			return fakeazure.Fault{}
		})
		first := runOnce(t, az, env)
		first.ok(t)
		assert.Equal(t, idSet(rangeOf(0, 5000)), ids(first.users), "every user once, over the streams")
		assert.Greater(t, first.summary["streams"], 1.0)

		h.onFault(nil)
		next := runOnce(t, az, env)
		next.ok(t)
		require.Len(t, next.changed, 1)
		assert.Equal(t, map[string]any{"id": fakeazure.UserID(0), "jobTitle": "Meanwhile"}, next.changed[0])
	})

	t.Run("logs a user's changes in Graph's order", func(t *testing.T) {
		// Graph may send a user twice in a round: removed, then restored.
		// The lines must keep that order, or a reader that applies them
		// in order ends with a user that is there as removed.
		az, h := newDeltaAzure(t, 30)
		env := acct.deltaSettings(t, az, acct.newContainer("order"))
		runOnce(t, az, env).ok(t)

		require.NoError(t, az.graph.UpdateUser(3, fakeazure.UserUpdate{JobTitle: "Back"}))
		require.NoError(t, az.graph.UpdateUser(4, fakeazure.UserUpdate{JobTitle: "Stays"}))
		removedThenBack := fmt.Sprintf(`{"id":%q,"@removed":{"reason":"changed"}}`, fakeazure.UserID(3))
		h.wrap.Store(ptr(func(w http.ResponseWriter, r *http.Request, next http.Handler) {
			if r.URL.Path != fakeazure.UsersDeltaPath {
				next.ServeHTTP(w, r)
				return
			}
			rec := httptest.NewRecorder()
			next.ServeHTTP(rec, r)
			body := rec.Body.Bytes()
			// The removal goes just before the user's entry.
			at := bytes.Index(body, []byte(`{"id":"`+fakeazure.UserID(3)+`"`))
			if at >= 0 {
				body = append(append(append([]byte{}, body[:at]...), removedThenBack+","...), body[at:]...)
			}
			for k, vs := range rec.Header() {
				w.Header()[k] = vs
			}
			w.Header().Del("Content-Length")
			w.WriteHeader(rec.Code)
			_, _ = w.Write(body)
		}))
		o := runOnce(t, az, env)
		o.ok(t)
		assert.Equal(t, []string{
			"user removed " + fakeazure.UserID(3),
			"user changed " + fakeazure.UserID(3),
			"user changed " + fakeazure.UserID(4),
		}, o.order)
	})

	t.Run("exports every user of a listing and every change of a round", func(t *testing.T) {
		az, h := newDeltaAzure(t, 240)
		name := acct.newContainer("exports")
		list := acct.deltaSettings(t, az, name)
		list["GRAPH_USERS_MODE"] = "list"
		list["GRAPH_USERS_EXPORT"] = "true"

		o := runOnce(t, az, list)
		o.ok(t)
		checkUserExport(t, acct, name, o, 240)
		first := o.summary["export"]
		_, _, found := acct.readState(t, name)
		assert.False(t, found, "list mode keeps no state")

		// A listing that fails leaves no export.
		before := acct.blobs(t, name, "")
		h.onFault(func(pr fakeazure.PageRequest) fakeazure.Fault {
			if pr.Path == fakeazure.UsersPath && pr.Page == 1 {
				return fakeazure.Fault{Status: 403, Code: "Authorization_RequestDenied"}
			}
			return fakeazure.Fault{}
		})
		o = runOnce(t, az, list)
		assert.Contains(t, o.failure(t), "Authorization_RequestDenied")
		assert.Nil(t, o.summary)
		assert.Equal(t, before, acct.blobs(t, name, ""), "a failed run commits no export")
		h.onFault(nil)

		delta := acct.deltaSettings(t, az, name)
		delta["GRAPH_USERS_EXPORT"] = "true"
		o = runOnce(t, az, delta)
		o.ok(t)
		require.NotNil(t, o.summary, "the first run of delta mode is a full listing")
		checkUserExport(t, acct, name, o, 240)
		assert.Len(t, acct.blobs(t, name, "users/"), 2, "each run's export is kept, however soon one follows another")
		assert.Len(t, acct.download(t, name, first.(string)).lines, 240)

		c := az.graph.Change(fakeazure.Changes{Add: 2, Update: 250, SoftDelete: 1, HardDelete: 1})
		o = runOnce(t, az, delta)
		o.ok(t)
		x := checkChangeExport(t, acct, name, o)
		assert.Equal(t, idSet(c.Added, c.Updated, c.SoftDeleted, c.HardDeleted), ids(x.lines), "every change, once")
		assert.Equal(t, 2.0, o.changes["pages"])
	})

	t.Run("a round without a change writes no export", func(t *testing.T) {
		az, _ := newDeltaAzure(t, 50)
		name := acct.newContainer("noexport")
		env := acct.deltaSettings(t, az, name)
		env["GRAPH_USERS_EXPORT"] = "true"
		runOnce(t, az, env).ok(t)
		before := acct.blobs(t, name, "")

		o := runOnce(t, az, env)
		o.ok(t)
		require.NotNil(t, o.changes)
		assert.Equal(t, 0.0, o.changes["changed"])
		assert.Equal(t, false, o.changes["exported"], "the summary says no export was written")
		assert.NotContains(t, o.changes, "export")
		assert.NotContains(t, o.changes, "export_bytes")
		assert.Contains(t, strings.Join(o.logs, "\n"), "Nothing to export: no blob written.")
		assert.Empty(t, acct.blobs(t, name, "changes/"), "no empty export")
		assert.Equal(t, before, acct.blobs(t, name, ""))
		st, _, _ := acct.readState(t, name)
		assert.Empty(t, st.ExportFrom, "no export is owed")

		// A change later is exported as usual.
		require.NoError(t, az.graph.UpdateUser(4, fakeazure.UserUpdate{JobTitle: "Exported"}))
		o = runOnce(t, az, env)
		o.ok(t)
		x := checkChangeExport(t, acct, name, o)
		assert.Equal(t, idSet([]int{4}), ids(x.lines))
		assert.NotContains(t, o.changes, "exported")
	})

	t.Run("starts over with a full listing when Graph no longer knows the link", func(t *testing.T) {
		for _, how := range []struct {
			name   string
			expiry fakeazure.DeltaExpiry
		}{{"400 syncStateNotFound", fakeazure.ExpirySyncStateNotFound}, {"410 Gone", fakeazure.ExpiryGone}} {
			t.Run(how.name, func(t *testing.T) {
				az, _ := newDeltaAzure(t, 150)
				name := acct.newContainer("expired")
				env := acct.deltaSettings(t, az, name)
				runOnce(t, az, env).ok(t)
				old, _, _ := acct.readState(t, name)

				c := az.graph.Change(fakeazure.Changes{Add: 4, SoftDelete: 3})
				az.graph.ExpireDeltaLinks(how.expiry)
				o := runOnce(t, az, env)
				o.ok(t)
				assert.Contains(t, strings.Join(o.logs, "\n"), "warning: Graph no longer knows the saved delta link")
				assert.Contains(t, o.stderr, `"level":"warn"`)
				require.NotNil(t, o.summary)
				assert.Equal(t, "full", o.summary["mode"])
				assert.Equal(t, float64(150+len(c.Added)-len(c.SoftDeleted)), o.summary["users"])
				assert.Len(t, ids(o.users), 150+len(c.Added)-len(c.SoftDeleted))
				st, _, _ := acct.readState(t, name)
				assert.NotEqual(t, old.Link, st.Link, "a new link is saved")
				assert.Equal(t, "full", st.Last.Mode)

				o = runOnce(t, az, env)
				o.ok(t)
				require.NotNil(t, o.changes, "and the next run is a round from it")
				assert.Equal(t, 0.0, o.changes["changed"])
				assert.Equal(t, 0.0, o.changes["removed"])
			})
		}
	})

	t.Run("starts over when GRAPH_ENDPOINT no longer names the link's Graph", func(t *testing.T) {
		before, _ := newDeltaAzure(t, 40)
		name := acct.newContainer("moved")
		runOnce(t, before, acct.deltaSettings(t, before, name)).ok(t)

		// The same storage, another Graph: the saved link is the old one's.
		// It is never asked, nor is the token sent there.
		asked := before.graph.Requests()
		after, _ := newDeltaAzure(t, 70)
		o := runOnce(t, after, acct.deltaSettings(t, after, name))
		o.ok(t)
		assert.Contains(t, strings.Join(o.logs, "\n"), "warning: the saved delta link is not on GRAPH_ENDPOINT")
		require.NotNil(t, o.summary)
		assert.Equal(t, "full", o.summary["mode"])
		assert.Equal(t, 70.0, o.summary["users"])
		st, _, _ := acct.readState(t, name)
		assert.True(t, strings.HasPrefix(st.Link, after.graphURL+"/"), "a link of the new Graph is saved")
		assert.Equal(t, asked, before.graph.Requests(), "the old Graph is not asked")
	})

	t.Run("starts over when GRAPH_USERS_SELECT changed", func(t *testing.T) {
		// The link carries the $select it was asked with: a round from it
		// would never send the property added since.
		az, _ := newDeltaAzure(t, 30)
		name := acct.newContainer("select")
		env := acct.deltaSettings(t, az, name)
		runOnce(t, az, env).ok(t)

		env["GRAPH_USERS_SELECT"] = deltaSelect + ",department"
		o := runOnce(t, az, env)
		o.ok(t)
		assert.Contains(t, strings.Join(o.logs, "\n"), "warning: GRAPH_USERS_SELECT has changed since the saved delta link was taken")
		require.NotNil(t, o.summary)
		assert.Equal(t, "full", o.summary["mode"])
		require.Len(t, o.users, 30)
		assert.Contains(t, o.users[0], "department", "every user with the new property")

		require.NoError(t, az.graph.UpdateUser(3, fakeazure.UserUpdate{JobTitle: "Same select"}))
		o = runOnce(t, az, env)
		o.ok(t)
		require.NotNil(t, o.changes, "the same select: a round")
		assert.Len(t, o.changed, 1)

		env["GRAPH_USERS_SELECT"] = " department, jobTitle ,displayName,mail,userPrincipalName"
		o = runOnce(t, az, env)
		o.ok(t)
		assert.NotNil(t, o.changes, "the same properties in another order: a round")
	})

	t.Run("starts over without asking a link older than 7 days", func(t *testing.T) {
		az, h := newDeltaAzure(t, 120)
		name := acct.newContainer("stale")
		env := acct.deltaSettings(t, az, name)
		runOnce(t, az, env).ok(t)
		_, raw, _ := acct.readState(t, name)
		var m map[string]any
		require.NoError(t, json.Unmarshal(raw, &m))
		m["linkSince"] = time.Now().Add(-8 * 24 * time.Hour).UTC().Format(time.RFC3339)
		old, err := json.Marshal(m)
		require.NoError(t, err)
		acct.writeState(t, name, old)
		require.NoError(t, az.graph.UpdateUser(1, fakeazure.UserUpdate{JobTitle: "Not asked"}))

		var deltas atomic.Int32
		h.onDelta(func(fakeazure.PageRequest) fakeazure.Fault { deltas.Add(1); return fakeazure.Fault{} })
		o := runOnce(t, az, env)
		o.ok(t)
		assert.Contains(t, strings.Join(o.logs, "\n"), "older than the 7 days Graph keeps one")
		require.NotNil(t, o.summary)
		assert.Equal(t, "full", o.summary["mode"])
		assert.Equal(t, int32(1), deltas.Load(), "one delta request, for a link to now: the old link is not asked")
		st, _, _ := acct.readState(t, name)
		assert.WithinDuration(t, time.Now(), st.LinkSince, time.Minute)
	})

	t.Run("fails when someone else wrote the state, and keeps what they wrote", func(t *testing.T) {
		az, h := newDeltaAzure(t, 60)
		name := acct.newContainer("conflict")
		env := acct.deltaSettings(t, az, name)

		// Someone creates the state while the first run lists.
		theirs := []byte(`{"version":1,"link":"` + az.graphURL + `/v1.0/users/delta?$deltatoken=theirs","writer":"another app"}`)
		var once sync.Once
		h.onFault(func(pr fakeazure.PageRequest) fakeazure.Fault {
			if pr.Path == fakeazure.UsersPath {
				once.Do(func() { acct.writeState(t, name, theirs) })
			}
			return fakeazure.Fault{}
		})
		o := runOnce(t, az, env)
		msg := o.failure(t)
		// The listing itself went well, and its summary says so.
		require.NotNil(t, o.summary)
		assert.Equal(t, "full", o.summary["mode"])
		assert.Contains(t, msg, "listed every user, then could not save the delta state")
		assert.Contains(t, msg, "someone else wrote it")
		assert.Contains(t, msg, stateBlob)
		_, raw, _ := acct.readState(t, name)
		assert.Equal(t, string(theirs), string(raw), "their state is left as they wrote it")

		// Someone replaces it while a round reads its changes.
		name = acct.newContainer("conflict")
		env = acct.deltaSettings(t, az, name)
		h.onFault(nil)
		runOnce(t, az, env).ok(t)
		require.NoError(t, az.graph.UpdateUser(2, fakeazure.UserUpdate{JobTitle: "Raced"}))
		once = sync.Once{}
		h.onDelta(func(fakeazure.PageRequest) fakeazure.Fault {
			once.Do(func() { acct.writeState(t, name, theirs) })
			return fakeazure.Fault{}
		})
		o = runOnce(t, az, env)
		msg = o.failure(t)
		assert.Contains(t, msg, "someone else wrote it")
		assert.Contains(t, msg, stateBlob)
		_, raw, _ = acct.readState(t, name)
		assert.Equal(t, string(theirs), string(raw), "their state is left as they wrote it")
	})

	t.Run("fails on a state it cannot read, before asking Graph", func(t *testing.T) {
		for _, tt := range []struct{ name, blob, why string }{
			{"not JSON", `{"version":1,"link":`, "unexpected end of JSON input"},
			{"another version", `{"version":2,"link":"https://graph.microsoft.com/v1.0/users/delta?$deltatoken=x"}`, "its version is 2, not 1"},
			{"no link", `{"version":1}`, "it holds no link"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				az, _ := newDeltaAzure(t, 10)
				name := acct.newContainer("corrupt")
				acct.writeState(t, name, []byte(tt.blob))
				o := runOnce(t, az, acct.deltaSettings(t, az, name))
				msg := o.failure(t)
				assert.Contains(t, msg, name+"/"+stateBlob, "names the blob")
				assert.Contains(t, msg, tt.why)
				assert.Contains(t, msg, "delete the blob to start over with a full listing")
				assert.Zero(t, az.graph.Requests(), "no request to Graph")
			})
		}
	})

	t.Run("fails naming the role when storage refuses the key", func(t *testing.T) {
		az, _ := newDeltaAzure(t, 10)
		env := acct.deltaSettings(t, az, acct.newContainer("forbidden"))
		wrongKey := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte("k"), 64))
		env["AzureWebJobsStorage"] = fmt.Sprintf("AccountName=%s;AccountKey=%s;BlobEndpoint=%s", azurite.AccountName, wrongKey, acct.srv.BlobEndpoint())
		o := runOnce(t, az, env)
		msg := o.failure(t)
		for _, w := range []string{"403", "AuthorizationFailure", "Storage Blob Data Contributor", "AzureWebJobsStorage"} {
			assert.Contains(t, msg, w)
		}
		for _, out := range []string{o.stdout, o.stderr, strings.Join(o.logs, "\n")} {
			assert.NotContains(t, out, wrongKey)
		}
		assert.Zero(t, az.graph.Requests(), "no request to Graph")
	})

	t.Run("a round at the run's deadline keeps its place and the next carries on", func(t *testing.T) {
		az, h := newDeltaAzure(t, 1000)
		name := acct.newContainer("deadline")
		env := acct.deltaSettings(t, az, name)
		runOnce(t, az, env).ok(t)

		changed := rangeOf(0, 900) // five pages
		for _, i := range changed {
			require.NoError(t, az.graph.UpdateUser(i, fakeazure.UserUpdate{JobTitle: "Slow"}))
		}
		h.onDelta(func(fakeazure.PageRequest) fakeazure.Fault { return fakeazure.Fault{Delay: 250 * time.Millisecond} })
		slow := copyEnv(env)
		slow["GRAPH_USERS_RUN_TIMEOUT"] = "1s"
		o := runOnce(t, az, slow)
		o.ok(t)
		assert.Contains(t, strings.Join(o.logs, "\n"), "warning: the delta round reached the run's deadline of 1s")
		require.NotNil(t, o.changes)
		assert.Equal(t, true, o.changes["stopped"])
		pages := int(o.changes["pages"].(float64))
		assert.Less(t, pages, 5)
		st, _, _ := acct.readState(t, name)
		assert.True(t, st.Last.Stopped)
		if pages > 0 {
			assert.Contains(t, st.Link, "$skiptoken=", "the place is a nextLink of the round")
		}

		h.onFault(nil)
		next := runOnce(t, az, env)
		next.ok(t)
		require.NotNil(t, next.changes)
		assert.Equal(t, float64(5-pages), next.changes["pages"], "carries on from where it stopped")
		all := ids(o.changed)
		for id, n := range ids(next.changed) {
			all[id] += n
		}
		assert.Len(t, all, len(changed), "no change lost")
		for _, i := range changed {
			assert.GreaterOrEqual(t, all[fakeazure.UserID(i)], 1, "user %d", i)
		}
		st, _, _ = acct.readState(t, name)
		assert.False(t, st.Last.Stopped)
	})

	t.Run("a full listing at the run's deadline fails and saves nothing", func(t *testing.T) {
		az, h := newDeltaAzure(t, 1000)
		name := acct.newContainer("deadline-full")
		env := acct.deltaSettings(t, az, name)
		env["GRAPH_USERS_RUN_TIMEOUT"] = "700ms"
		h.onFault(func(pr fakeazure.PageRequest) fakeazure.Fault {
			if pr.Path == fakeazure.UsersPath {
				return fakeazure.Fault{Delay: 200 * time.Millisecond}
			}
			return fakeazure.Fault{}
		})
		o := runOnce(t, az, env)
		assert.Contains(t, o.failure(t), "the run reached its deadline of 700ms")
		_, _, found := acct.readState(t, name)
		assert.False(t, found, "no state: the next run lists every user again")
	})

	t.Run("a round whose export failed is read again into the next export", func(t *testing.T) {
		az, h := newDeltaAzure(t, 600)
		name := acct.newContainer("reexport")
		env := acct.deltaSettings(t, az, name)
		env["GRAPH_USERS_EXPORT"] = "true"
		runOnce(t, az, env).ok(t)
		old, _, _ := acct.readState(t, name)

		changed := rangeOf(0, 500) // three pages
		for _, i := range changed {
			require.NoError(t, az.graph.UpdateUser(i, fakeazure.UserUpdate{JobTitle: "Exported"}))
		}
		h.onDelta(func(pr fakeazure.PageRequest) fakeazure.Fault {
			if pr.Page == 2 {
				return fakeazure.Fault{Status: 400, Code: "Request_BadRequest", Message: "Something is wrong."}
			}
			return fakeazure.Fault{}
		})
		o := runOnce(t, az, env)
		assert.Contains(t, o.failure(t), "stopped after 400 changes on 2 pages")
		assert.Len(t, o.changed, 400, "the lines of the pages read")
		assert.Empty(t, acct.blobs(t, name, "changes/"), "no export of a failed round")
		st, _, _ := acct.readState(t, name)
		assert.Contains(t, st.Link, "$skiptoken=", "its place is kept")
		assert.Equal(t, old.Link, st.ExportFrom, "and where its export began")

		h.onFault(nil)
		o = runOnce(t, az, env)
		o.ok(t)
		assert.Contains(t, strings.Join(o.logs, "\n"), "stopped before its export was saved")
		x := checkChangeExport(t, acct, name, o)
		assert.Equal(t, idSet(changed), ids(x.lines), "every change of the round, once")
		st, _, _ = acct.readState(t, name)
		assert.Empty(t, st.ExportFrom)
	})
}

// checkUserExport checks that the run exported every one of its users once,
// each line the object its log line carries, and named the export.
func checkUserExport(t *testing.T, acct *account, container string, o deltaOutcome, users int) {
	t.Helper()
	require.NotNil(t, o.summary)
	name, _ := o.summary["export"].(string)
	assert.Regexp(t, `^users/`+testHostID+`/\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d{3}Z\.jsonl\.gz$`, name)
	x := acct.download(t, container, name)
	assert.Equal(t, "application/gzip", x.contentType)
	assert.Equal(t, float64(x.size), o.summary["export_bytes"], "the summary gives the blob's size")
	assert.Contains(t, strings.Join(o.logs, "\n"), fmt.Sprintf("Exported to %s/%s (%d bytes).", container, name, x.size))
	logged := map[string]map[string]any{}
	for _, u := range o.users {
		logged[u["id"].(string)] = u
	}
	require.Len(t, logged, users)
	counts := ids(x.lines)
	assert.Len(t, counts, users, "every user")
	for _, line := range x.lines {
		id := line["id"].(string)
		assert.Equal(t, 1, counts[id], "user %s once", id)
		assert.Equal(t, logged[id], line, "the export's line is the log line's user")
	}
}

// checkChangeExport checks that the run exported every change it logged,
// each line the object its log line carries, and named the export.
func checkChangeExport(t *testing.T, acct *account, container string, o deltaOutcome) export {
	t.Helper()
	require.NotNil(t, o.changes)
	name, _ := o.changes["export"].(string)
	assert.Regexp(t, `^changes/`+testHostID+`/\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d{3}Z\.jsonl\.gz$`, name)
	x := acct.download(t, container, name)
	assert.Equal(t, float64(x.size), o.changes["export_bytes"], "the summary gives the blob's size")
	assert.Contains(t, strings.Join(o.logs, "\n"), fmt.Sprintf("Exported to %s/%s (%d bytes).", container, name, x.size))
	require.Len(t, x.lines, len(o.changed)+len(o.removed), "one line a change")
	changed, removed := o.changed, o.removed
	for _, line := range x.lines {
		if r, ok := line["@removed"].(map[string]any); ok {
			require.NotEmpty(t, removed)
			assert.Equal(t, removed[0]["id"], line["id"])
			assert.Equal(t, removed[0]["reason"], r["reason"])
			removed = removed[1:]
			continue
		}
		require.NotEmpty(t, changed)
		assert.Equal(t, changed[0], line, "the export's line is the log line's change, in order")
		changed = changed[1:]
	}
	return x
}

func rangeOf(from, to int) []int {
	out := make([]int, 0, to-from)
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out
}

func copyEnv(env map[string]string) map[string]string {
	out := make(map[string]string, len(env))
	for k, v := range env {
		out[k] = v
	}
	return out
}

func ptr[T any](v T) *T { return &v }

func TestDeltaModeSurvivesStorageOutages(t *testing.T) {
	acct := newAccount(t)
	az, h := newDeltaAzure(t, 600)
	name := acct.newContainer("outage")
	env := acct.deltaSettings(t, az, name)
	runOnce(t, az, env).ok(t)

	changed := rangeOf(0, 500) // three pages
	for _, i := range changed {
		require.NoError(t, az.graph.UpdateUser(i, fakeazure.UserUpdate{JobTitle: "Outage"}))
	}
	// Storage goes away while the round reads its second page.
	var once sync.Once
	h.onDelta(func(pr fakeazure.PageRequest) fakeazure.Fault {
		if pr.Page == 1 {
			once.Do(acct.srv.Stop)
		}
		return fakeazure.Fault{}
	})
	o := runOnce(t, az, env)
	msg := o.failure(t)
	assert.Contains(t, msg, "save the delta state")
	assert.Contains(t, msg, "storage unreachable")
	assert.Contains(t, msg, "the storage account did not answer: check AzureWebJobsStorage (GRAPH_USERS_STORAGE names it)")
	h.onFault(nil)

	// Still away when the next run begins: it fails before asking Graph.
	requests := az.graph.Requests()
	down := runOnce(t, az, env)
	msg = down.failure(t)
	assert.Contains(t, msg, "storage unreachable")
	assert.Contains(t, msg, "check AzureWebJobsStorage (GRAPH_USERS_STORAGE names it)")
	assert.Equal(t, requests, az.graph.Requests(), "no request to Graph")

	acct.srv.Restart()
	next := runOnce(t, az, env)
	next.ok(t)
	require.NotNil(t, next.changes, "a round from the place kept, not a full listing")
	all := ids(o.changed)
	for id, n := range ids(next.changed) {
		all[id] += n
	}
	assert.Len(t, all, len(changed), "no change lost")
	for _, i := range changed {
		assert.GreaterOrEqual(t, all[fakeazure.UserID(i)], 1, "user %d", i)
	}
}

func TestDeltaModeRefusesSettingsItCannotUse(t *testing.T) {
	key := azurite.AccountKey
	tests := []struct {
		name string
		env  map[string]string
		want []string
	}{
		{
			name: "an account key that is not base64",
			env:  map[string]string{"GRAPH_USERS_MODE": "delta", "AzureWebJobsStorage": "AccountName=x;AccountKey=notbase64"},
			want: []string{"GRAPH_USERS_STORAGE", "AzureWebJobsStorage", "AccountKey is not base64"},
		},
		{
			name: "a blob endpoint that is not a URL",
			env:  map[string]string{"GRAPH_USERS_MODE": "delta", "AzureWebJobsStorage": "AccountName=devstoreaccount1;AccountKey=" + key + ";BlobEndpoint=ftp://x"},
			want: []string{"AzureWebJobsStorage", "BlobEndpoint"},
		},
		{
			name: "delta mode and no storage connection",
			env:  map[string]string{"GRAPH_USERS_MODE": "delta"},
			want: []string{"GRAPH_USERS_STORAGE", "GRAPH_USERS_MODE=delta needs a storage connection", "AzureWebJobsStorage"},
		},
		{
			name: "a filter, which delta rounds cannot apply",
			env:  map[string]string{"GRAPH_USERS_MODE": "delta", "GRAPH_USERS_FILTER": "accountEnabled eq true", "AzureWebJobsStorage": "UseDevelopmentStorage=true"},
			want: []string{"GRAPH_USERS_FILTER", "GRAPH_USERS_MODE=delta"},
		},
		{
			name: "exports and no storage connection",
			env:  map[string]string{"GRAPH_USERS_EXPORT": "true", "GRAPH_USERS_STORAGE": "ExportStorage"},
			want: []string{"GRAPH_USERS_STORAGE", "GRAPH_USERS_EXPORT=true needs a storage connection", "ExportStorage"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{"AZURE_CLIENT_ID": fakeazure.NewClientID(), "GRAPH_USERS_SCHEDULE": "0 0 * * * *", "FUNCTIONS_CUSTOMHANDLER_PORT": freePort(t)}
			for k, v := range tt.env {
				env[k] = v
			}
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), nil, func(k string) string { return env[k] }, &stdout, &stderr)
			require.Error(t, err)
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w)
			}
			for _, secret := range []string{"notbase64", key} {
				assert.NotContains(t, err.Error()+stdout.String()+stderr.String(), secret, "never the key")
			}
			assert.Empty(t, stdout.String(), "refused before it serves")
		})
	}
}

// useIdentity points MSAL, which reads the process environment, at az's
// identity endpoint: tests that run two apps switch between them.
func useIdentity(t *testing.T, az *azure) {
	t.Helper()
	t.Setenv("IDENTITY_ENDPOINT", az.identityURL)
	t.Setenv("IDENTITY_HEADER", az.header)
}

func TestAppsSharingAStorageAccountKeepTheirOwnStateAndExports(t *testing.T) {
	acct := newAccount(t)
	name := acct.newContainer("shared")
	// Two Function Apps on one storage account and one container, each
	// listing a tenant of its own: one names its host ID outright, the
	// other runs in Azure, where the host ID is its site's name.
	one, _ := newDeltaAzure(t, 40)
	envOne := acct.deltaSettings(t, one, name)
	envOne["AzureFunctionsWebHost__hostid"] = "app-one"
	envOne["GRAPH_USERS_EXPORT"] = "true"
	two, _ := newDeltaAzure(t, 70)
	envTwo := acct.deltaSettings(t, two, name)
	delete(envTwo, "AzureFunctionsWebHost__hostid")
	envTwo["WEBSITE_INSTANCE_ID"] = "0123456789abcdef"
	envTwo["WEBSITE_SITE_NAME"] = "App-Two"
	envTwo["GRAPH_USERS_EXPORT"] = "true"
	const stateOne, stateTwo = "state/app-one/GraphUsersTimer.json", "state/app-two/GraphUsersTimer.json"

	useIdentity(t, one)
	o := runOnce(t, one, envOne)
	o.ok(t)
	require.NotNil(t, o.summary)
	assert.Equal(t, 40.0, o.summary["users"])
	assert.Regexp(t, `^users/app-one/`, o.summary["export"])

	useIdentity(t, two)
	o = runOnce(t, two, envTwo)
	o.ok(t)
	assert.Empty(t, o.logs[:len(o.logs)-1], "no warning: the other app's state is not this one's")
	require.NotNil(t, o.summary, "a first full listing of its own")
	assert.Equal(t, 70.0, o.summary["users"])
	assert.Regexp(t, `^users/app-two/`, o.summary["export"])

	stOne, _, found := acct.readStateAt(t, name, stateOne)
	require.True(t, found)
	assert.True(t, strings.HasPrefix(stOne.Link, one.graphURL+"/"), "app one's state keeps its own Graph's link")
	stTwo, _, found := acct.readStateAt(t, name, stateTwo)
	require.True(t, found)
	assert.True(t, strings.HasPrefix(stTwo.Link, two.graphURL+"/"))

	// Each goes on with rounds of its own tenant's changes.
	require.NoError(t, one.graph.UpdateUser(1, fakeazure.UserUpdate{JobTitle: "One"}))
	require.NoError(t, two.graph.UpdateUser(2, fakeazure.UserUpdate{JobTitle: "Two"}))
	require.NoError(t, two.graph.UpdateUser(3, fakeazure.UserUpdate{JobTitle: "Two"}))
	useIdentity(t, one)
	o = runOnce(t, one, envOne)
	o.ok(t)
	require.NotNil(t, o.changes, "a round from its own link")
	assert.Equal(t, idSet([]int{1}), ids(o.changed))
	assert.Regexp(t, `^changes/app-one/`, o.changes["export"])
	useIdentity(t, two)
	o = runOnce(t, two, envTwo)
	o.ok(t)
	require.NotNil(t, o.changes)
	assert.Equal(t, idSet([]int{2, 3}), ids(o.changed))
	assert.Regexp(t, `^changes/app-two/`, o.changes["export"])

	for _, b := range acct.blobs(t, name, "") {
		assert.Regexp(t, `^(state|users|changes)/app-(one|two)/`, b, "every blob under its app's host ID")
	}
	assert.Len(t, acct.blobs(t, name, "users/app-one/"), 1)
	assert.Len(t, acct.blobs(t, name, "users/app-two/"), 1)
}

func TestDeltaModeLeavesAnEarlierVersionsSharedStateAlone(t *testing.T) {
	acct := newAccount(t)
	az, h := newDeltaAzure(t, 30)
	name := acct.newContainer("upgrade")
	env := acct.deltaSettings(t, az, name)
	// The state an earlier version kept for every app of the account, with
	// a link of this very Graph: another app's, for all this one knows.
	old := []byte(`{"version":1,"link":"` + az.graphURL + `/v1.0/users/delta?$deltatoken=whose","linkSince":"` +
		time.Now().UTC().Format(time.RFC3339) + `"}`)
	acct.writeStateAt(t, name, "state/GraphUsersTimer.json", old)

	var deltas atomic.Int32
	h.onDelta(func(pr fakeazure.PageRequest) fakeazure.Fault { deltas.Add(1); return fakeazure.Fault{} })
	o := runOnce(t, az, env)
	o.ok(t)
	logs := strings.Join(o.logs, "\n")
	assert.Contains(t, logs, "the state an earlier version kept at "+name+"/state/GraphUsersTimer.json")
	assert.Contains(t, logs, "is not used: listing every user")
	require.NotNil(t, o.summary)
	assert.Equal(t, "full", o.summary["mode"])
	assert.Equal(t, int32(1), deltas.Load(), "one delta request, for a link to now: the old link is not followed")
	_, raw, _ := acct.readStateAt(t, name, "state/GraphUsersTimer.json")
	assert.Equal(t, string(old), string(raw), "left as it was")
	_, _, found := acct.readState(t, name)
	assert.True(t, found, "this app's own state")

	o = runOnce(t, az, env)
	o.ok(t)
	assert.NotNil(t, o.changes, "then rounds, without the warning")
	assert.NotContains(t, strings.Join(o.logs, "\n"), "earlier version")
}

// usersNextLink is the @odata.nextLink of the fake Graph's first page of
// /v1.0/users: a listing's link, not a delta round's.
func usersNextLink(t *testing.T, az *azure) string {
	t.Helper()
	req, err := http.NewRequestWithContext(testCtx(t), http.MethodGet, az.graphURL+fakeazure.UsersPath+"?$top=10", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+az.token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var page struct {
		NextLink string `json:"@odata.nextLink"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&page))
	require.NotEmpty(t, page.NextLink)
	return page.NextLink
}

func TestDeltaModeStartsOverFromALinkThatIsNotAUsersDeltaLink(t *testing.T) {
	acct := newAccount(t)
	for _, tt := range []struct {
		name string
		// link and exportFrom make the state's links from Graph's root
		// and a valid delta link of it.
		link, exportFrom func(root, good string) string
		path             string
	}{
		{
			name: "a link edited by hand to start a round afresh",
			link: func(root, _ string) string { return root + "/v1.0/users/delta?$select=id,displayName" },
			path: "/v1.0/users/delta",
		},
		{
			name: "a link edited by hand to a listing",
			link: func(root, _ string) string { return root + "/v1.0/users?$skiptoken=X%27abc%27" },
			path: "/v1.0/users",
		},
		{
			name: "another function's delta link",
			link: func(root, _ string) string { return root + "/v1.0/groups/delta?$deltatoken=abc" },
			path: "/v1.0/groups/delta",
		},
		{
			name: "a nextLink of a /v1.0/users listing",
			link: nil, // usersNextLink
			path: "/v1.0/users",
		},
		{
			name:       "where an export began, another function's",
			link:       func(_, good string) string { return good },
			exportFrom: func(root, _ string) string { return root + "/v1.0/groups/delta?$skiptoken=abc" },
			path:       "/v1.0/groups/delta",
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			az, _ := newDeltaAzure(t, 30)
			name := acct.newContainer("notdelta")
			env := acct.deltaSettings(t, az, name)
			env["GRAPH_USERS_EXPORT"] = "true"
			env["GRAPH_USERS_LOG_EACH"] = "true"
			runOnce(t, az, env).ok(t)
			good, _, _ := acct.readState(t, name)

			link := ""
			if tt.link == nil {
				link = usersNextLink(t, az)
			} else {
				link = tt.link(az.graphURL, good.Link)
			}
			st := map[string]any{"version": 1, "link": link, "linkSince": time.Now().UTC().Format(time.RFC3339)}
			if tt.exportFrom != nil {
				st["exportFrom"] = tt.exportFrom(az.graphURL, good.Link)
			}
			raw, err := json.Marshal(st)
			require.NoError(t, err)
			acct.writeState(t, name, raw)

			o := runOnce(t, az, env)
			o.ok(t)
			logs := strings.Join(o.logs, "\n")
			assert.Contains(t, logs, "warning: the delta state "+name+"/"+stateBlob+" holds a link that is not a users delta link of GRAPH_ENDPOINT")
			assert.Contains(t, logs, fmt.Sprintf("its path is %q", tt.path))
			assert.Contains(t, o.stderr, `"level":"warn"`)
			assert.NotContains(t, logs, "abc", "never a link's tokens")
			assert.Empty(t, o.changed, "no user taken for a change")
			require.NotNil(t, o.summary, "a full listing")
			assert.Equal(t, "full", o.summary["mode"])
			assert.Len(t, o.users, 30)
			saved, _, _ := acct.readState(t, name)
			assert.True(t, strings.HasPrefix(saved.Link, az.graphURL+fakeazure.UsersDeltaPath+"?$deltatoken="), saved.Link)
			assert.Empty(t, saved.ExportFrom)

			// And the next run is a round, as any other.
			require.NoError(t, az.graph.UpdateUser(5, fakeazure.UserUpdate{JobTitle: "After"}))
			o = runOnce(t, az, env)
			o.ok(t)
			assert.NotContains(t, strings.Join(o.logs, "\n"), "warning")
			require.NotNil(t, o.changes)
			assert.Equal(t, idSet([]int{5}), ids(o.changed))
		})
	}
}

// lossyProxy stands between the handler and Azurite. Armed, it sends the
// next write of a state blob on to Azurite, which applies it, and then loses
// the answer: the handler gets a 500 InternalError instead, or its
// connection is reset. Azurite never answers so; Azure Storage can.
type lossyProxy struct {
	url   string
	acct  *account
	fault atomic.Pointer[string]
	lost  atomic.Int32
}

func newLossyProxy(t *testing.T, acct *account) *lossyProxy {
	t.Helper()
	target, err := url.Parse(acct.srv.BlobEndpoint())
	require.NoError(t, err)
	target.Path = ""
	rp := httputil.NewSingleHostReverseProxy(target)
	p := &lossyProxy{acct: acct}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPut || !strings.Contains(r.URL.Path, "/state/") {
			rp.ServeHTTP(w, r)
			return
		}
		fault := p.fault.Swap(nil)
		if fault == nil {
			rp.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		rp.ServeHTTP(rec, r)
		if !assert.Equal(t, http.StatusCreated, rec.Code, "Azurite applied the write: %s", rec.Body) {
			return
		}
		p.lost.Add(1)
		if *fault == "reset" {
			conn, _, err := http.NewResponseController(w).Hijack()
			require.NoError(t, err)
			if tc, ok := conn.(*net.TCPConn); ok {
				_ = tc.SetLinger(0) // a reset, not a close
			}
			conn.Close()
			return
		}
		w.Header().Set("x-ms-error-code", "InternalError")
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = io.WriteString(w, "\ufeff<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>InternalError</Code>"+
			"<Message>The server encountered an internal error. Please retry the request.</Message></Error>")
	}))
	t.Cleanup(srv.Close)
	p.url = srv.URL
	return p
}

// connectionString reaches Azurite's account through the proxy.
func (p *lossyProxy) connectionString() string {
	return fmt.Sprintf("AccountName=%s;AccountKey=%s;BlobEndpoint=%s/%s", azurite.AccountName, azurite.AccountKey, p.url, azurite.AccountName)
}

// arm loses the answer to the next write of a state blob.
func (p *lossyProxy) arm(fault string) { p.fault.Store(&fault) }

func TestDeltaModeKnowsItsOwnStateWriteWhoseAnswerWasLost(t *testing.T) {
	acct := newAccount(t)
	for _, fault := range []string{"500", "reset"} {
		t.Run(fault, func(t *testing.T) {
			az, _ := newDeltaAzure(t, 250)
			name := acct.newContainer("lost")
			p := newLossyProxy(t, acct)
			env := acct.deltaSettings(t, az, name)
			env["AzureWebJobsStorage"] = p.connectionString()

			// The first state is created, and the answer lost: the retry
			// meets 409 BlobAlreadyExists, against its own write.
			p.arm(fault)
			o := runOnce(t, az, env)
			o.ok(t)
			require.Equal(t, int32(1), p.lost.Load(), "the answer to the state's creation was lost")
			require.NotNil(t, o.summary)
			assert.Equal(t, "full", o.summary["mode"])
			first, _, found := acct.readState(t, name)
			require.True(t, found)

			// A round's write after its page, the answer lost: the retry
			// meets 412 ConditionNotMet, against its own write.
			c := az.graph.Change(fakeazure.Changes{Update: 5})
			p.arm(fault)
			o = runOnce(t, az, env)
			o.ok(t)
			require.Equal(t, int32(2), p.lost.Load())
			require.NotNil(t, o.changes)
			assert.Equal(t, idSet(c.Updated), ids(o.changed))
			next, _, _ := acct.readState(t, name)
			assert.NotEqual(t, first.Link, next.Link, "the round's place is saved")

			// And the next run is a round from there, as any other.
			require.NoError(t, az.graph.UpdateUser(7, fakeazure.UserUpdate{JobTitle: "Then"}))
			o = runOnce(t, az, env)
			o.ok(t)
			require.NotNil(t, o.changes)
			assert.Equal(t, idSet([]int{7}), ids(o.changed))
		})
	}
}
