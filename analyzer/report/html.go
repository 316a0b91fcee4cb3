package report

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"strconv"
)

//go:embed report.html.tmpl
var htmlSource string

var htmlTemplate = template.Must(template.New("report").Parse(htmlSource))

// chartRoutes is how many routes, worst first, the HTML charts show; the
// table shows every route of the Summary.
const chartRoutes = 25

// Chart geometry, in SVG user units: a label column, then the bars.
const (
	chartWidth  = 1000.0
	labelRight  = 330.0 // labels end here
	barLeft     = 340.0
	barMax      = 520.0 // longest bar of the rate chart
	latBarMax   = 400.0 // longest bar of the latency chart, whose values are longer
	rowHeight   = 22.0
	latRowH     = 30.0
	chartLabels = 44 // runes of a route shown next to its bars
)

// WriteHTML writes s as one self-contained HTML page: inline CSS and
// inline SVG charts (the verdict breakdown, the mismatch rate per route,
// latency p50/p95 of production and target per route) and the per-route
// table with the top regression and noise keys. It loads nothing: no
// script, style sheet, font or image from anywhere. Text from traffic is
// escaped by html/template.
func WriteHTML(w io.Writer, s Summary) error {
	return htmlTemplate.Execute(w, newHTMLPage(s))
}

type htmlPage struct {
	S         Summary
	Range     string
	Filter    string
	Cards     []htmlCard
	Verdicts  []htmlSegment
	Rates     htmlChart
	Latency   htmlChart
	ChartNote string
	Rows      []htmlRow
	Targets   []htmlTarget
	Notes     []string
}

type htmlCard struct {
	Label, Value, Note string
	Bad                bool
}

type htmlSegment struct {
	Class, Label, X, W, Count, Pct string
}

// htmlChart is a horizontal bar chart: one group of bars per route.
type htmlChart struct {
	Height string
	Rows   []htmlChartRow
}

type htmlChartRow struct {
	Label, Full, LabelY string
	Bars                []htmlBar
	Value, ValueX       string
	ValueY              string
}

type htmlBar struct {
	Class, X, Y, W, H, Title string
}

type htmlRow struct {
	Route, Requests, Mismatches, Rate, NoiseOnly, TargetErrors string
	ProdP50, TargetP50, DeltaP50, ProdP95, TargetP95           string
	Bad, Slower                                                bool
	Regressions, Noise                                         []htmlKey
	RegressionsCut, NoiseCut                                   bool
}

type htmlKey struct {
	Key, Count string
	Learned    bool
}

type htmlTarget struct {
	Target, Role, Pairs, Rate, Verdicts string
}

func newHTMLPage(s Summary) htmlPage {
	c := s.Candidate
	p := htmlPage{S: s, Range: timeRange(s), Filter: filterText(s.Filter)}
	errNote := "no response from the target"
	if c.Verdicts.TargetError > 0 {
		errNote = "by kind: " + errorKindsText(c.ErrorKinds)
	}
	p.Cards = []htmlCard{
		{Label: "pairs", Value: strconv.FormatInt(s.Pairs, 10), Note: roleList(s.Targets)},
		{Label: "mismatch rate", Value: rateText(c.Verdicts), Bad: c.Verdicts.Mismatch > 0,
			Note: fmt.Sprintf("%d of %d compared candidate pairs", c.Verdicts.Mismatch, c.Verdicts.Compared())},
		{Label: "noise only", Value: strconv.FormatInt(c.Verdicts.NoiseOnly, 10), Note: "differences that the baseline shows too"},
		{Label: "target errors", Value: strconv.FormatInt(c.Verdicts.TargetError, 10), Bad: c.Verdicts.TargetError > 0,
			Note: errNote},
	}
	if l := c.Latency; l.Samples > 0 {
		p.Cards = append(p.Cards,
			htmlCard{Label: "p50 latency delta", Value: formatDeltaMs(l.DeltaP50), Bad: l.DeltaP50 > 0,
				Note: "production " + formatMs(l.Production.P50) + ", target " + formatMs(l.Target.P50)},
			htmlCard{Label: "p95 latency delta", Value: formatDeltaMs(l.DeltaP95), Bad: l.DeltaP95 > 0,
				Note: "production " + formatMs(l.Production.P95) + ", target " + formatMs(l.Target.P95)})
	}
	p.Verdicts = verdictSegments(c.Verdicts)
	shown := s.Routes[:min(len(s.Routes), chartRoutes)]
	p.Rates = rateChart(shown)
	p.Latency = latencyChart(shown)
	if len(s.Routes) > len(shown) || s.Omitted.Routes > 0 {
		p.ChartNote = fmt.Sprintf("The charts show the worst %d of %d routes.", len(shown), len(s.Routes)+s.Omitted.Routes)
	}
	for _, r := range s.Routes {
		p.Rows = append(p.Rows, newHTMLRow(r))
	}
	for _, t := range s.Targets {
		p.Targets = append(p.Targets, htmlTarget{Target: t.Target, Role: t.Role, Pairs: strconv.FormatInt(t.Verdicts.Total, 10),
			Rate: rateText(t.Verdicts), Verdicts: verdictText(t.Verdicts)})
	}
	if s.Omitted.Routes > 0 {
		p.Notes = append(p.Notes, fmt.Sprintf("%d more routes with %d requests are not shown: only the worst %d routes are kept.",
			s.Omitted.Routes, s.Omitted.Requests, s.Limits.MaxRoutes))
	}
	if n := keysCut(s); n > 0 {
		p.Notes = append(p.Notes, fmt.Sprintf("%d key lists hold only their %d most frequent keys (marked “+ others”).", n, s.Limits.MaxKeys))
	}
	if s.Undecodable > 0 {
		p.Notes = append(p.Notes, fmt.Sprintf("%d result records could not be decoded and are not counted.", s.Undecodable))
	}
	return p
}

var verdictOrder = []struct{ class, label string }{
	{"match", "match"}, {"noise", "noise only"}, {"mismatch", "mismatch"},
	{"error", "target error"}, {"noprod", "no production"}, {"other", "other"},
}

func verdictSegments(v VerdictCounts) []htmlSegment {
	counts := []int64{v.Match, v.NoiseOnly, v.Mismatch, v.TargetError, v.NoProduction, v.Other}
	var out []htmlSegment
	x := 0.0
	for i, n := range counts {
		if n == 0 {
			continue
		}
		w := chartWidth * float64(n) / float64(v.Total)
		out = append(out, htmlSegment{Class: verdictOrder[i].class, Label: verdictOrder[i].label, X: num(x), W: num(w),
			Count: strconv.FormatInt(n, 10), Pct: formatPercent(ratio(n, v.Total))})
		x += w
	}
	return out
}

func rateChart(routes []RouteSummary) htmlChart {
	maxRate := 0.0
	for _, r := range routes {
		maxRate = max(maxRate, r.MismatchRate)
	}
	c := htmlChart{Height: num(rowHeight*float64(len(routes)) + 4)}
	for i, r := range routes {
		y := rowHeight*float64(i) + 2
		w := 0.0
		if maxRate > 0 {
			w = barMax * r.MismatchRate / maxRate
		}
		v := r.Verdicts
		value := fmt.Sprintf("%s (%d/%d)", rateText(v), v.Mismatch, v.Compared())
		c.Rows = append(c.Rows, htmlChartRow{
			Label: chartLabel(r.Route), Full: routeText(r.Route, 1<<20), LabelY: num(y + 14),
			Bars:  []htmlBar{{Class: "mismatch", X: num(barLeft), Y: num(y + 2), W: num(w), H: num(rowHeight - 6), Title: value}},
			Value: value, ValueX: num(barLeft + w + 6), ValueY: num(y + 14),
		})
	}
	return c
}

// latencyChart draws, per route, a production bar and a target bar: the
// light part reaches p95, the dark part p50.
func latencyChart(routes []RouteSummary) htmlChart {
	maxMs := 0.0
	for _, r := range routes {
		if r.Latency.Samples > 0 {
			maxMs = max(maxMs, r.Latency.Production.P95, r.Latency.Target.P95, r.Latency.Production.P50, r.Latency.Target.P50)
		}
	}
	scale := func(ms float64) float64 {
		if maxMs <= 0 {
			return 0
		}
		return latBarMax * ms / maxMs
	}
	c := htmlChart{Height: num(latRowH*float64(len(routes)) + 4)}
	for i, r := range routes {
		y := latRowH*float64(i) + 2
		row := htmlChartRow{Label: chartLabel(r.Route), Full: routeText(r.Route, 1<<20), LabelY: num(y + 17), ValueX: num(barLeft + latBarMax + 8),
			ValueY: num(y + 17)}
		l := r.Latency
		if l.Samples == 0 {
			row.Value = "no compared pairs"
			c.Rows = append(c.Rows, row)
			continue
		}
		for j, side := range []struct {
			class string
			p     Percentiles
		}{{"prod", l.Production}, {"target", l.Target}} {
			by := y + 3 + float64(j)*12
			title := fmt.Sprintf("%s: p50 %s, p95 %s", map[string]string{"prod": "production", "target": "target"}[side.class],
				formatMs(side.p.P50), formatMs(side.p.P95))
			row.Bars = append(row.Bars,
				htmlBar{Class: side.class + " p95", X: num(barLeft), Y: num(by), W: num(scale(side.p.P95)), H: "10", Title: title},
				htmlBar{Class: side.class + " p50", X: num(barLeft), Y: num(by), W: num(scale(side.p.P50)), H: "10", Title: title})
		}
		row.Value = fmt.Sprintf("p50 %s, p95 %s", formatDeltaMs(l.DeltaP50), formatDeltaMs(l.DeltaP95))
		c.Rows = append(c.Rows, row)
	}
	return c
}

func newHTMLRow(r RouteSummary) htmlRow {
	v, l := r.Verdicts, r.Latency
	row := htmlRow{
		Route: routeText(r.Route, 1<<20), Requests: strconv.FormatInt(v.Total, 10), Mismatches: strconv.FormatInt(v.Mismatch, 10),
		Rate: rateText(v), NoiseOnly: strconv.FormatInt(v.NoiseOnly, 10), TargetErrors: strconv.FormatInt(v.TargetError, 10),
		ProdP50: "-", TargetP50: "-", DeltaP50: "-", ProdP95: "-", TargetP95: "-",
		Bad: v.Mismatch > 0, RegressionsCut: r.Regressions.Other > 0, NoiseCut: r.Noise.Other > 0 || r.LearnedNoise.Other > 0,
	}
	if l.Samples > 0 {
		row.ProdP50, row.TargetP50, row.DeltaP50 = formatMs(l.Production.P50), formatMs(l.Target.P50), formatDeltaMs(l.DeltaP50)
		row.ProdP95, row.TargetP95 = formatMs(l.Production.P95), formatMs(l.Target.P95)
		row.Slower = l.DeltaP50 > 0
	}
	for _, k := range r.Regressions.Top {
		row.Regressions = append(row.Regressions, htmlKey{Key: k.Key, Count: strconv.FormatInt(k.Count, 10)})
	}
	for _, k := range r.Noise.Top {
		row.Noise = append(row.Noise, htmlKey{Key: k.Key, Count: strconv.FormatInt(k.Count, 10)})
	}
	for _, k := range r.LearnedNoise.Top {
		row.Noise = append(row.Noise, htmlKey{Key: k.Key, Count: strconv.FormatInt(k.Count, 10), Learned: true})
	}
	return row
}

// chartLabel is a route cut to fit next to its bars; the whole route is
// in the label's tooltip.
func chartLabel(route string) string { return routeText(route, chartLabels) }

// num writes an SVG coordinate.
func num(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) }
