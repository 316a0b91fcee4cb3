package filelog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"time"

	"github.com/tapline/tapline/internal/stream"
	"github.com/tapline/tapline/schema"
)

const (
	// MaxRecordBytes caps a record's body (everything after its CRC). The
	// Writer refuses bigger records; a Reader treats a bigger length as
	// damage, so a corrupt length never makes it allocate more than this.
	MaxRecordBytes = 64 << 20
	// MaxHeaders caps the headers of one record.
	MaxHeaders = 1 << 16

	fileHeaderLen   = 16 // magic, version, reserved, base offset
	recordHeaderLen = 8  // body length, CRC
	minBodyLen      = 8 + 8 + 1 + 1 + 1
	formatVersion   = 1
)

var (
	logMagic   = [4]byte{'T', 'L', 'O', 'G'}
	indexMagic = [4]byte{'T', 'I', 'D', 'X'}
	castagnoli = crc32.MakeTable(crc32.Castagnoli)
)

// noTime is the largest time of a segment that has no records yet.
const noTime = math.MinInt64

// CorruptError reports bytes of a segment that are not a valid record.
type CorruptError struct {
	File   string // path of the segment
	Pos    int64  // byte position of the bad record
	Reason string

	end int64 // where the record claims to end; 0 when its length is bad
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("filelog: corrupt record in %s at byte %d: %s", e.File, e.Pos, e.Reason)
}

// errShort says the file ends before the record at the read position does:
// it is being written, or it is a torn tail.
var errShort = errors.New("record incomplete")

// appendFileHeader appends the 16-byte header of a .log or .tix file.
func appendFileHeader(dst []byte, magic [4]byte, base int64) []byte {
	dst = append(dst, magic[:]...)
	dst = append(dst, formatVersion, 0, 0, 0)
	return binary.BigEndian.AppendUint64(dst, uint64(base))
}

// checkFileHeader verifies a file header read from the start of a file.
func checkFileHeader(b []byte, magic [4]byte, base int64) error {
	switch {
	case len(b) < fileHeaderLen:
		return errShort
	case [4]byte(b[:4]) != magic:
		return fmt.Errorf("not a tapline log file (magic %q, want %q)", b[:4], magic[:])
	case b[4] != formatVersion:
		return fmt.Errorf("format version %d (this build reads version %d)", b[4], formatVersion)
	case int64(binary.BigEndian.Uint64(b[8:16])) != base:
		return fmt.Errorf("header says base offset %d, file name says %d", int64(binary.BigEndian.Uint64(b[8:16])), base)
	}
	return nil
}

// bodyLen is the length of rec's encoded body, or an error when rec cannot
// be stored.
func bodyLen(rec *stream.Record) (int, error) {
	if len(rec.Headers) > MaxHeaders {
		return 0, fmt.Errorf("%d headers (at most %d)", len(rec.Headers), MaxHeaders)
	}
	n := 16 + bytesLen(rec.Key) + uvarintLen(uint64(len(rec.Headers))) + bytesLen(rec.Value)
	for _, h := range rec.Headers {
		n += uvarintLen(uint64(len(h.Key))) + len(h.Key) + bytesLen(h.Value)
	}
	if n > MaxRecordBytes {
		return 0, fmt.Errorf("record of %d bytes (at most %d)", n, MaxRecordBytes)
	}
	return n, nil
}

func bytesLen(b []byte) int {
	if b == nil {
		return 1
	}
	return varintLen(int64(len(b))) + len(b)
}

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

func varintLen(v int64) int { return uvarintLen(uint64(v<<1) ^ uint64(v>>63)) }

// appendRecord appends rec, stored with offset off and time t (Unix ns),
// to dst. rec must have passed bodyLen.
func appendRecord(dst []byte, rec *stream.Record, off, t int64) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0, 0, 0, 0, 0) // length and CRC, filled in below
	dst = binary.BigEndian.AppendUint64(dst, uint64(off))
	dst = binary.BigEndian.AppendUint64(dst, uint64(t))
	dst = appendBytes(dst, rec.Key)
	dst = binary.AppendUvarint(dst, uint64(len(rec.Headers)))
	for _, h := range rec.Headers {
		dst = binary.AppendUvarint(dst, uint64(len(h.Key)))
		dst = append(dst, h.Key...)
		dst = appendBytes(dst, h.Value)
	}
	dst = appendBytes(dst, rec.Value)
	body := dst[start+recordHeaderLen:]
	binary.BigEndian.PutUint32(dst[start:], uint32(len(body)))
	binary.BigEndian.PutUint32(dst[start+4:], crc32.Checksum(body, castagnoli))
	return dst
}

func appendBytes(dst, b []byte) []byte {
	if b == nil {
		return binary.AppendVarint(dst, -1)
	}
	return append(binary.AppendVarint(dst, int64(len(b))), b...)
}

// decodeBody decodes a record body whose CRC was verified. Key, Value and
// header values alias body, which the record then owns.
func decodeBody(body []byte) (stream.Record, error) {
	if len(body) < minBodyLen {
		return stream.Record{}, fmt.Errorf("body of %d bytes is too short", len(body))
	}
	rec := stream.Record{
		Offset: int64(binary.BigEndian.Uint64(body[0:8])),
		Time:   time.Unix(0, int64(binary.BigEndian.Uint64(body[8:16]))),
	}
	d := decoder{b: body, i: 16}
	rec.Key = d.bytes()
	n := d.uvarint()
	if d.err == nil && (n > MaxHeaders || n > uint64(len(body)-d.i)/2) {
		d.fail("header count %d is impossible", n)
	}
	if d.err == nil && n > 0 {
		rec.Headers = make([]schema.RecordHeader, 0, min(n, 64))
		for range n {
			k := d.take(d.uvarint())
			v := d.bytes()
			if d.err != nil {
				break
			}
			rec.Headers = append(rec.Headers, schema.RecordHeader{Key: string(k), Value: v})
		}
	}
	rec.Value = d.bytes()
	if d.err == nil && d.i != len(body) {
		d.fail("%d bytes after the value", len(body)-d.i)
	}
	if d.err != nil {
		return stream.Record{}, d.err
	}
	return rec, nil
}

// decoder reads the variable part of a body; the first error sticks.
type decoder struct {
	b   []byte
	i   int
	err error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf(format, args...)
	}
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b[d.i:])
	if n <= 0 {
		d.fail("bad uvarint at body byte %d", d.i)
		return 0
	}
	d.i += n
	return v
}

// take returns the next n bytes, capped so appending to them cannot
// overwrite what follows.
func (d *decoder) take(n uint64) []byte {
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)-d.i) {
		d.fail("length %d runs past the body", n)
		return nil
	}
	end := d.i + int(n)
	b := d.b[d.i:end:end]
	d.i = end
	return b
}

// bytes reads a zigzag varint length (-1 = nil) and that many bytes.
func (d *decoder) bytes() []byte {
	if d.err != nil {
		return nil
	}
	v, n := binary.Varint(d.b[d.i:])
	if n <= 0 || v < -1 {
		d.fail("bad length at body byte %d", d.i)
		return nil
	}
	d.i += n
	if v == -1 {
		return nil
	}
	return d.take(uint64(v))
}
