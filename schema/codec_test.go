package schema

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"

	"google.golang.org/protobuf/proto"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// sampleExchange is the fixed Exchange pinned by testdata/exchange_v1.golden.
// It uses every field, including repeated headers that differ only in case.
func sampleExchange() *Exchange {
	return &Exchange{
		Id:         "0190a8c4-5a1e-7c3b-9f00-0123456789ab",
		SessionKey: "10.0.0.1:51234->10.0.0.2:80",
		Client:     &Endpoint{Ip: "10.0.0.1", Port: 51234},
		Server:     &Endpoint{Ip: "10.0.0.2", Port: 80},
		Times: &CaptureTimes{
			RequestFirstByteUnixNano:  1_700_000_000_000_000_000,
			RequestLastByteUnixNano:   1_700_000_000_000_100_000,
			ResponseFirstByteUnixNano: 1_700_000_000_002_000_000,
			ResponseLastByteUnixNano:  1_700_000_000_002_500_000,
		},
		Request: &Request{
			Method: "POST",
			Target: "/users/123?x=1",
			Proto:  "HTTP/1.1",
			Host:   "api.example.com",
			Headers: []*Header{
				{Name: "Host", Value: "api.example.com"},
				{Name: "X-Tag", Value: "a"},
				{Name: "x-tag", Value: "b"},
				{Name: "Content-Length", Value: "13"},
			},
			Body:     []byte(`{"name":"jo"}`),
			BodySize: 13,
		},
		Original: &Exchange_Response{Response: &Response{
			Status:        201,
			Proto:         "HTTP/1.1",
			Reason:        "Created",
			Headers:       []*Header{{Name: "Set-Cookie", Value: "a=1"}, {Name: "Set-Cookie", Value: "b=2"}},
			Body:          []byte("0123456789"),
			BodyTruncated: true,
			BodySize:      4096,
		}},
		Recorder: "host-1",
	}
}

func sampleResult() *ReplayResult {
	missing := sampleExchange()
	missing.Original = &Exchange_ResponseMissing{ResponseMissing: &ResponseMissing{
		Reason: MissingReason_MISSING_REASON_TIMEOUT, Detail: "no response in 30s",
	}}
	return &ReplayResult{
		Exchange: missing,
		Outcomes: []*TargetOutcome{
			{Target: "candidate", Url: "http://staging:8080/users/123?x=1", SentUnixNano: 1_700_000_100_000_000_000, LatencyNanos: 3_000_000,
				Result: &TargetOutcome_Response{Response: &Response{Status: 500, Proto: "HTTP/1.1", Reason: "Internal Server Error", BodySize: 0}}},
			{Target: "baseline", Url: "http://baseline:8080/users/123?x=1", SentUnixNano: 1_700_000_100_000_000_001,
				Result: &TargetOutcome_Error{Error: "dial tcp: connection refused"}},
		},
		Replayer: "replayer-0",
	}
}

// sampleResultV1_1 is sampleResult as a 1.1 replayer writes it: the error
// has a kind.
func sampleResultV1_1() *ReplayResult {
	r := sampleResult()
	r.Outcomes[1].ErrorKind = "connection_refused"
	return r
}

// TestGolden pins the wire format: today's encoder must write exactly the
// committed bytes, and the committed bytes must decode to the same message.
// Run `go test ./schema -update` only for a deliberate, compatible change.
func TestGolden(t *testing.T) {
	cases := []struct {
		file   string
		msg    proto.Message
		encode func() ([]byte, []RecordHeader, error)
		decode func([]byte, []RecordHeader) (proto.Message, error)
	}{
		{
			file:   "exchange_v1.golden",
			msg:    sampleExchange(),
			encode: func() ([]byte, []RecordHeader, error) { return EncodeExchange(sampleExchange()) },
			decode: func(b []byte, h []RecordHeader) (proto.Message, error) { return DecodeExchange(b, h) },
		},
		{
			file:   "replay_result_v1.golden",
			msg:    sampleResult(),
			encode: func() ([]byte, []RecordHeader, error) { return EncodeReplayResult(sampleResult()) },
			decode: func(b []byte, h []RecordHeader) (proto.Message, error) { return DecodeReplayResult(b, h) },
		},
		{
			// 1.1 added TargetOutcome.error_kind; the 1.0 file above still
			// decodes, with the kind empty.
			file:   "replay_result_v1_1.golden",
			msg:    sampleResultV1_1(),
			encode: func() ([]byte, []RecordHeader, error) { return EncodeReplayResult(sampleResultV1_1()) },
			decode: func(b []byte, h []RecordHeader) (proto.Message, error) { return DecodeReplayResult(b, h) },
		},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			got, headers, err := tc.encode()
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", tc.file)
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("reading golden file (create it with -update): %v", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("encoding changed the wire format:\n got %x\nwant %x", got, want)
			}
			decoded, err := tc.decode(want, headers)
			if err != nil {
				t.Fatalf("decoding golden file: %v", err)
			}
			if !proto.Equal(decoded, tc.msg) {
				t.Errorf("golden file decodes to\n%v\nwant\n%v", decoded, tc.msg)
			}
		})
	}
}

func TestDecodeHeaders(t *testing.T) {
	value, _, err := EncodeExchange(sampleExchange())
	if err != nil {
		t.Fatal(err)
	}
	hdr := func(name, version string) []RecordHeader {
		return []RecordHeader{{Key: HeaderSchema, Value: []byte(name)}, {Key: HeaderVersion, Value: []byte(version)}}
	}
	cases := []struct {
		name        string
		headers     []RecordHeader
		wantErr     error // errors.Is target; nil means success
		wantVersion bool  // want *UnsupportedVersionError
	}{
		{name: "current", headers: hdr(SchemaExchange, Version)},
		{name: "older minor", headers: hdr(SchemaExchange, "1.0")},
		{name: "newer minor", headers: hdr(SchemaExchange, "1.7")},
		{name: "no headers", headers: nil, wantErr: ErrNotTapline},
		{name: "version missing", headers: hdr(SchemaExchange, "1.0")[:1], wantErr: ErrNotTapline},
		{name: "other schema", headers: hdr(SchemaReplayResult, "1.0"), wantErr: ErrNotTapline},
		{name: "next major", headers: hdr(SchemaExchange, "2.0"), wantVersion: true},
		{name: "old major", headers: hdr(SchemaExchange, "0.9"), wantVersion: true},
		{name: "garbage version", headers: hdr(SchemaExchange, "v1"), wantVersion: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeExchange(value, tc.headers)
			var verr *UnsupportedVersionError
			switch {
			case tc.wantVersion:
				if !errors.As(err, &verr) {
					t.Fatalf("got %v, want *UnsupportedVersionError", err)
				}
			case tc.wantErr != nil:
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("got %v, want %v", err, tc.wantErr)
				}
			case err != nil:
				t.Fatalf("unexpected error: %v", err)
			}
		})
	}
}

func TestDecodeCorruptValue(t *testing.T) {
	_, headers, _ := EncodeExchange(sampleExchange())
	if _, err := DecodeExchange([]byte{0x0a, 0xff, 0xff}, headers); err == nil {
		t.Fatal("decoding a truncated value succeeded")
	}
}

func TestNewIDIsTimeOrdered(t *testing.T) {
	before := time.Now()
	prev, _ := NewID()
	for i := 0; i < 1000; i++ {
		id, err := NewID()
		if err != nil {
			t.Fatal(err)
		}
		if id <= prev {
			t.Fatalf("id %s not after %s", id, prev)
		}
		prev = id
	}
	// A UUIDv7 of the RFC 9562 variant, holding the time it was made.
	u, err := uuid.Parse(prev)
	if err != nil || u.Version() != 7 || u.Variant() != uuid.RFC4122 || u.String() != prev {
		t.Fatalf("id %s: parsed as %v (version %d, variant %v), %v", prev, u, u.Version(), u.Variant(), err)
	}
	sec, nsec := u.Time().UnixTime()
	if made := time.Unix(sec, nsec); made.Before(before.Truncate(time.Millisecond)) || made.After(time.Now()) {
		t.Errorf("id %s holds time %v, made between %v and now", prev, made, before)
	}
}

// TestNewIDRandomBits: the 62 random bits differ between ids.
func TestNewIDRandomBits(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id, _ := NewID()
		if tail := id[19:]; seen[tail] {
			t.Fatalf("random part %s repeated", tail)
		} else {
			seen[tail] = true
		}
	}
}

func BenchmarkNewID(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := NewID(); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzDecode feeds arbitrary bytes and headers to the decoders: they must
// return an error or a message, never panic, and a decoded message must
// survive a re-encode round trip.
func FuzzDecode(f *testing.F) {
	for _, file := range []string{"exchange_v1.golden", "replay_result_v1.golden"} {
		b, err := os.ReadFile(filepath.Join("testdata", file))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, SchemaExchange, "1.0")
		f.Add(b, SchemaReplayResult, "1.0")
	}
	f.Add([]byte{}, SchemaExchange, "2.0")
	f.Fuzz(func(t *testing.T, value []byte, name, version string) {
		headers := []RecordHeader{{Key: HeaderSchema, Value: []byte(name)}, {Key: HeaderVersion, Value: []byte(version)}}
		if e, err := DecodeExchange(value, headers); err == nil {
			b, h, err := EncodeExchange(e)
			if err != nil {
				t.Fatalf("re-encoding a decoded exchange: %v", err)
			}
			// The hand-written encoder writes what protobuf writes, also
			// for unknown fields and odd values a decoder let through.
			if want, err := (proto.MarshalOptions{Deterministic: true}).Marshal(e); err != nil || !bytes.Equal(b, want) {
				t.Fatalf("EncodeExchange wrote %x, proto.Marshal %x (%v)", b, want, err)
			}
			if _, err := DecodeExchange(b, h); err != nil {
				t.Fatalf("decoding a re-encoded exchange: %v", err)
			}
		}
		if r, err := DecodeReplayResult(value, headers); err == nil {
			if _, _, err := EncodeReplayResult(r); err != nil {
				t.Fatalf("re-encoding a decoded result: %v", err)
			}
		}
	})
}

func BenchmarkEncodeExchange(b *testing.B) {
	e := sampleExchange()
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := EncodeExchange(e); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkExchangeEncoder is EncodeExchange as the recorder calls it:
// values cut from shared slabs, headers shared.
func BenchmarkExchangeEncoder(b *testing.B) {
	e := sampleExchange()
	var enc ExchangeEncoder
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := enc.Encode(e); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncodeExchangeProto is what EncodeExchange cost with
// proto.Marshal, for comparison with BenchmarkEncodeExchange.
func BenchmarkEncodeExchangeProto(b *testing.B) {
	e := sampleExchange()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := (proto.MarshalOptions{Deterministic: true}).Marshal(e); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeExchange(b *testing.B) {
	value, headers, _ := EncodeExchange(sampleExchange())
	b.ReportAllocs()
	b.SetBytes(int64(len(value)))
	for b.Loop() {
		if _, err := DecodeExchange(value, headers); err != nil {
			b.Fatal(err)
		}
	}
}
