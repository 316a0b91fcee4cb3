package diff

import (
	"regexp"
	"strings"
	"unicode/utf8"
)

// TextSummary summarises a line diff of two text bodies. A line includes
// its "\n", so a missing final newline changes the last line.
type TextSummary struct {
	ProdLines int `json:"production_lines"`
	CandLines int `json:"target_lines"`
	// Added and Removed count the lines of a shortest edit script turning
	// production's body into the target's (a changed line is one removed
	// and one added).
	Added   int `json:"added"`
	Removed int `json:"removed"`
	// Approximate is set when the bodies are too large or too different
	// for an exact count within the work bound: Added and Removed are then
	// lower bounds (lines present more often on one side than on the
	// other, regardless of order; beyond 200 000 lines only the difference
	// in line counts).
	Approximate bool `json:"approximate,omitempty"`
	// FirstLine is the 1-based number of the first line that differs
	// (lines before it are the same on both sides); ProdLine and CandLine
	// are that line on each side, without its newline and cut at
	// Config.MaxValueLen ("" past the end). Lines longer than that (such
	// as one-line JSON) are shown from shortly before their first
	// difference, after masks, with masked values as "<masked>".
	FirstLine int    `json:"first_line"`
	ProdLine  string `json:"production_line,omitempty"`
	CandLine  string `json:"target_line,omitempty"`
}

// maxTextLines bounds the lines held in memory for a line diff (both
// sides together); larger bodies get diffTextLarge's summary. Differ
// holds it (maxTextLines) so that tests can lower it.
const maxTextLines = 200_000

// textWorkBound bounds the line diff: the Myers search stops once the edit
// distance exceeds textWorkBound / (lines to compare), and the summary is
// then approximate. About 10 ms of work on a 2-core machine.
const textWorkBound = 8_000_000

// diffText compares a and b line by line, lines being equal when equal
// after masks.
func (d *Differ) diffText(a, b string) *TextSummary {
	if strings.Count(a, "\n")+strings.Count(b, "\n") > d.maxTextLines {
		return d.diffTextLarge(a, b)
	}
	allA, allB := splitLines(a), splitLines(b)
	s := &TextSummary{ProdLines: len(allA), CandLines: len(allB)}
	// Lines equal as they are at both ends need no mask.
	rawPre, rawSuf := commonEnds(allA, allB, func(x, y string) bool { return x == y })
	la, lb := allA[rawPre:len(allA)-rawSuf], allB[rawPre:len(allB)-rawSuf]

	ids := make(map[string]int32, len(la))
	intern := func(lines []string) []int32 {
		out := make([]int32, len(lines))
		for i, l := range lines {
			if len(d.masks) > 0 {
				l = d.mask(l)
			}
			id, ok := ids[l]
			if !ok {
				id = int32(len(ids))
				ids[l] = id
			}
			out[i] = id
		}
		return out
	}
	ia, ib := intern(la), intern(lb)
	pre, suf := commonEnds(ia, ib, func(x, y int32) bool { return x == y })
	ma, mb := ia[pre:len(ia)-suf], ib[pre:len(ib)-suf]
	if len(ma) == 0 && len(mb) == 0 {
		return s
	}
	s.FirstLine = rawPre + pre + 1
	var pl, cl string
	if i := s.FirstLine - 1; i < len(allA) {
		pl = strings.TrimSuffix(allA[i], "\n")
	}
	if i := s.FirstLine - 1; i < len(allB) {
		cl = strings.TrimSuffix(allB[i], "\n")
	}
	s.ProdLine, s.CandLine = d.showLines(pl, cl)

	n, m := len(ma), len(mb)
	if dist, ok := editDistance(ma, mb, min(textWorkBound/(n+m), n+m)); ok {
		s.Removed, s.Added = (dist+n-m)/2, (dist-n+m)/2
		return s
	}
	s.Approximate = true
	count := make(map[int32]int, n)
	for _, id := range ma {
		count[id]++
	}
	for _, id := range mb {
		if count[id] > 0 {
			count[id]--
		} else {
			s.Added++
		}
	}
	for _, c := range count {
		s.Removed += c
	}
	return s
}

// commonEnds returns the lengths of the common prefix and, in what
// remains, the common suffix of a and b.
func commonEnds[T any](a, b []T, eq func(T, T) bool) (pre, suf int) {
	for pre < len(a) && pre < len(b) && eq(a[pre], b[pre]) {
		pre++
	}
	for suf < len(a)-pre && suf < len(b)-pre && eq(a[len(a)-1-suf], b[len(b)-1-suf]) {
		suf++
	}
	return pre, suf
}

// splitLines splits s after each "\n"; a final line without one is kept.
func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	lines := strings.SplitAfter(s, "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	return lines
}

// editDistance returns the number of insertions and deletions of a
// shortest edit script from a to b (Myers' O(ND) algorithm, forward pass
// only), or false if it exceeds maxD.
func editDistance(a, b []int32, maxD int) (int, bool) {
	n, m := len(a), len(b)
	if n == 0 || m == 0 {
		return n + m, n+m <= maxD
	}
	off := maxD + 1
	v := make([]int, 2*maxD+3)
	for d := 0; d <= maxD; d++ {
		for k := -d; k <= d; k += 2 {
			var x int
			if k == -d || k != d && v[off+k-1] < v[off+k+1] {
				x = v[off+k+1]
			} else {
				x = v[off+k-1] + 1
			}
			y := x - k
			for x < n && y < m && a[x] == b[y] {
				x++
				y++
			}
			v[off+k] = x
			if x >= n && y >= m {
				return d, true
			}
		}
	}
	return 0, false
}

// showLines returns the first differing lines for display (see
// TextSummary.FirstLine).
func (d *Differ) showLines(a, b string) (string, string) {
	limit := d.cfg.MaxValueLen
	if len(a) <= limit && len(b) <= limit {
		return a, b
	}
	if len(d.masks) > 0 {
		a, b = d.mask(a), d.mask(b)
	}
	off := 0
	for off < len(a) && off < len(b) && a[off] == b[off] {
		off++
	}
	start := max(0, off-limit/4)
	for start > 0 && start < len(a) && !utf8.RuneStart(a[start]) {
		start--
	}
	show := func(s string) string {
		prefix := ""
		if start > 0 {
			prefix, s = "…", s[min(start, len(s)):]
		}
		if len(d.masks) > 0 {
			s = maskMarker.ReplaceAllLiteralString(s, "<masked>")
		}
		return prefix + cut(s, limit)
	}
	return show(a), show(b)
}

// maskMarker matches what Differ.mask puts in place of a match.
var maskMarker = regexp.MustCompile("\x00[0-9]+\x00")

// diffTextLarge summarises bodies with too many lines to diff: line
// counts, the first differing line, and lower bounds from the counts. It
// holds no line in memory.
func (d *Differ) diffTextLarge(a, b string) *TextSummary {
	s := &TextSummary{Approximate: true}
	same := true
	for a != "" || b != "" {
		var la, lb string
		la, a = nextLine(a)
		lb, b = nextLine(b)
		if la != "" {
			s.ProdLines++
		}
		if lb != "" {
			s.CandLines++
		}
		if same && !d.maskedEqual(la, lb) {
			same = false
			s.FirstLine = max(s.ProdLines, s.CandLines)
			s.ProdLine, s.CandLine = d.showLines(strings.TrimSuffix(la, "\n"), strings.TrimSuffix(lb, "\n"))
		}
	}
	if same {
		return s
	}
	s.Added, s.Removed = max(0, s.CandLines-s.ProdLines), max(0, s.ProdLines-s.CandLines)
	if s.Added == 0 && s.Removed == 0 {
		s.Added, s.Removed = 1, 1 // at least the first differing line
	}
	return s
}

// nextLine splits off s's first line, with its newline.
func nextLine(s string) (line, rest string) {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i+1], s[i+1:]
	}
	return s, ""
}
