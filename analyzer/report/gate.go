package report

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Metric is what a Gate measures, on the candidate documents of the
// whole report or of one route.
type Metric string

const (
	// MetricMismatchRate is mismatches over compared pairs.
	MetricMismatchRate Metric = "mismatch-rate"
	// MetricTargetErrorRate is target errors over all pairs.
	MetricTargetErrorRate Metric = "target-error-rate"
	// MetricMismatches is the number of mismatches.
	MetricMismatches Metric = "mismatches"
	// MetricTargetErrors is the number of target errors.
	MetricTargetErrors Metric = "target-errors"
	// MetricLatencyP50Delta is the target's p50 latency minus
	// production's, in milliseconds.
	MetricLatencyP50Delta Metric = "latency-p50-delta"
	// MetricLatencyP95Delta is the same at p95.
	MetricLatencyP95Delta Metric = "latency-p95-delta"
)

type metricKind int

const (
	kindRate metricKind = iota
	kindCount
	kindLatency
)

var metricKinds = map[Metric]metricKind{
	MetricMismatchRate: kindRate, MetricTargetErrorRate: kindRate,
	MetricMismatches: kindCount, MetricTargetErrors: kindCount,
	MetricLatencyP50Delta: kindLatency, MetricLatencyP95Delta: kindLatency,
}

var rateOf = map[Metric]Metric{MetricMismatches: MetricMismatchRate, MetricTargetErrors: MetricTargetErrorRate}

// AcceptedGates lists the forms ParseFailOn accepts; its errors end with
// it.
const AcceptedGates = `accepted forms (append :route=METHOD /path to check one route, e.g. mismatch-rate>0.5%:route=GET /users/{id}):
  mismatch-rate>1%          share of compared candidate pairs that mismatch
  target-error-rate>1%      share of candidate pairs the target did not answer
  mismatches>10             number of mismatching candidate pairs
  target-errors>0           number of candidate pairs the target did not answer
  latency-p50-delta>20ms    target p50 latency minus production p50 (units ns, us, ms, s)
  latency-p95-delta>50ms    the same at p95
  '>=' instead of '>' fails at the threshold too`

// Gate is one failure condition: the report fails it when Metric, on the
// candidate documents of Route (all of them when Route is ""), is above
// Threshold (at or above it with OrEqual).
type Gate struct {
	Metric  Metric
	OrEqual bool
	// Threshold is a fraction for rates (0.01 is 1%), a number of
	// documents for counts, milliseconds for latencies.
	Threshold float64
	Route     string
	text      string // the threshold as written, for messages
}

// String is the gate in ParseFailOn's syntax.
func (g Gate) String() string {
	op := ">"
	if g.OrEqual {
		op = ">="
	}
	s := string(g.Metric) + op + g.thresholdText()
	if g.Route != "" {
		s += ":route=" + g.Route
	}
	return s
}

func (g Gate) thresholdText() string {
	if g.text != "" {
		return g.text
	}
	return g.format(g.Threshold)
}

// format writes a value of g's metric the way its threshold is written.
func (g Gate) format(v float64) string {
	switch metricKinds[g.Metric] {
	case kindRate:
		return formatPercent(v)
	case kindLatency:
		return formatMs(v)
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

// ParseFailOn compiles gate specs such as "mismatch-rate>1%",
// "mismatch-rate>0.5%:route=GET /users/{id}", "mismatches>10",
// "target-errors>0" or "latency-p95-delta>50ms". Every invalid spec is
// named in the error, which ends with AcceptedGates.
func ParseFailOn(specs []string) ([]Gate, error) {
	var gates []Gate
	var problems []string
	for _, spec := range specs {
		g, err := parseGate(spec)
		if err != nil {
			problems = append(problems, fmt.Sprintf("gate %q: %v", spec, err))
			continue
		}
		gates = append(gates, g)
	}
	if len(problems) > 0 {
		return nil, errors.New(strings.Join(problems, "\n") + "\n" + AcceptedGates)
	}
	return gates, nil
}

func parseGate(spec string) (Gate, error) {
	var g Gate
	cond, route, scoped := strings.Cut(spec, ":route=")
	if scoped {
		g.Route = strings.TrimSpace(route)
		if g.Route == "" {
			return g, errors.New("empty route after :route=")
		}
	} else if strings.Contains(spec, ":") {
		return g, errors.New("the only scope is :route=METHOD /path")
	}
	name, value, ok := strings.Cut(cond, ">")
	if !ok {
		return g, errors.New("no '>': write METRIC>THRESHOLD")
	}
	if strings.HasPrefix(value, "=") {
		g.OrEqual, value = true, value[1:]
	}
	g.Metric = Metric(strings.TrimSpace(name))
	value = strings.TrimSpace(value)
	g.text = value
	kind, known := metricKinds[g.Metric]
	if !known {
		return g, fmt.Errorf("unknown metric %q", g.Metric)
	}
	if value == "" {
		return g, errors.New("no threshold after '>'")
	}
	switch kind {
	case kindRate:
		num, isPct := strings.CutSuffix(value, "%")
		if !isPct {
			return g, fmt.Errorf("a rate is a percentage: write %s>%s%%", g.Metric, value)
		}
		p, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
		if err != nil || math.IsNaN(p) || p < 0 || p > 100 {
			return g, fmt.Errorf("%q is not a percentage from 0%% to 100%%", value)
		}
		g.Threshold = p / 100
	case kindCount:
		n, err := strconv.ParseUint(value, 10, 63)
		if err != nil {
			hint := ""
			if strings.HasSuffix(value, "%") {
				hint = fmt.Sprintf(" (for a share, use %s)", rateOf[g.Metric])
			}
			return g, fmt.Errorf("%q is not a whole number of pairs%s", value, hint)
		}
		g.Threshold = float64(n)
	case kindLatency:
		d, err := time.ParseDuration(value)
		if err != nil {
			return g, fmt.Errorf("%q is not a duration with a unit, such as 50ms or 1.5s", value)
		}
		g.Threshold = float64(d) / float64(time.Millisecond)
	}
	return g, nil
}

// Violation is a gate a Summary fails, with a message naming the observed
// value and the threshold.
type Violation struct {
	Gate Gate
	// Observed is the metric's value (as Gate.Threshold is written); NaN
	// when it could not be measured, which fails the gate too.
	Observed float64
	Message  string
}

func (v Violation) String() string { return v.Message }

// Check returns the gates s fails, in the order given. A gate that cannot
// be measured fails: a route that is not in s (never seen, misspelt, or
// left out by MaxRoutes), a rate with nothing to divide by, a latency
// with no samples. A gate over an empty report can thus never pass
// silently.
func Check(s Summary, gates []Gate) []Violation {
	var out []Violation
	for _, g := range gates {
		if v, failed := check(s, g); failed {
			out = append(out, v)
		}
	}
	return out
}

func check(s Summary, g Gate) (Violation, bool) {
	b, scope := &s.Candidate, "candidate pairs"
	unmeasured := func(why string) (Violation, bool) {
		return Violation{Gate: g, Observed: math.NaN(), Message: fmt.Sprintf("%s: cannot be checked: %s", g, why)}, true
	}
	if g.Route != "" {
		b = nil
		for i := range s.Routes {
			if s.Routes[i].Route == g.Route {
				b = &s.Routes[i].Breakdown
				break
			}
		}
		if b == nil {
			if s.Omitted.Routes > 0 {
				return unmeasured(fmt.Sprintf("route %q is not among the %d routes kept (%d more were left out; raise the route limit)",
					g.Route, len(s.Routes), s.Omitted.Routes))
			}
			return unmeasured(fmt.Sprintf("route %q has no candidate pairs in this report (routes look like %q)", g.Route, "GET /users/{id}"))
		}
		scope = "pairs on " + g.Route
	}
	v := b.Verdicts
	var observed float64
	var detail string
	switch g.Metric {
	case MetricMismatchRate:
		if v.Compared() == 0 {
			return unmeasured("no compared " + scope)
		}
		observed = v.MismatchRate()
		detail = fmt.Sprintf("mismatch rate %s (%d of %d compared %s)", formatPercent(observed), v.Mismatch, v.Compared(), scope)
	case MetricTargetErrorRate:
		if v.Total == 0 {
			return unmeasured("no " + scope)
		}
		observed = v.TargetErrorRate()
		detail = fmt.Sprintf("target error rate %s (%d of %d %s)", formatPercent(observed), v.TargetError, v.Total, scope)
	case MetricMismatches:
		observed = float64(v.Mismatch)
		detail = fmt.Sprintf("%d mismatches in %d %s", v.Mismatch, v.Total, scope)
	case MetricTargetErrors:
		observed = float64(v.TargetError)
		detail = fmt.Sprintf("%d target errors in %d %s", v.TargetError, v.Total, scope)
	case MetricLatencyP50Delta, MetricLatencyP95Delta:
		l := b.Latency
		if l.Samples == 0 {
			return unmeasured("no latencies of compared " + scope)
		}
		p, prod, tgt := "p50", l.Production.P50, l.Target.P50
		observed = l.DeltaP50
		if g.Metric == MetricLatencyP95Delta {
			p, prod, tgt = "p95", l.Production.P95, l.Target.P95
			observed = l.DeltaP95
		}
		detail = fmt.Sprintf("%s latency delta %s (production %s, target %s, over %d %s)", p, formatDeltaMs(observed),
			formatMs(prod), formatMs(tgt), l.Samples, scope)
	default:
		return unmeasured(fmt.Sprintf("unknown metric %q", g.Metric))
	}
	if observed > g.Threshold || g.OrEqual && observed == g.Threshold {
		word := "above"
		if observed == g.Threshold {
			word = "at"
		}
		return Violation{Gate: g, Observed: observed, Message: fmt.Sprintf("%s: %s, %s the threshold %s", g, detail, word, g.thresholdText())}, true
	}
	return Violation{}, false
}
