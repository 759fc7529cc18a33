package storage

import (
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"graphuserstimer/internal/azurite"
	"graphuserstimer/internal/fakeazure"
)

// smallBlocks makes exports stage a block every 32 KiB, so a test of a few
// thousand users stages many.
func smallBlocks(c *Container) *Container {
	c.blockSize = 32 << 10
	return c
}

func TestExport(t *testing.T) {
	t.Parallel()
	s := azurite.Start(t)

	t.Run("lines from many goroutines arrive once each, visible only after commit", func(t *testing.T) {
		t.Parallel()
		c := smallBlocks(openContainer(t, s))
		ctx := testContext(t)
		e, err := c.NewExport(ctx, "users.jsonl.gz")
		require.NoError(t, err)

		const writers, each = 8, 1000
		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() {
				buf := make([]byte, 0, 1024)
				for i := w * each; i < (w+1)*each; i++ {
					buf = append(buf[:0], userLine(i)...)
					assert.NoError(t, e.WriteLine(buf))
					clear(buf[:cap(buf)]) // the export kept a copy, not buf
				}
			})
		}
		wg.Wait()

		assert.Empty(t, listed(t, c), "nothing is visible before the commit")
		_, _, err = c.Get(ctx, "users.jsonl.gz")
		assert.ErrorIs(t, err, ErrNotFound)

		done, err := e.Commit(ctx)
		require.NoError(t, err)
		assert.Equal(t, "users.jsonl.gz", done.Name)
		assert.EqualValues(t, writers*each, done.Lines)

		assert.Equal(t, []string{"users.jsonl.gz"}, listed(t, c))
		d := download(t, c, "users.jsonl.gz")
		assert.Equal(t, done.Bytes, d.contentLength, "the size reported is the blob's")
		assert.EqualValues(t, len(d.data), d.contentLength)
		assert.Equal(t, "application/gzip", d.contentType)
		assert.Empty(t, d.contentEncoding, "no Content-Encoding: a download stays gzip")

		seen := map[string]int{}
		for _, line := range gunzipLines(t, d.data) {
			var u struct{ ID string }
			require.NoError(t, json.Unmarshal(line, &u))
			seen[u.ID]++
		}
		assert.Len(t, seen, writers*each)
		for i := range writers * each {
			if !assert.Equal(t, 1, seen[fakeazure.UserID(i)], "user %d", i) {
				break
			}
		}

		blocks, err := c.client.NewBlockBlobClient("users.jsonl.gz").GetBlockList(ctx, blockblob.BlockListTypeCommitted, nil)
		require.NoError(t, err)
		assert.Greater(t, len(blocks.CommittedBlocks), 5, "the export was staged block by block")
		for _, b := range blocks.CommittedBlocks {
			assert.LessOrEqual(t, *b.Size, int64(32<<10))
		}
	})

	t.Run("abort leaves no blob", func(t *testing.T) {
		t.Parallel()
		c := smallBlocks(openContainer(t, s))
		e, err := c.NewExport(testContext(t), "users.jsonl.gz")
		require.NoError(t, err)
		for i := range 3000 {
			require.NoError(t, e.WriteLine(userLine(i)))
		}
		require.NotEmpty(t, e.ids, "blocks were staged")

		e.Abort()
		e.Abort() // again: nothing to do

		assert.Empty(t, listed(t, c))
		_, err = e.Commit(testContext(t))
		assert.ErrorContains(t, err, "export users.jsonl.gz: export is aborted")
		assert.ErrorContains(t, e.WriteLine([]byte(`{}`)), "export is aborted")
	})

	t.Run("an empty export is an empty gzip file", func(t *testing.T) {
		t.Parallel()
		c := openContainer(t, s)
		e, err := c.NewExport(testContext(t), "none.jsonl.gz")
		require.NoError(t, err)
		done, err := e.Commit(testContext(t))
		require.NoError(t, err)
		assert.Zero(t, done.Lines)
		assert.Empty(t, gunzipLines(t, download(t, c, "none.jsonl.gz").data))
	})

	t.Run("a line must be one line", func(t *testing.T) {
		t.Parallel()
		c := openContainer(t, s)
		e, err := c.NewExport(testContext(t), "users.jsonl.gz")
		require.NoError(t, err)
		defer e.Abort()
		assert.ErrorContains(t, e.WriteLine([]byte("{\n}")), "export users.jsonl.gz: a line must not hold a newline")
		assert.ErrorContains(t, e.WriteLine(nil), "export users.jsonl.gz: empty line")
	})

	t.Run("a committed export takes no more lines", func(t *testing.T) {
		t.Parallel()
		c := openContainer(t, s)
		e, err := c.NewExport(testContext(t), "users.jsonl.gz")
		require.NoError(t, err)
		require.NoError(t, e.WriteLine(userLine(1)))
		_, err = e.Commit(testContext(t))
		require.NoError(t, err)

		assert.ErrorContains(t, e.WriteLine(userLine(2)), "export is committed")
		_, err = e.Commit(testContext(t))
		assert.ErrorContains(t, err, "export is committed")
		e.Abort() // does nothing to a committed export
		assert.Equal(t, []string{"users.jsonl.gz"}, listed(t, c))
	})
}

// TestWhenStorageStops stops Azurite in the middle of an export, as an
// account that goes away mid-run: the export fails with the facts and
// nothing becomes visible, and every call fails quickly as unreachable.
func TestWhenStorageStops(t *testing.T) {
	t.Parallel()
	s := azurite.Start(t)
	c := smallBlocks(openContainer(t, s))
	e, err := c.NewExport(testContext(t), "users.jsonl.gz")
	require.NoError(t, err)
	i := 0
	for ; i < 3000; i++ {
		require.NoError(t, e.WriteLine(userLine(i)))
	}
	require.NotEmpty(t, e.ids, "blocks were staged before the stop")

	s.Stop()

	t.Run("an export in progress fails at its next block, and its commit too", func(t *testing.T) {
		start := time.Now()
		var writeErr error
		for ; writeErr == nil && time.Since(start) < 30*time.Second; i++ {
			writeErr = e.WriteLine(userLine(i))
		}
		require.Error(t, writeErr, "a failed block fails the writes that follow")
		assert.ErrorIs(t, writeErr, ErrUnreachable)
		assert.Contains(t, writeErr.Error(), "stage block of "+c.Name()+"/users.jsonl.gz: storage unreachable")
		t.Logf("WriteLine failed %s after the stop: %v", time.Since(start).Round(time.Millisecond), writeErr)

		_, err = e.Commit(testContext(t))
		assert.ErrorIs(t, err, ErrUnreachable, "commit reports the failed block")
	})

	t.Run("every call fails within seconds as unreachable", func(t *testing.T) {
		calls := map[string]func() error{
			"create": func() error { return c.Create(testContext(t)) },
			"get": func() error {
				_, _, err := c.Get(testContext(t), "state.json")
				return err
			},
			"put": func() error {
				_, err := c.Put(testContext(t), "state.json", []byte(`{}`), "")
				return err
			},
			"commit": func() error {
				e, err := c.NewExport(testContext(t), "other.jsonl.gz")
				require.NoError(t, err)
				require.NoError(t, e.WriteLine([]byte(`{"id":"1"}`)))
				_, err = e.Commit(testContext(t))
				return err
			},
		}
		for name, call := range calls {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				start := time.Now()
				err := call()
				elapsed := time.Since(start)

				require.ErrorIs(t, err, ErrUnreachable)
				// Four tries 0.2 s, 0.6 s and 1.4 s apart; azblob's default
				// would take 7 s at least.
				assert.Less(t, elapsed, 10*time.Second, "bounded retries give up within seconds")
				assert.Contains(t, err.Error(), "storage unreachable: dial tcp 127.0.0.1:")
				assert.NotErrorIs(t, err, ErrNotFound)
				t.Logf("%s failed after %s: %v", name, elapsed.Round(time.Millisecond), err)
			})
		}
	})

	s.Restart()
	assert.Empty(t, listed(t, c), "nothing became visible")
}
