package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tapline/tapline/internal/stacktest"
	"github.com/tapline/tapline/schema"
)

// TestReplayGroupRestart: a replayer in group mode is killed with SIGKILL
// in the middle of a topic and started again. Every exchange must be
// replayed at least once, the restarted member must replay exactly the
// exchanges whose offsets were not committed (the group resumes, it does
// not start over), and duplicates in the results carry the same exchange
// id.
func TestReplayGroupRestart(t *testing.T) {
	brokers := stacktest.Kafka(t)
	exchanges := stacktest.Topic(t, brokers, 3)
	results := stacktest.Topic(t, brokers, 1)
	kafkaURL := func(topic string) string { return "kafka://" + strings.Join(brokers, ",") + "/" + topic }
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	const n = 1000
	publish(t, ctx, brokers, exchanges, itemExchanges(t, "ex", n, 40, "")...)

	// Staging is slow enough (10 ms a request, 4 in flight) for the kill
	// to land mid-topic; it notes which run (X-Run) sent which exchange.
	var mu sync.Mutex
	seen := map[string]map[string]int{}
	staging := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		run := r.Header.Get("X-Run")
		if seen[run] == nil {
			seen[run] = map[string]int{}
		}
		seen[run][r.Header.Get("X-Tapline-Replay")]++
		mu.Unlock()
		time.Sleep(10 * time.Millisecond)
	}))
	defer staging.Close()

	bin := buildTapline(t)
	group := "restart-" + strings.TrimPrefix(exchanges, "tapline-test-")
	args := func(run string) []string {
		return []string{"replay", "--from", kafkaURL(exchanges), "--to", kafkaURL(results), "--group", group, "--start", "earliest",
			"--target", "staging=" + staging.URL, "--max-inflight", "4", "--set-header", "X-Run: " + run}
	}
	first := startTapline(t, bin, args("1")...)
	for {
		c := stacktest.Committed(t, brokers, group, exchanges)
		if len(c) > 0 {
			break
		}
		select {
		case err := <-first.done:
			t.Fatalf("the first replayer exited (%v) before committing anything:\n%s", err, first.log)
		case <-ctx.Done():
			t.Fatalf("nothing committed:\n%s", first.log)
		case <-time.After(50 * time.Millisecond):
		}
	}
	first.cmd.Process.Kill()
	<-first.done
	committed := stacktest.Committed(t, brokers, group, exchanges)
	var done int64
	for _, off := range committed {
		done += off
	}
	if done >= n {
		t.Fatalf("all %d exchanges were committed before the kill; the test needs a slower staging", n)
	}

	second := startTapline(t, bin, args("2")...)
	ids := map[string]int{} // exchange id → results holding it
	var resultCount int
	for len(ids) < n {
		select {
		case err := <-second.done:
			t.Fatalf("the restarted replayer exited (%v):\n%s", err, second.log)
		case <-ctx.Done():
			t.Fatalf("results hold %d of %d exchanges:\n%s", len(ids), n, second.log)
		case <-time.After(500 * time.Millisecond):
		}
		ids, resultCount = map[string]int{}, 0
		for _, m := range stacktest.ReadTopic(t, brokers, results) {
			res, err := schema.DecodeReplayResult(m.Value, m.Headers)
			if err != nil {
				t.Fatalf("result at offset %d: %v", m.Offset, err)
			}
			ids[res.GetExchange().GetId()]++
			resultCount++
		}
	}
	second.stop(t)

	// What the restarted member sent is exactly what was not committed.
	var want []string
	for _, m := range stacktest.ReadTopic(t, brokers, exchanges) {
		if m.Offset >= committed[m.Partition] {
			ex, err := schema.DecodeExchange(m.Value, m.Headers)
			if err != nil {
				t.Fatal(err)
			}
			want = append(want, ex.GetId())
		}
	}
	mu.Lock()
	defer mu.Unlock()
	var got []string
	for id := range seen["2"] {
		got = append(got, id)
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("after the restart staging saw %d exchanges, want the %d uncommitted ones (committed %v)", len(got), len(want), committed)
	}
	for i := range n {
		if id := fmt.Sprintf("ex-%04d", i); ids[id] == 0 {
			t.Fatalf("exchange %s has no result", id)
		}
	}
	t.Logf("%d exchanges: first run sent %d, committed %d before the kill; restart sent %d; %d results (%d duplicates)",
		n, len(seen["1"]), done, len(seen["2"]), resultCount, resultCount-n)
}
