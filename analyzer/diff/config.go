package diff

import (
	"fmt"
	"net/textproto"
	"strings"
	"sync"
)

// Config says what to compare and what to ignore. The zero value is usable:
// every field's default is stated on it.
type Config struct {
	// IgnoreHeaders names response headers (case-insensitive) that are not
	// compared, in addition to DefaultIgnoreHeaders.
	IgnoreHeaders []string
	// NoDefaultIgnoreHeaders compares the headers of DefaultIgnoreHeaders
	// too, and Set-Cookie values (by default Set-Cookie headers are compared
	// by cookie name only). Default false.
	NoDefaultIgnoreHeaders bool

	// IgnorePaths are JSON path rules (see the package doc) whose values are
	// not compared, e.g. "$.meta.requestId", "$.items[*].updatedAt",
	// "$..etag". Default: none.
	IgnorePaths []string

	// Masks are regular expressions (RE2 syntax) whose matches in string
	// values are neutralised before comparing: two values equal after
	// replacing each match with a marker are equal. They apply to JSON
	// strings, text-body lines and header values, and only when the raw
	// values differ; reports show the raw values. Masks are added to
	// DefaultMasks.
	Masks []string
	// NoDefaultMasks turns DefaultMasks off. Default false (UUIDs and
	// timestamps are masked).
	NoDefaultMasks bool

	// UnorderedArrays compares every JSON array as a multiset: elements
	// equal after ignore rules and masks are matched regardless of
	// position. Unmatched elements are paired in order: two objects (or two
	// arrays) are compared member by member under the production element's
	// index; anything else is reported removed (production index) and
	// added (target index). Default false: arrays compare by index.
	UnorderedArrays bool
	// UnorderedPaths are path rules for the arrays to compare as multisets
	// when UnorderedArrays is false, e.g. "$.tags", "$.items[*].roles".
	UnorderedPaths []string

	// MaxValueLen caps the old and new values shown in a report, in bytes
	// (cut at a character boundary, "…" appended). Default 200.
	MaxValueLen int
	// MaxDiffs caps Body.Diffs; Body.MoreDiffs counts the rest. Default 50.
	MaxDiffs int
	// MaxKeys caps the distinct JSON difference keys of one result; past
	// it the key "body:more" stands for the rest. Default 200.
	MaxKeys int
	// MaxDecoded caps a body's size after Content-Encoding decoding, in
	// bytes: a larger body is compared as truncated (Body.Partial).
	// Default 8 MiB.
	MaxDecoded int

	// NoiseShare and NoiseMinSamples configure the learners that
	// NewNoiseLearner returns: a difference key is noisy for a route when
	// it differed in more than NoiseShare of at least NoiseMinSamples
	// baseline comparisons of that route. Defaults 0.2 and 20.
	NoiseShare      float64
	NoiseMinSamples int
}

// Defaults of Config fields.
const (
	DefaultMaxValueLen     = 200
	DefaultMaxDiffs        = 50
	DefaultMaxKeys         = 200
	DefaultMaxDecoded      = 8 << 20
	DefaultNoiseShare      = 0.2
	DefaultNoiseMinSamples = 20
)

// DefaultIgnoreHeaders returns the response headers that are not compared
// unless Config.NoDefaultIgnoreHeaders is set: per-response values (dates,
// ids, caches, tracing), and framing that depends on the transfer rather
// than the content (bodies are compared decoded). Set-Cookie is not listed:
// by default it is compared by cookie name only, without values.
func DefaultIgnoreHeaders() []string {
	return []string{
		"Age", "Cf-Ray", "Connection", "Content-Length", "Date", "ETag", "Expires",
		"Keep-Alive", "Last-Modified", "Report-To", "Server", "Server-Timing",
		"Traceparent", "Tracestate", "Transfer-Encoding", "Via",
		"X-Amz-Cf-Id", "X-Amz-Cf-Pop", "X-Amzn-Requestid", "X-Amzn-Trace-Id",
		"X-B3-Spanid", "X-B3-Traceid", "X-Cache", "X-Cache-Hits",
		"X-Correlation-Id", "X-Powered-By", "X-Request-Id", "X-Response-Time",
		"X-Runtime", "X-Served-By", "X-Timer", "X-Trace-Id",
	}
}

// The default masks, in the order DefaultMasks lists them.
const (
	// MaskUUID matches a UUID in its textual form, any version or case.
	MaskUUID = `[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}`
	// MaskTimestamp matches RFC 3339 / ISO 8601 date-times with a time of
	// day ("2026-01-02T15:04:05Z", "2026-01-02 15:04:05.123+01:00"); a
	// date alone is not masked.
	MaskTimestamp = `\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:[Zz]|[+-]\d{2}(?::?\d{2})?)?`
	// MaskHTTPDate matches HTTP dates (RFC 1123, "Mon, 02 Jan 2006 15:04:05 GMT").
	MaskHTTPDate = `(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} GMT`
)

// DefaultMasks returns the masks applied unless Config.NoDefaultMasks is
// set: MaskUUID, MaskTimestamp and MaskHTTPDate.
func DefaultMasks() []string { return []string{MaskUUID, MaskTimestamp, MaskHTTPDate} }

// Differ compares responses under one Config. It is immutable and safe for
// concurrent use. Create it with New.
type Differ struct {
	cfg           Config
	ignoreHeaders map[string]bool       // lower-cased names
	headerNames   map[string]headerInfo // usual spellings of header names (see headerName)
	cookieNames   bool                  // compare Set-Cookie by cookie name only
	masks         []masker
	ignore        []pattern
	unordered     []pattern
	maxTextLines  int       // see the constant
	scratch       sync.Pool // of *jsonScratch, reused across comparisons
}

// New validates cfg, compiles its rules and returns a Differ. A rule that
// does not compile is refused with an error naming it.
func New(cfg Config) (*Differ, error) {
	if cfg.MaxValueLen == 0 {
		cfg.MaxValueLen = DefaultMaxValueLen
	}
	if cfg.MaxDiffs == 0 {
		cfg.MaxDiffs = DefaultMaxDiffs
	}
	if cfg.MaxKeys == 0 {
		cfg.MaxKeys = DefaultMaxKeys
	}
	if cfg.MaxDecoded == 0 {
		cfg.MaxDecoded = DefaultMaxDecoded
	}
	if cfg.NoiseShare == 0 {
		cfg.NoiseShare = DefaultNoiseShare
	}
	if cfg.NoiseMinSamples == 0 {
		cfg.NoiseMinSamples = DefaultNoiseMinSamples
	}
	switch {
	case cfg.MaxValueLen < 0 || cfg.MaxDiffs < 0 || cfg.MaxKeys < 0 || cfg.MaxDecoded < 0 || cfg.NoiseMinSamples < 0:
		return nil, fmt.Errorf("diff: MaxValueLen, MaxDiffs, MaxKeys, MaxDecoded and NoiseMinSamples must not be negative (0 means the default)")
	case cfg.NoiseShare < 0 || cfg.NoiseShare >= 1:
		return nil, fmt.Errorf("diff: NoiseShare %v is outside [0, 1): give the share of baseline comparisons, e.g. 0.2", cfg.NoiseShare)
	}

	d := &Differ{cfg: cfg, ignoreHeaders: map[string]bool{}, maxTextLines: maxTextLines}
	if !cfg.NoDefaultIgnoreHeaders {
		for _, h := range DefaultIgnoreHeaders() {
			d.ignoreHeaders[strings.ToLower(h)] = true
		}
		d.cookieNames = true
	}
	for i, h := range cfg.IgnoreHeaders {
		h = strings.TrimSpace(h)
		if h == "" || strings.ContainsAny(h, " \t:") {
			return nil, fmt.Errorf("diff: IgnoreHeaders[%d] %q is not a header name", i, cfg.IgnoreHeaders[i])
		}
		d.ignoreHeaders[strings.ToLower(h)] = true
	}
	d.headerNames = map[string]headerInfo{}
	for _, names := range [][]string{DefaultIgnoreHeaders(), commonHeaders(), cfg.IgnoreHeaders} {
		for _, h := range names {
			h = strings.TrimSpace(h)
			lower := strings.ToLower(h)
			for _, spelling := range []string{h, textproto.CanonicalMIMEHeaderKey(h), lower} {
				d.headerNames[spelling] = headerInfo{lower: lower, ignored: d.ignoreHeaders[lower]}
			}
		}
	}

	masks := cfg.Masks
	if !cfg.NoDefaultMasks {
		masks = append(DefaultMasks(), cfg.Masks...)
	}
	for i, m := range masks {
		mk, err := compileMask(i, m)
		if err != nil {
			return nil, fmt.Errorf("diff: mask %q: %w", m, err)
		}
		if mk.re.MatchString("") {
			return nil, fmt.Errorf("diff: mask %q matches the empty string: it would mask nothing useful, anchor or require a character", masks[i])
		}
		d.masks = append(d.masks, mk)
	}

	var err error
	if d.ignore, err = compilePatterns("IgnorePaths", cfg.IgnorePaths); err != nil {
		return nil, err
	}
	if d.unordered, err = compilePatterns("UnorderedPaths", cfg.UnorderedPaths); err != nil {
		return nil, err
	}
	return d, nil
}

// Config returns the configuration in use, with defaults filled in.
func (d *Differ) Config() Config { return d.cfg }

func compilePatterns(field string, rules []string) ([]pattern, error) {
	var out []pattern
	for i, r := range rules {
		p, err := parsePattern(r)
		if err != nil {
			return nil, fmt.Errorf("diff: %s[%d] %q: %w", field, i, r, err)
		}
		out = append(out, p)
	}
	return out, nil
}
