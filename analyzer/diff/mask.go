package diff

import (
	"regexp"
	"strconv"
	"strings"
)

// masker is one compiled mask. The default masks (MaskUUID, MaskTimestamp
// and MaskHTTPDate) also have a hand-written matcher, find, that finds
// exactly what their regexp finds, several times faster (mask_test.go
// checks it against the regexp, on cases and by fuzzing); other masks use
// the regexp.
type masker struct {
	re *regexp.Regexp
	// find returns the leftmost match of the mask in s that starts at or
	// after from, as the regexp would find it, or -1, -1. Nil for masks
	// without a hand-written matcher.
	find func(s string, from int) (start, end int)
	mark string // what matches are replaced with: "\x00<i>\x00"
}

// compileMask compiles the i-th mask of a Differ.
func compileMask(i int, src string) (masker, error) {
	re, err := regexp.Compile(src)
	if err != nil {
		return masker{}, err
	}
	m := masker{re: re, mark: "\x00" + strconv.Itoa(i) + "\x00"}
	switch src {
	case MaskUUID:
		m.find = findUUID
	case MaskTimestamp:
		m.find = findTimestamp
	case MaskHTTPDate:
		m.find = findHTTPDate
	}
	return m, nil
}

// replace returns s with every match of the mask replaced by its mark, as
// m.re.ReplaceAllLiteralString(s, m.mark) does; s itself when nothing
// matches.
func (m *masker) replace(s string) string {
	if m.find == nil {
		if !m.re.MatchString(s) {
			return s
		}
		return m.re.ReplaceAllLiteralString(s, m.mark)
	}
	start, end := m.find(s, 0)
	if start < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	last := 0
	for start >= 0 {
		b.WriteString(s[last:start])
		b.WriteString(m.mark)
		last = end
		start, end = m.find(s, end)
	}
	b.WriteString(s[last:])
	return b.String()
}

// maskedEqual reports whether a and b are equal once every mask match is
// replaced by a marker of its mask.
func (d *Differ) maskedEqual(a, b string) bool {
	if a == b {
		return true
	}
	if len(d.masks) == 0 {
		return false
	}
	return d.mask(a) == d.mask(b)
}

// mask replaces the matches of each mask, in order, with "\x00<i>\x00".
func (d *Differ) mask(s string) string {
	for i := range d.masks {
		s = d.masks[i].replace(s)
	}
	return s
}

// The hand-written matchers work on bytes: the regexps' patterns are
// ASCII, and an ASCII byte is always a character of its own in Go's
// reading of UTF-8 (valid or not), so matches start and end at the same
// offsets. \d is [0-9] in RE2.

// (isDigit and isHex are in route.go.)

// digitsAt reports whether s[i:i+n] are n digits.
func digitsAt(s string, i, n int) bool {
	if i+n > len(s) {
		return false
	}
	for _, c := range []byte(s[i : i+n]) {
		if !isDigit(c) {
			return false
		}
	}
	return true
}

// findUUID finds MaskUUID: 8-4-4-4-12 hex digits, 36 bytes.
func findUUID(s string, from int) (int, int) {
	for i := from; i+36 <= len(s); i++ {
		if s[i+8] != '-' || s[i+13] != '-' || s[i+18] != '-' || s[i+23] != '-' {
			continue
		}
		if uuidAt(s[i : i+36]) {
			return i, i + 36
		}
	}
	return -1, -1
}

func uuidAt(u string) bool {
	for j := range len(u) {
		switch j {
		case 8, 13, 18, 23:
			// a '-', checked by findUUID
		default:
			if !isHex(u[j]) {
				return false
			}
		}
	}
	return true
}

// findTimestamp finds MaskTimestamp:
//
//	\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:[Zz]|[+-]\d{2}(?::?\d{2})?)?
//
// The regexp takes the leftmost start and there, as Go's regexps prefer
// (leftmost-first), each optional part when it matches and as many
// fractional digits as there are: everything after the minutes is
// optional, so no later part can make an earlier choice fail.
func findTimestamp(s string, from int) (int, int) {
	for i := from; i+16 <= len(s); i++ {
		if s[i+4] != '-' {
			continue
		}
		if end := timestampAt(s, i); end > 0 {
			return i, end
		}
	}
	return -1, -1
}

// timestampAt returns the end of the timestamp at s[i:], or -1.
func timestampAt(s string, i int) int {
	if !digitsAt(s, i, 4) || s[i+4] != '-' || !digitsAt(s, i+5, 2) || s[i+7] != '-' || !digitsAt(s, i+8, 2) {
		return -1
	}
	if c := s[i+10]; c != 'T' && c != 't' && c != ' ' {
		return -1
	}
	if !digitsAt(s, i+11, 2) || s[i+13] != ':' || !digitsAt(s, i+14, 2) {
		return -1
	}
	j := i + 16
	// (?::\d{2}(?:[.,]\d+)?)?
	if j < len(s) && s[j] == ':' && digitsAt(s, j+1, 2) {
		j += 3
		if j+1 < len(s) && (s[j] == '.' || s[j] == ',') && isDigit(s[j+1]) {
			j += 2
			for j < len(s) && isDigit(s[j]) {
				j++
			}
		}
	}
	// (?:[Zz]|[+-]\d{2}(?::?\d{2})?)?
	if j < len(s) {
		switch c := s[j]; {
		case c == 'Z' || c == 'z':
			j++
		case (c == '+' || c == '-') && digitsAt(s, j+1, 2):
			j += 3
			switch {
			case j < len(s) && s[j] == ':' && digitsAt(s, j+1, 2):
				j += 3
			case digitsAt(s, j, 2):
				j += 2
			}
		}
	}
	return j
}

// findHTTPDate finds MaskHTTPDate: "Mon, 02 Jan 2006 15:04:05 GMT", 29
// bytes.
func findHTTPDate(s string, from int) (int, int) {
	for i := from; i+29 <= len(s); i++ {
		if s[i+3] != ',' || s[i+25] != ' ' {
			continue
		}
		if httpDateAt(s[i : i+29]) {
			return i, i + 29
		}
	}
	return -1, -1
}

func httpDateAt(v string) bool {
	switch v[:3] {
	case "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun":
	default:
		return false
	}
	switch v[8:11] {
	case "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec":
	default:
		return false
	}
	return v[4] == ' ' && digitsAt(v, 5, 2) && v[7] == ' ' && v[11] == ' ' && digitsAt(v, 12, 4) && v[16] == ' ' &&
		digitsAt(v, 17, 2) && v[19] == ':' && digitsAt(v, 20, 2) && v[22] == ':' && digitsAt(v, 23, 2) && v[25:] == " GMT"
}
