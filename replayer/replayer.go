// Package replayer is tapline's replay stage: recorded exchanges in, one
// ReplayResult per replayed exchange out.
//
// Input: Exchange records from a Source (a Kafka consumer group member, or
// a stored time window). Each exchange that is allowed (method, filters,
// sampling) is paced by its recorded time and the rate limit, rewritten,
// and sent to every target; requests of one session go out one at a time in
// recorded order, sessions run in parallel. Output: a ReplayResult per
// exchange, published to the results Sink; only when all results of a batch
// and of the batches before it are durable are the source offsets
// committed (at-least-once). Undecodable records go to the DLQ with a
// reason. pipeline.go shows the stages of a run.
package replayer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
	"google.golang.org/protobuf/proto"

	"github.com/tapline/tapline/internal/stream"
	"github.com/tapline/tapline/schema"
)

// Source delivers batches of records and takes commits; kafkaio.Consumer
// (a consumer group) and kafkaio.Window (a stored time window) implement
// it. Commit acknowledges the given records and, per partition, everything
// before them. Fetch returns io.EOF when a finite source is exhausted.
type Source interface {
	Fetch(ctx context.Context) ([]stream.Record, error)
	Commit(ctx context.Context, recs []stream.Record) error
}

// Sink publishes records durably: Publish returns once they are stored.
// kafkaio.Producer implements it.
type Sink interface {
	Publish(ctx context.Context, recs ...stream.Record) error
}

// Target is a named base URL that replayed requests are sent to.
type Target struct {
	Name string
	URL  *url.URL // scheme, host and an optional path prefix
}

// DefaultAllowMethods are the methods replayed unless Config.AllowMethods
// says otherwise: the ones that do not change state on the target.
var DefaultAllowMethods = []string{"GET", "HEAD", "OPTIONS"}

// The garbage-collector settings `tapline replay` runs with unless the
// GOGC / GOMEMLIMIT environment variables say otherwise. Each replayed
// request allocates about 9 KB of short-lived objects in net/http and
// protobuf while the live heap stays near 10 MiB, so with Go's default
// the collector runs dozens of times a second; at 400 the replay rate was
// higher in 5 of 5 paired runs, by a median of 5 % (BENCHMARKS.md). The
// soft limit keeps the heap well under the 256 MiB the replayer is meant
// to stay in.
const (
	DefaultGCPercent   = 400
	DefaultMemoryLimit = 192 << 20 // bytes
)

// Config configures a Replayer. Zero values are the documented defaults.
type Config struct {
	Source  Source // required
	Results Sink   // required
	// DLQ receives records that cannot be decoded. Default: none; such
	// records are then logged, counted and skipped.
	DLQ     Sink
	Targets []Target // at least one; names must be unique
	// AllowMethods are the HTTP methods that are replayed; others are
	// counted as filtered and skipped. Default DefaultAllowMethods.
	AllowMethods []string
	// Select keeps the exchanges to replay (filters and sampling, compiled
	// by the caller); those it refuses are counted as filtered. Default
	// nil: all (subject to AllowMethods).
	Select func(*schema.Exchange) bool
	// Workers is how many requests are in flight at once (sessions run in
	// parallel, each one request at a time). Default 8.
	Workers int
	// Prefetch is how many fetched batches may be in the pipeline at once
	// (being sent, or waiting for their results to be published and
	// committed); with the source's batch size it bounds the exchanges held
	// in memory. Default 4.
	Prefetch int
	// PrefetchBytes bounds the same by size: no batch is fetched while the
	// records (keys and values) of those in the pipeline add up to this
	// much; one batch always gets in, however large. Memory is about three
	// times this (decoded exchanges and the targets' responses besides the
	// records). Default 32 MiB.
	PrefetchBytes int64
	// SessionParallel drops the per-session order: every exchange is sent
	// as soon as it is due and a worker is free. Default false.
	SessionParallel bool
	// Speed paces the replay by the recorded gaps between exchanges,
	// divided by Speed (2 = twice as fast). Default 0: no pacing, send as
	// fast as Workers and Rate allow (continuous shadowing of live
	// traffic is already paced by its arrival).
	Speed float64
	// MaxGap caps a recorded idle gap when pacing. Default 0: no cap.
	MaxGap time.Duration
	// Rate is the most requests per second (a token bucket with a burst of
	// one second's worth); the replayer slows down, it never drops. The
	// consumer stops fetching meanwhile, so Kafka holds the backlog.
	// Default 0: unlimited.
	Rate float64
	// Timeout bounds one request to one target, from sending to the last
	// byte of the response body. Default 10s.
	Timeout time.Duration
	// Middleware, when set, transforms or drops every exchange before it
	// is sent (after Rewrite's view: the middleware sees the recorded
	// request, Rewrite then applies to what it returns). Default nil.
	Middleware *Middleware
	// RedactResponse, when set, is applied to every target's response
	// before it goes into a result, and returns how many values it
	// replaced: give it the recorder's rules and key
	// (recorder.Redactor.ApplyResponse), so that secrets staging answers
	// with are not stored either, and its pseudonyms equal production's
	// (the diff still lines up). Default nil: responses are kept as
	// received. It must be safe for concurrent use.
	RedactResponse func(*schema.Response) int
	// OnOutcome, when set, is called for every request sent (for
	// metrics): the latency, the status (0 when there was no response)
	// and, for an error, its kind (ErrTimeout, ErrRefused, ...; "" for a
	// response). It must be safe for concurrent use.
	OnOutcome func(target string, latency time.Duration, status int, errKind string)
	// OnSchedule, when set, is called with how late each paced exchange
	// was sent against its due time (the schedule error). Safe for
	// concurrent use required.
	OnSchedule func(late time.Duration)
	// Total, when known (a window), is how many exchanges the run will
	// fetch at most; progress lines then show a share and an ETA.
	Total int64
	// StatsInterval is how often a progress and summary line is logged.
	// Default 30s.
	StatsInterval time.Duration
	// Rewrite changes outgoing requests (host, path, headers, query); see
	// Rules. Default nil: sent as recorded (plus HeaderReplay, minus
	// hop-by-hop headers).
	Rewrite *Rewriter
	// BreakerThreshold pauses a target after this many failures in a row
	// (no response, or a 5xx); while paused, its requests are not sent and
	// their outcomes say so; after BreakerPause one request probes it.
	// Default 5; negative disables the breaker.
	BreakerThreshold int
	// BreakerPause is how long a failing target is paused. Default 10s.
	BreakerPause time.Duration
	// ConnectTimeout bounds connecting (and the TLS handshake) to a
	// target. Default 3s.
	ConnectTimeout time.Duration
	// CAFile names a PEM file of extra CAs trusted for https targets.
	// Default: the system's.
	CAFile string
	// AllowProductionTarget lets requests go to a target that is the host
	// an exchange was recorded from (see productionGuard). Default false:
	// such outcomes are "not sent" and counted as ProductionRefused.
	AllowProductionTarget bool
	// InsecureSkipVerify accepts any certificate from https targets
	// (self-signed staging). Default false.
	InsecureSkipVerify bool
	// BodyCap is how many bytes of each target response body are kept.
	// Default 1 MiB.
	BodyCap int
	// Name identifies this replayer in results. Default: the host name.
	Name string
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Replayer replays exchanges. Create it with New.
type Replayer struct {
	cfg      Config
	log      *slog.Logger
	allowed  map[string]bool
	sender   *sender
	pace     *pacer
	breakers map[string]*breaker // by target name; nil entries when disabled
	limiter  *rate.Limiter       // nil: no rate limit

	guard *productionGuard // nil: AllowProductionTarget

	fetched, replayed, filtered, undecodable, targetErrors, paused, middlewareDropped, productionRefused, redacted, bodiesCut atomic.Uint64

	fitWarn sync.Once // the first result cut to fit its output is logged as a warning
}

// New validates cfg and returns a Replayer.
func New(cfg Config) (*Replayer, error) {
	if cfg.Source == nil || cfg.Results == nil {
		return nil, errors.New("replayer: source and results sink are required")
	}
	if len(cfg.Targets) == 0 {
		return nil, errors.New("replayer: no target; give at least one name=URL")
	}
	seen := map[string]bool{}
	for _, t := range cfg.Targets {
		if t.Name == "" || t.URL == nil || (t.URL.Scheme != "http" && t.URL.Scheme != "https") || t.URL.Host == "" {
			return nil, fmt.Errorf("replayer: target %q: want name=http(s)://host[:port][/prefix]", t.Name)
		}
		if seen[t.Name] {
			return nil, fmt.Errorf("replayer: target name %q used twice", t.Name)
		}
		seen[t.Name] = true
	}
	if len(cfg.AllowMethods) == 0 {
		cfg.AllowMethods = DefaultAllowMethods
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 8
	}
	if cfg.Prefetch <= 0 {
		cfg.Prefetch = 4
	}
	if cfg.PrefetchBytes <= 0 {
		cfg.PrefetchBytes = 32 << 20
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.BodyCap <= 0 {
		cfg.BodyCap = 1 << 20
	}
	if cfg.Name == "" {
		cfg.Name, _ = os.Hostname()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	r := &Replayer{cfg: cfg, log: cfg.Logger, allowed: map[string]bool{}}
	for _, m := range cfg.AllowMethods {
		r.allowed[strings.ToUpper(m)] = true
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = 3 * time.Second
	}
	tc, err := tlsConfig(cfg.CAFile, cfg.InsecureSkipVerify)
	if err != nil {
		return nil, fmt.Errorf("replayer: %w", err)
	}
	if cfg.BreakerThreshold == 0 {
		cfg.BreakerThreshold = 5
	}
	if cfg.StatsInterval <= 0 {
		cfg.StatsInterval = 30 * time.Second
	}
	if cfg.BreakerPause <= 0 {
		cfg.BreakerPause = 10 * time.Second
	}
	r.breakers = map[string]*breaker{}
	for _, t := range cfg.Targets {
		if cfg.BreakerThreshold > 0 {
			r.breakers[t.Name] = &breaker{threshold: cfg.BreakerThreshold, pause: cfg.BreakerPause, now: time.Now}
		}
	}
	r.cfg = cfg
	r.sender = newSender(cfg.Workers, cfg.Timeout, cfg.ConnectTimeout, tc, cfg.BodyCap)
	r.sender.rewrite = cfg.Rewrite
	if !cfg.AllowProductionTarget {
		r.guard = newProductionGuard(cfg.Targets, cfg.ConnectTimeout)
	}
	if cfg.Speed < 0 || cfg.Rate < 0 || cfg.MaxGap < 0 {
		return nil, errors.New("replayer: speed, rate and max gap must not be negative")
	}
	r.pace = &pacer{speed: cfg.Speed, maxGap: cfg.MaxGap, now: time.Now}
	if cfg.Rate > 0 {
		r.limiter = rate.NewLimiter(rate.Limit(cfg.Rate), max(1, int(cfg.Rate)))
	}
	return r, nil
}

// replay sends ex to every target and encodes the result; ok is false
// when the middleware dropped the exchange (nothing to publish).
func (r *Replayer) replay(ctx context.Context, ex *schema.Exchange) (rec stream.Record, ok bool, err error) {
	res := &schema.ReplayResult{Exchange: ex, Replayer: r.cfg.Name}
	send := ex
	var mwErr error
	if r.cfg.Middleware != nil {
		req, err := r.cfg.Middleware.transform(ctx, ex)
		switch {
		case errors.Is(err, errMiddlewareDrop):
			r.middlewareDropped.Add(1)
			return stream.Record{}, false, nil
		case errors.Is(err, errMiddlewareExited):
			return stream.Record{}, false, err
		case err != nil:
			mwErr = err // recorded as every target's outcome
		default:
			// The recorded exchange stays as it is in the result; only
			// what is sent changes.
			send = &schema.Exchange{Id: ex.Id, SessionKey: ex.SessionKey, Request: req}
		}
	}
	for _, t := range r.cfg.Targets {
		if mwErr != nil {
			r.targetErrors.Add(1)
			res.Outcomes = append(res.Outcomes, &schema.TargetOutcome{Target: t.Name, SentUnixNano: time.Now().UnixNano(),
				Result: &schema.TargetOutcome_Error{Error: "not sent: " + mwErr.Error()}, ErrorKind: ErrMiddleware})
			continue
		}
		if why := r.guard.production(t, ex); why != "" {
			r.productionRefused.Add(1)
			r.guard.targets[t.Name].warn.Do(func() {
				r.log.Warn("not replaying to a production host", "target", t.Name, "exchange", ex.Id, "why", why,
					"next", "point --target at staging, or pass --allow-production-target if this is intended")
			})
			res.Outcomes = append(res.Outcomes, &schema.TargetOutcome{Target: t.Name, SentUnixNano: time.Now().UnixNano(),
				Result: &schema.TargetOutcome_Error{Error: "not sent: " + why + " (production); --allow-production-target sends anyway"}, ErrorKind: ErrProduction})
			continue
		}
		b := r.breakers[t.Name]
		if !b.allow() {
			r.paused.Add(1)
			res.Outcomes = append(res.Outcomes, &schema.TargetOutcome{Target: t.Name, SentUnixNano: time.Now().UnixNano(),
				Result: &schema.TargetOutcome_Error{Error: "not sent: target paused by the circuit breaker after repeated failures"}, ErrorKind: ErrPaused})
			continue
		}
		out, errKind := r.sender.send(ctx, t, send)
		if r.cfg.OnOutcome != nil {
			r.cfg.OnOutcome(t.Name, time.Duration(out.GetLatencyNanos()), int(out.GetResponse().GetStatus()), errKind)
		}
		failed := out.GetError() != "" || out.GetResponse().GetStatus() >= 500
		if b.record(!failed) {
			r.log.Warn("target paused after repeated failures", "target", t.Name, "failures_in_a_row", r.cfg.BreakerThreshold,
				"pause", r.cfg.BreakerPause, "last_error", out.GetError(), "last_status", out.GetResponse().GetStatus())
		}
		if resp := out.GetResponse(); resp != nil && r.cfg.RedactResponse != nil {
			r.redacted.Add(uint64(r.cfg.RedactResponse(resp)))
		}
		if out.GetError() != "" {
			r.targetErrors.Add(1)
			r.log.Debug("target error", "exchange", ex.Id, "target", t.Name, "kind", errKind, "err", out.GetError())
		}
		res.Outcomes = append(res.Outcomes, out)
	}
	value, headers, err := schema.EncodeReplayResult(res)
	if err != nil {
		return stream.Record{}, false, fmt.Errorf("encoding result of exchange %s: %w", ex.Id, err)
	}
	key := []byte(ex.SessionKey)
	if limit := stream.ValueLimit(r.cfg.Results, key, headers); limit > 0 && len(value) > limit {
		value, headers, err = r.fit(res, len(value), limit)
		if err != nil {
			return stream.Record{}, false, fmt.Errorf("encoding result of exchange %s: %w", ex.Id, err)
		}
	}
	return stream.Record{Key: key, Value: value, Headers: headers, Time: time.Now()}, true, nil
}

// fit encodes res with bodies cut (schema.FitReplayResult: the sent
// request first, then the responses to one length) so that it is at most
// limit bytes (size is what it encodes to uncut): the results' output refuses larger records (Kafka: 1 MiB), and a
// result it refused would stop the replayer at the same batch after every
// restart. The recorded exchange in res is not modified; a copy is cut.
func (r *Replayer) fit(res *schema.ReplayResult, size, limit int) ([]byte, []schema.RecordHeader, error) {
	res = proto.Clone(res).(*schema.ReplayResult)
	n := schema.FitReplayResult(res, limit)
	r.bodiesCut.Add(uint64(n))
	r.fitWarn.Do(func() {
		r.log.Warn("a result is larger than its output takes; bodies are cut to fit, marked truncated (counted as bodies_cut)",
			"exchange", res.GetExchange().GetId(), "bytes", size, "limit", limit, "next", "lower --body-cap to choose the cut yourself")
	})
	r.log.Debug("result cut to fit its output", "exchange", res.GetExchange().GetId(), "bytes", size, "limit", limit, "bodies_cut", n)
	return schema.EncodeReplayResult(res)
}

// progress logs a line every StatsInterval until the returned func is
// called: counts, the rate since the last line, and for a bounded run the
// share done and an ETA.
func (r *Replayer) progress() (stop func()) {
	done := make(chan struct{})
	go func() {
		tick := time.NewTicker(r.cfg.StatsInterval)
		defer tick.Stop()
		last, lastAt := uint64(0), time.Now()
		for {
			select {
			case <-done:
				return
			case now := <-tick.C:
				s := r.Stats()
				handled := s.Replayed + s.Filtered + s.Undecodable + s.MiddlewareDropped
				rate := float64(handled-last) / now.Sub(lastAt).Seconds()
				args := []any{"replayed", s.Replayed, "filtered", s.Filtered, "target_errors", s.TargetErrors,
					"paused", s.Paused, "per_second", fmt.Sprintf("%.0f", rate)}
				if r.cfg.Total > 0 {
					args = append(args, "done", fmt.Sprintf("%d/%d (%.0f%%)", handled, r.cfg.Total, 100*float64(handled)/float64(r.cfg.Total)))
					if rate > 0 && int64(handled) < r.cfg.Total {
						eta := time.Duration(float64(r.cfg.Total-int64(handled)) / rate * float64(time.Second))
						args = append(args, "eta", eta.Round(time.Second).String())
					}
				}
				r.log.Info("replay progress", args...)
				last, lastAt = handled, now
			}
		}
	}()
	return func() { close(done) }
}

// Stats is a snapshot of the replayer's counters. Every fetched record is
// replayed, filtered, dropped by the middleware or undecodable.
type Stats struct {
	Fetched      uint64 // exchange records fetched
	Replayed     uint64 // results published
	Filtered     uint64 // skipped: method not allowed, or refused by Select
	Undecodable  uint64 // sent to the DLQ (or skipped when there is none)
	TargetErrors uint64 // outcomes that are an error, not a response
	Paused       uint64 // outcomes not sent because the target was paused (circuit breaker)
	// ProductionRefused counts outcomes not sent because the target is the
	// host the exchange was recorded from.
	ProductionRefused uint64
	// MiddlewareDropped counts exchanges the middleware said to drop.
	MiddlewareDropped uint64
	// Redacted counts values in targets' responses replaced by pseudonyms
	// (Config.RedactResponse).
	Redacted uint64
	// BodiesCut counts bodies cut short (and marked truncated) so that a
	// result fits its output's record limit (stream.SizeLimited).
	BodiesCut uint64
}

// Stats returns a snapshot of the counters; safe to call during Run.
func (r *Replayer) Stats() Stats {
	return Stats{
		Fetched: r.fetched.Load(), Replayed: r.replayed.Load(), Filtered: r.filtered.Load(),
		Undecodable: r.undecodable.Load(), TargetErrors: r.targetErrors.Load(), Paused: r.paused.Load(),
		ProductionRefused: r.productionRefused.Load(),
		MiddlewareDropped: r.middlewareDropped.Load(), Redacted: r.redacted.Load(), BodiesCut: r.bodiesCut.Load(),
	}
}

func targetList(ts []Target) string {
	var parts []string
	for _, t := range ts {
		parts = append(parts, t.Name+"="+t.URL.String())
	}
	return strings.Join(parts, " ")
}
