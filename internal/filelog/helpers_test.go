package filelog

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/tapline/tapline/internal/stream"
	"github.com/tapline/tapline/schema"
)

// t0 is the time of record 0 in the generated logs.
var t0 = time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)

// quiet is a logger for tests that provoke warnings on purpose.
var quiet = slog.New(slog.DiscardHandler)

// genRecord is the record stored at offset off in generated logs: its
// content follows from the offset, so any record read back can be checked.
func genRecord(off int64) stream.Record {
	rec := stream.Record{
		Key:   []byte(fmt.Sprintf("session-%d", off%13)),
		Value: genValue(off, int(off*37%300)),
		Time:  t0.Add(time.Duration(off) * time.Millisecond),
		Headers: []schema.RecordHeader{
			{Key: "tapline-schema", Value: []byte("exchange/v1")},
			{Key: "n", Value: []byte(fmt.Sprint(off))},
		},
	}
	if off%5 == 0 {
		rec.Headers = append(rec.Headers, schema.RecordHeader{Key: "n", Value: nil}) // a repeat, nil value
	}
	if off%11 == 0 {
		rec.Key = nil
	}
	return rec
}

// genValue is n ≤ 1 MiB bytes that depend on off: a slice of a fixed
// random pool (cheap to make and to check, even under the race detector).
func genValue(off int64, n int) []byte {
	pool := randomPool()
	start := int(uint64(off) * 2654435761 % uint64(len(pool)-n+1))
	return pool[start : start+n : start+n]
}

var randomPool = sync.OnceValue(func() []byte {
	rng := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, 1<<20)
	for i := 0; i < len(b); i += 8 {
		binary.LittleEndian.PutUint64(b[i:], rng.Uint64())
	}
	return b
})

func genRecords(from, n int64) []stream.Record {
	recs := make([]stream.Record, n)
	for i := range recs {
		recs[i] = genRecord(from + int64(i))
	}
	return recs
}

// sameRecord says how got differs from want, comparing what the log
// stores: key, value and header values (nil apart from empty), header
// order, and time.
func sameRecord(got, want stream.Record) error {
	sameBytes := func(a, b []byte) bool { return (a == nil) == (b == nil) && bytes.Equal(a, b) }
	switch {
	case !sameBytes(got.Key, want.Key):
		return fmt.Errorf("key %q, want %q", got.Key, want.Key)
	case !sameBytes(got.Value, want.Value):
		return fmt.Errorf("value of %d bytes differs from the %d written", len(got.Value), len(want.Value))
	case !got.Time.Equal(want.Time):
		return fmt.Errorf("time %s, want %s", got.Time, want.Time)
	case len(got.Headers) != len(want.Headers):
		return fmt.Errorf("%d headers, want %d", len(got.Headers), len(want.Headers))
	}
	for i := range got.Headers {
		if got.Headers[i].Key != want.Headers[i].Key || !sameBytes(got.Headers[i].Value, want.Headers[i].Value) {
			return fmt.Errorf("header %d is %q=%q, want %q=%q", i, got.Headers[i].Key, got.Headers[i].Value, want.Headers[i].Key, want.Headers[i].Value)
		}
	}
	return nil
}

func openWriter(t testing.TB, dir string, cfg WriterConfig) *Writer {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quiet
	}
	w, err := Open(dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

func publish(t testing.TB, w *Writer, recs ...stream.Record) {
	t.Helper()
	if err := w.Publish(context.Background(), recs...); err != nil {
		t.Fatal(err)
	}
}

// writeLog writes n generated records to a new log in dir in batches of
// batch, and closes the writer.
func writeLog(t testing.TB, dir string, cfg WriterConfig, n, batch int64) {
	t.Helper()
	w := openWriter(t, dir, cfg)
	for off := int64(0); off < n; off += batch {
		publish(t, w, genRecords(off, min(batch, n-off))...)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

func newReader(t testing.TB, dir string, cfg ReaderConfig) *Reader {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quiet
	}
	r, err := NewReader(dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// readAll fetches until io.EOF.
func readAll(t testing.TB, r *Reader) []stream.Record {
	t.Helper()
	var out []stream.Record
	for {
		batch, err := r.Fetch(context.Background())
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, batch...)
	}
}

// checkGenerated checks that recs are the generated records from offset
// first on, in order.
func checkGenerated(t testing.TB, recs []stream.Record, first int64) {
	t.Helper()
	for i, rec := range recs {
		off := first + int64(i)
		if rec.Offset != off || rec.Partition != 0 {
			t.Fatalf("record %d: partition %d offset %d, want 0 and %d", i, rec.Partition, rec.Offset, off)
		}
		if err := sameRecord(rec, genRecord(off)); err != nil {
			t.Fatalf("record at offset %d: %v", off, err)
		}
	}
}

func fileSize(t testing.TB, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}
