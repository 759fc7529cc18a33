package storage

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
)

// A blob writer's blocks are 1 MiB, the size azblob's own UploadStream
// stages: a million users (about 360 MB of JSON, 43 MB compressed) take a
// few dozen blocks, far from Blob Storage's 50,000, which 1 MiB blocks reach
// at about 50 GB; and memory stays at three blocks, one filling and two
// uploading, whatever the blob's size. The blocks are on the Go heap, whose
// goal is twice what is live: 4 MiB blocks raised the handler's peak RSS for
// a million users from 45 MiB to 63-68 MiB, past the 64 MiB it is meant to
// stay under; 1 MiB blocks to 52-53 MiB, for the same CPU (cmd/handler,
// BenchmarkExport).
const (
	defaultBlockSize = 1 << 20
	blocksInFlight   = 2
)

// BlobWriter streams bytes to a block blob: full blocks are staged while
// bytes are written, and the blob becomes visible only when Commit commits
// the block list. What the bytes are is the caller's: BlobWriter neither
// encodes nor frames them. Its methods are safe for concurrent use: the
// bytes of one Write stay together, those of writes made at once by many
// goroutines in no given order.
type BlobWriter struct {
	c           *Container
	name        string
	contentType string
	client      *blockblob.Client
	ctx         context.Context // bounds the staging of blocks
	cancel      context.CancelFunc
	idBase      [16]byte // random bytes 0-7; bytes 8-15 number the block

	mu     sync.Mutex
	block  []byte // the block being filled
	ids    []string
	bytes  int64 // written so far
	closed error // why no more bytes are taken: committed or aborted

	free     chan []byte // block buffers not in use: blocksInFlight besides block
	staging  sync.WaitGroup
	errOnce  sync.Once
	stageErr error // the first failed stage, set once
	failed   chan struct{}
}

// Committed describes a committed blob.
type Committed struct {
	// Name is the blob's name.
	Name string
	// Bytes is the blob's size.
	Bytes int64
}

var (
	errCommitted = errors.New("blob is committed")
	errAborted   = errors.New("blob is aborted")
)

// NewBlobWriter starts writing the block blob called name, whose
// Content-Type will be contentType. Nothing is sent until a block is full.
// ctx bounds the uploads of the blocks staged while bytes are written;
// Commit has its own. End every writer with Commit or Abort, which let its
// context go.
func (c *Container) NewBlobWriter(ctx context.Context, name, contentType string) (*BlobWriter, error) {
	if name == "" {
		return nil, errors.New("blob name is empty")
	}
	w := &BlobWriter{
		c:           c,
		name:        name,
		contentType: contentType,
		client:      c.client.NewBlockBlobClient(name),
		free:        make(chan []byte, blocksInFlight),
		failed:      make(chan struct{}),
	}
	if _, err := rand.Read(w.idBase[:8]); err != nil {
		return nil, fmt.Errorf("blob %s: block ids: %w", name, err)
	}
	w.ctx, w.cancel = context.WithCancel(ctx)
	for range blocksInFlight {
		w.free <- nil // allocated when first needed
	}
	w.block = make([]byte, 0, c.blockSize)
	return w, nil
}

// Write adds p to the blob, staging each block it fills; p is copied, so
// the caller may reuse it when Write returns. After a block failed to
// upload, Write returns that error.
func (w *BlobWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed != nil {
		return 0, fmt.Errorf("blob %s: %w", w.name, w.closed)
	}
	if err := w.err(); err != nil {
		return 0, err
	}
	n := len(p)
	for len(p) > 0 {
		k := min(cap(w.block)-len(w.block), len(p))
		w.block = append(w.block, p[:k]...)
		p = p[k:]
		w.bytes += int64(k)
		if len(w.block) == cap(w.block) {
			if err := w.stage(); err != nil {
				return n - len(p), err
			}
		}
	}
	return n, nil
}

// stage uploads the full block in the background, once a free buffer is
// there for the next: while blocksInFlight blocks are uploading, it waits.
func (w *BlobWriter) stage() error {
	var next []byte
	select {
	case next = <-w.free:
	case <-w.failed:
		return w.err()
	}
	if next == nil {
		next = make([]byte, 0, w.c.blockSize)
	}
	block, id := w.block, w.nextID()
	w.ids = append(w.ids, id)
	w.block = next
	w.staging.Add(1)
	go func() {
		defer w.staging.Done()
		_, err := w.client.StageBlock(w.ctx, id, streaming.NopCloser(bytes.NewReader(block)), nil)
		if err != nil {
			w.fail(w.c.newError(w.ctx, opStage, w.name, err))
		}
		w.free <- block[:0]
	}()
	return nil
}

// nextID is the next block's ID: base64 of 16 bytes, so all have the same
// length as Blob Storage requires; random bytes keep two writers to one
// name from mixing their uncommitted blocks.
func (w *BlobWriter) nextID() string {
	b := w.idBase
	binary.BigEndian.PutUint64(b[8:], uint64(len(w.ids)))
	return base64.StdEncoding.EncodeToString(b[:])
}

// fail records the first failed stage and stops the others.
func (w *BlobWriter) fail(err error) {
	w.errOnce.Do(func() {
		w.stageErr = err
		close(w.failed)
		w.cancel()
	})
}

// err is the first failed stage's error, if any.
func (w *BlobWriter) err() error {
	select {
	case <-w.failed:
		return w.stageErr
	default:
		return nil
	}
}

// Commit stages the last block, waits for every block and commits the
// block list: only now does the blob become visible, whole. After a failed
// block nothing is committed and the error is that block's.
func (w *BlobWriter) Commit(ctx context.Context) (Committed, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed != nil {
		return Committed{}, fmt.Errorf("blob %s: %w", w.name, w.closed)
	}
	w.closed = errCommitted
	defer w.cancel()
	var err error
	if len(w.block) > 0 {
		err = w.stageLast(ctx)
	}
	w.staging.Wait()
	if stageErr := w.err(); stageErr != nil {
		return Committed{}, stageErr
	}
	if err != nil {
		return Committed{}, err
	}
	_, err = w.client.CommitBlockList(ctx, w.ids, &blockblob.CommitBlockListOptions{
		HTTPHeaders: &blob.HTTPHeaders{BlobContentType: to(w.contentType)},
	})
	if err != nil {
		return Committed{}, w.c.newError(ctx, opCommit, w.name, err)
	}
	return Committed{Name: w.name, Bytes: w.bytes}, nil
}

// stageLast uploads the last, partial block with Commit's context.
func (w *BlobWriter) stageLast(ctx context.Context) error {
	id := w.nextID()
	w.ids = append(w.ids, id)
	if _, err := w.client.StageBlock(ctx, id, streaming.NopCloser(bytes.NewReader(w.block)), nil); err != nil {
		return w.c.newError(ctx, opStage, w.name, err)
	}
	return nil
}

// Abort gives the blob up: nothing becomes visible. Blocks already staged
// are left for Blob Storage to drop (it drops uncommitted blocks after 7
// days). Aborting a committed or aborted writer does nothing.
func (w *BlobWriter) Abort() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed != nil {
		return
	}
	w.closed = errAborted
	w.cancel()
	w.staging.Wait()
}
