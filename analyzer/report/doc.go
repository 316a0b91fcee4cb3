// Package report is the end of tapline's pipeline: it turns pair documents
// into a per-route report for people (a terminal table, one self-contained
// HTML file) and for CI (JSON, and gates that fail a job when the mismatch
// rate or the latency regress).
//
// Input: pair documents (analyzer.Doc), by one of two paths that build the
// same Summary:
//
//   - Elasticsearch: FromElasticsearch asks the data stream the analyzer
//     fills for aggregations only (composite on route and on target, terms
//     on verdict, on the difference keys and on error_kind, percentiles on
//     latency_ms.*, min/max of @timestamp); no document is fetched.
//   - Local results, no Elasticsearch: an Accumulator is fed documents one
//     by one (Add), typically by ReadResults, which reads ReplayResult
//     records from the file log (internal/filelog) until io.EOF and turns
//     each into documents with the same analyzer.Comparer the analyzer
//     uses.
//
// Output: a Summary, rendered by WriteText, WriteJSON and WriteHTML, and
// checked against Gates (ParseFailOn, Check).
//
// # What is counted
//
// Every selected document counts in Summary.Pairs, Summary.Verdicts and
// its target's row. Only documents whose role is "candidate" count in
// Summary.Candidate and in the routes: the baseline runs production's
// version and measures noise, so it is never a regression. A mismatch
// rate is mismatches over compared pairs (match + noise_only + mismatch):
// a target error or a missing production response is counted on its own,
// not as a mismatch and not in the denominator. Latency percentiles are
// taken over compared candidate pairs that carry both latencies, so a
// target's time-outs do not pose as slow answers. Target errors are also
// counted by their error_kind (Breakdown.ErrorKinds); those written by
// replayers older than schema 1.1 have none and count as "unknown".
//
// # Bounds
//
// A Summary lists at most Options.MaxRoutes routes (default 200), worst
// first (most mismatches, then most requests, then by name), and at most
// Options.MaxKeys keys (default 10) per list; what is left out is counted
// (Summary.Omitted, Keys.Other) and the renderings say so.
//
// # Percentiles
//
// The Accumulator computes percentiles exactly (linear interpolation
// between the closest ranks, as Elasticsearch does for small samples) for
// up to 2048 values per series; past that a series moves to a logarithmic
// bucket sketch with at most 1% relative error, whose memory grows with
// the spread of the values, not their number. Elasticsearch computes them
// with its TDigest, which is exact for small samples and approximate past
// them, and from latencies stored as 32-bit floats; so the two paths agree
// on every count and key, and on percentiles to within those errors.
//
// # Precision and limits of the Elasticsearch path
//
// Dates are compared at millisecond precision on both paths, as
// Elasticsearch stores them. Routes and keys longer than 1024 bytes are
// not indexed by the mapping (ignore_above) and count under the empty
// route or not at all. When the data spans several shards (backing
// indices after rollovers) the top keys of a route come from
// Elasticsearch's terms aggregation, whose counts can then be
// underestimated for keys near the cut; route and verdict counts stay
// exact (composite aggregation).
package report
