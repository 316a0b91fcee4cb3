package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tapline/tapline/internal/kafkaio"
	"github.com/tapline/tapline/recorder"
	"github.com/tapline/tapline/replayer"
)

// recorderCollector exposes a recorder's and its output's counters to
// Prometheus, read from their Stats snapshots at scrape time.
type recorderCollector struct {
	rec *recorder.Recorder
	out interface{ Stats() kafkaio.ProducerStats }
}

var (
	descPackets     = prometheus.NewDesc("tapline_recorder_packets_total", "Packets read from the capture.", nil, nil)
	descBytes       = prometheus.NewDesc("tapline_recorder_bytes_total", "Bytes of packets read from the capture.", nil, nil)
	descKernelDrops = prometheus.NewDesc("tapline_recorder_kernel_drops_total", "Packets the kernel or interface dropped before the recorder saw them (live capture).", nil, nil)
	descConns       = prometheus.NewDesc("tapline_recorder_connections_total", "TCP connections that carried payload.", nil, nil)
	descExchanges   = prometheus.NewDesc("tapline_recorder_exchanges_total", "Exchanges handed to the output.", nil, nil)
	descMissing     = prometheus.NewDesc("tapline_recorder_responses_missing_total", "Exchanges emitted without a response.", nil, nil)
	descLeftOut     = prometheus.NewDesc("tapline_recorder_left_out_total", "Exchanges left out on purpose, by rule: filter or sample.", []string{"rule"}, nil)
	descRedacted    = prometheus.NewDesc("tapline_recorder_redacted_values_total", "Values replaced by pseudonyms before leaving the host.", nil, nil)
	descBodiesCut   = prometheus.NewDesc("tapline_recorder_bodies_cut_total", "Bodies cut short (marked truncated) so that an exchange fits the output's record limit.", nil, nil)
	descDrops       = prometheus.NewDesc("tapline_recorder_drops_total", "What did not become an exchange, by reason (see the README).", []string{"reason"}, nil)
	descPublished   = prometheus.NewDesc("tapline_publish_records_total", "Records given to the output (Kafka or JSON lines), by outcome.", []string{"outcome"}, nil)
	descQueued      = prometheus.NewDesc("tapline_publish_queue_records", "Records waiting in the output queue.", nil, nil)
	descRetries     = prometheus.NewDesc("tapline_publish_retries_total", "Failed attempts to publish a queued batch that were retried (Kafka unreachable or moving leaders).", nil, nil)
)

func (c recorderCollector) Describe(ch chan<- *prometheus.Desc) { prometheus.DescribeByCollect(c, ch) }

func (c recorderCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.rec.Stats()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	counter(descPackets, s.Packets)
	counter(descBytes, s.Bytes)
	counter(descKernelDrops, s.KernelDrops)
	counter(descConns, s.Connections)
	counter(descExchanges, s.Exchanges)
	counter(descMissing, s.ResponsesMissing)
	counter(descLeftOut, s.Filtered, "filter")
	counter(descLeftOut, s.SampledOut, "sample")
	counter(descRedacted, s.Redacted)
	counter(descBodiesCut, s.BodiesCut)
	for reason, n := range s.Drops {
		counter(descDrops, n, reason)
	}
	p := c.out.Stats()
	counter(descPublished, p.Published, "published")
	counter(descPublished, p.Failed, "failed")
	counter(descPublished, p.Dropped, "dropped")
	ch <- prometheus.MustNewConstMetric(descQueued, prometheus.GaugeValue, float64(p.Queued))
	counter(descRetries, p.Retries)
}

// serveMetrics serves /metrics for the collectors on addr until ctx is
// done, and returns the bound address. It returns once the listener is
// bound, so a taken port is an error at start, not a log line later.
func serveMetrics(ctx context.Context, addr string, cs ...prometheus.Collector) (string, error) {
	reg := prometheus.NewRegistry()
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return "", err
		}
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("--metrics-addr %s: %w", addr, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			slog.Error("serving metrics", "addr", addr, "err", err)
		}
	}()
	slog.Info("serving metrics", "url", "http://"+ln.Addr().String()+"/metrics")
	return ln.Addr().String(), nil
}

// replayMetrics exposes a replayer's counters, its consumer lag and, per
// target, outcomes by kind and a latency histogram.
type replayMetrics struct {
	rep      *replayer.Replayer
	lag      func() int64 // nil for a window
	outcomes *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

func newReplayMetrics() *replayMetrics {
	return &replayMetrics{
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tapline_replay_outcomes_total", Help: "Requests sent per target, by outcome: 2xx..5xx, or the kind of error (timeout, connection_refused, connection_reset, tls, dns, request, other).",
		}, []string{"target", "kind"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "tapline_replay_latency_seconds", Help: "Latency per target, from sending to the last body byte.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 15),
		}, []string{"target"}),
	}
}

// observe is the replayer's OnOutcome hook.
func (m *replayMetrics) observe(target string, latency time.Duration, status int, errKind string) {
	kind := errKind
	if errKind == "" {
		kind = fmt.Sprintf("%dxx", status/100)
	}
	m.outcomes.WithLabelValues(target, kind).Inc()
	if errKind == "" {
		m.latency.WithLabelValues(target).Observe(latency.Seconds())
	}
}

var (
	descReplayRecords = prometheus.NewDesc("tapline_replay_exchanges_total", "Exchanges fetched and what became of them.", []string{"outcome"}, nil)
	descReplayPaused  = prometheus.NewDesc("tapline_replay_paused_total", "Target outcomes not sent because the target was paused (circuit breaker).", nil, nil)
	descReplayProd    = prometheus.NewDesc("tapline_replay_production_refused_total", "Target outcomes not sent because the target is the host the exchange was recorded from.", nil, nil)
	descReplayLag     = prometheus.NewDesc("tapline_replay_consumer_lag", "Records behind the end of the assigned partitions (consumer group mode).", nil, nil)
	descReplayCut     = prometheus.NewDesc("tapline_replay_bodies_cut_total", "Bodies cut short (marked truncated) so that a result fits the output's record limit.", nil, nil)
)

func (m *replayMetrics) Describe(ch chan<- *prometheus.Desc) {
	m.outcomes.Describe(ch)
	m.latency.Describe(ch)
	ch <- descReplayRecords
	ch <- descReplayPaused
	ch <- descReplayProd
	ch <- descReplayLag
	ch <- descReplayCut
}

func (m *replayMetrics) Collect(ch chan<- prometheus.Metric) {
	m.outcomes.Collect(ch)
	m.latency.Collect(ch)
	s := m.rep.Stats()
	for outcome, v := range map[string]uint64{"fetched": s.Fetched, "replayed": s.Replayed, "filtered": s.Filtered,
		"undecodable": s.Undecodable, "middleware_dropped": s.MiddlewareDropped} {
		ch <- prometheus.MustNewConstMetric(descReplayRecords, prometheus.CounterValue, float64(v), outcome)
	}
	ch <- prometheus.MustNewConstMetric(descReplayPaused, prometheus.CounterValue, float64(s.Paused))
	ch <- prometheus.MustNewConstMetric(descReplayProd, prometheus.CounterValue, float64(s.ProductionRefused))
	ch <- prometheus.MustNewConstMetric(descReplayCut, prometheus.CounterValue, float64(s.BodiesCut))
	if m.lag != nil {
		ch <- prometheus.MustNewConstMetric(descReplayLag, prometheus.GaugeValue, float64(m.lag()))
	}
}
