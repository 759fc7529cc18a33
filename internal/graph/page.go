package graph

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// pageHandler receives what a page holds as the decoder meets it: the
// nextLink, saying whether it came before the users, and each user's JSON
// object with the raw bytes of its id (nil when it has none). The bytes are
// only valid during the call.
type pageHandler struct {
	link func(nextLink string, beforeValue bool)
	user func(user, id []byte) error
}

// errHandler marks an error returned by a pageHandler, as opposed to one in
// the page itself.
type errHandler struct{ err error }

func (e errHandler) Error() string { return e.err.Error() }
func (e errHandler) Unwrap() error { return e.err }

// decodePage reads one Graph collection page from r as a stream, one user at
// a time, so a page never sits in memory whole. Each user is scanned once:
// found, checked to be valid JSON, and its id noted. An error that is not an
// errHandler means the page is broken: cut off, not JSON, or not a page.
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
	p.r, p.buf, p.pos, p.off, p.err = r, p.buf[:0], 0, 0, nil
	if err := p.expect('{'); err != nil {
		return err
	}
	sawValue := false
	for first := true; ; first = false {
		c, err := p.peek()
		if err != nil {
			return err
		}
		if c == '}' && first {
			p.pos++
			break
		}
		key, err := p.key()
		if err != nil {
			return err
		}
		switch key {
		case "@odata.nextLink":
			v, _, err := p.value("@odata.nextLink")
			if err != nil {
				return fmt.Errorf("read @odata.nextLink: %w", err)
			}
			var link string
			if err := json.Unmarshal(v, &link); err != nil {
				return fmt.Errorf("read @odata.nextLink: %w", err)
			}
			h.link(link, !sawValue)
		case "value":
			if sawValue {
				return errors.New("read page: two value arrays")
			}
			sawValue = true
			if err := p.users(h.user); err != nil {
				return err
			}
		default:
			if _, _, err := p.value("member"); err != nil {
				return fmt.Errorf("read %q: %w", key, err)
			}
		}
		c, err = p.peek()
		if err != nil {
			return err
		}
		p.pos++
		if c == '}' {
			break
		}
		if c != ',' {
			return fmt.Errorf("read page: found %q where ',' or '}' belongs", c)
		}
	}
	switch _, err := p.peek(); err {
	case io.ErrUnexpectedEOF:
	case nil:
		return errors.New("read page: data after the page's closing brace")
	default:
		return err
	}
	if !sawValue {
		return errors.New("read page: no value array")
	}
	return nil
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
	err error // why the body has no more bytes, once it has none
	// scanned counts the bytes handed to scanValue, rescans included: what
	// the linear-time promise is about.
	scanned int64
}

// fill reads more of the body, making room first: scanned bytes go, and the
// buffer grows when a value needs more than it holds. Once the body has
// ended or failed, fill returns why each time it is called: the reason
// stays, and bytes that came with it are scanned first.
func (p *pageReader) fill() error {
	if p.err != nil {
		return p.err
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
	switch {
	case err == nil:
		return nil
	case err == io.EOF:
		p.err = io.ErrUnexpectedEOF
	default:
		p.err = fmt.Errorf("read page: %w", err)
	}
	if n > 0 {
		return nil
	}
	return p.err
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

// peek returns the next byte that is not space, without taking it;
// io.ErrUnexpectedEOF when the body ends first.
func (p *pageReader) peek() (byte, error) {
	for {
		for p.pos < len(p.buf) {
			switch c := p.buf[p.pos]; c {
			case ' ', '\t', '\n', '\r':
				p.pos++
			default:
				return c, nil
			}
		}
		if err := p.fill(); err != nil {
			return 0, err
		}
	}
}

func (p *pageReader) expect(want byte) error {
	c, err := p.peek()
	if err != nil {
		return fmt.Errorf("read page: %w", err)
	}
	if c != want {
		return fmt.Errorf("read page: found %q where %q belongs", c, want)
	}
	p.pos++
	return nil
}

// value scans the next value, what (a "user", a member) no larger than
// maxValueSize, and returns its bytes, valid until the next call, and the
// span of its top-level id within them.
//
// A value that runs past the bytes read is scanned again from its start
// once more have come, so the reader waits until the unscanned bytes have
// doubled before a rescan: each byte is scanned a bounded number of times
// and a large value costs linear time, however small the body's reads.
func (p *pageReader) value(what string) ([]byte, [2]int, error) {
	if _, err := p.peek(); err != nil {
		return nil, [2]int{}, err
	}
	for {
		b := p.buf[p.pos:]
		n, st, id := scanValue(b)
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
			return nil, id, fmt.Errorf("invalid JSON near %.40q", b)
		}
		have := len(b)
		if err := p.fillTo(min(2*have, maxValueSize+1)); err != nil && len(p.buf)-p.pos == have {
			return nil, id, err
		}
	}
}

// key reads an object member's name and its colon.
func (p *pageReader) key() (string, error) {
	c, err := p.peek()
	if err != nil {
		return "", fmt.Errorf("read page: %w", err)
	}
	if c != '"' {
		return "", fmt.Errorf("read page: found %q where a member name belongs", c)
	}
	v, _, err := p.value("member name")
	if err != nil {
		return "", fmt.Errorf("read page: %w", err)
	}
	var key string
	if bytes.IndexByte(v, '\\') < 0 {
		key = string(v[1 : len(v)-1])
	} else if err := json.Unmarshal(v, &key); err != nil {
		return "", fmt.Errorf("read page: %w", err)
	}
	return key, p.expect(':')
}

// users reads the value array, handing each user over.
func (p *pageReader) users(user func(user, id []byte) error) error {
	if err := p.expect('['); err != nil {
		return fmt.Errorf("read value: %w", err)
	}
	c, err := p.peek()
	if err != nil {
		return fmt.Errorf("read value: %w", err)
	}
	if c == ']' {
		p.pos++
		return nil
	}
	for {
		u, span, err := p.value("user")
		if err != nil {
			return fmt.Errorf("read user: %w", err)
		}
		if u[0] != '{' {
			return fmt.Errorf("read user: %.40s is not a JSON object", u)
		}
		var id []byte
		if span[1] > 0 {
			id = u[span[0]:span[1]]
		}
		if err := user(u, id); err != nil {
			return errHandler{err}
		}
		c, err := p.peek()
		if err != nil {
			return fmt.Errorf("read value: %w", err)
		}
		p.pos++
		switch c {
		case ']':
			return nil
		case ',':
		default:
			return fmt.Errorf("read value: found %q where ',' or ']' belongs", c)
		}
	}
}

