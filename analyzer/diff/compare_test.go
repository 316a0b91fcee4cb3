package diff

import (
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/tapline/tapline/schema"
)

func TestHeaders(t *testing.T) {
	cases := []struct {
		name       string
		cfg        Config
		prod, cand []string
		want       []HeaderDiff
	}{
		{name: "default ignore list", prod: []string{"Date: Mon, 01 Jan 2026 10:00:00 GMT", "Server: a", "X-Request-Id: 1", "ETag: \"x\"", "Content-Length: 5"},
			cand: []string{"Date: Tue, 02 Jan 2026 10:00:00 GMT", "Server: b", "x-request-id: 2", "Etag: \"y\"", "Transfer-Encoding: chunked"}},
		{name: "configured names, any case", cfg: Config{IgnoreHeaders: []string{"x-Build", "VARY"}},
			prod: []string{"X-Build: 1", "Vary: Accept", "Cache-Control: no-cache"}, cand: []string{"x-build: 2", "Cache-Control: max-age=60"},
			want: []HeaderDiff{{"cache-control", DiffChanged, "no-cache", "max-age=60"}}},
		{name: "added, removed, changed", prod: []string{"A: 1", "B: 2"}, cand: []string{"b: 3", "C: 4"},
			want: []HeaderDiff{{"a", DiffRemoved, "1", ""}, {"b", DiffChanged, "2", "3"}, {"c", DiffAdded, "", "4"}}},
		{name: "names are case-insensitive", prod: []string{"Content-Type: application/json"}, cand: []string{"content-type: application/json"}},
		{name: "lines of one header form a list", prod: []string{"Vary: Accept", "Vary: Accept-Encoding", "Allow: GET,HEAD"},
			cand: []string{"Vary: Accept,  Accept-Encoding", "Allow: GET, HEAD"}},
		{name: "list order counts", prod: []string{"Vary: Accept, Origin"}, cand: []string{"Vary: Origin, Accept"},
			want: []HeaderDiff{{"vary", DiffChanged, "Accept, Origin", "Origin, Accept"}}},
		{name: "set-cookie by name only", prod: []string{"Set-Cookie: sid=abc; Path=/; HttpOnly", "Set-Cookie: lang=en"},
			cand: []string{"Set-Cookie: lang=fr", "Set-Cookie: sid=xyz; Path=/; HttpOnly"}},
		{name: "set-cookie names differ", prod: []string{"Set-Cookie: sid=abc"}, cand: []string{"Set-Cookie: session=abc"},
			want: []HeaderDiff{{"set-cookie", DiffChanged, "sid", "session"}}},
		{name: "defaults off", cfg: Config{NoDefaultIgnoreHeaders: true}, prod: []string{"Server: a", "Set-Cookie: sid=1"}, cand: []string{"Server: a", "Set-Cookie: sid=2"},
			want: []HeaderDiff{{"set-cookie", DiffChanged, "sid=1", "sid=2"}}},
		{name: "masks apply to values", prod: []string{"Location: /orders/123e4567-e89b-12d3-a456-426614174000"},
			cand: []string{"Location: /orders/a23e4567-e89b-12d3-a456-426614174000"}},
		{name: "content-encoding identity", prod: []string{"Content-Encoding: identity"}, cand: nil},
		{name: "values are cut", cfg: Config{MaxValueLen: 4}, prod: []string{"X-A: 123456"}, cand: []string{"X-A: abcdef"},
			want: []HeaderDiff{{"x-a", DiffChanged, "1234…", "abcd…"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newDiffer(t, tc.cfg).Compare(response(200, "", tc.prod...), response(200, "", tc.cand...))
			if !slices.Equal(r.Headers, tc.want) {
				t.Errorf("got %q\nwant %q", r.Headers, tc.want)
			}
			var keys []string
			for _, h := range tc.want {
				keys = append(keys, "header:"+h.Name)
			}
			if !slices.Equal(r.Keys, keys) {
				t.Errorf("keys %q, want %q", r.Keys, keys)
			}
		})
	}
}

func TestStatusAndKeys(t *testing.T) {
	d := newDiffer(t, Config{})
	r := d.Compare(jsonResp(`{"a":1}`, "X-A: 1"), response(500, `{"a":2}`, "Content-Type: application/json", "X-A: 2"))
	if r.Status != (StatusResult{Prod: 200, Cand: 500}) {
		t.Errorf("status %+v", r.Status)
	}
	if want := []string{"status", "header:x-a", "body:$.a"}; !slices.Equal(r.Keys, want) || r.Equal() {
		t.Errorf("keys %q, want %q", r.Keys, want)
	}
	// Nil responses compare as empty ones.
	if r := d.Compare(nil, nil); !r.Equal() || r.Body.Kind != BodyEmpty {
		t.Errorf("nil: %+v", r)
	}
}

func TestNewRefusesBadRules(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Masks: []string{"(unclosed"}}, `mask "(unclosed"`},
		{Config{Masks: []string{"x*"}}, `matches the empty string`},
		{Config{IgnorePaths: []string{"$.a", "items[*]"}}, `IgnorePaths[1] "items[*]": a path starts with "$"`},
		{Config{IgnorePaths: []string{"$.a-b"}}, `IgnorePaths[0] "$.a-b": "a-b" at offset 2 is not a name`},
		{Config{IgnorePaths: []string{"$.a["}}, `bad [...]`},
		{Config{IgnorePaths: []string{`$["a]`}}, `unterminated`},
		{Config{IgnorePaths: []string{"$.."}}, `".." must be followed`},
		{Config{UnorderedPaths: []string{"$.a]"}}, `UnorderedPaths[0]`},
		{Config{IgnoreHeaders: []string{"X Y"}}, `IgnoreHeaders[0] "X Y" is not a header name`},
		{Config{NoiseShare: 1.5}, `NoiseShare 1.5`},
		{Config{MaxDiffs: -1}, `must not be negative`},
	} {
		_, err := New(tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want %q", tc.cfg, err, tc.want)
		}
	}
	d := newDiffer(t, Config{})
	if c := d.Config(); c.MaxValueLen != 200 || c.MaxDiffs != 50 || c.MaxDecoded != 8<<20 || c.NoiseShare != 0.2 || c.NoiseMinSamples != 20 || c.MaxKeys != 200 {
		t.Errorf("defaults %+v", c)
	}
}

// contentTypes are Content-Type values for TestContentTypeFastPath and
// its fuzzer: the forms simpleContentType takes and their near misses.
var contentTypes = []string{
	"application/json", "application/json; charset=utf-8", "application/json;charset=UTF-8", "text/html; charset=ISO-8859-1",
	"application/problem+json; charset=utf8", "text/plain; charset=\"utf-8\"", "Application/JSON", "application/json ; charset=utf-8",
	"application/json;  charset=utf-8", "application/json; Charset=utf-8", "application/json; charset=", "application/json;",
	"application/json; charset=utf-8; q=1", "application/json; boundary=x", "application", "/json", "application/", "a/b/c",
	"application/json; charset=utf-8 ", " application/json", "text/html; charset=a,b", "text/x-é", "x/y; charset=é",
	"application/vnd.api+json;charset=windows-1252", "",
}

// TestContentTypeFastPath: the values simpleContentType takes normalise
// and parse as with the mime package.
func TestContentTypeFastPath(t *testing.T) {
	for _, v := range contentTypes {
		contentTypeAgrees(t, v)
	}
	if _, _, ok := simpleContentType("application/json; charset=utf-8"); !ok {
		t.Error("the usual form is not taken")
	}
}

func contentTypeAgrees(t *testing.T, v string) {
	t.Helper()
	if got, want := normContentType(v), normContentTypeMIME(v); got != want {
		t.Errorf("normContentType(%q) = %q, with mime %q", v, got, want)
	}
	mt, cs := parseContentType(v)
	if wmt, wcs := parseContentTypeMIME(v); mt != wmt || cs != wcs {
		t.Errorf("parseContentType(%q) = %q, %q; with mime %q, %q", v, mt, cs, wmt, wcs)
	}
}

// Headers repeated after others, and names in any case, group as before.
func TestHeaderGroups(t *testing.T) {
	d := newDiffer(t, Config{})
	groups, vals := d.groupHeaders(response(200, "", "Vary: Accept", "CONTENT-TYPE: text/html; charset=UTF-8", "x-a: 1",
		"Vary: Origin, Cookie", "Date: x", "X-A: 2", "Set-Cookie: b=1", "Vary: Accept-Language", "set-cookie: a=2").Headers, nil, nil)
	var got [][]string
	for _, g := range groups {
		got = append(got, append([]string{g.name}, vals[g.start:g.end]...))
	}
	want := [][]string{
		{"vary", "Accept", "Origin", "Cookie", "Accept-Language"},
		{"content-type", "text/html"},
		{"x-a", "1", "2"},
		{"set-cookie", "a", "b"},
	}
	if !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("got %q\nwant %q", got, want)
	}
}

// Compare from many goroutines at once, with one Differ (whose pooled
// parsing memory they share), gives what it gives alone.
func TestCompareConcurrent(t *testing.T) {
	d := newDiffer(t, Config{UnorderedPaths: []string{"$.orders[*].tags"}})
	prod, cand := benchPair()
	api, masked, diffs := apiPair()
	pairs := [][2]*schema.Response{
		{jsonResp(prod), jsonResp(cand)},
		{jsonResp(api), jsonResp(masked)},
		{jsonResp(api), jsonResp(diffs)},
		{jsonResp(diffs), jsonResp(prod)},
		{jsonResp(`{"a":[1,2,{"b":"\u00e9"}]}`), jsonResp(`{"a":[2,1,{"b":"é"}]}`)},
	}
	want := make([]Result, len(pairs))
	for i, p := range pairs {
		want[i] = d.Compare(p[0], p[1])
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for n := range 200 {
				i := (g + n) % len(pairs)
				if got := d.Compare(pairs[i][0], pairs[i][1]); !reflect.DeepEqual(got, want[i]) {
					t.Errorf("pair %d: got %+v\nwant %+v", i, got, want[i])
					return
				}
			}
		})
	}
	wg.Wait()
}
