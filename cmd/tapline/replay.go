package main

import (
	"context"
	"errors"
	"io"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	"go.yaml.in/yaml/v3"

	"github.com/tapline/tapline/recorder"
	"github.com/tapline/tapline/replayer"
	"github.com/tapline/tapline/schema"
)

func replayCommand() *cli.Command {
	return &cli.Command{
		Name:  "replay",
		Usage: "send recorded exchanges to staging targets and publish the results",
		Description: "Runs with GOGC=400 and GOMEMLIMIT=192MiB unless those variables are set.\n" +
			"Continuous: consumes exchanges as a member of a consumer group (add instances to\n" +
			"scale out); offsets are committed only after the results are stored; runs until interrupted.\n" +
			"Time-shifted: with --since (and --until) replays the exchanges recorded in that window, in\n" +
			"recorded order across partitions, once, then exits; no consumer group is used.\n" +
			"Each allowed request goes to every --target; one ReplayResult per exchange is published.\n" +
			"Only GET, HEAD and OPTIONS are replayed unless --allow-method says otherwise.\n" +
			"A window keeps the recorded pace (--speed 1); continuous replay follows live traffic.\n" +
			"A target failing --breaker-threshold times in a row is paused (outcomes say so) and probed.\n" +
			"Rewrites (--rules FILE and the flags) are compiled at start; a bad rule stops the command.\n" +
			"--middleware runs a program that may change or drop each exchange (JSON lines).\n" +
			"A target that is the recorded production host (same Host, or resolving to the recorded\n" +
			"server address) gets nothing unless --allow-production-target.\n" +
			"The --redact-* flags redact the targets' responses before they are stored; give them the\n" +
			"recorder's rules and key, so staging's secrets stay out too and the pseudonyms line up.",
		Flags: envFlags("replay", append(append(append(append(selectFlags("replay"), fileRetentionFlags()...), redactFlags("replay")...), kafkaSecurityFlags()...), []cli.Flag{
			&cli.StringFlag{Name: "from", Usage: "where exchanges come from: kafka://host:9092/topic or file://dir (the embedded log)"},
			&cli.StringFlag{Name: "to", Usage: "where results go: kafka://host:9092/topic, file://dir, or - for JSON lines on standard output"},
			&cli.StringFlag{Name: "dlq", Usage: "where undecodable records go, with a reason header: kafka://host:9092/topic or file://dir (default: log and count them)"},
			&cli.StringFlag{Name: "group", Value: "tapline-replayer", Usage: "Kafka consumer group; replayers in one group share the partitions (file://: the name of the stored read position)"},
			&cli.StringSliceFlag{Name: "target", Usage: "a named target, name=http://host:port[/prefix]; repeat for several (e.g. candidate=... baseline=...)"},
			&cli.StringSliceFlag{Name: "allow-method", Usage: "HTTP method to replay; repeat for several; replaces the default GET, HEAD, OPTIONS"},
			&cli.StringFlag{Name: "since", Usage: "replay the stored window from this time: RFC 3339 (2026-11-24T10:00:00Z) or relative to now (-2h)"},
			&cli.StringFlag{Name: "until", Usage: "end of the window (excluded): RFC 3339, relative (-1h) or now (default: now)"},
			&cli.Float64Flag{Name: "speed", Value: 1, Usage: "window replay: keep the recorded gaps divided by this factor (2 = twice as fast, 0 = as fast as possible)"},
			&cli.DurationFlag{Name: "max-gap", Usage: "window replay: cut recorded idle gaps longer than this (default: keep them)"},
			&cli.Float64Flag{Name: "rate", Usage: "at most this many requests per second; slows down, never drops (default: unlimited)"},
			&cli.StringFlag{Name: "start", Value: "latest", Usage: "where a new consumer group starts: latest (only new traffic) or earliest (all retained)"},
			&cli.IntFlag{Name: "max-inflight", Aliases: []string{"workers"}, Value: 8, Usage: "requests in flight at once (sessions run in parallel, each one request at a time)"},
			&cli.Int64Flag{Name: "max-buffered-bytes", Value: 32 << 20, Usage: "stop fetching while this many bytes of exchanges wait in the replayer (memory is about 3x this)"},
			&cli.BoolFlag{Name: "session-parallel", Usage: "let the requests of one session run in parallel too (no per-session order)"},
			&cli.DurationFlag{Name: "timeout", Value: 10 * time.Second, Usage: "limit for one request to one target, including its response body"},
			&cli.IntFlag{Name: "body-cap", Value: 1 << 20, Usage: "bytes of each target response body to keep"},
			&cli.StringFlag{Name: "rules", Usage: "YAML rewrite rules file (keys: host, tag_header, paths, set_headers, delete_headers, replace_headers, set_query, delete_query); flags add to it"},
			&cli.StringFlag{Name: "host", Usage: "send this Host header instead of the recorded one"},
			&cli.StringFlag{Name: "tag-header", Value: replayer.HeaderReplay, Usage: "header set on every replayed request to the exchange id (the rules file's tag_header overrides the default)"},
			&cli.StringSliceFlag{Name: "rewrite-path", Usage: "rewrite the path: 'REGEXP => REPLACEMENT' ($1 for groups); repeat, applied in order"},
			&cli.StringSliceFlag{Name: "set-header", Usage: "set a header: 'Name: value'; repeat for several (Authorization: use TAPLINE_REPLAY_AUTHORIZATION)"},
			&cli.StringSliceFlag{Name: "delete-header", Usage: "remove this header before sending; repeat for several"},
			&cli.StringSliceFlag{Name: "replace-header", Usage: "rewrite a header value: 'Name: REGEXP => REPLACEMENT'; repeat for several"},
			&cli.StringSliceFlag{Name: "set-query", Usage: "set a query parameter: name=value; repeat for several"},
			&cli.StringSliceFlag{Name: "delete-query", Usage: "remove this query parameter; repeat for several"},
			&cli.StringFlag{Name: "middleware", Usage: "program (and arguments, split on spaces) that sees each exchange as a JSON line and returns the request to send or a drop; see deploy/middleware/example.py"},
			&cli.DurationFlag{Name: "middleware-timeout", Value: time.Second, Usage: "how long to wait for the middleware's reply to one exchange"},
			&cli.StringFlag{Name: "metrics-addr", Usage: "serve Prometheus metrics on this address at /metrics, e.g. :9465 (default: off)"},
			&cli.DurationFlag{Name: "stats-interval", Value: 30 * time.Second, Usage: "how often to log a progress and summary line (windows: done/total and ETA)"},
			&cli.IntFlag{Name: "breaker-threshold", Value: 5, Usage: "pause a target after this many failures in a row (no response or 5xx); -1 disables"},
			&cli.DurationFlag{Name: "breaker-pause", Value: 10 * time.Second, Usage: "how long a failing target is paused before one request probes it"},
			&cli.DurationFlag{Name: "connect-timeout", Value: 3 * time.Second, Usage: "limit for connecting (and the TLS handshake) to a target"},
			&cli.StringFlag{Name: "ca-file", Usage: "PEM file of extra CAs to trust for https targets"},
			&cli.BoolFlag{Name: "allow-production-target", Usage: "send to a target even when it is the host an exchange was recorded from (refused by default)"},
			&cli.BoolFlag{Name: "insecure-skip-verify", Usage: "accept any certificate from https targets (self-signed staging only)"},
		}...)),
		Action: func(c *cli.Context) error {
			tuneGC(replayer.DefaultGCPercent, replayer.DefaultMemoryLimit)
			targets, err := parseTargets(c.StringSlice("target"))
			if err != nil {
				return err
			}
			src, err := replaySource(c)
			if err != nil {
				return err
			}
			defer src.Close()
			results, err := outputFor(c, "to")
			if err != nil {
				return err
			}
			defer results.Close(context.Background())
			cfg := replayConfig(c)
			cfg.Source, cfg.Results, cfg.Targets = src, results, targets
			redactor, err := redactorFrom(c)
			if err != nil {
				return err
			}
			cfg.RedactResponse = redactor.ApplyResponse
			if c.String("dlq") != "" {
				dlq, err := outputFor(c, "dlq")
				if err != nil {
					return err
				}
				defer dlq.Close(context.Background())
				cfg.DLQ = dlq
			}
			if cfg.Select, err = replaySelect(c, nil); err != nil {
				return err
			}
			if cfg.Rewrite, err = replayRewrite(c); err != nil {
				return err
			}
			if command := strings.Fields(c.String("middleware")); len(command) > 0 {
				mw, err := replayer.StartMiddleware(replayer.MiddlewareConfig{Command: command, Timeout: c.Duration("middleware-timeout")})
				if err != nil {
					return usageError("--middleware: %v", err)
				}
				defer mw.Close()
				cfg.Middleware = mw
			}
			cfg.Name, _ = os.Hostname()
			metrics := newReplayMetrics()
			cfg.OnOutcome = metrics.observe
			cfg.Total, metrics.lag = src.total, src.lag
			r, err := replayer.New(cfg)
			if err != nil {
				return usageError("%v", err)
			}
			metrics.rep = r
			if err := checkKafka(c, "from", "to", "dlq"); err != nil {
				return err
			}
			if addr := c.String("metrics-addr"); addr != "" {
				if _, err := serveMetrics(c.Context, addr, metrics); err != nil {
					return err
				}
			}
			return r.Run(c.Context)
		},
	}
}

// replayConfig maps the replay flags that are plain replayer settings
// onto a Config; the caller adds the source, the outputs, the targets and
// what needs compiling (filters, rewrites, middleware).
func replayConfig(c *cli.Context) replayer.Config {
	cfg := replayer.Config{
		AllowMethods: c.StringSlice("allow-method"),
		Rate:         c.Float64("rate"), MaxGap: c.Duration("max-gap"),
		Workers: c.Int("workers"), SessionParallel: c.Bool("session-parallel"), PrefetchBytes: c.Int64("max-buffered-bytes"),
		Timeout: c.Duration("timeout"), ConnectTimeout: c.Duration("connect-timeout"), BodyCap: c.Int("body-cap"),
		BreakerThreshold: c.Int("breaker-threshold"), BreakerPause: c.Duration("breaker-pause"),
		CAFile: c.String("ca-file"), InsecureSkipVerify: c.Bool("insecure-skip-verify"),
		AllowProductionTarget: c.Bool("allow-production-target"),
		StatsInterval:         c.Duration("stats-interval"),
	}
	if c.String("since") != "" {
		cfg.Speed = c.Float64("speed") // pacing is for windows: live traffic is paced by its arrival
	}
	return cfg
}

// replaySource is a time window when --since is given, else a consumer
// group member (for the file log: a follower with a stored position named
// after --group).
func replaySource(c *cli.Context) (openedSource, error) {
	spec := sourceSpec{flag: "from", raw: c.String("from"), group: c.String("group"), start: c.String("start")}
	if c.String("since") == "" {
		if c.String("until") != "" {
			return openedSource{}, usageError("--until needs --since")
		}
		return openSource(c, spec)
	}
	now := time.Now()
	var err error
	if spec.since, err = parseWhen("since", c.String("since"), now); err != nil {
		return openedSource{}, err
	}
	if spec.until, err = parseWhen("until", c.String("until"), now); err != nil {
		return openedSource{}, err
	}
	if spec.until.IsZero() {
		spec.until = now
	}
	if !spec.until.After(spec.since) {
		return openedSource{}, usageError("--until %s is not after --since %s", spec.until.Format(time.RFC3339), spec.since.Format(time.RFC3339))
	}
	return openSource(c, spec)
}

// parseWhen reads an RFC 3339 time, "now", or a duration relative to now
// ("-2h", "+30m").
func parseWhen(flag, v string, now time.Time) (time.Time, error) {
	switch {
	case v == "":
		return time.Time{}, nil
	case v == "now":
		return now, nil
	case strings.HasPrefix(v, "-") || strings.HasPrefix(v, "+"):
		d, err := time.ParseDuration(v)
		if err != nil {
			return time.Time{}, usageError("--%s %q: %v", flag, v, err)
		}
		return now.Add(d), nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, usageError("--%s %q: want RFC 3339 (2026-11-24T10:00:00Z), now, or relative (-2h)", flag, v)
	}
	return t, nil
}

// selectFlags are the filters and the sampling that replay and cat share;
// verb says what is done to the exchanges kept ("replay", "print").
func selectFlags(verb string) []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "sample", Usage: verb + " a share of exchanges: 10% at random, or 10%:session to keep the same sessions every run (default: all)"},
		&cli.StringSliceFlag{Name: "allow-host", Usage: verb + " only requests for these hosts (Host header, port ignored); repeat for several"},
		&cli.StringSliceFlag{Name: "deny-host", Usage: "do not " + verb + " requests for these hosts; repeat for several"},
		&cli.StringSliceFlag{Name: "allow-path", Usage: verb + " only request paths matching this regexp; repeat for several"},
		&cli.StringSliceFlag{Name: "deny-path", Usage: "do not " + verb + " request paths matching this regexp; repeat for several"},
		&cli.StringSliceFlag{Name: "require-header", Usage: verb + " only requests carrying this header: NAME, or NAME=REGEXP to match its value; repeat (all must hold)"},
		&cli.StringSliceFlag{Name: "exclude-header", Usage: "do not " + verb + " requests carrying this header: NAME, or NAME=REGEXP; repeat (any excludes)"},
		&cli.StringSliceFlag{Name: "deny-method", Usage: "do not " + verb + " this HTTP method (counted as filtered); repeat for several"},
	}
}

// replaySelect compiles the flags of selectFlags into one predicate; for
// replay, allowMethods is nil (the allowed methods are the replayer's
// AllowMethods: write safety, checked first).
func replaySelect(c *cli.Context, allowMethods []string) (func(*schema.Exchange) bool, error) {
	filter, err := recorder.NewFilter(recorder.FilterConfig{
		AllowMethods: allowMethods, DenyMethods: c.StringSlice("deny-method"),
		AllowHosts: c.StringSlice("allow-host"), DenyHosts: c.StringSlice("deny-host"),
		AllowPaths: c.StringSlice("allow-path"), DenyPaths: c.StringSlice("deny-path"),
	})
	if err != nil {
		return nil, usageError("%v", err)
	}
	sampler, err := recorder.NewSampler(c.String("sample"))
	if err != nil {
		return nil, usageError("--sample: %v", err)
	}
	require, err := headerMatchers("require-header", c.StringSlice("require-header"))
	if err != nil {
		return nil, err
	}
	exclude, err := headerMatchers("exclude-header", c.StringSlice("exclude-header"))
	if err != nil {
		return nil, err
	}
	return func(ex *schema.Exchange) bool {
		req := ex.GetRequest()
		for _, m := range require {
			if !m.matches(req) {
				return false
			}
		}
		for _, m := range exclude {
			if m.matches(req) {
				return false
			}
		}
		return filter.Keep(req) && sampler.Keep(ex.GetSessionKey())
	}, nil
}

// headerMatcher tests a request for a header, and optionally its value.
type headerMatcher struct {
	name  string
	value *regexp.Regexp // nil: presence is enough
}

func (m headerMatcher) matches(req *schema.Request) bool {
	for _, h := range req.GetHeaders() {
		if strings.EqualFold(h.GetName(), m.name) && (m.value == nil || m.value.MatchString(h.GetValue())) {
			return true
		}
	}
	return false
}

func headerMatchers(flag string, specs []string) ([]headerMatcher, error) {
	var out []headerMatcher
	for _, spec := range specs {
		name, expr, hasValue := strings.Cut(spec, "=")
		if name == "" {
			return nil, usageError("--%s %q: want NAME or NAME=REGEXP", flag, spec)
		}
		m := headerMatcher{name: name}
		if hasValue {
			re, err := regexp.Compile(expr)
			if err != nil {
				return nil, usageError("--%s %q: %v", flag, spec, err)
			}
			m.value = re
		}
		out = append(out, m)
	}
	return out, nil
}

// replayRewrite compiles the rules file and the rewrite flags (added after
// the file's rules). The Authorization value comes only from the
// environment: a secret in a flag shows in ps and shell history.
func replayRewrite(c *cli.Context) (*replayer.Rewriter, error) {
	var rules replayer.Rules
	if path := c.String("rules"); path != "" {
		f, err := os.Open(path)
		if err != nil {
			return nil, usageError("--rules: %v", err)
		}
		defer f.Close()
		dec := yaml.NewDecoder(f)
		dec.KnownFields(true)
		if err := dec.Decode(&rules); err != nil && !errors.Is(err, io.EOF) {
			return nil, usageError("--rules %s: %v", path, err)
		}
	}
	if h := c.String("host"); h != "" {
		rules.Host = h
	}
	if c.IsSet("tag-header") || rules.TagHeader == "" {
		rules.TagHeader = c.String("tag-header")
	}
	rules.Paths = append(rules.Paths, c.StringSlice("rewrite-path")...)
	rules.SetHeaders = append(rules.SetHeaders, c.StringSlice("set-header")...)
	if auth := os.Getenv("TAPLINE_REPLAY_AUTHORIZATION"); auth != "" {
		rules.SetHeaders = append(rules.SetHeaders, "Authorization: "+auth)
	}
	rules.DeleteHeaders = append(rules.DeleteHeaders, c.StringSlice("delete-header")...)
	rules.ReplaceHeaders = append(rules.ReplaceHeaders, c.StringSlice("replace-header")...)
	rules.SetQuery = append(rules.SetQuery, c.StringSlice("set-query")...)
	rules.DeleteQuery = append(rules.DeleteQuery, c.StringSlice("delete-query")...)
	rw, err := replayer.NewRewriter(rules)
	if err != nil {
		return nil, usageError("rewrite rule refused: %v", err)
	}
	return rw, nil
}
