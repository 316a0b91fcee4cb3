package diff

import (
	"cmp"
	"slices"
	"sync"
)

// Bounds of a NoiseLearner's memory. Past them, new routes and new keys
// are not tracked (and so never noisy) and are counted in NoiseSnapshot.
const (
	MaxNoiseRoutes       = 10_000
	MaxNoiseKeysPerRoute = 1_000
)

// NoiseLearner learns, per route, which difference keys are noise: a key
// is noisy for a route when it differed between production and the
// baseline in more than Config.NoiseShare of at least
// Config.NoiseMinSamples baseline comparisons of that route. Counts are
// cumulative since the learner was created (the analyzer's lifetime).
//
// A NoiseLearner is safe for concurrent use. Create it with
// Differ.NewNoiseLearner.
type NoiseLearner struct {
	share      float64
	minSamples int

	mu            sync.RWMutex
	routes        map[string]*routeCounts
	droppedRoutes uint64
	droppedKeys   uint64
}

type routeCounts struct {
	samples int
	keys    map[string]int
}

// NewNoiseLearner returns an empty learner with d's NoiseShare and
// NoiseMinSamples.
func (d *Differ) NewNoiseLearner() *NoiseLearner {
	return &NoiseLearner{share: d.cfg.NoiseShare, minSamples: d.cfg.NoiseMinSamples, routes: map[string]*routeCounts{}}
}

// Observe records one baseline comparison of route: baselineKeys are the
// Keys of the Result of the baseline target against production (empty
// when they matched). Call it once per exchange that has a baseline
// response, matched or not.
func (l *NoiseLearner) Observe(route string, baselineKeys []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	rc := l.routes[route]
	if rc == nil {
		if len(l.routes) >= MaxNoiseRoutes {
			l.droppedRoutes++
			return
		}
		rc = &routeCounts{keys: map[string]int{}}
		l.routes[route] = rc
	}
	rc.samples++
	for i, k := range baselineKeys {
		if slices.Contains(baselineKeys[:i], k) {
			continue // count a key once per comparison
		}
		if _, ok := rc.keys[k]; !ok && len(rc.keys) >= MaxNoiseKeysPerRoute {
			l.droppedKeys++
			continue
		}
		rc.keys[k]++
	}
}

// Noisy reports whether key is learned noise for route.
func (l *NoiseLearner) Noisy(route, key string) bool {
	l.mu.RLock()
	defer l.mu.RUnlock()
	rc := l.routes[route]
	return rc != nil && l.noisy(rc, rc.keys[key])
}

func (l *NoiseLearner) noisy(rc *routeCounts, n int) bool {
	return rc.samples >= l.minSamples && float64(n) > l.share*float64(rc.samples)
}

// NoisyFunc returns Noisy for one route, in the shape Judge takes.
func (l *NoiseLearner) NoisyFunc(route string) func(key string) bool {
	return func(key string) bool { return l.Noisy(route, key) }
}

// NoiseSnapshot is what a NoiseLearner has learned.
type NoiseSnapshot struct {
	Routes        []RouteNoise `json:"routes"`         // routes with at least one noisy key, sorted by route
	DroppedRoutes uint64       `json:"dropped_routes"` // observations of routes past MaxNoiseRoutes
	DroppedKeys   uint64       `json:"dropped_keys"`   // keys not counted, past MaxNoiseKeysPerRoute
}

// RouteNoise lists the noisy keys of one route.
type RouteNoise struct {
	Route   string     `json:"route"`
	Samples int        `json:"samples"` // baseline comparisons observed
	Keys    []KeyShare `json:"keys"`    // the noisy keys, highest share first
}

// KeyShare is how often a key differed vs the baseline.
type KeyShare struct {
	Key   string  `json:"key"`
	Count int     `json:"count"`
	Share float64 `json:"share"` // Count / Samples
}

// Snapshot returns the noisy keys of every route, for logging and
// reporting.
func (l *NoiseLearner) Snapshot() NoiseSnapshot {
	l.mu.RLock()
	defer l.mu.RUnlock()
	s := NoiseSnapshot{DroppedRoutes: l.droppedRoutes, DroppedKeys: l.droppedKeys}
	for route, rc := range l.routes {
		var keys []KeyShare
		for k, n := range rc.keys {
			if l.noisy(rc, n) {
				keys = append(keys, KeyShare{Key: k, Count: n, Share: float64(n) / float64(rc.samples)})
			}
		}
		if len(keys) == 0 {
			continue
		}
		slices.SortFunc(keys, func(a, b KeyShare) int {
			return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Key, b.Key))
		})
		s.Routes = append(s.Routes, RouteNoise{Route: route, Samples: rc.samples, Keys: keys})
	}
	slices.SortFunc(s.Routes, func(a, b RouteNoise) int { return cmp.Compare(a.Route, b.Route) })
	return s
}
