package schema

import (
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// This file is a hand-written encoder for Exchange, the message the
// recorder writes for every captured request (thousands per second on the
// capture host). proto.Marshal walks the message through protobuf's
// reflection tables; writing the fields directly costs a fraction of that.
//
// Contract: AppendExchange (and EncodeExchange, ExchangeEncoder) write
// exactly the bytes that proto.MarshalOptions{Deterministic: true}.Marshal
// writes (fields in number order except that oneof fields come after the
// others, proto3 zero values left out, unknown fields appended last), and
// refuse the same messages (a string field holding invalid UTF-8, which
// proto.Unmarshal would reject). exchange_wire_test.go checks both against
// protobuf on table cases and under fuzzing. A field added to
// tapline.proto must be added here too; TestExchangeEncoderCoversEveryField
// fails until it is.

// Field numbers of tapline.proto v1. Every one fits a one-byte tag.
const (
	headerName, headerValue = 1, 2

	endpointIP, endpointPort = 1, 2

	timesRequestFirst, timesRequestLast, timesResponseFirst, timesResponseLast = 1, 2, 3, 4

	requestMethod, requestTarget, requestProto, requestHost, requestHeaders,
	requestBody, requestBodyTruncated, requestBodySize = 1, 2, 3, 4, 5, 6, 7, 8

	responseStatus, responseProto, responseReason, responseHeaders,
	responseBody, responseBodyTruncated, responseBodySize = 1, 2, 3, 4, 5, 6, 7

	missingReason, missingDetail = 1, 2

	exchangeID, exchangeSessionKey, exchangeClient, exchangeServer, exchangeTimes,
	exchangeRequest, exchangeResponse, exchangeResponseMissing, exchangeRecorder = 1, 2, 3, 4, 5, 6, 7, 8, 9
)

// invalidUTF8Error reports a string field that is not valid UTF-8. Like
// protobuf's own error for this case it matches errors.Is(err, proto.Error).
type invalidUTF8Error struct{ field string }

func (e invalidUTF8Error) Error() string {
	return "string field " + e.field + " contains invalid UTF-8"
}

func (invalidUTF8Error) Unwrap() error { return proto.Error }

// AppendExchange appends the wire encoding of e to b and returns the
// extended buffer; see the contract above. A nil e appends nothing. On
// error b is returned unchanged.
func AppendExchange(b []byte, e *Exchange) ([]byte, error) {
	if e == nil {
		return b, nil
	}
	sz, err := measureExchange(e)
	if err != nil {
		return b, err
	}
	return appendExchange(b, e, &sz), nil
}

// measureExchange checks that e can be encoded and measures it.
func measureExchange(e *Exchange) (exchangeSizes, error) {
	var sz exchangeSizes
	if field := invalidUTF8Exchange(e); field != "" {
		return sz, invalidUTF8Error{field}
	}
	sz.measure(e)
	return sz, nil
}

// exchangeSizes are the encoded sizes of an Exchange and of the messages
// in it, measured once before writing (each is written after its length).
type exchangeSizes struct {
	total, client, server, times, request, original int
}

func (sz *exchangeSizes) measure(e *Exchange) {
	n := sizeString(e.Id) + sizeString(e.SessionKey)
	if e.Client != nil {
		sz.client = endpointSize(e.Client)
		n += sizeMessage(sz.client)
	}
	if e.Server != nil {
		sz.server = endpointSize(e.Server)
		n += sizeMessage(sz.server)
	}
	if e.Times != nil {
		sz.times = timesSize(e.Times)
		n += sizeMessage(sz.times)
	}
	if e.Request != nil {
		sz.request = requestSize(e.Request)
		n += sizeMessage(sz.request)
	}
	switch o := e.Original.(type) {
	case *Exchange_Response:
		if o != nil {
			sz.original = responseSize(o.Response)
			n += sizeMessage(sz.original)
		}
	case *Exchange_ResponseMissing:
		if o != nil {
			sz.original = missingSize(o.ResponseMissing)
			n += sizeMessage(sz.original)
		}
	}
	sz.total = n + sizeString(e.Recorder) + len(e.unknownFields)
}

// exchangeSize is the length of e's encoding.
func exchangeSize(e *Exchange) int {
	var sz exchangeSizes
	sz.measure(e)
	return sz.total
}

func appendExchange(b []byte, e *Exchange, sz *exchangeSizes) []byte {
	b = appendString(b, exchangeID, e.Id)
	b = appendString(b, exchangeSessionKey, e.SessionKey)
	if e.Client != nil {
		b = appendEndpoint(appendMessageHead(b, exchangeClient, sz.client), e.Client)
	}
	if e.Server != nil {
		b = appendEndpoint(appendMessageHead(b, exchangeServer, sz.server), e.Server)
	}
	if e.Times != nil {
		b = appendTimes(appendMessageHead(b, exchangeTimes, sz.times), e.Times)
	}
	if e.Request != nil {
		b = appendRequest(appendMessageHead(b, exchangeRequest, sz.request), e.Request)
	}
	b = appendString(b, exchangeRecorder, e.Recorder)
	// protobuf writes oneof fields after all the others ("historic wire
	// output"), not in number order.
	switch o := e.Original.(type) {
	case *Exchange_Response:
		if o != nil {
			b = appendResponse(appendMessageHead(b, exchangeResponse, sz.original), o.Response)
		}
	case *Exchange_ResponseMissing:
		if o != nil {
			b = appendMissing(appendMessageHead(b, exchangeResponseMissing, sz.original), o.ResponseMissing)
		}
	}
	return append(b, e.unknownFields...)
}

// The size and append functions of the nested messages take a possibly
// nil message (a nil element of a repeated field, a oneof holding nil):
// protobuf encodes it as an empty message. An append function writes the
// message's fields; the caller has written its tag and length.

func endpointSize(m *Endpoint) int {
	if m == nil {
		return 0
	}
	return sizeString(m.Ip) + sizeVarint(uint64(m.Port)) + len(m.unknownFields)
}

func appendEndpoint(b []byte, m *Endpoint) []byte {
	if m == nil {
		return b
	}
	b = appendString(b, endpointIP, m.Ip)
	b = appendVarint(b, endpointPort, uint64(m.Port))
	return append(b, m.unknownFields...)
}

func timesSize(m *CaptureTimes) int {
	if m == nil {
		return 0
	}
	return sizeVarint(uint64(m.RequestFirstByteUnixNano)) + sizeVarint(uint64(m.RequestLastByteUnixNano)) +
		sizeVarint(uint64(m.ResponseFirstByteUnixNano)) + sizeVarint(uint64(m.ResponseLastByteUnixNano)) +
		len(m.unknownFields)
}

func appendTimes(b []byte, m *CaptureTimes) []byte {
	if m == nil {
		return b
	}
	b = appendVarint(b, timesRequestFirst, uint64(m.RequestFirstByteUnixNano))
	b = appendVarint(b, timesRequestLast, uint64(m.RequestLastByteUnixNano))
	b = appendVarint(b, timesResponseFirst, uint64(m.ResponseFirstByteUnixNano))
	b = appendVarint(b, timesResponseLast, uint64(m.ResponseLastByteUnixNano))
	return append(b, m.unknownFields...)
}

func headerSize(m *Header) int {
	if m == nil {
		return 0
	}
	return sizeString(m.Name) + sizeString(m.Value) + len(m.unknownFields)
}

func headersSize(hs []*Header) int {
	n := 0
	for _, h := range hs {
		n += sizeMessage(headerSize(h))
	}
	return n
}

func appendHeaders(b []byte, num protowire.Number, hs []*Header) []byte {
	for _, h := range hs {
		b = appendMessageHead(b, num, headerSize(h))
		if h == nil {
			continue
		}
		b = appendString(b, headerName, h.Name)
		b = appendString(b, headerValue, h.Value)
		b = append(b, h.unknownFields...)
	}
	return b
}

func requestSize(m *Request) int {
	if m == nil {
		return 0
	}
	return sizeString(m.Method) + sizeString(m.Target) + sizeString(m.Proto) + sizeString(m.Host) +
		headersSize(m.Headers) + sizeBytes(m.Body) + sizeBool(m.BodyTruncated) + sizeVarint(uint64(m.BodySize)) +
		len(m.unknownFields)
}

func appendRequest(b []byte, m *Request) []byte {
	if m == nil {
		return b
	}
	b = appendString(b, requestMethod, m.Method)
	b = appendString(b, requestTarget, m.Target)
	b = appendString(b, requestProto, m.Proto)
	b = appendString(b, requestHost, m.Host)
	b = appendHeaders(b, requestHeaders, m.Headers)
	b = appendBytes(b, requestBody, m.Body)
	b = appendBool(b, requestBodyTruncated, m.BodyTruncated)
	b = appendVarint(b, requestBodySize, uint64(m.BodySize))
	return append(b, m.unknownFields...)
}

func responseSize(m *Response) int {
	if m == nil {
		return 0
	}
	// int32 and enum values are sign-extended to 64 bits on the wire.
	return sizeVarint(uint64(int64(m.Status))) + sizeString(m.Proto) + sizeString(m.Reason) +
		headersSize(m.Headers) + sizeBytes(m.Body) + sizeBool(m.BodyTruncated) + sizeVarint(uint64(m.BodySize)) +
		len(m.unknownFields)
}

func appendResponse(b []byte, m *Response) []byte {
	if m == nil {
		return b
	}
	b = appendVarint(b, responseStatus, uint64(int64(m.Status)))
	b = appendString(b, responseProto, m.Proto)
	b = appendString(b, responseReason, m.Reason)
	b = appendHeaders(b, responseHeaders, m.Headers)
	b = appendBytes(b, responseBody, m.Body)
	b = appendBool(b, responseBodyTruncated, m.BodyTruncated)
	b = appendVarint(b, responseBodySize, uint64(m.BodySize))
	return append(b, m.unknownFields...)
}

func missingSize(m *ResponseMissing) int {
	if m == nil {
		return 0
	}
	return sizeVarint(uint64(int64(m.Reason))) + sizeString(m.Detail) + len(m.unknownFields)
}

func appendMissing(b []byte, m *ResponseMissing) []byte {
	if m == nil {
		return b
	}
	b = appendVarint(b, missingReason, uint64(int64(m.Reason)))
	b = appendString(b, missingDetail, m.Detail)
	return append(b, m.unknownFields...)
}

// invalidUTF8Exchange returns the full name of the first string field of
// e, in encoding order, that is not valid UTF-8, or "".
func invalidUTF8Exchange(e *Exchange) string {
	const prefix = "tapline.schema.v1."
	switch {
	case !validUTF8(e.Id):
		return prefix + "Exchange.id"
	case !validUTF8(e.SessionKey):
		return prefix + "Exchange.session_key"
	case e.Client != nil && !validUTF8(e.Client.Ip):
		return prefix + "Endpoint.ip"
	case e.Server != nil && !validUTF8(e.Server.Ip):
		return prefix + "Endpoint.ip"
	}
	if r := e.Request; r != nil {
		switch {
		case !validUTF8(r.Method):
			return prefix + "Request.method"
		case !validUTF8(r.Target):
			return prefix + "Request.target"
		case !validUTF8(r.Proto):
			return prefix + "Request.proto"
		case !validUTF8(r.Host):
			return prefix + "Request.host"
		}
		if f := invalidUTF8Headers(r.Headers); f != "" {
			return prefix + f
		}
	}
	if !validUTF8(e.Recorder) {
		return prefix + "Exchange.recorder"
	}
	switch o := e.Original.(type) {
	case *Exchange_Response:
		if o != nil && o.Response != nil {
			r := o.Response
			switch {
			case !validUTF8(r.Proto):
				return prefix + "Response.proto"
			case !validUTF8(r.Reason):
				return prefix + "Response.reason"
			}
			if f := invalidUTF8Headers(r.Headers); f != "" {
				return prefix + f
			}
		}
	case *Exchange_ResponseMissing:
		if o != nil && o.ResponseMissing != nil && !validUTF8(o.ResponseMissing.Detail) {
			return prefix + "ResponseMissing.detail"
		}
	}
	return ""
}

// validUTF8 is utf8.ValidString with a faster path for the short ASCII
// strings most fields hold: eight bytes at a time (the byte loads combine
// into one), then byte by byte.
func validUTF8(s string) bool {
	for len(s) >= 8 {
		w := uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
			uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
		if w&0x8080808080808080 != 0 {
			return utf8.ValidString(s)
		}
		s = s[8:]
	}
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return utf8.ValidString(s)
		}
	}
	return true
}

func invalidUTF8Headers(hs []*Header) string {
	for _, h := range hs {
		switch {
		case h == nil:
		case !validUTF8(h.Name):
			return "Header.name"
		case !validUTF8(h.Value):
			return "Header.value"
		}
	}
	return ""
}

// Wire helpers. Tags are one byte: every field number here is below 16.

func appendTag(b []byte, num protowire.Number, typ protowire.Type) []byte {
	return append(b, byte(num)<<3|byte(typ))
}

// sizeMessage is the size of a message (or string) field whose body is n
// bytes.
func sizeMessage(n int) int { return 1 + sizeLen(n) + n }

// sizeLen is the size of the varint n, with a fast path for short ones.
func sizeLen(n int) int {
	if n < 0x80 {
		return 1
	}
	return protowire.SizeVarint(uint64(n))
}

// appendLen appends the varint n, with a fast path for short ones.
func appendLen(b []byte, n int) []byte {
	if n < 0x80 {
		return append(b, byte(n))
	}
	return protowire.AppendVarint(b, uint64(n))
}

// appendMessageHead writes the tag and length of a message field whose
// body is n bytes.
func appendMessageHead(b []byte, num protowire.Number, n int) []byte {
	return appendLen(appendTag(b, num, protowire.BytesType), n)
}

// sizeString, sizeBytes, sizeVarint and sizeBool are the size of a proto3
// field with implicit presence: 0 for the zero value, which is not written.
func sizeString(s string) int {
	if s == "" {
		return 0
	}
	return sizeMessage(len(s))
}

func sizeBytes(v []byte) int {
	if len(v) == 0 {
		return 0
	}
	return sizeMessage(len(v))
}

func sizeVarint(v uint64) int {
	if v == 0 {
		return 0
	}
	return 1 + protowire.SizeVarint(v)
}

func sizeBool(v bool) int {
	if !v {
		return 0
	}
	return 2
}

func appendString(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	return append(appendMessageHead(b, num, len(s)), s...)
}

func appendBytes(b []byte, num protowire.Number, v []byte) []byte {
	if len(v) == 0 {
		return b
	}
	return append(appendMessageHead(b, num, len(v)), v...)
}

func appendVarint(b []byte, num protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	b = appendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

func appendBool(b []byte, num protowire.Number, v bool) []byte {
	if !v {
		return b
	}
	return append(appendTag(b, num, protowire.VarintType), 1)
}
