package report

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tapline/tapline/analyzer"
	"github.com/tapline/tapline/internal/stacktest"
)

// esTolerance bounds how far Elasticsearch's percentiles may be from the
// Accumulator's: ES keeps latency_ms.* as 32-bit floats (about 7
// significant digits) and its TDigest is exact only for small samples.
// With these few documents per route they agree to float32 rounding; the
// margin leaves room for a digest that merges.
const esTolerance = 1e-5

// TestFromElasticsearch indexes the pair documents of testResults into a
// real data stream, as the analyzer does, and checks that the Summary
// built from aggregations equals the Accumulator's over the same
// documents, for several selections and bounds.
func TestFromElasticsearch(t *testing.T) {
	esURL := stacktest.ES(t)
	name := stacktest.Index(t, esURL, "tapline-report")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	es, err := analyzer.NewElastic(analyzer.ElasticConfig{URL: esURL, DataStream: name, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := es.EnsureTemplate(ctx); err != nil {
		t.Fatal(err)
	}
	docs := testDocs(t)
	outcomes, err := es.Index(ctx, docs)
	if err != nil {
		t.Fatal(err)
	}
	for i, o := range outcomes {
		if !o.Created {
			t.Fatalf("doc %d (%s): %+v", i, docs[i].ID(), o)
		}
	}
	refresh(t, esURL, name)

	cases := []struct {
		name string
		opts Options
	}{
		{"everything", Options{}},
		{"candidate target", Options{Target: "staging"}},
		{"baseline target", Options{Target: "baseline"}},
		// From the 5th to the 20th exchange, at millisecond precision:
		// Since is inside the 5th exchange's millisecond.
		{"time window", Options{Since: testStart.Add(5*37*time.Second + 500*time.Microsecond), Until: testStart.Add(20 * 37 * time.Second)}},
		{"routes and keys cut", Options{MaxRoutes: 2, MaxKeys: 2}},
		{"nothing selected", Options{Target: "nobody"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := FromElasticsearch(ctx, ESConfig{URL: esURL, Index: name, Options: tc.opts})
			if err != nil {
				t.Fatal(err)
			}
			if want := "elasticsearch " + esURL + " " + name; got.Source != want {
				t.Errorf("source %q, want %q", got.Source, want)
			}
			got.Source = ""
			want := FromDocs(slices.Values(docs), tc.opts)
			assertSummary(t, got, want, esTolerance)
		})
	}
	// The cut case must really cut, or it tests nothing.
	if s := FromDocs(slices.Values(docs), Options{MaxRoutes: 2, MaxKeys: 2}); s.Omitted.Routes == 0 || s.Routes[0].Regressions.Other == 0 {
		t.Fatalf("the test data does not reach the bounds: omitted %+v", s.Omitted)
	}
}

// TestFromElasticsearchPaging: more routes than one composite page; every
// route is counted, the worst are kept.
func TestFromElasticsearchPaging(t *testing.T) {
	esURL := stacktest.ES(t)
	name := stacktest.Index(t, esURL, "tapline-report")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	es, err := analyzer.NewElastic(analyzer.ElasticConfig{URL: esURL, DataStream: name})
	if err != nil {
		t.Fatal(err)
	}
	if err := es.EnsureTemplate(ctx); err != nil {
		t.Fatal(err)
	}
	var docs []analyzer.Doc
	for i := range 2*routePage + 17 {
		route := "GET /r" + strings.Repeat("x", i%7) + "/" + string(rune('a'+i%26)) + "/" + time.Duration(i).String()
		verdict := "match"
		var regress []string
		if i%9 == 0 {
			verdict, regress = "mismatch", []string{"status"}
		}
		d := doc(route, "staging", "candidate", verdict, float64(i%50), float64(i%60), regress)
		d.ExchangeID = "p" + time.Duration(i).String()
		docs = append(docs, d)
	}
	if _, err := es.Index(ctx, docs); err != nil {
		t.Fatal(err)
	}
	refresh(t, esURL, name)
	opts := Options{MaxRoutes: 30}
	got, err := FromElasticsearch(ctx, ESConfig{URL: esURL, Index: name, Options: opts})
	if err != nil {
		t.Fatal(err)
	}
	got.Source = ""
	want := FromDocs(slices.Values(docs), opts)
	if want.Omitted.Routes != len(docs)-30 {
		t.Fatalf("omitted %+v", want.Omitted)
	}
	assertSummary(t, got, want, esTolerance)
}

func TestFromElasticsearchErrors(t *testing.T) {
	esURL := stacktest.ES(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cases := []struct {
		name    string
		cfg     ESConfig
		wantErr string
	}{
		{"no URL", ESConfig{}, "no Elasticsearch URL"},
		{"no such index", ESConfig{URL: esURL, Index: "tapline-report-missing-" + strings.ToLower(t.Name())}, "run `tapline analyze` into it first"},
		{"credentials in the URL are refused, not repeated", ESConfig{URL: "http://user:secret@127.0.0.1:1", Index: "x"}, "URL holds credentials"},
		{"unreachable", ESConfig{URL: "http://127.0.0.1:1", Index: "x"}, "http://127.0.0.1:1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := FromElasticsearch(ctx, tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || strings.Contains(err.Error(), "secret") {
				t.Fatalf("error %v, want one saying %q", err, tc.wantErr)
			}
		})
	}
}

func refresh(t *testing.T, esURL, name string) {
	t.Helper()
	res, err := http.Post(esURL+"/"+name+"/_refresh", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(res.Body)
		t.Fatalf("refresh %s: %s %s", name, res.Status, b)
	}
}
