package diff

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/tapline/tapline/schema"
)

// FuzzJSONDiff compares two arbitrary bodies as JSON: it never panics, a
// body compared with itself has no difference, equality is symmetric and
// the parser accepts exactly what encoding/json accepts.
func FuzzJSONDiff(f *testing.F) {
	for _, s := range [][2]string{
		{`{"a":1}`, `{"a":1.0}`},
		{`{"a":[1,2,{"b":null}]}`, `{"a":[2,1,{"b":false}]}`},
		{`{"u":["x","y","x"],"x":1}`, `{"u":["y","x","x"],"x":2}`},
		{`[{"id":"123e4567-e89b-12d3-a456-426614174000"}]`, `[{"id":"2026-01-02T15:04:05Z"}]`},
		{`{"a":1,"a":2}`, `{"a":2}`},
		{`"\ud83d\ude00"`, `"😀"`},
		{`[1e400, -0, 0.1e-5]`, `[10e399, 0, 1e-6]`},
		{`{"a":`, `not json`},
		{``, `[]`},
	} {
		f.Add([]byte(s[0]), []byte(s[1]))
	}
	differs := []*Differ{
		newDiffer(f, Config{}),
		newDiffer(f, Config{UnorderedArrays: true, IgnorePaths: []string{"$..x", "$.a[1]"}, MaxDiffs: 3, MaxKeys: 4}),
		newDiffer(f, Config{UnorderedPaths: []string{"$.u", "$..v[*]"}, NoDefaultMasks: true}),
	}
	f.Fuzz(func(t *testing.T, a, b []byte) {
		_, err := parseJSON(a)
		if bytes.Count(a, []byte("["))+bytes.Count(a, []byte("{")) <= maxJSONDepth && (err == nil) != json.Valid(a) {
			t.Errorf("parseJSON(%q): %v, json.Valid %v", a, err, json.Valid(a))
		}
		for _, d := range differs {
			if r := d.Compare(jsonResp(string(a)), jsonResp(string(a))); !r.Equal() {
				t.Fatalf("%q with itself: %q %+v", a, r.Keys, r.Body)
			}
			ab := d.Compare(jsonResp(string(a)), jsonResp(string(b)))
			ba := d.Compare(jsonResp(string(b)), jsonResp(string(a)))
			if ab.Equal() != ba.Equal() {
				t.Fatalf("%q vs %q: equal %v one way, %v the other (%q, %q)", a, b, ab.Equal(), ba.Equal(), ab.Keys, ba.Keys)
			}
			cfg := d.Config()
			if len(ab.Body.Diffs) > cfg.MaxDiffs || len(ab.Keys) > cfg.MaxKeys+1 {
				t.Fatalf("%d diffs, %d keys", len(ab.Body.Diffs), len(ab.Keys))
			}
		}
	})
}

// FuzzDecodeBody decodes arbitrary bodies under arbitrary codings: it
// never panics, stays within MaxDecoded, and a response compared with
// itself has no difference.
func FuzzDecodeBody(f *testing.F) {
	text := []byte(`{"hello":"wörld"}`)
	f.Add(gz(text), "gzip", "application/json", false)
	f.Add(zl(text), "deflate", "application/json; charset=utf-8", false)
	f.Add(rawDeflate(text), "deflate", "text/plain; charset=iso-8859-1", false)
	f.Add(br(text), "br", "text/plain; charset=utf-16", false)
	f.Add(br(gz(text)), "gzip, br", "", false)
	f.Add(gz(text)[:10], "gzip", "application/json", true)
	f.Add(gz(make([]byte, 1<<20)), "gzip", "application/octet-stream", false)
	f.Add([]byte("\xff\xfe{\x00}\x00"), "identity", "text/plain; charset=\"windows-1252\"", false)
	f.Add([]byte("abc"), "zstd", "text/plain; charset=bogus", false)
	const limit = 64 << 10
	d := newDiffer(f, Config{MaxDecoded: limit})
	f.Fuzz(func(t *testing.T, body []byte, ce, ct string, truncated bool) {
		r := &schema.Response{Status: 200, Body: body, BodyTruncated: truncated, BodySize: int64(len(body)) + 1,
			Headers: []*schema.Header{{Name: "Content-Encoding", Value: ce}, {Name: "Content-Type", Value: ct}}}
		dec := d.decodeBody(r, "production")
		if len(dec.body) > limit {
			t.Fatalf("decoded %d bytes, past %d", len(dec.body), limit)
		}
		if res := d.Compare(r, r); !res.Equal() {
			t.Fatalf("a response differs from itself: %q %+v", res.Keys, res.Body)
		}
	})
}

// FuzzRouter: any target routes without panicking to "METHOD /...".
func FuzzRouter(f *testing.F) {
	for _, s := range []string{"/users/123", "http://h/x?y", "*", "", "/a/{b}", "/files/123.json", "/s/Ab3_xY9-Qw7zLm2Np5Rt"} {
		f.Add(s)
	}
	r, err := NewRouter([]string{"/users/{id}", "/static/{p...}", `~^/v(\d+)/x => /v$1/x`})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, target string) {
		got := r.Route("GET", target)
		if len(got) < 5 || got[:4] != "GET " || got[4] != '/' && got[4] != '*' {
			t.Fatalf("Route(%q) = %q", target, got)
		}
	})
}

// FuzzPattern: rule parsing never panics, and a rendered path parses back
// to a rule matching it.
func FuzzPattern(f *testing.F) {
	for _, s := range []string{"$", "$.a[*].b", "$..etag", `$["a.b"][3]`, "$..[*]", `$["\u0041"]`, "$.a..", "$[", "a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := parsePattern(s)
		if err != nil {
			return
		}
		p.match([]seg{keySeg("a"), idxSeg(1), keySeg("b")})
		var segs []seg
		for _, tok := range p {
			switch tok.kind {
			case tokKey:
				segs = append(segs, keySeg(tok.key))
			case tokIdx:
				segs = append(segs, idxSeg(tok.idx))
			default:
				return
			}
		}
		rendered := string(appendPath(nil, segs, false))
		q, err := parsePattern(rendered)
		if err != nil || !q.match(segs) {
			t.Fatalf("%q rendered %q: %v", s, rendered, err)
		}
	})
}

// FuzzGuidedParse: parsing the target's document against production's
// tree gives the comparison that parsing it in full gives. Besides a and
// b, it compares a with a copy of a that has b[1:] in place of a few of
// its bytes (at an offset and of a length taken from b), which is often
// valid JSON when a is.
func FuzzGuidedParse(f *testing.F) {
	for _, s := range guideCases {
		f.Add([]byte(s[0]), []byte(s[1]))
	}
	f.Add([]byte(`{"a":{"b":[1,2,{"c":"d"}]},"e":[{"f":1}]}`), []byte("\x1d\x03"+`9`))
	f.Add([]byte(`{"a":{"b":[1,2,{"c":"d"}]},"e":[{"f":1}]}`), []byte("\x0d\x00"+`,"z":[]`))
	differs := guideDiffers(f)
	f.Fuzz(func(t *testing.T, a, b []byte) {
		guidedAgrees(t, differs, a, b)
		if len(a) > 0 && len(b) > 0 {
			i := int(b[0]) % len(a)
			j := min(len(a), i+int(b[len(b)-1])%8)
			c := append(append(append([]byte{}, a[:i]...), b[1:]...), a[j:]...)
			guidedAgrees(t, differs, a, c)
		}
	})
}

// FuzzContentType: Content-Type values normalise and parse as with the
// mime package, whether simpleContentType takes them or not.
func FuzzContentType(f *testing.F) {
	for _, v := range contentTypes {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v string) {
		contentTypeAgrees(t, v)
	})
}
