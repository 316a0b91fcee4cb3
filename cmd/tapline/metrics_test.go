package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tapline/tapline/internal/kafkaio"
	"github.com/tapline/tapline/internal/stream"
	"github.com/tapline/tapline/recorder"
	"github.com/tapline/tapline/replayer"
	"github.com/tapline/tapline/schema"
)

// TestRecorderMetrics records the loopback fixture and scrapes /metrics.
func TestRecorderMetrics(t *testing.T) {
	// The producer is never reached: records wait in its queue.
	prod, err := kafkaio.NewProducer(kafkaio.ProducerConfig{Brokers: []string{"127.0.0.1:1"}, Topic: "t", MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		prod.Close(ctx)
	}()
	rec, err := recorder.New(recorder.Config{PcapFiles: []string{"../../recorder/testdata/loopback.pcap"}, Sink: prod})
	if err != nil {
		t.Fatal(err)
	}
	if err := rec.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, body := serveAndScrape(t, ctx, recorderCollector{rec: rec, out: prod})
	for _, want := range []string{
		"tapline_recorder_packets_total 49",
		"tapline_recorder_exchanges_total 10",
		"tapline_recorder_connections_total 2",
		`tapline_recorder_drops_total{reason="parse_error"} 0`,
		`tapline_recorder_drops_total{reason="queue_full"} 0`,
		"tapline_recorder_kernel_drops_total 0",
		`tapline_recorder_left_out_total{rule="filter"} 0`,
		`tapline_publish_records_total{outcome="published"} 0`,
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("metrics lack %q:\n%s", want, body)
		}
	}
	if _, err := serveMetrics(ctx, addr, recorderCollector{rec: rec, out: prod}); err == nil {
		t.Error("a second server on a taken port started")
	}
}

// TestReplayMetrics replays two exchanges (one answered, one to a dead
// target) through a real Replayer and scrapes /metrics.
func TestReplayMetrics(t *testing.T) {
	staging := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer staging.Close()
	live, _ := url.Parse(staging.URL)
	dead, _ := url.Parse("http://127.0.0.1:1")
	m := newReplayMetrics()
	var batch []stream.Record
	for i, id := range []string{"a", "b"} {
		ex := &schema.Exchange{Id: id, SessionKey: fmt.Sprint(i), Request: &schema.Request{Method: "GET", Target: "/"}}
		v, h, _ := schema.EncodeExchange(ex)
		batch = append(batch, stream.Record{Value: v, Headers: h})
	}
	src := &oneBatch{batch: batch}
	rep, err := replayer.New(replayer.Config{Source: src, Results: discard{}, OnOutcome: m.observe,
		Targets: []replayer.Target{{Name: "staging", URL: live}, {Name: "dead", URL: dead}}})
	if err != nil {
		t.Fatal(err)
	}
	m.rep = rep
	if err := rep.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, body := serveAndScrape(t, ctx, m)
	for _, want := range []string{
		`tapline_replay_outcomes_total{kind="2xx",target="staging"} 2`,
		`tapline_replay_outcomes_total{kind="connection_refused",target="dead"} 2`,
		`tapline_replay_latency_seconds_count{target="staging"} 2`,
		`tapline_replay_exchanges_total{outcome="replayed"} 2`,
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("metrics lack %q:\n%s", want, body)
		}
	}
}

// serveAndScrape serves c on a free port and returns the address and one
// scrape of /metrics.
func serveAndScrape(t *testing.T, ctx context.Context, c prometheus.Collector) (string, string) {
	t.Helper()
	addr, err := serveMetrics(ctx, "127.0.0.1:0", c)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return addr, string(body)
}

// oneBatch is a source with one batch, then the end.
type oneBatch struct {
	batch []stream.Record
	done  bool
}

func (s *oneBatch) Fetch(context.Context) ([]stream.Record, error) {
	if s.done {
		return nil, io.EOF
	}
	s.done = true
	return s.batch, nil
}

func (s *oneBatch) Commit(context.Context, []stream.Record) error { return nil }

type discard struct{}

func (discard) Publish(context.Context, ...stream.Record) error { return nil }
