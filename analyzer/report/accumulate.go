package report

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"time"

	"github.com/tapline/tapline/analyzer"
	"github.com/tapline/tapline/internal/stream"
	"github.com/tapline/tapline/schema"
)

// Accumulator builds a Summary from pair documents given one at a time:
// the path for local results, with no Elasticsearch. Its memory grows with
// the number of distinct routes, targets and difference keys, not with the
// number of documents: a route's latency series hold at most 2048 values
// each before they move to buckets (see the package documentation on
// percentiles). Not safe for concurrent use.
type Accumulator struct {
	opts        Options
	pairs       int64
	verdicts    VerdictCounts
	first, last time.Time
	targets     map[targetRole]*VerdictCounts
	candidate   *group
	routes      map[string]*group
	undecodable int64
}

type targetRole struct{ target, role string }

// group accumulates one Breakdown.
type group struct {
	verdicts                                VerdictCounts
	regressions, noise, learned, errorKinds map[string]int64
	prod, target                            series
	samples                                 int64
}

func newGroup() *group {
	return &group{regressions: map[string]int64{}, noise: map[string]int64{}, learned: map[string]int64{}, errorKinds: map[string]int64{}}
}

func (g *group) add(d *analyzer.Doc) {
	g.verdicts.add(d.Verdict, 1)
	for _, k := range d.Regressions {
		g.regressions[k]++
	}
	for _, k := range d.Noise {
		g.noise[k]++
	}
	for _, k := range d.LearnedNoise {
		g.learned[k]++
	}
	switch d.Verdict {
	case analyzer.VerdictTargetError:
		g.errorKinds[cmp.Or(d.ErrorKind, UnknownErrorKind)]++
	case analyzer.VerdictMatch, analyzer.VerdictNoiseOnly, analyzer.VerdictMismatch:
		if d.LatencyMs.Production != nil && d.LatencyMs.Target != nil {
			g.samples++
			g.prod.add(*d.LatencyMs.Production)
			g.target.add(*d.LatencyMs.Target)
		}
	}
}

func (g *group) breakdown(maxKeys int) Breakdown {
	b := Breakdown{
		Verdicts:     g.verdicts,
		Regressions:  topKeys(g.regressions, maxKeys),
		Noise:        topKeys(g.noise, maxKeys),
		LearnedNoise: topKeys(g.learned, maxKeys),
		ErrorKinds:   topKeys(g.errorKinds, maxKeys),
		Latency:      Latency{Samples: g.samples, Production: g.prod.percentiles(), Target: g.target.percentiles()},
	}
	b.setRates()
	b.Latency.setDeltas()
	return b
}

// NewAccumulator returns an empty Accumulator that keeps the documents
// opts selects.
func NewAccumulator(opts Options) *Accumulator {
	return &Accumulator{
		opts:      opts.withDefaults(),
		targets:   map[targetRole]*VerdictCounts{},
		candidate: newGroup(),
		routes:    map[string]*group{},
	}
}

// Add counts d if the Options select it.
func (a *Accumulator) Add(d analyzer.Doc) {
	if a.opts.Target != "" && d.Target != a.opts.Target {
		return
	}
	ts := truncMilli(d.Timestamp)
	if !a.opts.Since.IsZero() && ts.Before(a.opts.Since) || !a.opts.Until.IsZero() && !ts.Before(a.opts.Until) {
		return
	}
	if a.pairs == 0 || ts.Before(a.first) {
		a.first = ts
	}
	if a.pairs == 0 || ts.After(a.last) {
		a.last = ts
	}
	a.pairs++
	a.verdicts.add(d.Verdict, 1)
	tr := targetRole{d.Target, d.Role}
	if a.targets[tr] == nil {
		a.targets[tr] = &VerdictCounts{}
	}
	a.targets[tr].add(d.Verdict, 1)
	if d.Role != "candidate" {
		return
	}
	a.candidate.add(&d)
	g := a.routes[d.Route]
	if g == nil {
		g = newGroup()
		a.routes[d.Route] = g
	}
	g.add(&d)
}

// Fetcher delivers records until io.EOF; a filelog.Reader without Follow
// is one. The report only reads: it never commits.
type Fetcher interface {
	Fetch(ctx context.Context) ([]stream.Record, error)
}

// ReadResults reads ReplayResult records from src until io.EOF and adds
// the documents cmp builds for each, in log order, as the analyzer would
// (cmp learns noise from the baseline as it goes). Records that cannot be
// decoded are counted (Summary.Undecodable) and skipped. It returns an
// error when src fails or ctx ends; what was read so far stays added.
func (a *Accumulator) ReadResults(ctx context.Context, src Fetcher, cmp *analyzer.Comparer) error {
	for {
		batch, err := src.Fetch(ctx)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading replay results: %w", err)
		}
		for _, rec := range batch {
			res, err := schema.DecodeReplayResult(rec.Value, rec.Headers)
			if err != nil {
				a.undecodable++
				continue
			}
			for _, d := range cmp.Compare(res) {
				a.Add(d)
			}
		}
	}
}

// Summary returns the report over the documents added so far. The
// Accumulator stays usable.
func (a *Accumulator) Summary() Summary {
	s := Summary{
		Filter:      Filter{Target: a.opts.Target, Since: a.opts.Since, Until: a.opts.Until},
		Limits:      Limits{MaxRoutes: a.opts.MaxRoutes, MaxKeys: a.opts.MaxKeys},
		Pairs:       a.pairs,
		Verdicts:    a.verdicts,
		Candidate:   a.candidate.breakdown(a.opts.MaxKeys),
		Undecodable: a.undecodable,
	}
	if a.pairs > 0 {
		s.From, s.To = a.first, a.last
	}
	for tr, v := range a.targets {
		s.Targets = append(s.Targets, TargetCounts{Target: tr.target, Role: tr.role, Verdicts: *v, MismatchRate: v.MismatchRate()})
	}
	sortTargets(s.Targets)
	for route, g := range a.routes {
		s.Routes = append(s.Routes, RouteSummary{Route: route, Breakdown: g.breakdown(a.opts.MaxKeys)})
	}
	s.Routes = keepWorst(s.Routes, a.opts.MaxRoutes, &s.Omitted)
	s.normalize()
	return s
}

// FromDocs is the Summary of docs under opts; slices.Values(docs) adapts
// a slice. A nil docs is no documents.
func FromDocs(docs iter.Seq[analyzer.Doc], opts Options) Summary {
	a := NewAccumulator(opts)
	if docs == nil {
		return a.Summary()
	}
	for d := range docs {
		a.Add(d)
	}
	return a.Summary()
}
