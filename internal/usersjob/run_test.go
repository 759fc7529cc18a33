package usersjob_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"graphuserstimer/internal/azurite"
	"graphuserstimer/internal/fakeazure"
	"graphuserstimer/internal/graph"
	"graphuserstimer/internal/joblog"
	"graphuserstimer/internal/storage"
	"graphuserstimer/internal/usersjob"
)

// fixture is a fake tenant and a container of Azurite, and the jobs a test
// builds on them, each writing its lines to stdout.
type fixture struct {
	t      *testing.T
	tn     *fakeazure.Tenant
	client *graph.Client
	srv    *azurite.Server
	store  *storage.Container
	stall  atomic.Bool // stalls the delta pages after the first
	// hook, when set, runs once as the next delta page is asked for.
	hook atomic.Pointer[func()]
	// usersHook, when set, runs once as /v1.0/users page usersAt is asked for.
	usersHook atomic.Pointer[func()]
	usersAt   int
	// stdout is the jobs' output, which joblog serialises.
	stdout bytes.Buffer
}

// newFixture starts a tenant of users users, whose delta pages after the
// first stall while f.stall is set, and a container on a new Azurite.
func newFixture(t *testing.T, users int) *fixture {
	f := &fixture{t: t, srv: azurite.Start(t)}
	f.tn = fakeazure.NewTenant(t, fakeazure.TenantOptions{Graph: fakeazure.GraphOptions{
		Users: users,
		Fault: func(pr fakeazure.PageRequest) fakeazure.Fault {
			if h := f.hook.Swap(nil); h != nil && pr.Path == fakeazure.UsersDeltaPath {
				(*h)()
			}
			if pr.Path != fakeazure.UsersDeltaPath && pr.Page == f.usersAt {
				if h := f.usersHook.Swap(nil); h != nil {
					(*h)()
				}
			}
			if f.stall.Load() && pr.Path == fakeazure.UsersDeltaPath && pr.Page > 0 {
				return fakeazure.Fault{Stall: true}
			}
			return fakeazure.Fault{}
		},
	}})
	var err error
	f.client, err = graph.NewClient(f.tn.URL, f.tn.Credential(t), &graph.ClientOptions{Transport: f.tn.Transport()})
	require.NoError(t, err)
	conn, err := storage.ParseConnection("AzureWebJobsStorage", func(k string) string {
		if k == "AzureWebJobsStorage" {
			return f.srv.ConnectionString()
		}
		return ""
	}, "")
	require.NoError(t, err)
	f.store, err = storage.Open(conn, "jobs", &storage.Options{Transport: f.srv.Client()})
	require.NoError(t, err)
	return f
}

// onDelta runs h as the next delta page is asked for.
func (f *fixture) onDelta(h func()) { f.hook.Store(&h) }

// job is a job of function F of the app "app" with o's mode and
// timeout, logging and exporting every user or change, 100 a page.
func (f *fixture) job(o usersjob.Options) *usersjob.Job {
	o.Query = graph.Query{Select: []string{"id", "displayName", "jobTitle"}, PageSize: 100, Streams: o.Query.Streams}
	o.LogEach, o.Export = true, true
	o.Store, o.StorageSetting, o.Function, o.HostID = f.store, "AzureWebJobsStorage", "F", "app"
	return usersjob.New(f.client, joblog.New(&f.stdout, io.Discard, slog.LevelInfo), o)
}

// run runs job and returns its response lines and the stdout lines it
// wrote, by msg.
func (f *fixture) run(job *usersjob.Job) ([]string, map[string][]map[string]any) {
	f.t.Helper()
	f.stdout.Reset()
	logs, err := job.Run(context.Background())
	require.NoError(f.t, err)
	return logs, byMsg(f.t, f.stdout.String())
}

// byMsg parses JSON lines and groups them by msg.
func byMsg(t *testing.T, out string) map[string][]map[string]any {
	t.Helper()
	lines := map[string][]map[string]any{}
	for line := range strings.Lines(out) {
		var obj map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &obj), line)
		lines[obj["msg"].(string)] = append(lines[obj["msg"].(string)], obj)
	}
	return lines
}

// ids is the sorted ids of lines.
func ids(lines []map[string]any) []string {
	var out []string
	for _, l := range lines {
		out = append(out, l["id"].(string))
	}
	slices.Sort(out)
	return out
}

// userIDs is the sorted ids of the users of indexes is.
func userIDs(is ...[]int) []string {
	var out []string
	for _, group := range is {
		for _, i := range group {
			out = append(out, fakeazure.UserID(i))
		}
	}
	slices.Sort(out)
	return out
}

// blobs is the names of the container's blobs under prefix.
func (f *fixture) blobs(prefix string) []string {
	f.t.Helper()
	var names []string
	pager := containerClient(f.t, f.srv, "jobs").NewListBlobsFlatPager(nil)
	for pager.More() {
		page, err := pager.NextPage(context.Background())
		require.NoError(f.t, err)
		for _, b := range page.Segment.BlobItems {
			if strings.HasPrefix(*b.Name, prefix) {
				names = append(names, *b.Name)
			}
		}
	}
	return names
}

// exported is the lines of the gzip'd export called name, each an object.
func (f *fixture) exported(name string) []map[string]any {
	f.t.Helper()
	resp, err := containerClient(f.t, f.srv, "jobs").NewBlobClient(name).DownloadStream(context.Background(), nil)
	require.NoError(f.t, err)
	defer resp.Body.Close()
	assert.Equal(f.t, "application/gzip", *resp.ContentType)
	zr, err := gzip.NewReader(resp.Body)
	require.NoError(f.t, err)
	var lines []map[string]any
	sc := bufio.NewScanner(zr)
	for sc.Scan() {
		var obj map[string]any
		require.NoError(f.t, json.Unmarshal(sc.Bytes(), &obj), "one object a line: %s", sc.Bytes())
		lines = append(lines, obj)
	}
	require.NoError(f.t, sc.Err())
	return lines
}

// savedState is the state blob of function F of the app "app".
type savedState struct {
	Version   int
	Link      string
	LinkSince time.Time
	Select    []string

	ExportFrom string
	Last       struct {
		Mode                           string
		Users, Changed, Removed, Pages int
		Stopped                        bool
	}
	WriteID string
}

func (f *fixture) state() (savedState, []byte) {
	f.t.Helper()
	data, _, err := f.store.Get(context.Background(), "state/app/F.json")
	require.NoError(f.t, err)
	var st savedState
	require.NoError(f.t, json.Unmarshal(data, &st))
	return st, data
}

// drop is the members of obj but those that say when.
func drop(obj map[string]any, keys ...string) map[string]any {
	out := map[string]any{}
	for k, v := range obj {
		if !slices.Contains(keys, k) {
			out[k] = v
		}
	}
	return out
}

func TestAFullListingLogsAndExportsEveryUserOnce(t *testing.T) {
	f := newFixture(t, 1234)
	logs, out := f.run(f.job(usersjob.Options{Query: graph.Query{Streams: 4}}))

	all := make([]int, 1234)
	for i := range all {
		all[i] = i
	}
	assert.Equal(t, userIDs(all), ids(out["user"]), "every user logged once")

	names := f.blobs("users/app/")
	require.Len(t, names, 1, "one export, under the host ID")
	assert.Regexp(t, `^users/app/\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d{3}Z\.jsonl\.gz$`, names[0])
	exp := f.exported(names[0])
	require.Len(t, exp, 1234)
	logged := map[string]map[string]any{}
	for _, l := range out["user"] {
		logged[l["id"].(string)] = drop(l, "time", "level", "msg")
	}
	for _, l := range exp {
		assert.Equal(t, logged[l["id"].(string)], l, "the export's line is the log line's user")
	}

	require.Len(t, out["users listed"], 1)
	res := out["users listed"][0]
	assert.Equal(t, "full", res["mode"])
	assert.EqualValues(t, 1234, res["users"])
	assert.Equal(t, names[0], res["export"])
	assert.Positive(t, res["export_bytes"])
	require.Len(t, logs, 1)
	assert.Contains(t, logs[0], "Listed 1234 users on ")
	assert.Contains(t, logs[0], " Exported to jobs/"+names[0]+" (")
	assert.Empty(t, f.blobs("state/"), "list mode keeps no state")
}

func TestDeltaRoundsReportEachChangeOnceAndKeepTheirPlace(t *testing.T) {
	f := newFixture(t, 300)
	now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	job := f.job(usersjob.Options{Mode: usersjob.Delta, Now: func() time.Time { return now }})

	// The first run lists every user and keeps a link to now.
	_, out := f.run(job)
	assert.Len(t, out["user"], 300)
	require.Len(t, out["users listed"], 1)
	assert.Equal(t, "full", out["users listed"][0]["mode"])
	st, _ := f.state()
	assert.Equal(t, "full", st.Last.Mode)
	assert.Equal(t, 300, st.Last.Users)
	assert.Contains(t, st.Link, "/v1.0/users/delta?")
	assert.Equal(t, []string{"id", "displayName", "jobTitle"}, st.Select)
	assert.Len(t, f.blobs("users/app/"), 1)

	// A round reports exactly what changed since.
	changed := f.tn.Graph.Change(fakeazure.Changes{Add: 2, Update: 5, HardDelete: 3})
	now = now.Add(time.Hour)
	logs, out := f.run(job)
	assert.Equal(t, userIDs(changed.Added, changed.Updated), ids(out["user changed"]))
	assert.Equal(t, userIDs(changed.HardDeleted), ids(out["user removed"]))
	for _, l := range out["user removed"] {
		assert.Equal(t, "deleted", l["reason"])
	}
	require.Len(t, out["changes listed"], 1)
	res := out["changes listed"][0]
	assert.EqualValues(t, 7, res["changed"])
	assert.EqualValues(t, 3, res["removed"])
	names := f.blobs("changes/app/")
	require.Len(t, names, 1)
	assert.Equal(t, names[0], res["export"])
	assert.Len(t, f.exported(names[0]), 10, "every change, removals included, in the export")
	assert.Contains(t, logs[len(logs)-1], "Listed 10 changes (7 new or updated users, 3 removed)")
	st, _ = f.state()
	assert.Equal(t, "delta", st.Last.Mode)
	assert.Equal(t, 7, st.Last.Changed)
	assert.Equal(t, 3, st.Last.Removed)
	assert.Empty(t, st.ExportFrom, "the export is committed")
	assert.Equal(t, now, st.LinkSince, "the round's deltaLink is from now")

	// A round with nothing new writes no blob and says so.
	logs, out = f.run(job)
	assert.Empty(t, out["user changed"])
	assert.Empty(t, out["user removed"])
	assert.Equal(t, false, out["changes listed"][0]["exported"])
	assert.Contains(t, logs[len(logs)-1], "Nothing to export: no blob written.")
	assert.Len(t, f.blobs("changes/app/"), 1)
}

func TestARoundStoppedAtItsDeadlineCarriesOnNextRun(t *testing.T) {
	f := newFixture(t, 400)
	job := f.job(usersjob.Options{Mode: usersjob.Delta, RunTimeout: 2 * time.Second})
	f.run(job)
	changed := f.tn.Graph.Change(fakeazure.Changes{Update: 250})

	// The round's second page never comes: the run stops at its deadline,
	// keeps its place and succeeds.
	f.stall.Store(true)
	logs, out := f.run(job)
	first := out["user changed"]
	assert.Len(t, ids(first), 200, "the first page's changes")
	require.Len(t, out["changes listed"], 1)
	assert.Equal(t, true, out["changes listed"][0]["stopped"])
	assert.Contains(t, strings.Join(logs, "\n"), "warning: the delta round reached the run's deadline of 2s after 1 page")
	st, _ := f.state()
	assert.True(t, st.Last.Stopped)
	assert.Empty(t, st.ExportFrom, "what was read is exported")
	assert.Contains(t, st.Link, "$skiptoken=", "the place is the round's next page")
	require.Len(t, f.blobs("changes/app/"), 1)

	// The next run reads the rest, and nothing twice.
	f.stall.Store(false)
	_, out = f.run(job)
	rest := out["user changed"]
	assert.Len(t, ids(rest), 50)
	assert.Equal(t, userIDs(changed.Updated), ids(append(first, rest...)))
	st, _ = f.state()
	assert.False(t, st.Last.Stopped)
	assert.Contains(t, st.Link, "$deltatoken=")
	assert.Len(t, f.blobs("changes/app/"), 2, "each run's changes in an export of their own")
}

func TestAnExpiredLinkListsEveryUserAgain(t *testing.T) {
	f := newFixture(t, 150)
	job := f.job(usersjob.Options{Mode: usersjob.Delta})
	f.run(job)
	before, _ := f.state()
	f.tn.Graph.ExpireDeltaLinks(fakeazure.ExpiryGone)
	added := f.tn.Graph.AddUsers(1)

	logs, out := f.run(job)
	assert.Contains(t, strings.Join(logs, "\n"), "warning: Graph no longer knows the saved delta link")
	assert.Len(t, out["user"], 151, "every user, the new one included")
	assert.Contains(t, ids(out["user"]), fakeazure.UserID(added[0]))
	assert.Empty(t, out["changes listed"])
	assert.Equal(t, "full", out["users listed"][0]["mode"])
	after, _ := f.state()
	assert.Equal(t, "full", after.Last.Mode)
	assert.NotEqual(t, before.Link, after.Link, "a new link is kept")
	assert.Len(t, f.blobs("users/app/"), 2)
	assert.Empty(t, f.blobs("changes/app/"), "the refused round exported nothing")
}

func TestAStateSomeoneElseWroteIsNotOverwritten(t *testing.T) {
	f := newFixture(t, 150)
	job := f.job(usersjob.Options{Mode: usersjob.Delta})
	f.run(job)
	f.tn.Graph.Change(fakeazure.Changes{Update: 3})

	// Another writer replaces the state once the round has read it, as it
	// asks Graph for its first page.
	theirs := []byte(`{"version":1,"link":"https://graph.microsoft.com/v1.0/users/delta?$deltatoken=theirs","linkSince":"2026-01-01T00:00:00Z"}`)
	f.onDelta(func() {
		_, err := f.store.Put(context.Background(), "state/app/F.json", theirs, "*")
		assert.NoError(t, err)
	})

	_, err := job.Run(context.Background())
	require.Error(t, err)
	assert.ErrorIs(t, err, storage.ErrConflict)
	assert.Contains(t, err.Error(), "someone else wrote it since this run read it")
	assert.Contains(t, err.Error(), "nothing was overwritten")
	_, data := f.state()
	assert.Equal(t, string(theirs), string(data), "their state stands")
	assert.Empty(t, f.blobs("changes/app/"), "a round that could not keep its place exports nothing")
}

func TestAnExportThatCannotBeSavedSaysWhatToDoOnce(t *testing.T) {
	f := newFixture(t, 1000)
	job := f.job(usersjob.Options{Query: graph.Query{Streams: 1}})
	// Storage stops while the listing runs, after the container was made:
	// the export's one block can be neither staged nor committed.
	f.usersAt = 5
	stop := f.srv.Stop
	f.usersHook.Store(&stop)
	_, err := job.Run(context.Background())
	require.Error(t, err)
	msg := err.Error()
	assert.Contains(t, msg, "listed 1000 users on 10 pages, then could not save their export")
	assert.Equal(t, 1, strings.Count(msg, "the storage account did not answer"), "the advice is given once: %s", msg)

	f.srv.Restart()
	assert.Empty(t, f.blobs("users/"), "no export is ever partly visible")
}
