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
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

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
	VersionMinor = 0
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

// idRandom buffers crypto/rand for NewID: one read of 4 KiB serves about
// 250 ids instead of a system call each (ids are made per exchange on the
// capture path).
var idRandom = struct {
	sync.Mutex
	r *bufio.Reader
}{r: bufio.NewReaderSize(rand.Reader, 4096)}

// NewID returns a new time-ordered exchange id (UUIDv7). It is safe for
// concurrent use.
func NewID() (string, error) {
	idRandom.Lock()
	id, err := uuid.NewV7FromReader(idRandom.r)
	idRandom.Unlock()
	if err != nil {
		return "", fmt.Errorf("generating exchange id: %w", err)
	}
	return id.String(), nil
}

// EncodeExchange returns the record value and headers for e.
func EncodeExchange(e *Exchange) ([]byte, []RecordHeader, error) {
	return encode(SchemaExchange, e)
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
	return b, []RecordHeader{
		{Key: HeaderSchema, Value: schemaNameBytes[name]},
		{Key: HeaderVersion, Value: versionBytes},
	}, nil
}

// Header values shared by every encoded record; never modified.
var (
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
