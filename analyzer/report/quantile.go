package report

import (
	"math"
	"slices"
)

// exactLimit is how many values a series keeps as they are; past it the
// series moves to log buckets.
const exactLimit = 2048

// sketchAccuracy is the relative error of a quantile from log buckets.
const sketchAccuracy = 0.01

var (
	sketchGamma    = (1 + sketchAccuracy) / (1 - sketchAccuracy)
	sketchLogGamma = math.Log(sketchGamma)
)

// minPositive is the smallest value given a bucket of its own; smaller
// ones (and negative ones) count as zero.
const minPositive = 1e-9

// series computes percentiles of a stream of non-negative values: exactly
// while it holds at most exactLimit values, then from logarithmic buckets
// (as DDSketch does): bucket i holds the values in (γ^(i−1), γ^i], and a
// quantile is answered with the bucket's middle 2γ^i/(γ+1), within
// sketchAccuracy of any value in it. Memory is then one counter per bucket
// in use: about 460 buckets for values spread from 1 ms to 10 s.
type series struct {
	n       int64
	exact   []float64       // the values, while n <= exactLimit
	buckets map[int32]int64 // after: value count per bucket index
	zeros   int64           // after: values below minPositive
	sorted  bool            // exact is sorted
}

func (s *series) add(v float64) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return
	}
	s.n++
	if s.buckets == nil {
		s.exact = append(s.exact, v)
		s.sorted = false
		if len(s.exact) > exactLimit {
			s.buckets = map[int32]int64{}
			for _, x := range s.exact {
				s.bucket(x)
			}
			s.exact = nil
		}
		return
	}
	s.bucket(v)
}

func (s *series) bucket(v float64) {
	if v < minPositive {
		s.zeros++
		return
	}
	s.buckets[int32(math.Ceil(math.Log(v)/sketchLogGamma))]++
}

// quantile returns the q-quantile (0 ≤ q ≤ 1); 0 for an empty series.
// Exact values are interpolated linearly between the closest ranks, at
// rank q·(n−1).
func (s *series) quantile(q float64) float64 {
	if s.n == 0 {
		return 0
	}
	rank := q * float64(s.n-1)
	if s.buckets == nil {
		if !s.sorted {
			slices.Sort(s.exact)
			s.sorted = true
		}
		lo := int(math.Floor(rank))
		hi := min(lo+1, len(s.exact)-1)
		return s.exact[lo] + (rank-float64(lo))*(s.exact[hi]-s.exact[lo])
	}
	// The value of rank ⌊rank⌋ (0-based): the bucket where the running
	// count passes it.
	want := int64(math.Floor(rank))
	if want < s.zeros {
		return 0
	}
	seen := s.zeros
	idx := make([]int32, 0, len(s.buckets))
	for i := range s.buckets {
		idx = append(idx, i)
	}
	slices.Sort(idx)
	for _, i := range idx {
		seen += s.buckets[i]
		if seen > want {
			return 2 * math.Pow(sketchGamma, float64(i)) / (sketchGamma + 1)
		}
	}
	return 2 * math.Pow(sketchGamma, float64(idx[len(idx)-1])) / (sketchGamma + 1)
}

func (s *series) percentiles() Percentiles {
	return Percentiles{P50: s.quantile(0.50), P95: s.quantile(0.95)}
}
