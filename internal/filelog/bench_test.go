package filelog

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/tapline/tapline/internal/stream"
	"github.com/tapline/tapline/schema"
)

// benchRecords is n records of about 1 KiB, like small HTTP exchanges.
func benchRecords(from, n int) []stream.Record {
	recs := make([]stream.Record, n)
	for i := range recs {
		off := int64(from + i)
		recs[i] = stream.Record{
			Key:     []byte("10.0.0.7:51234"),
			Value:   genValue(off, 1024),
			Headers: []schema.RecordHeader{{Key: "tapline-schema", Value: []byte("exchange/v1")}},
			Time:    t0.Add(time.Duration(off) * time.Millisecond),
		}
	}
	return recs
}

// BenchmarkAppend publishes batches of 100 records of 1 KiB, each batch
// written and fsynced.
func BenchmarkAppend(b *testing.B) {
	w := openWriter(b, b.TempDir(), WriterConfig{})
	recs := benchRecords(0, 100)
	b.SetBytes(100 * 1024)
	b.ReportAllocs()
	for b.Loop() {
		if err := w.Publish(context.Background(), recs...); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*100)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkEnqueue queues records of 1 KiB one by one, as the recorder
// does; the background writer fsyncs once a second.
func BenchmarkEnqueue(b *testing.B) {
	w := openWriter(b, b.TempDir(), WriterConfig{})
	recs := benchRecords(0, 1000)
	ctx := context.Background()
	b.SetBytes(1024)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := w.EnqueueWait(ctx, recs[i%len(recs)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
	if err := w.Close(); err != nil { // the queue is written out
		b.Fatal(err)
	}
}

// BenchmarkRead reads a log of 20,000 records of 1 KiB from start to end.
func BenchmarkRead(b *testing.B) {
	const n = 20000
	dir := b.TempDir()
	w := openWriter(b, dir, WriterConfig{SegmentBytes: 4 << 20})
	for off := 0; off < n; off += 500 {
		if err := w.Publish(context.Background(), benchRecords(off, 500)...); err != nil {
			b.Fatal(err)
		}
	}
	w.Close()
	b.SetBytes(n * 1024)
	b.ReportAllocs()
	for b.Loop() {
		r, err := NewReader(dir, ReaderConfig{MaxBatch: 500, Logger: quiet})
		if err != nil {
			b.Fatal(err)
		}
		got := 0
		for {
			batch, err := r.Fetch(context.Background())
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			got += len(batch)
		}
		r.Close()
		if got != n {
			b.Fatalf("read %d records, want %d", got, n)
		}
	}
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkSeekTime opens a Reader at a time in the middle of a log of
// 100 segments: the index lookup, not a scan.
func BenchmarkSeekTime(b *testing.B) {
	const n = 50000
	dir := b.TempDir()
	w := openWriter(b, dir, WriterConfig{SegmentBytes: 512 << 10})
	for off := 0; off < n; off += 1000 {
		if err := w.Publish(context.Background(), benchRecords(off, 1000)...); err != nil {
			b.Fatal(err)
		}
	}
	w.Close()
	since := t0.Add(n / 2 * time.Millisecond)
	b.ReportAllocs()
	for b.Loop() {
		r, err := NewReader(dir, ReaderConfig{Since: since, MaxBatch: 1, Logger: quiet})
		if err != nil {
			b.Fatal(err)
		}
		batch, err := r.Fetch(context.Background())
		if err != nil || batch[0].Offset != n/2 {
			b.Fatalf("first record %v, %v", batch, err)
		}
		r.Close()
	}
}
