package usersjob

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
)

// jsonLinesGzip is the exports' format: one JSON object a line, each line
// ending in a newline, the whole gzip'd.
var jsonLinesGzip = format{
	ext: ".jsonl.gz",
	// The bytes are a gzip file. Content-Encoding is left unset on purpose:
	// with gzip there, many clients decompress while downloading and a saved
	// .jsonl.gz is no longer gzip.
	contentType: "application/gzip",
	newEncoder: func(w io.Writer) (encoder, error) {
		zw, err := gzip.NewWriterLevel(w, gzipLevel)
		if err != nil {
			return nil, err
		}
		return &gzipLines{zw: zw}, nil
	},
}

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

// gzipLines writes objects as JSON lines into a gzip stream.
type gzipLines struct {
	zw   *gzip.Writer
	line []byte // the line being written, with its newline
}

// Encode writes obj, which must be one line, and its newline: one Write a
// line, as gzip's per-call cost is worth saving.
func (g *gzipLines) Encode(obj []byte) error {
	if len(obj) == 0 {
		return errors.New("empty line")
	}
	if bytes.IndexByte(obj, '\n') >= 0 {
		return errors.New("a line must not hold a newline")
	}
	g.line = append(append(g.line[:0], obj...), '\n')
	_, err := g.zw.Write(g.line)
	return err
}

// Close writes the rest of the gzip stream.
func (g *gzipLines) Close() error { return g.zw.Close() }
