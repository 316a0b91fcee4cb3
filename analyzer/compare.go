package analyzer

import (
	"net/url"
	"time"
	"unicode/utf8"

	"github.com/tapline/tapline/analyzer/diff"
	"github.com/tapline/tapline/schema"
)

// Doc is one pair document: an exchange as production answered it next to
// what one target answered. Field names are the Elasticsearch mapping's
// (see template.go).
type Doc struct {
	Timestamp  time.Time `json:"@timestamp"` // capture time of the request
	ExchangeID string    `json:"exchange_id"`
	Target     string    `json:"target"`
	// Role is "candidate", or "baseline" for the baseline target (the
	// production version on staging, which measures noise).
	Role       string `json:"role"`
	SessionKey string `json:"session_key"`
	Method     string `json:"method"`
	Host       string `json:"host"`
	URL        string `json:"url"` // the request target as recorded
	Path       string `json:"path"`
	Route      string `json:"route"` // "GET /users/{id}": aggregates by endpoint
	Status     struct {
		Production *int32 `json:"production,omitempty"` // absent: no recorded response
		Target     *int32 `json:"target,omitempty"`     // absent: the target errored
	} `json:"status"`
	LatencyMs struct {
		Production *float64 `json:"production,omitempty"`
		Target     *float64 `json:"target,omitempty"`
		Delta      *float64 `json:"delta,omitempty"` // target − production
	} `json:"latency_ms"`
	BodySize struct {
		Production *int64 `json:"production,omitempty"`
		Target     *int64 `json:"target,omitempty"`
	} `json:"body_size"`
	// Body holds the start of each body (decoded text, at most
	// BodyExcerpt bytes), for reading in Kibana.
	Body struct {
		Production string `json:"production,omitempty"`
		Target     string `json:"target,omitempty"`
	} `json:"body"`
	// Verdict is "match" (no difference), "noise_only" (every difference
	// is noise), "mismatch" (at least one regression), "target_error" (no
	// response from the target) or "no_production" (nothing recorded to
	// compare with).
	Verdict string `json:"verdict"`
	// Diffs are the difference keys ("status", "header:etag",
	// "body:$.user.name", "body:text"; see analyzer/diff), Regressions
	// those that are not noise, Noise those that also differ against the
	// baseline, LearnedNoise those that differ often on this route.
	Diffs        []string     `json:"diffs,omitempty"`
	Regressions  []string     `json:"regressions,omitempty"`
	Noise        []string     `json:"noise,omitempty"`
	LearnedNoise []string     `json:"learned_noise,omitempty"`
	Detail       *diff.Result `json:"detail,omitempty"` // the full comparison (stored, not indexed)
	Error        string       `json:"error,omitempty"`  // the target's error
	// ErrorKind classifies Error: "timeout", "connection_refused", ...,
	// "paused" (see TargetOutcome.error_kind); empty from 1.0 replayers.
	ErrorKind  string    `json:"error_kind,omitempty"`
	Recorder   string    `json:"recorder,omitempty"`
	Replayer   string    `json:"replayer,omitempty"`
	ReplayedAt time.Time `json:"replayed_at"`
}

// ID is the document id: one document per exchange and target.
func (d *Doc) ID() string { return d.ExchangeID + ":" + d.Target }

// Verdicts of a pair document; diff's three plus two of the analyzer's.
const (
	VerdictMatch        = diff.VerdictMatch
	VerdictNoiseOnly    = diff.VerdictNoiseOnly
	VerdictMismatch     = diff.VerdictMismatch
	VerdictTargetError  = "target_error"
	VerdictNoProduction = "no_production"
)

// CompareConfig configures a Comparer. The zero value compares with
// analyzer/diff's defaults, routes by its default rules, and has no
// baseline.
type CompareConfig struct {
	Diff diff.Config
	// Routes are route templates or overrides tried before the default
	// rules (see diff.NewRouter).
	Routes []string
	// Baseline names the target that runs the production version on
	// staging: a difference that also appears between production and the
	// baseline is noise, and the baseline's differences teach the learned
	// noise of each route. Default "": no baseline.
	Baseline string
	// BodyExcerpt is how many bytes of each body a document keeps.
	// Default 4096.
	BodyExcerpt int
}

// Comparer turns replay results into pair documents. Safe for concurrent
// use.
type Comparer struct {
	cfg    CompareConfig
	differ *diff.Differ
	router *diff.Router
	noise  *diff.NoiseLearner
}

// NewComparer compiles cfg; a bad rule is refused with an error naming it.
func NewComparer(cfg CompareConfig) (*Comparer, error) {
	d, err := diff.New(cfg.Diff)
	if err != nil {
		return nil, err
	}
	r, err := diff.NewRouter(cfg.Routes)
	if err != nil {
		return nil, err
	}
	if cfg.BodyExcerpt <= 0 {
		cfg.BodyExcerpt = 4096
	}
	return &Comparer{cfg: cfg, differ: d, router: r, noise: d.NewNoiseLearner()}, nil
}

// Noise is what the comparer has learned so far: per route, the
// difference keys that the baseline shows too often to be signal.
func (c *Comparer) Noise() diff.NoiseSnapshot { return c.noise.Snapshot() }

// Compare builds one pair document per target outcome of res. The
// baseline's outcome, when there is one, is compared first: its
// differences are observed as noise of the route and used to judge the
// other targets.
func (c *Comparer) Compare(res *schema.ReplayResult) []Doc {
	ex := res.GetExchange()
	req := ex.GetRequest()
	prod := ex.GetResponse()
	route := c.router.Route(req.GetMethod(), req.GetTarget())

	var baseline *diff.Result
	if c.cfg.Baseline != "" && prod != nil {
		for _, o := range res.GetOutcomes() {
			if o.GetTarget() == c.cfg.Baseline && o.GetResponse() != nil {
				r := c.differ.Compare(prod, o.GetResponse())
				baseline = &r
				c.noise.Observe(route, r.Keys)
			}
		}
	}
	times := ex.GetTimes()
	var docs []Doc
	for _, o := range res.GetOutcomes() {
		d := Doc{
			Timestamp:  time.Unix(0, times.GetRequestFirstByteUnixNano()).UTC(),
			ExchangeID: ex.GetId(), Target: o.GetTarget(), Role: "candidate", SessionKey: ex.GetSessionKey(),
			Method: req.GetMethod(), Host: req.GetHost(), URL: req.GetTarget(), Path: pathOf(req.GetTarget()), Route: route,
			Recorder: ex.GetRecorder(), Replayer: res.GetReplayer(),
			ReplayedAt: time.Unix(0, o.GetSentUnixNano()).UTC(),
		}
		if o.GetTarget() == c.cfg.Baseline {
			d.Role = "baseline"
		}
		if times.GetRequestFirstByteUnixNano() == 0 {
			d.Timestamp = d.ReplayedAt
		}
		if prod != nil {
			d.Status.Production = ptr(prod.GetStatus())
			d.BodySize.Production = ptr(prod.GetBodySize())
			d.Body.Production = excerpt(prod, c.cfg.BodyExcerpt)
			if first, last := times.GetRequestFirstByteUnixNano(), times.GetResponseLastByteUnixNano(); first > 0 && last >= first {
				d.LatencyMs.Production = ptr(float64(last-first) / 1e6)
			}
		}
		d.LatencyMs.Target = ptr(float64(o.GetLatencyNanos()) / 1e6)
		if d.LatencyMs.Production != nil {
			d.LatencyMs.Delta = ptr(*d.LatencyMs.Target - *d.LatencyMs.Production)
		}
		tr := o.GetResponse()
		if tr != nil {
			d.Status.Target, d.BodySize.Target = ptr(tr.GetStatus()), ptr(tr.GetBodySize())
			d.Body.Target = excerpt(tr, c.cfg.BodyExcerpt)
		}
		switch {
		case tr == nil:
			d.Verdict, d.Error, d.ErrorKind = VerdictTargetError, o.GetError(), o.GetErrorKind()
		case prod == nil:
			d.Verdict = VerdictNoProduction
		default:
			r := c.differ.Compare(prod, tr)
			j := diff.Judge(&r, baseline, c.noise.NoisyFunc(route))
			if d.Role == "baseline" {
				// The baseline runs production's version: what differs is
				// noise by definition, never a regression.
				j = diff.Judgement{Verdict: VerdictMatch}
				if len(r.Keys) > 0 {
					j.Verdict, j.Noise = VerdictNoiseOnly, r.Keys
				}
			}
			d.Detail, d.Diffs = &r, r.Keys
			d.Verdict, d.Regressions, d.Noise, d.LearnedNoise = j.Verdict, j.Regressions, j.Noise, j.LearnedNoise
		}
		docs = append(docs, d)
	}
	return docs
}

// excerpt is the start of r's body as text, decoded (Content-Encoding,
// charset): at most n bytes, cut at a rune boundary; "" for bodies that
// are not text.
func excerpt(r *schema.Response, n int) string {
	body, _, err := diff.DecodeBody(r.GetHeaders(), r.GetBody(), r.GetBodyTruncated(), 4*n)
	if err != nil {
		body = r.GetBody()
	}
	if len(body) > n {
		body = body[:n]
		for len(body) > 0 && !utf8.Valid(body) && len(body) > n-utf8.UTFMax {
			body = body[:len(body)-1]
		}
	}
	if !utf8.Valid(body) {
		return ""
	}
	return string(body)
}

func pathOf(target string) string {
	if u, err := url.ParseRequestURI(target); err == nil {
		return u.Path
	}
	return target
}
