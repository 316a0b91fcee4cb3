// Package schema owns tapline's data contract: the protobuf messages that
// flow between the stages (Exchange from the recorder, ReplayResult from the
// replayer) and the codec that frames them as Kafka records.
//
// Input: Go values from a stage. Output: record values plus the headers that
// name the schema and its version. A decoder refuses an unknown major
// version with *UnsupportedVersionError, so a consumer can route the record
// to the dead-letter topic instead of guessing.
package schema

import (
	"bufio"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"
)

// Record header keys carried by every tapline Kafka record.
const (
	HeaderSchema  = "tapline-schema"
	HeaderVersion = "tapline-schema-version"
)

// Schema names, the values of HeaderSchema.
const (
	SchemaExchange     = "tapline.Exchange"
	SchemaReplayResult = "tapline.ReplayResult"
)

// Version is the schema version this build writes. Decoders accept any
// minor version of the same major: fields added in a newer minor are
// skipped by protobuf.
const (
	VersionMajor = 1
	VersionMinor = 1
)

// Version is VersionMajor.VersionMinor as written in HeaderVersion.
var Version = fmt.Sprintf("%d.%d", VersionMajor, VersionMinor)

// RecordHeader is a Kafka record header. It mirrors kafka-go's
// protocol.Header so this package does not depend on a Kafka client.
type RecordHeader struct {
	Key   string
	Value []byte
}

// ErrNotTapline is returned (wrapped) when a record lacks the schema
// headers or names another schema than the one asked for.
var ErrNotTapline = errors.New("not a tapline record")

// UnsupportedVersionError is returned when a record's schema version has a
// major version this build cannot read.
type UnsupportedVersionError struct {
	Schema  string
	Version string
}

func (e *UnsupportedVersionError) Error() string {
	return fmt.Sprintf("%s schema version %q is not supported (this build reads %d.x); upgrade tapline", e.Schema, e.Version, VersionMajor)
}

// ids is the state behind NewID: crypto/rand read 4 KiB at a time (one
// read serves 512 ids instead of a system call each; ids are made per
// exchange on the capture path), and the timestamp of the last id, which
// keeps ids strictly increasing.
var ids = struct {
	sync.Mutex
	r    *bufio.Reader
	rand [8]byte
	last int64 // unix_ts_ms<<12 | rand_a of the last id
}{r: bufio.NewReaderSize(rand.Reader, 4096)}

// NewID returns a new time-ordered exchange id: a UUIDv7 (RFC 9562) in
// its textual form, whose 12 rand_a bits count sub-millisecond time (as
// github.com/google/uuid's NewV7 does), so that ids made by one process
// are strictly increasing. It is safe for concurrent use.
func NewID() (string, error) {
	var id uuid.UUID
	ids.Lock()
	if _, err := io.ReadFull(ids.r, ids.rand[:]); err != nil {
		ids.Unlock()
		return "", fmt.Errorf("generating exchange id: %w", err)
	}
	copy(id[8:], ids.rand[:])
	nano := time.Now().UnixNano()
	milli := nano / 1e6
	// 12 bits of sub-millisecond time, in units of 256 ns (0..3906).
	t := milli<<12 | (nano-milli*1e6)>>8
	if t <= ids.last {
		t = ids.last + 1
	}
	ids.last = t
	ids.Unlock()
	milli, seq := t>>12, t&0xfff
	binary.BigEndian.PutUint16(id[0:], uint16(milli>>32))
	binary.BigEndian.PutUint32(id[2:], uint32(milli))
	id[6] = 0x70 | byte(seq>>8) // version 7
	id[7] = byte(seq)
	id[8] = id[8]&0x3f | 0x80 // variant 10 (RFC 9562)
	return id.String(), nil
}

// EncodeExchange returns the record value and headers for e. The value
// is what proto.MarshalOptions{Deterministic: true} writes, made by the
// hand-written encoder of exchange_wire.go in one allocation of its exact
// size.
func EncodeExchange(e *Exchange) ([]byte, []RecordHeader, error) {
	if e == nil {
		return nil, recordHeaders(SchemaExchange), nil
	}
	sz, err := measureExchange(e)
	if err != nil {
		return nil, nil, fmt.Errorf("encoding %s: %w", SchemaExchange, err)
	}
	return appendExchange(make([]byte, 0, sz.total), e, &sz), recordHeaders(SchemaExchange), nil
}

// ExchangeEncoder encodes exchanges like EncodeExchange, but carves the
// record values out of large shared buffers (slabs) instead of allocating
// each: on the capture path that saves one allocation of a few kilobytes
// per exchange, and most of the allocator's and collector's work for it.
// The zero value is ready to use. An ExchangeEncoder is not safe for
// concurrent use.
//
// What a slab costs: it stays in memory until every value carved from it
// is unreachable, so a consumer that keeps one value keeps up to
// ExchangeSlabSize bytes. A consumer that releases values in about the
// order it got them (a producer publishing them) holds one or two slabs
// more than the values themselves.
type ExchangeEncoder struct {
	slab []byte // len: bytes handed out; cap: the slab
}

// ExchangeSlabSize is the size of an ExchangeEncoder's slabs; a value
// longer than an eighth of it gets a buffer of its own.
const ExchangeSlabSize = 256 << 10

// Encode returns the record value and headers for e, as EncodeExchange
// does. The value's capacity is its length (appending to it copies it);
// the headers are shared by every record and must not be modified.
func (enc *ExchangeEncoder) Encode(e *Exchange) ([]byte, []RecordHeader, error) {
	if e == nil {
		return nil, exchangeHeaders[:2:2], nil
	}
	sz, err := measureExchange(e)
	if err != nil {
		return nil, nil, fmt.Errorf("encoding %s: %w", SchemaExchange, err)
	}
	var buf []byte
	switch n := sz.total; {
	case n > ExchangeSlabSize/8:
		buf = make([]byte, 0, n)
	default:
		if cap(enc.slab)-len(enc.slab) < n {
			enc.slab = make([]byte, 0, ExchangeSlabSize)
		}
		start := len(enc.slab)
		enc.slab = enc.slab[:start+n]
		buf = enc.slab[start : start : start+n]
	}
	return appendExchange(buf, e, &sz), exchangeHeaders[:2:2], nil
}

// DecodeExchange decodes a record written by EncodeExchange.
func DecodeExchange(value []byte, headers []RecordHeader) (*Exchange, error) {
	e := new(Exchange)
	if err := decode(SchemaExchange, value, headers, e); err != nil {
		return nil, err
	}
	return e, nil
}

// EncodeReplayResult returns the record value and headers for r.
func EncodeReplayResult(r *ReplayResult) ([]byte, []RecordHeader, error) {
	return encode(SchemaReplayResult, r)
}

// DecodeReplayResult decodes a record written by EncodeReplayResult.
func DecodeReplayResult(value []byte, headers []RecordHeader) (*ReplayResult, error) {
	r := new(ReplayResult)
	if err := decode(SchemaReplayResult, value, headers, r); err != nil {
		return nil, err
	}
	return r, nil
}

func encode(name string, m proto.Message) ([]byte, []RecordHeader, error) {
	// Deterministic so that the same message always has the same bytes
	// (golden files, and hashing downstream).
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		return nil, nil, fmt.Errorf("encoding %s: %w", name, err)
	}
	return b, recordHeaders(name), nil
}

// recordHeaders returns the headers of a record holding schema name.
func recordHeaders(name string) []RecordHeader {
	return []RecordHeader{
		{Key: HeaderSchema, Value: schemaNameBytes[name]},
		{Key: HeaderVersion, Value: versionBytes},
	}
}

// Header values shared by every encoded record; never modified.
var (
	exchangeHeaders = recordHeaders(SchemaExchange)
	versionBytes    = []byte(Version)
	schemaNameBytes = map[string][]byte{
		SchemaExchange:     []byte(SchemaExchange),
		SchemaReplayResult: []byte(SchemaReplayResult),
	}
)

func decode(name string, value []byte, headers []RecordHeader, m proto.Message) error {
	var gotName, gotVersion string
	var haveName, haveVersion bool
	for _, h := range headers {
		switch h.Key {
		case HeaderSchema:
			gotName, haveName = string(h.Value), true
		case HeaderVersion:
			gotVersion, haveVersion = string(h.Value), true
		}
	}
	if !haveName || !haveVersion {
		return fmt.Errorf("decoding %s: %w: missing %s or %s header", name, ErrNotTapline, HeaderSchema, HeaderVersion)
	}
	if gotName != name {
		return fmt.Errorf("decoding %s: %w: record holds %q", name, ErrNotTapline, gotName)
	}
	major, ok := parseMajor(gotVersion)
	if !ok || major != VersionMajor {
		return &UnsupportedVersionError{Schema: name, Version: gotVersion}
	}
	if err := proto.Unmarshal(value, m); err != nil {
		return fmt.Errorf("decoding %s: %w", name, err)
	}
	return nil
}

// parseMajor returns the major part of "MAJOR.MINOR".
func parseMajor(v string) (int, bool) {
	majorText, _, found := strings.Cut(v, ".")
	if !found {
		return 0, false
	}
	major, err := strconv.Atoi(majorText)
	if err != nil || major < 0 {
		return 0, false
	}
	return major, true
}
