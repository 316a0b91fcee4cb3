package diff

import (
	"fmt"
	"math/bits"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// maxJSONDepth bounds the nesting of arrays and objects; a deeper document
// is compared as text.
const maxJSONDepth = 1000

type jkind uint8

const (
	jNull jkind = iota
	jFalse
	jTrue
	jNum
	jStr
	jArr
	jObj
)

// jtree is one parsed JSON document. Nodes refer to each other by their
// index in nodes and to their text by offsets, so that a tree holds no
// pointers but its two strings: building one costs the garbage collector
// nothing (no write barriers, nothing to scan), and its slices are reused
// from one document to the next (see jsonScratch).
type jtree struct {
	src   string // the document
	esc   string // the values of the strings that have escapes, one after the other
	nodes []jnode
	kids  []int   // the children of each container, one after the other
	names []jspan // the member names of each object, one after the other
	root  int
	// guide is the tree this one was parsed against (see parser.guide),
	// which its "same" nodes stand for nodes of.
	guide *jtree
}

// jnode is one parsed JSON value. Objects keep their members in document
// order (the i-th name names the i-th child); a repeated name is kept,
// and the last one wins when comparing, as in encoding/json.
type jnode struct {
	kind   jkind
	hashed bool // hash is valid
	// same marks a value whose source text is that of node first of the
	// tree's guide, at the same place in the document: it stands for
	// that node, and has no children of its own (see jtree.resolve).
	same bool
	// text is a string's value, a number's literal, or the source text of
	// an array or object (two containers with the same text hold the same
	// values, which spares comparing them member by member).
	text  jspan
	first int    // a container's children are kids[first:first+n]
	n     int    // a container's number of children
	name0 int    // an object's member names are names[name0:name0+n]
	hash  uint64 // see jsonDiffer.hash
}

// jspan locates a string in its tree: src[off:end], or, for a string
// with escapes, esc[^off:end] (off is negative then).
type jspan struct {
	off, end int
}

// esc reports whether s is in the tree's esc.
func (s jspan) esc() bool { return s.off < 0 }

// len returns the length of the string s locates.
func (s jspan) len() int {
	if s.off < 0 {
		return s.end - ^s.off
	}
	return s.end - s.off
}

func (t *jtree) str(s jspan) string {
	if s.esc() {
		return t.esc[^s.off:s.end]
	}
	return t.src[s.off:s.end]
}

// text returns node n's text (see jnode.text).
func (t *jtree) text(n int) string { return t.str(t.nodes[n].text) }

// kid returns the index of the i-th child of container n.
func (t *jtree) kid(n, i int) int { return t.kids[t.nodes[n].first+i] }

// name returns the name of the i-th member of object n.
func (t *jtree) name(n, i int) string { return t.str(t.names[t.nodes[n].name0+i]) }

// len returns the number of children of container n.
func (t *jtree) len(n int) int { return t.nodes[n].n }

func (t *jtree) reset() {
	*t = jtree{nodes: t.nodes[:0], kids: t.kids[:0], names: t.names[:0]}
}

// resolve returns the tree and node that node n of t stands for: itself,
// or the node of t.guide it has the text of.
func (t *jtree) resolve(n int) (*jtree, int) {
	if nd := &t.nodes[n]; nd.same {
		return t.guide, nd.first
	}
	return t, n
}

// parseJSON parses one JSON document (RFC 8259, strict: no trailing
// commas, comments or NaN; invalid UTF-8 inside strings is kept as is).
func parseJSON(data []byte) (*jtree, error) {
	var p parser
	t := new(jtree)
	if err := p.parse(t, data, nil); err != nil {
		return nil, err
	}
	return t, nil
}

// parser parses documents into jtrees. Strings without escapes, number
// literals and containers' text are offsets into the source; strings with
// escapes are decoded into one buffer. A parser can be reused: its stacks
// and buffer keep their memory.
//
// A document can be parsed against a guide, another document's tree (the
// target's response against production's): a value that has, byte for
// byte, the source text of the guide's node at the same place (the member
// of the same name at the same position, or the element at the same
// index, in containers that are at the same place themselves) is not
// parsed but becomes a "same" node standing for the guide's, and a member
// name that is the guide's is not parsed either. Arrays, objects and
// strings are self-delimiting and a number must not go on past the
// guide's, so the document reads as if parsed in full (at the same
// depth, so within maxJSONDepth), at the cost of comparing bytes; when
// two responses differ in a few values, the target's is mostly not
// parsed at all. TestGuidedParse and FuzzGuidedParse check that the
// comparison is the same as with a full parse.
type parser struct {
	t     *jtree
	guide *jtree // or nil
	src   string
	pos   int
	stack []int   // the children of the containers being parsed
	names []jspan // the member names of the objects being parsed
	esc   []byte  // the values of strings with escapes, for t.esc
}

// parse parses data into t, replacing what t held, against guide (a
// parsed tree, or nil).
//
// t.src is data itself, not a copy (a copy of each body was a tenth of a
// comparison's time): data must not change while t is in use, and no
// string taken from t may outlive it. Compare only reads the bodies, and
// everything it returns is built anew (rendered values, paths, keys);
// putScratch drops t.src before the pool keeps the tree.
func (p *parser) parse(t *jtree, data []byte, guide *jtree) error {
	t.reset()
	t.src, t.guide = unsafe.String(unsafe.SliceData(data), len(data)), guide
	*p = parser{t: t, guide: guide, src: t.src, stack: p.stack[:0], names: p.names[:0], esc: p.esc[:0]}
	g := -1
	if guide != nil {
		g = guide.root
	}
	p.ws()
	root, err := p.value(0, g)
	if err != nil {
		return err
	}
	p.ws()
	if p.pos != len(p.src) {
		return p.errorf("data after the document")
	}
	t.root = root
	if len(p.esc) > 0 {
		t.esc = string(p.esc)
	}
	return nil
}

// nameIs reports whether the string k, just parsed, is s.
func (p *parser) nameIs(k jspan, s string) bool {
	if k.esc() {
		return string(p.esc[^k.off:k.end]) == s
	}
	return p.src[k.off:k.end] == s
}

func (p *parser) errorf(format string, args ...any) error {
	return fmt.Errorf("json: offset %d: %s", p.pos, fmt.Sprintf(format, args...))
}

// node appends a node of kind k with the given text and returns its
// index.
func (p *parser) node(k jkind, text jspan) int {
	t := p.t
	t.nodes = append(t.nodes, jnode{})
	// Set the fields in place: copying a jnode built field by field costs
	// store-forwarding stalls.
	n := len(t.nodes) - 1
	nd := &t.nodes[n]
	nd.kind, nd.text = k, text
	return n
}

// The parsing functions keep their position in a local variable and
// store it in p.pos only around calls (and before an error, which
// reports it): that spares most loads and stores of p.pos.

// skipWS returns the offset of the first byte at or after i in d that is
// not JSON white space.
func skipWS(d string, i int) int {
	if i < len(d) && d[i] > ' ' {
		return i // no white space: the usual case, inlined
	}
	for i < len(d) && (d[i] == ' ' || d[i] == '\n' || d[i] == '\r' || d[i] == '\t') {
		i++
	}
	return i
}

func (p *parser) ws() { p.pos = skipWS(p.src, p.pos) }

// value parses the value at p.pos; g is the guide's node at the same
// place, or -1.
func (p *parser) value(depth, g int) (int, error) {
	if g >= 0 {
		if n, ok := p.sameAsGuide(g); ok {
			return n, nil
		}
		if k := p.guide.nodes[g].kind; p.pos >= len(p.src) || !(k == jObj && p.src[p.pos] == '{' || k == jArr && p.src[p.pos] == '[') {
			g = -1 // only an object guides an object, and an array an array
		}
	}
	d, i := p.src, p.pos
	if i >= len(d) {
		return 0, p.errorf("unexpected end of input")
	}
	switch c := d[i]; {
	case c == '"':
		s, end, err := p.string(i)
		if err != nil {
			return 0, err
		}
		p.pos = end
		return p.node(jStr, s), nil
	case c == '{' || c == '[':
		if c == '{' {
			return p.object(depth+1, g)
		}
		return p.array(depth+1, g)
	case c == '-' || c >= '0' && c <= '9':
		return p.number()
	default:
		for _, lit := range [...]struct {
			s string
			k jkind
		}{{"null", jNull}, {"true", jTrue}, {"false", jFalse}} {
			if strings.HasPrefix(d[i:], lit.s) {
				p.pos = i + len(lit.s)
				return p.node(lit.k, jspan{off: i, end: p.pos}), nil
			}
		}
		return 0, p.errorf("unexpected %q", c)
	}
}

// sameAsGuide makes a "same" node for guide node g when the value at
// p.pos has g's source text: arrays, objects and strings are
// self-delimiting, and a number or literal must not go on (a number
// "12" in the guide is not the start of "123"). Strings with escapes are
// left to the parser.
func (p *parser) sameAsGuide(g int) (int, bool) {
	gt, d, i := p.guide, p.src, p.pos
	gn := &gt.nodes[g]
	var text string
	switch gn.kind {
	case jStr:
		if gn.text.esc() {
			return 0, false
		}
		text = gt.src[gn.text.off-1 : gn.text.end+1] // with its quotes
	default:
		text = gt.src[gn.text.off:gn.text.end]
	}
	if !strings.HasPrefix(d[i:], text) {
		return 0, false
	}
	end := i + len(text)
	if k := gn.kind; k != jObj && k != jArr && k != jStr && end < len(d) && numberByte(d[end]) {
		return 0, false
	}
	p.pos = end
	own := jspan{off: i, end: end}
	if gn.kind == jStr {
		own = jspan{off: i + 1, end: end - 1} // a string's text is its value
	}
	n := p.node(gn.kind, own)
	nd := &p.t.nodes[n]
	nd.same, nd.first = true, g
	return n, true
}

// numberByte reports whether c can continue a number.
func numberByte(c byte) bool {
	return c >= '0' && c <= '9' || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-'
}

// object parses the object at p.pos; g is the guide's object at the same
// place, or -1.
func (p *parser) object(depth, g int) (int, error) {
	if depth > maxJSONDepth {
		return 0, p.errorf("nested deeper than %d", maxJSONDepth)
	}
	d, start := p.src, p.pos
	base, nbase := len(p.stack), len(p.names)
	i := skipWS(d, start+1) // after '{'
	if i < len(d) && d[i] == '}' {
		p.pos = i + 1
		return p.node(jObj, jspan{off: start, end: p.pos}), nil
	}
	for m := 0; ; m++ {
		i = skipWS(d, i)
		if i >= len(d) || d[i] != '"' {
			p.pos = i
			return 0, p.errorf("expected a member name")
		}
		gk := -1 // the guide's member at the same position, if it has the same name
		var k jspan
		var end int
		if g >= 0 && m < p.guide.len(g) {
			// The guide's name, byte for byte, needs no parsing.
			if gs := p.guide.names[p.guide.nodes[g].name0+m]; !gs.esc() {
				name := p.guide.src[gs.off:gs.end]
				if e := i + 1 + len(name); e < len(d) && d[e] == '"' && d[i+1:e] == name {
					k, end, gk = jspan{off: i + 1, end: e}, e+1, p.guide.kid(g, m)
				}
			}
		}
		if gk < 0 {
			var err error
			if k, end, err = p.string(i); err != nil {
				return 0, err
			}
			if g >= 0 && m < p.guide.len(g) && p.nameIs(k, p.guide.name(g, m)) {
				gk = p.guide.kid(g, m)
			}
		}
		i = skipWS(d, end)
		if i >= len(d) || d[i] != ':' {
			p.pos = i
			return 0, p.errorf("expected ':'")
		}
		p.pos = skipWS(d, i+1)
		v, err := p.value(depth, gk)
		if err != nil {
			return 0, err
		}
		p.names = append(p.names, k)
		p.stack = append(p.stack, v)
		i = skipWS(d, p.pos)
		if i >= len(d) {
			p.pos = i
			return 0, p.errorf("unexpected end of input in an object")
		}
		if d[i] == ',' {
			i++
			continue
		}
		if d[i] != '}' {
			p.pos = i
			return 0, p.errorf("expected ',' or '}'")
		}
		p.pos = i + 1
		t := p.t
		n := p.node(jObj, jspan{off: start, end: p.pos})
		nd := &t.nodes[n]
		nd.first, nd.n, nd.name0 = len(t.kids), len(p.stack)-base, len(t.names)
		t.kids = append(t.kids, p.stack[base:]...)
		t.names = append(t.names, p.names[nbase:]...)
		p.stack, p.names = p.stack[:base], p.names[:nbase]
		return n, nil
	}
}

// array parses the array at p.pos; g is the guide's array at the same
// place, or -1.
func (p *parser) array(depth, g int) (int, error) {
	if depth > maxJSONDepth {
		return 0, p.errorf("nested deeper than %d", maxJSONDepth)
	}
	d, start := p.src, p.pos
	base := len(p.stack)
	i := skipWS(d, start+1) // after '['
	if i < len(d) && d[i] == ']' {
		p.pos = i + 1
		return p.node(jArr, jspan{off: start, end: p.pos}), nil
	}
	for e := 0; ; e++ {
		p.pos = skipWS(d, i)
		ge := -1
		if g >= 0 && e < p.guide.len(g) {
			ge = p.guide.kid(g, e)
		}
		v, err := p.value(depth, ge)
		if err != nil {
			return 0, err
		}
		p.stack = append(p.stack, v)
		i = skipWS(d, p.pos)
		if i >= len(d) {
			p.pos = i
			return 0, p.errorf("unexpected end of input in an array")
		}
		if d[i] == ',' {
			i++
			continue
		}
		if d[i] != ']' {
			p.pos = i
			return 0, p.errorf("expected ',' or ']'")
		}
		p.pos = i + 1
		t := p.t
		n := p.node(jArr, jspan{off: start, end: p.pos})
		nd := &t.nodes[n]
		nd.first, nd.n = len(t.kids), len(p.stack)-base
		t.kids = append(t.kids, p.stack[base:]...)
		p.stack = p.stack[:base]
		return n, nil
	}
}

func (p *parser) number() (int, error) {
	d := p.src
	start := p.pos
	i := start
	if d[i] == '-' {
		i++
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case i < len(d) && d[i] >= '1' && d[i] <= '9':
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
	default:
		p.pos = i
		return 0, p.errorf("bad number")
	}
	if i < len(d) && d[i] == '.' {
		i++
		j := i
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
		if i == j {
			p.pos = i
			return 0, p.errorf("bad number: no digits after '.'")
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		j := i
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
		if i == j {
			p.pos = i
			return 0, p.errorf("bad number: no digits in the exponent")
		}
	}
	p.pos = i
	return p.node(jNum, jspan{off: start, end: i}), nil
}

// plain holds the bytes that stand for themselves inside a JSON string:
// all but '"', '\\' and control characters.
var plain = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// Finding the end of a string 8 bytes at a time: for a word x,
// (x-ones*n)&^x&highs has the high bit set in each byte below n, and
// perhaps in bytes after such a byte but never before, so its lowest set
// bit marks the first one; with q = x^(ones*c), (q-ones)&^q&highs does the
// same for the bytes that are c.
const ones, highs = 0x0101010101010101, 0x8080808080808080

// string parses the JSON string at start (a '"') and returns where its
// value is and the offset past its closing quote.
func (p *parser) string(start int) (jspan, int, error) {
	d := p.src
	i := start + 1
	for {
		if i+8 > len(d) {
			for i < len(d) && plain[d[i]] {
				i++
			}
			break
		}
		w := d[i : i+8]
		x := uint64(w[0]) | uint64(w[1])<<8 | uint64(w[2])<<16 | uint64(w[3])<<24 |
			uint64(w[4])<<32 | uint64(w[5])<<40 | uint64(w[6])<<48 | uint64(w[7])<<56
		q, b := x^(ones*'"'), x^(ones*'\\')
		if m := ((q-ones)&^q | (b-ones)&^b | (x-ones*0x20)&^x) & highs; m != 0 {
			i += bits.TrailingZeros64(m) / 8 // the first quote, backslash or control character
			break
		}
		i += 8
	}
	if i < len(d) && d[i] == '"' {
		return jspan{off: start + 1, end: i}, i + 1, nil
	}
	off := len(p.esc)
	b := append(p.esc, d[start+1:i]...)
	for {
		if i >= len(d) {
			p.pos = i
			return jspan{}, 0, p.errorf("unterminated string")
		}
		c := d[i]
		switch {
		case c == '"':
			p.esc = b
			return jspan{off: ^off, end: len(b)}, i + 1, nil
		case c < 0x20:
			p.pos = i
			return jspan{}, 0, p.errorf("control character in a string")
		case c != '\\':
			b = append(b, c)
			i++
			continue
		}
		if i+1 >= len(d) {
			p.pos = i
			return jspan{}, 0, p.errorf("unterminated escape")
		}
		switch e := d[i+1]; e {
		case '"', '\\', '/':
			b = append(b, e)
		case 'b':
			b = append(b, '\b')
		case 'f':
			b = append(b, '\f')
		case 'n':
			b = append(b, '\n')
		case 'r':
			b = append(b, '\r')
		case 't':
			b = append(b, '\t')
		case 'u':
			r, ok := hex4(d, i+2)
			if !ok {
				p.pos = i
				return jspan{}, 0, p.errorf("bad \\u escape")
			}
			i += 6
			if utf16.IsSurrogate(r) {
				if r2, ok := hex4(d, i+2); ok && i+1 < len(d) && d[i] == '\\' && d[i+1] == 'u' {
					if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
						b = utf8.AppendRune(b, dec)
						i += 6
						continue
					}
				}
				r = utf8.RuneError
			}
			b = utf8.AppendRune(b, r)
			continue
		default:
			p.pos = i
			return jspan{}, 0, p.errorf("bad escape \\%c", e)
		}
		i += 2
	}
}

func hex4(d string, i int) (rune, bool) {
	if i+4 > len(d) {
		return 0, false
	}
	v, err := strconv.ParseUint(d[i:i+4], 16, 16)
	if err != nil {
		return 0, false
	}
	return rune(v), true
}

// lookup returns the index of the last member of object n named k, or -1.
// idx, when not nil, maps names to their last index.
func (t *jtree) lookup(n int, k string, idx map[string]int) int {
	if idx != nil {
		if i, ok := idx[k]; ok {
			return i
		}
		return -1
	}
	names := t.names[t.nodes[n].name0 : t.nodes[n].name0+t.nodes[n].n]
	for i := len(names) - 1; i >= 0; i-- {
		if names[i].len() == len(k) && t.str(names[i]) == k {
			return i
		}
	}
	return -1
}

// lastIndex returns a name → last index map for large objects, nil for
// small ones (lookup scans them).
func (t *jtree) lastIndex(n int) map[string]int {
	if t.len(n) <= 16 {
		return nil
	}
	m := make(map[string]int, t.len(n))
	for i := range t.len(n) {
		m[t.name(n, i)] = i
	}
	return m
}

// canonNum splits a JSON number literal into the significant digits
// (sig1+sig2, without leading or trailing zeros; empty for zero), the sign
// and the decimal exponent e, so that the value is ±sig × 10^e. ok is false
// when the exponent is too large to handle; compare literals then.
func canonNum(lit string) (neg bool, sig1, sig2 string, e int64, ok bool) {
	s := lit
	if s != "" && s[0] == '-' {
		neg, s = true, s[1:]
	}
	intp := s
	var frac, exp string
	for i := 0; i < len(s); i++ {
		if s[i] == '.' || s[i] == 'e' || s[i] == 'E' {
			intp = s[:i]
			rest := s[i:]
			if rest[0] == '.' {
				rest = rest[1:]
				j := 0
				for j < len(rest) && rest[j] != 'e' && rest[j] != 'E' {
					j++
				}
				frac, rest = rest[:j], rest[j:]
			}
			if rest != "" {
				exp = rest[1:]
			}
			break
		}
	}
	if exp != "" {
		x := exp
		if x[0] == '+' {
			x = x[1:]
		}
		if len(x) > 15 {
			return false, "", "", 0, false
		}
		v, err := strconv.ParseInt(x, 10, 64)
		if err != nil {
			return false, "", "", 0, false
		}
		e = v
	}
	e -= int64(len(frac))
	// Strip trailing zeros (raising e) then leading zeros.
	for len(frac) > 0 && frac[len(frac)-1] == '0' {
		frac = frac[:len(frac)-1]
		e++
	}
	if frac == "" {
		for len(intp) > 0 && intp[len(intp)-1] == '0' {
			intp = intp[:len(intp)-1]
			e++
		}
	}
	for len(intp) > 0 && intp[0] == '0' {
		intp = intp[1:]
	}
	if intp == "" {
		for len(frac) > 0 && frac[0] == '0' {
			frac = frac[1:]
		}
	}
	if intp == "" && frac == "" {
		return false, "", "", 0, true // zero, whatever its sign
	}
	return neg, intp, frac, e, true
}

// numEqual reports whether two JSON number literals denote the same value.
func numEqual(a, b string) bool {
	if a == b {
		return true
	}
	na, a1, a2, ea, oka := canonNum(a)
	nb, b1, b2, eb, okb := canonNum(b)
	if !oka || !okb {
		return false
	}
	if na != nb || ea != eb || len(a1)+len(a2) != len(b1)+len(b2) {
		return false
	}
	for i := 0; i < len(a1)+len(a2); i++ {
		if at(a1, a2, i) != at(b1, b2, i) {
			return false
		}
	}
	return true
}

func at(s1, s2 string, i int) byte {
	if i < len(s1) {
		return s1[i]
	}
	return s2[i-len(s1)]
}
