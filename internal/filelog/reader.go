package filelog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tapline/tapline/internal/stream"
)

// ReaderConfig configures a Reader. The zero value reads the whole log
// once, from its oldest record.
type ReaderConfig struct {
	// Since starts the Reader at the first record, in log order, whose
	// time is ≥ Since, found through the time index without reading the
	// records before it. Records after that point whose time is still
	// before Since are skipped and counted (ReaderStats.Skipped). Default:
	// the oldest record.
	Since time.Time
	// Until stops the Reader at the first record whose time is ≥ Until
	// (that record is not returned); Fetch then returns io.EOF. Default:
	// no end.
	Until time.Time
	// Follow makes Fetch wait for records appended later instead of
	// returning io.EOF at the end of the log. Without it the Reader reads
	// the log as it was when NewReader returned.
	Follow bool
	// Cursor names a stored position, dir/cursors/<Cursor>: Commit writes
	// it, and a new Reader with the same Cursor resumes after the last
	// committed record (Since still filters, Until still ends). It is not
	// a consumer group: two Readers with the same Cursor both read every
	// record, and each overwrites the other's commits. Letters, digits,
	// '.', '_' and '-' only. Default: none; Commit does nothing.
	Cursor string
	// MaxBatch is the most records one Fetch returns. Default 100.
	MaxBatch int
	// PollInterval is how often a following Reader at the end of the log
	// looks for new records. Default 100ms.
	PollInterval time.Duration
	// Logger receives skipped damage and lost records. Default
	// slog.Default().
	Logger *slog.Logger
}

// ReaderStats is a snapshot of a Reader's counters.
type ReaderStats struct {
	Read    int64 // records returned by Fetch
	Skipped int64 // records after the start whose time was before Since
	Decoded int64 // records decoded, including those read to find the start
	Corrupt int64 // damaged places skipped, each logged with its file and byte
	Lost    int64 // records passed over: after damage, or deleted by retention before they were read
	Next    int64 // offset of the next record to read
}

// Reader reads the log in dir in offset order. It may run while a Writer,
// in this or another process, appends to the log: a record that is only
// partly written is not read until it is complete.
//
// Fetch must not be called concurrently with itself; Commit and Stats may
// be called from any goroutine.
type Reader struct {
	dir          string
	cfg          ReaderConfig
	since, until int64 // Unix ns; math.MinInt64 and math.MaxInt64 when unset

	f        *os.File // segment being read, nil between segments
	base     int64
	sc       *scanner
	next     int64 // offset of the next record to read
	closedAt int64 // position in f at which a newer segment was seen, -1 if none
	nextBase int64 // that newer segment
	stop     int64 // offset at which a Reader that does not follow ends
	done     bool
	closed   bool

	start, end int64 // window by offset, for Records
	endKnown   bool

	cmu sync.Mutex // serialises Commit

	read, skipped, decoded, corrupt, lost, nextOff atomic.Int64
}

// position is a place in the log: a byte of a segment and the offset of
// the record there. base is -1 when the segment is not known yet.
type position struct {
	base, pos, next int64
}

// NewReader opens the log in dir for reading and finds where to start:
// after the committed Cursor, else at Since, else at the oldest record.
func NewReader(dir string, cfg ReaderConfig) (*Reader, error) {
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = 100
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 100 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Cursor != "" && !validCursor(cfg.Cursor) {
		return nil, fmt.Errorf("filelog: cursor name %q: use letters, digits, '.', '_' and '-' only", cfg.Cursor)
	}
	if !cfg.Since.IsZero() && !cfg.Until.IsZero() && !cfg.Until.After(cfg.Since) {
		return nil, fmt.Errorf("filelog: until %s is not after since %s", cfg.Until.Format(time.RFC3339Nano), cfg.Since.Format(time.RFC3339Nano))
	}
	if fi, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("filelog: opening log %s: %w", dir, err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("filelog: opening log %s: not a directory", dir)
	}
	r := &Reader{dir: dir, cfg: cfg, since: math.MinInt64, until: math.MaxInt64, closedAt: -1, stop: math.MaxInt64}
	if !cfg.Since.IsZero() {
		r.since = cfg.Since.UnixNano()
	}
	if !cfg.Until.IsZero() {
		r.until = cfg.Until.UnixNano()
	}
	start, err := r.startPosition()
	if err != nil {
		return nil, err
	}
	if !cfg.Follow || !cfg.Until.IsZero() {
		end, err := r.seekTime(r.until)
		if err != nil {
			return nil, err
		}
		switch {
		case end.damaged:
			// Leave the end open, so that Fetch meets the damage and
			// reports it rather than stopping short in silence.
		case end.found || !cfg.Follow:
			r.end, r.endKnown = end.next, true
			if !cfg.Follow {
				r.stop = end.next
			}
		}
	}
	r.start = start.next
	r.next = start.next
	r.nextOff.Store(r.next)
	if start.base >= 0 {
		if f, err := openSegment(dir, start.base); err == nil {
			r.f, r.base = f, start.base
			r.sc = newScanner(f, f.Name(), start.pos, start.next, &r.decoded)
		}
		// Otherwise openNext finds the offset again, dealing with what
		// happened to the segment.
	}
	return r, nil
}

// startPosition is where reading starts.
func (r *Reader) startPosition() (position, error) {
	if r.cfg.Cursor != "" {
		off, ok, err := readCursor(r.dir, r.cfg.Cursor)
		if err != nil {
			return position{}, err
		}
		if ok {
			return position{base: -1, next: off}, nil
		}
	}
	if !r.cfg.Since.IsZero() {
		p, err := r.seekTime(r.since)
		return p.position, err
	}
	bases, err := listSegments(r.dir)
	if err != nil || len(bases) == 0 {
		return position{base: -1}, err
	}
	return position{base: bases[0], pos: fileHeaderLen, next: bases[0]}, nil
}

// Records is the number of offsets in the window, an upper bound of what
// Fetch returns (records before Since after the start are skipped). It
// is known when the Reader does not follow (the window ends at Until or
// at the end of the log as of NewReader), or when it follows and a record
// at or after Until was already in the log.
func (r *Reader) Records() (n int64, known bool) {
	if !r.endKnown {
		return 0, false
	}
	return max(r.end-r.start, 0), true
}

// Fetch returns the next records, at most MaxBatch. At the end of the
// window, or of the log when not following, it returns io.EOF. A following
// Reader at the end of the log waits, polling every PollInterval, until
// records arrive or ctx is done.
//
// A Reader never returns a damaged record. Damage in a closed segment is
// skipped with the rest of that segment (logged, counted in Corrupt and
// Lost); damage inside the newest segment, with bytes after it, makes
// Fetch return a *CorruptError until that segment is closed.
func (r *Reader) Fetch(ctx context.Context) ([]stream.Record, error) {
	if r.closed {
		return nil, fmt.Errorf("filelog: fetching from %s: the reader is closed", r.dir)
	}
	var wait *time.Timer
	for {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("filelog: fetching from %s: %w", r.dir, err)
		}
		batch, err := r.fill()
		if len(batch) > 0 {
			return batch, nil // an error meets the next Fetch again
		}
		if err != nil {
			return nil, err
		}
		if r.done || !r.cfg.Follow {
			return nil, io.EOF
		}
		if wait == nil {
			wait = time.NewTimer(r.cfg.PollInterval)
			defer wait.Stop()
		} else {
			wait.Reset(r.cfg.PollInterval)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("filelog: fetching from %s: %w", r.dir, ctx.Err())
		case <-wait.C:
		}
	}
}

// fill reads the records available now, up to MaxBatch.
func (r *Reader) fill() ([]stream.Record, error) {
	var batch []stream.Record
	for len(batch) < r.cfg.MaxBatch && !r.done {
		if r.next >= r.stop {
			r.done = true
			break
		}
		if r.sc == nil {
			ok, err := r.openNext()
			if err != nil || !ok {
				return batch, err
			}
		}
		rec, err := r.sc.record()
		if err != nil {
			if !endOrDamage(err) {
				return batch, err
			}
			more, err := r.endOfSegment(err)
			if err != nil || !more {
				return batch, err
			}
			continue
		}
		r.next = r.sc.next
		r.nextOff.Store(r.next)
		switch t := rec.Time.UnixNano(); {
		case t >= r.until:
			r.done = true
		case t < r.since:
			r.skipped.Add(1)
		default:
			batch = append(batch, rec)
			r.read.Add(1)
		}
	}
	return batch, nil
}

// endOrDamage reports whether a scanner error means the bytes at the
// position are not a complete valid record (as opposed to a read error).
func endOrDamage(err error) bool {
	var cerr *CorruptError
	return errors.Is(err, errShort) || errors.As(err, &cerr)
}

// endOfSegment handles a record that could not be read (cause, from
// endOrDamage) and reports whether to read on.
func (r *Reader) endOfSegment(cause error) (more bool, err error) {
	if r.closedAt != r.sc.pos {
		nextBase, ok, err := r.newerSegment()
		if err != nil {
			return false, err
		}
		if !ok {
			// The newest segment: an incomplete record at its end is not
			// written yet (or is a torn tail the next Writer will cut).
			var cerr *CorruptError
			if errors.As(cause, &cerr) && (cerr.end == 0 || cerr.end < r.size()) {
				return false, cause
			}
			return false, nil
		}
		// A newer segment exists, so this one was complete before it was
		// created; read once more, as the last records may have been
		// appended after our read and before the rotation.
		r.closedAt, r.nextBase = r.sc.pos, nextBase
		return true, nil
	}
	if errors.Is(cause, errShort) && r.sc.pos == r.size() {
		if r.nextBase > r.next {
			r.skipTo(r.nextBase, "records are missing between two segments")
		}
	} else {
		r.damaged(cause, r.nextBase)
	}
	r.closeSegment()
	if r.nextBase == r.next {
		// The usual case, without listing the directory: the next
		// segment starts where this one ended. Otherwise openNext looks.
		if f, err := openSegment(r.dir, r.next); err == nil {
			r.f, r.base = f, r.next
			r.sc = newScanner(f, f.Name(), fileHeaderLen, r.next, &r.decoded)
		}
	}
	return true, nil
}

// newerSegment returns the base offset of the first segment after the
// one being read, if there is one. The segment that starts where the
// reader stands is found without listing the directory.
func (r *Reader) newerSegment() (int64, bool, error) {
	if next := r.sc.next; next > r.base {
		if _, err := os.Stat(segmentPath(r.dir, next, logExt)); err == nil {
			return next, true, nil
		}
	}
	bases, err := listSegments(r.dir)
	if err != nil {
		return 0, false, err
	}
	i := sort.Search(len(bases), func(j int) bool { return bases[j] > r.base })
	if i == len(bases) {
		return 0, false, nil
	}
	return bases[i], true, nil
}

// size is the current size of the segment being read, or -1.
func (r *Reader) size() int64 {
	fi, err := r.f.Stat()
	if err != nil {
		return -1
	}
	return fi.Size()
}

// openNext opens the segment that holds r.next and positions the scanner
// at it. It reports false when there is nothing to read yet.
func (r *Reader) openNext() (bool, error) {
	for {
		bases, err := listSegments(r.dir)
		if err != nil || len(bases) == 0 {
			return false, err
		}
		i := sort.Search(len(bases), func(j int) bool { return bases[j] > r.next }) - 1
		if i < 0 {
			r.skipTo(bases[0], "retention deleted records before they were read")
			i = 0
		}
		base, last := bases[i], i == len(bases)-1
		f, err := openSegment(r.dir, base)
		var cerr *CorruptError
		switch {
		case errors.Is(err, os.ErrNotExist):
			continue // deleted by retention just now
		case errors.Is(err, errShort) && last:
			return false, nil // being created
		case (errors.Is(err, errShort) || errors.As(err, &cerr)) && !last:
			r.damaged(err, bases[i+1])
			continue
		case err != nil:
			return false, err
		}
		p, ok, err := r.findOffset(f, base, r.next)
		if err != nil {
			f.Close()
			return false, err
		}
		if !ok && !last {
			f.Close()
			r.skipTo(bases[i+1], "the segment ends before the offset to read")
			continue
		}
		if !ok {
			r.cfg.Logger.Warn("the offset to read is past the end of the log (records lost in a crash?); reading on from the end",
				"dir", r.dir, "offset", r.next, "end", p.next)
			r.next = p.next
		}
		r.f, r.base, r.closedAt = f, base, -1
		r.sc = newScanner(f, f.Name(), p.pos, p.next, &r.decoded)
		return true, nil
	}
}

// openSegment opens the .log of the segment at base and checks its header.
// errShort means the header is not complete: the segment is being created.
func openSegment(dir string, base int64) (*os.File, error) {
	path := segmentPath(dir, base, logExt)
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("filelog: opening segment %s: %w", path, err)
	}
	if err := readFileHeader(f, logMagic, base); err != nil {
		f.Close()
		if errors.Is(err, errShort) {
			return nil, err
		}
		return nil, &CorruptError{File: path, Pos: 0, Reason: "bad segment header: " + err.Error()}
	}
	return f, nil
}

// findOffset returns the position of the record with offset off in the
// segment read by f, starting from the nearest index entry. It reports
// false, with the end of the segment's valid records, when they end
// before off.
func (r *Reader) findOffset(f *os.File, base, off int64) (position, bool, error) {
	fi, err := f.Stat()
	if err != nil {
		return position{}, false, fmt.Errorf("filelog: reading %s: %w", f.Name(), err)
	}
	entries := readIndex(r.dir, base, fi.Size())
	k := sort.Search(len(entries), func(j int) bool { return entries[j].offset > off }) - 1
	sc := r.scanFrom(f, base, fi.Size(), entries, k)
	for sc.next < off {
		if _, err := sc.record(); err != nil {
			if endOrDamage(err) {
				return position{base, sc.pos, sc.next}, false, nil
			}
			return position{}, false, err
		}
	}
	return position{base, sc.pos, sc.next}, true, nil
}

// scanFrom returns a scanner at entries[k], or at the last entry before it
// that points at a valid record, or at the first record.
func (r *Reader) scanFrom(f *os.File, base, size int64, entries []indexEntry, k int) *scanner {
	for ; k >= 0; k-- {
		if e := entries[k]; e.pos < size && verifyEntry(f, f.Name(), e) {
			return newScanner(f, f.Name(), e.pos, e.offset, &r.decoded)
		}
	}
	return newScanner(f, f.Name(), fileHeaderLen, base, &r.decoded)
}

// seekResult is where a time lookup ended.
type seekResult struct {
	position
	found   bool // a record with the time: position is at it
	damaged bool // not found, and the newest segment has damage before its end
}

// seekTime finds the first record, in log order, whose time is ≥ t, or
// else the end of the log. It reads the last index entry of each older
// segment and decodes records only in the segment where the time is
// reached, from the index entry before it.
func (r *Reader) seekTime(t int64) (seekResult, error) {
	bases, err := listSegments(r.dir)
	if err != nil {
		return seekResult{}, err
	}
	if t == math.MaxInt64 && len(bases) > 1 {
		bases = bases[len(bases)-1:] // the end of the log: only the newest segment matters
	}
	for i, base := range bases {
		last := i == len(bases)-1
		f, err := openSegment(r.dir, base)
		if err != nil {
			if last {
				// Let Fetch wait for it or report it.
				return seekResult{position: position{base: base, pos: fileHeaderLen, next: base}}, nil
			}
			continue
		}
		res, err := r.timeIn(f, base, t)
		f.Close()
		if err != nil || res.found || last {
			return res, err
		}
	}
	return seekResult{position: position{base: -1}}, nil // an empty log
}

// timeIn is seekTime within one segment; at its end it returns the end.
func (r *Reader) timeIn(f *os.File, base, t int64) (seekResult, error) {
	fi, err := f.Stat()
	if err != nil {
		return seekResult{}, fmt.Errorf("filelog: reading %s: %w", f.Name(), err)
	}
	size := fi.Size()
	if e, ok := lastIndexEntry(r.dir, base, size); ok && e.pos == size && e.maxTime < t {
		return seekResult{position: position{base, e.pos, e.offset}}, nil // sealed, and every record is older
	}
	entries := readIndex(r.dir, base, size)
	k := sort.Search(len(entries), func(j int) bool { return entries[j].maxTime >= t }) - 1
	sc := r.scanFrom(f, base, size, entries, k)
	for {
		p := position{base, sc.pos, sc.next}
		rec, err := sc.record()
		var cerr *CorruptError
		switch {
		case err == nil && rec.Time.UnixNano() >= t:
			return seekResult{position: p, found: true}, nil
		case err == nil:
		case errors.As(err, &cerr):
			return seekResult{position: p, damaged: cerr.end == 0 || cerr.end < size}, nil
		case errors.Is(err, errShort):
			return seekResult{position: p}, nil
		default:
			return seekResult{}, err
		}
	}
}

// skipTo moves the Reader forward to offset off, counting what it passes
// over as lost.
func (r *Reader) skipTo(off int64, why string) {
	if off <= r.next {
		return
	}
	r.cfg.Logger.Warn("skipping records: "+why, "dir", r.dir, "offset", r.next, "to", off, "records", off-r.next)
	r.lost.Add(off - r.next)
	r.next = off
	r.nextOff.Store(off)
}

// damaged logs and counts damage, and skips to the segment at nextBase.
func (r *Reader) damaged(cause error, nextBase int64) {
	r.corrupt.Add(1)
	r.cfg.Logger.Error("skipping the rest of a damaged segment", "dir", r.dir, "offset", r.next, "next_segment", nextBase, "err", cause)
	r.skipTo(nextBase, "the rest of the segment is damaged")
}

func (r *Reader) closeSegment() {
	if r.f != nil {
		r.f.Close()
	}
	r.f, r.sc, r.closedAt = nil, nil, -1
}

// Commit stores the position after the last of recs (the highest offset)
// in the Reader's cursor, durably: a new Reader with the same Cursor
// resumes there. Without a Cursor it does nothing.
func (r *Reader) Commit(ctx context.Context, recs []stream.Record) error {
	if r.cfg.Cursor == "" || len(recs) == 0 {
		return nil
	}
	next := recs[0].Offset
	for _, rec := range recs {
		next = max(next, rec.Offset)
	}
	r.cmu.Lock()
	defer r.cmu.Unlock()
	if err := writeCursor(r.dir, r.cfg.Cursor, next+1); err != nil {
		return fmt.Errorf("filelog: committing %d records: %w", len(recs), err)
	}
	return nil
}

// Stats returns a snapshot of the counters.
func (r *Reader) Stats() ReaderStats {
	return ReaderStats{
		Read:    r.read.Load(),
		Skipped: r.skipped.Load(),
		Decoded: r.decoded.Load(),
		Corrupt: r.corrupt.Load(),
		Lost:    r.lost.Load(),
		Next:    r.nextOff.Load(),
	}
}

// Close releases the open segment. Fetch fails afterwards.
func (r *Reader) Close() error {
	r.closed = true
	if r.f == nil {
		return nil
	}
	err := r.f.Close()
	r.f, r.sc = nil, nil
	return err
}
