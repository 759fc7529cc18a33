package fakeazure

import (
	"bytes"
	"strings"
	"unicode"
	"unicode/utf8"
)

// userFilter is a parsed $filter. The zero value matches every user.
type userFilter struct {
	text string      // as sent, carried into nextLink
	root *filterNode // nil matches every user
	// prefix is the startsWith(userPrincipalName,'…') prefix every match must have, when the
	// filter is one such clause or an "and" of clauses with one: it picks the index to walk.
	prefix    string
	hasPrefix bool
}

type filterOp uint8

const (
	opAnd filterOp = iota
	opOr
	opStartsWith // startsWith(prop,'text')
	opEqBool     // prop eq true|false
	opEqString   // prop eq 'text'
)

// filterNode is one node of a parsed $filter.
type filterNode struct {
	op   filterOp
	kids []*filterNode // of and, or
	prop property
	text string // the literal of startsWith and string eq
	flag bool   // the literal of bool eq
}

// unsupportedFilter is the answer to any filter this fake does not implement, or cannot parse.
func unsupportedFilter() *graphError {
	return badRequest("Request_UnsupportedQuery", "Unsupported or invalid query filter clause: this fake implements "+
		"startsWith(displayName|userPrincipalName,'...'), accountEnabled eq true|false and userType eq 'Member'|'Guest', "+
		"combined with and, or and parentheses.")
}

// parseFilter reads a $filter. Function names, keywords and property names ignore case, as Graph's
// do; a quote inside a literal is doubled, as OData has it.
func parseFilter(text string) (userFilter, *graphError) {
	p := filterParser{s: text}
	root, ok := p.or()
	if !ok || p.next().kind != tokEnd {
		return userFilter{}, unsupportedFilter()
	}
	f := userFilter{text: text, root: root}
	f.prefix, f.hasPrefix = indexPrefix(root)
	return f, nil
}

// indexPrefix finds the longest userPrincipalName prefix that every user the filter matches has.
func indexPrefix(n *filterNode) (string, bool) {
	switch n.op {
	case opStartsWith:
		return n.text, n.prop == propUserPrincipalName
	case opAnd:
		best, found := "", false
		for _, k := range n.kids {
			if p, ok := indexPrefix(k); ok && (!found || len(p) > len(best)) {
				best, found = p, true
			}
		}
		return best, found
	}
	return "", false
}

type tokKind uint8

const (
	tokEnd tokKind = iota
	tokWord
	tokString
	tokOpen
	tokClose
	tokComma
	tokBad
)

type token struct {
	kind tokKind
	text string // a word as written, or a string literal decoded
}

// filterParser is a recursive descent parser over the grammar
//
//	or    = and *( "or" and )
//	and   = unary *( "and" unary )
//	unary = "(" or ")" / word "(" word "," string ")" / word "eq" ( string / word )
type filterParser struct {
	s      string
	peeked *token
}

func (p *filterParser) next() token {
	if p.peeked != nil {
		t := *p.peeked
		p.peeked = nil
		return t
	}
	s := strings.TrimLeft(p.s, " \t")
	if s == "" {
		p.s = s
		return token{kind: tokEnd}
	}
	switch s[0] {
	case '(':
		p.s = s[1:]
		return token{kind: tokOpen}
	case ')':
		p.s = s[1:]
		return token{kind: tokClose}
	case ',':
		p.s = s[1:]
		return token{kind: tokComma}
	case '\'':
		var lit strings.Builder
		for k := 1; k < len(s); k++ {
			if s[k] != '\'' {
				lit.WriteByte(s[k])
				continue
			}
			if k+1 < len(s) && s[k+1] == '\'' {
				lit.WriteByte('\'')
				k++
				continue
			}
			p.s = s[k+1:]
			return token{kind: tokString, text: lit.String()}
		}
		return token{kind: tokBad}
	}
	k := 0
	for k < len(s) && (isWordByte(s[k])) {
		k++
	}
	if k == 0 {
		return token{kind: tokBad}
	}
	p.s = s[k:]
	return token{kind: tokWord, text: s[:k]}
}

func isWordByte(c byte) bool {
	return c == '_' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

func (p *filterParser) peek() token {
	if p.peeked == nil {
		t := p.next()
		p.peeked = &t
	}
	return *p.peeked
}

func (p *filterParser) keyword(word string) bool {
	if t := p.peek(); t.kind == tokWord && strings.EqualFold(t.text, word) {
		p.next()
		return true
	}
	return false
}

func (p *filterParser) or() (*filterNode, bool) {
	return p.chain("or", opOr, p.and)
}

func (p *filterParser) and() (*filterNode, bool) {
	return p.chain("and", opAnd, p.unary)
}

// chain reads operands joined by word into one node of op.
func (p *filterParser) chain(word string, op filterOp, operand func() (*filterNode, bool)) (*filterNode, bool) {
	first, ok := operand()
	if !ok {
		return nil, false
	}
	n := &filterNode{op: op, kids: []*filterNode{first}}
	for p.keyword(word) {
		k, ok := operand()
		if !ok {
			return nil, false
		}
		n.kids = append(n.kids, k)
	}
	if len(n.kids) == 1 {
		return first, true
	}
	return n, true
}

func (p *filterParser) unary() (*filterNode, bool) {
	t := p.next()
	if t.kind == tokOpen {
		n, ok := p.or()
		return n, ok && p.next().kind == tokClose
	}
	if t.kind != tokWord {
		return nil, false
	}
	if p.peek().kind == tokOpen {
		p.next()
		return p.call(t.text)
	}
	return p.comparison(t.text)
}

// call reads the rest of startsWith(prop,'prefix'), on the properties this fake can filter by.
func (p *filterParser) call(fn string) (*filterNode, bool) {
	if !strings.EqualFold(fn, "startswith") {
		return nil, false
	}
	name, comma, lit, end := p.next(), p.next(), p.next(), p.next()
	if name.kind != tokWord || comma.kind != tokComma || lit.kind != tokString || end.kind != tokClose {
		return nil, false
	}
	prop, known := lookupProperty(name.text)
	if !known || (prop != propDisplayName && prop != propUserPrincipalName) {
		return nil, false
	}
	return &filterNode{op: opStartsWith, prop: prop, text: lit.text}, true
}

// comparison reads the rest of accountEnabled eq true|false or userType eq '…'.
func (p *filterParser) comparison(name string) (*filterNode, bool) {
	prop, known := lookupProperty(name)
	if !known || !p.keyword("eq") {
		return nil, false
	}
	lit := p.next()
	switch {
	case prop == propAccountEnabled && lit.kind == tokWord && (strings.EqualFold(lit.text, "true") || strings.EqualFold(lit.text, "false")):
		return &filterNode{op: opEqBool, prop: prop, flag: strings.EqualFold(lit.text, "true")}, true
	case prop == propUserType && lit.kind == tokString:
		return &filterNode{op: opEqString, prop: prop, text: lit.text}, true
	}
	return nil, false
}

// matches reports whether user i, as s holds it now, passes the filter. The caller holds s.mu.
func (f *userFilter) matches(s *userStore, i int) bool {
	return f.root == nil || f.root.eval(s, i)
}

func (n *filterNode) eval(s *userStore, i int) bool {
	switch n.op {
	case opAnd:
		for _, k := range n.kids {
			if !k.eval(s, i) {
				return false
			}
		}
		return true
	case opOr:
		for _, k := range n.kids {
			if k.eval(s, i) {
				return true
			}
		}
		return false
	case opStartsWith:
		var scratch [128]byte
		var v []byte
		if n.prop == propDisplayName {
			v = s.appendDisplayName(scratch[:0], i)
		} else {
			v = s.appendUPN(scratch[:0], i)
		}
		if s.caseSensitive {
			return bytes.HasPrefix(v, []byte(n.text))
		}
		return hasPrefixFold(v, n.text)
	case opEqBool:
		return s.accountEnabled(i) == n.flag
	case opEqString:
		t := "Member"
		if s.guest(i) {
			t = "Guest"
		}
		return strings.EqualFold(t, n.text)
	}
	return false
}

// hasPrefixFold reports whether s starts with prefix under Unicode case folding.
func hasPrefixFold(s []byte, prefix string) bool {
	for _, want := range prefix {
		got, n := utf8.DecodeRune(s)
		if n == 0 || !runeEqualFold(got, want) {
			return false
		}
		s = s[n:]
	}
	return true
}

func runeEqualFold(a, b rune) bool {
	for r := a; ; {
		if r == b {
			return true
		}
		if r = unicode.SimpleFold(r); r == a {
			return false
		}
	}
}

// asciiFold returns the ASCII character that r equals under case folding, in lower case, if any:
// the Kelvin sign folds to k.
func asciiFold(r rune) (byte, bool) {
	for c := r; ; {
		if c < utf8.RuneSelf {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			return byte(c), true
		}
		if c = unicode.SimpleFold(c); c == r {
			return 0, false
		}
	}
}
