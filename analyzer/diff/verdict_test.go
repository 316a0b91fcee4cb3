package diff

import (
	"fmt"
	"slices"
	"sync"
	"testing"
)

func TestJudge(t *testing.T) {
	res := func(keys ...string) *Result { return &Result{Keys: keys} }
	learned := func(keys ...string) func(string) bool {
		return func(k string) bool { return slices.Contains(keys, k) }
	}
	for _, tc := range []struct {
		name       string
		cand, base *Result
		noisy      func(string) bool
		want       Judgement
	}{
		{"match", res(), nil, nil, Judgement{Verdict: VerdictMatch}},
		{"match, baseline differs", res(), res("status"), nil, Judgement{Verdict: VerdictMatch}},
		{"mismatch without baseline", res("status", "body:$.a"), nil, nil,
			Judgement{Verdict: VerdictMismatch, Regressions: []string{"status", "body:$.a"}}},
		{"all differ vs the baseline too", res("header:x", "body:$.items[*].at"), res("body:$.items[*].at", "header:x", "body:$.other"), nil,
			Judgement{Verdict: VerdictNoiseOnly, Noise: []string{"header:x", "body:$.items[*].at"}}},
		{"one regression among noise", res("body:$.at", "body:$.price"), res("body:$.at"), nil,
			Judgement{Verdict: VerdictMismatch, Regressions: []string{"body:$.price"}, Noise: []string{"body:$.at"}}},
		{"baseline matched production", res("body:$.at"), res(), nil,
			Judgement{Verdict: VerdictMismatch, Regressions: []string{"body:$.at"}}},
		{"learned noise, no baseline", res("body:$.at"), nil, learned("body:$.at"),
			Judgement{Verdict: VerdictNoiseOnly, LearnedNoise: []string{"body:$.at"}}},
		{"baseline and learned", res("body:$.at", "header:etag2", "status"), res("header:etag2"), learned("body:$.at", "header:etag2"),
			Judgement{Verdict: VerdictMismatch, Regressions: []string{"status"}, Noise: []string{"header:etag2"}, LearnedNoise: []string{"body:$.at"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Judge(tc.cand, tc.base, tc.noisy)
			if got.Verdict != tc.want.Verdict || !slices.Equal(got.Regressions, tc.want.Regressions) ||
				!slices.Equal(got.Noise, tc.want.Noise) || !slices.Equal(got.LearnedNoise, tc.want.LearnedNoise) {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// Judge on real comparisons: a timestamp nobody masked differs between
// production and the baseline too, so it is noise; a changed price is not.
func TestJudgeWithBaseline(t *testing.T) {
	d := newDiffer(t, Config{NoDefaultMasks: true})
	prod := jsonResp(`{"at":"10:00","price":10}`)
	base := d.Compare(prod, jsonResp(`{"at":"10:01","price":10}`))
	cand := d.Compare(prod, jsonResp(`{"at":"10:02","price":10}`))
	if j := Judge(&cand, &base, nil); j.Verdict != VerdictNoiseOnly {
		t.Errorf("%+v", j)
	}
	cand = d.Compare(prod, jsonResp(`{"at":"10:02","price":11}`))
	if j := Judge(&cand, &base, nil); j.Verdict != VerdictMismatch || !slices.Equal(j.Regressions, []string{"body:$.price"}) {
		t.Errorf("%+v", j)
	}
}

func TestNoiseLearner(t *testing.T) {
	d := newDiffer(t, Config{NoiseShare: 0.25, NoiseMinSamples: 8})
	l := d.NewNoiseLearner()
	const route = "GET /users/{id}"
	// 8 samples: "at" differs in 3 (37.5%), "etag" in 2 (25%: not more
	// than the share), "x" in 1.
	for i := range 8 {
		var keys []string
		if i < 3 {
			keys = append(keys, "body:$.at", "body:$.at") // counted once
		}
		if i < 2 {
			keys = append(keys, "header:etag2")
		}
		if i == 0 {
			keys = append(keys, "body:$.x")
		}
		if i == 7 {
			if l.Noisy(route, "body:$.at") {
				t.Error("noisy before NoiseMinSamples")
			}
		}
		l.Observe(route, keys)
	}
	for key, want := range map[string]bool{"body:$.at": true, "header:etag2": false, "body:$.x": false, "status": false} {
		if got := l.Noisy(route, key); got != want {
			t.Errorf("Noisy(%s) = %v", key, got)
		}
	}
	if l.Noisy("GET /other", "body:$.at") || !l.NoisyFunc(route)("body:$.at") {
		t.Error("routes are separate")
	}
	s := l.Snapshot()
	want := []RouteNoise{{Route: route, Samples: 8, Keys: []KeyShare{{Key: "body:$.at", Count: 3, Share: 0.375}}}}
	if len(s.Routes) != 1 || s.Routes[0].Route != want[0].Route || s.Routes[0].Samples != 8 || !slices.Equal(s.Routes[0].Keys, want[0].Keys) {
		t.Errorf("snapshot %+v", s)
	}
	// Judge with the learner: the noisy key is learned noise.
	if j := Judge(&Result{Keys: []string{"body:$.at"}}, nil, l.NoisyFunc(route)); j.Verdict != VerdictNoiseOnly {
		t.Errorf("%+v", j)
	}
}

func TestNoiseLearnerBounds(t *testing.T) {
	l := newDiffer(t, Config{NoiseMinSamples: 1}).NewNoiseLearner()
	keys := make([]string, MaxNoiseKeysPerRoute+5)
	for i := range keys {
		keys[i] = fmt.Sprint("body:$.k", i)
	}
	l.Observe("r", keys)
	for i := range MaxNoiseRoutes + 2 {
		l.Observe(fmt.Sprint("route", i), nil)
	}
	s := l.Snapshot()
	if s.DroppedKeys != 5 || s.DroppedRoutes != 3 || len(s.Routes) != 1 || len(s.Routes[0].Keys) != MaxNoiseKeysPerRoute {
		t.Errorf("dropped %d keys %d routes; %d routes", s.DroppedKeys, s.DroppedRoutes, len(s.Routes))
	}
}

func TestNoiseLearnerConcurrent(t *testing.T) {
	l := newDiffer(t, Config{NoiseMinSamples: 10}).NewNoiseLearner()
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 200 {
				l.Observe(fmt.Sprint("r", i%3), []string{"status", fmt.Sprint("body:$.k", g)})
				l.Noisy("r0", "status")
				if i%50 == 0 {
					l.Snapshot()
				}
			}
		})
	}
	wg.Wait()
	if !l.Noisy("r0", "status") {
		t.Error("status should be noisy")
	}
}
