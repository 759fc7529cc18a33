package storage

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"graphuserstimer/internal/azurite"
)

// smallBlocks makes blob writers stage a block every 32 KiB, so a test of a few
// thousand users stages many.
func smallBlocks(c *Container) *Container {
	c.blockSize = 32 << 10
	return c
}

// record is the bytes the tests write at once: user i's JSON with a
// newline, so a blob's bytes split back into what was written.
func record(i int) []byte { return append(userLine(i), '\n') }

// records splits a blob's bytes at each newline.
func records(data []byte) []string {
	return strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
}

func TestBlobWriter(t *testing.T) {
	t.Parallel()
	s := azurite.Start(t)

	t.Run("writes from many goroutines arrive whole and once each, visible only after commit", func(t *testing.T) {
		t.Parallel()
		c := smallBlocks(openContainer(t, s))
		ctx := testContext(t)
		w, err := c.NewBlobWriter(ctx, "users.jsonl", "application/x-test")
		require.NoError(t, err)

		const writers, each = 8, 1000
		var wg sync.WaitGroup
		for g := range writers {
			wg.Go(func() {
				buf := make([]byte, 0, 1024)
				for i := g * each; i < (g+1)*each; i++ {
					buf = append(buf[:0], record(i)...)
					n, err := w.Write(buf)
					assert.NoError(t, err)
					assert.Equal(t, len(buf), n)
					clear(buf[:cap(buf)]) // the writer kept a copy, not buf
				}
			})
		}
		wg.Wait()

		assert.Empty(t, listed(t, c), "nothing is visible before the commit")
		_, _, err = c.Get(ctx, "users.jsonl")
		assert.ErrorIs(t, err, ErrNotFound)

		done, err := w.Commit(ctx)
		require.NoError(t, err)
		assert.Equal(t, "users.jsonl", done.Name)

		assert.Equal(t, []string{"users.jsonl"}, listed(t, c))
		d := download(t, c, "users.jsonl")
		assert.Equal(t, done.Bytes, d.contentLength, "the size reported is the blob's")
		assert.EqualValues(t, len(d.data), d.contentLength)
		assert.Equal(t, "application/x-test", d.contentType, "the content type is the caller's")
		assert.Empty(t, d.contentEncoding)

		seen := map[string]int{}
		for _, r := range records(d.data) {
			seen[r]++
		}
		assert.Len(t, seen, writers*each)
		for i := range writers * each {
			if !assert.Equal(t, 1, seen[string(userLine(i))], "user %d", i) {
				break
			}
		}

		blocks, err := c.client.NewBlockBlobClient("users.jsonl").GetBlockList(ctx, blockblob.BlockListTypeCommitted, nil)
		require.NoError(t, err)
		assert.Greater(t, len(blocks.CommittedBlocks), 5, "the blob was staged block by block")
		for _, b := range blocks.CommittedBlocks {
			assert.LessOrEqual(t, *b.Size, int64(32<<10))
		}
	})

	t.Run("bytes keep their order, across blocks", func(t *testing.T) {
		t.Parallel()
		c := smallBlocks(openContainer(t, s))
		w, err := c.NewBlobWriter(testContext(t), "ordered", "application/octet-stream")
		require.NoError(t, err)
		var want []byte
		for i := range 3000 {
			want = append(want, record(i)...)
		}
		// Writes of every size, some larger than a block.
		for rest, n := want, 1; len(rest) > 0; n = n*3 + 1 {
			k := min(n%(80<<10), len(rest))
			_, err := w.Write(rest[:k])
			require.NoError(t, err)
			rest = rest[k:]
		}
		done, err := w.Commit(testContext(t))
		require.NoError(t, err)
		assert.EqualValues(t, len(want), done.Bytes)
		assert.Equal(t, want, download(t, c, "ordered").data)
	})

	t.Run("abort leaves no blob", func(t *testing.T) {
		t.Parallel()
		c := smallBlocks(openContainer(t, s))
		w, err := c.NewBlobWriter(testContext(t), "users.jsonl", "application/x-test")
		require.NoError(t, err)
		for i := range 3000 {
			_, err := w.Write(record(i))
			require.NoError(t, err)
		}
		require.NotEmpty(t, w.ids, "blocks were staged")

		w.Abort()
		w.Abort() // again: nothing to do

		assert.Empty(t, listed(t, c))
		_, err = w.Commit(testContext(t))
		assert.ErrorContains(t, err, "blob users.jsonl: blob is aborted")
		_, err = w.Write([]byte(`{}`))
		assert.ErrorContains(t, err, "blob is aborted")
	})

	t.Run("a blob of no bytes is an empty blob", func(t *testing.T) {
		t.Parallel()
		c := openContainer(t, s)
		w, err := c.NewBlobWriter(testContext(t), "none", "application/x-test")
		require.NoError(t, err)
		done, err := w.Commit(testContext(t))
		require.NoError(t, err)
		assert.Zero(t, done.Bytes)
		assert.Equal(t, []string{"none"}, listed(t, c))
		assert.Empty(t, download(t, c, "none").data)
	})

	t.Run("a committed blob takes no more bytes", func(t *testing.T) {
		t.Parallel()
		c := openContainer(t, s)
		w, err := c.NewBlobWriter(testContext(t), "users.jsonl", "application/x-test")
		require.NoError(t, err)
		_, err = w.Write(record(1))
		require.NoError(t, err)
		_, err = w.Commit(testContext(t))
		require.NoError(t, err)

		_, err = w.Write(record(2))
		assert.ErrorContains(t, err, "blob is committed")
		_, err = w.Commit(testContext(t))
		assert.ErrorContains(t, err, "blob is committed")
		w.Abort() // does nothing to a committed blob
		assert.Equal(t, []string{"users.jsonl"}, listed(t, c))
		assert.Equal(t, string(record(1)), string(download(t, c, "users.jsonl").data))
	})
}

// TestWhenStorageStops stops Azurite in the middle of an export, as an
// account that goes away mid-run: the export fails with the facts and
// nothing becomes visible, and every call fails quickly as unreachable.
func TestWhenStorageStops(t *testing.T) {
	t.Parallel()
	s := azurite.Start(t)
	c := smallBlocks(openContainer(t, s))
	w, err := c.NewBlobWriter(testContext(t), "users.jsonl", "application/x-test")
	require.NoError(t, err)
	i := 0
	for ; i < 3000; i++ {
		_, err := w.Write(record(i))
		require.NoError(t, err)
	}
	require.NotEmpty(t, w.ids, "blocks were staged before the stop")

	s.Stop()

	t.Run("a blob in progress fails at its next block, and its commit too", func(t *testing.T) {
		start := time.Now()
		var writeErr error
		for ; writeErr == nil && time.Since(start) < 30*time.Second; i++ {
			_, writeErr = w.Write(record(i))
		}
		require.Error(t, writeErr, "a failed block fails the writes that follow")
		assert.ErrorIs(t, writeErr, ErrUnreachable)
		assert.Contains(t, writeErr.Error(), "stage block of "+c.Name()+"/users.jsonl: storage unreachable")
		t.Logf("Write failed %s after the stop: %v", time.Since(start).Round(time.Millisecond), writeErr)

		_, err = w.Commit(testContext(t))
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
				w, err := c.NewBlobWriter(testContext(t), "other.jsonl", "application/x-test")
				require.NoError(t, err)
				_, err = w.Write([]byte(`{"id":"1"}`))
				require.NoError(t, err)
				_, err = w.Commit(testContext(t))
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
