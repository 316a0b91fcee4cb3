package diff

import (
	"mime"
	"slices"
	"strings"

	"github.com/tapline/tapline/schema"
)

// Result is the comparison of a production response with a target's.
type Result struct {
	Status  StatusResult `json:"status"`
	Headers []HeaderDiff `json:"headers,omitempty"` // in production's header order, then the target's new ones
	Body    BodyResult   `json:"body"`
	// Keys names every difference (see the package doc), each once, in the
	// order status, headers, body. Empty when the responses match.
	Keys []string `json:"keys,omitempty"`
}

// Equal reports whether no difference was found.
func (r *Result) Equal() bool { return len(r.Keys) == 0 }

// StatusResult compares status codes.
type StatusResult struct {
	Prod  int32 `json:"production"`
	Cand  int32 `json:"target"`
	Equal bool  `json:"equal"`
}

// HeaderDiff is one header that differs. A header's lines are compared
// as one list of values, shown joined with ", " (see groupHeaders).
type HeaderDiff struct {
	Name string `json:"name"` // lower-cased
	Kind string `json:"kind"` // DiffAdded, DiffRemoved or DiffChanged
	Old  string `json:"old,omitempty"`
	New  string `json:"new,omitempty"`
}

// Compare compares a target's response cand with the production response
// prod. It never fails: what could not be decoded is compared as raw bytes
// and said in Body.DecodeError. A nil response compares as an empty one;
// callers handle a missing response (no recording, target error) before.
func (d *Differ) Compare(prod, cand *schema.Response) Result {
	var r Result
	r.Status = StatusResult{Prod: prod.GetStatus(), Cand: cand.GetStatus(), Equal: prod.GetStatus() == cand.GetStatus()}
	if !r.Status.Equal {
		r.Keys = append(r.Keys, "status")
	}
	r.Headers = d.compareHeaders(prod.GetHeaders(), cand.GetHeaders())
	for _, h := range r.Headers {
		r.Keys = append(r.Keys, "header:"+h.Name)
	}
	var keys []string
	r.Body, keys = d.compareBody(prod, cand)
	if r.Keys == nil {
		r.Keys = keys // the body's own slice
	} else {
		r.Keys = append(r.Keys, keys...)
	}
	return r
}

// headerValues is one group of groupHeaders: its values are
// vals[start:end] of the vals groupHeaders returns with it.
type headerValues struct {
	name       string
	start, end int
}

// groupHeaders groups values by lower-cased name, in order of first
// appearance, leaving out ignored headers, and normalises them so that
// equivalent forms compare equal: as RFC 9110 allows, the lines of a
// header are one comma-separated list ("a, b" in one line or two; space
// around commas does not count). Set-Cookie, which cannot be joined, keeps
// one value per cookie: its name only, sorted, unless
// Config.NoDefaultIgnoreHeaders. Content-Encoding is lower-cased without
// "identity" (absent when nothing else is left). Content-Type is compared
// with its media type and charset lower-cased, and charset=utf-8 equal to
// no charset (bodies without one are read as UTF-8).
//
// The groups are appended to out and their values to vals, each group's
// in one run (compareHeaders passes arrays on its stack); a header that
// comes back after another one has its run moved to the end (rare).
func (d *Differ) groupHeaders(hs []*schema.Header, out []headerValues, vals []string) ([]headerValues, []string) {
	for _, h := range hs {
		name, ignored := d.headerName(h.GetName())
		if ignored {
			continue
		}
		i := slices.IndexFunc(out, func(x headerValues) bool { return x.name == name })
		switch {
		case i < 0:
			out = append(out, headerValues{name: name, start: len(vals), end: len(vals)})
			i = len(out) - 1
		case out[i].end != len(vals):
			start := len(vals)
			vals = append(vals, vals[out[i].start:out[i].end]...)
			out[i].start = start
		}
		v := trimSpace(h.GetValue())
		switch {
		case name == "content-type":
			vals = append(vals, normContentType(v))
		case name == "set-cookie" && d.cookieNames:
			v, _, _ = strings.Cut(v, "=")
			vals = append(vals, strings.TrimSpace(v))
		case name == "set-cookie":
			vals = append(vals, v)
		default:
			for rest, more := v, true; more; {
				var e string
				e, rest, more = strings.Cut(rest, ",")
				e = trimSpace(e)
				if name == "content-encoding" {
					if e = strings.ToLower(e); e == "identity" {
						continue
					}
				}
				if e != "" {
					vals = append(vals, e)
				}
			}
		}
		out[i].end = len(vals)
	}
	out = slices.DeleteFunc(out, func(g headerValues) bool { return g.name == "content-encoding" && g.start == g.end })
	for _, g := range out {
		if g.name == "set-cookie" && d.cookieNames {
			slices.Sort(vals[g.start:g.end]) // cookies compare by name, in any order
		}
	}
	return out, vals
}

// sameHeaders reports whether p and c are the same list of headers but
// for the values of ignored ones: then each side groups into the same
// values, and compareHeaders finds nothing. Responses of one service
// usually have their headers in one order, and differ only in dates and
// ids, which are ignored.
func (d *Differ) sameHeaders(p, c []*schema.Header) bool {
	if len(p) != len(c) {
		return false
	}
	for i, h := range p {
		if h.GetName() != c[i].GetName() {
			return false
		}
		if h.GetValue() != c[i].GetValue() {
			if _, ignored := d.headerName(h.GetName()); !ignored {
				return false
			}
		}
	}
	return true
}

// headerInfo is what Differ.headerNames knows of a header name.
type headerInfo struct {
	lower   string // the name lower-cased
	ignored bool   // the header is not compared
}

// headerName returns a header name trimmed and lower-cased, and whether
// the header is ignored. For the spellings New prepared
// (Differ.headerNames) that takes one look-up and no allocation.
func (d *Differ) headerName(name string) (lower string, ignored bool) {
	name = trimSpace(name)
	if h, ok := d.headerNames[name]; ok {
		return h.lower, h.ignored
	}
	lower = strings.ToLower(name)
	return lower, d.ignoreHeaders[lower]
}

// trimSpace is strings.TrimSpace, quicker for the usual strings that
// start and end with a printable ASCII character (and so have nothing to
// trim).
func trimSpace(s string) string {
	if s != "" && s[0] > ' ' && s[0] < 0x7f && s[len(s)-1] > ' ' && s[len(s)-1] < 0x7f {
		return s
	}
	return strings.TrimSpace(s)
}

// commonHeaders returns response header names that New prepares (see
// headerName), besides the ignored ones.
func commonHeaders() []string {
	return []string{
		"Accept-Ranges", "Access-Control-Allow-Credentials", "Access-Control-Allow-Headers",
		"Access-Control-Allow-Methods", "Access-Control-Allow-Origin", "Access-Control-Expose-Headers",
		"Access-Control-Max-Age", "Allow", "Alt-Svc", "Cache-Control", "Content-Disposition",
		"Content-Encoding", "Content-Language", "Content-Location", "Content-Range",
		"Content-Security-Policy", "Content-Type", "Link", "Location", "Permissions-Policy", "Pragma",
		"Referrer-Policy", "Retry-After", "Set-Cookie", "Strict-Transport-Security", "Vary",
		"Www-Authenticate", "X-Content-Type-Options", "X-Frame-Options", "X-Ratelimit-Limit",
		"X-Ratelimit-Remaining", "X-Ratelimit-Reset", "X-Xss-Protection",
	}
}

// normContentType normalises a Content-Type value for comparing: media
// type and charset lower-cased, charset=utf-8 (or utf8) left out, as
// mime.FormatMediaType writes it; a value mime.ParseMediaType refuses is
// kept as it is. The usual forms ("application/json", "text/html;
// charset=UTF-8") are handled without the mime package, with the same
// result (see TestContentTypeFastPath).
func normContentType(v string) string {
	if mt, cs, ok := simpleContentType(v); ok {
		switch cs = strings.ToLower(cs); cs {
		case "", "utf-8", "utf8":
			return mt
		default:
			return mt + "; charset=" + cs
		}
	}
	return normContentTypeMIME(v)
}

// normContentTypeMIME is normContentType with the mime package.
func normContentTypeMIME(v string) string {
	mt, params, err := mime.ParseMediaType(v)
	if err != nil {
		return v
	}
	if cs, ok := params["charset"]; ok {
		params["charset"] = strings.ToLower(cs)
		if cs := params["charset"]; cs == "utf-8" || cs == "utf8" {
			delete(params, "charset") // the default: bodies are read as UTF-8
		}
	}
	return mime.FormatMediaType(mt, params)
}

// simpleContentType splits the commonest forms of Content-Type values:
// "type/subtype" in lower case, alone or followed by "; charset=<token>"
// (or ";charset=<token>"), without other space. ok is false for anything
// else.
func simpleContentType(v string) (mediaType, charset string, ok bool) {
	mt, rest, _ := strings.Cut(v, ";")
	slash := strings.IndexByte(mt, '/')
	if slash <= 0 || slash == len(mt)-1 {
		return "", "", false
	}
	for i := range len(mt) {
		if c := mt[i]; i != slash && (!isTokenByte(c) || c >= 'A' && c <= 'Z') {
			return "", "", false
		}
	}
	if len(v) == len(mt) {
		return mt, "", true
	}
	cs, ok := strings.CutPrefix(rest, "charset=")
	if !ok {
		if cs, ok = strings.CutPrefix(rest, " charset="); !ok {
			return "", "", false
		}
	}
	if cs == "" {
		return "", "", false
	}
	for i := range len(cs) {
		if !isTokenByte(cs[i]) {
			return "", "", false
		}
	}
	return mt, cs, true
}

// isTokenByte reports whether c may appear in an RFC 2045 token (as the
// mime package reads it): printable ASCII but space and tspecials.
func isTokenByte(c byte) bool { return tokenBytes[c] }

var tokenBytes = func() (t [256]bool) {
	for c := '!'; c < 0x7f; c++ {
		t[c] = !strings.ContainsRune(`()<>@,;:\"/[]?=`, c)
	}
	return t
}()

func (d *Differ) compareHeaders(p, c []*schema.Header) []HeaderDiff {
	if d.sameHeaders(p, c) {
		return nil
	}
	var groups [2][16]headerValues
	var vals [2][32]string
	gp, vp := d.groupHeaders(p, groups[0][:0], vals[0][:0])
	gc, vc := d.groupHeaders(c, groups[1][:0], vals[1][:0])
	find := func(gs []headerValues, name string) int {
		return slices.IndexFunc(gs, func(x headerValues) bool { return x.name == name })
	}
	show := func(vs []string) string { return cut(strings.Join(vs, ", "), d.cfg.MaxValueLen) }
	var out []HeaderDiff
	for _, a := range gp {
		av := vp[a.start:a.end]
		j := find(gc, a.name)
		switch {
		case j < 0:
			out = append(out, HeaderDiff{Name: a.name, Kind: DiffRemoved, Old: show(av)})
		case !slices.EqualFunc(av, vc[gc[j].start:gc[j].end], d.maskedEqual):
			out = append(out, HeaderDiff{Name: a.name, Kind: DiffChanged, Old: show(av), New: show(vc[gc[j].start:gc[j].end])})
		}
	}
	for _, b := range gc {
		if find(gp, b.name) < 0 {
			out = append(out, HeaderDiff{Name: b.name, Kind: DiffAdded, New: show(vc[b.start:b.end])})
		}
	}
	return out
}
