package main

import (
	"context"
	"log/slog"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/tapline/tapline/recorder"
	"github.com/tapline/tapline/recorder/live"
)

func recordCommand() *cli.Command {
	return &cli.Command{
		Name:  "record",
		Usage: "capture HTTP exchanges (live or from pcap files) and publish them",
		Description: "Runs with GOGC=400 and GOMEMLIMIT=192MiB unless those variables are set.\n" +
			"Captures from an interface (--iface, needs root or CAP_NET_RAW) or reads pcap/pcapng files\n" +
			"in order (--pcap), reassembles TCP, parses HTTP/1.x, pairs each request with its response\n" +
			"and publishes one Exchange (schema v1) per pair, keyed by session. A live capture never\n" +
			"waits for Kafka: exchanges wait in a bounded queue (--queue-size, --queue-bytes) while Kafka is\n" +
			"slow or down and are published when it is back; when the queue is full, exchanges are dropped\n" +
			"and counted (queue_full).",
		Flags: envFlags("record", append(append(append(fileRetentionFlags(), captureRuleFlags("record")...), kafkaSecurityFlags()...), []cli.Flag{
			&cli.StringFlag{Name: "iface", Usage: "capture live on this network interface (e.g. eth0, lo); runs until interrupted"},
			&cli.IntSliceFlag{Name: "port", Usage: "live capture: TCP port of the HTTP server to record; repeat for several"},
			&cli.StringFlag{Name: "bpf", Usage: "live capture: a tcpdump-style filter that replaces the one built from --port"},
			&cli.IntFlag{Name: "snaplen", Value: 262144, Usage: "live capture: bytes kept of each packet (keep whole packets)"},
			&cli.IntFlag{Name: "buffer-size", Value: 16 << 20, Usage: "live capture: kernel capture buffer in bytes; larger absorbs bursts"},
			&cli.BoolFlag{Name: "promisc", Usage: "live capture: also capture traffic not addressed to this host"},
			&cli.DurationFlag{Name: "stats-interval", Value: 30 * time.Second, Usage: "live capture: how often to log a summary line of the counters"},
			&cli.StringSliceFlag{Name: "pcap", Usage: "pcap or pcapng file to read; repeat for several files, read in order; - reads stdin"},
			&cli.StringFlag{Name: "to", Usage: "where exchanges go: kafka://host:9092/topic (the topic must exist), or - for JSON lines on stdout"},
			&cli.StringFlag{Name: "name", Usage: "recorder name stored in every exchange (default: the host name)"},
			&cli.IntFlag{Name: "body-cap", Value: 1 << 20, Usage: "bytes of each body to keep; longer bodies are cut and flagged truncated"},
			&cli.DurationFlag{Name: "idle-timeout", Value: 2 * time.Minute, Usage: "close a connection idle this long (capture time) and emit its unanswered requests"},
			&cli.DurationFlag{Name: "response-timeout", Value: 30 * time.Second, Usage: "emit a request with its response marked missing after waiting this long (capture time)"},
			&cli.BoolFlag{Name: "drop-unanswered", Usage: "drop (and count) requests that never got a response instead of emitting them"},
			&cli.StringFlag{Name: "metrics-addr", Usage: "serve Prometheus metrics on this address at /metrics, e.g. :9464 (default: off)"},
			&cli.DurationFlag{Name: "drain-timeout", Value: 30 * time.Second, Usage: "at the end, how long to wait for Kafka to take what is still queued"},
			&cli.IntFlag{Name: "queue-size", Value: 10000, Usage: "kafka:// output: exchanges held while Kafka is slow or down; beyond this they are dropped (queue_full)"},
			&cli.Int64Flag{Name: "queue-bytes", Value: 64 << 20, Usage: "kafka:// output: bytes held in that queue at most"},
		}...)),
		Action: func(c *cli.Context) error {
			tuneGC(recorder.DefaultGCPercent, recorder.DefaultMemoryLimit)
			if (len(c.StringSlice("pcap")) == 0) == (c.String("iface") == "") {
				return usageError("give either --iface (live capture) or --pcap FILE")
			}
			out, err := outputFor(c, "to")
			if err != nil {
				return err
			}
			cfg := recorder.Config{
				PcapFiles:       c.StringSlice("pcap"),
				Sink:            out,
				Name:            c.String("name"),
				BodyCap:         c.Int("body-cap"),
				IdleTimeout:     c.Duration("idle-timeout"),
				ResponseTimeout: c.Duration("response-timeout"),
				DropUnanswered:  c.Bool("drop-unanswered"),
				StatsInterval:   c.Duration("stats-interval"),
			}
			if err := captureRules(c, &cfg); err != nil {
				return err
			}
			if iface := c.String("iface"); iface != "" {
				src, err := live.Open(live.Config{
					Interface: iface, Ports: c.IntSlice("port"), BPF: c.String("bpf"),
					SnapLen: c.Int("snaplen"), BufferSize: c.Int("buffer-size"), Promiscuous: c.Bool("promisc"),
				})
				if err != nil {
					return err
				}
				defer src.Close()
				cfg.Live = src
				slog.Info("capturing", "iface", iface, "filter", live.Config{Ports: c.IntSlice("port"), BPF: c.String("bpf")}.Filter(), "to", c.String("to"))
			}
			rec, err := recorder.New(cfg)
			if err != nil {
				return usageError("%v", err)
			}
			if addr := c.String("metrics-addr"); addr != "" {
				if _, err := serveMetrics(c.Context, addr, recorderCollector{rec: rec, out: out}); err != nil {
					return err
				}
			}
			if err := checkKafka(c, "to"); err != nil {
				out.Close(context.Background())
				return err
			}
			runErr := rec.Run(c.Context)
			drainCtx, cancel := context.WithTimeout(context.Background(), c.Duration("drain-timeout"))
			defer cancel()
			closeErr := out.Close(drainCtx)
			ps := out.Stats()
			slog.Info("published", "to", c.String("to"), "published", ps.Published, "failed", ps.Failed, "dropped", ps.Dropped, "retries", ps.Retries)
			switch {
			case runErr != nil:
				return runErr
			case ps.Failed+ps.Dropped > 0:
				return lostError("exchanges", ps.Failed+ps.Dropped)
			}
			return closeErr
		},
	}
}

// captureRuleFlags are the session key, filters, sampling and redaction
// that record and import share; verb is the command ("record", "import").
func captureRuleFlags(verb string) []cli.Flag {
	return append([]cli.Flag{
		&cli.StringFlag{Name: "session-key", Value: "connection", Usage: "what keys a session (and its Kafka partition): connection, header:NAME or cookie:NAME"},
		&cli.StringFlag{Name: "sample", Usage: "keep a share of exchanges: 10% at random, or 10%:session to keep the same sessions every run (default: all)"},
		&cli.StringSliceFlag{Name: "allow-method", Usage: verb + " only these HTTP methods; repeat for several"},
		&cli.StringSliceFlag{Name: "deny-method", Usage: "do not " + verb + " these HTTP methods; repeat for several"},
		&cli.StringSliceFlag{Name: "allow-host", Usage: verb + " only requests for these hosts (Host header, port ignored); repeat for several"},
		&cli.StringSliceFlag{Name: "deny-host", Usage: "do not " + verb + " requests for these hosts; repeat for several"},
		&cli.StringSliceFlag{Name: "allow-path", Usage: verb + " only request paths matching this regexp; repeat for several"},
		&cli.StringSliceFlag{Name: "deny-path", Usage: "do not " + verb + " request paths matching this regexp; repeat for several"},
	}, redactFlags(verb)...)
}

// redactFlags are the redaction rules: record and import apply them to
// what they capture, replay to the targets' responses (with the same key,
// so pseudonyms line up); verb is the command.
func redactFlags(verb string) []cli.Flag {
	return []cli.Flag{
		&cli.BoolFlag{Name: "redact-preset", Usage: "redact Authorization, Proxy-Authorization, Cookie, Set-Cookie and X-Api-Key values"},
		&cli.StringSliceFlag{Name: "redact-header", Usage: "redact the values of this header (request and response); repeat for several"},
		&cli.StringSliceFlag{Name: "redact-query", Usage: "redact the values of this query parameter; repeat for several"},
		&cli.StringSliceFlag{Name: "redact-json", Usage: "redact this JSON body field, by path (password, user.token, items[*].card, *.secret); repeat"},
		&cli.StringFlag{Name: "redact-key-file", Usage: "file holding the HMAC key (>= 16 bytes) for redaction pseudonyms; or set TAPLINE_" + strings.ToUpper(verb) + "_REDACT_KEY"},
	}
}

// captureRules compiles the filter, sampling, session key and redaction
// flags into cfg; a bad rule is refused before anything is captured.
func captureRules(c *cli.Context, cfg *recorder.Config) error {
	var err error
	if cfg.Filter, err = recorder.NewFilter(recorder.FilterConfig{
		AllowMethods: c.StringSlice("allow-method"), DenyMethods: c.StringSlice("deny-method"),
		AllowHosts: c.StringSlice("allow-host"), DenyHosts: c.StringSlice("deny-host"),
		AllowPaths: c.StringSlice("allow-path"), DenyPaths: c.StringSlice("deny-path"),
	}); err != nil {
		return usageError("%v", err)
	}
	if cfg.Sampler, err = recorder.NewSampler(c.String("sample")); err != nil {
		return usageError("--sample: %v", err)
	}
	if cfg.SessionKey, err = recorder.ParseSessionKey(c.String("session-key")); err != nil {
		return usageError("--session-key: %v", err)
	}
	if cfg.Redactor, err = redactorFrom(c); err != nil {
		return err
	}
	return nil
}

// redactorFrom compiles the redactFlags; nil when none is set.
func redactorFrom(c *cli.Context) (*recorder.Redactor, error) {
	rc := recorder.RedactConfig{
		Preset: c.Bool("redact-preset"), Headers: c.StringSlice("redact-header"),
		QueryParams: c.StringSlice("redact-query"), JSONFields: c.StringSlice("redact-json"),
	}
	if rc.Preset || len(rc.Headers)+len(rc.QueryParams)+len(rc.JSONFields) > 0 {
		// The key is a secret: only from a file or the environment, never
		// a flag value (it would show in ps and shell history).
		switch path := c.String("redact-key-file"); {
		case path != "":
			key, err := os.ReadFile(path)
			if err != nil {
				return nil, usageError("--redact-key-file: %v", err)
			}
			rc.Key = []byte(strings.TrimSpace(string(key)))
		case c.Command.Name == "import":
			rc.Key = []byte(os.Getenv("TAPLINE_IMPORT_REDACT_KEY"))
		case c.Command.Name == "replay":
			rc.Key = []byte(os.Getenv("TAPLINE_REPLAY_REDACT_KEY"))
		default:
			rc.Key = []byte(os.Getenv("TAPLINE_RECORD_REDACT_KEY"))
		}
	}
	r, err := recorder.NewRedactor(rc)
	if err != nil {
		return nil, usageError("%v", err)
	}
	return r, nil
}

// tuneGC applies a command's garbage-collector defaults (the recorder's,
// the replayer's) where the environment does not set GOGC or GOMEMLIMIT.
func tuneGC(percent int, memoryLimit int64) {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(percent)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(memoryLimit)
	}
}
