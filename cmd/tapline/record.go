package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/tapline/tapline/recorder"
)

func recordCommand() *cli.Command {
	return &cli.Command{
		Name:  "record",
		Usage: "capture HTTP exchanges from pcap files and publish them",
		Description: "Reads pcap/pcapng files in order, reassembles TCP, parses HTTP/1.x, pairs each request\n" +
			"with its response and publishes one Exchange (schema v1) per pair, keyed by session.\n" +
			"Live capture from an interface comes with a later release.",
		Flags: envFlags("record", []cli.Flag{
			&cli.StringSliceFlag{Name: "pcap", Usage: "pcap or pcapng file to read; repeat for several files, read in order; - reads stdin"},
			&cli.StringFlag{Name: "to", Usage: "where exchanges go: kafka://host:9092/topic (the topic must exist)"},
			&cli.StringFlag{Name: "name", Usage: "recorder name stored in every exchange (default: the host name)"},
			&cli.IntFlag{Name: "body-cap", Value: 1 << 20, Usage: "bytes of each body to keep; longer bodies are cut and flagged truncated"},
			&cli.DurationFlag{Name: "idle-timeout", Value: 2 * time.Minute, Usage: "close a connection idle this long (capture time) and emit its unanswered requests"},
			&cli.DurationFlag{Name: "drain-timeout", Value: 30 * time.Second, Usage: "at the end, how long to wait for Kafka to take what is still queued"},
		}),
		Action: func(c *cli.Context) error {
			if len(c.StringSlice("pcap")) == 0 {
				return usageError("--pcap is required: give a capture file (live capture is not implemented yet)")
			}
			prod, err := producerFor("to", c.String("to"))
			if err != nil {
				return err
			}
			rec, err := recorder.New(recorder.Config{
				PcapFiles:   c.StringSlice("pcap"),
				Sink:        prod,
				Name:        c.String("name"),
				BodyCap:     c.Int("body-cap"),
				IdleTimeout: c.Duration("idle-timeout"),
			})
			if err != nil {
				return usageError("%v", err)
			}
			runErr := rec.Run(c.Context)
			drainCtx, cancel := context.WithTimeout(context.Background(), c.Duration("drain-timeout"))
			defer cancel()
			closeErr := prod.Close(drainCtx)
			ps := prod.Stats()
			slog.Info("published", "to", c.String("to"), "published", ps.Published, "failed", ps.Failed, "dropped", ps.Dropped)
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
