package filelog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/tapline/tapline/internal/stream"
)

const (
	logExt   = ".log"
	indexExt = ".tix"
	nameLen  = 20 // digits of a segment name: any int64 offset fits
)

// segmentPath is the .log (ext logExt) or .tix (indexExt) file of the
// segment starting at base.
func segmentPath(dir string, base int64, ext string) string {
	return filepath.Join(dir, fmt.Sprintf("%0*d%s", nameLen, base, ext))
}

// listSegments returns the base offsets of the segments in dir, oldest
// first. Files that are not named like a segment are ignored.
func listSegments(dir string) ([]int64, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("filelog: listing %s: %w", dir, err)
	}
	var bases []int64
	for _, e := range ents {
		if base, ok := parseSegmentName(e.Name(), logExt); ok && e.Type().IsRegular() {
			bases = append(bases, base)
		}
	}
	slices.Sort(bases)
	return bases, nil
}

func parseSegmentName(name, ext string) (int64, bool) {
	digits, ok := strings.CutSuffix(name, ext)
	if !ok || len(digits) != nameLen {
		return 0, false
	}
	base, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || base < 0 {
		return 0, false
	}
	return base, true
}

// readAhead is how much of a segment a scanner reads at once.
const readAhead = 64 << 10

// scanner decodes the records of one segment file in order. It reads
// through f with ReadAt only, so the file may grow while it is used, and
// it keeps no bytes of a record it could not decode: the next call reads
// them again.
type scanner struct {
	f    io.ReaderAt
	name string // path, for errors
	pos  int64  // byte position of the next record
	next int64  // offset the next record must carry

	buf    []byte // file bytes from bufPos
	bufPos int64
	ahead  int // bytes to read at once, ≤ readAhead

	decoded *atomic.Int64 // counts decoded records, if not nil
}

func newScanner(f io.ReaderAt, name string, pos, next int64, decoded *atomic.Int64) *scanner {
	return &scanner{f: f, name: name, pos: pos, next: next, ahead: readAhead, decoded: decoded}
}

// record decodes the record at s.pos and moves past it. It returns errShort
// when the file ends inside the record, a *CorruptError when the bytes are
// not a valid record with offset s.next, or a read error; in all these
// cases s does not move.
func (s *scanner) record() (stream.Record, error) {
	hdr, err := s.peek(recordHeaderLen)
	if err != nil {
		return stream.Record{}, err
	}
	n := int64(binary.BigEndian.Uint32(hdr[0:4]))
	sum := binary.BigEndian.Uint32(hdr[4:8])
	if n < minBodyLen || n > MaxRecordBytes {
		s.drop()
		return stream.Record{}, s.corrupt(0, "body length %d is out of range [%d, %d]", n, minBodyLen, MaxRecordBytes)
	}
	end := s.pos + recordHeaderLen + n
	body, err := s.body(int(n))
	if err != nil {
		s.drop()
		return stream.Record{}, err
	}
	if got := crc32.Checksum(body, castagnoli); got != sum {
		s.drop()
		return stream.Record{}, s.corrupt(end, "CRC-32C is %08x, header says %08x", got, sum)
	}
	rec, err := decodeBody(body)
	if err != nil {
		s.drop()
		return stream.Record{}, s.corrupt(end, "%v", err)
	}
	if rec.Offset != s.next {
		s.drop()
		return stream.Record{}, s.corrupt(end, "offset %d where %d was expected", rec.Offset, s.next)
	}
	s.pos = end
	s.next++
	if s.decoded != nil {
		s.decoded.Add(1)
	}
	return rec, nil
}

// body returns a fresh copy of the n body bytes of the record at s.pos.
func (s *scanner) body(n int) ([]byte, error) {
	if recordHeaderLen+n <= readAhead {
		b, err := s.peek(recordHeaderLen + n)
		if err != nil {
			return nil, err
		}
		return slices.Clone(b[recordHeaderLen:]), nil
	}
	// A big record is read straight into its own buffer, once the file is
	// known to hold all of it (so a bad length costs no allocation).
	var last [1]byte
	if _, err := s.f.ReadAt(last[:], s.pos+recordHeaderLen+int64(n)-1); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errShort
		}
		return nil, fmt.Errorf("filelog: reading %s: %w", s.name, err)
	}
	b := make([]byte, n)
	if _, err := s.f.ReadAt(b, s.pos+recordHeaderLen); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errShort
		}
		return nil, fmt.Errorf("filelog: reading %s: %w", s.name, err)
	}
	return b, nil
}

// peek returns n ≤ readAhead bytes at s.pos, reading ahead as needed.
func (s *scanner) peek(n int) ([]byte, error) {
	if s.pos >= s.bufPos && s.pos+int64(n) <= s.bufPos+int64(len(s.buf)) {
		i := s.pos - s.bufPos
		return s.buf[i : i+int64(n)], nil
	}
	size := max(n, s.ahead)
	if cap(s.buf) < size {
		s.buf = make([]byte, size)
	}
	m, err := s.f.ReadAt(s.buf[:size], s.pos)
	s.buf, s.bufPos = s.buf[:m], s.pos
	if m >= n {
		return s.buf[:n], nil
	}
	s.drop()
	if err == nil || errors.Is(err, io.EOF) {
		return nil, errShort
	}
	return nil, fmt.Errorf("filelog: reading %s: %w", s.name, err)
}

// drop forgets the read-ahead bytes, so a record that was incomplete or
// bad is read from the file again next time (a new writer may have cut a
// torn tail and written it anew).
func (s *scanner) drop() { s.buf = s.buf[:0] }

// corrupt describes bad bytes at s.pos; end is where the record claims to
// end, 0 when its length itself is bad.
func (s *scanner) corrupt(end int64, format string, args ...any) error {
	return &CorruptError{File: s.name, Pos: s.pos, Reason: fmt.Sprintf(format, args...), end: end}
}

// indexEntry is one time-index entry; see the package doc.
type indexEntry struct {
	maxTime int64 // largest record time (Unix ns) before offset
	offset  int64
	pos     int64
}

const indexEntryLen = 24

func appendIndexEntry(dst []byte, e indexEntry) []byte {
	dst = binary.BigEndian.AppendUint64(dst, uint64(e.maxTime))
	dst = binary.BigEndian.AppendUint64(dst, uint64(e.offset))
	return binary.BigEndian.AppendUint64(dst, uint64(e.pos))
}

func parseIndexEntry(b []byte) indexEntry {
	return indexEntry{
		maxTime: int64(binary.BigEndian.Uint64(b[0:8])),
		offset:  int64(binary.BigEndian.Uint64(b[8:16])),
		pos:     int64(binary.BigEndian.Uint64(b[16:24])),
	}
}

// readIndex returns the plausible entries of the .tix file of the segment
// at base whose .log is logSize bytes long: the longest prefix whose
// entries lie inside the log and grow in offset and position with a
// monotone time. A missing or unreadable index yields no entries; the
// caller then scans the log. Entries are not checked against the log's
// records: see verifyEntry.
func readIndex(dir string, base, logSize int64) []indexEntry {
	b, err := os.ReadFile(segmentPath(dir, base, indexExt))
	if err != nil || checkFileHeader(b, indexMagic, base) != nil {
		return nil
	}
	b = b[fileHeaderLen:]
	entries := make([]indexEntry, 0, len(b)/indexEntryLen)
	prev := indexEntry{maxTime: noTime, offset: base - 1, pos: fileHeaderLen - 1}
	for ; len(b) >= indexEntryLen; b = b[indexEntryLen:] {
		e := parseIndexEntry(b)
		if e.offset <= prev.offset || e.pos <= prev.pos || e.maxTime < prev.maxTime || e.pos > logSize {
			break
		}
		entries = append(entries, e)
		prev = e
	}
	return entries
}

// lastIndexEntry reads only the last entry of the segment's index, if it
// is plausible for a log of logSize bytes.
func lastIndexEntry(dir string, base, logSize int64) (indexEntry, bool) {
	f, err := os.Open(segmentPath(dir, base, indexExt))
	if err != nil {
		return indexEntry{}, false
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return indexEntry{}, false
	}
	n := (fi.Size() - fileHeaderLen) / indexEntryLen
	if n <= 0 {
		return indexEntry{}, false
	}
	var b [fileHeaderLen]byte
	if _, err := f.ReadAt(b[:], 0); err != nil || checkFileHeader(b[:], indexMagic, base) != nil {
		return indexEntry{}, false
	}
	var eb [indexEntryLen]byte
	if _, err := f.ReadAt(eb[:], fileHeaderLen+(n-1)*indexEntryLen); err != nil {
		return indexEntry{}, false
	}
	e := parseIndexEntry(eb[:])
	if e.offset < base || e.pos < fileHeaderLen || e.pos > logSize {
		return indexEntry{}, false
	}
	return e, true
}

// verifyEntry reports whether the record at e.pos of the segment read by f
// is a valid record with offset e.offset. An entry at the end of the log
// (a seal) cannot be checked this way and is reported as unverified.
func verifyEntry(f io.ReaderAt, name string, e indexEntry) bool {
	s := newScanner(f, name, e.pos, e.offset, nil)
	s.ahead = 0 // read just the record
	_, err := s.record()
	return err == nil
}
