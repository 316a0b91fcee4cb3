package report

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tapline/tapline/internal/filelog"
	"github.com/tapline/tapline/internal/stream"
	"github.com/tapline/tapline/schema"
)

// TestReadResults: the local path. Replay results written to a file log
// (as `tapline replay --to file://dir` leaves them) and read back with
// filelog.NewReader give the same Summary as the documents the analyzer
// would have indexed; a record that does not decode is counted, not
// fatal.
func TestReadResults(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	w, err := filelog.Open(dir, filelog.WriterConfig{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	var recs []stream.Record
	for i, r := range testResults() {
		v, h, err := schema.EncodeReplayResult(r)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, stream.Record{Key: []byte(r.GetExchange().GetId()), Value: v, Headers: h})
		if i == 10 {
			recs = append(recs, stream.Record{Value: []byte("not a replay result")})
		}
	}
	if err := w.Publish(ctx, recs...); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	r, err := filelog.NewReader(dir, filelog.ReaderConfig{MaxBatch: 7, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cmp, err := testComparer()
	if err != nil {
		t.Fatal(err)
	}
	acc := NewAccumulator(Options{})
	if err := acc.ReadResults(ctx, r, cmp); err != nil {
		t.Fatal(err)
	}
	got := acc.Summary()
	want := FromDocs(slices.Values(testDocs(t)), Options{})
	want.Undecodable = 1
	assertSummary(t, got, want, 0)
}

type failingFetcher struct{ calls int }

func (f *failingFetcher) Fetch(context.Context) ([]stream.Record, error) {
	f.calls++
	return nil, errors.New("disk on fire")
}

func TestReadResultsError(t *testing.T) {
	cmp, err := testComparer()
	if err != nil {
		t.Fatal(err)
	}
	err = NewAccumulator(Options{}).ReadResults(context.Background(), &failingFetcher{}, cmp)
	if err == nil || !strings.Contains(err.Error(), "reading replay results: disk on fire") {
		t.Fatalf("error %v", err)
	}
}
