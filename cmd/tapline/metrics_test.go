package main

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tapline/tapline/internal/kafkaio"
	"github.com/tapline/tapline/recorder"
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
	addr, err := serveMetrics(ctx, "127.0.0.1:0", recorderCollector{rec: rec, out: prod})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
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
		if !strings.Contains(string(body), want+"\n") {
			t.Errorf("metrics lack %q:\n%s", want, body)
		}
	}
	if _, err := serveMetrics(ctx, addr, recorderCollector{rec: rec, out: prod}); err == nil {
		t.Error("a second server on a taken port started")
	}
}
