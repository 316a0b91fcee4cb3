package analyzer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/tapline/tapline/analyzer/diff"
	"github.com/tapline/tapline/internal/stream"
	"github.com/tapline/tapline/schema"
)

func result(prod *schema.Response, outcomes ...*schema.TargetOutcome) *schema.ReplayResult {
	ex := &schema.Exchange{
		Id: "ex1", SessionKey: "s", Request: &schema.Request{Method: "GET", Target: "/users/7?x=1", Host: "h"},
		Times: &schema.CaptureTimes{RequestFirstByteUnixNano: 1_000_000_000, ResponseLastByteUnixNano: 1_004_000_000},
	}
	if prod != nil {
		ex.Original = &schema.Exchange_Response{Response: prod}
	} else {
		ex.Original = &schema.Exchange_ResponseMissing{ResponseMissing: &schema.ResponseMissing{Reason: schema.MissingReason_MISSING_REASON_TIMEOUT}}
	}
	return &schema.ReplayResult{Exchange: ex, Outcomes: outcomes, Replayer: "r"}
}

func resp(status int32, body string) *schema.Response {
	return &schema.Response{Status: status, Body: []byte(body), BodySize: int64(len(body))}
}

func outcome(target string, r *schema.Response, errText string) *schema.TargetOutcome {
	o := &schema.TargetOutcome{Target: target, LatencyNanos: 2_500_000, SentUnixNano: 5_000_000_000}
	if r != nil {
		o.Result = &schema.TargetOutcome_Response{Response: r}
	} else {
		o.Result = &schema.TargetOutcome_Error{Error: errText}
	}
	return o
}

func jsonResp(status int32, body string) *schema.Response {
	r := resp(status, body)
	r.Headers = []*schema.Header{{Name: "Content-Type", Value: "application/json"}}
	return r
}

func TestCompare(t *testing.T) {
	cases := []struct {
		name        string
		baseline    string
		res         *schema.ReplayResult
		wantVerdict []string
		wantDiffs   [][]string
		wantRegress [][]string
	}{
		{"identical", "", result(resp(200, "a"), outcome("c", resp(200, "a"), "")), []string{"match"}, [][]string{nil}, [][]string{nil}},
		{"status differs", "", result(resp(200, "a"), outcome("c", resp(500, "a"), "")), []string{"mismatch"}, [][]string{{"status"}}, [][]string{{"status"}}},
		{"text body differs", "", result(resp(200, "a"), outcome("c", resp(200, "b"), "")), []string{"mismatch"}, [][]string{{"body:text"}}, [][]string{{"body:text"}}},
		{"both differ", "", result(resp(200, "a"), outcome("c", resp(404, "xx"), "")), []string{"mismatch"},
			[][]string{{"status", "body:text"}}, [][]string{{"status", "body:text"}}},
		{"json field differs", "", result(jsonResp(200, `{"id":7,"name":"a"}`), outcome("c", jsonResp(200, `{"id":7,"name":"b"}`), "")),
			[]string{"mismatch"}, [][]string{{"body:$.name"}}, [][]string{{"body:$.name"}}},
		{"json equal but reordered keys", "", result(jsonResp(200, `{"id":7,"name":"a"}`), outcome("c", jsonResp(200, `{"name":"a","id":7.0}`), "")),
			[]string{"match"}, [][]string{nil}, [][]string{nil}},
		{"target error", "", result(resp(200, "a"), outcome("c", nil, "connection refused")), []string{"target_error"}, [][]string{nil}, [][]string{nil}},
		{"no production response", "", result(nil, outcome("c", resp(200, "a"), "")), []string{"no_production"}, [][]string{nil}, [][]string{nil}},
		{"two targets", "", result(resp(200, "a"), outcome("c", resp(200, "a"), ""), outcome("b", resp(201, "a"), "")),
			[]string{"match", "mismatch"}, [][]string{nil, {"status"}}, [][]string{nil, {"status"}}},
		// The baseline differs from production on $.at too: noise. $.id
		// differs only on the candidate: a regression.
		{"baseline noise", "base", result(jsonResp(200, `{"id":7,"at":"x"}`),
			outcome("cand", jsonResp(200, `{"id":7,"at":"y"}`), ""), outcome("base", jsonResp(200, `{"id":7,"at":"z"}`), "")),
			[]string{"noise_only", "noise_only"}, [][]string{{"body:$.at"}, {"body:$.at"}}, [][]string{nil, nil}},
		{"baseline noise and a regression", "base", result(jsonResp(200, `{"id":7,"at":"x"}`),
			outcome("cand", jsonResp(200, `{"id":8,"at":"y"}`), ""), outcome("base", jsonResp(200, `{"id":7,"at":"z"}`), "")),
			[]string{"mismatch", "noise_only"}, [][]string{{"body:$.id", "body:$.at"}, {"body:$.at"}}, [][]string{{"body:$.id"}, nil}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := NewComparer(CompareConfig{Baseline: tc.baseline})
			if err != nil {
				t.Fatal(err)
			}
			docs := c.Compare(tc.res)
			if len(docs) != len(tc.wantVerdict) {
				t.Fatalf("%d docs", len(docs))
			}
			for i, d := range docs {
				if d.Verdict != tc.wantVerdict[i] || !reflect.DeepEqual(d.Diffs, tc.wantDiffs[i]) || !reflect.DeepEqual(d.Regressions, tc.wantRegress[i]) {
					t.Errorf("doc %d (%s): verdict %s diffs %v regressions %v, want %s %v %v", i, d.Target, d.Verdict, d.Diffs, d.Regressions,
						tc.wantVerdict[i], tc.wantDiffs[i], tc.wantRegress[i])
				}
				if d.ID() != "ex1:"+d.Target || d.Path != "/users/7" || d.Method != "GET" || d.Route != "GET /users/{id}" {
					t.Errorf("doc %d: id %s path %s route %s", i, d.ID(), d.Path, d.Route)
				}
				if *d.LatencyMs.Target != 2.5 {
					t.Errorf("target latency %v", *d.LatencyMs.Target)
				}
				if wantRole := map[bool]string{true: "baseline", false: "candidate"}[d.Target == tc.baseline]; d.Role != wantRole {
					t.Errorf("doc %d: role %s, want %s", i, d.Role, wantRole)
				}
			}
		})
	}
	c, _ := NewComparer(CompareConfig{})
	d := c.Compare(result(resp(200, "a"), outcome("c", resp(200, "a"), "")))[0]
	if *d.LatencyMs.Production != 4 || *d.LatencyMs.Delta != -1.5 || *d.Status.Production != 200 || d.Timestamp.UnixNano() != 1_000_000_000 ||
		d.Body.Production != "a" {
		t.Errorf("production fields: latency %v delta %v status %v time %v body %q", *d.LatencyMs.Production, *d.LatencyMs.Delta,
			*d.Status.Production, d.Timestamp, d.Body.Production)
	}
	// A target error keeps its text and its kind (schema 1.1; empty from 1.0).
	o := outcome("c", nil, "dial tcp: connection refused")
	o.ErrorKind = "connection_refused"
	d = c.Compare(result(resp(200, "a"), o))[0]
	if d.Verdict != VerdictTargetError || d.Error != "dial tcp: connection refused" || d.ErrorKind != "connection_refused" {
		t.Errorf("target error doc: verdict %s error %q kind %q", d.Verdict, d.Error, d.ErrorKind)
	}
}

// TestLearnedNoise: a key the baseline shows on more than the configured
// share of a route's comparisons becomes noise for the candidate too.
func TestLearnedNoise(t *testing.T) {
	c, err := NewComparer(CompareConfig{Baseline: "base", Diff: diff.Config{NoiseShare: 0.5, NoiseMinSamples: 4}})
	if err != nil {
		t.Fatal(err)
	}
	// The baseline differs on $.n in 3 of 4 comparisons; the candidate
	// differs on $.n each time.
	var last []Doc
	for i := range 4 {
		base := `{"n":0}`
		if i > 0 {
			base = `{"n":1}`
		}
		last = c.Compare(result(jsonResp(200, `{"n":0}`), outcome("cand", jsonResp(200, `{"n":2}`), ""), outcome("base", jsonResp(200, base), "")))
	}
	if last[0].Verdict != "noise_only" || len(last[0].Noise) != 1 {
		t.Fatalf("4th comparison: verdict %s noise %v (the baseline differs too)", last[0].Verdict, last[0].Noise)
	}
	// A result without the baseline's outcome: only learned noise can
	// excuse $.n now.
	d := c.Compare(result(jsonResp(200, `{"n":0}`), outcome("cand", jsonResp(200, `{"n":2}`), "")))[0]
	if d.Verdict != "noise_only" || !reflect.DeepEqual(d.LearnedNoise, []string{"body:$.n"}) {
		t.Fatalf("verdict %s learned noise %v regressions %v, want noise_only by learned noise", d.Verdict, d.LearnedNoise, d.Regressions)
	}
	snap := c.Noise()
	if len(snap.Routes) != 1 || snap.Routes[0].Route != "GET /users/{id}" || snap.Routes[0].Keys[0].Key != "body:$.n" {
		t.Fatalf("noise snapshot %+v", snap)
	}
}

// fakeSource hands out its batches, then io.EOF. Fetch and Commit run on
// different goroutines in Run.
type fakeSource struct {
	mu        sync.Mutex
	batches   [][]stream.Record
	committed []stream.Record
	failAt    int // if > 0: the failAt-th Commit fails
	commits   int
}

func (s *fakeSource) Fetch(ctx context.Context) ([]stream.Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.batches) == 0 {
		return nil, io.EOF
	}
	b := s.batches[0]
	s.batches = s.batches[1:]
	return b, nil
}

func (s *fakeSource) Commit(_ context.Context, recs []stream.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.commits++; s.commits == s.failAt {
		return errors.New("broker gone")
	}
	s.committed = append(s.committed, recs...)
	return nil
}

// fakeIndexer answers from a table keyed by document id.
type fakeIndexer struct{ answers map[string]ItemOutcome }

func (f *fakeIndexer) Index(_ context.Context, docs []Doc) ([]ItemOutcome, error) {
	out := make([]ItemOutcome, len(docs))
	for i, d := range docs {
		out[i] = f.answers[d.ID()]
	}
	return out, nil
}

type fakeSink struct{ recs []stream.Record }

func (s *fakeSink) Publish(_ context.Context, recs ...stream.Record) error {
	s.recs = append(s.recs, recs...)
	return nil
}

func encoded(t *testing.T, r *schema.ReplayResult) stream.Record {
	v, h, err := schema.EncodeReplayResult(r)
	if err != nil {
		t.Fatal(err)
	}
	return stream.Record{Value: v, Headers: h}
}

func TestRunAccounting(t *testing.T) {
	ok := result(resp(200, "a"), outcome("c", resp(200, "a"), ""))
	dup := result(resp(200, "a"), outcome("c", resp(200, "a"), ""))
	dup.Exchange.Id = "dup"
	bad := result(resp(200, "a"), outcome("c", resp(200, "a"), ""))
	bad.Exchange.Id = "bad"
	src := &fakeSource{batches: [][]stream.Record{{encoded(t, ok), encoded(t, dup), {Value: []byte("garbage")}, encoded(t, bad)}}}
	dlq := &fakeSink{}
	idx := &fakeIndexer{answers: map[string]ItemOutcome{
		"ex1:c": {Created: true}, "dup:c": {Duplicate: true}, "bad:c": {Error: "mapper_parsing_exception"},
	}}
	a, err := New(Config{Source: src, Indexer: idx, DLQ: dlq, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, want := a.Stats(), (Stats{Fetched: 4, Indexed: 1, Duplicates: 1, Failed: 1, Undecodable: 1}); got != want {
		t.Fatalf("stats %+v, want %+v", got, want)
	}
	if len(dlq.recs) != 2 || len(src.committed) != 4 {
		t.Fatalf("dlq %d records, committed %d; want 2 and 4", len(dlq.recs), len(src.committed))
	}
}

// slowFirstIndexer holds the first batch it gets until a later batch has
// been indexed, so batches finish out of fetch order.
type slowFirstIndexer struct {
	mu      sync.Mutex
	calls   int
	release chan struct{}
}

func (x *slowFirstIndexer) Index(ctx context.Context, docs []Doc) ([]ItemOutcome, error) {
	x.mu.Lock()
	x.calls++
	first := x.calls == 1
	x.mu.Unlock()
	if first {
		select {
		case <-x.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	} else {
		select {
		case <-x.release:
		default:
			close(x.release)
		}
	}
	out := make([]ItemOutcome, len(docs))
	for i := range out {
		out[i].Created = true
	}
	return out, nil
}

// TestRunCommitOrder: with batches indexed concurrently and finishing out
// of order, commits still follow fetch order; a failed commit stops the
// run, and no later batch is committed.
func TestRunCommitOrder(t *testing.T) {
	batches := func() [][]stream.Record {
		var out [][]stream.Record
		for b := range 4 {
			r := result(resp(200, "a"), outcome("c", resp(200, "a"), ""))
			r.Exchange.Id = fmt.Sprintf("b%d", b)
			rec := encoded(t, r)
			rec.Offset = int64(b)
			out = append(out, []stream.Record{rec})
		}
		return out
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))

	src := &fakeSource{batches: batches()}
	a, err := New(Config{Source: src, Indexer: &slowFirstIndexer{release: make(chan struct{})}, Concurrency: 2, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	var order []int64
	for _, r := range src.committed {
		order = append(order, r.Offset)
	}
	if !reflect.DeepEqual(order, []int64{0, 1, 2, 3}) {
		t.Fatalf("committed offsets %v, want 0 1 2 3 in order", order)
	}

	src = &fakeSource{batches: batches(), failAt: 2}
	a, err = New(Config{Source: src, Indexer: &slowFirstIndexer{release: make(chan struct{})}, Concurrency: 2, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "broker gone") {
		t.Fatalf("Run returned %v, want the commit error", err)
	}
	if len(src.committed) != 1 || src.committed[0].Offset != 0 {
		t.Fatalf("committed %d records, want only batch 0 (batch 1's commit failed)", len(src.committed))
	}
}

// failingSource hands out its batches, then fails.
type failingSource struct{ fakeSource }

func (s *failingSource) Fetch(ctx context.Context) ([]stream.Record, error) {
	recs, err := s.fakeSource.Fetch(ctx)
	if errors.Is(err, io.EOF) {
		return nil, errors.New("broker gone")
	}
	return recs, err
}

// TestRunFetchFails: when fetching fails, the batches fetched before are
// still indexed and committed, and Run returns the error.
func TestRunFetchFails(t *testing.T) {
	var batches [][]stream.Record
	for b := range 3 {
		r := result(resp(200, "a"), outcome("c", resp(200, "a"), ""))
		r.Exchange.Id = fmt.Sprintf("b%d", b)
		batches = append(batches, []stream.Record{encoded(t, r)})
	}
	src := &failingSource{fakeSource{batches: batches}}
	idx := &fakeIndexer{answers: map[string]ItemOutcome{"b0:c": {Created: true}, "b1:c": {Created: true}, "b2:c": {Created: true}}}
	a, err := New(Config{Source: src, Indexer: idx, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "broker gone") {
		t.Fatalf("Run returned %v, want the fetch error", err)
	}
	if got := a.Stats(); len(src.committed) != 3 || got.Indexed != 3 {
		t.Fatalf("committed %d records, stats %+v; want the 3 fetched before the failure indexed and committed", len(src.committed), got)
	}
}
