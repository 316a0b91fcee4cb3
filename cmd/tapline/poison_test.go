package main

import (
	"context"

	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tapline/tapline/internal/stacktest"
	"github.com/tapline/tapline/internal/stream"
	"github.com/tapline/tapline/schema"
)

// TestPoisonRecords puts undecodable records among valid ones on the
// exchanges topic and on the results topic (issue 7): replay and analyze
// send each to their DLQ topic with a reason naming where it came from,
// count it, and go on with the valid records.
func TestPoisonRecords(t *testing.T) {
	brokers := stacktest.Kafka(t)
	esURL := stacktest.ES(t)
	exchanges, results := stacktest.Topic(t, brokers, 1), stacktest.Topic(t, brokers, 1)
	dlq1, dlq2 := stacktest.Topic(t, brokers, 1), stacktest.Topic(t, brokers, 1)
	dataStream := stacktest.Index(t, esURL, "tapline-pairs-poison")
	kafkaURL := func(topic string) string { return "kafka://" + strings.Join(brokers, ",") + "/" + topic }
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	valid := func(id string) stream.Record {
		ex := &schema.Exchange{Id: id, SessionKey: id, Request: &schema.Request{Method: "GET", Target: "/" + id, Host: "prod.example"},
			Original: &schema.Exchange_Response{Response: &schema.Response{Status: 200, Body: []byte("ok")}}}
		v, h, err := schema.EncodeExchange(ex)
		if err != nil {
			t.Fatal(err)
		}
		return stream.Record{Key: []byte(id), Value: v, Headers: h, Time: time.Now()}
	}
	future := valid("x")
	for i := range future.Headers {
		if future.Headers[i].Key == schema.HeaderVersion {
			future.Headers[i].Value = []byte("9.0") // a major version this build cannot read
		}
	}
	publish(t, ctx, brokers, exchanges, valid("a"), stream.Record{Key: []byte("junk"), Value: []byte("not protobuf"), Time: time.Now()}, future, valid("b"))

	staging := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
	defer staging.Close()
	_, log, err := runTaplineOut(ctx, "replay", "--from", kafkaURL(exchanges), "--since", "-1h", "--to", kafkaURL(results),
		"--dlq", kafkaURL(dlq1), "--target", "staging="+staging.URL)
	if err != nil {
		t.Fatalf("replay: %v\n%s", err, log)
	}
	if !strings.Contains(log, "fetched=4 replayed=2 filtered=0 undecodable=2") {
		t.Fatalf("replay summary does not account for 2 valid and 2 poison records:\n%s", log)
	}
	checkDLQ := func(topic string, wantReasons ...string) {
		t.Helper()
		recs := stacktest.ReadTopic(t, brokers, topic)
		if len(recs) != len(wantReasons) {
			t.Fatalf("DLQ %s holds %d records, want %d", topic, len(recs), len(wantReasons))
		}
		for i, rec := range recs {
			var reason string
			for _, h := range rec.Headers {
				if h.Key == stream.HeaderDLQReason {
					reason = string(h.Value)
				}
			}
			if !strings.Contains(reason, "partition 0 offset") || !strings.Contains(reason, wantReasons[i]) {
				t.Errorf("DLQ record %d: reason %q, want the source position and %q", i, reason, wantReasons[i])
			}
		}
	}
	checkDLQ(dlq1, "", "is not supported")

	// A poison record on the results topic, then the analyzer.
	publish(t, ctx, brokers, results, stream.Record{Key: []byte("junk"), Value: []byte{0xff, 0x00, 0x12}, Time: time.Now()})
	actx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	var alog string
	go func() {
		var err error
		_, alog, err = runTaplineOut(actx, "analyze", "--from", kafkaURL(results), "--group", results+"-analyze", "--start", "earliest",
			"--es", esURL, "--data-stream", dataStream, "--dlq", kafkaURL(dlq2))
		done <- err
	}()
	for esCount(t, esURL, dataStream) < 2 || len(stacktest.ReadTopic(t, brokers, dlq2)) < 1 {
		select {
		case err := <-done:
			t.Fatalf("analyze exited early: %v\n%s", err, alog)
		case <-ctx.Done():
			t.Fatalf("analyze did not index 2 pairs and dead-letter 1 result in time")
		case <-time.After(300 * time.Millisecond):
		}
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("analyze: %v\n%s", err, alog)
	}
	if !strings.Contains(alog, "undecodable=1") {
		t.Errorf("analyze summary does not count the poison result:\n%s", alog)
	}
	checkDLQ(dlq2, "")
	if n := esCount(t, esURL, dataStream); n != 2 {
		t.Errorf("%d pair documents, want 2", n)
	}
}
