package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/tapline/tapline/internal/stream"
	"github.com/tapline/tapline/schema"
)

func catCommand() *cli.Command {
	return &cli.Command{
		Name:      "cat",
		Usage:     "print exchanges or replay results from any source as JSON lines",
		ArgsUsage: "[flags] URL (kafka://host:9092/topic or file://dir; flags first)",
		Description: "Prints every record of a topic or file log, or those in --since/--until, one JSON object per\n" +
			"line on stdout: exchanges as recorded, results with each target's outcome. Bodies are shown\n" +
			"decoded (Content-Encoding undone, charset converted; body_decoded says so) when that gives\n" +
			"text, else base64. The filters of replay apply (to a result's exchange). --follow waits for\n" +
			"new records instead of stopping at the end. Nothing is committed anywhere. A count of what\n" +
			"was printed, filtered and undecodable goes to stderr at the end.",
		Flags: envFlags("cat", append(append(selectFlags("print"), kafkaSecurityFlags()...), []cli.Flag{
			&cli.StringSliceFlag{Name: "allow-method", Usage: "print only these HTTP methods; repeat for several (default: all)"},
			&cli.StringFlag{Name: "since", Usage: "print records from this time: RFC 3339 or relative (-2h) (default: the oldest)"},
			&cli.StringFlag{Name: "until", Usage: "print records before this time: RFC 3339, relative or now (default: now; with --follow, no end)"},
			&cli.IntFlag{Name: "limit", Usage: "stop after printing this many records (default: no limit)"},
			&cli.BoolFlag{Name: "follow", Usage: "keep printing records as they arrive (from now, unless --since)"},
		}...)),
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				if c.NArg() > 1 && strings.HasPrefix(c.Args().Get(1), "-") {
					return usageError("flags go before the URL: tapline cat --limit 10 %s", c.Args().First())
				}
				return usageError("cat takes one URL: kafka://host:9092/topic or file://dir")
			}
			keep, err := replaySelect(c, c.StringSlice("allow-method"))
			if err != nil {
				return err
			}
			src, err := catSource(c)
			if err != nil {
				return err
			}
			defer src.Close()
			if err := checkKafka(c, "URL"); err != nil {
				return err
			}
			out := newJSONLines(c.App.Writer, 1)
			defer out.Close(context.Background())
			var printed, filtered, undecodable int
			defer func() {
				slog.Info("cat summary", "printed", printed, "filtered", filtered, "undecodable", undecodable)
			}()
			limit := c.Int("limit")
			for limit <= 0 || printed < limit {
				batch, err := src.Fetch(c.Context)
				if errors.Is(err, io.EOF) || (err != nil && c.Context.Err() != nil) {
					return nil
				}
				if err != nil {
					return err
				}
				for _, rec := range batch {
					ex, err := exchangeOf(rec)
					if err != nil {
						undecodable++
						slog.Warn("undecodable record", "partition", rec.Partition, "offset", rec.Offset, "err", err)
						continue
					}
					if !keep(ex) {
						filtered++
						continue
					}
					if err := out.Publish(c.Context, rec); err != nil {
						return fmt.Errorf("printing: %w", err)
					}
					if printed++; limit > 0 && printed == limit {
						break
					}
				}
			}
			return nil
		},
	}
}

// catSource opens the URL argument: a window (the whole retained topic or
// log unless --since/--until), or with --follow a reader that waits for
// new records.
func catSource(c *cli.Context) (openedSource, error) {
	now := time.Now()
	spec := sourceSpec{flag: "URL", raw: c.Args().First(), start: "latest", since: time.Unix(0, 0), until: now}
	var err error
	if v := c.String("since"); v != "" {
		if spec.since, err = parseWhen("since", v, now); err != nil {
			return openedSource{}, err
		}
	}
	if v := c.String("until"); v != "" {
		if spec.until, err = parseWhen("until", v, now); err != nil {
			return openedSource{}, err
		}
	}
	if c.Bool("follow") {
		if c.String("until") != "" {
			return openedSource{}, usageError("--follow has no end: drop --until")
		}
		ep, err := stream.ParseURL(spec.raw)
		if err != nil {
			return openedSource{}, usageError("%v", err)
		}
		if ep.Scheme == stream.SchemeKafka {
			// A consumer group of its own that never commits: it starts
			// at the end and leaves no position behind.
			spec.since, spec.until, spec.group = time.Time{}, time.Time{}, fmt.Sprintf("tapline-cat-%d", now.UnixNano())
			if c.String("since") != "" {
				return openedSource{}, usageError("--follow on Kafka starts at the end; --since is for files and windows")
			}
			return openSource(c, spec)
		}
		return openFollower(ep.Path, spec.since, c.String("since") != "")
	}
	if !spec.until.After(spec.since) {
		return openedSource{}, usageError("--until %s is not after --since %s", spec.until.Format(time.RFC3339), spec.since.Format(time.RFC3339))
	}
	return openSource(c, spec)
}

// exchangeOf decodes rec as an exchange, or as a replay result and
// returns its exchange.
func exchangeOf(rec stream.Record) (*schema.Exchange, error) {
	if schemaName(rec.Headers) == schema.SchemaReplayResult {
		res, err := schema.DecodeReplayResult(rec.Value, rec.Headers)
		return res.GetExchange(), err
	}
	return schema.DecodeExchange(rec.Value, rec.Headers)
}
