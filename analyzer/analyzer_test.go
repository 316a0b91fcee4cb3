package analyzer

import (
	"context"
	"io"
	"log/slog"
	"reflect"
	"testing"

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

func TestCompare(t *testing.T) {
	cases := []struct {
		name        string
		res         *schema.ReplayResult
		wantVerdict []string
		wantDiffs   [][]string
	}{
		{"identical", result(resp(200, "a"), outcome("c", resp(200, "a"), "")), []string{"match"}, [][]string{nil}},
		{"status differs", result(resp(200, "a"), outcome("c", resp(500, "a"), "")), []string{"mismatch"}, [][]string{{"status"}}},
		{"body differs", result(resp(200, "a"), outcome("c", resp(200, "b"), "")), []string{"mismatch"}, [][]string{{"body"}}},
		{"both differ", result(resp(200, "a"), outcome("c", resp(404, "xx"), "")), []string{"mismatch"}, [][]string{{"status", "body"}}},
		{"target error", result(resp(200, "a"), outcome("c", nil, "connection refused")), []string{"target_error"}, [][]string{nil}},
		{"no production response", result(nil, outcome("c", resp(200, "a"), "")), []string{"no_production"}, [][]string{nil}},
		{"two targets", result(resp(200, "a"), outcome("c", resp(200, "a"), ""), outcome("b", resp(201, "a"), "")),
			[]string{"match", "mismatch"}, [][]string{nil, {"status"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			docs := Compare(tc.res)
			if len(docs) != len(tc.wantVerdict) {
				t.Fatalf("%d docs", len(docs))
			}
			for i, d := range docs {
				if d.Verdict != tc.wantVerdict[i] || !reflect.DeepEqual(d.Diffs, tc.wantDiffs[i]) {
					t.Errorf("doc %d: verdict %s diffs %v, want %s %v", i, d.Verdict, d.Diffs, tc.wantVerdict[i], tc.wantDiffs[i])
				}
				if d.ID() != "ex1:"+d.Target || d.Path != "/users/7" || d.Method != "GET" {
					t.Errorf("doc %d: id %s path %s", i, d.ID(), d.Path)
				}
				if *d.LatencyMs.Target != 2.5 {
					t.Errorf("target latency %v", *d.LatencyMs.Target)
				}
			}
		})
	}
	d := Compare(result(resp(200, "a"), outcome("c", resp(200, "a"), "")))[0]
	if *d.LatencyMs.Production != 4 || *d.Status.Production != 200 || d.Timestamp.UnixNano() != 1_000_000_000 {
		t.Errorf("production fields: latency %v status %v time %v", *d.LatencyMs.Production, *d.Status.Production, d.Timestamp)
	}
}

type fakeSource struct {
	batches   [][]stream.Record
	committed []stream.Record
}

func (s *fakeSource) Fetch(ctx context.Context) ([]stream.Record, error) {
	if len(s.batches) == 0 {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	b := s.batches[0]
	s.batches = s.batches[1:]
	return b, nil
}

func (s *fakeSource) Commit(_ context.Context, recs []stream.Record) error {
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

func TestHandleAccounting(t *testing.T) {
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
	ctx, cancel := context.WithCancel(context.Background())
	if err := a.handle(ctx, src.batches[0]); err != nil {
		t.Fatal(err)
	}
	cancel()
	if got, want := a.Stats(), (Stats{Indexed: 1, Duplicates: 1, Failed: 1, Undecodable: 1}); got != want {
		t.Fatalf("stats %+v, want %+v", got, want)
	}
	if len(dlq.recs) != 2 || len(src.committed) != 4 {
		t.Fatalf("dlq %d records, committed %d; want 2 and 4", len(dlq.recs), len(src.committed))
	}
}
