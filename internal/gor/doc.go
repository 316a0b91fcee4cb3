// Package gor imports GoReplay capture files: it is an alternative source
// for tapline's capture stage, so traffic recorded with GoReplay's
// `gor --input-raw … --output-file …` carries over.
//
// Input: the bytes of one or more GoReplay files (OpenFile handles gzip
// and stdin; Join reads several as one). Output: one schema.Exchange per
// request, with its original response when the file holds one, from
// Reader.Next in the order of the requests in the file. Nothing is dropped
// silently: every payload that did not become (part of) an exchange is
// counted in Stats, and malformed ones are logged.
//
// # The file format
//
// Read from GoReplay's own sources, several versions of each
// (github.com/buger/goreplay: protocol.go and proto/proto.go for the
// payload header, output_file.go for the writer, input_file.go for the
// reader, input_raw.go, raw_socket_listener/ and tcp/tcp_message.go for
// what the fields mean; the input_file.go of the current fork,
// probelabs/goreplay, reads the same format). A file is a sequence of
// payloads, each followed by the separator "\n🐵🙈🙉\n":
//
//	1 8e0917… 1700000000000000000 5300\n     the payload header line
//	GET /a HTTP/1.1\r\nHost: x\r\n\r\n       the HTTP message, raw
//	\n🐵🙈🙉\n                                the separator
//
// The header line is "TYPE ID TIMESTAMP [LATENCY]", fields separated by
// spaces:
//
//   - TYPE is 1 (a request), 2 (the original response, written with
//     --input-raw-track-response) or 3 (a response from a replay target,
//     --output-http-track-response). A request and its responses share ID.
//   - ID is a string of 24 hex digits (40 in the oldest releases): random,
//     or a TCP sequence number and a time, in older releases; in current
//     ones, whose capture is the tcp package, 8 bytes naming the connection
//     (client port, server port, client IPv4) and then the request's TCP
//     ack number.
//   - TIMESTAMP is in nanoseconds since the Unix epoch.
//   - LATENCY, also in nanoseconds, is optional, and its meaning changed.
//     Current releases write it for every payload, next to that payload's
//     own first-packet time, as that message's own duration (last packet −
//     first packet). Releases built on raw_socket_listener wrote none for
//     requests (or -1), and for a response either the request's timestamp
//     and the round trip, or the response's start and the time from the
//     end of the request to the end of the response. The oldest wrote no
//     LATENCY at all, and a response's TIMESTAMP field held the round trip.
//     Forks add fields after these (a client IP): a fourth field that is
//     not an integer, and any further ones, are ignored.
//
// The message is stored as captured: chunked framing, Content-Encoding and
// all. GoReplay cuts a message at --copy-buffer-size or when it times out,
// so a body can be shorter than its framing says; gzip output (a ".gz"
// name) is flushed periodically, so a file from a killed gor ends in the
// middle of a gzip stream. GoReplay's own reader splits at lines equal to
// "🐵🙈🙉", so a body holding such a line is split there (by GoReplay as
// well as by this package).
//
// Files written by hand (GoReplay's documentation shows payloads that way)
// are read too: LF line ends, a CRLF at the end of a header line or a
// separator line, blank lines between payloads, blanks after the fields,
// and a header block that ends at the end of its payload when the payload
// ends with a line break (the separator's line break took its empty line).
// # What becomes of a payload
//
// Requests are paired with the first type-2 payload of the same ID that
// comes within Config.PairWindow payloads after them (or before them: a
// response written before its request waits as long). Exchange fields:
//
//   - Id is derived, not random: a UUIDv7 whose time is the request's
//     timestamp and whose random bits are a hash of the GoReplay ID, the
//     timestamp and the request's bytes. Importing the same file twice
//     gives the same ids, so Elasticsearch (which uses the id as document
//     id) keeps one copy, and the ids still sort by capture time. Two
//     byte-identical requests with the same ID and timestamp (a duplicated
//     payload) get the same id on purpose.
//   - SessionKey is Config.SessionKey's when it finds one (a header or
//     cookie, see recorder.ParseSessionKey), else "gor:" and the GoReplay
//     ID — only its first 16 digits when it has 24. In current releases
//     those name the client connection, so the exchanges of one connection
//     share a key (and a Kafka partition, and a replay lane) as the
//     recorder's do; with other ids the key is in effect per request.
//     GoReplay records no addresses, so Client and Server stay unset.
//   - Times: the request's first byte is its TIMESTAMP, its last byte
//     TIMESTAMP + LATENCY when LATENCY is present. The response's first
//     byte is its own TIMESTAMP and its last byte TIMESTAMP + LATENCY (the
//     current meaning). When the response's TIMESTAMP equals the request's,
//     its LATENCY is the round trip, so only the last byte is set, to the
//     request's TIMESTAMP + LATENCY. A response without LATENCY whose
//     TIMESTAMP is below 2^50 ns (the oldest files: a round trip, not a
//     time) sets the last byte to the request's TIMESTAMP + that value.
//     Anything unknown is 0 ("not seen"). Files whose responses carry the
//     time from the end of the request cannot be told from current ones;
//     their last byte is late by the server's time to first byte.
//   - Request and Response as the recorder fills them: headers in order
//     with their case and repeats, the body without chunked framing (and
//     chunk trailers appended to the headers) but with its Content-Encoding,
//     cut at Config.BodyCap with body_truncated and the full body_size. A
//     body the payload holds only in part is kept as far as it goes, with
//     body_truncated set and body_size the declared Content-Length (or, for
//     chunked bodies, what was there); Stats.Cut counts these (the
//     replayer does not send a truncated request). A response to HEAD, or
//     a 2xx to CONNECT, has no body; interim 1xx responses in front of the
//     final one are skipped. Bytes after a message (other than line breaks)
//     are ignored and counted in Stats.TrailingBytes.
//   - A request whose response does not come within the window is emitted
//     with ResponseMissing TIMEOUT; one still waiting at the end of the
//     input with CAPTURE_ENDED (the capture ended first, which is what a
//     GoReplay file recorded without --input-raw-track-response looks like
//     for every request); one whose response payload is malformed or too
//     large with PARSE_ERROR.
//
// Payloads that are skipped, each counted in Stats: type 3 (ReplayedSkipped),
// type-2 payloads no request claims (OrphanResponses: the request was
// malformed, missing, already answered or too far away), and malformed
// payloads by reason (Malformed; each also logged as a warning):
// "header_line", "type", "too_large", "truncated" (the message ends inside
// its header block), "request" and "response" (not HTTP/1.x).
//
// Memory is bounded by Config.MaxPayload for the payload being read, and by
// Config.PairWindow and Config.PendingBytes for the exchanges waiting for
// their response (or for the request before them to be answered, as
// exchanges leave in request order) and the responses waiting for their
// request. Parsing is linear in the payload's size.
package gor
