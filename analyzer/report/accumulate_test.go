package report

import (
	"encoding/json"
	"math"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/tapline/tapline/analyzer"
)

// handDocs: route GET /a has every verdict, GET /b matches, GET /c has one
// mismatch without a production latency; one baseline document, which
// must stay out of the candidate figures and the routes.
func handDocs() []analyzer.Doc {
	return []analyzer.Doc{
		doc("GET /a", "staging", "candidate", "mismatch", 10, 20, []string{"status", "body:$.x"}, []string{"header:etag"}),
		doc("GET /a", "staging", "candidate", "mismatch", 20, 30, []string{"status"}),
		doc("GET /a", "staging", "candidate", "noise_only", 30, 40, nil, []string{"header:etag"}, []string{"body:$.t"}),
		doc("GET /a", "staging", "candidate", "match", 40, 50),
		doc("GET /a", "staging", "candidate", "target_error", 50, 1000),
		doc("GET /a", "baseline", "baseline", "noise_only", 1, 1, nil, []string{"body:$.base"}),
		doc("GET /b", "staging", "candidate", "match", 5, 6),
		doc("GET /b", "staging", "candidate", "match", 7, 8),
		doc("GET /b", "staging", "candidate", "no_production", -1, 3),
		doc("GET /c", "staging", "candidate", "mismatch", -1, 4, []string{"status"}),
	}
}

func TestAccumulator(t *testing.T) {
	got := FromDocs(slices.Values(handDocs()), Options{})
	ms := testStart.Truncate(time.Millisecond)
	keys := func(kv ...any) Keys {
		k := Keys{Top: []KeyCount{}}
		for i := 0; i < len(kv); i += 2 {
			k.Top = append(k.Top, KeyCount{kv[i].(string), int64(kv[i+1].(int))})
		}
		return k
	}
	want := Summary{
		Filter: Filter{}, From: ms, To: ms,
		Pairs:    10,
		Verdicts: VerdictCounts{Total: 10, Match: 3, NoiseOnly: 2, Mismatch: 3, TargetError: 1, NoProduction: 1},
		Candidate: Breakdown{
			Verdicts:     VerdictCounts{Total: 9, Match: 3, NoiseOnly: 1, Mismatch: 3, TargetError: 1, NoProduction: 1},
			MismatchRate: 3.0 / 7, TargetErrorRate: 1.0 / 9,
			Regressions: keys("status", 3, "body:$.x", 1), Noise: keys("header:etag", 2), LearnedNoise: keys("body:$.t", 1),
			// The target error has no kind, as from a 1.0 replayer.
			ErrorKinds: keys(UnknownErrorKind, 1),
			// Compared with both latencies: four on /a, two on /b.
			Latency: Latency{Samples: 6, Production: Percentiles{P50: 15, P95: 37.5}, Target: Percentiles{P50: 25, P95: 47.5},
				DeltaP50: 10, DeltaP95: 10},
		},
		Targets: []TargetCounts{
			{Target: "staging", Role: "candidate", Verdicts: VerdictCounts{Total: 9, Match: 3, NoiseOnly: 1, Mismatch: 3, TargetError: 1, NoProduction: 1}, MismatchRate: 3.0 / 7},
			{Target: "baseline", Role: "baseline", Verdicts: VerdictCounts{Total: 1, NoiseOnly: 1}},
		},
		Routes: []RouteSummary{
			{Route: "GET /a", Breakdown: Breakdown{
				Verdicts:     VerdictCounts{Total: 5, Match: 1, NoiseOnly: 1, Mismatch: 2, TargetError: 1},
				MismatchRate: 0.5, TargetErrorRate: 0.2,
				Regressions: keys("status", 2, "body:$.x", 1), Noise: keys("header:etag", 2), LearnedNoise: keys("body:$.t", 1),
				ErrorKinds: keys(UnknownErrorKind, 1),
				Latency: Latency{Samples: 4, Production: Percentiles{P50: 25, P95: 38.5}, Target: Percentiles{P50: 35, P95: 48.5},
					DeltaP50: 10, DeltaP95: 10},
			}},
			{Route: "GET /c", Breakdown: Breakdown{
				Verdicts: VerdictCounts{Total: 1, Mismatch: 1}, MismatchRate: 1,
				Regressions: keys("status", 1), Noise: keys(), LearnedNoise: keys(), ErrorKinds: keys(),
			}},
			{Route: "GET /b", Breakdown: Breakdown{
				Verdicts: VerdictCounts{Total: 3, Match: 2, NoProduction: 1}, TargetErrorRate: 0,
				Regressions: keys(), Noise: keys(), LearnedNoise: keys(), ErrorKinds: keys(),
				Latency: Latency{Samples: 2, Production: Percentiles{P50: 6, P95: 6.9}, Target: Percentiles{P50: 7, P95: 7.9},
					DeltaP50: 1, DeltaP95: 1},
			}},
		},
		Limits: Limits{MaxRoutes: 200, MaxKeys: 10},
	}
	assertSummary(t, got, want, 1e-9)
}

func TestAccumulatorOptions(t *testing.T) {
	t0 := testStart
	timed := []analyzer.Doc{
		at(doc("GET /a", "staging", "candidate", "mismatch", 1, 2, []string{"status"}), t0),
		at(doc("GET /a", "staging", "candidate", "match", 1, 2), t0.Add(time.Second)),
		at(doc("GET /b", "staging", "candidate", "match", 1, 2), t0.Add(2*time.Second)),
		at(doc("GET /b", "staging", "candidate", "match", 1, 2), t0.Add(3*time.Second)),
	}
	cases := []struct {
		name  string
		docs  []analyzer.Doc
		opts  Options
		check func(t *testing.T, s Summary)
	}{
		{"target selects the baseline only", handDocs(), Options{Target: "baseline"}, func(t *testing.T, s Summary) {
			if s.Pairs != 1 || s.Candidate.Verdicts.Total != 0 || len(s.Routes) != 0 || len(s.Targets) != 1 || s.Filter.Target != "baseline" {
				t.Errorf("pairs %d candidate %d routes %d targets %+v", s.Pairs, s.Candidate.Verdicts.Total, len(s.Routes), s.Targets)
			}
		}},
		{"target selects the candidate", handDocs(), Options{Target: "staging"}, func(t *testing.T, s Summary) {
			if s.Pairs != 9 || s.Candidate.Verdicts.Total != 9 || len(s.Routes) != 3 {
				t.Errorf("pairs %d candidate %d routes %d", s.Pairs, s.Candidate.Verdicts.Total, len(s.Routes))
			}
		}},
		// [Since, Until) at millisecond precision: the document at t0+1s
		// is in, the one at t0+3s (= Until) is out.
		{"time window", timed, Options{Since: t0.Add(time.Second - time.Microsecond), Until: t0.Add(3 * time.Second)}, func(t *testing.T, s Summary) {
			if s.Pairs != 2 || !s.From.Equal(t0.Add(time.Second).Truncate(time.Millisecond)) || !s.To.Equal(t0.Add(2*time.Second).Truncate(time.Millisecond)) {
				t.Errorf("pairs %d from %v to %v", s.Pairs, s.From, s.To)
			}
			if s.Candidate.Verdicts.Mismatch != 0 {
				t.Errorf("the mismatch at t0 is before Since")
			}
		}},
		{"routes cut", handDocs(), Options{MaxRoutes: 1}, func(t *testing.T, s Summary) {
			if len(s.Routes) != 1 || s.Routes[0].Route != "GET /a" || s.Omitted != (Omitted{Routes: 2, Requests: 4}) {
				t.Errorf("routes %d omitted %+v", len(s.Routes), s.Omitted)
			}
			// The totals still count every route.
			if s.Candidate.Verdicts.Total != 9 {
				t.Errorf("candidate total %d", s.Candidate.Verdicts.Total)
			}
		}},
		{"keys cut", handDocs(), Options{MaxKeys: 1}, func(t *testing.T, s Summary) {
			want := Keys{Top: []KeyCount{{"status", 3}}, Other: 1}
			if !reflect.DeepEqual(s.Candidate.Regressions, want) {
				t.Errorf("regressions %+v, want %+v", s.Candidate.Regressions, want)
			}
		}},
		{"empty", nil, Options{}, func(t *testing.T, s Summary) {
			if s.Pairs != 0 || !s.From.IsZero() || s.Routes == nil || s.Targets == nil || s.Candidate.MismatchRate != 0 {
				t.Errorf("%+v", s)
			}
		}},
		{"unknown verdict", []analyzer.Doc{doc("GET /a", "staging", "candidate", "weird", 1, 1)}, Options{}, func(t *testing.T, s Summary) {
			if s.Verdicts.Other != 1 || s.Verdicts.Total != 1 || s.Candidate.Latency.Samples != 0 {
				t.Errorf("%+v", s.Verdicts)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { tc.check(t, FromDocs(slices.Values(tc.docs), tc.opts)) })
	}
}

// assertSummary compares got with want: percentiles within tol (relative,
// or absolute below 1), everything else exactly.
func assertSummary(t *testing.T, got, want Summary, tol float64) {
	t.Helper()
	for _, p := range []struct {
		what      string
		got, want *Latency
	}{{"candidate", &got.Candidate.Latency, &want.Candidate.Latency}} {
		assertLatency(t, p.what, *p.got, *p.want, tol)
	}
	if len(got.Routes) == len(want.Routes) {
		for i := range got.Routes {
			assertLatency(t, got.Routes[i].Route, got.Routes[i].Latency, want.Routes[i].Latency, tol)
		}
	}
	g, w := stripPercentiles(got), stripPercentiles(want)
	if !reflect.DeepEqual(g, w) {
		gj, _ := json.MarshalIndent(g, "", " ")
		wj, _ := json.MarshalIndent(w, "", " ")
		t.Errorf("summaries differ\ngot:  %s\nwant: %s", gj, wj)
	}
}

func assertLatency(t *testing.T, what string, got, want Latency, tol float64) {
	t.Helper()
	pairs := []struct {
		name      string
		got, want float64
	}{
		{"production p50", got.Production.P50, want.Production.P50}, {"production p95", got.Production.P95, want.Production.P95},
		{"target p50", got.Target.P50, want.Target.P50}, {"target p95", got.Target.P95, want.Target.P95},
		{"delta p50", got.DeltaP50, want.DeltaP50}, {"delta p95", got.DeltaP95, want.DeltaP95},
	}
	for _, p := range pairs {
		if math.Abs(p.got-p.want) > tol*max(1, math.Abs(p.want)) {
			t.Errorf("%s: %s %v, want %v (tolerance %v)", what, p.name, p.got, p.want, tol)
		}
	}
}

// stripPercentiles zeroes the percentiles and deltas (not the sample
// counts) of a copy of s.
func stripPercentiles(s Summary) Summary {
	strip := func(l *Latency) { *l = Latency{Samples: l.Samples} }
	strip(&s.Candidate.Latency)
	s.Routes = slices.Clone(s.Routes)
	for i := range s.Routes {
		strip(&s.Routes[i].Latency)
	}
	return s
}

// BenchmarkAccumulatorAdd: the cost per document of a local report.
func BenchmarkAccumulatorAdd(b *testing.B) {
	docs := testDocs(b)
	a := NewAccumulator(Options{})
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		a.Add(docs[i%len(docs)])
	}
}
