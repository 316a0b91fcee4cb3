package filelog

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tapline/tapline/internal/stream"
)

// crashEnv, set to a directory, makes TestCrashKill the writer child.
const crashEnv = "TAPLINE_FILELOG_CRASH_CHILD"

// crashConfig is the child's: small segments and a dense index, so kills
// also land around rotations and index writes.
var crashConfig = WriterConfig{SegmentBytes: 1 << 20, IndexInterval: 4 << 10}

// crashRecord is the record at offset off in the crash test: 1 to 8 KB,
// and now and then one bigger than the read-ahead, so that writes span
// several pages and a kill can land inside one.
func crashRecord(off int64) stream.Record {
	rec := genRecord(off)
	rec.Value = genValue(off, 1000+int(off*37%7000))
	if off%97 == 0 {
		rec.Value = genValue(off, readAhead+int(off%1000))
	}
	return rec
}

// TestCrashKill runs a writer in a child process that publishes as fast as
// it can, printing each acknowledged offset, and SIGKILLs it at a random
// moment of a publish, six times over the same log. After each kill, Open
// must find every acknowledged record intact, end the log at a record
// boundary and go on at the next offset.
//
// Most kills land in encoding or fsync(2); on the development machine
// about one in twenty lands inside write(2) and leaves a real torn tail
// (logged as "torn bytes cut"). TestTornTail cuts a log at every byte of
// its last record to cover that case deterministically.
func TestCrashKill(t *testing.T) {
	if dir := os.Getenv(crashEnv); dir != "" {
		crashChild(dir)
		return
	}
	if testing.Short() {
		t.Skip("starts child processes")
	}
	dir := t.TempDir()
	var acked int64 = -1 // highest acknowledged offset over all rounds
	for round := range 6 {
		acks := 2000 + rand.IntN(500)
		last := runAndKill(t, dir, acks)
		if last < acked+int64(acks) {
			t.Fatalf("round %d: acknowledged up to %d, before that %d", round, last, acked)
		}
		acked = last

		w, err := Open(dir, WriterConfig{SegmentBytes: crashConfig.SegmentBytes, IndexInterval: crashConfig.IndexInterval, Logger: quiet})
		if err != nil {
			t.Fatalf("round %d: opening after the kill: %v", round, err)
		}
		st := w.Stats()
		t.Logf("round %d: killed after ack %d; log ends at %d, %d segments, %d torn bytes cut", round, acked, st.NextOffset, st.Segments, st.TornBytesCut)
		if st.NextOffset <= acked {
			t.Fatalf("round %d: the log ends at offset %d but %d was acknowledged", round, st.NextOffset, acked)
		}
		checkCrashLog(t, dir, st.NextOffset)

		// Appending goes on at the next offset.
		next := st.NextOffset
		if err := w.Publish(context.Background(), crashRecord(next)); err != nil {
			t.Fatal(err)
		}
		if got := w.Stats().NextOffset; got != next+1 {
			t.Fatalf("after one more record the log ends at %d, want %d", got, next+1)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		acked = next
	}
	checkCrashLog(t, dir, acked+1)
}

// runAndKill starts the child writer on dir, reads its acknowledgements
// and kills it once it printed n of them. It returns the highest offset
// acknowledged.
func runAndKill(t *testing.T, dir string, n int) int64 {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashKill$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnv+"="+dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	last, count := int64(-1), 0
	for count < n && sc.Scan() {
		v, ok := strings.CutPrefix(sc.Text(), "ack ")
		if !ok {
			continue
		}
		off, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			t.Fatalf("child printed %q", sc.Text())
		}
		last = off
		count++
	}
	// Kill at a random moment of the next publish: encoding, write(2) or
	// fsync(2).
	time.Sleep(time.Duration(rand.IntN(400)) * time.Microsecond)
	cmd.Process.Kill() // SIGKILL: no deferred code, no Close
	cmd.Wait()
	if count < n {
		t.Fatalf("child stopped after %d acknowledgements: %s", count, stderr.String())
	}
	return last
}

// crashChild is the writer process: it publishes batches of 1 to 7
// records until it is killed, printing each acknowledged offset.
func crashChild(dir string) {
	w, err := Open(dir, crashConfig)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	out := bufio.NewWriter(os.Stdout)
	next := w.Stats().NextOffset
	batch := func(i int) []stream.Record {
		recs := make([]stream.Record, 1+i%16)
		for j := range recs {
			recs[j] = crashRecord(next + int64(j))
		}
		return recs
	}
	recs := batch(0)
	for i := 1; ; i++ {
		if err := w.Publish(context.Background(), recs...); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
		acked := len(recs)
		next += int64(acked)
		recs = batch(i) // made before the acks, so that a kill soon after them finds the child writing
		for k := range acked {
			fmt.Fprintf(out, "ack %d\n", next-int64(acked-k))
		}
		out.Flush()
	}
}

// checkCrashLog reads the whole log: offsets 0 to end-1, each the record
// written, and the newest segment ends exactly after the last one.
func checkCrashLog(t *testing.T, dir string, end int64) {
	t.Helper()
	r := newReader(t, dir, ReaderConfig{MaxBatch: 1000})
	var next int64
	for {
		batch, err := r.Fetch(context.Background())
		if err != nil {
			break
		}
		for _, rec := range batch {
			if rec.Offset != next {
				t.Fatalf("offset %d where %d was expected", rec.Offset, next)
			}
			if err := sameRecord(rec, crashRecord(next)); err != nil {
				t.Fatalf("offset %d: %v", next, err)
			}
			next++
		}
	}
	if st := r.Stats(); next != end || st.Corrupt != 0 || st.Lost != 0 {
		t.Fatalf("read %d records (stats %+v), want %d", next, st, end)
	}
	bases, _ := listSegments(dir)
	last := bases[len(bases)-1]
	f, err := openSegment(dir, last)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := newScanner(f, f.Name(), fileHeaderLen, last, nil)
	for {
		if _, err := s.record(); err != nil {
			if !errors.Is(err, errShort) || s.pos != fileSize(t, f.Name()) || s.next != end {
				t.Fatalf("newest segment: %v at byte %d, offset %d; want its end at offset %d", err, s.pos, s.next, end)
			}
			return
		}
	}
}

// TestTornTail cuts the last record of a log at every byte and damages it:
// Open cuts exactly that record, and the log goes on.
func TestTornTail(t *testing.T) {
	src := t.TempDir()
	const n = 20
	cfg := WriterConfig{IndexInterval: 256}
	writeLog(t, src, cfg, n, 4)
	logBytes, err := os.ReadFile(segmentPath(src, 0, logExt))
	if err != nil {
		t.Fatal(err)
	}
	indexBytes, err := os.ReadFile(segmentPath(src, 0, indexExt))
	if err != nil {
		t.Fatal(err)
	}
	start := recordPos(t, src, 0, n-1)

	type variant struct {
		name string
		log  []byte
	}
	var variants []variant
	for cut := start; cut < int64(len(logBytes)); cut++ {
		variants = append(variants, variant{fmt.Sprintf("cut at byte %d", cut), logBytes[:cut]})
	}
	for _, at := range []int64{0, 5, recordHeaderLen + 1, int64(len(logBytes)) - start - 1} {
		b := bytes.Clone(logBytes)
		b[start+at] ^= 0x10
		variants = append(variants, variant{fmt.Sprintf("byte %d of the record flipped", at), b})
	}
	for _, v := range variants {
		dir := t.TempDir()
		os.WriteFile(segmentPath(dir, 0, logExt), v.log, 0o644)
		os.WriteFile(segmentPath(dir, 0, indexExt), indexBytes, 0o644) // sealed past the cut
		w, err := Open(dir, WriterConfig{IndexInterval: cfg.IndexInterval, Logger: quiet})
		if err != nil {
			t.Fatalf("%s: %v", v.name, err)
		}
		st := w.Stats()
		if st.NextOffset != n-1 || st.TornBytesCut != int64(len(v.log))-start || fileSize(t, segmentPath(dir, 0, logExt)) != start {
			t.Fatalf("%s: next offset %d, cut %d bytes, size %d; want %d, %d, %d",
				v.name, st.NextOffset, st.TornBytesCut, fileSize(t, segmentPath(dir, 0, logExt)), n-1, int64(len(v.log))-start, start)
		}
		publish(t, w, genRecord(n-1))
		w.Close()
		if !bytes.Equal(mustRead(t, segmentPath(dir, 0, logExt)), logBytes) {
			t.Fatalf("%s: the log rewritten after the cut differs from the original", v.name)
		}
		checkGenerated(t, readAll(t, newReader(t, dir, ReaderConfig{})), 0)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
