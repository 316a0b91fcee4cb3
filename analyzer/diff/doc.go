// Package diff is the comparison logic of tapline's analyzer stage: it
// normalises a recorded production response and a replay target's response
// and says how they differ, without any I/O. The analyzer calls it once per
// exchange and target and indexes what it returns.
//
// Input: two *schema.Response values (production, as recorded, and a
// target's), and for the verdict optionally the result of the same request
// against a baseline target. Output: a Result (status, header and body
// differences, and a flat list of difference keys), a Judgement (match,
// noise_only or mismatch), and per-route statistics of learned noise.
//
// # Files
//
//   - config.go: Config, its defaults, New and the Differ.
//   - compare.go: Compare and the Result types; status and headers.
//   - mask.go: masks, with hand-written matchers for the default ones.
//   - decode.go: Content-Encoding (gzip, deflate, br, chains) and charset
//     decoding, bounded by Config.MaxDecoded.
//   - body.go: choosing how to compare two bodies (json, text, binary,
//     empty) and partial comparison of truncated bodies.
//   - json.go: a strict JSON parser into a tree that keeps key order; the
//     target's document is parsed against production's tree, so that
//     what the two share is compared as bytes and not parsed twice.
//   - jsondiff.go: the structural JSON diff, and the pool of parsing
//     memory a Differ reuses across comparisons.
//   - path.go: the path syntax of reports, keys and ignore rules.
//   - text.go: the line-diff summary (Myers, bounded).
//   - verdict.go: Judge, the verdict of one candidate result.
//   - noise.go: NoiseLearner, learned noise per route.
//   - route.go: Router, route templates for aggregation by endpoint.
//
// Tests sit beside each file; golden_test.go keeps whole results in
// testdata/golden (go test -run TestGolden -update rewrites them),
// fuzz_test.go fuzzes the parsers and decoders, bench_test.go measures
// Compare.
//
// # Difference keys
//
// Result.Keys names every difference with a short, stable string, used for
// noise and as an Elasticsearch keyword to aggregate on:
//
//	status                      the status codes differ
//	header:<name>               a header was added, removed or changed (name lower-cased)
//	body:<json path>            a JSON value differs; array indices collapsed to [*]
//	body:text                   text bodies differ (line diff in Body.Text)
//	body:bytes                  binary bodies differ, or bodies that could not be decoded
//	body:more                   more distinct JSON keys than Config.MaxKeys
//
// Array indices are collapsed in keys ("body:$.items[*].price") so that
// keys do not multiply with the size of documents and noise learned on one
// element applies to all of them; Body.Diffs keeps the exact paths.
//
// # Paths
//
// A path starts at the document root "$"; an object member is ".name" when
// the name is an identifier ([A-Za-z_][A-Za-z0-9_]*) and ["name"] otherwise
// (a JSON string, so `$["a.b"]` or `$["x\"y"]`); an array element is [3].
// Ignore rules (Config.IgnorePaths, Config.UnorderedPaths) add wildcards:
//
//	[*] or .*    any one element or member    $.items[*].updatedAt, $.meta.*
//	..name       name at any depth below      $..etag (also ..* and ..[*])
//
// A rule matches a whole path, and an ignored path hides its whole subtree:
// `$.meta` ignores everything under meta. A rule with a specific index
// ($.items[0].x) is compared with the element's index in its own document;
// inside unordered arrays use [*].
package diff
