package report

import (
	"math"
	"slices"
	"strings"
	"testing"
)

func TestParseFailOn(t *testing.T) {
	cases := []struct {
		spec    string
		want    Gate   // Threshold compared within 1e-12
		wantErr string // substring of the error; "" for a valid spec
	}{
		{spec: "mismatch-rate>1%", want: Gate{Metric: MetricMismatchRate, Threshold: 0.01}},
		{spec: "mismatch-rate>0.5%:route=GET /users/{id}", want: Gate{Metric: MetricMismatchRate, Threshold: 0.005, Route: "GET /users/{id}"}},
		{spec: " mismatch-rate >= 0% ", want: Gate{Metric: MetricMismatchRate, OrEqual: true}},
		{spec: "target-error-rate>2.5%", want: Gate{Metric: MetricTargetErrorRate, Threshold: 0.025}},
		{spec: "mismatches>10", want: Gate{Metric: MetricMismatches, Threshold: 10}},
		{spec: "target-errors>0", want: Gate{Metric: MetricTargetErrors}},
		{spec: "target-errors>=3:route=POST /cart", want: Gate{Metric: MetricTargetErrors, OrEqual: true, Threshold: 3, Route: "POST /cart"}},
		{spec: "latency-p95-delta>50ms", want: Gate{Metric: MetricLatencyP95Delta, Threshold: 50}},
		{spec: "latency-p50-delta>1.5s", want: Gate{Metric: MetricLatencyP50Delta, Threshold: 1500}},
		{spec: "latency-p50-delta>250us", want: Gate{Metric: MetricLatencyP50Delta, Threshold: 0.25}},
		{spec: "latency-p95-delta>-5ms", want: Gate{Metric: MetricLatencyP95Delta, Threshold: -5}},
		// A route may hold ':' itself.
		{spec: "mismatches>0:route=GET /a:b", want: Gate{Metric: MetricMismatches, Route: "GET /a:b"}},

		{spec: "mismatch-rate>1", wantErr: "a rate is a percentage: write mismatch-rate>1%"},
		{spec: "mismatch-rate>101%", wantErr: "not a percentage from 0% to 100%"},
		{spec: "mismatch-rate>-1%", wantErr: "not a percentage"},
		{spec: "mismatch-rate>abc%", wantErr: "not a percentage"},
		{spec: "mismatches>1%", wantErr: "(for a share, use mismatch-rate)"},
		{spec: "mismatches>1.5", wantErr: "not a whole number"},
		{spec: "target-errors>-1", wantErr: "not a whole number"},
		{spec: "latency-p95-delta>50", wantErr: "not a duration with a unit"},
		{spec: "error-rate>1%", wantErr: `unknown metric "error-rate"`},
		{spec: "mismatch-rate<1%", wantErr: "no '>'"},
		{spec: "mismatch-rate>", wantErr: "no threshold"},
		{spec: "", wantErr: "no '>'"},
		{spec: "mismatches>1:target=x", wantErr: "the only scope is :route="},
		{spec: "mismatches>1:route= ", wantErr: "empty route"},
	}
	for _, tc := range cases {
		t.Run(tc.spec, func(t *testing.T) {
			gates, err := ParseFailOn([]string{tc.spec})
			if tc.wantErr != "" {
				if err == nil {
					t.Fatalf("accepted as %+v", gates)
				}
				if !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), `gate "`+tc.spec+`"`) ||
					!strings.HasSuffix(err.Error(), AcceptedGates) {
					t.Fatalf("error %q: want it to name the spec, say %q and end with the accepted forms", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			g := gates[0]
			if g.Metric != tc.want.Metric || g.OrEqual != tc.want.OrEqual || g.Route != tc.want.Route || math.Abs(g.Threshold-tc.want.Threshold) > 1e-12 {
				t.Fatalf("got %+v, want %+v", g, tc.want)
			}
			// String gives the spec back, normalised, and parses again.
			again, err := ParseFailOn([]string{g.String()})
			if err != nil || again[0].String() != g.String() {
				t.Fatalf("String %q does not round-trip: %v", g.String(), err)
			}
		})
	}
}

func TestParseFailOnNamesEveryBadSpec(t *testing.T) {
	_, err := ParseFailOn([]string{"mismatches>1", "bogus>1", "mismatch-rate>2"})
	if err == nil || !strings.Contains(err.Error(), `"bogus>1"`) || !strings.Contains(err.Error(), `"mismatch-rate>2"`) ||
		strings.Contains(err.Error(), `"mismatches>1"`) || strings.Count(err.Error(), "accepted forms") != 1 {
		t.Fatalf("error %v", err)
	}
}

func TestCheck(t *testing.T) {
	s := FromDocs(slices.Values(handDocs()), Options{})
	// The candidate: 3 mismatches of 7 compared (42.86%), 1 target error
	// of 9, p50 delta +10ms, p95 delta +10ms. GET /a: 2 of 4 (50%).
	cases := []struct {
		spec string
		want string // the violation message; "" when the gate passes
	}{
		{"mismatch-rate>50%", ""},
		{"mismatch-rate>40%", "mismatch-rate>40%: mismatch rate 42.86% (3 of 7 compared candidate pairs), above the threshold 40%"},
		{"mismatch-rate>=50%:route=GET /a", "mismatch-rate>=50%:route=GET /a: mismatch rate 50% (2 of 4 compared pairs on GET /a), at the threshold 50%"},
		{"mismatch-rate>50%:route=GET /a", ""},
		{"mismatches>3", ""},
		{"mismatches>2", "mismatches>2: 3 mismatches in 9 candidate pairs, above the threshold 2"},
		{"target-errors>0", "target-errors>0: 1 target errors in 9 candidate pairs, above the threshold 0"},
		{"target-errors>0:route=GET /b", ""},
		{"target-error-rate>10%", "target-error-rate>10%: target error rate 11.11% (1 of 9 candidate pairs), above the threshold 10%"},
		{"latency-p95-delta>50ms", ""},
		{"latency-p50-delta>5ms", "latency-p50-delta>5ms: p50 latency delta +10ms (production 15ms, target 25ms, over 6 candidate pairs), above the threshold 5ms"},
		{"latency-p95-delta>0.5ms:route=GET /b", "latency-p95-delta>0.5ms:route=GET /b: p95 latency delta +1ms (production 6.9ms, target 7.9ms, over 2 pairs on GET /b), above the threshold 0.5ms"},
		// Gates that cannot be measured fail.
		{"latency-p50-delta>1s:route=GET /c", "latency-p50-delta>1s:route=GET /c: cannot be checked: no latencies of compared pairs on GET /c"},
		{"mismatches>100:route=GET /nope", `mismatches>100:route=GET /nope: cannot be checked: route "GET /nope" has no candidate pairs in this report`},
	}
	for _, tc := range cases {
		t.Run(tc.spec, func(t *testing.T) {
			gates, err := ParseFailOn([]string{tc.spec})
			if err != nil {
				t.Fatal(err)
			}
			vs := Check(s, gates)
			switch {
			case tc.want == "" && len(vs) != 0:
				t.Fatalf("violated: %v", vs)
			case tc.want != "" && len(vs) != 1:
				t.Fatalf("%d violations, want 1", len(vs))
			case tc.want != "" && !strings.HasPrefix(vs[0].Message, tc.want):
				t.Fatalf("message\n%s\nwant\n%s", vs[0].Message, tc.want)
			}
		})
	}
}

func TestCheckEdges(t *testing.T) {
	cases := []struct {
		name     string
		s        Summary
		spec     string
		wantFail bool
		wantNaN  bool
	}{
		{"empty report: a rate cannot be checked", FromDocs(nil, Options{}), "mismatch-rate>1%", true, true},
		{"empty report: a count is zero", FromDocs(nil, Options{}), "mismatches>0", false, false},
		{"route cut by MaxRoutes", FromDocs(slices.Values(handDocs()), Options{MaxRoutes: 1}), "mismatches>5:route=GET /b", true, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			gates, err := ParseFailOn([]string{tc.spec})
			if err != nil {
				t.Fatal(err)
			}
			vs := Check(tc.s, gates)
			if (len(vs) > 0) != tc.wantFail {
				t.Fatalf("violations %v", vs)
			}
			if tc.wantFail && math.IsNaN(vs[0].Observed) != tc.wantNaN {
				t.Fatalf("observed %v", vs[0].Observed)
			}
			if tc.name == "route cut by MaxRoutes" && !strings.Contains(vs[0].Message, "raise the route limit") {
				t.Fatalf("message %q", vs[0].Message)
			}
		})
	}
}

// FuzzParseFailOn: no spec panics, and an accepted one prints back as a
// spec that parses to the same gate.
func FuzzParseFailOn(f *testing.F) {
	for _, s := range []string{"mismatch-rate>1%", "mismatch-rate>=0.5%:route=GET /users/{id}", "mismatches>10",
		"target-errors>0", "latency-p95-delta>50ms", "latency-p50-delta>-1.5s", "x>", ">", ":route="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		gates, err := ParseFailOn([]string{spec})
		if err != nil {
			return
		}
		again, err := ParseFailOn([]string{gates[0].String()})
		if err != nil {
			t.Fatalf("%q printed as %q, which does not parse: %v", spec, gates[0].String(), err)
		}
		a, b := gates[0], again[0]
		if a.Metric != b.Metric || a.OrEqual != b.OrEqual || a.Route != b.Route || a.Threshold != b.Threshold {
			t.Fatalf("%q → %+v → %q → %+v", spec, a, a.String(), b)
		}
	})
}
