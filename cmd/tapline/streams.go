package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/tapline/tapline/internal/filelog"
	"github.com/tapline/tapline/internal/kafkaio"
	"github.com/tapline/tapline/internal/stream"
	"github.com/tapline/tapline/recorder"
	"github.com/tapline/tapline/replayer"
)

// This file opens the endpoints of DESIGN.md for the commands: where a
// stage reads (kafka:// as a consumer-group member or a time window,
// file:// the embedded log) and where it writes (kafka://, file://, or "-"
// for JSON lines on standard output).

// output is where a stage writes records. The recorder enqueues (a live
// capture never waits), the replayer and the DLQs publish synchronously.
type output interface {
	recorder.Sink
	replayer.Sink
	Close(ctx context.Context) error
	Stats() kafkaio.ProducerStats
}

// outputFor opens the output named by the value of flag.
func outputFor(c *cli.Context, flag string) (output, error) {
	raw := c.String(flag)
	switch raw {
	case "":
		return nil, usageError("--%s is required: kafka://host:9092/topic, file://dir, or - for standard output", flag)
	case "-":
		return newJSONLines(c.App.Writer, 10000), nil
	}
	ep, err := stream.ParseURL(raw)
	if err != nil {
		return nil, usageError("--%s: %v", flag, err)
	}
	if ep.Scheme == stream.SchemeFile {
		// Commands that write logs define the retention flags; others
		// (undefined flags read as zero) keep everything.
		w, err := filelog.Open(ep.Path, filelog.WriterConfig{
			RetainAge: c.Duration("file-retain-age"), RetainBytes: c.Int64("file-retain-bytes"),
		})
		if err != nil {
			return nil, fmt.Errorf("--%s: %w", flag, err)
		}
		return fileOutput{w}, nil
	}
	sec, err := kafkaSecurity(c)
	if err != nil {
		return nil, err
	}
	p, err := kafkaio.NewProducer(kafkaio.ProducerConfig{Brokers: ep.Brokers, Topic: ep.Topic, Security: sec,
		// Only record defines the queue flags; elsewhere they read as zero,
		// the defaults.
		QueueSize: c.Int("queue-size"), QueueBytes: c.Int64("queue-bytes")})
	if err != nil {
		return nil, usageError("--%s: %v", flag, err)
	}
	return p, nil
}

// fileRetentionFlags bound a file:// log written by the command: the
// oldest segments go first. Retention is the replay window.
func fileRetentionFlags() []cli.Flag {
	return []cli.Flag{
		&cli.DurationFlag{Name: "file-retain-age", Usage: "file:// output: delete log segments last written longer ago than this, e.g. 168h (default: keep everything)"},
		&cli.Int64Flag{Name: "file-retain-bytes", Usage: "file:// output: delete the oldest log segments while the log is bigger than this many bytes (default: no limit)"},
	}
}

// fileOutput is the file log as an output.
type fileOutput struct{ *filelog.Writer }

func (f fileOutput) Close(context.Context) error { return f.Writer.Close() }

func (f fileOutput) Stats() kafkaio.ProducerStats {
	s := f.Writer.Stats()
	return kafkaio.ProducerStats{Published: s.Published, Failed: s.Failed, Dropped: s.Dropped, Queued: s.Queued}
}

// source is where a stage reads records.
type source interface {
	replayer.Source // Fetch and Commit; the analyzer's Source is the same
	Close() error
}

// sourceSpec says which input to open.
type sourceSpec struct {
	flag, raw string // the flag naming the input, and its value
	// A window when since is set: the records in [since, until), once.
	since, until time.Time
	// Otherwise continuous: a Kafka consumer group, or for the file log
	// the name of its stored position (a cursor; one reader per name);
	// start ("earliest" or "latest") is where a new group or cursor
	// begins.
	group, start string
}

// openedSource is an input with what is known about it.
type openedSource struct {
	source
	total int64        // records in a window, 0 when unknown
	lag   func() int64 // consumer lag, nil when not a consumer group
}

// openSource opens the input s names, with c's Kafka security settings.
func openSource(c *cli.Context, s sourceSpec) (openedSource, error) {
	ctx := c.Context
	if s.raw == "" {
		return openedSource{}, usageError("--%s is required: kafka://host:9092/topic or file://dir", s.flag)
	}
	ep, err := stream.ParseURL(s.raw)
	if err != nil {
		return openedSource{}, usageError("--%s: %v", s.flag, err)
	}
	window := !s.since.IsZero()
	if ep.Scheme == stream.SchemeFile {
		cfg := filelog.ReaderConfig{Since: s.since, Until: s.until}
		if !window {
			latest, err := startAtLatest(s.start)
			if err != nil {
				return openedSource{}, err
			}
			cfg.Follow, cfg.Cursor = true, s.group
			if latest && !cursorExists(ep.Path, s.group) {
				cfg.Since = time.Now() // a new cursor starting at the end: only what comes next
			}
		}
		if _, err := os.Stat(ep.Path); err != nil {
			if window || !errors.Is(err, os.ErrNotExist) {
				return openedSource{}, usageError("--%s %s: %v (record into it first, or check the path)", s.flag, s.raw, err)
			}
			// Following a log nobody has written yet: the stage upstream
			// may start later. Wait for it, and say so.
			if err := os.MkdirAll(ep.Path, 0o755); err != nil {
				return openedSource{}, fmt.Errorf("--%s: creating %s: %w", s.flag, ep.Path, err)
			}
			slog.Info("the file log is new; waiting for records", "log", ep.Path)
		}
		r, err := filelog.NewReader(ep.Path, cfg)
		if err != nil {
			return openedSource{}, fmt.Errorf("--%s: %w", s.flag, err)
		}
		o := openedSource{source: r}
		if n, known := r.Records(); known && window {
			o.total = n
		}
		if window {
			slog.Info("reading a stored window", "log", ep.Path, "since", s.since.Format(time.RFC3339), "until", s.until.Format(time.RFC3339))
		}
		return o, nil
	}
	sec, err := kafkaSecurity(c)
	if err != nil {
		return openedSource{}, err
	}
	switch {
	case window:
		w, err := kafkaio.NewWindow(ctx, kafkaio.WindowConfig{Brokers: ep.Brokers, Topic: ep.Topic, Since: s.since, Until: s.until, Security: sec})
		if err != nil {
			return openedSource{}, err
		}
		slog.Info("reading a stored window", "topic", ep.Topic, "since", s.since.Format(time.RFC3339), "until", s.until.Format(time.RFC3339),
			"records_at_most", w.Records())
		return openedSource{source: w, total: w.Records()}, nil
	default:
		cons, err := consumerFor(s.flag, s.raw, s.group, s.start, sec)
		if err != nil {
			return openedSource{}, err
		}
		return openedSource{source: cons, lag: cons.Lag}, nil
	}
}

// openFollower reads the file log in dir and waits for new records: from
// since when fromSince, else from now on. Nothing is committed.
func openFollower(dir string, since time.Time, fromSince bool) (openedSource, error) {
	if !fromSince {
		since = time.Now()
	}
	r, err := filelog.NewReader(dir, filelog.ReaderConfig{Since: since, Follow: true})
	if err != nil {
		return openedSource{}, err
	}
	return openedSource{source: r}, nil
}

// cursorExists says whether the file log in dir has a stored position
// named name (filelog keeps them in dir/cursors/<name>).
func cursorExists(dir, name string) bool {
	_, err := os.Stat(filepath.Join(dir, "cursors", name))
	return !errors.Is(err, os.ErrNotExist)
}
