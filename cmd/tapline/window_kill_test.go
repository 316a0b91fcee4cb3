package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tapline/tapline/internal/stacktest"
)

// TestWindowReplayKilled (issue 7): a window replay is killed with SIGKILL
// halfway and run again. The window is replayed again from its start, so
// some exchanges have two results; the analyzer's create-by-id turns them
// into exactly one pair document per exchange and target, and counts the
// rest as duplicates.
func TestWindowReplayKilled(t *testing.T) {
	brokers := stacktest.Kafka(t)
	esURL := stacktest.ES(t)
	exchanges, results := stacktest.Topic(t, brokers, 2), stacktest.Topic(t, brokers, 1)
	dataStream := stacktest.Index(t, esURL, "tapline-pairs-killed")
	kafkaURL := func(topic string) string { return "kafka://" + strings.Join(brokers, ",") + "/" + topic }
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	const n = 400
	publish(t, ctx, brokers, exchanges, itemExchanges(t, "w", n, 20, "ok")...)
	until := time.Now().Add(time.Second).UTC().Format(time.RFC3339Nano)

	var hits atomic.Int64
	staging := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		time.Sleep(5 * time.Millisecond)
		w.Write([]byte("ok"))
	}))
	defer staging.Close()
	bin := buildTapline(t)
	args := []string{"replay", "--from", kafkaURL(exchanges), "--since", "-1h", "--until", until, "--speed", "0",
		"--to", kafkaURL(results), "--target", "staging=" + staging.URL, "--max-inflight", "4"}

	first := startTapline(t, bin, args...)
	for hits.Load() < n/2 {
		select {
		case err := <-first.done:
			t.Fatalf("the replay ended (%v) before it was killed:\n%s", err, first.log)
		case <-ctx.Done():
			t.Fatal("staging saw too little")
		case <-time.After(10 * time.Millisecond):
		}
	}
	first.cmd.Process.Kill()
	<-first.done
	killedAt := hits.Load()
	published := len(stacktest.ReadTopic(t, brokers, results))

	second := startTapline(t, bin, args...)
	select {
	case err := <-second.done:
		if err != nil {
			t.Fatalf("the second replay: %v\n%s", err, second.log)
		}
	case <-ctx.Done():
		t.Fatalf("the second replay did not finish:\n%s", second.log)
	}
	total := len(stacktest.ReadTopic(t, brokers, results))
	if total != published+n {
		t.Fatalf("results: %d before the kill + %d after, want the whole window (%d) the second time", published, total-published, n)
	}

	an := startTapline(t, bin, "analyze", "--from", kafkaURL(results), "--group", results+"-analyze", "--start", "earliest",
		"--es", esURL, "--data-stream", dataStream)
	// Done when the group has committed every result.
	for {
		var committed int64
		for _, off := range stacktest.Committed(t, brokers, results+"-analyze", results) {
			committed += off
		}
		if committed >= int64(total) {
			break
		}
		select {
		case err := <-an.done:
			t.Fatalf("analyze exited: %v\n%s", err, an.log)
		case <-ctx.Done():
			t.Fatalf("analyze committed %d of %d results:\n%s", committed, total, an.log)
		case <-time.After(300 * time.Millisecond):
		}
	}
	an.stop(t)
	sum := an.log.String()
	if got := esCount(t, esURL, dataStream); got != n {
		t.Fatalf("%d pair documents, want exactly %d (one per exchange and target)", got, n)
	}
	if indexed, dups := summaryCount(sum, "indexed"), summaryCount(sum, "duplicates"); indexed != n || dups != int64(published) {
		t.Errorf("analyze: indexed %d, duplicates %d; want %d and %d (the results of the killed run):\n%s", indexed, dups, n, published, sum)
	}
	t.Logf("killed after %d requests with %d results published; the second run published %d; %d documents", killedAt, published, total-published, n)
}

// summaryCount reads key=N from the last summary line in log.
func summaryCount(log, key string) int64 {
	ms := regexp.MustCompile(key+`=(\d+)`).FindAllStringSubmatch(log, -1)
	if len(ms) == 0 {
		return -1
	}
	v, _ := strconv.ParseInt(ms[len(ms)-1][1], 10, 64)
	return v
}
