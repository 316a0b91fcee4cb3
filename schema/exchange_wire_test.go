package schema

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// checkLikeProto asserts the hand-written encoder's contract for e: the
// same bytes as deterministic proto.Marshal (or an error where it fails),
// a size that matches, and bytes that decode to an equal message.
func checkLikeProto(t *testing.T, e *Exchange) {
	t.Helper()
	want, wantErr := proto.MarshalOptions{Deterministic: true}.Marshal(e)
	got, headers, err := EncodeExchange(e)
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("EncodeExchange error %v, proto.Marshal error %v", err, wantErr)
	}
	if err != nil {
		if !errors.Is(err, proto.Error) {
			t.Errorf("error %v does not match proto.Error", err)
		}
		return
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("bytes differ from proto.Marshal:\n got %x\nwant %x", got, want)
	}
	if e != nil {
		if n := exchangeSize(e); n != len(want) {
			t.Errorf("exchangeSize = %d, proto.Marshal wrote %d bytes", n, len(want))
		}
		if cap(got) != len(got) {
			t.Errorf("value has capacity %d for %d bytes: not sized exactly", cap(got), len(got))
		}
	}
	// An ExchangeEncoder writes the same bytes, and shares the headers.
	var enc ExchangeEncoder
	if v, h, err := enc.Encode(e); err != nil || !bytes.Equal(v, want) || cap(v) != len(v) || !reflect.DeepEqual(h, headers) {
		t.Errorf("ExchangeEncoder.Encode = %x (cap %d), %v, %v; want %x, %v", v, cap(v), h, err, want, headers)
	}
	// Appending keeps what the buffer held.
	prefix := []byte("prefix")
	appended, err := AppendExchange(prefix, e)
	if err != nil || !bytes.Equal(appended[:len(prefix)], prefix) || !bytes.Equal(appended[len(prefix):], want) {
		t.Errorf("AppendExchange(prefix) = %x, %v; want prefix then %x", appended, err, want)
	}
	decoded, err := DecodeExchange(got, headers)
	if err != nil {
		t.Fatalf("decoding what EncodeExchange wrote: %v", err)
	}
	if e != nil && !proto.Equal(decoded, e) {
		t.Errorf("decodes to\n%v\nwant\n%v", decoded, e)
	}
}

func TestEncodeExchangeLikeProto(t *testing.T) {
	withUnknown := func(b []byte) []byte {
		// field 15 (varint 300) then field 100 (bytes "new"): fields a
		// newer minor version may add.
		b = protowire.AppendTag(b, 15, protowire.VarintType)
		b = protowire.AppendVarint(b, 300)
		b = protowire.AppendTag(b, 100, protowire.BytesType)
		return protowire.AppendBytes(b, []byte("new"))
	}
	cases := []struct {
		name string
		ex   func() *Exchange
	}{
		{"nil", func() *Exchange { return nil }},
		{"empty", func() *Exchange { return &Exchange{} }},
		{"every field, response", sampleExchange},
		{"every field, response missing", func() *Exchange {
			e := sampleExchange()
			e.Original = &Exchange_ResponseMissing{ResponseMissing: &ResponseMissing{
				Reason: MissingReason_MISSING_REASON_CAPTURE_ENDED, Detail: "capture ended"}}
			return e
		}},
		{"response missing, reason only", func() *Exchange {
			return &Exchange{Id: "x", Original: &Exchange_ResponseMissing{ResponseMissing: &ResponseMissing{
				Reason: MissingReason_MISSING_REASON_TIMEOUT}}}
		}},
		{"response missing, all zero", func() *Exchange {
			return &Exchange{Original: &Exchange_ResponseMissing{ResponseMissing: &ResponseMissing{}}}
		}},
		{"oneof holding a nil response", func() *Exchange {
			return &Exchange{Id: "x", Original: &Exchange_Response{}}
		}},
		{"oneof holding a nil response missing", func() *Exchange {
			return &Exchange{Id: "x", Original: &Exchange_ResponseMissing{}}
		}},
		{"oneof set to a typed nil wrapper", func() *Exchange {
			return &Exchange{Id: "x", Original: (*Exchange_Response)(nil), Recorder: "r"}
		}},
		{"empty messages present", func() *Exchange {
			return &Exchange{Client: &Endpoint{}, Server: &Endpoint{}, Times: &CaptureTimes{}, Request: &Request{},
				Original: &Exchange_Response{Response: &Response{}}}
		}},
		{"empty bodies and headers are unset", func() *Exchange {
			return &Exchange{
				Request:  &Request{Method: "GET", Body: []byte{}, Headers: []*Header{}},
				Original: &Exchange_Response{Response: &Response{Status: 204, Body: []byte{}, Headers: []*Header{}}},
			}
		}},
		{"empty and nil headers", func() *Exchange {
			return &Exchange{Request: &Request{Headers: []*Header{{}, nil, {Name: "X-Empty"}, {Value: "no name"}}}}
		}},
		{"repeated headers", func() *Exchange {
			hs := []*Header{{Name: "Set-Cookie", Value: "a=1"}, {Name: "set-cookie", Value: "b=2"}, {Name: "Set-Cookie", Value: "a=1"}}
			return &Exchange{Request: &Request{Headers: hs[:2]}, Original: &Exchange_Response{Response: &Response{Status: 200, Headers: hs}}}
		}},
		{"256 KiB and 3 MiB bodies", func() *Exchange {
			e := sampleExchange()
			e.Request.Body = bytes.Repeat([]byte("0123456789abcdef"), 16<<10)
			e.Request.BodySize = int64(len(e.Request.Body))
			e.GetResponse().Body = bytes.Repeat([]byte{0, 0xff, '\n'}, 1<<20)
			e.GetResponse().BodySize, e.GetResponse().BodyTruncated = 1<<40, true
			return e
		}},
		{"long strings", func() *Exchange {
			return &Exchange{Request: &Request{Target: "/" + strings.Repeat("a", 200_000),
				Headers: []*Header{{Name: "Cookie", Value: strings.Repeat("c=1; ", 30_000)}}}}
		}},
		{"negative and extreme numbers", func() *Exchange {
			return &Exchange{
				Client: &Endpoint{Ip: "::1", Port: math.MaxUint32},
				Times: &CaptureTimes{RequestFirstByteUnixNano: -1, RequestLastByteUnixNano: math.MinInt64,
					ResponseFirstByteUnixNano: math.MaxInt64, ResponseLastByteUnixNano: 1},
				Request:  &Request{BodySize: -1},
				Original: &Exchange_Response{Response: &Response{Status: -200, BodySize: math.MinInt64}},
			}
		}},
		{"max status", func() *Exchange {
			return &Exchange{Original: &Exchange_Response{Response: &Response{Status: math.MaxInt32}}}
		}},
		{"unknown and negative missing reasons", func() *Exchange {
			return &Exchange{Original: &Exchange_ResponseMissing{ResponseMissing: &ResponseMissing{Reason: -3}}}
		}},
		{"enum value from a newer minor", func() *Exchange {
			return &Exchange{Original: &Exchange_ResponseMissing{ResponseMissing: &ResponseMissing{Reason: 99}}}
		}},
		{"valid non-ASCII UTF-8", func() *Exchange {
			return &Exchange{Id: "é", Request: &Request{Target: "/caf%C3%A9/café", Host: "bücher.example",
				Headers: []*Header{{Name: "X-Name", Value: "Zoë 日本 🎉"}}},
				Original: &Exchange_Response{Response: &Response{Reason: "Tschüss"}}}
		}},
		{"unknown fields in every message", func() *Exchange {
			e := sampleExchange()
			e.unknownFields = withUnknown(nil)
			e.Client.unknownFields = withUnknown(nil)
			e.Server.unknownFields = withUnknown(nil)
			e.Times.unknownFields = withUnknown(nil)
			e.Request.unknownFields = withUnknown(nil)
			e.Request.Headers[1].unknownFields = withUnknown(nil)
			e.GetResponse().unknownFields = withUnknown(nil)
			e.GetResponse().Headers[0].unknownFields = withUnknown(nil)
			return e
		}},
		{"unknown fields in response missing", func() *Exchange {
			return &Exchange{Original: &Exchange_ResponseMissing{ResponseMissing: &ResponseMissing{
				Detail: "d", unknownFields: withUnknown(nil)}}}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { checkLikeProto(t, tc.ex()) })
	}
}

// TestEncodeExchangeInvalidUTF8: proto3 string fields must be valid UTF-8
// (proto.Unmarshal refuses them otherwise), so the encoder refuses what
// proto.Marshal refuses, for every string field, and names the field.
func TestEncodeExchangeInvalidUTF8(t *testing.T) {
	const bad = "caf\xe9" // Latin-1, as some clients send in header values
	cases := []struct {
		field string
		set   func(e *Exchange)
	}{
		{"Exchange.id", func(e *Exchange) { e.Id = bad }},
		{"Exchange.session_key", func(e *Exchange) { e.SessionKey = bad }},
		{"Endpoint.ip", func(e *Exchange) { e.Client.Ip = bad }},
		{"Endpoint.ip", func(e *Exchange) { e.Server.Ip = bad }},
		{"Request.method", func(e *Exchange) { e.Request.Method = bad }},
		{"Request.target", func(e *Exchange) { e.Request.Target = "/" + bad }},
		{"Request.proto", func(e *Exchange) { e.Request.Proto = bad }},
		{"Request.host", func(e *Exchange) { e.Request.Host = bad }},
		{"Header.name", func(e *Exchange) { e.Request.Headers[2].Name = bad }},
		{"Header.value", func(e *Exchange) { e.Request.Headers[3].Value = bad }},
		{"Response.proto", func(e *Exchange) { e.GetResponse().Proto = bad }},
		{"Response.reason", func(e *Exchange) { e.GetResponse().Reason = bad }},
		{"Header.value", func(e *Exchange) { e.GetResponse().Headers[1].Value = "a=\xff\xfe" }},
		{"ResponseMissing.detail", func(e *Exchange) {
			e.Original = &Exchange_ResponseMissing{ResponseMissing: &ResponseMissing{Detail: bad}}
		}},
		{"Exchange.recorder", func(e *Exchange) { e.Recorder = bad }},
		{"Header.value", func(e *Exchange) { e.Request.Headers[0].Value = "\xed\xa0\x80" }}, // a UTF-16 surrogate
	}
	for _, tc := range cases {
		t.Run(tc.field, func(t *testing.T) {
			e := sampleExchange()
			tc.set(e)
			if _, err := (proto.MarshalOptions{Deterministic: true}).Marshal(e); err == nil {
				t.Fatal("proto.Marshal accepted invalid UTF-8; the encoder's contract assumes it does not")
			}
			value, headers, err := EncodeExchange(e)
			if err == nil {
				t.Fatalf("EncodeExchange accepted invalid UTF-8 in %s", tc.field)
			}
			if value != nil || headers != nil {
				t.Errorf("EncodeExchange returned a value with its error")
			}
			if !strings.Contains(err.Error(), "tapline.schema.v1."+tc.field) || !errors.Is(err, proto.Error) {
				t.Errorf("error %q: want it to name tapline.schema.v1.%s and match proto.Error", err, tc.field)
			}
			if b, err := AppendExchange([]byte("keep"), e); err == nil || string(b) != "keep" {
				t.Errorf("AppendExchange = %q, %v; want the buffer unchanged and an error", b, err)
			}
		})
	}
}

// FuzzValidUTF8 checks the fast path against the standard library.
func FuzzValidUTF8(f *testing.F) {
	for _, s := range []string{"", "abc", "abcdefgh", "abcdefghé", "caf\xe9", "12345678\xff", "\xed\xa0\x80", "Zoë 日本 🎉 and more ascii"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := validUTF8(s), utf8.ValidString(s); got != want {
			t.Fatalf("validUTF8(%q) = %v, want %v", s, got, want)
		}
	})
}

// TestExchangeEncoderSlabs: values carved from shared slabs must not
// overlap or change when later ones are written or appended to, across
// slab boundaries, with values too big for a slab in between and refused
// ones that must not take room.
func TestExchangeEncoderSlabs(t *testing.T) {
	var enc ExchangeEncoder
	type out struct {
		value, want []byte
	}
	var outs []out
	total := 0
	for i := 0; total < 3*ExchangeSlabSize; i++ {
		e := sampleExchange()
		e.Id = fmt.Sprintf("id-%d", i)
		// Bodies of 0 B to ~40 KiB: most carved, some on their own.
		e.Request.Body = bytes.Repeat([]byte{byte(i)}, (i*7919)%(ExchangeSlabSize/6))
		if i%10 == 3 {
			bad := sampleExchange()
			bad.Request.Target = "/\xff"
			if v, _, err := enc.Encode(bad); err == nil || v != nil {
				t.Fatalf("invalid UTF-8 encoded: %x, %v", v, err)
			}
		}
		want, _, err := EncodeExchange(e)
		if err != nil {
			t.Fatal(err)
		}
		value, headers, err := enc.Encode(e)
		if err != nil || len(headers) != 2 {
			t.Fatal(headers, err)
		}
		if cap(value) != len(value) {
			t.Fatalf("value %d: capacity %d for %d bytes", i, cap(value), len(value))
		}
		_ = append(value, "appending must not touch the next value"...)
		outs = append(outs, out{value, want})
		total += len(value)
	}
	for i, o := range outs {
		if !bytes.Equal(o.value, o.want) {
			t.Fatalf("value %d changed after later encodes", i)
		}
	}
}

// TestExchangeEncoderCoversEveryField fills every field of Exchange and of
// the messages under it through protobuf reflection, so a field added to
// tapline.proto but not to exchange_wire.go makes the bytes differ.
func TestExchangeEncoderCoversEveryField(t *testing.T) {
	for _, member := range []protoreflect.Name{"response", "response_missing"} {
		t.Run(string(member), func(t *testing.T) {
			e := &Exchange{}
			fillAll(e.ProtoReflect(), member)
			if e.GetRequest() == nil || e.GetOriginal() == nil || len(e.GetRequest().GetHeaders()) != 2 {
				t.Fatalf("fillAll left fields unset: %v", e)
			}
			checkLikeProto(t, e)
		})
	}
}

// fillAll sets every field of m to a non-zero value (two elements for
// lists); of a oneof it sets the member named member, or its first.
func fillAll(m protoreflect.Message, member protoreflect.Name) {
	fields := m.Descriptor().Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		if od := fd.ContainingOneof(); od != nil {
			want := od.Fields().ByName(member)
			if want == nil {
				want = od.Fields().Get(0)
			}
			if fd != want {
				continue
			}
		}
		n := int64(i + 1)
		switch {
		case fd.IsList() && fd.Message() != nil:
			l := m.Mutable(fd).List()
			for range 2 {
				v := l.NewElement()
				fillAll(v.Message(), member)
				l.Append(v)
			}
		case fd.IsList() || fd.IsMap():
			panic("fillAll: add scalar lists and maps for " + string(fd.FullName()))
		case fd.Message() != nil:
			fillAll(m.Mutable(fd).Message(), member)
		default:
			m.Set(fd, scalarValue(fd, n))
		}
	}
}

func scalarValue(fd protoreflect.FieldDescriptor, n int64) protoreflect.Value {
	switch fd.Kind() {
	case protoreflect.StringKind:
		return protoreflect.ValueOfString(string(fd.Name()) + "-value")
	case protoreflect.BytesKind:
		return protoreflect.ValueOfBytes([]byte(string(fd.Name()) + "-bytes"))
	case protoreflect.BoolKind:
		return protoreflect.ValueOfBool(true)
	case protoreflect.EnumKind:
		return protoreflect.ValueOfEnum(protoreflect.EnumNumber(n))
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		return protoreflect.ValueOfInt32(int32(-n))
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return protoreflect.ValueOfInt64(-n << 40)
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		return protoreflect.ValueOfUint32(uint32(n) << 20)
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return protoreflect.ValueOfUint64(uint64(n) << 50)
	case protoreflect.FloatKind:
		return protoreflect.ValueOfFloat32(float32(n) + 0.5)
	case protoreflect.DoubleKind:
		return protoreflect.ValueOfFloat64(float64(n) + 0.5)
	}
	panic("scalarValue: kind " + fd.Kind().String())
}

// FuzzEncodeExchange builds Exchanges from the fuzzer's bytes (any field
// set or not, empty or not, strings that may be invalid UTF-8, nil list
// elements, unknown fields) and checks them against proto.Marshal.
func FuzzEncodeExchange(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("\xff\xff\xff\xff\xff\xff\xff\xff\x05GET /\x10hello world caf\xe9"))
	f.Add(bytes.Repeat([]byte{0xff, 0x03, 'a', 0xc3, 0xa9}, 200))
	f.Add(bytes.Repeat([]byte{0x7f, 0x81, 0x01, 0xe9}, 300))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkLikeProto(t, (&exchangeBuilder{data: data}).exchange())
	})
}

// exchangeBuilder makes an Exchange from bytes: every decision and value
// is read from data; once data runs out, zeros.
type exchangeBuilder struct {
	data []byte
}

func (g *exchangeBuilder) byte() byte {
	if len(g.data) == 0 {
		return 0
	}
	c := g.data[0]
	g.data = g.data[1:]
	return c
}

func (g *exchangeBuilder) is() bool { return g.byte()&1 == 1 }

func (g *exchangeBuilder) int64() int64 {
	var b [8]byte
	n := copy(b[:], g.data)
	g.data = g.data[n:]
	v := int64(binary.LittleEndian.Uint64(b[:]))
	switch shift := g.byte() % 4; shift { // small values too, not only 10-byte varints
	case 1, 2, 3:
		v >>= 16 * shift
	}
	return v
}

// str is up to 255 bytes of data, so invalid UTF-8 now and then; every
// fourth is replaced by a valid non-ASCII string or a long one.
func (g *exchangeBuilder) str() string {
	switch g.byte() % 8 {
	case 0:
		return ""
	case 1:
		return "Zoë 日本 🎉"
	case 2:
		return strings.Repeat("abc", int(g.byte())*64)
	}
	n := min(int(g.byte()), len(g.data))
	s := string(g.data[:n])
	g.data = g.data[n:]
	return s
}

func (g *exchangeBuilder) bytes() []byte {
	switch g.byte() % 4 {
	case 0:
		return nil
	case 1:
		return []byte{}
	case 2:
		return bytes.Repeat([]byte{g.byte()}, int(g.byte())<<9)
	}
	return []byte(g.str())
}

func (g *exchangeBuilder) unknown() []byte {
	if g.byte()%4 != 0 {
		return nil
	}
	b := protowire.AppendTag(nil, protowire.Number(20+g.byte()%100), protowire.VarintType)
	return protowire.AppendVarint(b, uint64(g.int64()))
}

func (g *exchangeBuilder) headers() []*Header {
	if !g.is() {
		return nil
	}
	hs := make([]*Header, g.byte()%6)
	for i := range hs {
		if g.byte()%8 != 0 { // else a nil element
			hs[i] = &Header{Name: g.str(), Value: g.str(), unknownFields: g.unknown()}
		}
	}
	return hs
}

func (g *exchangeBuilder) endpoint() *Endpoint {
	if !g.is() {
		return nil
	}
	return &Endpoint{Ip: g.str(), Port: uint32(g.int64()), unknownFields: g.unknown()}
}

func (g *exchangeBuilder) exchange() *Exchange {
	if g.byte() == 0xfe {
		return nil
	}
	e := &Exchange{Id: g.str(), SessionKey: g.str(), Client: g.endpoint(), Server: g.endpoint()}
	if g.is() {
		e.Times = &CaptureTimes{RequestFirstByteUnixNano: g.int64(), RequestLastByteUnixNano: g.int64(),
			ResponseFirstByteUnixNano: g.int64(), ResponseLastByteUnixNano: g.int64(), unknownFields: g.unknown()}
	}
	if g.is() {
		e.Request = &Request{Method: g.str(), Target: g.str(), Proto: g.str(), Host: g.str(), Headers: g.headers(),
			Body: g.bytes(), BodyTruncated: g.is(), BodySize: g.int64(), unknownFields: g.unknown()}
	}
	switch g.byte() % 6 {
	case 1:
		e.Original = &Exchange_Response{Response: &Response{Status: int32(g.int64()), Proto: g.str(), Reason: g.str(),
			Headers: g.headers(), Body: g.bytes(), BodyTruncated: g.is(), BodySize: g.int64(), unknownFields: g.unknown()}}
	case 2:
		e.Original = &Exchange_ResponseMissing{ResponseMissing: &ResponseMissing{
			Reason: MissingReason(g.int64()), Detail: g.str(), unknownFields: g.unknown()}}
	case 3:
		e.Original = &Exchange_Response{}
	case 4:
		e.Original = &Exchange_ResponseMissing{}
	case 5:
		e.Original = (*Exchange_ResponseMissing)(nil)
	}
	e.Recorder, e.unknownFields = g.str(), g.unknown()
	return e
}
