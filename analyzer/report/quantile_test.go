package report

import (
	"math"
	"slices"
	"testing"
)

func TestSeriesExact(t *testing.T) {
	cases := []struct {
		name   string
		values []float64
		q      float64
		want   float64
	}{
		{"empty", nil, 0.5, 0},
		{"one value", []float64{7}, 0.95, 7},
		// The values Elasticsearch was asked for (see doc.go): it answers
		// 5.65, 1.9, 28 and 64 for these.
		{"median interpolates", []float64{1, 2, 3, 4, 10, 20, 100, 7.3, 8.1, 2.2}, 0.5, 5.65},
		{"p10", []float64{1, 2, 3, 4, 10, 20, 100, 7.3, 8.1, 2.2}, 0.10, 1.9},
		{"p90", []float64{1, 2, 3, 4, 10, 20, 100, 7.3, 8.1, 2.2}, 0.90, 28},
		{"p95", []float64{1, 2, 3, 4, 10, 20, 100, 7.3, 8.1, 2.2}, 0.95, 64},
		{"min and max", []float64{3, 1, 2}, 0, 1},
		{"max", []float64{3, 1, 2}, 1, 3},
		{"NaN ignored", []float64{math.NaN(), 4, 2}, 0.5, 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var s series
			for _, v := range tc.values {
				s.add(v)
			}
			if got := s.quantile(tc.q); math.Abs(got-tc.want) > 1e-9 {
				t.Errorf("q%v = %v, want %v", tc.q, got, tc.want)
			}
		})
	}
}

// TestSeriesSketch: past exactLimit values, quantiles stay within the
// sketch's relative accuracy of the exact ones, and the memory is buckets,
// not values.
func TestSeriesSketch(t *testing.T) {
	cases := []struct {
		name string
		gen  func(i int) float64
	}{
		{"linear 1..10000 ms", func(i int) float64 { return 1 + float64(i%10000) }},
		{"long tail", func(i int) float64 { return 2 + math.Pow(float64(i%997)/997, 6)*5000 }},
		{"with zeros", func(i int) float64 { return float64(i%5) * 3.3 }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var s series
			var all []float64
			for i := range 20000 {
				v := tc.gen(i)
				s.add(v)
				all = append(all, v)
			}
			if s.exact != nil || s.buckets == nil {
				t.Fatalf("still exact after %d values", len(all))
			}
			if len(s.buckets) > 1000 {
				t.Errorf("%d buckets", len(s.buckets))
			}
			slices.Sort(all)
			for _, q := range []float64{0.5, 0.95, 0.99} {
				exact := all[int(math.Floor(q*float64(len(all)-1)))]
				got := s.quantile(q)
				if math.Abs(got-exact) > sketchAccuracy*exact+1e-9 {
					t.Errorf("q%v = %v, exact %v: more than %v%% off", q, got, exact, 100*sketchAccuracy)
				}
			}
		})
	}
}
