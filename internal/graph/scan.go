package graph

// A validating JSON scanner that finds where a value ends in one pass, as
// encoding/json does in two (once to find the end, once to copy it), and
// notes an object's top-level "id" on the way. It accepts and refuses what
// encoding/json does, and finds the id encoding/json finds: member names are
// compared once their escapes are decoded, and the last "id" wins.

import "encoding/json"

// maxNestingDepth is how deep encoding/json lets objects and arrays nest,
// counting from the outermost value of the document.
const maxNestingDepth = 10000

// scanStatus says how a scan of a value ended.
type scanStatus int

const (
	scanDone       scanStatus = iota // a whole, valid value
	scanIncomplete                   // valid so far, but the bytes ran out
	scanInvalid                      // not JSON
)

// scanValue scans the JSON value at the start of b (no leading space), found
// inside depth objects and arrays of its document. It returns how the scan
// ended and n: the value's length when it is done, the offset of the byte
// that made it invalid, or how far the scan got when the bytes ran out. For
// a complete object, id is the span of the string value of its last
// top-level "id" member (id[1] == 0 when it has none), escapes and all.
func scanValue(b []byte, depth int) (n int, st scanStatus, id [2]int) {
	s := scanner{b: b, top: depth + 1}
	s.value(depth)
	if s.st != scanDone {
		return s.i, s.st, id
	}
	return s.i, scanDone, s.id
}

type scanner struct {
	b   []byte
	i   int
	st  scanStatus
	top int // the depth of the members of the value scanned, if an object
	id  [2]int
}

// fail records how the scan ended, unless it already has.
func (s *scanner) fail(st scanStatus) {
	if s.st == scanDone {
		s.st = st
	}
}

// more reports whether a byte is left; when none is, the value is
// incomplete.
func (s *scanner) more() bool {
	if s.i < len(s.b) {
		return true
	}
	s.fail(scanIncomplete)
	return false
}

func (s *scanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// value scans one value; depth is how many objects and arrays hold it.
func (s *scanner) value(depth int) {
	if !s.more() {
		return
	}
	switch c := s.b[s.i]; {
	case (c == '{' || c == '[') && depth >= maxNestingDepth:
		s.fail(scanInvalid)
	case c == '{':
		s.object(depth + 1)
	case c == '[':
		s.array(depth + 1)
	case c == '"':
		s.str()
	case c == '-' || c >= '0' && c <= '9':
		s.number()
	case c == 't':
		s.literal("true")
	case c == 'f':
		s.literal("false")
	case c == 'n':
		s.literal("null")
	default:
		s.fail(scanInvalid)
	}
}

func (s *scanner) object(depth int) {
	s.i++ // {
	s.space()
	if !s.more() {
		return
	}
	if s.b[s.i] == '}' {
		s.i++
		return
	}
	for {
		if !s.more() {
			return
		}
		if s.b[s.i] != '"' {
			s.fail(scanInvalid)
			return
		}
		k := s.i
		escaped := s.str()
		if s.st != scanDone {
			return
		}
		isID := depth == s.top && (!escaped && string(s.b[k:s.i]) == `"id"` || escaped && isEscapedID(s.b[k:s.i]))
		s.space()
		if !s.more() {
			return
		}
		if s.b[s.i] != ':' {
			s.fail(scanInvalid)
			return
		}
		s.i++
		s.space()
		v := s.i
		s.value(depth)
		if s.st != scanDone {
			return
		}
		if isID {
			s.id = [2]int{}
			if s.b[v] == '"' {
				s.id = [2]int{v + 1, s.i - 1}
			}
		}
		s.space()
		if !s.more() {
			return
		}
		switch s.b[s.i] {
		case ',':
			s.i++
			s.space()
		case '}':
			s.i++
			return
		default:
			s.fail(scanInvalid)
			return
		}
	}
}

func (s *scanner) array(depth int) {
	s.i++ // [
	s.space()
	if !s.more() {
		return
	}
	if s.b[s.i] == ']' {
		s.i++
		return
	}
	for {
		s.value(depth)
		if s.st != scanDone {
			return
		}
		s.space()
		if !s.more() {
			return
		}
		switch s.b[s.i] {
		case ',':
			s.i++
			s.space()
		case ']':
			s.i++
			return
		default:
			s.fail(scanInvalid)
			return
		}
	}
}

// isEscapedID reports whether a member name with escapes, quoted as in the
// JSON, is "id" once they are decoded, as encoding/json decodes them.
func isEscapedID(name []byte) bool {
	// "id" escaped as much as it can be is "\u0069\u0064": anything
	// longer is another name, and need not be decoded.
	if len(name) > len(`"\u0069\u0064"`) {
		return false
	}
	var key string
	return json.Unmarshal(name, &key) == nil && key == "id"
}

// str scans a string, checking its escapes and that it holds no control
// characters, and reports whether it has escapes. It is the scanner's
// hottest loop: it runs over plain bytes with its position in a local, and
// stops only at a quote, a backslash or a control character.
func (s *scanner) str() (escaped bool) {
	b, i := s.b, s.i+1 // after the opening quote
	for {
		for i < len(b) && plainInString[b[i]] {
			i++
		}
		if i >= len(b) {
			s.i = i
			s.fail(scanIncomplete)
			return escaped
		}
		switch b[i] {
		case '"':
			s.i = i + 1
			return escaped
		case '\\':
			escaped = true
			if i+1 >= len(b) {
				s.i = i + 1
				s.fail(scanIncomplete)
				return escaped
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				for k := 2; k < 6; k++ {
					if i+k >= len(b) {
						s.i = i + k
						s.fail(scanIncomplete)
						return escaped
					}
					if !isHex(b[i+k]) {
						s.i = i + k
						s.fail(scanInvalid)
						return escaped
					}
				}
				i += 6
			default:
				s.i = i + 1
				s.fail(scanInvalid)
				return escaped
			}
		default: // a control character
			s.i = i
			s.fail(scanInvalid)
			return escaped
		}
	}
}

// plainInString marks the bytes a string may hold as they are: all but the
// quote, the backslash and control characters.
var plainInString = func() (t [256]bool) {
	for c := range t {
		t[c] = c >= 0x20 && c != '"' && c != '\\'
	}
	return t
}()

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// number scans -?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?. A number that runs to
// the end of the bytes may go on in the next ones: incomplete.
func (s *scanner) number() {
	if s.b[s.i] == '-' {
		s.i++
		if !s.more() {
			return
		}
	}
	switch c := s.b[s.i]; {
	case c == '0':
		s.i++
	case c >= '1' && c <= '9':
		s.digits()
	default:
		s.fail(scanInvalid)
		return
	}
	if !s.more() {
		return
	}
	if s.b[s.i] == '.' {
		s.i++
		if !s.more() {
			return
		}
		if !isDigit(s.b[s.i]) {
			s.fail(scanInvalid)
			return
		}
		s.digits()
		if !s.more() {
			return
		}
	}
	if c := s.b[s.i]; c == 'e' || c == 'E' {
		s.i++
		if !s.more() {
			return
		}
		if c := s.b[s.i]; c == '+' || c == '-' {
			s.i++
			if !s.more() {
				return
			}
		}
		if !isDigit(s.b[s.i]) {
			s.fail(scanInvalid)
			return
		}
		s.digits()
		s.more()
	}
}

func (s *scanner) digits() {
	for s.i < len(s.b) && isDigit(s.b[s.i]) {
		s.i++
	}
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func (s *scanner) literal(lit string) {
	for k := 0; k < len(lit); k++ {
		if s.i+k >= len(s.b) {
			s.fail(scanIncomplete)
			return
		}
		if s.b[s.i+k] != lit[k] {
			s.i += k
			s.fail(scanInvalid)
			return
		}
	}
	s.i += len(lit)
}
