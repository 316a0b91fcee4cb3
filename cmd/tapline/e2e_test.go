package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tapline/tapline/internal/kafkaio"
	"github.com/tapline/tapline/internal/stacktest"
	"github.com/tapline/tapline/internal/stream"
	"github.com/tapline/tapline/schema"
)

// runTapline runs the tapline command line in-process, exactly as main
// does, and returns its stderr. (Not concurrently: urfave/cli keeps
// package-level flag state.)
func runTapline(ctx context.Context, args ...string) (string, error) {
	_, stderr, err := runTaplineOut(ctx, args...)
	return stderr, err
}

func runTaplineOut(ctx context.Context, args ...string) (stdout, stderr string, err error) {
	var o, e syncBuffer
	err = newApp(&o, &e).RunContext(ctx, append([]string{"tapline"}, args...))
	return o.String(), e.String(), err
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// buildTapline builds the real binary for the end-to-end test.
func buildTapline(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "tapline")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("building tapline: %v\n%s", err, out)
	}
	return bin
}

// process is a running tapline command.
type process struct {
	name   string
	cmd    *exec.Cmd
	log    *syncBuffer // stdout and stderr
	stdout *syncBuffer // stdout alone, where a test asks for it
	done   chan error
}

func startTapline(t *testing.T, bin string, args ...string) *process {
	t.Helper()
	p := &process{name: args[0], cmd: exec.Command(bin, args...), log: &syncBuffer{}, done: make(chan error, 1)}
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() { p.cmd.Process.Kill() })
	return p
}

// stop interrupts p like Ctrl-C and wants a clean exit.
func (p *process) stop(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(os.Interrupt)
	select {
	case err := <-p.done:
		if err != nil {
			t.Errorf("%s exited with %v after SIGINT:\n%s", p.name, err, p.log)
		}
	case <-time.After(30 * time.Second):
		t.Errorf("%s did not exit within 30s of SIGINT:\n%s", p.name, p.log)
	}
}

// TestEndToEnd drives the thinnest whole pipeline through the real Kafka
// and Elasticsearch with the real binary: a pcap of real loopback traffic
// is recorded into Kafka, replayed against a staging server with a
// deliberate regression, analyzed into Elasticsearch, and the pair
// documents are checked there.
//
// It runs twice: through Kafka topics, and through the embedded file log
// (file://), the same binary and checks.
func TestEndToEnd(t *testing.T) {
	bin := buildTapline(t)
	brokers := stacktest.Kafka(t)
	esURL := stacktest.ES(t)
	kafkaURL := func(topic string) string { return "kafka://" + strings.Join(brokers, ",") + "/" + topic }
	t.Run("kafka", func(t *testing.T) {
		exchanges := stacktest.Topic(t, brokers, 2)
		results := stacktest.Topic(t, brokers, 2)
		endToEnd(t, bin, esURL, kafkaURL(exchanges), kafkaURL(results), exchanges)
	})
	t.Run("file", func(t *testing.T) {
		dir := t.TempDir()
		endToEnd(t, bin, esURL, "file://"+dir+"/exchanges", "file://"+dir+"/results", "e2e-file")
	})
}

func endToEnd(t *testing.T, bin, esURL, exchanges, results, group string) {
	dataStream := stacktest.Index(t, esURL, "tapline-pairs-e2e")

	// Record: the fixture holds 10 exchanges (recorder/testdata/loopback.want).
	rec := startTapline(t, bin, "record", "--pcap", "../../recorder/testdata/loopback.pcap", "--to", exchanges, "--name", "e2e")
	select {
	case err := <-rec.done:
		if err != nil {
			t.Fatalf("record: %v\n%s", err, rec.log)
		}
	case <-time.After(time.Minute):
		t.Fatalf("record did not finish in 1m:\n%s", rec.log)
	}
	if !strings.Contains(rec.log.String(), "exchanges=10") {
		t.Fatalf("record summary does not say 10 exchanges:\n%s", rec.log)
	}

	staging := regressedStaging(t)

	replay := startTapline(t, bin, "replay", "--from", exchanges, "--to", results, "--group", group+"-replay",
		"--start", "earliest", "--target", "staging="+staging.URL)
	analyze := startTapline(t, bin, "analyze", "--from", results, "--group", group+"-analyze", "--start", "earliest",
		"--es", esURL, "--data-stream", dataStream)

	// 8 of the 10 exchanges are GET or HEAD; POST and DELETE are not
	// replayed by default.
	const want = 8
	deadline := time.Now().Add(2 * time.Minute)
	for {
		n := esCount(t, esURL, dataStream)
		if n == want {
			break
		}
		if n > want {
			t.Fatalf("%d pair documents, want %d", n, want)
		}
		for _, p := range []*process{replay, analyze} {
			select {
			case err := <-p.done:
				t.Fatalf("%s exited early (%v):\n%s", p.name, err, p.log)
			default:
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 2m: %d pair documents in %s, want %d\nreplay:\n%s\nanalyze:\n%s", n, dataStream, want, replay.log, analyze.log)
		}
		time.Sleep(500 * time.Millisecond)
	}
	replay.stop(t)
	analyze.stop(t)
	if !strings.Contains(replay.log.String(), "fetched=10 replayed=8 filtered=2") {
		t.Errorf("replay summary does not account for all 10 exchanges:\n%s", replay.log)
	}

	docs := esSearch(t, esURL, dataStream)
	ids := map[string]bool{}
	byURL := map[string]map[string]any{}
	for _, d := range docs {
		ids[d["exchange_id"].(string)] = true
		byURL[d["method"].(string)+" "+d["url"].(string)] = d
	}
	if len(ids) != want {
		t.Fatalf("%d distinct exchanges among %d documents", len(ids), len(docs))
	}
	cases := []struct {
		key                string
		prodStatus, target float64
		verdict            string
	}{
		{"GET /users/1", 200, 200, "match"},
		{"GET /users/2?verbose=1", 200, 200, "mismatch"},
		{"GET /missing", 404, 404, "match"}, // both answer with net/http's 404 page
		{"GET /chunked", 200, 404, "mismatch"},
		{"HEAD /users/1", 200, 200, "match"},
	}
	for _, tc := range cases {
		d := byURL[tc.key]
		if d == nil {
			t.Errorf("no document for %s", tc.key)
			continue
		}
		status := d["status"].(map[string]any)
		if status["production"] != tc.prodStatus || status["target"] != tc.target || d["verdict"] != tc.verdict || d["target"] != "staging" {
			t.Errorf("%s: status %v verdict %v target %v; want %v/%v %s", tc.key, status, d["verdict"], d["target"], tc.prodStatus, tc.target, tc.verdict)
		}
	}
	// The regression is named by its JSON path, and documents aggregate by
	// route.
	if d := byURL["GET /users/2?verbose=1"]; d != nil {
		if regs, _ := d["regressions"].([]any); len(regs) != 1 || regs[0] != "body:$.name" || d["route"] != "GET /users/{id}" {
			t.Errorf("GET /users/2: regressions %v route %v, want [body:$.name] GET /users/{id}", d["regressions"], d["route"])
		}
	}
}

// regressedStaging is staging for the loopback fixture's traffic: the same
// as production, except that /users/2 changed its answer (the regression
// to find) and /chunked is gone. It is closed when the test ends.
func regressedStaging(t *testing.T) *httptest.Server {
	staging := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/users/1":
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"id":"1","name":"user"}`)
		case "/users/2":
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"id":"2","name":"USER"}`)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(staging.Close)
	return staging
}

// publish writes recs to topic and returns once all are acknowledged.
func publish(t *testing.T, ctx context.Context, brokers []string, topic string, recs ...stream.Record) {
	t.Helper()
	p, err := kafkaio.NewProducer(kafkaio.ProducerConfig{Brokers: brokers, Topic: topic})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)
	if err := p.Publish(ctx, recs...); err != nil {
		t.Fatalf("publishing %d records to %s: %v", len(recs), topic, err)
	}
}

// itemExchanges builds n recorded GET /items/<i> exchanges with ids
// <prefix>-0000 on, spread over sessions sessions, each answered 200 with
// body in production.
func itemExchanges(t *testing.T, prefix string, n, sessions int, body string) []stream.Record {
	t.Helper()
	recs := make([]stream.Record, 0, n)
	for i := range n {
		ex := &schema.Exchange{Id: fmt.Sprintf("%s-%04d", prefix, i), SessionKey: fmt.Sprintf("s%02d", i%sessions),
			Request:  &schema.Request{Method: "GET", Target: fmt.Sprintf("/items/%d", i), Host: "prod.example"},
			Original: &schema.Exchange_Response{Response: &schema.Response{Status: 200, Body: []byte(body)}}}
		v, h, err := schema.EncodeExchange(ex)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, stream.Record{Key: []byte(ex.SessionKey), Value: v, Headers: h, Time: time.Now()})
	}
	return recs
}

// esCount refreshes index (what was indexed is not searchable until a
// refresh) and counts its documents; 0 if it does not exist yet.
func esCount(t *testing.T, esURL, index string) int {
	t.Helper()
	if resp, err := http.Post(esURL+"/"+index+"/_refresh", "application/json", nil); err == nil {
		resp.Body.Close()
	}
	resp, err := http.Get(esURL + "/" + index + "/_count")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return 0 // the data stream is created by the first document
	}
	var body struct{ Count int }
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	return body.Count
}

func esSearch(t *testing.T, esURL, index string) []map[string]any {
	t.Helper()
	resp, err := http.Post(esURL+"/"+index+"/_search?size=100", "application/json", strings.NewReader(`{"query":{"match_all":{}}}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Hits struct {
			Hits []struct {
				Source map[string]any `json:"_source"`
			}
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, h := range body.Hits.Hits {
		out = append(out, h.Source)
	}
	return out
}

// TestReplayWindow replays a stored time window (the capture time of the
// fixture is fixed: 2026-11-28 04:53 UTC) and expects the command to finish
// by itself with one result per replayed exchange; a window before it
// replays nothing.
func TestReplayWindow(t *testing.T) {
	brokers := stacktest.Kafka(t)
	exchanges := stacktest.Topic(t, brokers, 3)
	kafkaURL := func(topic string) string { return "kafka://" + strings.Join(brokers, ",") + "/" + topic }
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if log, err := runTapline(ctx, "record", "--pcap", "../../recorder/testdata/loopback.pcap", "--to", kafkaURL(exchanges)); err != nil {
		t.Fatalf("record: %v\n%s", err, log)
	}
	var mu sync.Mutex
	var order []string
	staging := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		order = append(order, strings.TrimSpace(r.Method+" "+r.URL.RequestURI()+" "+r.Header.Get("X-Env")))
		mu.Unlock()
	}))
	defer staging.Close()

	cases := []struct {
		name, since, until string
		extra              []string
		want               int
		inOrder            []string // requests of one session that staging must see in this order
	}{
		{"the capture", "2026-11-28T04:00:00Z", "2026-11-28T06:00:00Z", nil, 8, []string{"GET /users/1", "GET /users/2?verbose=1", "GET /chunked", "HEAD /users/1"}},
		{"the hour before", "2026-11-28T03:00:00Z", "2026-11-28T04:00:00Z", nil, 0, nil},
		// GET /users/1, GET /users/2?verbose=1 and HEAD /users/1 are left out.
		{"without /users", "2026-11-28T04:00:00Z", "2026-11-28T06:00:00Z", []string{"--deny-path", "^/users"}, 5, nil},
		// Only GET /users/1 carries X-Trace (twice: a and b), so excluding
		// the value b leaves nothing.
		{"requiring a header", "2026-11-28T04:00:00Z", "2026-11-28T06:00:00Z", []string{"--require-header", "X-Trace"}, 1, []string{"GET /users/1"}},
		{"excluding a header value", "2026-11-28T04:00:00Z", "2026-11-28T06:00:00Z", []string{"--require-header", "X-Trace", "--exclude-header", "x-trace=^b$"}, 0, nil},
		// The example middleware tags every request; /users/... has no
		// /v1/ or /admin prefix, so nothing else changes.
		{"through the example middleware", "2026-11-28T04:00:00Z", "2026-11-28T06:00:00Z",
			[]string{"--middleware", "python3 ../../deploy/middleware/example.py", "--middleware-timeout", "10s", "--set-header", "X-Env: mw"}, 8,
			[]string{"GET /users/1 mw", "GET /users/2?verbose=1 mw"}},
		// The capture holds one POST and one DELETE besides the 8 reads.
		{"allowing writes but denying DELETE", "2026-11-28T04:00:00Z", "2026-11-28T06:00:00Z",
			[]string{"--allow-method", "GET,HEAD,POST,DELETE", "--deny-method", "delete"}, 9, nil},
		{"with rewrite rules", "2026-11-28T04:00:00Z", "2026-11-28T06:00:00Z",
			[]string{"--rules", "testdata/rules.yaml", "--rewrite-path", "^/users/ => /people/"}, 8, []string{"GET /people/1?debug=1 staging", "GET /people/2?debug=1&verbose=1 staging"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			results := stacktest.Topic(t, brokers, 1)
			mu.Lock()
			order = nil
			mu.Unlock()
			args := append([]string{"replay", "--from", kafkaURL(exchanges), "--to", kafkaURL(results),
				"--since", tc.since, "--until", tc.until, "--target", "staging=" + staging.URL, "--max-inflight", "1"}, tc.extra...)
			log, err := runTapline(ctx, args...)
			if err != nil {
				t.Fatalf("replay: %v\n%s", err, log)
			}
			if !strings.Contains(log, fmt.Sprintf("replayed=%d ", tc.want)) {
				t.Fatalf("replay log does not say replayed=%d:\n%s", tc.want, log)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(order) != tc.want {
				t.Fatalf("staging saw %d requests, want %d: %v", len(order), tc.want, order)
			}
			// Sessions replay concurrently; within one, the recorded order holds.
			at := -1
			for _, want := range tc.inOrder {
				i := slices.Index(order, want)
				if i <= at {
					t.Errorf("%q missing or out of order in %q", want, order)
				}
				at = i
			}
		})
	}
	t.Run("from the file log", func(t *testing.T) {
		log := "file://" + t.TempDir() + "/exchanges"
		if out, err := runTapline(ctx, "record", "--pcap", "../../recorder/testdata/loopback.pcap", "--to", log); err != nil {
			t.Fatalf("record: %v\n%s", err, out)
		}
		for _, w := range []struct {
			since, until string
			want         int
		}{{"2026-11-28T04:00:00Z", "2026-11-28T06:00:00Z", 8}, {"2026-11-28T03:00:00Z", "2026-11-28T04:00:00Z", 0}} {
			out, stderr, err := runTaplineOut(ctx, "replay", "--from", log, "--to", "-", "--since", w.since, "--until", w.until,
				"--target", "staging="+staging.URL)
			if err != nil {
				t.Fatalf("replay: %v\n%s", err, stderr)
			}
			if n := strings.Count(out, "\n"); n != w.want || !strings.Contains(stderr, fmt.Sprintf("replayed=%d ", w.want)) {
				t.Errorf("window %s..%s: %d results, want %d:\n%s", w.since, w.until, n, w.want, stderr)
			}
		}
	})
	t.Run("results on stdout, with a renamed tag header", func(t *testing.T) {
		var tags sync.Map // exchange id → staging saw it
		tagged := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			tags.Store(r.Header.Get("X-Shadow-Of"), true)
			w.Write([]byte("staging"))
		}))
		defer tagged.Close()
		out, log, err := runTaplineOut(ctx, "replay", "--from", kafkaURL(exchanges), "--to", "-", "--since", "2026-11-28T04:00:00Z",
			"--until", "2026-11-28T06:00:00Z", "--target", "staging="+tagged.URL, "--tag-header", "X-Shadow-Of")
		if err != nil {
			t.Fatalf("replay: %v\n%s", err, log)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 8 {
			t.Fatalf("%d lines on stdout, want 8 results:\n%s", len(lines), out)
		}
		for _, line := range lines {
			var res struct {
				Exchange struct {
					ID      string
					Request struct{ Method string }
				}
				Outcomes []struct {
					Target   string
					Response struct {
						Status int
						Body   string
					}
				}
			}
			if err := json.Unmarshal([]byte(line), &res); err != nil {
				t.Fatalf("line %q: %v", line, err)
			}
			if _, ok := tags.Load(res.Exchange.ID); !ok || len(res.Outcomes) != 1 || res.Outcomes[0].Target != "staging" ||
				res.Outcomes[0].Response.Status != 200 || (res.Outcomes[0].Response.Body != "staging") != (res.Exchange.Request.Method == "HEAD") {
				t.Fatalf("result %s: tagged %v", line, ok)
			}
		}
	})
	if _, err := runTapline(ctx, "replay", "--from", kafkaURL(exchanges), "--to", kafkaURL(exchanges), "--target", "s=http://x", "--since", "yesterday"); err == nil {
		t.Error("--since yesterday was accepted")
	}
}
