package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/tapline/tapline/internal/gor"
	"github.com/tapline/tapline/internal/stream"
	"github.com/tapline/tapline/recorder"
	"github.com/tapline/tapline/schema"
)

func importCommand() *cli.Command {
	return &cli.Command{
		Name:  "import",
		Usage: "turn GoReplay capture files into exchanges",
		Description: "Reads GoReplay files (--gor, several read as one capture, gzip or not; - for stdin),\n" +
			"pairs each request with its original response by id and publishes one Exchange per pair,\n" +
			"like record. Files recorded without --input-raw-track-response have no responses: their\n" +
			"exchanges are marked response missing. Ids are derived from the GoReplay id and time, so\n" +
			"importing a file twice gives the same ids (Elasticsearch keeps one pair document).\n" +
			"Filters, sampling, session keys and redaction are those of record.",
		Flags: envFlags("import", append(append(append(fileRetentionFlags(), captureRuleFlags("import")...), kafkaSecurityFlags()...), []cli.Flag{
			&cli.StringSliceFlag{Name: "gor", Usage: "GoReplay file to read (.gor, or gzip); repeat for several, read in order as one capture; - reads stdin"},
			&cli.StringFlag{Name: "to", Usage: "where exchanges go: kafka://host:9092/topic, file://dir, or - for JSON lines on stdout"},
			&cli.StringFlag{Name: "name", Value: gor.DefaultRecorder, Usage: "recorder name stored in every exchange"},
			&cli.IntFlag{Name: "body-cap", Value: 1 << 20, Usage: "bytes of each body to keep; longer bodies are cut and flagged truncated"},
		}...)),
		Action: func(c *cli.Context) error {
			if len(c.StringSlice("gor")) == 0 {
				return usageError("--gor FILE is required (a GoReplay capture; repeat for several)")
			}
			var rules recorder.Config
			if err := captureRules(c, &rules); err != nil {
				return err
			}
			var files []io.Reader
			for _, path := range c.StringSlice("gor") {
				f, err := gor.OpenFile(path)
				if err != nil {
					return usageError("--gor: %v", err)
				}
				defer f.Close()
				files = append(files, f)
			}
			out, err := outputFor(c, "to")
			if err != nil {
				return err
			}
			if err := checkKafka(c, "to"); err != nil {
				out.Close(context.Background())
				return err
			}
			cfg := gor.Config{Recorder: c.String("name"), BodyCap: c.Int("body-cap"), SessionKey: rules.SessionKey}
			if rules.Redactor != nil {
				cfg.Redact = rules.Redactor.Apply
			}
			r := gor.NewReader(gor.Join(files...), cfg)
			n, filtered, cut, readErr := importExchanges(c.Context, r, out, rules)
			closeErr := out.Close(context.Background())
			st := r.Stats()
			slog.Info("import summary", "payloads", st.Payloads, "exchanges", st.Exchanges, "published", n, "filtered", filtered, "bodies_cut", cut,
				"responses_missing", st.ResponsesMissing, "orphan_responses", st.OrphanResponses, "replayed_skipped", st.ReplayedSkipped,
				"malformed", st.Malformed, "to", c.String("to"))
			switch {
			case readErr != nil:
				return fmt.Errorf("reading GoReplay input: %w", readErr)
			case closeErr != nil:
				return closeErr
			case st.Payloads > 0 && st.Exchanges == 0:
				return cli.Exit("tapline: no request/response pair found: is this a GoReplay file?", 1)
			}
			if ps := out.Stats(); ps.Failed+ps.Dropped > 0 {
				return lostError("exchanges", ps.Failed+ps.Dropped)
			}
			return nil
		},
	}
}

// importExchanges publishes what r reads that the filters keep and the
// sampler samples, in batches, and returns how many were published and
// filtered out, and how many bodies were cut to fit out's record limit.
func importExchanges(ctx context.Context, r *gor.Reader, out output, rules recorder.Config) (published, filtered, cut int, err error) {
	var batch []stream.Record
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := out.Publish(ctx, batch...); err != nil {
			return err
		}
		published += len(batch)
		batch = batch[:0]
		return nil
	}
	for {
		ex, err := r.Next()
		if errors.Is(err, io.EOF) {
			return published, filtered, cut, flush()
		}
		if err != nil {
			return published, filtered, cut, errors.Join(err, flush())
		}
		if (rules.Filter != nil && !rules.Filter.Keep(ex.GetRequest())) || (rules.Sampler != nil && !rules.Sampler.Keep(ex.GetSessionKey())) {
			filtered++
			continue
		}
		key := []byte(ex.GetSessionKey())
		value, headers, err := schema.EncodeExchange(ex)
		if limit := stream.ValueLimit(out, key, headers); err == nil && limit > 0 && len(value) > limit {
			// Kafka refuses a record over its limit: cut the longest
			// bodies (marked truncated) rather than lose the exchange.
			cut += schema.FitExchange(ex, limit)
			value, headers, err = schema.EncodeExchange(ex)
		}
		if err != nil {
			slog.Warn("exchange not importable", "id", ex.GetId(), "err", err)
			filtered++
			continue
		}
		batch = append(batch, stream.Record{Key: key, Value: value, Headers: headers,
			Time: exchangeTime(ex)})
		if len(batch) == 500 {
			if err := flush(); err != nil {
				return published, filtered, cut, err
			}
		}
	}
}

// exchangeTime is the record time of an exchange: when its request was
// captured (the time windows of replay select on it), now when unknown.
func exchangeTime(ex *schema.Exchange) time.Time {
	if ns := ex.GetTimes().GetRequestFirstByteUnixNano(); ns > 0 {
		return time.Unix(0, ns)
	}
	return time.Now()
}
