package report

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/tapline/tapline/analyzer"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// goldenSummary is the report over testResults, as a local run of
// `tapline report` would build it.
func goldenSummary(t *testing.T) Summary {
	s := FromDocs(slices.Values(testDocs(t)), Options{})
	s.Source = "file:///var/lib/tapline/results"
	return s
}

func TestGolden(t *testing.T) {
	cases := []struct {
		file  string
		write func(*bytes.Buffer, Summary) error
	}{
		{"report.txt", func(b *bytes.Buffer, s Summary) error { return WriteText(b, s) }},
		{"report.html", func(b *bytes.Buffer, s Summary) error { return WriteHTML(b, s) }},
		{"report.json", func(b *bytes.Buffer, s Summary) error { return WriteJSON(b, s) }},
	}
	s := goldenSummary(t)
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			var b bytes.Buffer
			if err := tc.write(&b, s); err != nil {
				t.Fatal(err)
			}
			golden(t, tc.file, b.Bytes())
		})
	}
}

// TestGoldenTruncated: the renderings say when routes and keys were cut.
func TestGoldenTruncated(t *testing.T) {
	s := FromDocs(slices.Values(testDocs(t)), Options{MaxRoutes: 2, MaxKeys: 1})
	var b bytes.Buffer
	if err := WriteText(&b, s); err != nil {
		t.Fatal(err)
	}
	golden(t, "report-truncated.txt", b.Bytes())
	for _, want := range []string{"3 more routes with", "only the worst 2 routes are kept", "hold only their 1 most frequent keys"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("text lacks %q", want)
		}
	}
	b.Reset()
	if err := WriteHTML(&b, s); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "only the worst 2 routes are kept") {
		t.Errorf("HTML does not say that routes were left out")
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test -update rewrites it); got:\n%s", path, got)
	}
}

// TestHTMLSelfContained: the page references nothing outside itself.
func TestHTMLSelfContained(t *testing.T) {
	var b bytes.Buffer
	if err := WriteHTML(&b, goldenSummary(t)); err != nil {
		t.Fatal(err)
	}
	external := regexp.MustCompile(`(?i)https?://|<script|<link|<img|<iframe|<object|@import|url\(|\b(src|href)\s*=`)
	if m := external.FindAllString(b.String(), -1); m != nil {
		t.Fatalf("the HTML refers outside itself: %q", m)
	}
	for _, want := range []string{"<svg", "<style>", "GET /users/{id}", "body:$.name"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("HTML lacks %q", want)
		}
	}
}

// TestHTMLEscapes: routes, keys and target names come from traffic and
// configuration; none of them can inject markup.
func TestHTMLEscapes(t *testing.T) {
	evil := "GET /<script>alert(1)</script>"
	key := `body:$["<img src=x onerror=alert(2)>"]`
	target := `st"aging<b>`
	docs := []analyzer.Doc{
		doc(evil, target, "candidate", "mismatch", 1, 2, []string{key}, []string{"header:<i>"}, []string{"body:</style>"}),
	}
	s := FromDocs(slices.Values(docs), Options{Target: target})
	s.Source = "</title><script>alert(3)</script>"
	var b bytes.Buffer
	if err := WriteHTML(&b, s); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, bad := range []string{"<script", "<img", "<b>", "<i>", "body:</style>", "alert(1)</script>"} {
		if strings.Contains(out, bad) {
			t.Errorf("unescaped %q in the HTML", bad)
		}
	}
	if strings.Count(out, "</title>") != strings.Count(out, "<title>") {
		t.Errorf("a </title> got through")
	}
	for _, want := range []string{"GET /&lt;script&gt;alert(1)&lt;/script&gt;", "&lt;img src=x onerror=alert(2)&gt;", "st&#34;aging&lt;b&gt;", "body:&lt;/style&gt;"} {
		if !strings.Contains(out, want) {
			t.Errorf("HTML lacks the escaped %q", want)
		}
	}
	// The text rendering leaves markup alone but not terminal escapes.
	s.Routes[0].Route = "GET /a\x1b[31mred\tx"
	var tb bytes.Buffer
	if err := WriteText(&tb, s); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(tb.String(), "\x1b") || !strings.Contains(tb.String(), `GET /a\x1b[31mred\tx`) {
		t.Errorf("text rendering of a route with control characters:\n%s", tb.String())
	}
}

func TestJSONRoundTrip(t *testing.T) {
	s := goldenSummary(t)
	var b bytes.Buffer
	if err := WriteJSON(&b, s); err != nil {
		t.Fatal(err)
	}
	var back Summary
	if err := json.Unmarshal(b.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	assertSummary(t, back, s, 0)
}

func TestTextEmpty(t *testing.T) {
	var b bytes.Buffer
	if err := WriteText(&b, FromDocs(nil, Options{})); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "no pair documents") || !strings.Contains(b.String(), "no candidate pairs") {
		t.Errorf("empty report:\n%s", b.String())
	}
	b.Reset()
	if err := WriteHTML(&b, FromDocs(nil, Options{})); err != nil {
		t.Fatal(err)
	}
}
