package diff

import "testing"

func TestPathRendering(t *testing.T) {
	segs := []seg{keySeg("a"), idxSeg(3), keySeg("b.c"), keySeg(""), keySeg("x\"\n"), keySeg("_ok9"), keySeg("9no")}
	if got, want := string(appendPath(nil, segs, false)), `$.a[3]["b.c"][""]["x\"\n"]._ok9["9no"]`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	if got, want := string(appendPath(nil, segs[:2], true)), `$.a[*]`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	// Every rendered path parses back to itself.
	p, err := parsePattern(string(appendPath(nil, segs, false)))
	if err != nil || !p.match(segs) {
		t.Errorf("round trip: %v", err)
	}
}

func TestPatternMatch(t *testing.T) {
	path := func(ss ...any) []seg {
		var out []seg
		for _, s := range ss {
			switch v := s.(type) {
			case string:
				out = append(out, keySeg(v))
			case int:
				out = append(out, idxSeg(v))
			}
		}
		return out
	}
	for _, tc := range []struct {
		pattern string
		path    []seg
		want    bool
	}{
		{"$", nil, true},
		{"$", path("a"), false},
		{"$.a.b", path("a", "b"), true},
		{"$.a.b", path("a"), false},
		{"$.a.b", path("a", "b", "c"), false},
		{"$.a[*].b", path("a", 7, "b"), true},
		{"$.a[*].b", path("a", "k", "b"), true},
		{"$.a.*", path("a", 0), true},
		{"$.a[2]", path("a", 2), true},
		{"$.a[2]", path("a", 3), false},
		{"$.a[2]", path("a", "2"), false},
		{`$["2"]`, path("2"), true},
		{`$["a.b"].c`, path("a.b", "c"), true},
		{`$["*"]`, path("x"), false},
		{"$..etag", path("etag"), true},
		{"$..etag", path("a", 1, "etag"), true},
		{"$..etag", path("a", "etag", "x"), false},
		{"$.a..id", path("a", "id"), true},
		{"$.a..id", path("b", "id"), false},
		{"$..[*]", path("a", 3), true},
		{"$..*", path("a"), true},
		{"$..a..b", path("x", "a", "y", "z", "b"), true},
	} {
		p, err := parsePattern(tc.pattern)
		if err != nil {
			t.Fatalf("%s: %v", tc.pattern, err)
		}
		if got := p.match(tc.path); got != tc.want {
			t.Errorf("%s on %s: %v", tc.pattern, appendPath(nil, tc.path, false), got)
		}
	}
}
