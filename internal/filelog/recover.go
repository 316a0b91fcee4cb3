package filelog

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// segState is where a segment's valid records end, and what the Writer
// needs to keep appending to it.
type segState struct {
	base         int64
	size         int64 // bytes of the .log: the position of the next record
	next         int64 // offset of the next record
	maxTime      int64 // largest record time so far (Unix ns), noTime when empty
	lastIndexPos int64 // position of the last index entry (the header end when none)
	indexSize    int64 // bytes of the .tix
}

// tail is the result of scanTail.
type tail struct {
	segState
	entries []indexEntry // the trusted entries plus those rebuilt by the scan
	bad     error        // why the scan stopped before the end of the file; nil at a clean end
}

// scanTail finds the end of the valid records of a segment of size bytes.
// It starts at the last index entry that points at a valid record (or at
// the first record when none does), decodes records up to the first one
// that is short or bad, and rebuilds the index entries of the part it
// scanned, one per interval bytes. Only read errors are returned as
// errors; damage is reported in tail.bad.
func scanTail(f io.ReaderAt, name string, base, size int64, entries []indexEntry, interval int64) (tail, error) {
	k := len(entries) - 1
	for ; k >= 0; k-- {
		if e := entries[k]; e.pos < size && verifyEntry(f, name, e) {
			break
		}
	}
	t := tail{segState: segState{base: base, size: fileHeaderLen, next: base, maxTime: noTime, lastIndexPos: fileHeaderLen}}
	t.entries = entries[:k+1]
	if k >= 0 {
		e := entries[k]
		t.size, t.next, t.maxTime, t.lastIndexPos = e.pos, e.offset, e.maxTime, e.pos
	}
	s := newScanner(f, name, t.size, t.next, nil)
	for {
		pos := s.pos
		rec, err := s.record()
		var cerr *CorruptError
		switch {
		case errors.Is(err, errShort) && pos == size:
			// A clean end.
		case errors.Is(err, errShort), errors.As(err, &cerr):
			t.bad = err
		case err != nil:
			return tail{}, err
		}
		if err != nil {
			break
		}
		if pos-t.lastIndexPos >= interval {
			t.entries = append(t.entries, indexEntry{maxTime: t.maxTime, offset: rec.Offset, pos: pos})
			t.lastIndexPos = pos
		}
		t.maxTime = max(t.maxTime, rec.Time.UnixNano())
		t.size, t.next = s.pos, s.next
	}
	t.indexSize = fileHeaderLen + int64(len(t.entries))*indexEntryLen
	return t, nil
}

// writeIndexFile replaces the .tix of the segment at base with entries:
// a temporary file, fsynced, renamed over the old one.
func writeIndexFile(dir string, base int64, entries []indexEntry) error {
	path := segmentPath(dir, base, indexExt)
	b := appendFileHeader(make([]byte, 0, fileHeaderLen+len(entries)*indexEntryLen), indexMagic, base)
	for _, e := range entries {
		b = appendIndexEntry(b, e)
	}
	tmp := path + ".tmp"
	if err := writeFileSync(tmp, b); err != nil {
		return fmt.Errorf("filelog: writing index %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("filelog: replacing index %s: %w", path, err)
	}
	return nil
}

// writeFileSync writes b to a new file at path and fsyncs it.
func writeFileSync(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	return errors.Join(err, f.Close())
}

// syncDir fsyncs a directory, so that files created or renamed in it are
// durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("filelog: syncing %s: %w", dir, err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("filelog: syncing %s: %w", filepath.Clean(dir), err)
	}
	return nil
}
