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
	r.Keys = append(r.Keys, keys...)
	return r
}

type headerValues struct {
	name   string
	values []string
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
func (d *Differ) groupHeaders(hs []*schema.Header) []headerValues {
	var out []headerValues
	for _, h := range hs {
		name := strings.ToLower(strings.TrimSpace(h.GetName()))
		if d.ignoreHeaders[name] {
			continue
		}
		i := slices.IndexFunc(out, func(x headerValues) bool { return x.name == name })
		if i < 0 {
			out = append(out, headerValues{name: name})
			i = len(out) - 1
		}
		v := strings.TrimSpace(h.GetValue())
		switch {
		case name == "content-type":
			if mt, params, err := mime.ParseMediaType(v); err == nil {
				if cs, ok := params["charset"]; ok {
					params["charset"] = strings.ToLower(cs)
					if cs := params["charset"]; cs == "utf-8" || cs == "utf8" {
						delete(params, "charset") // the default: bodies are read as UTF-8
					}
				}
				v = mime.FormatMediaType(mt, params)
			}
			out[i].values = append(out[i].values, v)
		case name == "set-cookie" && d.cookieNames:
			v, _, _ = strings.Cut(v, "=")
			out[i].values = append(out[i].values, strings.TrimSpace(v))
		case name == "set-cookie":
			out[i].values = append(out[i].values, v)
		default:
			for e := range strings.SplitSeq(v, ",") {
				e = strings.TrimSpace(e)
				if name == "content-encoding" {
					if e = strings.ToLower(e); e == "identity" {
						continue
					}
				}
				if e != "" {
					out[i].values = append(out[i].values, e)
				}
			}
		}
	}
	out = slices.DeleteFunc(out, func(g headerValues) bool { return g.name == "content-encoding" && len(g.values) == 0 })
	for _, g := range out {
		if g.name == "set-cookie" && d.cookieNames {
			slices.Sort(g.values) // cookies compare by name, in any order
		}
	}
	return out
}

func (d *Differ) compareHeaders(p, c []*schema.Header) []HeaderDiff {
	gp, gc := d.groupHeaders(p), d.groupHeaders(c)
	find := func(gs []headerValues, name string) int {
		return slices.IndexFunc(gs, func(x headerValues) bool { return x.name == name })
	}
	show := func(vs []string) string { return cut(strings.Join(vs, ", "), d.cfg.MaxValueLen) }
	var out []HeaderDiff
	for _, a := range gp {
		j := find(gc, a.name)
		switch {
		case j < 0:
			out = append(out, HeaderDiff{Name: a.name, Kind: DiffRemoved, Old: show(a.values)})
		case !slices.EqualFunc(a.values, gc[j].values, d.maskedEqual):
			out = append(out, HeaderDiff{Name: a.name, Kind: DiffChanged, Old: show(a.values), New: show(gc[j].values)})
		}
	}
	for _, b := range gc {
		if find(gp, b.name) < 0 {
			out = append(out, HeaderDiff{Name: b.name, Kind: DiffAdded, New: show(b.values)})
		}
	}
	return out
}
