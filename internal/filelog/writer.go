package filelog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tapline/tapline/internal/stream"
)

// WriterConfig configures a Writer. The zero value is a working default.
type WriterConfig struct {
	// SegmentBytes is the size a segment may reach before the next record
	// goes into a new one (a bigger record gets a segment of its own).
	// Default 64 MiB.
	SegmentBytes int64
	// RetainBytes bounds the size of the log: the oldest closed segments
	// are deleted, whole, while the log is bigger. The segment being
	// written is never deleted, so the log can exceed this by up to one
	// segment. Default 0: no size limit.
	RetainBytes int64
	// RetainAge deletes closed segments last written more than this long
	// ago (by the .log file's modification time, not by record times, so
	// an old capture imported today is kept). Default 0: no age limit.
	// Retention runs at Open, after each rotation and at most once a
	// minute while the Writer is idle.
	RetainAge time.Duration
	// QueueSize is the capacity, in records, of the queue behind Enqueue
	// and EnqueueWait. Default 4096.
	QueueSize int
	// SyncInterval is how often records written from the queue are
	// fsynced (Publish fsyncs before it returns). Default 1s.
	SyncInterval time.Duration
	// IndexInterval is the number of bytes of records between two
	// time-index entries: a time lookup decodes about this much. Default
	// 4 KiB.
	IndexInterval int64
	// Logger receives torn tails cut at Open, deleted segments and write
	// errors of queued records. Default slog.Default().
	Logger *slog.Logger
}

func (c *WriterConfig) setDefaults() {
	if c.SegmentBytes <= 0 {
		c.SegmentBytes = 64 << 20
	}
	if c.QueueSize <= 0 {
		c.QueueSize = 4096
	}
	if c.SyncInterval <= 0 {
		c.SyncInterval = time.Second
	}
	if c.IndexInterval <= 0 {
		c.IndexInterval = 4 << 10
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// WriterStats is a snapshot of a Writer's counters. Every record given to
// Publish, Enqueue or EnqueueWait ends in exactly one of Published,
// Failed or Dropped, or is still Queued (a failed Publish returns its
// error to the caller and counts nothing).
type WriterStats struct {
	Published       uint64 // records written (fsynced, for Publish)
	Failed          uint64 // queued records that could not be written
	Dropped         uint64 // refused by Enqueue: the queue was full or the Writer closed
	Queued          int    // in the queue right now
	NextOffset      int64  // offset the next record will get
	Bytes           int64  // size of all segments on disk
	Segments        int64  // segments on disk
	SegmentsDeleted uint64 // removed by retention
	Syncs           uint64 // fsyncs of the segment being written
	TornBytesCut    int64  // bytes cut from a torn tail by Open
}

// Writer appends records to the log in dir. It is safe for concurrent
// use; Publish calls are serialised, each writing and fsyncing its batch.
// It is the only writer of its directory while it is open.
type Writer struct {
	dir string
	cfg WriterConfig

	lock *os.File // dir/.lock, flocked

	mu          sync.Mutex // guards the fields below and the files
	log, index  *os.File   // the segment being written, opened for appending
	st          segState   // what is on disk in it
	closedBytes int64      // bytes of the older segments
	buf, ibuf   []byte     // encoded records and index entries not yet written
	dirty       bool       // written since the last fsync
	err         error      // sticky: the log can no longer be written safely
	closed      bool
	lastRetain  time.Time

	qmu     sync.RWMutex // held to send on queue; Close takes it to stop senders
	qclosed bool
	queue   chan stream.Record
	stop    chan struct{} // closed by Close: drain the queue and exit
	done    chan struct{} // closed when the queue writer has exited

	closeOnce sync.Once
	closeErr  error

	published, failed, dropped, deleted, syncs atomic.Uint64
	nextOffset, bytes, segments                atomic.Int64
	tornCut                                    int64 // set by Open
}

// errLocked is what tryLock reports when another writer has the lock.
var errLocked = errors.New("locked")

// Open opens the log in dir for appending, creating dir if needed. It
// takes an exclusive lock on dir/.lock (a second Writer on the same dir is
// refused), cuts a torn tail left by a writer that was killed, rebuilds
// missing time indexes and applies retention.
func Open(dir string, cfg WriterConfig) (*Writer, error) {
	cfg.setDefaults()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("filelog: creating %s: %w", dir, err)
	}
	lock, err := acquireLock(dir)
	if err != nil {
		return nil, err
	}
	w := &Writer{
		dir:   dir,
		cfg:   cfg,
		lock:  lock,
		queue: make(chan stream.Record, cfg.QueueSize),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	if err := w.recover(); err != nil {
		w.closeFiles()
		lock.Close()
		return nil, err
	}
	w.retain()
	w.lastRetain = time.Now()
	w.report()
	go w.run()
	return w, nil
}

// acquireLock flocks dir/.lock and writes our pid into it, so the error a
// second writer gets can say who holds it.
func acquireLock(dir string) (*os.File, error) {
	path := filepath.Join(dir, ".lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("filelog: opening lock %s: %w", path, err)
	}
	if err := tryLock(f); err != nil {
		f.Close()
		if errors.Is(err, errLocked) {
			holder := "another process"
			if b, rerr := os.ReadFile(path); rerr == nil {
				if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); perr == nil {
					holder = fmt.Sprintf("process %d", pid)
				}
			}
			return nil, fmt.Errorf("filelog: log %s is already open for writing by %s (lock %s); a log has one writer: stop the other one or use another directory", dir, holder, path)
		}
		return nil, fmt.Errorf("filelog: locking %s: %w", path, err)
	}
	// The pid is only for the error above: failing to write it is harmless.
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f, nil
}

// recover finds the end of the log, repairing what a crash left behind,
// and opens the newest segment for appending.
func (w *Writer) recover() error {
	w.removeTemps()
	bases, err := listSegments(w.dir)
	if err != nil {
		return err
	}
	if len(bases) == 0 {
		if err := w.createSegment(0); err != nil {
			return err
		}
		w.segments.Store(1)
		return syncDir(w.dir)
	}
	for i, base := range bases[:len(bases)-1] {
		size, err := w.checkClosed(base, bases[i+1])
		if err != nil {
			return err
		}
		w.closedBytes += size
	}
	if err := w.repairLast(bases[len(bases)-1]); err != nil {
		return err
	}
	w.segments.Store(int64(len(bases)))
	return syncDir(w.dir)
}

// removeTemps deletes index files left half-written, and indexes whose
// segment is gone.
func (w *Writer) removeTemps() {
	ents, err := os.ReadDir(w.dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		name := e.Name()
		orphan := false
		if base, ok := parseSegmentName(name, indexExt); ok {
			_, err := os.Stat(segmentPath(w.dir, base, logExt))
			orphan = errors.Is(err, os.ErrNotExist)
		}
		if orphan || strings.HasSuffix(name, indexExt+".tmp") {
			os.Remove(filepath.Join(w.dir, name))
		}
	}
}

// checkClosed makes sure the closed segment at base has a sealed index
// (whose last entry is its end), rebuilding it from the .log if not. It
// returns the segment's size.
func (w *Writer) checkClosed(base, nextBase int64) (int64, error) {
	path := segmentPath(w.dir, base, logExt)
	fi, err := os.Stat(path)
	if err != nil {
		return 0, fmt.Errorf("filelog: opening segment %s: %w", path, err)
	}
	size := fi.Size()
	if e, ok := lastIndexEntry(w.dir, base, size); ok && e.pos == size && e.offset == nextBase {
		return size, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("filelog: opening segment %s: %w", path, err)
	}
	defer f.Close()
	if err := readFileHeader(f, logMagic, base); err != nil {
		w.cfg.Logger.Error("damaged segment header; readers will skip the segment", "segment", path, "err", err)
		return size, nil
	}
	t, err := scanTail(f, path, base, size, readIndex(w.dir, base, size), w.cfg.IndexInterval)
	if err != nil {
		return 0, fmt.Errorf("filelog: scanning segment %s: %w", path, err)
	}
	entries := t.entries
	if t.bad != nil {
		// Not sealed: readers scan up to the damage and skip the rest.
		w.cfg.Logger.Error("damaged segment; readers will skip the rest of it", "segment", path, "offset", t.next, "pos", t.size, "err", t.bad)
	} else {
		if t.next != nextBase {
			w.cfg.Logger.Warn("segment does not end where the next one starts", "segment", path, "offset", t.next, "next_segment", nextBase)
		}
		entries = append(entries, indexEntry{maxTime: t.maxTime, offset: t.next, pos: t.size})
	}
	if err := writeIndexFile(w.dir, base, entries); err != nil {
		return 0, err
	}
	w.cfg.Logger.Info("rebuilt time index", "segment", path, "entries", len(entries))
	return size, nil
}

// readFileHeader reads and checks the header of a .log or .tix file.
func readFileHeader(f *os.File, magic [4]byte, base int64) error {
	var b [fileHeaderLen]byte
	n, err := f.ReadAt(b[:], 0)
	if n < fileHeaderLen {
		if err == nil || errors.Is(err, io.EOF) {
			return errShort
		}
		return err
	}
	return checkFileHeader(b[:], magic, base)
}

// repairLast cuts a torn tail off the newest segment, rebuilds the end of
// its index and opens it for appending.
func (w *Writer) repairLast(base int64) error {
	path := segmentPath(w.dir, base, logExt)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("filelog: opening segment %s: %w", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("filelog: opening segment %s: %w", path, err)
	}
	size := fi.Size()
	switch err := readFileHeader(f, logMagic, base); {
	case errors.Is(err, errShort):
		// Killed while creating the segment: it holds no record yet.
		w.cfg.Logger.Warn("rewriting the header of a segment that was being created", "segment", path, "bytes", size)
		w.tornCut = size
		return w.createSegment(base)
	case err != nil:
		return fmt.Errorf("filelog: opening segment %s: %w", path, err)
	}
	t, err := scanTail(f, path, base, size, readIndex(w.dir, base, size), w.cfg.IndexInterval)
	if err != nil {
		return fmt.Errorf("filelog: scanning segment %s: %w", path, err)
	}
	if t.size < size {
		if err := f.Truncate(t.size); err != nil {
			return fmt.Errorf("filelog: cutting the torn tail of %s at byte %d: %w", path, t.size, err)
		}
		if err := f.Sync(); err != nil {
			return fmt.Errorf("filelog: cutting the torn tail of %s at byte %d: %w", path, t.size, err)
		}
		w.tornCut = size - t.size
		w.cfg.Logger.Warn("cut a torn tail", "segment", path, "offset", t.next, "pos", t.size, "bytes", size-t.size, "reason", t.bad)
	}
	if err := writeIndexFile(w.dir, base, t.entries); err != nil {
		return err
	}
	w.st = t.segState
	return w.openFiles()
}

// createSegment creates the segment starting at offset base, with empty
// .log and .tix files, and makes it the one being written.
func (w *Writer) createSegment(base int64) error {
	path := segmentPath(w.dir, base, logExt)
	if err := writeFileSync(path, appendFileHeader(nil, logMagic, base)); err != nil {
		return fmt.Errorf("filelog: creating segment %s: %w", path, err)
	}
	if err := writeIndexFile(w.dir, base, nil); err != nil {
		return err
	}
	w.st = segState{base: base, size: fileHeaderLen, next: base, maxTime: noTime, lastIndexPos: fileHeaderLen, indexSize: fileHeaderLen}
	return w.openFiles()
}

// openFiles opens the .log and .tix of w.st for appending.
func (w *Writer) openFiles() error {
	path := segmentPath(w.dir, w.st.base, logExt)
	log, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("filelog: opening segment %s: %w", path, err)
	}
	ipath := segmentPath(w.dir, w.st.base, indexExt)
	index, err := os.OpenFile(ipath, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		log.Close()
		return fmt.Errorf("filelog: opening index %s: %w", ipath, err)
	}
	w.log, w.index = log, index
	return nil
}

func (w *Writer) closeFiles() error {
	var errs []error
	if w.log != nil {
		errs = append(errs, w.log.Close())
	}
	if w.index != nil {
		errs = append(errs, w.index.Close())
	}
	w.log, w.index = nil, nil
	return errors.Join(errs...)
}

// Publish appends recs and returns once they are written and fsynced. The
// batch is checked first: if any record is too big (MaxRecordBytes,
// MaxHeaders) none is written. A record with a zero Time is stored with
// the current time. recs are not retained. After an error a prefix of
// recs may be in the log (when the batch spanned a rotation): publishing
// them again duplicates that prefix, which at-least-once delivery allows.
func (w *Writer) Publish(ctx context.Context, recs ...stream.Record) error {
	if len(recs) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("filelog: publishing %d records to %s: %w", len(recs), w.dir, err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	err := w.append(recs)
	if err == nil {
		err = w.sync()
	}
	w.report()
	if err != nil {
		return fmt.Errorf("filelog: publishing %d records to %s: %w", len(recs), w.dir, err)
	}
	w.published.Add(uint64(len(recs)))
	return nil
}

// append encodes recs and writes them, rotating segments as they fill.
// Called with mu held.
func (w *Writer) append(recs []stream.Record) error {
	switch {
	case w.closed:
		return errors.New("the writer is closed")
	case w.err != nil:
		return w.err
	}
	for i := range recs {
		if _, err := bodyLen(&recs[i]); err != nil {
			return fmt.Errorf("record %d: %w", i, err)
		}
	}
	now := time.Now().UnixNano()
	st := w.st // advanced per record; becomes w.st when written
	w.buf, w.ibuf = w.buf[:0], w.ibuf[:0]
	for i := range recs {
		n, _ := bodyLen(&recs[i])
		pos := st.size
		if pos > fileHeaderLen && pos+recordHeaderLen+int64(n) > w.cfg.SegmentBytes {
			if err := w.write(st); err != nil {
				return err
			}
			if err := w.rotate(); err != nil {
				return err
			}
			st, pos = w.st, w.st.size
		}
		if pos-st.lastIndexPos >= w.cfg.IndexInterval {
			w.ibuf = appendIndexEntry(w.ibuf, indexEntry{maxTime: st.maxTime, offset: st.next, pos: pos})
			st.lastIndexPos = pos
			st.indexSize += indexEntryLen
		}
		t := now
		if !recs[i].Time.IsZero() {
			t = recs[i].Time.UnixNano()
		}
		w.buf = appendRecord(w.buf, &recs[i], st.next, t)
		st.size = w.st.size + int64(len(w.buf))
		st.next++
		st.maxTime = max(st.maxTime, t)
	}
	return w.write(st)
}

// write writes the encoded records, then their index entries, and makes st
// the state. On an error it truncates both files back to w.st, so no
// record is half there; if even that fails the Writer stops.
func (w *Writer) write(st segState) error {
	_, err := w.log.Write(w.buf)
	if err == nil {
		_, err = w.index.Write(w.ibuf)
	}
	w.buf, w.ibuf = w.buf[:0], w.ibuf[:0]
	if err != nil {
		terr := errors.Join(w.log.Truncate(w.st.size), w.index.Truncate(w.st.indexSize))
		if terr != nil {
			w.err = fmt.Errorf("the writer stopped: a write failed (%v) and could not be undone (%v); reopen the log", err, terr)
		}
		return fmt.Errorf("writing segment %d: %w", w.st.base, err)
	}
	w.st = st
	w.dirty = true
	return nil
}

// sync fsyncs the segment being written. A failed fsync stops the Writer:
// what reached the disk is then unknown until the log is reopened.
func (w *Writer) sync() error {
	if !w.dirty || w.err != nil {
		return w.err
	}
	if err := w.log.Sync(); err != nil {
		w.err = fmt.Errorf("the writer stopped: fsync of segment %d failed: %w; reopen the log", w.st.base, err)
		return w.err
	}
	w.dirty = false
	w.syncs.Add(1)
	return nil
}

// seal writes the index entry that marks the end of the segment being
// written, and fsyncs both of its files.
func (w *Writer) seal() error {
	if w.st.size > fileHeaderLen {
		w.ibuf = appendIndexEntry(w.ibuf[:0], indexEntry{maxTime: w.st.maxTime, offset: w.st.next, pos: w.st.size})
		if _, err := w.index.Write(w.ibuf); err != nil {
			return fmt.Errorf("sealing the index of segment %d: %w", w.st.base, err)
		}
		w.st.indexSize += indexEntryLen
		w.ibuf = w.ibuf[:0]
	}
	w.dirty = true
	if err := w.sync(); err != nil {
		return err
	}
	if err := w.index.Sync(); err != nil {
		return fmt.Errorf("syncing the index of segment %d: %w", w.st.base, err)
	}
	return nil
}

// rotate closes the segment being written and starts the next one.
func (w *Writer) rotate() error {
	err := w.seal()
	if err == nil {
		err = w.closeFiles()
	}
	if err == nil {
		w.closedBytes += w.st.size
		err = w.createSegment(w.st.next)
	}
	if err == nil {
		err = syncDir(w.dir)
	}
	if err != nil {
		w.err = fmt.Errorf("the writer stopped: rotating segment %d failed: %w", w.st.base, err)
		return w.err
	}
	w.segments.Add(1)
	w.retain()
	return nil
}

// retain deletes the oldest closed segments beyond RetainBytes or
// RetainAge. Called with mu held.
func (w *Writer) retain() {
	if w.cfg.RetainBytes <= 0 && w.cfg.RetainAge <= 0 {
		return
	}
	bases, err := listSegments(w.dir)
	if err != nil {
		w.cfg.Logger.Warn("applying retention", "dir", w.dir, "err", err)
		return
	}
	now := time.Now()
	for _, base := range bases {
		if base >= w.st.base {
			break
		}
		path := segmentPath(w.dir, base, logExt)
		fi, err := os.Stat(path)
		if err != nil {
			continue
		}
		tooBig := w.cfg.RetainBytes > 0 && w.closedBytes+w.st.size > w.cfg.RetainBytes
		tooOld := w.cfg.RetainAge > 0 && now.Sub(fi.ModTime()) > w.cfg.RetainAge
		if !tooBig && !tooOld {
			break
		}
		if err := os.Remove(path); err != nil {
			w.cfg.Logger.Warn("deleting a segment", "segment", path, "err", err)
			return
		}
		os.Remove(segmentPath(w.dir, base, indexExt))
		w.closedBytes -= fi.Size()
		w.segments.Add(-1)
		w.deleted.Add(1)
		w.cfg.Logger.Info("deleted a segment", "segment", path, "bytes", fi.Size(), "too_big", tooBig, "too_old", tooOld)
	}
}

// report publishes the state that Stats reads. Called with mu held.
func (w *Writer) report() {
	w.nextOffset.Store(w.st.next)
	w.bytes.Store(w.closedBytes + w.st.size)
}

// Enqueue hands rec to the background writer without blocking. It returns
// false, and counts the record as dropped, when the queue is full or the
// Writer is closed. Queued records are written in batches and fsynced
// every SyncInterval and on Close. The caller must not modify rec's
// slices afterwards.
func (w *Writer) Enqueue(rec stream.Record) bool {
	w.qmu.RLock()
	defer w.qmu.RUnlock()
	if !w.qclosed {
		select {
		case w.queue <- rec:
			return true
		default:
		}
	}
	w.dropped.Add(1)
	return false
}

// EnqueueWait hands rec to the background writer, waiting for room in the
// queue until ctx is done. The record is not taken when it returns an
// error.
func (w *Writer) EnqueueWait(ctx context.Context, rec stream.Record) error {
	w.qmu.RLock()
	defer w.qmu.RUnlock()
	if w.qclosed {
		return fmt.Errorf("filelog: queueing a record for %s: the writer is closed", w.dir)
	}
	select {
	case w.queue <- rec:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("filelog: queueing a record for %s: %w", w.dir, ctx.Err())
	}
}

// run writes queued records until Close, fsyncing every SyncInterval.
func (w *Writer) run() {
	defer close(w.done)
	tick := time.NewTicker(w.cfg.SyncInterval)
	defer tick.Stop()
	batch := make([]stream.Record, 0, 256)
	for {
		select {
		case rec := <-w.queue:
			batch = append(batch[:0], rec)
			w.writeQueued(w.fill(batch))
		case <-tick.C:
			w.mu.Lock()
			if err := w.sync(); err != nil {
				w.cfg.Logger.Error("syncing queued records", "dir", w.dir, "err", err)
			}
			if time.Since(w.lastRetain) >= time.Minute {
				w.retain()
				w.lastRetain = time.Now()
				w.report()
			}
			w.mu.Unlock()
		case <-w.stop:
			for {
				select {
				case rec := <-w.queue:
					batch = append(batch[:0], rec)
					w.writeQueued(w.fill(batch))
				default:
					return
				}
			}
		}
	}
}

// fill adds what is waiting in the queue to batch, up to its capacity.
func (w *Writer) fill(batch []stream.Record) []stream.Record {
	for len(batch) < cap(batch) {
		select {
		case rec := <-w.queue:
			batch = append(batch, rec)
		default:
			return batch
		}
	}
	return batch
}

// writeQueued writes a batch from the queue, without fsync. A record that
// cannot be stored is counted as failed on its own.
func (w *Writer) writeQueued(batch []stream.Record) {
	ok := batch[:0]
	for _, rec := range batch {
		if _, err := bodyLen(&rec); err != nil {
			w.failed.Add(1)
			w.cfg.Logger.Error("dropping a queued record that cannot be stored", "dir", w.dir, "err", err)
			continue
		}
		ok = append(ok, rec)
	}
	if len(ok) == 0 {
		return
	}
	w.mu.Lock()
	err := w.append(ok)
	w.report()
	w.mu.Unlock()
	if err != nil {
		w.failed.Add(uint64(len(ok)))
		w.cfg.Logger.Error("writing queued records", "dir", w.dir, "records", len(ok), "err", err)
		return
	}
	w.published.Add(uint64(len(ok)))
}

// Close writes what is queued, seals and fsyncs the segment being written
// and releases the lock. Enqueue calls after Close count as dropped.
func (w *Writer) Close() error {
	w.closeOnce.Do(func() {
		w.qmu.Lock()
		w.qclosed = true
		w.qmu.Unlock()
		close(w.stop)
		<-w.done

		w.mu.Lock()
		defer w.mu.Unlock()
		var errs []error
		if w.err == nil {
			errs = append(errs, w.seal())
		}
		w.closed = true
		errs = append(errs, w.closeFiles(), w.lock.Close())
		if err := errors.Join(errs...); err != nil {
			w.closeErr = fmt.Errorf("filelog: closing %s: %w", w.dir, err)
		}
	})
	return w.closeErr
}

// Stats returns a snapshot of the counters.
func (w *Writer) Stats() WriterStats {
	return WriterStats{
		Published:       w.published.Load(),
		Failed:          w.failed.Load(),
		Dropped:         w.dropped.Load(),
		Queued:          len(w.queue),
		NextOffset:      w.nextOffset.Load(),
		Bytes:           w.bytes.Load(),
		Segments:        w.segments.Load(),
		SegmentsDeleted: w.deleted.Load(),
		Syncs:           w.syncs.Load(),
		TornBytesCut:    w.tornCut,
	}
}
