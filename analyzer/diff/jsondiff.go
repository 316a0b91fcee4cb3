package diff

import (
	"math/bits"
	"unicode/utf8"
)

// Diff is one difference between two JSON documents.
type Diff struct {
	Path string `json:"path"` // exact path, e.g. $.items[3].price
	Kind string `json:"kind"` // DiffAdded, DiffRemoved or DiffChanged
	// Old and New are the production and target values as compact JSON,
	// cut at Config.MaxValueLen; empty for the side that has no value.
	Old string `json:"old,omitempty"`
	New string `json:"new,omitempty"`
}

// Kinds of Diff and HeaderDiff.
const (
	DiffAdded   = "added"   // only the target has it
	DiffRemoved = "removed" // only production has it
	DiffChanged = "changed" // both have it, with different values or types
)

// jsonDiffer walks two parsed documents. It is used once, by one
// goroutine.
type jsonDiffer struct {
	d     *Differ
	path  []seg
	diffs []Diff
	more  int // differences past Config.MaxDiffs
	keys  []string
	seen  map[string]bool
	over  bool // more keys than Config.MaxKeys
	buf   []byte
}

// jsonScratch is the memory one JSON comparison needs besides its
// results: the parsed documents, the parser's stacks, the walk's path and
// buffers. Differ keeps them in a pool (Differ.scratch), so that a
// comparison reuses the memory of an earlier one instead of allocating
// its own.
type jsonScratch struct {
	p      parser
	ta, tb jtree
	path   []seg
	buf    []byte
	seen   map[string]bool
}

// maxPooledNodes bounds the trees of a pooled jsonScratch (a node and its
// place among its parent's children and names take about 100 bytes): the
// scratch of larger documents is left to the garbage collector rather
// than kept.
const maxPooledNodes = 1 << 15

func (d *Differ) getScratch() *jsonScratch {
	if s, ok := d.scratch.Get().(*jsonScratch); ok {
		return s
	}
	return new(jsonScratch)
}

// putScratch returns s to the pool. Nothing s holds may be used after.
func (d *Differ) putScratch(s *jsonScratch) {
	if cap(s.ta.nodes)+cap(s.tb.nodes) > maxPooledNodes || len(s.seen) > DefaultMaxKeys {
		return
	}
	// Drop what points into the documents.
	s.ta.reset()
	s.tb.reset()
	s.p = parser{stack: s.p.stack[:0], names: s.p.names[:0], esc: s.p.esc[:0]}
	clear(s.path[:cap(s.path)])
	clear(s.seen)
	d.scratch.Put(s)
}

// diffJSON compares the documents in s.ta (production) and s.tb
// (target). The returned jsonDiffer's diffs and keys are its own; the
// rest of it belongs to s.
func (d *Differ) diffJSON(s *jsonScratch) *jsonDiffer {
	w := &jsonDiffer{d: d, path: s.path[:0], buf: s.buf[:0], seen: s.seen}
	w.walk(&s.ta, s.ta.root, &s.tb, s.tb.root)
	s.path, s.buf, s.seen = w.path, w.buf, w.seen
	return w
}

func (w *jsonDiffer) ignored() bool {
	return len(w.d.ignore) > 0 && matchAny(w.d.ignore, w.path)
}

func (w *jsonDiffer) unordered() bool {
	return w.d.cfg.UnorderedArrays || len(w.d.unordered) > 0 && matchAny(w.d.unordered, w.path)
}

// walk compares node a of ta, production's value at w.path, with node b
// of tb, the target's.
func (w *jsonDiffer) walk(ta *jtree, a int, tb *jtree, b int) {
	if w.ignored() {
		return
	}
	ta, a = ta.resolve(a)
	tb, b = tb.resolve(b)
	if ta == tb && a == b {
		return // the target's text is production's
	}
	na, nb := &ta.nodes[a], &tb.nodes[b]
	if na.kind != nb.kind {
		w.emit(DiffChanged, ta, a, tb, b)
		return
	}
	switch na.kind {
	case jNum:
		if !numEqual(ta.str(na.text), tb.str(nb.text)) {
			w.emit(DiffChanged, ta, a, tb, b)
		}
	case jStr:
		if !w.d.maskedEqual(ta.str(na.text), tb.str(nb.text)) {
			w.emit(DiffChanged, ta, a, tb, b)
		}
	case jObj:
		if ta.str(na.text) == tb.str(nb.text) {
			return // the same text: the same members
		}
		w.walkObject(ta, a, tb, b)
	case jArr:
		if ta.str(na.text) == tb.str(nb.text) {
			return // the same text: the same elements
		}
		if w.unordered() {
			w.walkUnordered(ta, a, tb, b)
			return
		}
		la, lb := na.n, nb.n
		n := min(la, lb)
		for i := range n {
			w.path = append(w.path, idxSeg(i))
			w.walk(ta, ta.kid(a, i), tb, tb.kid(b, i))
			w.path = w.path[:len(w.path)-1]
		}
		for i := n; i < la; i++ {
			w.emitAt(idxSeg(i), DiffRemoved, ta, ta.kid(a, i), nil, -1)
		}
		for i := n; i < lb; i++ {
			w.emitAt(idxSeg(i), DiffAdded, nil, -1, tb, tb.kid(b, i))
		}
	}
}

// walkObject compares two objects (resolved nodes).
func (w *jsonDiffer) walkObject(ta *jtree, a int, tb *jtree, b int) {
	if ta.sameNames(a, tb, b) && ta.distinctNames(a) {
		// The usual case, and what the loops below come to then.
		for i := range ta.len(a) {
			w.path = append(w.path, keySeg(ta.name(a, i)))
			w.walk(ta, ta.kid(a, i), tb, tb.kid(b, i))
			w.path = w.path[:len(w.path)-1]
		}
		return
	}
	ai, bi := ta.lastIndex(a), tb.lastIndex(b)
	distinctA := ta.distinctNames(a)
	for i := range ta.len(a) {
		k := ta.name(a, i)
		if !distinctA && ta.lookup(a, k, ai) != i {
			continue // a repeated name: the last one counts
		}
		j := tb.lookup(b, k, bi)
		if j < 0 {
			w.emitAt(keySeg(k), DiffRemoved, ta, ta.kid(a, i), nil, -1)
			continue
		}
		w.path = append(w.path, keySeg(k))
		w.walk(ta, ta.kid(a, i), tb, tb.kid(b, j))
		w.path = w.path[:len(w.path)-1]
	}
	distinctB := tb.distinctNames(b)
	for j := range tb.len(b) {
		k := tb.name(b, j)
		if (distinctB || tb.lookup(b, k, bi) == j) && ta.lookup(a, k, ai) < 0 {
			w.emitAt(keySeg(k), DiffAdded, nil, -1, tb, tb.kid(b, j))
		}
	}
}

// sameNames reports whether object a of t and object b of u have the same
// member names in the same order.
func (t *jtree) sameNames(a int, u *jtree, b int) bool {
	n := t.len(a)
	if u.len(b) != n {
		return false
	}
	for i := range n {
		if t.name(a, i) != u.name(b, i) {
			return false
		}
	}
	return true
}

// distinctNames reports whether no name appears twice among the members
// of object n. It may answer false for more than 32 members without
// looking.
func (t *jtree) distinctNames(n int) bool {
	if t.len(n) > 32 {
		return false
	}
	var slots [64]uint8 // 1 + the index of the member in each slot, 0 for none
	for i := range t.len(n) {
		k := t.name(n, i)
		h := uint64(len(k))
		if k != "" {
			h |= uint64(k[0])<<8 | uint64(k[len(k)-1])<<16
		}
		for s := (h * 0x9e3779b97f4a7c15) >> 58; ; s = (s + 1) & 63 {
			if slots[s] == 0 {
				slots[s] = uint8(i + 1)
				break
			}
			if t.name(n, int(slots[s])-1) == k {
				return false
			}
		}
	}
	return true
}

// walkUnordered compares two arrays as multisets: elements equal (after
// ignore rules and masks) are matched whatever their position. Unmatched
// elements are paired in order; a pair of two objects or two arrays is
// compared member by member at the production element's index, anything
// else is reported as removed (production index) and added (target
// index).
func (w *jsonDiffer) walkUnordered(ta *jtree, a int, tb *jtree, b int) {
	ha := make([]uint64, ta.len(a))
	hb := make([]uint64, tb.len(b))
	for i := range ha {
		w.path = append(w.path, idxSeg(i))
		ha[i] = w.hash(ta, ta.kid(a, i))
		w.path = w.path[:len(w.path)-1]
	}
	byHash := make(map[uint64][]int, len(hb))
	for j := range hb {
		w.path = append(w.path, idxSeg(j))
		hb[j] = w.hash(tb, tb.kid(b, j))
		w.path = w.path[:len(w.path)-1]
		byHash[hb[j]] = append(byHash[hb[j]], j)
	}
	matched := make([]bool, len(hb))
	var onlyA []int
	for i, h := range ha {
		if js := byHash[h]; len(js) > 0 {
			matched[js[0]] = true
			byHash[h] = js[1:]
			continue
		}
		onlyA = append(onlyA, i)
	}
	var onlyB []int
	for j, m := range matched {
		if !m {
			onlyB = append(onlyB, j)
		}
	}
	for k := 0; k < len(onlyA) || k < len(onlyB); k++ {
		switch {
		case k >= len(onlyB):
			w.emitAt(idxSeg(onlyA[k]), DiffRemoved, ta, ta.kid(a, onlyA[k]), nil, -1)
		case k >= len(onlyA):
			w.emitAt(idxSeg(onlyB[k]), DiffAdded, nil, -1, tb, tb.kid(b, onlyB[k]))
		default:
			tx, x := ta.resolve(ta.kid(a, onlyA[k]))
			ty, y := tb.resolve(tb.kid(b, onlyB[k]))
			if kx, ky := tx.nodes[x].kind, ty.nodes[y].kind; kx == ky && (kx == jObj || kx == jArr) {
				w.path = append(w.path, idxSeg(onlyA[k]))
				w.walk(tx, x, ty, y)
				w.path = w.path[:len(w.path)-1]
				continue
			}
			w.emitAt(idxSeg(onlyA[k]), DiffRemoved, tx, x, nil, -1)
			w.emitAt(idxSeg(onlyB[k]), DiffAdded, nil, -1, ty, y)
		}
	}
}

func (w *jsonDiffer) emitAt(s seg, kind string, tp *jtree, prod int, tc *jtree, cand int) {
	w.path = append(w.path, s)
	if !w.ignored() {
		w.emit(kind, tp, prod, tc, cand)
	}
	w.path = w.path[:len(w.path)-1]
}

// emit records a difference at w.path between node prod of tp
// (production's value) and node cand of tc (the target's); -1 for a side
// without one.
func (w *jsonDiffer) emit(kind string, tp *jtree, prod int, tc *jtree, cand int) {
	w.buf = append(w.buf[:0], "body:"...)
	w.buf = appendPath(w.buf, w.path, true)
	if !w.seen[string(w.buf)] {
		switch {
		case len(w.keys) < w.d.cfg.MaxKeys:
			if w.seen == nil {
				w.seen = map[string]bool{}
			}
			if w.keys == nil {
				w.keys = make([]string, 0, 8)
			}
			k := string(w.buf)
			w.seen[k] = true
			w.keys = append(w.keys, k)
		case !w.over:
			w.over = true
			w.keys = append(w.keys, "body:more")
		}
	}
	if len(w.diffs) >= w.d.cfg.MaxDiffs {
		w.more++
		return
	}
	// Path, Old and New are cut from one string.
	b := appendPath(w.buf[:0], w.path, false)
	pathEnd := len(b)
	if prod >= 0 {
		b = w.render(b, tp, prod)
	}
	oldEnd := len(b)
	if cand >= 0 {
		b = w.render(b, tc, cand)
	}
	w.buf = b
	all := string(b)
	if w.diffs == nil {
		w.diffs = make([]Diff, 0, min(w.d.cfg.MaxDiffs, 8))
	}
	w.diffs = append(w.diffs, Diff{Path: all[:pathEnd], Kind: kind, Old: all[pathEnd:oldEnd], New: all[oldEnd:]})
}

// render appends node n of t as compact JSON, cut as cut does at
// Config.MaxValueLen.
func (w *jsonDiffer) render(b []byte, t *jtree, n int) []byte {
	limit, start := w.d.cfg.MaxValueLen, len(b)
	b = t.appendJSON(b, n, start+limit+1)
	if v := b[start:]; len(v) > limit {
		i := limit
		for i > 0 && !utf8.RuneStart(v[i]) {
			i--
		}
		b = append(b[:start+i], "…"...)
	}
	return b
}

// appendJSON appends node n as compact JSON, stopping once b holds limit
// bytes.
func (t *jtree) appendJSON(b []byte, n int, limit int) []byte {
	if len(b) >= limit {
		return b
	}
	t, n = t.resolve(n)
	switch nd := &t.nodes[n]; nd.kind {
	case jNull:
		return append(b, "null"...)
	case jTrue:
		return append(b, "true"...)
	case jFalse:
		return append(b, "false"...)
	case jNum:
		return append(b, t.str(nd.text)...)
	case jStr:
		return appendQuoted(b, t.str(nd.text))
	case jArr:
		b = append(b, '[')
		for i := range nd.n {
			if len(b) >= limit {
				return b
			}
			if i > 0 {
				b = append(b, ',')
			}
			b = t.appendJSON(b, t.kid(n, i), limit)
		}
		return append(b, ']')
	default:
		b = append(b, '{')
		for i := range nd.n {
			if len(b) >= limit {
				return b
			}
			if i > 0 {
				b = append(b, ',')
			}
			b = appendQuoted(b, t.name(n, i))
			b = append(b, ':')
			b = t.appendJSON(b, t.kid(n, i), limit)
		}
		return append(b, '}')
	}
}

// cut returns s if it has at most limit bytes, else its first limit bytes
// (at a character boundary) followed by "…".
func cut(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	i := limit
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}

// Hashing for unordered arrays: a 64-bit digest of a value after ignore
// rules, masks and number normalisation, so that equal-after-normalising
// elements get equal hashes. Objects and unordered arrays combine their
// members with a commutative sum, so order does not matter. Each node is
// hashed once (memoised in the node).
const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

func fnvString(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime
	}
	return h
}

// mix is the splitmix64 finaliser.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// hash returns the hash of node n of t (one of w's documents) at w.path.
func (w *jsonDiffer) hash(t *jtree, n int) uint64 {
	t, n = t.resolve(n)
	if nd := &t.nodes[n]; nd.hashed {
		return nd.hash
	}
	h := w.hashUncached(t, n)
	t.nodes[n].hash, t.nodes[n].hashed = h, true
	return h
}

func (w *jsonDiffer) hashUncached(t *jtree, n int) uint64 {
	if w.ignored() {
		return mix(0x1651)
	}
	kind := t.nodes[n].kind
	h := mix(uint64(kind) + 1)
	switch kind {
	case jNum:
		lit := t.text(n)
		neg, s1, s2, e, ok := canonNum(lit)
		if !ok {
			return mix(fnvString(h, lit))
		}
		h = fnvString(fnvString(h, s1), s2)
		if neg {
			h = mix(h)
		}
		return mix(h ^ uint64(e))
	case jStr:
		s := t.text(n)
		if len(w.d.masks) > 0 {
			s = w.d.mask(s)
		}
		return mix(fnvString(h, s))
	case jArr:
		unordered := w.unordered()
		for i := range t.len(n) {
			w.path = append(w.path, idxSeg(i))
			kh := w.hash(t, t.kid(n, i))
			w.path = w.path[:len(w.path)-1]
			if unordered {
				h += mix(kh)
			} else {
				h = mix(bits.RotateLeft64(h, 5) ^ kh)
			}
		}
		return mix(h ^ uint64(t.len(n)))
	case jObj:
		ai := t.lastIndex(n)
		for i := range t.len(n) {
			k := t.name(n, i)
			if t.lookup(n, k, ai) != i {
				continue
			}
			w.path = append(w.path, keySeg(k))
			if !w.ignored() {
				h += mix(fnvString(fnvOffset, k) ^ bits.RotateLeft64(w.hash(t, t.kid(n, i)), 17))
			}
			w.path = w.path[:len(w.path)-1]
		}
		return mix(h)
	}
	return h
}
