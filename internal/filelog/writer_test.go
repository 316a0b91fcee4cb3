package filelog

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tapline/tapline/internal/stream"
	"github.com/tapline/tapline/schema"
)

// TestRoundTrip stores records of every shape and reads them back as
// they were written.
func TestRoundTrip(t *testing.T) {
	hs := func(kv ...string) []schema.RecordHeader {
		var out []schema.RecordHeader
		for i := 0; i < len(kv); i += 2 {
			out = append(out, schema.RecordHeader{Key: kv[i], Value: []byte(kv[i+1])})
		}
		return out
	}
	cases := []struct {
		name string
		rec  stream.Record
	}{
		{"plain", stream.Record{Key: []byte("k"), Value: []byte("v"), Time: t0}},
		{"nil key and value", stream.Record{Time: t0}},
		{"empty key and value", stream.Record{Key: []byte{}, Value: []byte{}, Time: t0}},
		{"headers in order, with repeats", stream.Record{Value: []byte("x"), Time: t0, Headers: hs("b", "1", "a", "2", "b", "3", "", "")}},
		{"nil and empty header values", stream.Record{Time: t0, Headers: []schema.RecordHeader{{Key: "nil"}, {Key: "empty", Value: []byte{}}}}},
		{"binary", stream.Record{Key: []byte{0, 0xff, 0x80}, Value: genValue(7, 1000), Time: t0}},
		{"bigger than the read-ahead", stream.Record{Key: []byte("big"), Value: genValue(8, 3*readAhead+5), Time: t0}},
		{"time before 1970", stream.Record{Value: []byte("old"), Time: time.Date(1901, 1, 2, 3, 4, 5, 6, time.UTC)}},
		{"nanoseconds", stream.Record{Value: []byte("ns"), Time: t0.Add(123456789 * time.Nanosecond)}},
	}
	dir := t.TempDir()
	w := openWriter(t, dir, WriterConfig{})
	for _, tc := range cases {
		publish(t, w, tc.rec)
	}
	got := readAll(t, newReader(t, dir, ReaderConfig{}))
	if len(got) != len(cases) {
		t.Fatalf("read %d records, want %d", len(got), len(cases))
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got[i].Offset != int64(i) || got[i].Partition != 0 {
				t.Errorf("partition %d offset %d, want 0 and %d", got[i].Partition, got[i].Offset, i)
			}
			if err := sameRecord(got[i], tc.rec); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestZeroTimeIsStamped stores a record without a time with the time it
// was published.
func TestZeroTimeIsStamped(t *testing.T) {
	dir := t.TempDir()
	w := openWriter(t, dir, WriterConfig{})
	before := time.Now()
	publish(t, w, stream.Record{Value: []byte("now")})
	after := time.Now()
	got := readAll(t, newReader(t, dir, ReaderConfig{}))
	if len(got) != 1 || got[0].Time.Before(before) || got[0].Time.After(after) {
		t.Fatalf("got %v, want one record stamped between %s and %s", got, before, after)
	}
}

// TestRotation spreads records over several segments named by their first
// offset; offsets run on across segments and across reopening.
func TestRotation(t *testing.T) {
	dir := t.TempDir()
	cfg := WriterConfig{SegmentBytes: 8 << 10, IndexInterval: 1 << 10}
	writeLog(t, dir, cfg, 500, 7)
	w := openWriter(t, dir, cfg)
	if st := w.Stats(); st.NextOffset != 500 || st.Segments < 5 {
		t.Fatalf("reopened: next offset %d, %d segments; want 500 and at least 5", st.NextOffset, st.Segments)
	}
	publish(t, w, genRecords(500, 100)...)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	bases, err := listSegments(dir)
	if err != nil {
		t.Fatal(err)
	}
	for i, base := range bases {
		size := fileSize(t, segmentPath(dir, base, logExt))
		if i < len(bases)-1 && size > cfg.SegmentBytes {
			t.Errorf("segment %d is %d bytes, more than %d", base, size, cfg.SegmentBytes)
		}
		if _, err := os.Stat(segmentPath(dir, base, indexExt)); err != nil {
			t.Errorf("segment %d has no index: %v", base, err)
		}
	}
	ents, _ := os.ReadDir(dir)
	var names []string
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".log") {
			names = append(names, e.Name())
		}
	}
	for i, base := range bases {
		if want := fmt.Sprintf("%020d.log", base); names[i] != want {
			t.Errorf("segment file %s, want %s", names[i], want)
		}
		f, err := openSegment(dir, base)
		if err != nil {
			t.Fatal(err)
		}
		rec, err := newScanner(f, f.Name(), fileHeaderLen, base, nil).record()
		f.Close()
		if err != nil || rec.Offset != base {
			t.Errorf("first record of segment %s: offset %d, %v", names[i], rec.Offset, err)
		}
	}
	got := readAll(t, newReader(t, dir, ReaderConfig{MaxBatch: 33}))
	if len(got) != 600 {
		t.Fatalf("read %d records, want 600", len(got))
	}
	checkGenerated(t, got, 0)
}

// TestRetention deletes whole old segments, never the one being written,
// and readers then start at the oldest offset left.
func TestRetention(t *testing.T) {
	cases := []struct {
		name string
		cfg  WriterConfig
		age  bool // make all but the newest segment two hours old before reopening
	}{
		{"by size", WriterConfig{SegmentBytes: 4 << 10, RetainBytes: 16 << 10}, false},
		{"by age", WriterConfig{SegmentBytes: 4 << 10, RetainAge: time.Hour}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeLog(t, dir, WriterConfig{SegmentBytes: tc.cfg.SegmentBytes}, 400, 10)
			before, _ := listSegments(dir)
			if tc.age {
				old := time.Now().Add(-2 * time.Hour)
				for _, base := range before[:len(before)-1] {
					os.Chtimes(segmentPath(dir, base, logExt), old, old)
				}
			}
			tc.cfg.Logger = quiet
			w := openWriter(t, dir, tc.cfg)
			publish(t, w, genRecords(400, 200)...) // rotates, applying retention again
			st := w.Stats()
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}

			after, _ := listSegments(dir)
			if st.SegmentsDeleted == 0 || after[0] == 0 {
				t.Fatalf("nothing deleted: %d segments before, %v after", len(before), after)
			}
			var total int64
			for _, base := range after {
				total += fileSize(t, segmentPath(dir, base, logExt))
				if _, err := os.Stat(segmentPath(dir, base, indexExt)); err != nil {
					t.Errorf("segment %d lost its index", base)
				}
			}
			if tc.cfg.RetainBytes > 0 && total > tc.cfg.RetainBytes+tc.cfg.SegmentBytes {
				t.Errorf("log is %d bytes, more than %d + one segment", total, tc.cfg.RetainBytes)
			}
			if tc.age && after[0] < before[len(before)-1] {
				t.Errorf("old segments kept: %v (the newest old one was %d)", after, before[len(before)-1])
			}
			ents, _ := os.ReadDir(dir)
			for _, e := range ents {
				if base, ok := parseSegmentName(e.Name(), indexExt); ok && base < after[0] {
					t.Errorf("index %s of a deleted segment left behind", e.Name())
				}
			}

			got := readAll(t, newReader(t, dir, ReaderConfig{}))
			if len(got) != int(600-after[0]) {
				t.Fatalf("read %d records, want %d (from offset %d)", len(got), 600-after[0], after[0])
			}
			checkGenerated(t, got, after[0])
		})
	}
}

// TestSecondWriterRefused: a log has one writer.
func TestSecondWriterRefused(t *testing.T) {
	dir := t.TempDir()
	w := openWriter(t, dir, WriterConfig{})
	_, err := Open(dir, WriterConfig{Logger: quiet})
	if err == nil || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "already open for writing") {
		t.Fatalf("second Open: %v; want an error naming %s", err, dir)
	}
	if !strings.Contains(err.Error(), "process ") {
		t.Errorf("error does not name the holder: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	openWriter(t, dir, WriterConfig{}) // free again
}

// TestPublishRefusesWholeBatch: a record that cannot be stored fails its
// batch before anything is written.
func TestPublishRefusesWholeBatch(t *testing.T) {
	cases := []struct {
		name string
		bad  stream.Record
	}{
		{"too many headers", stream.Record{Headers: make([]schema.RecordHeader, MaxHeaders+1)}},
		{"too big", stream.Record{Value: make([]byte, MaxRecordBytes)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			w := openWriter(t, dir, WriterConfig{})
			err := w.Publish(context.Background(), genRecord(0), tc.bad)
			if err == nil || !strings.Contains(err.Error(), "record 1") {
				t.Fatalf("Publish: %v; want an error naming record 1", err)
			}
			if st := w.Stats(); st.NextOffset != 0 || st.Published != 0 {
				t.Fatalf("after a refused batch: %+v", st)
			}
			publish(t, w, genRecord(0)) // and the writer goes on
			checkGenerated(t, readAll(t, newReader(t, dir, ReaderConfig{})), 0)
		})
	}
}

// TestEnqueue writes queued records in the background; Close flushes
// them. A full queue refuses and counts.
func TestEnqueue(t *testing.T) {
	dir := t.TempDir()
	w := openWriter(t, dir, WriterConfig{QueueSize: 8, SyncInterval: time.Millisecond})

	var n int64
	for ; n < 100; n++ {
		if err := w.EnqueueWait(context.Background(), genRecord(n)); err != nil {
			t.Fatal(err)
		}
	}
	// Stall the background writer to fill the queue. It may take one
	// more batch out of the queue before it blocks.
	w.mu.Lock()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var dropped uint64
	for {
		for w.Enqueue(genRecord(n)) {
			n++
		}
		dropped++
		err := w.EnqueueWait(ctx, genRecord(n))
		if err == nil {
			n++ // there was room again
			continue
		}
		if !errors.Is(err, context.Canceled) {
			t.Errorf("EnqueueWait with a done context: %v", err)
		}
		break
	}
	w.mu.Unlock()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if w.Enqueue(genRecord(n)) {
		t.Error("Enqueue after Close took the record")
	}
	st := w.Stats()
	if st.Published != uint64(n) || st.Dropped != dropped+1 || st.Queued != 0 || st.Failed != 0 {
		t.Errorf("stats %+v; want %d published, %d dropped", st, n, dropped+1)
	}
	got := readAll(t, newReader(t, dir, ReaderConfig{}))
	if int64(len(got)) != n {
		t.Fatalf("read %d records, want %d", len(got), n)
	}
	checkGenerated(t, got, 0)
}

// TestRebuildIndex: missing and truncated indexes are rebuilt by Open
// and time lookups are cheap again.
func TestRebuildIndex(t *testing.T) {
	dir := t.TempDir()
	cfg := WriterConfig{SegmentBytes: 32 << 10, IndexInterval: 1 << 10}
	writeLog(t, dir, cfg, 2000, 50)
	bases, _ := listSegments(dir)
	os.Remove(segmentPath(dir, bases[1], indexExt))
	os.Truncate(segmentPath(dir, bases[2], indexExt), fileHeaderLen+indexEntryLen+5)
	os.Remove(segmentPath(dir, bases[len(bases)-1], indexExt))

	since := genRecord(1500).Time
	r := newReader(t, dir, ReaderConfig{Since: since})
	checkGenerated(t, readAll(t, r), 1500)
	withoutIndex := r.Stats().Decoded

	w := openWriter(t, dir, cfg)
	w.Close()
	for _, base := range bases {
		if _, err := os.Stat(segmentPath(dir, base, indexExt)); err != nil {
			t.Fatalf("index of segment %d not rebuilt: %v", base, err)
		}
	}
	r = newReader(t, dir, ReaderConfig{Since: since})
	checkGenerated(t, readAll(t, r), 1500)
	if d := r.Stats().Decoded; d >= withoutIndex || d > 500+100 {
		t.Errorf("decoded %d records with rebuilt indexes (%d without) to read 500", d, withoutIndex)
	}
}
