// Package joblog writes the job's log lines in the shape the Functions host
// reads: JSON lines, debug and info on stdout, warnings and errors on stderr
// (the host files stderr lines as errors, or as warnings when they contain
// "warn", which the lower-case level makes sure of).
package joblog

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"
	"unicode/utf8"
)

// Output is the job's two log streams: its output (user lines and
// summaries), always written to stdout, and its diagnostics, written at
// their level or above, info to stdout, warnings and errors to stderr.
type Output struct {
	stdout  *syncWriter
	logger  *slog.Logger
	results *slog.Logger
}

// New returns an Output whose diagnostics are written at level and above.
func New(stdout, stderr io.Writer, level slog.Leveler) *Output {
	out := &syncWriter{w: stdout}
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: lowerLevel}
	h := splitHandler{
		out: slog.NewJSONHandler(out, opts),
		err: slog.NewJSONHandler(&syncWriter{w: stderr}, opts),
	}
	results := slog.NewJSONHandler(out, &slog.HandlerOptions{ReplaceAttr: lowerLevel})
	return &Output{stdout: out, logger: slog.New(h), results: slog.New(results)}
}

// Logger returns the structured logger of diagnostics over both streams.
func (o *Output) Logger() *slog.Logger { return o.logger }

// Results returns the logger of the job's own output, such as a run's
// summary: info lines on stdout, written whatever the level of diagnostics.
func (o *Output) Results() *slog.Logger { return o.results }

// lowerLevel writes levels in lower case: "info", "warn", "error".
func lowerLevel(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && a.Key == slog.LevelKey {
		if l, ok := a.Value.Any().(slog.Level); ok {
			return slog.String(slog.LevelKey, string(bytes.ToLower([]byte(l.String()))))
		}
	}
	return a
}

// splitHandler sends warnings and errors to one handler, the rest to another.
type splitHandler struct{ out, err slog.Handler }

func (h splitHandler) pick(l slog.Level) slog.Handler {
	if l >= slog.LevelWarn {
		return h.err
	}
	return h.out
}

func (h splitHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.pick(l).Enabled(ctx, l)
}

func (h splitHandler) Handle(ctx context.Context, r slog.Record) error {
	return h.pick(r.Level).Handle(ctx, r)
}

func (h splitHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return splitHandler{out: h.out.WithAttrs(as), err: h.err.WithAttrs(as)}
}

func (h splitHandler) WithGroup(name string) slog.Handler {
	return splitHandler{out: h.out.WithGroup(name), err: h.err.WithGroup(name)}
}

// syncWriter makes each Write whole: lines from different writers never
// interleave.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// Objects returns a writer of info lines that carry a JSON object's members
// at the top level, after time, level and msg: {"time":..,"msg":"user","id":..}.
// They are the job's output, written whatever the level of diagnostics.
func (o *Output) Objects(msg string) *ObjectWriter {
	head, _ := json.Marshal(msg)
	return &ObjectWriter{w: o.stdout, msg: head}
}

// flushAt is how many bytes of lines an ObjectWriter gathers before writing.
const flushAt = 64 << 10

// ObjectWriter writes one log line per JSON object, passing the object's
// bytes through rather than decoding and encoding them again. Every line is
// valid UTF-8 JSON all the same: invalid UTF-8 becomes \ufffd, and U+2028
// and U+2029 are escaped, as log/slog and encoding/json write them. Lines
// are gathered and written whole; call Flush at the end. It is not safe for
// concurrent use.
type ObjectWriter struct {
	w   io.Writer
	msg []byte
	buf []byte
	err error
}

// Write adds one line for obj, which must be a valid JSON object.
func (ow *ObjectWriter) Write(obj []byte) error {
	if ow.err != nil {
		return ow.err
	}
	b := append(ow.buf, `{"time":"`...)
	b = time.Now().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","level":"info","msg":`...)
	b = append(b, ow.msg...)
	at := len(b)
	b, err := AppendLine(b, obj)
	if err != nil {
		ow.buf = b[:0]
		return fmt.Errorf("log line: %w", err)
	}
	// The object's members follow msg: its brace goes, a comma comes,
	// unless it has no member.
	if rest := bytes.TrimLeft(b[at+1:], " \t"); len(rest) > 0 && rest[0] == '}' {
		b = append(b[:at], '}')
	} else {
		b[at] = ','
	}
	b = append(b, '\n')
	ow.buf = b
	if len(b) >= flushAt {
		return ow.Flush()
	}
	return nil
}

// AppendLine appends obj, a valid JSON object, to dst as one line of valid
// UTF-8 JSON: compacted when it holds a newline, with invalid UTF-8 written
// \ufffd and U+2028 and U+2029 escaped, as log/slog and encoding/json write
// them. The job's log lines and its exports carry users this way.
func AppendLine(dst, obj []byte) ([]byte, error) {
	if len(obj) < 2 || obj[0] != '{' {
		return dst, fmt.Errorf("%.40q is not a JSON object", obj)
	}
	if bytes.IndexByte(obj, '\n') >= 0 || bytes.IndexByte(obj, '\r') >= 0 {
		// Whitespace between tokens is all a newline can be in valid JSON:
		// compact it away so the line stays one line.
		var c bytes.Buffer
		if err := json.Compact(&c, obj); err != nil {
			return dst, err
		}
		obj = c.Bytes()
	}
	if hasNonASCII(obj) {
		return appendValidUTF8(dst, obj), nil
	}
	return append(dst, obj...), nil
}

// hasNonASCII reports whether b holds a byte of 0x80 or more. Most Graph
// bodies are ASCII and need no more look than this: it ORs 32 bytes at a
// time into one word and tests the top bits once, at the end.
func hasNonASCII(b []byte) bool {
	const top = 0x8080808080808080
	if len(b) < 8 {
		for _, c := range b {
			if c >= utf8.RuneSelf {
				return true
			}
		}
		return false
	}
	var acc uint64
	i := 0
	for ; i+32 <= len(b); i += 32 {
		w := (*[32]byte)(b[i : i+32])
		acc |= binary.LittleEndian.Uint64(w[0:8]) | binary.LittleEndian.Uint64(w[8:16]) |
			binary.LittleEndian.Uint64(w[16:24]) | binary.LittleEndian.Uint64(w[24:32])
	}
	for ; i+8 <= len(b); i += 8 {
		acc |= binary.LittleEndian.Uint64(b[i : i+8])
	}
	// The last word overlaps what was read: no byte-by-byte tail.
	acc |= binary.LittleEndian.Uint64(b[len(b)-8:])
	return acc&top != 0
}

// appendValidUTF8 appends JSON text src to dst with each byte that is not
// part of valid UTF-8 written \ufffd and U+2028 and U+2029 escaped. Outside
// strings JSON is ASCII, so these only ever meet the inside of a string,
// where the escapes are what encoding/json would write.
func appendValidUTF8(dst, src []byte) []byte {
	for i := 0; i < len(src); {
		if src[i] < utf8.RuneSelf {
			j := i + 1
			for j < len(src) && src[j] < utf8.RuneSelf {
				j++
			}
			dst = append(dst, src[i:j]...)
			i = j
			continue
		}
		r, size := utf8.DecodeRune(src[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, `\ufffd`...)
		case r == '\u2028':
			dst = append(dst, `\u2028`...)
		case r == '\u2029':
			dst = append(dst, `\u2029`...)
		default:
			dst = append(dst, src[i:i+size]...)
		}
		i += size
	}
	return dst
}

// Flush writes the gathered lines.
func (ow *ObjectWriter) Flush() error {
	if ow.err != nil || len(ow.buf) == 0 {
		return ow.err
	}
	_, ow.err = ow.w.Write(ow.buf)
	ow.buf = ow.buf[:0]
	return ow.err
}
