package usersjob

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"graphuserstimer/internal/azurite"
	"graphuserstimer/internal/storage"
)

// cutTransport sends each request to Azurite; armed, it ends the caller's
// context once storage has answered the next PUT, and reports that instead
// of the answer: the blob was written, but the writer cannot know it, as
// when a run's deadline comes while storage's answer is on its way.
type cutTransport struct {
	next   *http.Client
	cancel context.CancelFunc
	armed  atomic.Bool
}

func (c *cutTransport) Do(req *http.Request) (*http.Response, error) {
	resp, err := c.next.Do(req)
	if err == nil && req.Method == http.MethodPut && c.armed.CompareAndSwap(true, false) {
		resp.Body.Close()
		c.cancel()
		return nil, req.Context().Err()
	}
	return resp, err
}

func TestStateWriteCutShortIsNoConflictWithItself(t *testing.T) {
	srv := azurite.Start(t)
	conn, err := storage.ParseConnection("AzureWebJobsStorage", func(k string) string {
		if k == "AzureWebJobsStorage" {
			return srv.ConnectionString()
		}
		return ""
	}, "")
	require.NoError(t, err)
	bg := context.Background()
	runCtx, cancel := context.WithCancel(bg)
	defer cancel()
	tr := &cutTransport{next: srv.Client(), cancel: cancel}
	store, err := storage.Open(conn, "state-cut", &storage.Options{Transport: tr})
	require.NoError(t, err)
	require.NoError(t, store.Create(bg))
	linkOf := func() string {
		other := &stateBlob{store: store, name: stateName("app", "F")}
		st, found, err := other.read(bg)
		require.NoError(t, err)
		require.True(t, found)
		return st.Link
	}

	b := &stateBlob{store: store, name: stateName("app", "F")}
	require.NoError(t, b.write(bg, state{Link: "first"}))
	tr.armed.Store(true)
	require.ErrorIs(t, b.write(runCtx, state{Link: "second"}), context.Canceled)
	require.Equal(t, "second", linkOf(), "storage wrote it all the same")

	// The run keeps its place once more, after its end.
	require.NoError(t, b.write(bg, state{Link: "third"}), "the blob holds what this run wrote: no one else's")
	assert.Equal(t, "third", linkOf())

	// A write cut short before it was sent, then someone else's write:
	// the run's next write loses.
	done, stop := context.WithCancel(bg)
	stop()
	require.Error(t, b.write(done, state{Link: "never sent"}))
	_, etag, err := store.Get(bg, stateName("app", "F"))
	require.NoError(t, err)
	_, err = store.Put(bg, stateName("app", "F"), []byte(`{"version":1,"link":"theirs"}`), etag)
	require.NoError(t, err)
	require.ErrorIs(t, b.write(bg, state{Link: "fourth"}), storage.ErrConflict)
	assert.Equal(t, "theirs", linkOf())
}
