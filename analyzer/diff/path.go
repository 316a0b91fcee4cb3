package diff

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// seg is one step of a path: an object member (idx < 0) or an array
// element.
type seg struct {
	key string
	idx int
}

func keySeg(k string) seg { return seg{key: k, idx: -1} }
func idxSeg(i int) seg    { return seg{idx: i} }

// appendPath renders segs in the path syntax of the package doc; with
// collapse, array indices are rendered [*].
func appendPath(b []byte, segs []seg, collapse bool) []byte {
	b = append(b, '$')
	for _, s := range segs {
		switch {
		case s.idx >= 0 && collapse:
			b = append(b, "[*]"...)
		case s.idx >= 0:
			b = append(b, '[')
			b = strconv.AppendInt(b, int64(s.idx), 10)
			b = append(b, ']')
		case isIdent(s.key):
			b = append(b, '.')
			b = append(b, s.key...)
		default:
			b = append(b, '[')
			b = appendQuoted(b, s.key)
			b = append(b, ']')
		}
	}
	return b
}

// isIdent reports whether s is [A-Za-z_][A-Za-z0-9_]*.
func isIdent(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9' {
			continue
		}
		return false
	}
	return true
}

// appendQuoted appends s as a JSON string.
func appendQuoted(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '\r':
			b = append(b, '\\', 'r')
		case c == '\t':
			b = append(b, '\\', 't')
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

type tokKind uint8

const (
	tokKey  tokKind = iota // .name or ["name"]
	tokIdx                 // [3]
	tokAny                 // * or [*]: any one segment
	tokDesc                // ..: zero or more segments
)

type token struct {
	kind tokKind
	key  string
	idx  int
}

// pattern is a compiled path rule (see the package doc).
type pattern []token

// parsePattern compiles a path rule: "$" followed by .name, .*, ["name"],
// [3], [*] and ..name / ..* / ..[...] steps.
func parsePattern(s string) (pattern, error) {
	if !strings.HasPrefix(s, "$") {
		return nil, errors.New(`a path starts with "$", e.g. $.items[*].id`)
	}
	var p pattern
	i := 1
	for i < len(s) {
		switch {
		case strings.HasPrefix(s[i:], ".."):
			p = append(p, token{kind: tokDesc})
			i += 2
			if i == len(s) {
				return nil, errors.New(`".." must be followed by a name, "*" or "[...]"`)
			}
			if s[i] == '[' {
				continue
			}
			t, n, err := parseName(s, i)
			if err != nil {
				return nil, err
			}
			p, i = append(p, t), n
		case s[i] == '.':
			t, n, err := parseName(s, i+1)
			if err != nil {
				return nil, err
			}
			p, i = append(p, t), n
		case s[i] == '[':
			t, n, err := parseBracket(s, i+1)
			if err != nil {
				return nil, err
			}
			p, i = append(p, t), n
		default:
			return nil, fmt.Errorf("unexpected %q at offset %d: expected '.' or '['", s[i], i)
		}
	}
	return p, nil
}

// parseName parses an identifier or "*" at s[i:].
func parseName(s string, i int) (token, int, error) {
	if i < len(s) && s[i] == '*' {
		return token{kind: tokAny}, i + 1, nil
	}
	j := i
	for j < len(s) && s[j] != '.' && s[j] != '[' {
		j++
	}
	if !isIdent(s[i:j]) {
		return token{}, 0, fmt.Errorf("%q at offset %d is not a name: write names other than [A-Za-z_][A-Za-z0-9_]* as [\"name\"]", s[i:j], i)
	}
	return token{kind: tokKey, key: s[i:j]}, j, nil
}

// parseBracket parses `*]`, `3]` or `"name"]` at s[i:].
func parseBracket(s string, i int) (token, int, error) {
	switch {
	case strings.HasPrefix(s[i:], "*]"):
		return token{kind: tokAny}, i + 2, nil
	case i < len(s) && s[i] == '"':
		j := i + 1
		for j < len(s) && s[j] != '"' {
			if s[j] == '\\' {
				j++
			}
			j++
		}
		if j >= len(s) || !strings.HasPrefix(s[j+1:], "]") {
			return token{}, 0, fmt.Errorf("unterminated [\"name\"] at offset %d", i-1)
		}
		var key string
		if err := json.Unmarshal([]byte(s[i:j+1]), &key); err != nil {
			return token{}, 0, fmt.Errorf("name at offset %d is not a JSON string: %v", i, err)
		}
		return token{kind: tokKey, key: key}, j + 2, nil
	default:
		j := i
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		n, err := strconv.Atoi(s[i:j])
		if j == i || err != nil || !strings.HasPrefix(s[j:], "]") {
			return token{}, 0, fmt.Errorf("bad [...] at offset %d: expected [3], [*] or [\"name\"]", i-1)
		}
		return token{kind: tokIdx, idx: n}, j + 1, nil
	}
}

// match reports whether p matches the whole path segs.
func (p pattern) match(segs []seg) bool {
	for len(p) > 0 {
		t := p[0]
		if t.kind == tokDesc {
			for k := 0; k <= len(segs); k++ {
				if p[1:].match(segs[k:]) {
					return true
				}
			}
			return false
		}
		if len(segs) == 0 {
			return false
		}
		s := segs[0]
		switch t.kind {
		case tokKey:
			if s.idx >= 0 || s.key != t.key {
				return false
			}
		case tokIdx:
			if s.idx != t.idx {
				return false
			}
		}
		p, segs = p[1:], segs[1:]
	}
	return len(segs) == 0
}

func matchAny(ps []pattern, segs []seg) bool {
	for _, p := range ps {
		if p.match(segs) {
			return true
		}
	}
	return false
}
