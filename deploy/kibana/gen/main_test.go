package main

import (
	"bytes"
	"flag"
	"os"
	"strings"
	"testing"

	"github.com/tapline/tapline/internal/kibana"
)

var update = flag.Bool("update", false, "rewrite ../tapline.ndjson with the generator's output")

const committed = "../tapline.ndjson"

// TestCommittedFileIsGenerated: deploy/kibana/tapline.ndjson (embedded and
// imported by `tapline kibana import`) is exactly what gen writes, so
// nobody edits the nested JSON strings by hand. Fix with
// `go generate ./deploy/kibana` or `go test ./deploy/kibana/gen -update`.
func TestCommittedFileIsGenerated(t *testing.T) {
	want, err := render()
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(committed, want, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(committed)
	if err != nil {
		t.Fatalf("%v; run go generate ./deploy/kibana", err)
	}
	if bytes.Equal(got, want) {
		return
	}
	gl, wl := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	for i := range max(len(gl), len(wl)) {
		var g, w string
		if i < len(gl) {
			g = gl[i]
		}
		if i < len(wl) {
			w = wl[i]
		}
		if g != w {
			t.Fatalf("%s differs from the generator's output at line %d; run go generate ./deploy/kibana\n got: %.300s\nwant: %.300s", committed, i+1, g, w)
		}
	}
}

// TestGeneratedObjectsAreConsistent checks the references and nested JSON
// of the output without a mapping; internal/kibana's
// TestSavedObjectsMatchMapping checks the fields against Elasticsearch.
func TestGeneratedObjectsAreConsistent(t *testing.T) {
	b, err := render()
	if err != nil {
		t.Fatal(err)
	}
	for _, err := range kibana.Validate(b, nil) {
		t.Error(err)
	}
	want := map[string]int{"index-pattern": 1, "search": 1, "lens": 6, "dashboard": 1}
	got := map[string]int{}
	for _, o := range objects() {
		got[o.Type]++
	}
	for typ, n := range want {
		if got[typ] != n {
			t.Errorf("%d objects of type %s, want %d", got[typ], typ, n)
		}
	}
}
