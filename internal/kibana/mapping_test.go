package kibana

import (
	"context"
	"encoding/json"
	"flag"
	"io"
	"log/slog"
	"os"
	"path"
	"testing"
	"time"

	"github.com/tapline/tapline/analyzer"
	kibanaobjects "github.com/tapline/tapline/deploy/kibana"
	"github.com/tapline/tapline/internal/stacktest"
	"github.com/tapline/tapline/schema"
)

var update = flag.Bool("update", false, "rewrite testdata/field_caps.json from the real Elasticsearch")

// fieldCapsGolden is the _field_caps answer for the pair mapping, as the
// real node gave it; TestSavedObjectsMatchMapping -update rewrites it. The
// unit tests of Validate read it.
const fieldCapsGolden = "testdata/field_caps.json"

// TestSavedObjectsMatchMapping: every field deploy/kibana/tapline.ndjson
// uses exists, with a type that fits its use, in the mapping a real
// Elasticsearch gives the analyzer's pair data stream (its index template,
// installed by the analyzer's own EnsureTemplate) once it holds documents
// the analyzer's own Comparer made.
func TestSavedObjectsMatchMapping(t *testing.T) {
	esURL := stacktest.ES(t)
	name := stacktest.Index(t, esURL, "tapline-pairs-kibana")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	es, err := analyzer.NewElastic(analyzer.ElasticConfig{URL: esURL, DataStream: name, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := es.EnsureTemplate(ctx); err != nil {
		t.Fatal(err)
	}
	docs := pairDocs(t)
	outcomes, err := es.Index(ctx, docs)
	if err != nil {
		t.Fatal(err)
	}
	for i, o := range outcomes {
		if !o.Created {
			t.Fatalf("doc %s: %+v, want created", docs[i].ID(), o)
		}
	}

	raw, err := getFieldCaps(ctx, esURL, name)
	if err != nil {
		t.Fatal(err)
	}
	caps, err := parseFieldCaps(raw)
	if err != nil {
		t.Fatal(err)
	}
	for field, typ := range map[string]string{"@timestamp": "date", "route": "keyword", "latency_ms.target": "float", "status.target": "short", "error_kind": "keyword"} {
		if caps[field].Type != typ {
			t.Fatalf("field caps of %s: %+v, want type %s (the template did not apply?)", field, caps[field], typ)
		}
	}
	for _, err := range Validate(kibanaobjects.NDJSON, caps) {
		t.Error(err)
	}

	// The data view must cover the analyzer's data stream.
	title := dataViewTitle(t, kibanaobjects.NDJSON)
	for _, stream := range []string{"tapline-pairs", name} {
		if ok, _ := path.Match(title, stream); !ok {
			t.Errorf("data view title %q does not match data stream %q", title, stream)
		}
	}

	if *update {
		var r struct {
			Fields json.RawMessage `json:"fields"`
		}
		if err := json.Unmarshal(raw, &r); err != nil {
			t.Fatal(err)
		}
		var pretty map[string]any
		if err := json.Unmarshal(r.Fields, &pretty); err != nil {
			t.Fatal(err)
		}
		b, err := json.MarshalIndent(map[string]any{"fields": pretty}, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(fieldCapsGolden, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// pairDocs are the documents the analyzer makes for four exchanges
// replayed against a candidate ("staging") and the baseline: one of each
// verdict a candidate can get with a production response.
func pairDocs(t *testing.T) []analyzer.Doc {
	t.Helper()
	cmp, err := analyzer.NewComparer(analyzer.CompareConfig{Baseline: "baseline"})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now().Add(-10 * time.Minute).UnixNano()
	replay := func(n int, method, target string, prod *schema.Response, outcomes ...*schema.TargetOutcome) *schema.ReplayResult {
		first := start + int64(n)*int64(time.Second)
		return &schema.ReplayResult{
			Exchange: &schema.Exchange{
				Id: "ex-" + string(rune('0'+n)), SessionKey: "10.0.0.1:5000", Recorder: "rec-1",
				Request:  &schema.Request{Method: method, Target: target, Host: "api.example.com"},
				Times:    &schema.CaptureTimes{RequestFirstByteUnixNano: first, ResponseLastByteUnixNano: first + 4_000_000},
				Original: &schema.Exchange_Response{Response: prod},
			},
			Outcomes: outcomes, Replayer: "replayer-1",
		}
	}
	jsonResp := func(status int32, body string) *schema.Response {
		return &schema.Response{Status: status, Body: []byte(body), BodySize: int64(len(body)),
			Headers: []*schema.Header{{Name: "Content-Type", Value: "application/json"}}}
	}
	outcome := func(target string, r *schema.Response, errText string) *schema.TargetOutcome {
		o := &schema.TargetOutcome{Target: target, LatencyNanos: 6_500_000, SentUnixNano: time.Now().UnixNano()}
		if r != nil {
			o.Result = &schema.TargetOutcome_Response{Response: r}
		} else {
			o.Result = &schema.TargetOutcome_Error{Error: errText}
		}
		return o
	}
	refused := func(o *schema.TargetOutcome) *schema.TargetOutcome { o.ErrorKind = "connection_refused"; return o }
	results := []*schema.ReplayResult{
		// A regression: the candidate fails where production and the baseline answer.
		replay(1, "GET", "/users/7?expand=1", jsonResp(200, `{"id":7,"name":"a","at":"1"}`),
			outcome("staging", jsonResp(500, `{"error":"boom"}`), ""),
			outcome("baseline", jsonResp(200, `{"id":7,"name":"a","at":"2"}`), "")),
		// Noise only: the baseline differs on $.at as well.
		replay(2, "GET", "/users/8", jsonResp(200, `{"id":8,"at":"1"}`),
			outcome("staging", jsonResp(200, `{"id":8,"at":"3"}`), ""),
			outcome("baseline", jsonResp(200, `{"id":8,"at":"2"}`), "")),
		// A match.
		replay(3, "POST", "/orders", jsonResp(201, `{"ok":true}`),
			outcome("staging", jsonResp(201, `{"ok":true}`), ""),
			outcome("baseline", jsonResp(201, `{"ok":true}`), "")),
		// No answer from the candidate.
		replay(4, "GET", "/health", jsonResp(200, `{"up":true}`),
			refused(outcome("staging", nil, "dial tcp 10.0.0.9:80: connection refused")),
			outcome("baseline", jsonResp(200, `{"up":true}`), "")),
	}
	var docs []analyzer.Doc
	verdicts := map[string]bool{}
	for _, r := range results {
		for _, d := range cmp.Compare(r) {
			if d.Role == "candidate" {
				verdicts[d.Verdict] = true
			}
			docs = append(docs, d)
		}
	}
	for _, v := range []string{analyzer.VerdictMismatch, analyzer.VerdictNoiseOnly, analyzer.VerdictMatch, analyzer.VerdictTargetError} {
		if !verdicts[v] {
			t.Fatalf("test data: no candidate document with verdict %s (got %v)", v, verdicts)
		}
	}
	return docs
}

// dataViewTitle is the title (index pattern) of the export's data view.
func dataViewTitle(t *testing.T, ndjson []byte) string {
	t.Helper()
	for _, o := range decodeObjects(t, ndjson) {
		if o["type"] == "index-pattern" {
			title, _ := o["attributes"].(map[string]any)["title"].(string)
			return title
		}
	}
	t.Fatal("no index-pattern object")
	return ""
}
