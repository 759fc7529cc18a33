package storage

import (
	"bytes"
	"compress/gzip"
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

// An export's blocks are 1 MiB, the size azblob's own UploadStream stages:
// a million users (about 360 MB of JSON, 43 MB compressed) take a few dozen
// blocks, far from Blob Storage's 50,000, which 1 MiB blocks reach at about
// 50 GB; and memory stays at three blocks, one filling and two uploading,
// whatever the export's size. The blocks are on the Go heap, whose goal is
// twice what is live: 4 MiB blocks raised the handler's peak RSS for a
// million users from 45 MiB to 63-68 MiB, past the 64 MiB it is meant to
// stay under; 1 MiB blocks to 52-53 MiB, for the same CPU (cmd/handler,
// BenchmarkExport).
const (
	defaultBlockSize = 1 << 20
	blocksInFlight   = 2
)

// gzipLevel is the level exports are compressed at: BestSpeed, the
// cheapest level that compresses. BenchmarkGzipLevels, on user lines as
// Graph sends them (2 cores, AMD EPYC, go1.26), measured per user in CPU:
// BestSpeed 1.7 to 2.8 µs for 56 bytes (6.4 times smaller);
// DefaultCompression 5 to 9 µs for 45 bytes, three times the CPU for a
// fifth less; HuffmanOnly 1.7 to 2.1 µs for 232 bytes, as costly and barely
// compressing; NoCompression 0.1 to 0.2 µs for 360 bytes. Whole exports to
// Azurite (BenchmarkExport) cost 2.4 to 2.5 µs a user at BestSpeed and
// 0.7 µs stored. The ranges are runs on a machine shared with other work.
// Against the listing's 2.5 µs a user, BestSpeed adds about as much CPU
// again, over the half this package aims at; only storing uncompressed
// meets that, for a blob 6.4 times bigger. Compression is kept because the
// export is a file people download, and the listing waits on Graph most of
// its time: the CPU is spent while it waits, not added to the run's.
const gzipLevel = gzip.BestSpeed

// ExportContentType is the Content-Type of an export: the bytes are a gzip
// file. Content-Encoding is left unset on purpose: with gzip there, many
// clients decompress while downloading and a saved .jsonl.gz is no longer
// gzip.
const ExportContentType = "application/gzip"

// Export streams JSON lines, gzip'd, to a block blob: full blocks are
// staged while lines are written, and the blob becomes visible only when
// Commit commits the block list. Its methods are safe for concurrent use.
type Export struct {
	c      *Container
	name   string
	client *blockblob.Client
	ctx    context.Context // bounds the staging of blocks
	cancel context.CancelFunc
	idBase [16]byte // random bytes 0-7; bytes 8-15 number the block

	mu     sync.Mutex
	zw     *gzip.Writer
	line   []byte // the line being written, with its newline
	block  []byte // the block being filled
	ids    []string
	lines  int64
	bytes  int64 // compressed bytes so far
	closed error // why no more lines are taken: committed or aborted

	free     chan []byte // block buffers not in use: blocksInFlight besides block
	staging  sync.WaitGroup
	errOnce  sync.Once
	stageErr error // the first failed stage, set once
	failed   chan struct{}
}

// Committed describes a committed export.
type Committed struct {
	// Name is the blob's name.
	Name string
	// Bytes is the blob's size: the compressed bytes.
	Bytes int64
	// Lines is how many lines it holds.
	Lines int64
}

var (
	errCommitted = errors.New("export is committed")
	errAborted   = errors.New("export is aborted")
)

// NewExport starts an export to the blob called name, which should end in
// .jsonl.gz. Nothing is sent until a block is full. ctx bounds the uploads
// of the blocks staged while lines are written; Commit has its own. End
// every export with Commit or Abort, which let its context go.
func (c *Container) NewExport(ctx context.Context, name string) (*Export, error) {
	if name == "" {
		return nil, errors.New("export blob name is empty")
	}
	e := &Export{
		c:      c,
		name:   name,
		client: c.client.NewBlockBlobClient(name),
		free:   make(chan []byte, blocksInFlight),
		failed: make(chan struct{}),
	}
	if _, err := rand.Read(e.idBase[:8]); err != nil {
		return nil, fmt.Errorf("export %s: block ids: %w", name, err)
	}
	e.ctx, e.cancel = context.WithCancel(ctx)
	for range blocksInFlight {
		e.free <- nil // allocated when first needed
	}
	e.block = make([]byte, 0, c.blockSize)
	zw, err := gzip.NewWriterLevel(blockWriter{e}, gzipLevel)
	if err != nil {
		return nil, err
	}
	e.zw = zw
	return e, nil
}

// WriteLine adds obj, one JSON object, as a line. obj must not hold a
// newline; it is copied, so the caller may reuse it when WriteLine returns.
// Lines written at once by many goroutines never interleave. After a block
// failed to upload, WriteLine returns that error.
func (e *Export) WriteLine(obj []byte) error {
	if len(obj) == 0 {
		return fmt.Errorf("export %s: empty line", e.name)
	}
	if bytes.IndexByte(obj, '\n') >= 0 {
		return fmt.Errorf("export %s: a line must not hold a newline", e.name)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed != nil {
		return fmt.Errorf("export %s: %w", e.name, e.closed)
	}
	if err := e.err(); err != nil {
		return err
	}
	// One write a line: gzip's per-call cost is worth saving.
	e.line = append(append(e.line[:0], obj...), '\n')
	if _, err := e.zw.Write(e.line); err != nil {
		return err
	}
	e.lines++
	return nil
}

// blockWriter receives the compressed stream, under e.mu, and stages each
// full block.
type blockWriter struct{ e *Export }

func (w blockWriter) Write(p []byte) (int, error) {
	e, n := w.e, len(p)
	for len(p) > 0 {
		room := cap(e.block) - len(e.block)
		k := min(room, len(p))
		e.block = append(e.block, p[:k]...)
		p = p[k:]
		e.bytes += int64(k)
		if len(e.block) == cap(e.block) {
			if err := e.stage(); err != nil {
				return 0, err
			}
		}
	}
	return n, nil
}

// stage uploads the full block in the background, once a free buffer is
// there for the next: while blocksInFlight blocks are uploading, it waits.
func (e *Export) stage() error {
	var next []byte
	select {
	case next = <-e.free:
	case <-e.failed:
		return e.err()
	}
	if next == nil {
		next = make([]byte, 0, e.c.blockSize)
	}
	block, id := e.block, e.nextID()
	e.ids = append(e.ids, id)
	e.block = next
	e.staging.Add(1)
	go func() {
		defer e.staging.Done()
		_, err := e.client.StageBlock(e.ctx, id, streaming.NopCloser(bytes.NewReader(block)), nil)
		if err != nil {
			e.fail(e.c.newError(e.ctx, opStage, e.name, err))
		}
		e.free <- block[:0]
	}()
	return nil
}

// nextID is the next block's ID: base64 of 16 bytes, so all have the same
// length as Blob Storage requires; random bytes keep two exports to one
// name from mixing their uncommitted blocks.
func (e *Export) nextID() string {
	b := e.idBase
	binary.BigEndian.PutUint64(b[8:], uint64(len(e.ids)))
	return base64.StdEncoding.EncodeToString(b[:])
}

// fail records the first failed stage and stops the others.
func (e *Export) fail(err error) {
	e.errOnce.Do(func() {
		e.stageErr = err
		close(e.failed)
		e.cancel()
	})
}

// err is the first failed stage's error, if any.
func (e *Export) err() error {
	select {
	case <-e.failed:
		return e.stageErr
	default:
		return nil
	}
}

// Commit writes the last block, waits for every block and commits the
// block list: only now does the blob become visible, whole. After a failed
// block nothing is committed and the error is that block's.
func (e *Export) Commit(ctx context.Context) (Committed, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed != nil {
		return Committed{}, fmt.Errorf("export %s: %w", e.name, e.closed)
	}
	e.closed = errCommitted
	defer e.cancel()
	err := e.zw.Close()
	if err == nil && len(e.block) > 0 {
		err = e.stageLast(ctx)
	}
	e.staging.Wait()
	if stageErr := e.err(); stageErr != nil {
		return Committed{}, stageErr
	}
	if err != nil {
		return Committed{}, err
	}
	_, err = e.client.CommitBlockList(ctx, e.ids, &blockblob.CommitBlockListOptions{
		HTTPHeaders: &blob.HTTPHeaders{BlobContentType: to(ExportContentType)},
	})
	if err != nil {
		return Committed{}, e.c.newError(ctx, opCommit, e.name, err)
	}
	return Committed{Name: e.name, Bytes: e.bytes, Lines: e.lines}, nil
}

// stageLast uploads the last, partial block with Commit's context.
func (e *Export) stageLast(ctx context.Context) error {
	id := e.nextID()
	e.ids = append(e.ids, id)
	if _, err := e.client.StageBlock(ctx, id, streaming.NopCloser(bytes.NewReader(e.block)), nil); err != nil {
		return e.c.newError(ctx, opStage, e.name, err)
	}
	return nil
}

// Abort gives the export up: nothing becomes visible. Blocks already
// staged are left for Blob Storage to drop (it drops uncommitted blocks
// after 7 days). Aborting a committed or aborted export does nothing.
func (e *Export) Abort() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed != nil {
		return
	}
	e.closed = errAborted
	e.cancel()
	e.staging.Wait()
}
