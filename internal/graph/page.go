package graph

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

// pageHandler receives what a page holds as the decoder meets it: the
// nextLink, saying whether it came before the users, and each user's JSON
// object with the raw bytes of its id (nil when it has none). The bytes are
// only valid during the call.
type pageHandler struct {
	link func(nextLink string, beforeValue bool)
	user func(user, id []byte) error
	// delta, when set, receives the @odata.deltaLink that ends a delta
	// round's last page; without it the member is skipped.
	delta func(deltaLink string)
}

// errHandler marks an error returned by a pageHandler, as opposed to one in
// the page itself.
type errHandler struct{ err error }

func (e errHandler) Error() string { return e.err.Error() }
func (e errHandler) Unwrap() error { return e.err }

// ErrPageCut marks a page whose body broke off: a read failed, or the body
// ended before the page's closing brace while all of it so far was valid.
// The same request may well succeed again.
var ErrPageCut = errors.New("the page's body broke off")

// PageSyntaxError is a page whose body, as far as it was read, cannot be a
// valid page: not JSON, not an object, no value array or two, a user that
// is not an object, data after the closing brace. Graph sent it so: a
// retry is unlikely to help.
type PageSyntaxError struct {
	// Offset is the byte offset in the body where the page went wrong.
	Offset int64
	// Msg says what was wrong there.
	Msg string
}

// Error says at which byte the page went wrong, and how.
func (e *PageSyntaxError) Error() string {
	return fmt.Sprintf("read page: not a valid page at byte %d: %s", e.Offset, e.Msg)
}

// decodePage reads one Graph collection page from r as a stream, one user at
// a time, so a page never sits in memory whole. Each user is scanned once:
// found, checked to be valid JSON, and its id noted.
//
// An error is an errHandler when the handler returned it; otherwise the page
// is broken, and the error says how: ErrPageCut when the body broke off, a
// *PageSyntaxError when what came is not a page, a *TooLargeError when a
// user is larger than the limit.
func decodePage(r io.Reader, h pageHandler) error {
	var p pageReader
	return p.decode(r, h)
}

// decode is decodePage with the reader's buffer, kept from page to page.
func (p *pageReader) decode(r io.Reader, h pageHandler) error {
	if p.buf == nil || cap(p.buf) > maxKeptBuffer {
		// A page of a huge user leaves its buffer behind, not for good.
		p.buf = make([]byte, 0, readSize)
	}
	p.r, p.buf, p.pos, p.off, p.end = r, p.buf[:0], 0, 0, nil
	if err := p.expect('{', "the page's '{'"); err != nil {
		return err
	}
	sawValue := false
	for first := true; ; first = false {
		c, err := p.peek()
		if err != nil {
			return err
		}
		if c == '}' && first {
			break
		}
		keyAt := p.offset()
		key, err := p.key()
		if err != nil {
			return err
		}
		switch {
		case key == "@odata.nextLink" || key == "@odata.deltaLink" && h.delta != nil:
			valueAt := p.offset()
			v, _, err := p.value(key, 1)
			if err != nil {
				return err
			}
			// A link that is not one is a broken page, never the last: an
			// absent link is how a listing ends.
			link, ok := linkString(v)
			if !ok {
				return &PageSyntaxError{Offset: valueAt, Msg: fmt.Sprintf("%s is %.40s, not a link", key, v)}
			}
			if key == "@odata.deltaLink" {
				h.delta(link)
			} else {
				h.link(link, !sawValue)
			}
		case key == "value":
			if sawValue {
				return &PageSyntaxError{Offset: keyAt, Msg: "a second value array"}
			}
			sawValue = true
			if err := p.users(h.user); err != nil {
				return err
			}
		default:
			if _, _, err := p.value("member", 1); err != nil {
				return err
			}
		}
		c, err = p.peek()
		if err != nil {
			return err
		}
		if c == '}' {
			break
		}
		if c != ',' {
			return p.syntaxError("found %q where ',' or '}' belongs after a member of the page", c)
		}
		p.pos++
	}
	if !sawValue {
		return p.syntaxError("the page ends with no value array")
	}
	p.pos++ // }
	if p.more() {
		return p.syntaxError("data after the page's closing brace")
	}
	if p.end != io.EOF {
		// The page is whole but its body failed: what else was to come is
		// not known.
		return p.cutError()
	}
	return nil
}

// linkString reads a nextLink's JSON value, a string that is not empty, as
// encoding/json reads it: escapes decoded, invalid UTF-8 made U+FFFD.
func linkString(v []byte) (string, bool) {
	if len(v) <= len(`""`) || v[0] != '"' {
		return "", false
	}
	if bytes.IndexByte(v, '\\') < 0 && utf8.Valid(v) {
		return string(v[1 : len(v)-1]), true
	}
	var link string
	err := json.Unmarshal(v, &link)
	return link, err == nil && link != ""
}

// readSize is how much a pageReader asks of the body at a time.
const readSize = 64 << 10

// maxValueSize bounds one user, or any other member of a page, in bytes:
// far above any real user (a few KiB with every property), it keeps a page
// that streams one endless value from taking the process's memory.
const maxValueSize = 8 << 20

// maxKeptBuffer is the largest read buffer kept from one page for the next.
const maxKeptBuffer = 1 << 20

// TooLargeError is a page holding a user, or another member, larger than
// maxValueSize (8 MiB). Reading the page again gives the same user: it is
// not worth a retry.
type TooLargeError struct {
	// Offset is the value's byte offset in the body.
	Offset int64
	// Limit is the size limit in bytes.
	Limit int
	// What names the value: "user", or the member.
	What string
}

// Error says which value was too large, where, and what the limit is.
func (e *TooLargeError) Error() string {
	return fmt.Sprintf("read page: the %s at byte %d is larger than the %d MiB limit on one value", e.What, e.Offset, e.Limit>>20)
}

// pageReader holds the part of a page read but not yet scanned. Its buffer
// serves one page after another.
type pageReader struct {
	r   io.Reader
	buf []byte // unscanned bytes are buf[pos:]
	pos int
	off int64 // the body offset of buf[0]
	end error // why the body has no more bytes once it has none: io.EOF or a read error
	// scanned counts the bytes handed to scanValue, rescans included: what
	// the linear-time promise is about.
	scanned int64
}

// read reads more of the body, making room first: scanned bytes go, and the
// buffer grows when a value needs more than it holds. It reports false when
// no byte came because the body has ended or failed, which p.end then
// says; bytes that come with the end are scanned first.
func (p *pageReader) read() bool {
	if p.end != nil {
		return false
	}
	if p.pos > 0 {
		n := copy(p.buf, p.buf[p.pos:])
		p.buf, p.off, p.pos = p.buf[:n], p.off+int64(p.pos), 0
	}
	if cap(p.buf)-len(p.buf) < readSize/2 {
		p.buf = append(p.buf, make([]byte, cap(p.buf))...)[:len(p.buf)]
	}
	n, err := p.r.Read(p.buf[len(p.buf):cap(p.buf)])
	p.buf = p.buf[:len(p.buf)+n]
	p.end = err
	return n > 0 || err == nil
}

// cutError is the ErrPageCut for a body that has no more bytes: it broke
// off where it ended, or failed.
func (p *pageReader) cutError() error {
	err := p.end
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("read page: %w at byte %d: %w", ErrPageCut, p.off+int64(len(p.buf)), err)
}

// fill reads more of the body; an ErrPageCut when no more comes.
func (p *pageReader) fill() error {
	if !p.read() {
		return p.cutError()
	}
	return nil
}

// fillTo reads until want bytes are unscanned, or the body ends.
func (p *pageReader) fillTo(want int) error {
	for len(p.buf)-p.pos < want {
		if err := p.fill(); err != nil {
			return err
		}
	}
	return nil
}

// more skips space and reports whether a byte is left, reading as needed.
func (p *pageReader) more() bool {
	for {
		for p.pos < len(p.buf) {
			switch p.buf[p.pos] {
			case ' ', '\t', '\n', '\r':
				p.pos++
			default:
				return true
			}
		}
		if !p.read() {
			return false
		}
	}
}

// peek returns the next byte that is not space, without taking it; an
// ErrPageCut when the body ends or fails first.
func (p *pageReader) peek() (byte, error) {
	if !p.more() {
		return 0, p.cutError()
	}
	return p.buf[p.pos], nil
}

// offset is the body offset of the next unscanned byte.
func (p *pageReader) offset() int64 { return p.off + int64(p.pos) }

// syntaxError is a PageSyntaxError at the next unscanned byte.
func (p *pageReader) syntaxError(format string, args ...any) error {
	return &PageSyntaxError{Offset: p.offset(), Msg: fmt.Sprintf(format, args...)}
}

// expect takes the byte that must come next, which what describes.
func (p *pageReader) expect(want byte, what string) error {
	c, err := p.peek()
	if err != nil {
		return err
	}
	if c != want {
		return p.syntaxError("found %q where %s belongs", c, what)
	}
	p.pos++
	return nil
}

// value scans the next value, what (a "user", a member), found inside depth
// objects and arrays of the page and no larger than maxValueSize, and
// returns its bytes, valid until the next call, and the span of its
// top-level id within them.
//
// A value that runs past the bytes read is scanned again from its start
// once more have come, so the reader waits until the unscanned bytes have
// doubled before a rescan: each byte is scanned a bounded number of times
// and a large value costs linear time, however small the body's reads.
func (p *pageReader) value(what string, depth int) ([]byte, [2]int, error) {
	if _, err := p.peek(); err != nil {
		return nil, [2]int{}, err
	}
	for {
		b := p.buf[p.pos:]
		n, st, id := scanValue(b, depth)
		p.scanned += int64(n)
		if st != scanDone {
			p.scanned += int64(len(b) - n)
		}
		switch {
		case st == scanDone && n <= maxValueSize:
			p.pos += n
			return b[:n], id, nil
		case st == scanDone || len(b) > maxValueSize:
			return nil, id, &TooLargeError{Offset: p.off + int64(p.pos), Limit: maxValueSize, What: what}
		case st == scanInvalid:
			msg := "invalid JSON in the " + what
			if n < len(b) {
				msg += fmt.Sprintf(": unexpected %q", b[n])
			}
			return nil, id, &PageSyntaxError{Offset: p.offset() + int64(n), Msg: msg}
		}
		have := len(b)
		if err := p.fillTo(min(2*have, maxValueSize+1)); err != nil && len(p.buf)-p.pos == have {
			return nil, id, err
		}
	}
}

// key reads a page member's name and its colon.
func (p *pageReader) key() (string, error) {
	c, err := p.peek()
	if err != nil {
		return "", err
	}
	if c != '"' {
		return "", p.syntaxError("found %q where a member name belongs", c)
	}
	at := p.offset()
	v, _, err := p.value("member name", 1)
	if err != nil {
		return "", err
	}
	var key string
	if bytes.IndexByte(v, '\\') < 0 {
		key = string(v[1 : len(v)-1])
	} else if err := json.Unmarshal(v, &key); err != nil {
		return "", &PageSyntaxError{Offset: at, Msg: fmt.Sprintf("member name %.40s: %v", v, err)}
	}
	if err := p.expect(':', "':'"); err != nil {
		return "", err
	}
	return key, nil
}

// users reads the value array, handing each user over.
func (p *pageReader) users(user func(user, id []byte) error) error {
	if err := p.expect('[', "the value array's '['"); err != nil {
		return err
	}
	c, err := p.peek()
	if err != nil {
		return err
	}
	if c == ']' {
		p.pos++
		return nil
	}
	for {
		// A user that is not an object is known from its first byte, cut
		// off or not.
		if c != '{' {
			return p.syntaxError("found %q where a user, a JSON object, belongs", c)
		}
		u, span, err := p.value("user", 2)
		if err != nil {
			return err
		}
		var id []byte
		if span[1] > 0 {
			id = u[span[0]:span[1]]
		}
		if err := user(u, id); err != nil {
			return errHandler{err}
		}
		if c, err = p.peek(); err != nil {
			return err
		}
		switch c {
		case ']':
			p.pos++
			return nil
		case ',':
			p.pos++
		default:
			return p.syntaxError("found %q where ',' or ']' belongs after a user", c)
		}
		if c, err = p.peek(); err != nil {
			return err
		}
	}
}
