package main

import (
	"context"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/tapline/tapline/analyzer"
)

func analyzeCommand() *cli.Command {
	return &cli.Command{
		Name:  "analyze",
		Usage: "compare production and staging responses and index the pairs into Elasticsearch",
		Description: "Consumes replay results as a member of a consumer group, builds one pair document per\n" +
			"exchange and target, and bulk-indexes them into a data stream (document id = exchange id\n" +
			"+ target, so redelivery never doubles a document). Installs the index template at start.\n" +
			"Offsets are committed only after indexing. Runs until interrupted.",
		Flags: envFlags("analyze", []cli.Flag{
			&cli.StringFlag{Name: "from", Usage: "where replay results come from: kafka://host:9092/topic or file://dir (the embedded log)"},
			&cli.StringFlag{Name: "dlq", Usage: "where undecodable or unindexable results go, with a reason header: kafka://host:9092/topic or file://dir (default: log and count them)"},
			&cli.StringFlag{Name: "group", Value: "tapline-analyzer", Usage: "Kafka consumer group; analyzers in one group share the partitions (file://: the name of the stored read position)"},
			&cli.StringFlag{Name: "start", Value: "earliest", Usage: "where a new consumer group starts: earliest (all retained results) or latest"},
			&cli.StringFlag{Name: "es", Usage: "Elasticsearch URL, http(s)://host:9200"},
			&cli.StringFlag{Name: "es-username", Usage: "Elasticsearch basic-auth user (password from TAPLINE_ANALYZE_ES_PASSWORD)"},
			&cli.StringFlag{Name: "data-stream", Value: "tapline-pairs", Usage: "data stream for pair documents; its index template has the same name"},
		}),
		Action: func(c *cli.Context) error {
			if c.String("es") == "" {
				return usageError("--es is required: the Elasticsearch URL, e.g. http://127.0.0.1:9200")
			}
			es, err := analyzer.NewElastic(analyzer.ElasticConfig{
				URL: c.String("es"), DataStream: c.String("data-stream"),
				Username: c.String("es-username"), Password: os.Getenv("TAPLINE_ANALYZE_ES_PASSWORD"),
				APIKey: os.Getenv("TAPLINE_ANALYZE_ES_API_KEY"),
			})
			if err != nil {
				return usageError("%v", err)
			}
			src, err := openSource(c.Context, sourceSpec{flag: "from", raw: c.String("from"), group: c.String("group"), start: c.String("start")})
			if err != nil {
				return err
			}
			defer src.Close()
			if err := es.EnsureTemplate(c.Context); err != nil {
				return err
			}
			cfg := analyzer.Config{Source: src, Indexer: es}
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
			return a.Run(c.Context)
		},
	}
}
