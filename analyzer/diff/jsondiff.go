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

// diffJSON compares the documents a (production) and b (target).
func (d *Differ) diffJSON(a, b *jnode) *jsonDiffer {
	w := &jsonDiffer{d: d}
	w.walk(a, b)
	return w
}

func (w *jsonDiffer) ignored() bool {
	return len(w.d.ignore) > 0 && matchAny(w.d.ignore, w.path)
}

func (w *jsonDiffer) unordered() bool {
	return w.d.cfg.UnorderedArrays || len(w.d.unordered) > 0 && matchAny(w.d.unordered, w.path)
}

func (w *jsonDiffer) walk(a, b *jnode) {
	if w.ignored() {
		return
	}
	if a.kind != b.kind {
		w.emit(DiffChanged, a, b)
		return
	}
	switch a.kind {
	case jNum:
		if !numEqual(a.str, b.str) {
			w.emit(DiffChanged, a, b)
		}
	case jStr:
		if !w.d.maskedEqual(a.str, b.str) {
			w.emit(DiffChanged, a, b)
		}
	case jObj:
		w.walkObject(a, b)
	case jArr:
		if w.unordered() {
			w.walkUnordered(a, b)
			return
		}
		n := min(len(a.kids), len(b.kids))
		for i := range n {
			w.path = append(w.path, idxSeg(i))
			w.walk(a.kids[i], b.kids[i])
			w.path = w.path[:len(w.path)-1]
		}
		for i := n; i < len(a.kids); i++ {
			w.emitAt(idxSeg(i), DiffRemoved, a.kids[i], nil)
		}
		for i := n; i < len(b.kids); i++ {
			w.emitAt(idxSeg(i), DiffAdded, nil, b.kids[i])
		}
	}
}

func (w *jsonDiffer) walkObject(a, b *jnode) {
	ai, bi := a.lastIndex(), b.lastIndex()
	for i, k := range a.keys {
		if a.lookup(k, ai) != i {
			continue // a repeated name: the last one counts
		}
		j := b.lookup(k, bi)
		if j < 0 {
			w.emitAt(keySeg(k), DiffRemoved, a.kids[i], nil)
			continue
		}
		w.path = append(w.path, keySeg(k))
		w.walk(a.kids[i], b.kids[j])
		w.path = w.path[:len(w.path)-1]
	}
	for j, k := range b.keys {
		if b.lookup(k, bi) == j && a.lookup(k, ai) < 0 {
			w.emitAt(keySeg(k), DiffAdded, nil, b.kids[j])
		}
	}
}

// walkUnordered compares two arrays as multisets: elements equal (after
// ignore rules and masks) are matched whatever their position. Unmatched
// elements are paired in order; a pair of two objects or two arrays is
// compared member by member at the production element's index, anything
// else is reported as removed (production index) and added (target
// index).
func (w *jsonDiffer) walkUnordered(a, b *jnode) {
	ha := make([]uint64, len(a.kids))
	hb := make([]uint64, len(b.kids))
	for i, k := range a.kids {
		w.path = append(w.path, idxSeg(i))
		ha[i] = w.hash(k)
		w.path = w.path[:len(w.path)-1]
	}
	byHash := make(map[uint64][]int, len(b.kids))
	for j, k := range b.kids {
		w.path = append(w.path, idxSeg(j))
		hb[j] = w.hash(k)
		w.path = w.path[:len(w.path)-1]
		byHash[hb[j]] = append(byHash[hb[j]], j)
	}
	matched := make([]bool, len(b.kids))
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
			w.emitAt(idxSeg(onlyA[k]), DiffRemoved, a.kids[onlyA[k]], nil)
		case k >= len(onlyA):
			w.emitAt(idxSeg(onlyB[k]), DiffAdded, nil, b.kids[onlyB[k]])
		default:
			x, y := a.kids[onlyA[k]], b.kids[onlyB[k]]
			if x.kind == y.kind && (x.kind == jObj || x.kind == jArr) {
				w.path = append(w.path, idxSeg(onlyA[k]))
				w.walk(x, y)
				w.path = w.path[:len(w.path)-1]
				continue
			}
			w.emitAt(idxSeg(onlyA[k]), DiffRemoved, x, nil)
			w.emitAt(idxSeg(onlyB[k]), DiffAdded, nil, y)
		}
	}
}

func (w *jsonDiffer) emitAt(s seg, kind string, prod, cand *jnode) {
	w.path = append(w.path, s)
	if !w.ignored() {
		w.emit(kind, prod, cand)
	}
	w.path = w.path[:len(w.path)-1]
}

// emit records a difference at w.path.
func (w *jsonDiffer) emit(kind string, prod, cand *jnode) {
	w.buf = append(w.buf[:0], "body:"...)
	w.buf = appendPath(w.buf, w.path, true)
	if !w.seen[string(w.buf)] {
		switch {
		case len(w.keys) < w.d.cfg.MaxKeys:
			if w.seen == nil {
				w.seen = map[string]bool{}
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
	df := Diff{Path: string(appendPath(w.buf[:0], w.path, false)), Kind: kind}
	if prod != nil {
		df.Old = w.render(prod)
	}
	if cand != nil {
		df.New = w.render(cand)
	}
	w.diffs = append(w.diffs, df)
}

// render returns n as compact JSON, cut at Config.MaxValueLen.
func (w *jsonDiffer) render(n *jnode) string {
	limit := w.d.cfg.MaxValueLen
	w.buf = appendJSON(w.buf[:0], n, limit+1)
	return cut(string(w.buf), limit)
}

// appendJSON appends n as compact JSON, stopping once b holds limit bytes.
func appendJSON(b []byte, n *jnode, limit int) []byte {
	if len(b) >= limit {
		return b
	}
	switch n.kind {
	case jNull:
		return append(b, "null"...)
	case jTrue:
		return append(b, "true"...)
	case jFalse:
		return append(b, "false"...)
	case jNum:
		return append(b, n.str...)
	case jStr:
		return appendQuoted(b, n.str)
	case jArr:
		b = append(b, '[')
		for i, k := range n.kids {
			if len(b) >= limit {
				return b
			}
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSON(b, k, limit)
		}
		return append(b, ']')
	default:
		b = append(b, '{')
		for i, k := range n.kids {
			if len(b) >= limit {
				return b
			}
			if i > 0 {
				b = append(b, ',')
			}
			b = appendQuoted(b, n.keys[i])
			b = append(b, ':')
			b = appendJSON(b, k, limit)
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

func (w *jsonDiffer) hash(n *jnode) uint64 {
	if n.hashed {
		return n.hash
	}
	h := w.hashUncached(n)
	n.hash, n.hashed = h, true
	return h
}

func (w *jsonDiffer) hashUncached(n *jnode) uint64 {
	if w.ignored() {
		return mix(0x1651)
	}
	h := mix(uint64(n.kind) + 1)
	switch n.kind {
	case jNum:
		neg, s1, s2, e, ok := canonNum(n.str)
		if !ok {
			return mix(fnvString(h, n.str))
		}
		h = fnvString(fnvString(h, s1), s2)
		if neg {
			h = mix(h)
		}
		return mix(h ^ uint64(e))
	case jStr:
		s := n.str
		if len(w.d.masks) > 0 {
			s = w.d.mask(s)
		}
		return mix(fnvString(h, s))
	case jArr:
		unordered := w.unordered()
		for i, k := range n.kids {
			w.path = append(w.path, idxSeg(i))
			kh := w.hash(k)
			w.path = w.path[:len(w.path)-1]
			if unordered {
				h += mix(kh)
			} else {
				h = mix(bits.RotateLeft64(h, 5) ^ kh)
			}
		}
		return mix(h ^ uint64(len(n.kids)))
	case jObj:
		ai := n.lastIndex()
		for i, k := range n.keys {
			if n.lookup(k, ai) != i {
				continue
			}
			w.path = append(w.path, keySeg(k))
			if !w.ignored() {
				h += mix(fnvString(fnvOffset, k) ^ bits.RotateLeft64(w.hash(n.kids[i]), 17))
			}
			w.path = w.path[:len(w.path)-1]
		}
		return mix(h)
	}
	return h
}
