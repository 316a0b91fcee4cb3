package report

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"
)

// textKeys is how many keys of a list the terminal table shows.
const textKeys = 3

// WriteText writes s for a terminal: header lines with the totals and the
// mismatch rate, one line per target, then the per-route table, worst
// routes first, with aligned columns. Text from traffic (routes, keys) is
// cleaned of control characters and cut to a readable length.
func WriteText(w io.Writer, s Summary) error {
	bw := bufio.NewWriter(w)
	p := func(format string, args ...any) { fmt.Fprintf(bw, format, args...) }

	p("tapline report: %s\n", timeRange(s))
	if s.Source != "" {
		p("source: %s\n", clean(s.Source, 200))
	}
	if f := filterText(s.Filter); f != "" {
		p("filter: %s\n", f)
	}
	c := s.Candidate.Verdicts
	p("pairs: %d%s\n", s.Pairs, roleText(s.Targets))
	p("candidate: mismatch rate %s (%d of %d compared); %s\n", rateText(c), c.Mismatch, c.Compared(), verdictText(c))
	if c.TargetError > 0 {
		p("target errors by kind: %s\n", errorKindsText(s.Candidate.ErrorKinds))
	}
	if l := s.Candidate.Latency; l.Samples > 0 {
		p("latency: p50 production %s, target %s (%s); p95 production %s, target %s (%s); over %d compared pairs\n",
			formatMs(l.Production.P50), formatMs(l.Target.P50), formatDeltaMs(l.DeltaP50),
			formatMs(l.Production.P95), formatMs(l.Target.P95), formatDeltaMs(l.DeltaP95), l.Samples)
	}
	if len(s.Targets) > 0 {
		p("targets:\n")
		tw := tabwriter.NewWriter(bw, 0, 0, 2, ' ', 0)
		for _, t := range s.Targets {
			fmt.Fprintf(tw, "  %s\t%s\t%d pairs\tmismatch rate %s\t%s\n", clean(t.Target, 60), clean(t.Role, 20), t.Verdicts.Total,
				rateText(t.Verdicts), verdictText(t.Verdicts))
		}
		tw.Flush()
	}
	p("\n")
	if len(s.Routes) == 0 {
		p("no candidate pairs\n")
	} else {
		tw := tabwriter.NewWriter(bw, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "ROUTE\tREQUESTS\tMISMATCHES\tRATE\tNOISE ONLY\tTARGET ERRORS\tP50 PROD\tP50 TARGET\tP50 DELTA\tP95 PROD\tP95 TARGET\tTOP REGRESSIONS\tTOP NOISE")
		for _, r := range s.Routes {
			v, l := r.Verdicts, r.Latency
			lat := []string{"-", "-", "-", "-", "-"}
			if l.Samples > 0 {
				lat = []string{formatMs(l.Production.P50), formatMs(l.Target.P50), formatDeltaMs(l.DeltaP50),
					formatMs(l.Production.P95), formatMs(l.Target.P95)}
			}
			fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%d\t%d\t%s\t%s\n", routeText(r.Route, 60), v.Total, v.Mismatch, rateText(v), v.NoiseOnly,
				v.TargetError, strings.Join(lat, "\t"), keysText(r.Regressions, Keys{})+"\t"+keysText(r.Noise, r.LearnedNoise))
		}
		tw.Flush()
	}
	if s.Omitted.Routes > 0 {
		p("... %d more routes with %d requests not shown: only the worst %d routes are kept\n",
			s.Omitted.Routes, s.Omitted.Requests, s.Limits.MaxRoutes)
	}
	if cut := keysCut(s); cut > 0 {
		p("%d key lists hold only their %d most frequent keys\n", cut, s.Limits.MaxKeys)
	}
	if s.Undecodable > 0 {
		p("%d result records could not be decoded and are not counted\n", s.Undecodable)
	}
	return bw.Flush()
}

// roleText counts pairs by role: " (46 candidate, 12 baseline)".
func roleText(ts []TargetCounts) string {
	if l := roleList(ts); l != "" {
		return " (" + l + ")"
	}
	return ""
}

// roleList counts pairs by role: "46 candidate, 12 baseline".
func roleList(ts []TargetCounts) string {
	var roles []string
	n := map[string]int64{}
	for _, t := range ts {
		if _, seen := n[t.Role]; !seen {
			roles = append(roles, t.Role)
		}
		n[t.Role] += t.Verdicts.Total
	}
	if len(roles) == 0 {
		return ""
	}
	parts := make([]string, len(roles))
	for i, r := range roles {
		if r == "" {
			r = "no role"
		}
		parts[i] = fmt.Sprintf("%d %s", n[roles[i]], clean(r, 20))
	}
	return strings.Join(parts, ", ")
}

func timeRange(s Summary) string {
	if s.Pairs == 0 {
		return "no pair documents"
	}
	return formatTime(s.From) + " to " + formatTime(s.To)
}

func formatTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05.000 MST") }

func filterText(f Filter) string {
	var parts []string
	if f.Target != "" {
		parts = append(parts, "target="+clean(f.Target, 60))
	}
	if !f.Since.IsZero() {
		parts = append(parts, "since "+formatTime(f.Since))
	}
	if !f.Until.IsZero() {
		parts = append(parts, "until "+formatTime(f.Until))
	}
	return strings.Join(parts, ", ")
}

func verdictText(v VerdictCounts) string {
	s := fmt.Sprintf("%d match, %d noise only, %d mismatch, %d target errors, %d no production", v.Match, v.NoiseOnly, v.Mismatch,
		v.TargetError, v.NoProduction)
	if v.Other > 0 {
		s += fmt.Sprintf(", %d other", v.Other)
	}
	return s
}

// rateText is the mismatch rate of v, "-" when nothing was compared.
func rateText(v VerdictCounts) string {
	if v.Compared() == 0 {
		return "-"
	}
	return formatPercent(v.MismatchRate())
}

// errorKindsText lists every kind with its count ("timeout 3,
// connection_refused 1"): there are few kinds, unlike difference keys.
func errorKindsText(k Keys) string {
	var parts []string
	for _, kc := range k.Top {
		parts = append(parts, fmt.Sprintf("%s %d", clean(kc.Key, 40), kc.Count))
	}
	if k.Other > 0 {
		parts = append(parts, fmt.Sprintf("others %d", k.Other))
	}
	return strings.Join(parts, ", ")
}

// keysText shows the first textKeys keys of a, then of b (marked as
// learned), and how many more there are.
func keysText(a, learned Keys) string {
	var parts []string
	more := 0
	for i, k := range append(a.Top[:len(a.Top):len(a.Top)], learned.Top...) {
		if len(parts) == textKeys {
			more++
			continue
		}
		suffix := ""
		if i >= len(a.Top) {
			suffix = " (learned)"
		}
		parts = append(parts, fmt.Sprintf("%s %d%s", clean(k.Key, 40), k.Count, suffix))
	}
	if more > 0 || a.Other > 0 || learned.Other > 0 {
		parts = append(parts, "+more")
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}

func keysCut(s Summary) int {
	n := 0
	for _, b := range append([]Breakdown{s.Candidate}, routeBreakdowns(s.Routes)...) {
		for _, k := range []Keys{b.Regressions, b.Noise, b.LearnedNoise} {
			if k.Other > 0 {
				n++
			}
		}
	}
	return n
}

func routeBreakdowns(rs []RouteSummary) []Breakdown {
	out := make([]Breakdown, len(rs))
	for i, r := range rs {
		out[i] = r.Breakdown
	}
	return out
}

func routeText(route string, max int) string {
	if route == "" {
		return "(no route)"
	}
	return clean(route, max)
}

// clean makes text from traffic safe and readable on a terminal: control
// and other non-printable characters become escapes (\x1b, \t), invalid
// UTF-8 becomes U+FFFD, and text longer than max runes is cut with "...".
func clean(s string, max int) string {
	var b strings.Builder
	n := 0
	for _, r := range s {
		if n == max {
			b.WriteString("...")
			break
		}
		n++
		switch {
		case r == utf8.RuneError:
			b.WriteRune(r)
		case !unicode.IsPrint(r):
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// formatPercent writes a fraction as a percentage with up to two decimals:
// 0.125 → "12.5%".
func formatPercent(f float64) string {
	return trimZeros(strconv.FormatFloat(f*100, 'f', 2, 64)) + "%"
}

// formatMs writes milliseconds with a precision fit for their size.
func formatMs(ms float64) string {
	a := ms
	if a < 0 {
		a = -a
	}
	switch {
	case a >= 10000:
		return trimZeros(strconv.FormatFloat(ms/1000, 'f', 2, 64)) + "s"
	case a >= 100:
		return strconv.FormatFloat(ms, 'f', 0, 64) + "ms"
	case a >= 10:
		return trimZeros(strconv.FormatFloat(ms, 'f', 1, 64)) + "ms"
	default:
		return trimZeros(strconv.FormatFloat(ms, 'f', 2, 64)) + "ms"
	}
}

// formatDeltaMs is formatMs with a sign.
func formatDeltaMs(ms float64) string {
	if ms >= 0 {
		return "+" + formatMs(ms)
	}
	return formatMs(ms)
}

func trimZeros(s string) string {
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	if s == "-0" {
		s = "0"
	}
	return s
}
