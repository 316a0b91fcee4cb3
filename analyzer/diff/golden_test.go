package diff

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/tapline/tapline/schema"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// TestGolden keeps the whole output (Result and Judgement, as the analyzer
// would index them) of a few comparisons in testdata/golden/NAME.json.
// Run with -update after an intended change and review the diff.
func TestGolden(t *testing.T) {
	prod, cand := benchPair()
	truncated := jsonResp(prod[:700])
	truncated.BodyTruncated, truncated.BodySize = true, int64(len(prod))
	cases := []struct {
		name       string
		cfg        Config
		prod, cand *schema.Response
	}{
		{"json", Config{IgnorePaths: []string{"$.meta.generatedAt"}, MaxValueLen: 60},
			jsonResp(prod, "Date: Mon, 01 Jan 2026 10:00:00 GMT", "Cache-Control: no-cache", "X-Version: 1.4.2"),
			response(200, string(gz([]byte(cand))), "Content-Type: application/json; charset=utf-8", "Content-Encoding: gzip",
				"Date: Mon, 01 Jan 2026 10:00:03 GMT", "Cache-Control: max-age=60", "X-Version: 1.5.0")},
		{"text", Config{}, response(200, "<html>\n<title>Shop</title>\n<p>3 items</p>\n</html>\n", "Content-Type: text/html; charset=utf-8"),
			response(200, "<html>\n<title>Shop</title>\n<p>4 items</p>\n<footer/>\n</html>\n", "Content-Type: text/html; charset=utf-8")},
		{"binary", Config{}, response(200, "\x89PNG\r\n\x1a\n\x00\x01", "Content-Type: image/png"),
			response(200, "\x89PNG\r\n\x1a\n\x00\x02\x03", "Content-Type: image/png")},
		{"partial", Config{}, truncated, jsonResp(cand)},
		{"undecodable", Config{}, response(502, "oops", "Content-Type: text/plain", "Content-Encoding: gzip"),
			response(200, string(br([]byte("fine"))), "Content-Type: text/plain", "Content-Encoding: br")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newDiffer(t, tc.cfg).Compare(tc.prod, tc.cand)
			out, err := json.MarshalIndent(struct {
				Result    Result    `json:"result"`
				Judgement Judgement `json:"judgement"`
			}{r, Judge(&r, nil, nil)}, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, '\n')
			file := filepath.Join("testdata", "golden", tc.name+".json")
			if *update {
				if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(file, out, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(file)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(out, want) {
				t.Errorf("%s differs; got:\n%s", file, out)
			}
		})
	}
}
