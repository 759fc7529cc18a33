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
	if p.buf == nil {
		p.buf = make([]byte, 0, readSize)
	}
	p.r, p.buf, p.pos, p.eof = r, p.buf[:0], 0, false
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
			v, _, err := p.value()
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
			if _, _, err := p.value(); err != nil {
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
	if _, err := p.peek(); err != io.ErrUnexpectedEOF {
		return errors.New("read page: data after the page's closing brace")
	}
	if !sawValue {
		return errors.New("read page: no value array")
	}
	return nil
}

// readSize is how much a pageReader asks of the body at a time.
const readSize = 64 << 10

// pageReader holds the part of a page read but not yet scanned. Its buffer
// serves one page after another.
type pageReader struct {
	r   io.Reader
	buf []byte // unscanned bytes are buf[pos:]
	pos int
	eof bool
}

// fill reads more of the body, making room first: scanned bytes go, and the
// buffer grows when a value needs more than it holds.
func (p *pageReader) fill() error {
	if p.eof {
		return io.ErrUnexpectedEOF
	}
	if p.pos > 0 {
		n := copy(p.buf, p.buf[p.pos:])
		p.buf, p.pos = p.buf[:n], 0
	}
	if cap(p.buf)-len(p.buf) < readSize/2 {
		p.buf = append(p.buf, make([]byte, cap(p.buf))...)[:len(p.buf)]
	}
	n, err := p.r.Read(p.buf[len(p.buf):cap(p.buf)])
	p.buf = p.buf[:len(p.buf)+n]
	if err == io.EOF {
		p.eof = true
		return nil
	}
	if err != nil {
		return fmt.Errorf("read page: %w", err)
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

// value scans the next value and returns its bytes, valid until the next
// call, and the span of its top-level id within them.
func (p *pageReader) value() ([]byte, [2]int, error) {
	if _, err := p.peek(); err != nil {
		return nil, [2]int{}, err
	}
	for {
		n, st, id := scanValue(p.buf[p.pos:])
		switch st {
		case scanDone:
			v := p.buf[p.pos : p.pos+n]
			p.pos += n
			return v, id, nil
		case scanInvalid:
			return nil, id, fmt.Errorf("invalid JSON near %.40q", p.buf[p.pos:])
		}
		if err := p.fill(); err != nil {
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
	v, _, err := p.value()
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
		u, span, err := p.value()
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
