package main

import (
	"context"

	"github.com/urfave/cli/v2"

	"github.com/tapline/tapline/analyzer"
	"github.com/tapline/tapline/analyzer/diff"
)

func analyzeCommand() *cli.Command {
	return &cli.Command{
		Name:  "analyze",
		Usage: "compare production and staging responses and index the pairs into Elasticsearch",
		Description: "Consumes replay results as a member of a consumer group, builds one pair document per\n" +
			"exchange and target, and bulk-indexes them into a data stream (document id = exchange id\n" +
			"+ target, so redelivery never doubles a document). Installs the index template at start.\n" +
			"Offsets are committed only after indexing. Runs until interrupted.\n" +
			"Bodies are decoded (Content-Encoding, charset) and compared structurally when JSON (paths\n" +
			"added/removed/changed), by lines when text, by hash otherwise; headers minus an ignore list.\n" +
			"Verdicts: match, noise_only (every difference also shows against --baseline, or is learned\n" +
			"noise of the route), mismatch; target_error and no_production when there is nothing to compare.",
		Flags: envFlags("analyze", append(append(append(compareFlags(), kafkaSecurityFlags()...), esSecurityFlags()...), []cli.Flag{
			&cli.StringFlag{Name: "from", Usage: "where replay results come from: kafka://host:9092/topic or file://dir (the embedded log)"},
			&cli.StringFlag{Name: "dlq", Usage: "where undecodable or unindexable results go, with a reason header: kafka://host:9092/topic or file://dir (default: log and count them)"},
			&cli.StringFlag{Name: "group", Value: "tapline-analyzer", Usage: "Kafka consumer group; analyzers in one group share the partitions (file://: the name of the stored read position)"},
			&cli.StringFlag{Name: "start", Value: "earliest", Usage: "where a new consumer group starts: earliest (all retained results) or latest"},
			&cli.StringFlag{Name: "es", Usage: "Elasticsearch URL, http(s)://host:9200"},
			&cli.StringFlag{Name: "data-stream", Value: "tapline-pairs", Usage: "data stream for pair documents; its index template has the same name"},
			&cli.IntFlag{Name: "index-concurrency", Value: 2, Usage: "batches indexed at once while the next is compared; commits stay in order"},
		}...)),
		Action: func(c *cli.Context) error {
			if c.String("es") == "" {
				return usageError("--es is required: the Elasticsearch URL, e.g. http://127.0.0.1:9200")
			}
			password, apiKey, err := esCredentials(c)
			if err != nil {
				return err
			}
			es, err := analyzer.NewElastic(analyzer.ElasticConfig{
				URL: c.String("es"), DataStream: c.String("data-stream"),
				Username: c.String("es-username"), Password: password, APIKey: apiKey,
				CAFile: c.String("es-ca-file"), CAFingerprint: c.String("es-ca-fingerprint"),
			})
			if err != nil {
				return usageError("%v", err)
			}
			src, err := openSource(c, sourceSpec{flag: "from", raw: c.String("from"), group: c.String("group"), start: c.String("start")})
			if err != nil {
				return err
			}
			defer src.Close()
			if err := es.EnsureTemplate(c.Context); err != nil {
				return err
			}
			cmp, err := comparerFrom(c)
			if err != nil {
				return err
			}
			if c.Int("index-concurrency") < 1 {
				return usageError("--index-concurrency must be at least 1")
			}
			cfg := analyzer.Config{Source: src, Indexer: es, Comparer: cmp, Concurrency: c.Int("index-concurrency")}
			if c.String("dlq") != "" {
				dlq, err := outputFor(c, "dlq")
				if err != nil {
					return err
				}
				defer dlq.Close(context.Background())
				cfg.DLQ = dlq
			}
			a, err := analyzer.New(cfg)
			if err != nil {
				return usageError("%v", err)
			}
			if err := checkKafka(c, "from", "dlq"); err != nil {
				return err
			}
			return a.Run(c.Context)
		},
	}
}

// compareFlags configure the comparison; analyze and report share them so
// that a report computes the verdicts the analyzer would index.
func compareFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "baseline", Usage: "the target running production's version on staging: what also differs there is noise, not a regression"},
		&cli.StringSliceFlag{Name: "route", Usage: "route template tried before the default rules, e.g. 'GET /users/{id}/orders/{order}' or '~REGEXP => /route'; repeat"},
		&cli.StringSliceFlag{Name: "ignore-header", Usage: "response header not compared, on top of the defaults (Date, Server, ETag, X-Request-Id, ...); repeat"},
		&cli.StringSliceFlag{Name: "ignore-path", Usage: "JSON path not compared: $.meta.requestId, $.items[*].updatedAt, $..etag; repeat"},
		&cli.StringSliceFlag{Name: "mask", Usage: "regexp whose matches are equal in any two values (UUIDs and timestamps are masked by default); repeat"},
		&cli.BoolFlag{Name: "no-default-masks", Usage: "compare UUIDs and timestamps as they are"},
		&cli.BoolFlag{Name: "unordered-arrays", Usage: "compare every JSON array as a multiset (order ignored)"},
		&cli.StringSliceFlag{Name: "unordered-path", Usage: "compare the JSON array at this path as a multiset; repeat"},
		&cli.Float64Flag{Name: "noise-share", Value: 0.2, Usage: "learned noise: a difference the baseline shows in more than this share of a route's comparisons is noise"},
		&cli.IntFlag{Name: "noise-min-samples", Value: 20, Usage: "learned noise: baseline comparisons of a route needed before its noise is learned"},
	}
}

// comparerFrom compiles the flags of compareFlags.
func comparerFrom(c *cli.Context) (*analyzer.Comparer, error) {
	cmp, err := analyzer.NewComparer(analyzer.CompareConfig{
		Baseline: c.String("baseline"), Routes: c.StringSlice("route"),
		Diff: diff.Config{
			IgnoreHeaders: c.StringSlice("ignore-header"), IgnorePaths: c.StringSlice("ignore-path"),
			Masks: c.StringSlice("mask"), NoDefaultMasks: c.Bool("no-default-masks"),
			UnorderedArrays: c.Bool("unordered-arrays"), UnorderedPaths: c.StringSlice("unordered-path"),
			NoiseShare: c.Float64("noise-share"), NoiseMinSamples: c.Int("noise-min-samples"),
		},
	})
	if err != nil {
		return nil, usageError("%v", err)
	}
	return cmp, nil
}
