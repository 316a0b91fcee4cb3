package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/tapline/tapline/analyzer/report"
)

func reportCommand() *cli.Command {
	return &cli.Command{
		Name:  "report",
		Usage: "per-route summary of the comparisons, as text, JSON or a self-contained HTML page; gates for CI",
		Description: "Reads replay results (--from file://dir or kafka://host:9092/topic, compared here with the\n" +
			"same options as analyze) or the pair documents already in Elasticsearch (--es), and prints per\n" +
			"route: requests, mismatches, noise, top differing paths and the latency delta. Only candidate\n" +
			"targets count toward mismatch rates (not --baseline). --html FILE also writes the HTML report.\n" +
			"--fail-on makes the command exit 3 when a threshold is crossed, e.g. --fail-on 'mismatch-rate>1%'\n" +
			"--fail-on 'latency-p95-delta>50ms:route=GET /users/{id}', so a CI job can gate a deploy.",
		Flags: envFlags("report", append(append(append(compareFlags(), kafkaSecurityFlags()...), esSecurityFlags()...), []cli.Flag{
			&cli.StringFlag{Name: "from", Usage: "replay results to compare: file://dir or kafka://host:9092/topic (read once, nothing committed)"},
			&cli.StringFlag{Name: "es", Usage: "read the pair documents from this Elasticsearch instead of --from, http(s)://host:9200"},
			&cli.StringFlag{Name: "data-stream", Value: "tapline-pairs", Usage: "with --es: the data stream (or index pattern) holding the pair documents"},
			&cli.StringFlag{Name: "since", Usage: "only exchanges captured from this time: RFC 3339 or relative (-2h)"},
			&cli.StringFlag{Name: "until", Usage: "only exchanges captured before this time: RFC 3339, relative or now"},
			&cli.StringFlag{Name: "target", Usage: "report on this target only (default: every candidate target)"},
			&cli.StringFlag{Name: "format", Value: "text", Usage: "what to print on stdout: text, json or html"},
			&cli.StringFlag{Name: "html", Usage: "also write the self-contained HTML report to this file"},
			&cli.IntFlag{Name: "max-routes", Value: 200, Usage: "routes listed, the worst first; the rest are counted in one line"},
			&cli.StringSliceFlag{Name: "fail-on", Usage: "exit 3 when this holds: mismatch-rate>1%, target-error-rate>1%, mismatches>10, target-errors>0, latency-p95-delta>50ms (:route=METHOD /path for one route); repeat"},
		}...)),
		Action: func(c *cli.Context) error {
			gates, err := report.ParseFailOn(c.StringSlice("fail-on"))
			if err != nil {
				return usageError("--fail-on: %v", err)
			}
			write, err := reportWriter(c.String("format"))
			if err != nil {
				return err
			}
			now := time.Now()
			opts := report.Options{Target: c.String("target"), MaxRoutes: c.Int("max-routes")}
			if opts.Since, err = parseWhen("since", c.String("since"), now); err != nil {
				return err
			}
			if opts.Until, err = parseWhen("until", c.String("until"), now); err != nil {
				return err
			}
			var s report.Summary
			switch {
			case c.String("es") != "" && c.String("from") != "":
				return usageError("give --from (replay results) or --es (pair documents), not both")
			case c.String("es") != "":
				password, apiKey, err := esCredentials(c)
				if err != nil {
					return err
				}
				s, err = report.FromElasticsearch(c.Context, report.ESConfig{
					URL: c.String("es"), Index: c.String("data-stream"), Username: c.String("es-username"),
					Password: password, APIKey: apiKey, CAFile: c.String("es-ca-file"), CAFingerprint: c.String("es-ca-fingerprint"),
					Options: opts,
				})
				if err != nil {
					return err
				}
			case c.String("from") != "":
				if s, err = reportFromResults(c, opts); err != nil {
					return err
				}
			default:
				return usageError("--from file://dir (replay results) or --es http://host:9200 (pair documents) is required")
			}
			if err := write(c.App.Writer, s); err != nil {
				return fmt.Errorf("writing the report: %w", err)
			}
			if path := c.String("html"); path != "" {
				if err := writeHTMLFile(path, s); err != nil {
					return err
				}
				slog.Info("HTML report written", "file", path)
			}
			if violations := report.Check(s, gates); len(violations) > 0 {
				var msgs []string
				for _, v := range violations {
					msgs = append(msgs, v.Message)
				}
				return cli.Exit("tapline report: failing: "+strings.Join(msgs, "; "), 3)
			}
			return nil
		},
	}
}

// reportFromResults compares the replay results of --from here: a window
// over the whole topic or log (or --since/--until), read once.
func reportFromResults(c *cli.Context, opts report.Options) (report.Summary, error) {
	cmp, err := comparerFrom(c)
	if err != nil {
		return report.Summary{}, err
	}
	// Results are written after their exchange was captured, so the
	// capture window's start bounds the read; its end does not.
	spec := sourceSpec{flag: "from", raw: c.String("from"), since: time.Unix(0, 0), until: time.Now().Add(time.Minute)}
	if !opts.Since.IsZero() {
		spec.since = opts.Since
	}
	src, err := openSource(c, spec)
	if err != nil {
		return report.Summary{}, err
	}
	defer src.Close()
	if err := checkKafka(c, "from"); err != nil {
		return report.Summary{}, err
	}
	acc := report.NewAccumulator(opts)
	if err := acc.ReadResults(c.Context, src, cmp); err != nil {
		return report.Summary{}, err
	}
	s := acc.Summary()
	s.Source = c.String("from")
	return s, nil
}

func reportWriter(format string) (func(io.Writer, report.Summary) error, error) {
	switch format {
	case "text":
		return report.WriteText, nil
	case "json":
		return report.WriteJSON, nil
	case "html":
		return report.WriteHTML, nil
	}
	return nil, usageError("--format %q: want text, json or html", format)
}

func writeHTMLFile(path string, s report.Summary) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("--html: %w", err)
	}
	defer func() { err = errors.Join(err, f.Close()) }()
	return report.WriteHTML(f, s)
}
