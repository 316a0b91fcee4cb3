package report

import (
	"cmp"
	"encoding/json"
	"io"
	"slices"
	"time"

	"github.com/tapline/tapline/analyzer"
)

// Options selects the pair documents a report covers and bounds its size.
// The zero value covers every document, with the default bounds.
type Options struct {
	// Target keeps only the documents of this target. Default "": all.
	Target string
	// Since and Until keep the documents whose @timestamp (capture time),
	// at millisecond precision, is in [Since, Until). Default: unbounded.
	Since, Until time.Time
	// MaxRoutes is how many routes a Summary lists, worst first. Default
	// 200.
	MaxRoutes int
	// MaxKeys is how many difference keys each key list holds, most
	// frequent first. Default 10.
	MaxKeys int
}

func (o Options) withDefaults() Options {
	if o.MaxRoutes <= 0 {
		o.MaxRoutes = 200
	}
	if o.MaxKeys <= 0 {
		o.MaxKeys = 10
	}
	o.Since, o.Until = truncMilli(o.Since), truncMilli(o.Until)
	return o
}

// Summary is a report over pair documents. Both paths (Accumulator and
// FromElasticsearch) build it the same way; see the package documentation
// for what is counted where.
type Summary struct {
	// Source says where the documents came from ("elasticsearch
	// http://host:9200 tapline-pairs"); set by FromElasticsearch, and by
	// the caller for local results.
	Source string `json:"source,omitempty"`
	Filter Filter `json:"filter"`
	// From and To are the first and last @timestamp of the selected
	// documents, at millisecond precision; zero when there are none.
	From time.Time `json:"from,omitzero"`
	To   time.Time `json:"to,omitzero"`
	// Pairs counts every selected document, whatever its role; Verdicts
	// splits them by verdict.
	Pairs    int64         `json:"pairs"`
	Verdicts VerdictCounts `json:"verdicts"`
	// Candidate is the breakdown of the documents with role "candidate":
	// the ones mismatch rates and gates are about.
	Candidate Breakdown `json:"candidate"`
	// Targets has one row per target and role, candidates first, then by
	// name.
	Targets []TargetCounts `json:"targets"`
	// Routes are the candidate documents by route, worst first: most
	// mismatches, then most requests, then by route. At most
	// Limits.MaxRoutes; Omitted counts the rest.
	Routes  []RouteSummary `json:"routes"`
	Omitted Omitted        `json:"omitted"`
	Limits  Limits         `json:"limits"`
	// Undecodable counts result records that could not be decoded and are
	// in no count (local results only).
	Undecodable int64 `json:"undecodable,omitempty"`
}

// Filter is the selection a Summary covers (Options.Target, Since, Until).
type Filter struct {
	Target string    `json:"target,omitempty"`
	Since  time.Time `json:"since,omitzero"`
	Until  time.Time `json:"until,omitzero"`
}

// Limits are the bounds a Summary was built with.
type Limits struct {
	MaxRoutes int `json:"max_routes"`
	MaxKeys   int `json:"max_keys"`
}

// Omitted counts the routes left out of Summary.Routes, and the candidate
// documents (requests) on them.
type Omitted struct {
	Routes   int   `json:"routes"`
	Requests int64 `json:"requests"`
}

// VerdictCounts counts documents by verdict. Other counts verdicts this
// version does not know.
type VerdictCounts struct {
	Total        int64 `json:"total"`
	Match        int64 `json:"match"`
	NoiseOnly    int64 `json:"noise_only"`
	Mismatch     int64 `json:"mismatch"`
	TargetError  int64 `json:"target_error"`
	NoProduction int64 `json:"no_production"`
	Other        int64 `json:"other,omitempty"`
}

// Compared is the number of documents with both responses:
// match + noise_only + mismatch.
func (v VerdictCounts) Compared() int64 { return v.Match + v.NoiseOnly + v.Mismatch }

// MismatchRate is Mismatch / Compared(); 0 when nothing was compared.
func (v VerdictCounts) MismatchRate() float64 { return ratio(v.Mismatch, v.Compared()) }

// TargetErrorRate is TargetError / Total; 0 when there is nothing.
func (v VerdictCounts) TargetErrorRate() float64 { return ratio(v.TargetError, v.Total) }

func (v *VerdictCounts) add(verdict string, n int64) {
	v.Total += n
	switch verdict {
	case analyzer.VerdictMatch:
		v.Match += n
	case analyzer.VerdictNoiseOnly:
		v.NoiseOnly += n
	case analyzer.VerdictMismatch:
		v.Mismatch += n
	case analyzer.VerdictTargetError:
		v.TargetError += n
	case analyzer.VerdictNoProduction:
		v.NoProduction += n
	default:
		v.Other += n
	}
}

// comparedVerdicts are the verdicts of documents with both responses.
var comparedVerdicts = []string{analyzer.VerdictMatch, analyzer.VerdictNoiseOnly, analyzer.VerdictMismatch}

// Breakdown describes a set of candidate documents: all of them, or one
// route's.
type Breakdown struct {
	Verdicts VerdictCounts `json:"verdicts"`
	// MismatchRate is Verdicts.MismatchRate(), TargetErrorRate
	// Verdicts.TargetErrorRate(), as fractions (0.05 is 5%).
	MismatchRate    float64 `json:"mismatch_rate"`
	TargetErrorRate float64 `json:"target_error_rate"`
	// Regressions, Noise and LearnedNoise are the most frequent keys of
	// the documents' lists of the same names (see analyzer.Doc), with the
	// number of documents that carry each.
	Regressions  Keys    `json:"regressions"`
	Noise        Keys    `json:"noise"`
	LearnedNoise Keys    `json:"learned_noise"`
	Latency      Latency `json:"latency"`
	// ErrorKinds counts the target_error documents by error_kind (timeout,
	// connection_refused, paused, ...; see analyzer.Doc); documents from
	// replayers older than schema 1.1 have no kind and count as
	// UnknownErrorKind.
	ErrorKinds Keys `json:"error_kinds"`
}

// UnknownErrorKind is the ErrorKinds key of target errors without a kind.
const UnknownErrorKind = "unknown"

func (b *Breakdown) setRates() {
	b.MismatchRate, b.TargetErrorRate = b.Verdicts.MismatchRate(), b.Verdicts.TargetErrorRate()
}

// RouteSummary is one route's breakdown; Verdicts.Total is its number of
// requests (candidate documents: exchanges × candidate targets).
type RouteSummary struct {
	Route string `json:"route"`
	Breakdown
}

// TargetCounts counts one target's documents.
type TargetCounts struct {
	Target       string        `json:"target"`
	Role         string        `json:"role"`
	Verdicts     VerdictCounts `json:"verdicts"`
	MismatchRate float64       `json:"mismatch_rate"`
}

// Keys is a top list of difference keys. Other is the sum of the counts of
// the keys left out; more than zero means the list was cut.
type Keys struct {
	Top   []KeyCount `json:"top"`
	Other int64      `json:"other,omitempty"`
}

// KeyCount is a key ("status", "body:$.user.name") and how many documents
// carry it.
type KeyCount struct {
	Key   string `json:"key"`
	Count int64  `json:"count"`
}

// Latency holds the latency percentiles, in milliseconds, of the compared
// documents that carry both latencies (Samples of them); all zero when
// Samples is 0.
type Latency struct {
	Samples    int64       `json:"samples"`
	Production Percentiles `json:"production"`
	Target     Percentiles `json:"target"`
	// DeltaP50 is Target.P50 − Production.P50, DeltaP95 the same for p95:
	// positive when the target is slower.
	DeltaP50 float64 `json:"delta_p50_ms"`
	DeltaP95 float64 `json:"delta_p95_ms"`
}

func (l *Latency) setDeltas() {
	if l.Samples == 0 {
		*l = Latency{}
		return
	}
	l.DeltaP50 = l.Target.P50 - l.Production.P50
	l.DeltaP95 = l.Target.P95 - l.Production.P95
}

// Percentiles of one latency series, in milliseconds.
type Percentiles struct {
	P50 float64 `json:"p50_ms"`
	P95 float64 `json:"p95_ms"`
}

// WriteJSON writes s as indented JSON, one object.
func WriteJSON(w io.Writer, s Summary) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(s)
}

// worse orders routes worst first: most mismatches, then most requests,
// then by name.
func worse(a, b RouteSummary) int {
	if c := cmp.Compare(b.Verdicts.Mismatch, a.Verdicts.Mismatch); c != 0 {
		return c
	}
	if c := cmp.Compare(b.Verdicts.Total, a.Verdicts.Total); c != 0 {
		return c
	}
	return cmp.Compare(a.Route, b.Route)
}

// keepWorst sorts routes worst first and cuts them to max, adding what it
// cuts to om.
func keepWorst(routes []RouteSummary, max int, om *Omitted) []RouteSummary {
	slices.SortFunc(routes, worse)
	if len(routes) <= max {
		return routes
	}
	for _, r := range routes[max:] {
		om.Routes++
		om.Requests += r.Verdicts.Total
	}
	return slices.Clip(routes[:max])
}

// sortTargets orders target rows: candidates first, then by name.
func sortTargets(ts []TargetCounts) {
	slices.SortFunc(ts, func(a, b TargetCounts) int {
		if ac, bc := a.Role == "candidate", b.Role == "candidate"; ac != bc {
			if ac {
				return -1
			}
			return 1
		}
		if c := cmp.Compare(a.Target, b.Target); c != 0 {
			return c
		}
		return cmp.Compare(a.Role, b.Role)
	})
}

// topKeys is the max most frequent keys of counts (ties by key) and the
// sum of the others.
func topKeys(counts map[string]int64, max int) Keys {
	var k Keys
	for key, n := range counts {
		k.Top = append(k.Top, KeyCount{key, n})
	}
	slices.SortFunc(k.Top, func(a, b KeyCount) int {
		if c := cmp.Compare(b.Count, a.Count); c != 0 {
			return c
		}
		return cmp.Compare(a.Key, b.Key)
	})
	if len(k.Top) > max {
		for _, kc := range k.Top[max:] {
			k.Other += kc.Count
		}
		k.Top = slices.Clip(k.Top[:max])
	}
	return k
}

func ratio(n, d int64) float64 {
	if d == 0 {
		return 0
	}
	return float64(n) / float64(d)
}

func truncMilli(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return time.UnixMilli(t.UnixMilli()).UTC()
}

// normalize makes empty lists empty rather than nil, so that both paths
// build equal Summaries and JSON shows [] rather than null.
func (s *Summary) normalize() {
	if s.Targets == nil {
		s.Targets = []TargetCounts{}
	}
	if s.Routes == nil {
		s.Routes = []RouteSummary{}
	}
	s.Candidate.normalize()
	for i := range s.Routes {
		s.Routes[i].normalize()
	}
}

func (b *Breakdown) normalize() {
	for _, k := range []*Keys{&b.Regressions, &b.Noise, &b.LearnedNoise, &b.ErrorKinds} {
		if k.Top == nil {
			k.Top = []KeyCount{}
		}
	}
}
