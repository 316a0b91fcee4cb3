package diff

import (
	"crypto/sha256"
	"encoding/hex"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func TestTextDiff(t *testing.T) {
	cases := []struct {
		name       string
		prod, cand string
		want       *TextSummary // nil: equal
	}{
		{"equal", "a\nb\n", "a\nb\n", nil},
		{"one line changed", "a\nb\nc\n", "a\nB\nc\n", &TextSummary{ProdLines: 3, CandLines: 3, Added: 1, Removed: 1, FirstLine: 2, ProdLine: "b", CandLine: "B"}},
		{"line added at the end", "a\nb\n", "a\nb\nc\n", &TextSummary{ProdLines: 2, CandLines: 3, Added: 1, FirstLine: 3, CandLine: "c"}},
		{"line removed at the start", "x\na\nb\n", "a\nb\n", &TextSummary{ProdLines: 3, CandLines: 2, Removed: 1, FirstLine: 1, ProdLine: "x", CandLine: "a"}},
		{"missing final newline", "a\nb\n", "a\nb", &TextSummary{ProdLines: 2, CandLines: 2, Added: 1, Removed: 1, FirstLine: 2, ProdLine: "b", CandLine: "b"}},
		{"moved block", "1\n2\n3\n4\n5\n", "1\n4\n5\n2\n3\n", &TextSummary{ProdLines: 5, CandLines: 5, Added: 2, Removed: 2, FirstLine: 2, ProdLine: "2", CandLine: "4"}},
		{"empty vs text", "", "hello", &TextSummary{CandLines: 1, Added: 1, FirstLine: 1, CandLine: "hello"}},
		{"masked lines are equal", "<p>at 2026-01-02T10:00:00Z</p>\n", "<p>at 2026-05-06T11:12:13Z</p>\n", nil},
	}
	d := newDiffer(t, Config{})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := d.Compare(response(200, tc.prod, "Content-Type: text/html"), response(200, tc.cand, "Content-Type: text/html"))
			if r.Body.Kind != BodyText {
				t.Fatalf("kind %s", r.Body.Kind)
			}
			if tc.want == nil {
				if !r.Equal() || r.Body.Text != nil {
					t.Errorf("keys %q text %+v", r.Keys, r.Body.Text)
				}
				return
			}
			if r.Body.Text == nil || *r.Body.Text != *tc.want || !slices.Equal(r.Keys, []string{"body:text"}) {
				t.Errorf("got %+v keys %q\nwant %+v", r.Body.Text, r.Keys, tc.want)
			}
			if r.Body.Prod.SHA256 == "" || r.Body.Prod.SHA256 == r.Body.Cand.SHA256 {
				t.Errorf("hashes %q %q", r.Body.Prod.SHA256, r.Body.Cand.SHA256)
			}
		})
	}
}

// Past the work bound the counts are approximate, from line multisets.
func TestTextDiffBounded(t *testing.T) {
	var a, b []string
	for i := range 20000 {
		a = append(a, strings.Repeat("x", i%7)+string(rune('a'+i%26)))
		b = append(b, string(rune('a'+i%26))+strings.Repeat("y", i%5))
	}
	r := newDiffer(t, Config{}).Compare(response(200, strings.Join(a, "\n"), "Content-Type: text/plain"), response(200, strings.Join(b, "\n"), "Content-Type: text/plain"))
	s := r.Body.Text
	if s == nil || !s.Approximate || s.FirstLine != 2 || s.ProdLine != "xb" || s.Added != s.Removed || s.Added == 0 {
		t.Errorf("%+v", s)
	}
}

// editDistance agrees with an LCS computed by dynamic programming.
func TestEditDistance(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 500 {
		a := make([]int32, rng.IntN(12))
		b := make([]int32, rng.IntN(12))
		for i := range a {
			a[i] = rng.Int32N(3)
		}
		for i := range b {
			b[i] = rng.Int32N(3)
		}
		want := len(a) + len(b) - 2*lcs(a, b)
		got, ok := editDistance(a, b, len(a)+len(b))
		if !ok || got != want {
			t.Fatalf("%v %v: %d %v, want %d", a, b, got, ok, want)
		}
		if want > 0 {
			if _, ok := editDistance(a, b, want-1); ok {
				t.Fatalf("%v %v: found within %d", a, b, want-1)
			}
		}
	}
}

func lcs(a, b []int32) int {
	t := make([][]int, len(a)+1)
	for i := range t {
		t[i] = make([]int, len(b)+1)
	}
	for i := len(a) - 1; i >= 0; i-- {
		for j := len(b) - 1; j >= 0; j-- {
			if a[i] == b[j] {
				t[i][j] = t[i+1][j+1] + 1
			} else {
				t[i][j] = max(t[i+1][j], t[i][j+1])
			}
		}
	}
	return t[0][0]
}

func sha256hex(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func TestBinary(t *testing.T) {
	d := newDiffer(t, Config{})
	png := "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"
	r := d.Compare(response(200, png, "Content-Type: image/png"), response(200, png[:9]+"X"+png[10:], "Content-Type: image/png"))
	if r.Body.Kind != BodyBinary || !slices.Equal(r.Keys, []string{"body:bytes"}) || r.Body.FirstDiffOffset == nil || *r.Body.FirstDiffOffset != 9 {
		t.Errorf("%+v keys %q", r.Body, r.Keys)
	}
	if r.Body.Prod.SHA256 != sha256hex(png) || r.Body.Prod.Size != len(png) || len(r.Body.Cand.SHA256) != 64 {
		t.Errorf("prod side %+v", r.Body.Prod)
	}
	// A prefix: the first differing offset is the shorter size.
	r = d.Compare(response(200, png, "Content-Type: image/png"), response(200, png[:4], "Content-Type: image/png"))
	if *r.Body.FirstDiffOffset != 4 {
		t.Errorf("offset %d", *r.Body.FirstDiffOffset)
	}
	// Unknown type: text if it reads as text, else binary.
	if r := d.Compare(response(200, "a\x00b"), response(200, "a\x00c")); r.Body.Kind != BodyBinary {
		t.Errorf("kind %s", r.Body.Kind)
	}
	if r := d.Compare(response(200, "héllo"), response(200, "hello")); r.Body.Kind != BodyText {
		t.Errorf("kind %s", r.Body.Kind)
	}
	if r := d.Compare(response(204, ""), response(204, "")); r.Body.Kind != BodyEmpty || !r.Equal() {
		t.Errorf("kind %s keys %q", r.Body.Kind, r.Keys)
	}
}

// Bodies with more lines than maxTextLines are summarised without holding
// their lines.
func TestTextDiffLarge(t *testing.T) {
	d := newDiffer(t, Config{})
	d.maxTextLines = 100
	a := strings.Repeat("same line\n", 60) + "x\n" + strings.Repeat("tail\n", 10)
	b := strings.Repeat("same line\n", 60) + "y\n" + strings.Repeat("tail\n", 12)
	r := d.Compare(response(200, a, "Content-Type: text/plain"), response(200, b, "Content-Type: text/plain"))
	want := TextSummary{ProdLines: 71, CandLines: 73, Added: 2, Approximate: true, FirstLine: 61, ProdLine: "x", CandLine: "y"}
	if r.Body.Text == nil || *r.Body.Text != want {
		t.Errorf("got %+v\nwant %+v", r.Body.Text, want)
	}
	// Equal after masks.
	a = strings.Repeat("at 2026-01-02T10:00:00Z\n", 60)
	b = strings.Repeat("at 2026-01-02T10:00:01Z\n", 60)
	if r := d.Compare(response(200, a, "Content-Type: text/plain"), response(200, b, "Content-Type: text/plain")); !r.Equal() {
		t.Errorf("keys %q %+v", r.Keys, r.Body.Text)
	}
	// Same length, one line changed: at least one line added and removed.
	r = d.Compare(response(200, a+"p\n", "Content-Type: text/plain"), response(200, a+"q\n", "Content-Type: text/plain"))
	if s := r.Body.Text; s == nil || s.Added != 1 || s.Removed != 1 || s.FirstLine != 61 {
		t.Errorf("%+v", s)
	}
}
