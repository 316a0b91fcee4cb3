package main

import (
	"context"
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/tapline/tapline/replayer"
)

func replayCommand() *cli.Command {
	return &cli.Command{
		Name:  "replay",
		Usage: "send recorded exchanges to staging targets and publish the results",
		Description: "Consumes exchanges as a member of a consumer group (add instances to scale out),\n" +
			"sends each allowed request to every --target, and publishes one ReplayResult per exchange.\n" +
			"Offsets are committed only after the results are stored. Runs until interrupted.\n" +
			"Only GET, HEAD and OPTIONS are replayed unless --allow-method says otherwise.",
		Flags: envFlags("replay", []cli.Flag{
			&cli.StringFlag{Name: "from", Usage: "where exchanges come from: kafka://host:9092/topic"},
			&cli.StringFlag{Name: "to", Usage: "where results go: kafka://host:9092/topic"},
			&cli.StringFlag{Name: "dlq", Usage: "where undecodable records go, with a reason header: kafka://host:9092/topic (default: log and count them)"},
			&cli.StringFlag{Name: "group", Value: "tapline-replayer", Usage: "Kafka consumer group; replayers in one group share the partitions"},
			&cli.StringSliceFlag{Name: "target", Usage: "a named target, name=http://host:port[/prefix]; repeat for several (e.g. candidate=... baseline=...)"},
			&cli.StringSliceFlag{Name: "allow-method", Usage: "HTTP method to replay; repeat for several; replaces the default GET, HEAD, OPTIONS"},
			&cli.StringFlag{Name: "start", Value: "latest", Usage: "where a new consumer group starts: latest (only new traffic) or earliest (all retained)"},
			&cli.IntFlag{Name: "workers", Value: 8, Usage: "sessions replayed at once"},
			&cli.DurationFlag{Name: "timeout", Value: 10 * time.Second, Usage: "limit for one request to one target, including its response body"},
			&cli.IntFlag{Name: "body-cap", Value: 1 << 20, Usage: "bytes of each target response body to keep"},
		}),
		Action: func(c *cli.Context) error {
			targets, err := parseTargets(c.StringSlice("target"))
			if err != nil {
				return err
			}
			cons, err := consumerFor("from", c.String("from"), c.String("group"), c.String("start"))
			if err != nil {
				return err
			}
			defer cons.Close()
			results, err := producerFor("to", c.String("to"))
			if err != nil {
				return err
			}
			defer results.Close(context.Background())
			cfg := replayer.Config{
				Source: cons, Results: results, Targets: targets,
				AllowMethods: c.StringSlice("allow-method"),
				Workers:      c.Int("workers"), Timeout: c.Duration("timeout"), BodyCap: c.Int("body-cap"),
			}
			if c.String("dlq") != "" {
				dlq, err := producerFor("dlq", c.String("dlq"))
				if err != nil {
					return err
				}
				defer dlq.Close(context.Background())
				cfg.DLQ = dlq
			}
			cfg.Name, _ = os.Hostname()
			r, err := replayer.New(cfg)
			if err != nil {
				return usageError("%v", err)
			}
			return r.Run(c.Context)
		},
	}
}
