package report

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/elastic/go-elasticsearch/v8"

	"github.com/tapline/tapline/analyzer"
	"github.com/tapline/tapline/internal/esclient"
)

// ESConfig says where the pair documents are and which of them to report
// on. Zero values are the documented defaults.
type ESConfig struct {
	URL string // http(s)://host:9200, without credentials in it; required
	// Index is the data stream (or index, alias or pattern) the analyzer
	// writes to. Default "tapline-pairs".
	Index string
	// Username and Password, or APIKey, authenticate; default none.
	Username, Password, APIKey string
	// CAFile (PEM) or CAFingerprint (SHA-256 of a certificate in the
	// node's chain) say which certificate an https node must present.
	// Default: one signed by a CA of the system's roots.
	CAFile, CAFingerprint string
	// Options select the documents and bound the report.
	Options
}

// routePage and targetPage are how many composite buckets one request
// asks for.
const (
	routePage  = 100
	targetPage = 100
)

// FromElasticsearch builds the Summary of the pair documents in cfg.Index
// from aggregations: one request for the totals, then composite pages over
// targets and over routes (every route is counted; the worst MaxRoutes
// are kept). It fetches no documents.
func FromElasticsearch(ctx context.Context, cfg ESConfig) (Summary, error) {
	if cfg.URL == "" {
		return Summary{}, errors.New("report: no Elasticsearch URL")
	}
	if cfg.Index == "" {
		cfg.Index = "tapline-pairs"
	}
	cfg.Options = cfg.Options.withDefaults()
	esCfg, err := esclient.Config{
		URL: cfg.URL, CAFile: cfg.CAFile, CAFingerprint: cfg.CAFingerprint,
		Username: cfg.Username, Password: cfg.Password, APIKey: cfg.APIKey,
	}.Elasticsearch()
	if err != nil {
		return Summary{}, fmt.Errorf("report: elasticsearch: %w", err)
	}
	es, err := elasticsearch.NewClient(esCfg)
	if err != nil {
		return Summary{}, fmt.Errorf("elasticsearch client for %s: %w", redact(cfg.URL), err)
	}
	q := esQuery{es: es, cfg: cfg}
	s := Summary{
		Source: "elasticsearch " + redact(cfg.URL) + " " + cfg.Index,
		Filter: Filter{Target: cfg.Target, Since: cfg.Since, Until: cfg.Until},
		Limits: Limits{MaxRoutes: cfg.MaxRoutes, MaxKeys: cfg.MaxKeys},
	}
	if err := q.overview(ctx, &s); err != nil {
		return Summary{}, err
	}
	if err := q.targets(ctx, &s); err != nil {
		return Summary{}, err
	}
	if err := q.routes(ctx, &s); err != nil {
		return Summary{}, err
	}
	s.normalize()
	return s, nil
}

type esQuery struct {
	es  *elasticsearch.Client
	cfg ESConfig
}

func (q *esQuery) conn() esclient.Config {
	return esclient.Config{URL: q.cfg.URL, Username: q.cfg.Username, APIKey: q.cfg.APIKey}
}

// filter is the selection of Options as query clauses.
func (q *esQuery) filter(candidateOnly bool) map[string]any {
	f := []any{}
	if q.cfg.Target != "" {
		f = append(f, map[string]any{"term": map[string]any{"target": q.cfg.Target}})
	}
	if candidateOnly {
		f = append(f, map[string]any{"term": map[string]any{"role": "candidate"}})
	}
	r := map[string]any{"format": "epoch_millis"}
	if !q.cfg.Since.IsZero() {
		r["gte"] = q.cfg.Since.UnixMilli()
	}
	if !q.cfg.Until.IsZero() {
		r["lt"] = q.cfg.Until.UnixMilli()
	}
	if len(r) > 1 {
		f = append(f, map[string]any{"range": map[string]any{"@timestamp": r}})
	}
	return map[string]any{"bool": map[string]any{"filter": f}}
}

// breakdownAggs are the aggregations of one Breakdown, read by
// esBreakdown.breakdown.
func (q *esQuery) breakdownAggs() map[string]any {
	keys := func(field string) map[string]any {
		return map[string]any{"terms": map[string]any{
			"field": field, "size": q.cfg.MaxKeys,
			// More candidates per shard than the default (size·1.5+10), so
			// that the cut is right across backing indices too.
			"shard_size": max(100, 10*q.cfg.MaxKeys),
			"order":      []any{map[string]any{"_count": "desc"}, map[string]any{"_key": "asc"}},
		}}
	}
	pct := func(field string) map[string]any {
		return map[string]any{"percentiles": map[string]any{"field": field, "percents": []float64{50, 95}, "keyed": false}}
	}
	return map[string]any{
		"verdicts":      verdictTerms(),
		"regressions":   keys("regressions"),
		"noise":         keys("noise"),
		"learned_noise": keys("learned_noise"),
		"error_kinds": map[string]any{
			"filter": map[string]any{"term": map[string]any{"verdict": analyzer.VerdictTargetError}},
			"aggs":   map[string]any{"kinds": withMissing(keys("error_kind"), UnknownErrorKind)},
		},
		"latency": map[string]any{
			"filter": map[string]any{"bool": map[string]any{"filter": []any{
				map[string]any{"terms": map[string]any{"verdict": comparedVerdicts}},
				map[string]any{"exists": map[string]any{"field": "latency_ms.production"}},
				map[string]any{"exists": map[string]any{"field": "latency_ms.target"}},
			}}},
			"aggs": map[string]any{"production": pct("latency_ms.production"), "target": pct("latency_ms.target")},
		},
	}
}

// withMissing makes a terms aggregation count the documents without the
// field under key.
func withMissing(terms map[string]any, key string) map[string]any {
	terms["terms"].(map[string]any)["missing"] = key
	return terms
}

func verdictTerms() map[string]any {
	return map[string]any{"terms": map[string]any{"field": "verdict", "size": 20}}
}

// Response shapes.
type (
	esTerms struct {
		Buckets []struct {
			Key      string `json:"key"`
			DocCount int64  `json:"doc_count"`
		} `json:"buckets"`
		SumOther int64 `json:"sum_other_doc_count"`
	}
	esPercentiles struct {
		Values []struct {
			Key   float64  `json:"key"`
			Value *float64 `json:"value"`
		} `json:"values"`
	}
	esBreakdown struct {
		DocCount     int64   `json:"doc_count"`
		Verdicts     esTerms `json:"verdicts"`
		Regressions  esTerms `json:"regressions"`
		Noise        esTerms `json:"noise"`
		LearnedNoise esTerms `json:"learned_noise"`
		ErrorKinds   struct {
			Kinds esTerms `json:"kinds"`
		} `json:"error_kinds"`
		Latency struct {
			DocCount   int64         `json:"doc_count"`
			Production esPercentiles `json:"production"`
			Target     esPercentiles `json:"target"`
		} `json:"latency"`
	}
	esComposite[B any] struct {
		AfterKey json.RawMessage `json:"after_key"`
		Buckets  []B             `json:"buckets"`
	}
)

// verdicts counts the buckets of a terms aggregation on verdict over
// total documents; documents in no bucket count as Other.
func (t esTerms) verdicts(total int64) VerdictCounts {
	var v VerdictCounts
	for _, b := range t.Buckets {
		v.add(b.Key, b.DocCount)
	}
	v.Other += total - v.Total
	v.Total = total
	return v
}

func (t esTerms) keys() Keys {
	k := Keys{Other: t.SumOther}
	for _, b := range t.Buckets {
		k.Top = append(k.Top, KeyCount{b.Key, b.DocCount})
	}
	return k
}

func (p esPercentiles) percentiles() Percentiles {
	var out Percentiles
	for _, v := range p.Values {
		if v.Value == nil {
			continue
		}
		switch v.Key {
		case 50:
			out.P50 = *v.Value
		case 95:
			out.P95 = *v.Value
		}
	}
	return out
}

func (e esBreakdown) breakdown() Breakdown {
	b := Breakdown{
		Verdicts:     e.Verdicts.verdicts(e.DocCount),
		Regressions:  e.Regressions.keys(),
		Noise:        e.Noise.keys(),
		LearnedNoise: e.LearnedNoise.keys(),
		ErrorKinds:   e.ErrorKinds.Kinds.keys(),
		Latency: Latency{Samples: e.Latency.DocCount,
			Production: e.Latency.Production.percentiles(), Target: e.Latency.Target.percentiles()},
	}
	b.setRates()
	b.Latency.setDeltas()
	return b
}

// overview fills the totals, the time range and the candidate breakdown.
func (q *esQuery) overview(ctx context.Context, s *Summary) error {
	body := map[string]any{
		"size": 0, "track_total_hits": true, "query": q.filter(false),
		"aggs": map[string]any{
			"first":     map[string]any{"min": map[string]any{"field": "@timestamp"}},
			"last":      map[string]any{"max": map[string]any{"field": "@timestamp"}},
			"verdicts":  verdictTerms(),
			"candidate": map[string]any{"filter": map[string]any{"term": map[string]any{"role": "candidate"}}, "aggs": q.breakdownAggs()},
		},
	}
	var res struct {
		Hits struct {
			Total struct {
				Value int64 `json:"value"`
			} `json:"total"`
		} `json:"hits"`
		Aggregations struct {
			First, Last struct {
				Value *float64 `json:"value"`
			}
			Verdicts  esTerms     `json:"verdicts"`
			Candidate esBreakdown `json:"candidate"`
		} `json:"aggregations"`
	}
	if err := q.search(ctx, "totals", body, &res); err != nil {
		return err
	}
	aggs := res.Aggregations
	s.Pairs = res.Hits.Total.Value
	s.Verdicts = aggs.Verdicts.verdicts(s.Pairs)
	s.Candidate = aggs.Candidate.breakdown()
	if s.Pairs > 0 && aggs.First.Value != nil && aggs.Last.Value != nil {
		s.From = time.UnixMilli(int64(*aggs.First.Value)).UTC()
		s.To = time.UnixMilli(int64(*aggs.Last.Value)).UTC()
	}
	return nil
}

// targets pages through every target and role.
func (q *esQuery) targets(ctx context.Context, s *Summary) error {
	type bucket struct {
		Key struct {
			Target *string `json:"target"`
			Role   *string `json:"role"`
		} `json:"key"`
		DocCount int64   `json:"doc_count"`
		Verdicts esTerms `json:"verdicts"`
	}
	sources := []any{
		map[string]any{"target": map[string]any{"terms": map[string]any{"field": "target", "missing_bucket": true}}},
		map[string]any{"role": map[string]any{"terms": map[string]any{"field": "role", "missing_bucket": true}}},
	}
	return pageComposite(ctx, q, "targets", q.filter(false), sources, targetPage,
		map[string]any{"verdicts": verdictTerms()}, func(b bucket) {
			v := b.Verdicts.verdicts(b.DocCount)
			s.Targets = append(s.Targets, TargetCounts{Target: deref(b.Key.Target), Role: deref(b.Key.Role), Verdicts: v, MismatchRate: v.MismatchRate()})
		}, func() { sortTargets(s.Targets) })
}

// routes pages through every route of the candidate documents, keeping
// the worst MaxRoutes.
func (q *esQuery) routes(ctx context.Context, s *Summary) error {
	type bucket struct {
		Key struct {
			Route *string `json:"route"`
		} `json:"key"`
		esBreakdown
	}
	sources := []any{map[string]any{"route": map[string]any{"terms": map[string]any{"field": "route", "missing_bucket": true}}}}
	return pageComposite(ctx, q, "routes", q.filter(true), sources, routePage, q.breakdownAggs(),
		func(b bucket) {
			s.Routes = append(s.Routes, RouteSummary{Route: deref(b.Key.Route), Breakdown: b.breakdown()})
		}, func() {
			// Cut after every page, so that memory stays bounded by
			// MaxRoutes + routePage whatever the number of routes.
			s.Routes = keepWorst(s.Routes, q.cfg.MaxRoutes, &s.Omitted)
		})
}

// pageComposite runs a composite aggregation named what over query until
// its buckets run out, handing each bucket to each and calling page after
// every page.
func pageComposite[B any](ctx context.Context, q *esQuery, what string, query map[string]any, sources []any, size int,
	sub map[string]any, each func(B), page func()) error {
	var after json.RawMessage
	for {
		comp := map[string]any{"size": size, "sources": sources}
		if after != nil {
			comp["after"] = after
		}
		body := map[string]any{"size": 0, "query": query,
			"aggs": map[string]any{"c": map[string]any{"composite": comp, "aggs": sub}}}
		var res struct {
			Aggregations struct {
				C esComposite[B] `json:"c"`
			} `json:"aggregations"`
		}
		if err := q.search(ctx, what, body, &res); err != nil {
			return err
		}
		c := res.Aggregations.C
		for _, b := range c.Buckets {
			each(b)
		}
		page()
		if len(c.Buckets) == 0 || len(c.AfterKey) == 0 || string(c.AfterKey) == "null" {
			return nil
		}
		after = c.AfterKey
	}
}

// search runs one search request and decodes its answer into out.
func (q *esQuery) search(ctx context.Context, what string, body any, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	es := q.es
	res, err := es.Search(es.Search.WithContext(ctx), es.Search.WithIndex(q.cfg.Index), es.Search.WithBody(bytes.NewReader(b)))
	if err != nil {
		return fmt.Errorf("aggregating %s of %s at %s: %w", what, q.cfg.Index, redact(q.cfg.URL), err)
	}
	defer res.Body.Close()
	if res.IsError() {
		msg, _ := io.ReadAll(io.LimitReader(res.Body, 2048))
		if res.StatusCode == http.StatusUnauthorized || res.StatusCode == http.StatusForbidden {
			return fmt.Errorf("aggregating %s of %s: %s: %s", what, q.cfg.Index, esclient.Unauthorized(res.StatusCode, q.conn()), msg)
		}
		if res.StatusCode == http.StatusNotFound && bytes.Contains(msg, []byte("index_not_found_exception")) {
			return fmt.Errorf("no index or data stream %q at %s: run `tapline analyze` into it first, or name the one it writes to",
				q.cfg.Index, redact(q.cfg.URL))
		}
		return fmt.Errorf("aggregating %s of %s at %s: %s: %s", what, q.cfg.Index, redact(q.cfg.URL), res.Status(), msg)
	}
	if err := json.NewDecoder(res.Body).Decode(out); err != nil {
		return fmt.Errorf("reading the %s of %s: %w", what, q.cfg.Index, err)
	}
	return nil
}

// redact drops credentials from a URL for messages.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "the Elasticsearch URL"
	}
	if u.User == nil {
		return raw
	}
	u.User = nil
	return u.String()
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
