package filelog

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/tapline/tapline/internal/stream"
)

// ms is the time of a generated record at offset n.
func ms(n int64) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }

// TestTimeWindow reads Since/Until windows of a log of several segments:
// exactly the records inside, found through the index (few records
// decoded), the right Records() bound.
func TestTimeWindow(t *testing.T) {
	const n = 5000
	cfg := WriterConfig{SegmentBytes: 16 << 10, IndexInterval: 1 << 10}
	ordered := t.TempDir()
	writeLog(t, ordered, cfg, n, 100)
	// A second log whose times are out of order: every tenth record is
	// 7ms older than its neighbours, as with clocks of several hosts.
	jittered := t.TempDir()
	jitter := func(off int64) stream.Record {
		rec := genRecord(off)
		if off%10 == 3 {
			rec.Time = rec.Time.Add(-7 * time.Millisecond)
		}
		return rec
	}
	w := openWriter(t, jittered, cfg)
	for off := int64(0); off < n; off += 100 {
		var recs []stream.Record
		for i := off; i < off+100; i++ {
			recs = append(recs, jitter(i))
		}
		publish(t, w, recs...)
	}
	w.Close()
	if segs, _ := listSegments(ordered); len(segs) < 10 {
		t.Fatalf("only %d segments", len(segs))
	}

	cases := []struct {
		name         string
		since, until time.Time
	}{
		{"a window in the middle", ms(1000), ms(1100)},
		{"since only", ms(4900), time.Time{}},
		{"until only", time.Time{}, ms(50)},
		{"one record", ms(2500), ms(2500).Add(time.Nanosecond)},
		{"between two records", ms(2500).Add(time.Nanosecond), ms(2501)},
		{"before the first record", t0.Add(-time.Hour), t0.Add(-time.Minute)},
		{"after the last record", ms(n + 10), time.Time{}},
		{"everything", t0.Add(-time.Hour), ms(n + 10)},
	}
	for _, log := range []struct {
		name string
		dir  string
		gen  func(int64) stream.Record
	}{{"ordered", ordered, genRecord}, {"jittered", jittered, jitter}} {
		for _, tc := range cases {
			t.Run(log.name+"/"+tc.name, func(t *testing.T) {
				want, skipped, span := window(log.gen, n, tc.since, tc.until)
				r := newReader(t, log.dir, ReaderConfig{Since: tc.since, Until: tc.until, MaxBatch: 17})
				if got, known := r.Records(); !known || got != span {
					t.Errorf("Records() = %d, %v; want %d", got, known, span)
				}
				got := readAll(t, r)
				if len(got) != len(want) {
					t.Fatalf("read %d records, want %d", len(got), len(want))
				}
				for i := range got {
					if got[i].Offset != want[i] {
						t.Fatalf("record %d has offset %d, want %d", i, got[i].Offset, want[i])
					}
					if err := sameRecord(got[i], log.gen(want[i])); err != nil {
						t.Fatalf("offset %d: %v", want[i], err)
					}
				}
				st := r.Stats()
				if st.Skipped != skipped {
					t.Errorf("skipped %d, want %d", st.Skipped, skipped)
				}
				// The index leads to the start: besides the window, at most
				// a few index intervals of records are decoded, not the
				// thousands before it.
				if slack := int64(100); st.Decoded > span+slack {
					t.Errorf("decoded %d records for a window of %d offsets: the reader scanned", st.Decoded, span)
				}
			})
		}
	}
}

// window computes by brute force what a Reader returns: the offsets from
// the first record with time ≥ since to the first with time ≥ until,
// leaving out those before since (counted in skipped); span is the
// number of offsets from the start to the stop.
func window(gen func(int64) stream.Record, n int64, since, until time.Time) (want []int64, skipped, span int64) {
	start := int64(0)
	for start < n && gen(start).Time.Before(since) {
		start++
	}
	stop := start
	for ; stop < n; stop++ {
		tm := gen(stop).Time
		if !until.IsZero() && !tm.Before(until) {
			break
		}
		if tm.Before(since) {
			skipped++
		} else {
			want = append(want, stop)
		}
	}
	return want, skipped, stop - start
}

// TestFollow reads records that a writer appends while the reader waits.
func TestFollow(t *testing.T) {
	dir := t.TempDir()
	w := openWriter(t, dir, WriterConfig{SegmentBytes: 8 << 10})
	r := newReader(t, dir, ReaderConfig{Follow: true, PollInterval: time.Millisecond, MaxBatch: 50})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // only against a hang
	defer cancel()

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for off := int64(0); off < 300; off += 10 {
			if err := w.Publish(ctx, genRecords(off, 10)...); err != nil {
				t.Error(err)
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	var got []stream.Record
	for len(got) < 300 {
		batch, err := r.Fetch(ctx)
		if err != nil {
			t.Fatalf("after %d records: %v", len(got), err)
		}
		got = append(got, batch...)
	}
	wg.Wait()
	checkGenerated(t, got, 0)
	if len(got) != 300 {
		t.Fatalf("read %d records, want 300", len(got))
	}
}

// TestPartialRecord: a record whose bytes are only partly in the file is
// not read, by a following reader or any other, until it is complete.
func TestPartialRecord(t *testing.T) {
	for _, split := range []int{1, 4, recordHeaderLen, recordHeaderLen + 3, -1} {
		t.Run("", func(t *testing.T) {
			dir := t.TempDir()
			writeLog(t, dir, WriterConfig{}, 10, 10)
			rec := genRecord(10)
			b := appendRecord(nil, &rec, 10, rec.Time.UnixNano())
			if split < 0 {
				split = len(b) / 2
			}
			path := segmentPath(dir, 0, logExt)
			appendFile(t, path, b[:split])

			if got := readAll(t, newReader(t, dir, ReaderConfig{})); len(got) != 10 {
				t.Fatalf("reader that does not follow read %d records, want the 10 complete ones", len(got))
			}
			r := newReader(t, dir, ReaderConfig{Follow: true, PollInterval: time.Millisecond})
			got, err := r.Fetch(context.Background())
			if err != nil || len(got) != 10 {
				t.Fatalf("first fetch: %d records, %v", len(got), err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			got, err = r.Fetch(ctx)
			cancel()
			if !errors.Is(err, context.DeadlineExceeded) || len(got) != 0 {
				t.Fatalf("fetch with half a record in the file: %d records, %v; want none and the deadline", len(got), err)
			}

			appendFile(t, path, b[split:])
			got, err = r.Fetch(context.Background())
			if err != nil || len(got) != 1 {
				t.Fatalf("fetch after the rest was written: %d records, %v", len(got), err)
			}
			checkGenerated(t, got, 10)
			if st := r.Stats(); st.Corrupt != 0 || st.Lost != 0 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

func appendFile(t *testing.T, path string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

// TestCursor commits positions and resumes after the last commit.
func TestCursor(t *testing.T) {
	dir := t.TempDir()
	writeLog(t, dir, WriterConfig{SegmentBytes: 4 << 10}, 100, 10)
	ctx := context.Background()

	r := newReader(t, dir, ReaderConfig{Cursor: "replay-1", MaxBatch: 10})
	for range 3 {
		batch, err := r.Fetch(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Commit(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	r.Fetch(ctx) // fetched, not committed: delivered again
	r.Close()

	r = newReader(t, dir, ReaderConfig{Cursor: "replay-1"})
	got := readAll(t, r)
	if len(got) != 70 {
		t.Fatalf("resumed reader read %d records, want 70", len(got))
	}
	checkGenerated(t, got, 30)

	// Another name has its own position; no name, no commit.
	if got := readAll(t, newReader(t, dir, ReaderConfig{Cursor: "other"})); len(got) != 100 {
		t.Errorf("new cursor read %d records, want 100", len(got))
	}
	plain := newReader(t, dir, ReaderConfig{})
	if err := plain.Commit(ctx, got); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "cursors")); len(ents) != 1 {
		t.Errorf("cursors: %v; want only replay-1", ents)
	}
	if _, err := NewReader(dir, ReaderConfig{Cursor: "../escape"}); err == nil {
		t.Error("a cursor name with a slash was accepted")
	}
}

// TestCursorAfterRetention: a cursor pointing into deleted segments
// resumes at the oldest record left and counts what it lost.
func TestCursorAfterRetention(t *testing.T) {
	dir := t.TempDir()
	cfg := WriterConfig{SegmentBytes: 4 << 10}
	writeLog(t, dir, cfg, 200, 10)
	if err := writeCursor(dir, "c", 5); err != nil {
		t.Fatal(err)
	}
	cfg.RetainBytes = 8 << 10
	w := openWriter(t, dir, cfg)
	w.Close()
	bases, _ := listSegments(dir)

	r := newReader(t, dir, ReaderConfig{Cursor: "c"})
	got := readAll(t, r)
	checkGenerated(t, got, bases[0])
	if st := r.Stats(); st.Lost != bases[0]-5 || len(got) != int(200-bases[0]) {
		t.Errorf("read %d records, lost %d; want %d and %d", len(got), st.Lost, 200-bases[0], bases[0]-5)
	}
}

// recordPos returns the byte position of the record with offset off in
// the segment at base.
func recordPos(t *testing.T, dir string, base, off int64) int64 {
	t.Helper()
	f, err := openSegment(dir, base)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := newScanner(f, f.Name(), fileHeaderLen, base, nil)
	for s.next < off {
		if _, err := s.record(); err != nil {
			t.Fatal(err)
		}
	}
	return s.pos
}

// flipByte damages one byte of a file.
func flipByte(t *testing.T, path string, pos int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var b [1]byte
	f.ReadAt(b[:], pos)
	b[0] ^= 0x40
	if _, err := f.WriteAt(b[:], pos); err != nil {
		t.Fatal(err)
	}
}

// TestDamage: bit rot in a closed segment is skipped with the rest of the
// segment, counted; in the middle of the newest segment it is an error
// naming the file and byte; at its end it is a tail not yet written.
func TestDamage(t *testing.T) {
	const n = 600
	cfg := WriterConfig{SegmentBytes: 16 << 10, IndexInterval: 1 << 10}
	setup := func(t *testing.T) (string, []int64) {
		dir := t.TempDir()
		writeLog(t, dir, cfg, n, 50)
		bases, _ := listSegments(dir)
		if len(bases) < 4 {
			t.Fatalf("%d segments", len(bases))
		}
		return dir, bases
	}

	t.Run("closed segment", func(t *testing.T) {
		dir, bases := setup(t)
		bad := bases[1] + 5
		flipByte(t, segmentPath(dir, bases[1], logExt), recordPos(t, dir, bases[1], bad)+30)
		r := newReader(t, dir, ReaderConfig{})
		got := readAll(t, r)
		checkGenerated(t, got[:bad], 0)
		checkGenerated(t, got[bad:], bases[2])
		if st := r.Stats(); st.Corrupt != 1 || st.Lost != bases[2]-bad {
			t.Errorf("stats %+v; want 1 corrupt, %d lost", st, bases[2]-bad)
		}
		// A time lookup goes past the damage too.
		r = newReader(t, dir, ReaderConfig{Since: ms(bases[2] + 1)})
		checkGenerated(t, readAll(t, r), bases[2]+1)
	})

	t.Run("closed segment header", func(t *testing.T) {
		dir, bases := setup(t)
		flipByte(t, segmentPath(dir, bases[1], logExt), 1)
		r := newReader(t, dir, ReaderConfig{})
		got := readAll(t, r)
		checkGenerated(t, got[:bases[1]], 0)
		checkGenerated(t, got[bases[1]:], bases[2])
		if st := r.Stats(); st.Corrupt != 1 || st.Lost != bases[2]-bases[1] {
			t.Errorf("stats %+v", st)
		}
	})

	t.Run("middle of the newest segment", func(t *testing.T) {
		dir, bases := setup(t)
		last := bases[len(bases)-1]
		bad := last + 2
		pos := recordPos(t, dir, last, bad)
		flipByte(t, segmentPath(dir, last, logExt), pos+30)
		r := newReader(t, dir, ReaderConfig{})
		var got []stream.Record
		var err error
		for {
			var batch []stream.Record
			batch, err = r.Fetch(context.Background())
			if err != nil {
				break
			}
			got = append(got, batch...)
		}
		var cerr *CorruptError
		if !errors.As(err, &cerr) || cerr.File != segmentPath(dir, last, logExt) || cerr.Pos != pos {
			t.Fatalf("error %v; want a *CorruptError for %s at byte %d", err, segmentPath(dir, last, logExt), pos)
		}
		checkGenerated(t, got, 0)
		if int64(len(got)) != bad {
			t.Errorf("read %d records before the damage, want %d", len(got), bad)
		}
	})

	t.Run("end of the newest segment", func(t *testing.T) {
		dir, bases := setup(t)
		last := bases[len(bases)-1]
		pos := recordPos(t, dir, last, n-1)
		path := segmentPath(dir, last, logExt)
		size := fileSize(t, path)
		flipByte(t, path, pos+30)
		got := readAll(t, newReader(t, dir, ReaderConfig{}))
		if len(got) != n-1 {
			t.Fatalf("read %d records, want %d", len(got), n-1)
		}
		checkGenerated(t, got, 0)
		// The next writer cuts it.
		w := openWriter(t, dir, cfg)
		if st := w.Stats(); st.TornBytesCut != size-pos || st.NextOffset != n-1 {
			t.Errorf("writer cut %d bytes, next offset %d; want %d and %d", st.TornBytesCut, st.NextOffset, size-pos, n-1)
		}
	})
}

// TestHugeLength: a corrupt length within the cap costs no allocation of
// that size while the file is shorter; one beyond the cap is damage.
func TestHugeLength(t *testing.T) {
	cases := []struct {
		name    string
		length  uint32
		corrupt bool
	}{
		{"at the cap", MaxRecordBytes, false},
		{"beyond the cap", MaxRecordBytes + 1, true},
		{"all ones", 0xffffffff, true},
		{"too short", 3, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			b := appendFileHeader(nil, logMagic, 0)
			b = binary.BigEndian.AppendUint32(b, tc.length)
			b = append(b, make([]byte, 100)...)
			if err := os.WriteFile(segmentPath(dir, 0, logExt), b, 0o644); err != nil {
				t.Fatal(err)
			}
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			r := newReader(t, dir, ReaderConfig{})
			_, err := r.Fetch(context.Background())
			runtime.ReadMemStats(&after)
			var cerr *CorruptError
			switch {
			case tc.corrupt && !errors.As(err, &cerr):
				t.Errorf("Fetch: %v; want a *CorruptError", err)
			case !tc.corrupt && !errors.Is(err, io.EOF):
				t.Errorf("Fetch: %v; want io.EOF", err)
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4<<20 {
				t.Errorf("allocated %d bytes for a record that is not there", alloc)
			}
			w := openWriter(t, dir, WriterConfig{})
			if st := w.Stats(); st.TornBytesCut != int64(len(b)-fileHeaderLen) || st.NextOffset != 0 {
				t.Errorf("writer: %+v", st)
			}
		})
	}
}

// segmentSeeds adds fuzz seeds: a valid segment and damaged copies.
func segmentSeeds(f *testing.F) {
	seedDir := f.TempDir()
	writeLog(f, seedDir, WriterConfig{}, 5, 5)
	valid, err := os.ReadFile(segmentPath(seedDir, 0, logExt))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	f.Add(valid[:len(valid)-3])
	f.Add(valid[:fileHeaderLen])
	f.Add([]byte{})
	flipped := bytes.Clone(valid)
	flipped[fileHeaderLen+20] ^= 1
	f.Add(flipped)
}

// FuzzReadSegment reads arbitrary bytes as a segment, through a Reader
// and through a bare scanner: records with sequential offsets or errors,
// never a panic, and never a record longer than the cap.
func FuzzReadSegment(f *testing.F) {
	segmentSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(segmentPath(dir, 0, logExt), data, 0o644); err != nil {
			t.Fatal(err)
		}
		r := newReader(t, dir, ReaderConfig{})
		var next int64
		for {
			batch, err := r.Fetch(context.Background())
			if err != nil {
				break
			}
			for _, rec := range batch {
				if rec.Offset != next {
					t.Fatalf("offset %d, want %d", rec.Offset, next)
				}
				next++
			}
		}

		// The scanner alone, from the first record, must agree.
		if len(data) < fileHeaderLen {
			return
		}
		s := newScanner(bytes.NewReader(data), "fuzz", fileHeaderLen, 0, nil)
		var n int64
		for {
			pos := s.pos
			rec, err := s.record()
			if err != nil {
				break
			}
			if s.pos-pos > recordHeaderLen+MaxRecordBytes || rec.Offset != n {
				t.Fatalf("record %d: offset %d, %d bytes", n, rec.Offset, s.pos-pos)
			}
			n++
		}
		if checkFileHeader(data, logMagic, 0) == nil && n != next {
			t.Fatalf("scanner decoded %d records, the reader %d", n, next)
		}
	})
}

// FuzzOpenRepair opens arbitrary bytes as the newest segment with a
// Writer: it either refuses the header or leaves a log that reads cleanly
// to its end, keeping every record a Reader could read before. (Each
// input costs several fsyncs: it fuzzes slowly.)
func FuzzOpenRepair(f *testing.F) {
	segmentSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(segmentPath(dir, 0, logExt), data, 0o644); err != nil {
			t.Fatal(err)
		}
		var before int64
		r := newReader(t, dir, ReaderConfig{})
		for {
			batch, err := r.Fetch(context.Background())
			if err != nil {
				break
			}
			before += int64(len(batch))
		}
		r.Close()

		w, err := Open(dir, WriterConfig{Logger: quiet})
		if err != nil {
			return // a bad header: refused
		}
		end := w.Stats().NextOffset
		w.Close()
		if end != before {
			t.Fatalf("writer ends the log at %d, the reader read %d records", end, before)
		}
		got := readAll(t, newReader(t, dir, ReaderConfig{}))
		if int64(len(got)) != end {
			t.Fatalf("after repair: read %d records, want %d", len(got), end)
		}
	})
}
