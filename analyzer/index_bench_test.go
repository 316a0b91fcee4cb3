package analyzer

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tapline/tapline/internal/kafkaio"
	"github.com/tapline/tapline/internal/stacktest"
	"github.com/tapline/tapline/internal/stream"
	"github.com/tapline/tapline/schema"
)

// benchResults is how many replay results BenchmarkIndexPairs runs
// through the analyzer per iteration.
const benchResults = 20000

// BenchmarkIndexPairs measures pairs indexed per second end to end
// (issue 5): replay results on a real Kafka topic, compared and bulk
// indexed into the real local Elasticsearch node by the analyzer, offsets
// committed. Each result carries 2 KB JSON bodies, half of them with a
// changed field. Run with -benchtime=1x (each iteration is the whole
// topic, benchResults results, with a fresh consumer group):
//
//	go test -run='^$' -bench=IndexPairs -benchtime=1x ./analyzer
//
// Three sub-benchmarks locate the limit:
//   - kafka+compare: the analyzer with an indexer that drops the documents
//     (what tapline itself can do: fetch, decode, diff, build documents);
//   - elasticsearch/concurrency=N: the analyzer for real, N batches
//     indexed at once (Config.Concurrency, default 2);
//   - bulk-only/N: the same documents, built beforehand, bulk-indexed by
//     Elastic in batches of N on one connection (what this node takes
//     from one sequential client; N=100 is the analyzer's batch).
func BenchmarkIndexPairs(b *testing.B) {
	brokers := stacktest.Kafka(b)
	esURL := stacktest.ES(b)
	topic := stacktest.Topic(b, brokers, 3)
	ctx := context.Background()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))

	recs := benchResultRecords(b, benchResults)
	p, err := kafkaio.NewProducer(kafkaio.ProducerConfig{Brokers: brokers, Topic: topic})
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < len(recs); i += 1000 {
		if err := p.Publish(ctx, recs[i:min(i+1000, len(recs))]...); err != nil {
			b.Fatal(err)
		}
	}
	p.Close(ctx)

	run := func(b *testing.B, indexer func(b *testing.B) Indexer, concurrency int) {
		for i := 0; b.Loop(); i++ {
			b.StopTimer()
			idx := indexer(b)
			cons, err := kafkaio.NewConsumer(kafkaio.ConsumerConfig{Brokers: brokers, Topic: topic,
				Group: fmt.Sprintf("%s-%s-%d", topic, strings.ReplaceAll(b.Name(), "/", "-"), i), Logger: quiet})
			if err != nil {
				b.Fatal(err)
			}
			rctx, cancel := context.WithCancel(ctx)
			src := &countingSource{Source: cons, total: benchResults, done: cancel}
			a, err := New(Config{Source: src, Indexer: idx, Concurrency: concurrency, Logger: quiet})
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			start := time.Now()
			if err := a.Run(rctx); err != nil {
				b.Fatal(err)
			}
			elapsed := time.Since(start)
			b.StopTimer()
			cons.Close()
			if s := a.Stats(); s.Fetched != benchResults || s.Failed != 0 {
				b.Fatalf("stats %+v, want %d fetched and none failed", s, benchResults)
			}
			b.ReportMetric(benchResults/elapsed.Seconds(), "pairs/s")
			b.StartTimer()
		}
	}
	newElastic := func(b *testing.B) *Elastic {
		e, err := NewElastic(ElasticConfig{URL: esURL, DataStream: stacktest.Index(b, esURL, "tapline-pairs-bench"), Logger: quiet})
		if err != nil {
			b.Fatal(err)
		}
		if err := e.EnsureTemplate(ctx); err != nil {
			b.Fatal(err)
		}
		return e
	}

	b.Run("kafka+compare", func(b *testing.B) {
		run(b, func(*testing.B) Indexer { return discardIndexer{} }, 1)
	})
	for _, c := range []int{1, 2, 4} {
		b.Run(fmt.Sprintf("elasticsearch/concurrency=%d", c), func(b *testing.B) {
			run(b, func(b *testing.B) Indexer { return newElastic(b) }, c)
		})
	}
	// The documents the analyzer would build, for bulk-only.
	cmp, err := NewComparer(CompareConfig{})
	if err != nil {
		b.Fatal(err)
	}
	var docs []Doc
	for _, r := range recs {
		res, err := schema.DecodeReplayResult(r.Value, r.Headers)
		if err != nil {
			b.Fatal(err)
		}
		docs = append(docs, cmp.Compare(res)...)
	}
	for _, batch := range []int{100, 500, 1000} {
		b.Run(fmt.Sprintf("bulk-only/%d", batch), func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				e := newElastic(b)
				b.StartTimer()
				start := time.Now()
				for i := 0; i < len(docs); i += batch {
					out, err := e.Index(ctx, docs[i:min(i+batch, len(docs))])
					if err != nil {
						b.Fatal(err)
					}
					for _, o := range out {
						if !o.Created {
							b.Fatalf("document not created: %+v", o)
						}
					}
				}
				b.ReportMetric(float64(len(docs))/time.Since(start).Seconds(), "pairs/s")
			}
		})
	}
}

// countingSource cancels the run once total records are committed.
type countingSource struct {
	Source
	total     int64
	committed atomic.Int64
	done      context.CancelFunc
}

func (s *countingSource) Commit(ctx context.Context, recs []stream.Record) error {
	if err := s.Source.Commit(ctx, recs); err != nil {
		return err
	}
	if s.committed.Add(int64(len(recs))) >= s.total {
		s.done()
	}
	return nil
}

type discardIndexer struct{}

func (discardIndexer) Index(_ context.Context, docs []Doc) ([]ItemOutcome, error) {
	out := make([]ItemOutcome, len(docs))
	for i := range out {
		out[i].Created = true
	}
	return out, nil
}

// benchResultRecords builds n encoded replay results: one target each,
// 2 KB JSON bodies, every other one with a changed field.
func benchResultRecords(b *testing.B, n int) []stream.Record {
	b.Helper()
	body := func(i int, changed bool) []byte {
		var sb strings.Builder
		fmt.Fprintf(&sb, `{"id":%d,"name":"user %d","updated_at":"2026-11-28T10:00:00Z","items":[`, i, i)
		for k := 0; k < 24; k++ {
			if k > 0 {
				sb.WriteByte(',')
			}
			price := 100 + k
			if changed && k == 7 {
				price++
			}
			fmt.Fprintf(&sb, `{"sku":"SKU-%05d","qty":%d,"price":%d,"tags":["a","b"]}`, k, k%3+1, price)
		}
		sb.WriteString(`]}`)
		return []byte(sb.String())
	}
	jsonResp := func(b []byte) *schema.Response {
		return &schema.Response{Status: 200, Body: b, BodySize: int64(len(b)),
			Headers: []*schema.Header{{Name: "Content-Type", Value: "application/json"}}}
	}
	now := time.Now()
	recs := make([]stream.Record, n)
	for i := range recs {
		id := fmt.Sprintf("bench-%06d", i)
		res := &schema.ReplayResult{
			Exchange: &schema.Exchange{Id: id, SessionKey: id,
				Request:  &schema.Request{Method: "GET", Target: fmt.Sprintf("/users/%d/cart", i), Host: "shop.example"},
				Times:    &schema.CaptureTimes{RequestFirstByteUnixNano: now.UnixNano(), ResponseLastByteUnixNano: now.UnixNano() + 3e6},
				Original: &schema.Exchange_Response{Response: jsonResp(body(i, false))}},
			Outcomes: []*schema.TargetOutcome{{Target: "staging", SentUnixNano: now.UnixNano(), LatencyNanos: 4e6,
				Result: &schema.TargetOutcome_Response{Response: jsonResp(body(i, i%2 == 1))}}},
			Replayer: "bench",
		}
		v, h, err := schema.EncodeReplayResult(res)
		if err != nil {
			b.Fatal(err)
		}
		recs[i] = stream.Record{Key: []byte(id), Value: v, Headers: h, Time: now}
	}
	return recs
}
