package diff

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
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

// jnode is one parsed JSON value. Objects keep their members in document
// order (keys[i] names kids[i]); a repeated key is kept, and the last one
// wins when comparing, as in encoding/json.
type jnode struct {
	kind   jkind
	str    string // a string's value, or a number's literal
	keys   []string
	kids   []*jnode
	hash   uint64 // see jsonDiffer.hash; valid when hashed
	hashed bool
}

// parseJSON parses one JSON document (RFC 8259, strict: no trailing
// commas, comments or NaN; invalid UTF-8 inside strings is kept as is).
func parseJSON(data []byte) (*jnode, error) {
	p := &parser{src: string(data)}
	p.ws()
	n, err := p.value(0)
	if err != nil {
		return nil, err
	}
	p.ws()
	if p.pos != len(p.src) {
		return nil, p.errorf("data after the document")
	}
	return n, nil
}

// parser parses one document. Strings without escapes and number
// literals are substrings of src, and nodes, child and key slices are
// carved from arenas, so that a document costs a few allocations.
type parser struct {
	src      string
	pos      int
	slab     []jnode  // nodes are handed out from here
	kids     []*jnode // a stack of the children of the containers being parsed
	keys     []string // likewise for member names
	kidArena []*jnode // finished containers' children are carved from here
	keyArena []string // and their member names from here
	sbuf     []byte   // scratch for strings with escapes
}

// chunk is the size of a new arena: about one item per 16 bytes of input.
func (p *parser) chunk(need int) int {
	return max(need, 16, min(len(p.src)/16, 1024))
}

func (p *parser) carveKids(from []*jnode) []*jnode {
	if len(p.kidArena) < len(from) {
		p.kidArena = make([]*jnode, p.chunk(len(from)))
	}
	out := p.kidArena[:len(from):len(from)]
	p.kidArena = p.kidArena[len(from):]
	copy(out, from)
	return out
}

func (p *parser) carveKeys(from []string) []string {
	if len(p.keyArena) < len(from) {
		p.keyArena = make([]string, p.chunk(len(from)))
	}
	out := p.keyArena[:len(from):len(from)]
	p.keyArena = p.keyArena[len(from):]
	copy(out, from)
	return out
}

func (p *parser) errorf(format string, args ...any) error {
	return fmt.Errorf("json: offset %d: %s", p.pos, fmt.Sprintf(format, args...))
}

func (p *parser) node(k jkind) *jnode {
	if len(p.slab) == 0 {
		p.slab = make([]jnode, p.chunk(1))
	}
	nd := &p.slab[0]
	p.slab = p.slab[1:]
	nd.kind = k
	return nd
}

func (p *parser) ws() {
	for p.pos < len(p.src) {
		switch p.src[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *parser) value(depth int) (*jnode, error) {
	if p.pos >= len(p.src) {
		return nil, p.errorf("unexpected end of input")
	}
	switch c := p.src[p.pos]; {
	case c == '{':
		return p.object(depth + 1)
	case c == '[':
		return p.array(depth + 1)
	case c == '"':
		s, err := p.string()
		if err != nil {
			return nil, err
		}
		n := p.node(jStr)
		n.str = s
		return n, nil
	case c == '-' || c >= '0' && c <= '9':
		return p.number()
	default:
		for _, lit := range [...]struct {
			s string
			k jkind
		}{{"null", jNull}, {"true", jTrue}, {"false", jFalse}} {
			if strings.HasPrefix(p.src[p.pos:], lit.s) {
				p.pos += len(lit.s)
				return p.node(lit.k), nil
			}
		}
		return nil, p.errorf("unexpected %q", c)
	}
}

func (p *parser) object(depth int) (*jnode, error) {
	if depth > maxJSONDepth {
		return nil, p.errorf("nested deeper than %d", maxJSONDepth)
	}
	p.pos++ // {
	base := len(p.kids)
	p.ws()
	if p.pos < len(p.src) && p.src[p.pos] == '}' {
		p.pos++
		return p.node(jObj), nil
	}
	for {
		p.ws()
		if p.pos >= len(p.src) || p.src[p.pos] != '"' {
			return nil, p.errorf("expected a member name")
		}
		k, err := p.string()
		if err != nil {
			return nil, err
		}
		p.ws()
		if p.pos >= len(p.src) || p.src[p.pos] != ':' {
			return nil, p.errorf("expected ':'")
		}
		p.pos++
		p.ws()
		v, err := p.value(depth)
		if err != nil {
			return nil, err
		}
		p.keys = append(p.keys, k)
		p.kids = append(p.kids, v)
		p.ws()
		if p.pos >= len(p.src) {
			return nil, p.errorf("unexpected end of input in an object")
		}
		if p.src[p.pos] == ',' {
			p.pos++
			continue
		}
		if p.src[p.pos] != '}' {
			return nil, p.errorf("expected ',' or '}'")
		}
		p.pos++
		n := p.node(jObj)
		n.kids = p.carveKids(p.kids[base:])
		n.keys = p.carveKeys(p.keys[base:])
		p.kids, p.keys = p.kids[:base], p.keys[:base]
		return n, nil
	}
}

func (p *parser) array(depth int) (*jnode, error) {
	if depth > maxJSONDepth {
		return nil, p.errorf("nested deeper than %d", maxJSONDepth)
	}
	p.pos++ // [
	base := len(p.kids)
	p.ws()
	if p.pos < len(p.src) && p.src[p.pos] == ']' {
		p.pos++
		return p.node(jArr), nil
	}
	for {
		p.ws()
		v, err := p.value(depth)
		if err != nil {
			return nil, err
		}
		p.kids = append(p.kids, v)
		// Keep keys aligned with kids so that objects can slice both.
		p.keys = append(p.keys, "")
		p.ws()
		if p.pos >= len(p.src) {
			return nil, p.errorf("unexpected end of input in an array")
		}
		if p.src[p.pos] == ',' {
			p.pos++
			continue
		}
		if p.src[p.pos] != ']' {
			return nil, p.errorf("expected ',' or ']'")
		}
		p.pos++
		n := p.node(jArr)
		n.kids = p.carveKids(p.kids[base:])
		p.kids, p.keys = p.kids[:base], p.keys[:base]
		return n, nil
	}
}

func (p *parser) number() (*jnode, error) {
	start := p.pos
	d := p.src
	i := p.pos
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
		return nil, p.errorf("bad number")
	}
	if i < len(d) && d[i] == '.' {
		i++
		j := i
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
		if i == j {
			p.pos = i
			return nil, p.errorf("bad number: no digits after '.'")
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
			return nil, p.errorf("bad number: no digits in the exponent")
		}
	}
	p.pos = i
	n := p.node(jNum)
	n.str = d[start:i]
	return n, nil
}

// string parses a JSON string at p.pos (which is '"').
func (p *parser) string() (string, error) {
	d := p.src
	i := p.pos + 1
	start := i
	for i < len(d) && d[i] != '"' && d[i] != '\\' && d[i] >= 0x20 {
		i++
	}
	if i < len(d) && d[i] == '"' {
		p.pos = i + 1
		return d[start:i], nil
	}
	b := append(p.sbuf[:0], d[start:i]...)
	for {
		if i >= len(d) {
			p.pos = i
			return "", p.errorf("unterminated string")
		}
		c := d[i]
		switch {
		case c == '"':
			p.pos = i + 1
			p.sbuf = b
			return string(b), nil
		case c < 0x20:
			p.pos = i
			return "", p.errorf("control character in a string")
		case c != '\\':
			b = append(b, c)
			i++
			continue
		}
		if i+1 >= len(d) {
			p.pos = i
			return "", p.errorf("unterminated escape")
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
				return "", p.errorf("bad \\u escape")
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
			return "", p.errorf("bad escape \\%c", e)
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

// lookup returns the index of the last member named k, or -1. idx, when
// not nil, maps names to their last index.
func (n *jnode) lookup(k string, idx map[string]int) int {
	if idx != nil {
		if i, ok := idx[k]; ok {
			return i
		}
		return -1
	}
	for i := len(n.keys) - 1; i >= 0; i-- {
		if n.keys[i] == k {
			return i
		}
	}
	return -1
}

// lastIndex returns a name → last index map for large objects, nil for
// small ones (lookup scans them).
func (n *jnode) lastIndex() map[string]int {
	if len(n.keys) <= 16 {
		return nil
	}
	m := make(map[string]int, len(n.keys))
	for i, k := range n.keys {
		m[k] = i
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
