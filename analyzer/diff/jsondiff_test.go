package diff

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

func TestJSONDiff(t *testing.T) {
	type D = Diff
	cases := []struct {
		name       string
		cfg        Config
		prod, cand string
		want       []Diff
		wantKeys   []string // default: "body:"+collapsed path of each want
	}{
		{name: "equal", prod: `{"a":1}`, cand: `{ "a" : 1 }`},
		{name: "key order does not matter", prod: `{"a":1,"b":[1,2]}`, cand: `{"b":[1,2],"a":1}`},
		{name: "nested change", prod: `{"user":{"name":"ada","age":36}}`, cand: `{"user":{"name":"bob","age":36}}`,
			want: []D{{"$.user.name", DiffChanged, `"ada"`, `"bob"`}}},
		{name: "added and removed members", prod: `{"a":1,"b":2}`, cand: `{"a":1,"c":{"x":[true]}}`,
			want: []D{{"$.b", DiffRemoved, "2", ""}, {"$.c", DiffAdded, "", `{"x":[true]}`}}},
		{name: "type changes", prod: `{"a":1,"b":"1","c":null,"d":true,"e":[],"f":{}}`, cand: `{"a":"1","b":1,"c":false,"d":false,"e":{},"f":[]}`,
			want: []D{{"$.a", DiffChanged, "1", `"1"`}, {"$.b", DiffChanged, `"1"`, "1"}, {"$.c", DiffChanged, "null", "false"},
				{"$.d", DiffChanged, "true", "false"}, {"$.e", DiffChanged, "[]", "{}"}, {"$.f", DiffChanged, "{}", "[]"}}},
		{name: "root", prod: `[1]`, cand: `{"a":1}`, want: []D{{"$", DiffChanged, "[1]", `{"a":1}`}}},
		{name: "numbers compare by value", prod: `[1, 1.0, 100, 0.5, -0, 1e3, 12345678901234567890, 1.5e-3]`,
			cand: `[1.0, 1, 1e2, 5e-1, 0, 1000.000, 12345678901234567890.0, 0.0015]`},
		{name: "numbers keep their precision", prod: `[9007199254740993, 0.1]`, cand: `[9007199254740992, 0.10000000000000001]`,
			want:     []D{{"$[0]", DiffChanged, "9007199254740993", "9007199254740992"}, {"$[1]", DiffChanged, "0.1", "0.10000000000000001"}},
			wantKeys: []string{"body:$[*]"}},
		{name: "arrays by index", prod: `{"xs":[1,2,3]}`, cand: `{"xs":[1,3]}`,
			want: []D{{"$.xs[1]", DiffChanged, "2", "3"}, {"$.xs[2]", DiffRemoved, "3", ""}}, wantKeys: []string{"body:$.xs[*]"}},
		{name: "array grows", prod: `[]`, cand: `[{"a":1}]`, want: []D{{"$[0]", DiffAdded, "", `{"a":1}`}}},
		{name: "unordered arrays", cfg: Config{UnorderedArrays: true},
			prod: `{"tags":["a","b","c"],"o":[{"id":1,"v":[1,2]},{"id":2,"v":[3]}]}`,
			cand: `{"tags":["c","a","b"],"o":[{"id":2,"v":[3]},{"id":1,"v":[2,1]}]}`},
		{name: "unordered multiset counts", cfg: Config{UnorderedArrays: true}, prod: `["a","a","b"]`, cand: `["b","a","c"]`,
			want: []D{{"$[1]", DiffRemoved, `"a"`, ""}, {"$[2]", DiffAdded, "", `"c"`}}, wantKeys: []string{"body:$[*]"}},
		{name: "unordered objects paired", cfg: Config{UnorderedArrays: true},
			prod: `[{"id":1,"n":"x"},{"id":2,"n":"y"}]`, cand: `[{"id":2,"n":"y"},{"id":1,"n":"z"}]`,
			want: []D{{"$[0].n", DiffChanged, `"x"`, `"z"`}}},
		{name: "unordered by path only", cfg: Config{UnorderedPaths: []string{"$.tags"}},
			prod: `{"tags":[1,2],"list":[1,2]}`, cand: `{"tags":[2,1],"list":[2,1]}`,
			want: []D{{"$.list[0]", DiffChanged, "1", "2"}, {"$.list[1]", DiffChanged, "2", "1"}}, wantKeys: []string{"body:$.list[*]"}},
		{name: "unordered with ignored members", cfg: Config{UnorderedArrays: true, IgnorePaths: []string{"$[*].at"}},
			prod: `[{"id":1,"at":5},{"id":2,"at":6}]`, cand: `[{"id":2,"at":7},{"id":1}]`},
		{name: "unordered with numbers and masks", cfg: Config{UnorderedArrays: true},
			prod: `[1.0, "id 123e4567-e89b-12d3-a456-426614174000"]`, cand: `["id 00000000-0000-0000-0000-000000000000", 1]`},
		{name: "ignore paths", cfg: Config{IgnorePaths: []string{"$.meta.requestId", "$.items[*].updatedAt", "$..etag", `$["odd key"]`}},
			prod: `{"meta":{"requestId":"a","v":1},"items":[{"id":1,"updatedAt":"x","etag":"1"}],"etag":"q","odd key":1,"deep":{"x":{"etag":2}}}`,
			cand: `{"meta":{"requestId":"b","v":2},"items":[{"id":1,"updatedAt":"y","etag":"2"}],"etag":"r","odd key":2,"deep":{"x":{"etag":3}}}`,
			want: []D{{"$.meta.v", DiffChanged, "1", "2"}}},
		{name: "ignore hides added and removed", cfg: Config{IgnorePaths: []string{"$.debug", "$.items[*].trace"}},
			prod: `{"debug":{},"items":[{"id":1}]}`, cand: `{"items":[{"id":1,"trace":"t"}]}`},
		{name: "ignore wildcard member", cfg: Config{IgnorePaths: []string{"$.counts.*"}},
			prod: `{"counts":{"a":1,"b":2},"x":1}`, cand: `{"counts":{"a":3,"c":2},"x":1}`},
		{name: "masks", prod: `{"id":"123e4567-e89b-12d3-a456-426614174000","at":"2026-01-02T15:04:05.123Z","msg":"done at 2026-01-02 15:04:05+01:00","d":"Mon, 02 Jan 2006 15:04:05 GMT"}`,
			cand: `{"id":"9B2E4567-E89B-12D3-A456-426614174999","at":"2027-12-31T23:59:59Z","msg":"done at 2026-03-02 10:00:00+01:00","d":"Tue, 03 Jan 2006 16:04:05 GMT"}`},
		{name: "masks keep the rest", prod: `{"msg":"user 123e4567-e89b-12d3-a456-426614174000 created"}`, cand: `{"msg":"user 123e4567-e89b-12d3-a456-426614174000 deleted"}`,
			want: []D{{"$.msg", DiffChanged, `"user 123e4567-e89b-12d3-a456-426614174000 created"`, `"user 123e4567-e89b-12d3-a456-426614174000 deleted"`}}},
		{name: "a date alone is not masked", prod: `{"d":"2026-01-02"}`, cand: `{"d":"2026-01-03"}`,
			want: []D{{"$.d", DiffChanged, `"2026-01-02"`, `"2026-01-03"`}}},
		{name: "default masks off", cfg: Config{NoDefaultMasks: true}, prod: `{"id":"123e4567-e89b-12d3-a456-426614174000"}`, cand: `{"id":"123e4567-e89b-12d3-a456-426614174001"}`,
			want: []D{{"$.id", DiffChanged, `"123e4567-e89b-12d3-a456-426614174000"`, `"123e4567-e89b-12d3-a456-426614174001"`}}},
		{name: "configured mask", cfg: Config{Masks: []string{`tok_[a-z0-9]+`}}, prod: `{"t":"tok_abc1"}`, cand: `{"t":"tok_zz9"}`},
		{name: "different masks do not match each other", prod: `{"t":"123e4567-e89b-12d3-a456-426614174000"}`, cand: `{"t":"2026-01-02T15:04:05Z"}`,
			want: []D{{"$.t", DiffChanged, `"123e4567-e89b-12d3-a456-426614174000"`, `"2026-01-02T15:04:05Z"`}}},
		{name: "truncated values", cfg: Config{MaxValueLen: 10}, prod: `{"s":"abcdefghijklmnop","o":{"k":[1,2,3,4,5,6]}}`, cand: `{"s":"é","o":"ééééééé"}`,
			want: []D{{"$.s", DiffChanged, `"abcdefghi…`, `"é"`}, {"$.o", DiffChanged, `{"k":[1,2,…`, `"éééé…`}}},
		{name: "odd keys are quoted", prod: `{"a.b":1,"":2,"x\"y":3,"0":4,"ok_1":5}`, cand: `{"a.b":2,"":3,"x\"y":4,"0":5,"ok_1":6}`,
			want: []D{{`$["a.b"]`, DiffChanged, "1", "2"}, {`$[""]`, DiffChanged, "2", "3"}, {`$["x\"y"]`, DiffChanged, "3", "4"},
				{`$["0"]`, DiffChanged, "4", "5"}, {"$.ok_1", DiffChanged, "5", "6"}}},
		{name: "repeated key: the last one counts", prod: `{"a":1,"a":2}`, cand: `{"a":2}`},
		{name: "escapes", prod: `{"s":"\u00e9\n\ud83d\ude00"}`, cand: "{\"s\":\"é\\n😀\"}"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := newDiffer(t, tc.cfg)
			r := d.Compare(jsonResp(tc.prod), jsonResp(tc.cand))
			if r.Body.Kind != BodyJSON {
				t.Fatalf("kind %s (%+v)", r.Body.Kind, r.Body)
			}
			if !slices.Equal(r.Body.Diffs, tc.want) {
				t.Errorf("diffs\n got %q\nwant %q", r.Body.Diffs, tc.want)
			}
			wantKeys := tc.wantKeys
			if wantKeys == nil {
				for _, w := range tc.want {
					p, _ := parsePattern(w.Path)
					wantKeys = append(wantKeys, "body:"+collapse(p))
				}
			}
			if !slices.Equal(r.Keys, wantKeys) {
				t.Errorf("keys %q, want %q", r.Keys, wantKeys)
			}
			if r.Body.Equal != (len(tc.want) == 0) {
				t.Errorf("equal %v", r.Body.Equal)
			}
		})
	}
}

// collapse renders a parsed concrete path with indices as [*].
func collapse(p pattern) string {
	var segs []seg
	for _, t := range p {
		if t.kind == tokIdx {
			segs = append(segs, idxSeg(t.idx))
		} else {
			segs = append(segs, keySeg(t.key))
		}
	}
	return string(appendPath(nil, segs, true))
}

func TestJSONDiffCaps(t *testing.T) {
	var a, b []string
	for i := range 120 {
		a = append(a, fmt.Sprintf(`"k%03d":%d`, i, i))
		b = append(b, fmt.Sprintf(`"k%03d":%d`, i, i+1))
	}
	prod, cand := "{"+strings.Join(a, ",")+"}", "{"+strings.Join(b, ",")+"}"

	r := newDiffer(t, Config{}).Compare(jsonResp(prod), jsonResp(cand))
	if len(r.Body.Diffs) != DefaultMaxDiffs || r.Body.MoreDiffs != 70 || len(r.Keys) != 120 {
		t.Errorf("%d diffs, %d more, %d keys", len(r.Body.Diffs), r.Body.MoreDiffs, len(r.Keys))
	}
	if r.Body.Diffs[49].Path != "$.k049" {
		t.Errorf("last listed %s", r.Body.Diffs[49].Path)
	}

	r = newDiffer(t, Config{MaxDiffs: 5, MaxKeys: 10}).Compare(jsonResp(prod), jsonResp(cand))
	if len(r.Body.Diffs) != 5 || r.Body.MoreDiffs != 115 || len(r.Keys) != 11 || r.Keys[10] != "body:more" {
		t.Errorf("%d diffs, %d more, keys %q", len(r.Body.Diffs), r.Body.MoreDiffs, r.Keys)
	}
}

// A large array of changed elements makes one key, not one per element.
func TestJSONKeysCollapse(t *testing.T) {
	var a, b []string
	for i := range 1000 {
		a = append(a, fmt.Sprintf(`{"id":%d,"price":%d}`, i, i))
		b = append(b, fmt.Sprintf(`{"id":%d,"price":%d}`, i, i+1))
	}
	r := newDiffer(t, Config{}).Compare(jsonResp("["+strings.Join(a, ",")+"]"), jsonResp("["+strings.Join(b, ",")+"]"))
	if !slices.Equal(r.Keys, []string{"body:$[*].price"}) || r.Body.MoreDiffs != 950 {
		t.Errorf("keys %q, %d more", r.Keys, r.Body.MoreDiffs)
	}
}

// Nesting past maxJSONDepth is compared as text, without failing.
func TestJSONTooDeep(t *testing.T) {
	deep := strings.Repeat("[", maxJSONDepth+1) + strings.Repeat("]", maxJSONDepth+1)
	r := newDiffer(t, Config{}).Compare(jsonResp(deep), jsonResp(deep+" "))
	if r.Body.Kind != BodyText || !slices.Equal(r.Keys, []string{"body:text"}) {
		t.Errorf("kind %s keys %q", r.Body.Kind, r.Keys)
	}
	ok := strings.Repeat("[", maxJSONDepth) + strings.Repeat("]", maxJSONDepth)
	if r := newDiffer(t, Config{}).Compare(jsonResp(ok), jsonResp(ok+" ")); r.Body.Kind != BodyJSON || !r.Equal() {
		t.Errorf("depth %d: kind %s keys %q", maxJSONDepth, r.Body.Kind, r.Keys)
	}
}

func TestParseJSON(t *testing.T) {
	for _, bad := range []string{``, ` `, `{`, `[1,]`, `{"a":1,}`, `{"a"}`, `{a:1}`, `01`, `1.`, `1e`, `-`, `.5`, `+1`, `NaN`,
		`"a`, "\"\x01\"", `"\x"`, `"\u12"`, `[1] [2]`, `nul`, `tru`, `{"a":1 "b":2}`, `[1 2]`, `'a'`} {
		if _, err := parseJSON([]byte(bad)); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
	for _, good := range []string{`0`, `-0.0e+0`, `"\ud800"`, `"\/"`, " {\"a\" : [ ] }\n", `[null,true,false]`, `1E400`} {
		if _, err := parseJSON([]byte(good)); err != nil {
			t.Errorf("%q: %v", good, err)
		}
	}
}

func TestNumEqual(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		eq   bool
	}{
		{"1", "1.0", true}, {"1", "1e0", true}, {"10", "1e1", true}, {"0.01", "1E-2", true}, {"-0", "0", true}, {"0e5", "0.000", true},
		{"120", "12e1", true}, {"1.20", "1.2", true}, {"100.5", "1005e-1", true},
		{"1", "-1", false}, {"1", "10", false}, {"0.1", "0.01", false}, {"1e400", "1e401", false}, {"1e400", "10e399", true},
		{"1e99999999999999999999", "1e99999999999999999999", true}, {"1e99999999999999999999", "1e99999999999999999998", false},
	} {
		if got := numEqual(tc.a, tc.b); got != tc.eq {
			t.Errorf("numEqual(%s, %s) = %v", tc.a, tc.b, got)
		}
	}
}

// diffBodies compares two JSON bodies as compareBody does, parsing the
// target's against production's tree (guided) or in full.
// same counts the target's containers that stand for production's.
func diffBodies(d *Differ, a, b []byte, guided bool) (diffs []Diff, more int, keys []string, same int, err error) {
	s := new(jsonScratch)
	if err := s.p.parse(&s.ta, a, nil); err != nil {
		return nil, 0, nil, 0, err
	}
	var guide *jtree
	if guided {
		guide = &s.ta
	}
	if err := s.p.parse(&s.tb, b, guide); err != nil {
		return nil, 0, nil, 0, err
	}
	for _, n := range s.tb.nodes {
		if n.same && (n.kind == jObj || n.kind == jArr) {
			same++
		}
	}
	w := d.diffJSON(s)
	return w.diffs, w.more, w.keys, same, nil
}

// guidedAgrees checks that parsing b against a's tree changes nothing in
// the comparison of a and b, under each of the differs.
func guidedAgrees(t *testing.T, differs []*Differ, a, b []byte) {
	t.Helper()
	if _, err := parseJSON(b); err != nil {
		return
	}
	for _, d := range differs {
		d1, m1, k1, _, err1 := diffBodies(d, a, b, false)
		d2, m2, k2, _, err2 := diffBodies(d, a, b, true)
		if (err1 == nil) != (err2 == nil) || !slices.Equal(d1, d2) || m1 != m2 || !slices.Equal(k1, k2) {
			t.Fatalf("%q vs %q (%+v):\nin full: %q %d %q %v\nguided:  %q %d %q %v", a, b, d.Config(), d1, m1, k1, err1, d2, m2, k2, err2)
		}
	}
}

// guideCases are pairs of documents for TestGuidedParse and its fuzzer:
// same containers in different places, repeated names, escaped names,
// kinds that change, arrays that grow.
var guideCases = [][2]string{
	{`{"a":{"x":1},"b":[1,2]}`, `{"a":{"x":1},"b":[1,2,3]}`},
	{`{"a":{"x":1},"b":{"x":1}}`, `{"b":{"x":1},"a":{"x":1}}`},
	{`{"a":{"x":1},"a":{"y":2}}`, `{"a":{"x":1},"a":{"z":3}}`},
	{`{"a":[1],"a":[2]}`, `{"a":[2],"a":[2]}`},
	{`{"a\u0062":{"x":1},"c":[[1],[2]]}`, `{"ab":{"x":1},"c":[[1],[3]]}`},
	{`{"a\u0062":1,"c":"\n"}`, `{"c":"\n","ab":1}`},
	{`{"a":[{"k":1}],"b":{}}`, `{"a":{"0":{"k":1}},"b":[]}`},
	{`[[1,2],[3],{"a":[]}]`, `[[1,2],[3,4],{"a":[]},[5]]`},
	{`[{"id":1,"t":[1,2]},{"id":2,"t":[3]}]`, `[{"id":2,"t":[3]},{"id":1,"t":[2,1]}]`},
	{`{"u":["x","y"],"x":{"q":1}}`, `{"u":["y","x"],"x":{"q":2}}`},
	{`{"v":[[1,2],[3]],"x":[1]}`, `{"v":[[3],[1,2]],"x":[1]}`},
	{`{"a": {"x" : 1}}`, `{"a":{"x":1}}`},
	{`[1e2,{"s":"é"}]`, `[100,{"s":"\u00e9"}]`},
	{`{"a":[]}`, `{"a":[] }`},
}

func guideDiffers(t testing.TB) []*Differ {
	return []*Differ{
		newDiffer(t, Config{}),
		newDiffer(t, Config{UnorderedArrays: true, IgnorePaths: []string{"$..x", "$.a[1]"}, MaxDiffs: 3, MaxKeys: 4}),
		newDiffer(t, Config{UnorderedPaths: []string{"$.u", "$..v[*]", "$[*].t"}, NoDefaultMasks: true}),
	}
}

// TestGuidedParse: parsing the target's document against production's
// tree (parser.guide) gives the same comparison as parsing it in full,
// and does skip what the two share.
func TestGuidedParse(t *testing.T) {
	differs := guideDiffers(t)
	prod, cand := benchPair()
	api, masked, diffs := apiPair()
	pairs := append([][2]string{{prod, cand}, {api, masked}, {api, diffs}, {diffs, api}}, guideCases...)
	deep := strings.Repeat("[", maxJSONDepth) + strings.Repeat("]", maxJSONDepth)
	pairs = append(pairs, [2]string{deep, deep}, [2]string{deep, "[" + deep + "]"})
	for _, p := range pairs {
		guidedAgrees(t, differs, []byte(p[0]), []byte(p[1]))
		guidedAgrees(t, differs, []byte(p[1]), []byte(p[0]))
	}
	// Shared, not parsed: customer, pagination, 7 of the 10 orders, and
	// the shipping and tags of the other 3.
	_, _, keys, same, err := diffBodies(newDiffer(t, Config{}), []byte(api), []byte(diffs), true)
	if err != nil || len(keys) != 3 || same != 2+7+3*2 {
		t.Errorf("keys %q, %d shared containers, %v", keys, same, err)
	}
}

// Member names with escapes are found by their value, whatever the order
// of the members.
func TestJSONEscapedNames(t *testing.T) {
	d := newDiffer(t, Config{})
	for _, tc := range [][2]string{
		{`{"a\u0062":1,"c":2}`, `{"c":2,"ab":1}`},
		{`{"c":2,"ab":1}`, `{"a\u0062":1,"c":2}`},
		{`{"\u0061":[1],"\"":2,"x":3}`, `{"x":3,"\u0022":2,"a":[1]}`},
		{`{"a\u0062":1,"a\u0062":2}`, `{"ab":2}`},
	} {
		if r := d.Compare(jsonResp(tc[0]), jsonResp(tc[1])); !r.Equal() {
			t.Errorf("%s vs %s: %q", tc[0], tc[1], r.Keys)
		}
	}
	r := d.Compare(jsonResp(`{"a\u0062":1,"c":2}`), jsonResp(`{"c":2,"ab":3}`))
	if want := []Diff{{"$.ab", DiffChanged, "1", "3"}}; !slices.Equal(r.Body.Diffs, want) {
		t.Errorf("got %q, want %q", r.Body.Diffs, want)
	}
}
