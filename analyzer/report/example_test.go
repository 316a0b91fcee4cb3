package report_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/tapline/tapline/analyzer"
	"github.com/tapline/tapline/analyzer/report"
	"github.com/tapline/tapline/internal/filelog"
)

// A report from local results, with no Elasticsearch: the way
// `tapline report --from file://DIR` is meant to call the package. The
// Comparer is configured like the analyzer's (baseline, routes, ignore
// lists), so that the verdicts are the ones the analyzer would index.
func Example_localResults() {
	ctx := context.Background()
	dir := "/var/lib/tapline/results"
	gates, err := report.ParseFailOn([]string{"mismatch-rate>1%", "latency-p95-delta>50ms"})
	if err != nil {
		fmt.Fprintln(os.Stderr, err) // names the bad spec and lists the accepted forms
		return
	}
	cmp, err := analyzer.NewComparer(analyzer.CompareConfig{Baseline: "baseline"})
	if err != nil {
		return
	}
	opts := report.Options{Since: time.Now().Add(-24 * time.Hour)}
	// No Cursor (a report never commits), no Follow (Fetch ends with
	// io.EOF). Since may be passed on as a lower bound: a result record
	// is written after its exchange was captured. Until may not.
	r, err := filelog.NewReader(dir, filelog.ReaderConfig{Since: opts.Since})
	if err != nil {
		return
	}
	defer r.Close()
	acc := report.NewAccumulator(opts)
	if err := acc.ReadResults(ctx, r, cmp); err != nil {
		return
	}
	s := acc.Summary()
	s.Source = "file://" + dir
	_ = report.WriteText(os.Stdout, s)
	for _, v := range report.Check(s, gates) {
		fmt.Fprintln(os.Stderr, "FAIL", v.Message) // then exit non-zero
	}
}

// A report from the data stream the analyzer fills.
func Example_elasticsearch() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := report.FromElasticsearch(ctx, report.ESConfig{
		URL: "http://127.0.0.1:9200", Index: "tapline-pairs",
		Options: report.Options{Target: "staging", MaxRoutes: 50},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	f, err := os.Create("report.html")
	if err != nil {
		return
	}
	defer f.Close()
	_ = report.WriteHTML(f, s)
}
