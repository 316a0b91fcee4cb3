package recorder

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestGarbageOnThePort mixes, on the captured port, one hostile
// connection (port 1) with a valid keep-alive connection (port 0), their
// segments interleaved. What the hostile one sends is counted under one
// reason per connection, logged (at debug level, without its bytes), and
// the valid connection's two exchanges come out exactly as sent.
func TestGarbageOnThePort(t *testing.T) {
	rnd := rand.New(rand.NewPCG(7, 7))
	random := func(n int, lineEnds bool) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rnd.UintN(256))
			if !lineEnds && b[i] == '\n' {
				b[i] = '.'
			}
		}
		return string(b)
	}
	hostile := func(script ...seg) []seg {
		for i := range script {
			script[i].port = 1
		}
		return script
	}
	withSYN := func(script ...seg) []seg { return hostile(append(append([]seg{}, handshake...), script...)...) }
	clientHello := "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + random(500, false)
	chunked := func(sizeLine, trailers string) string {
		return "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + sizeLine + "\r\nabc\r\n0\r\n" + trailers + "\r\n"
	}
	badChunkResp := chunked("zz", "")
	longTrailers := chunked("3", strings.Repeat("X-Pad: 0123456789\r\n", 4000)) // 76 KB
	badChunkReq := "POST /bad HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nabc\r\n0\r\n\r\n"
	longLine := "GET /" + strings.Repeat("a", 70<<10) + " HTTP/1.1\r\nHost: h\r\n\r\n"
	reject := "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
	badRequest := "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"
	between := "\x00\x01\x02binary\r\nnot a request line\r\n"
	valid := []string{"GET /one -> 200 first", "POST /two -> 201 second"}

	cases := []struct {
		name      string
		conn      []seg    // the hostile connection
		want      []string // its exchanges
		drops     map[string]uint64
		looksLike string // what the debug log line says the bytes look like
	}{
		{
			name:  "random bytes without a line end",
			conn:  withSYN(client(0, random(2000, false))),
			drops: map[string]uint64{"not_http": 1}, looksLike: "unknown",
		},
		{
			name:  "random bytes with line ends, both ways",
			conn:  withSYN(client(0, random(1500, true)), server(0, random(700, true)), client(1500, random(1500, true))),
			drops: map[string]uint64{"not_http": 1}, looksLike: "unknown",
		},
		{
			name:  "70 KiB of random bytes without a line end",
			conn:  withSYN(split(true, 0, random(70<<10, false), 1400)...),
			drops: map[string]uint64{"not_http": 1}, looksLike: "unknown",
		},
		{
			name:  "TLS handshake",
			conn:  withSYN(client(0, clientHello), server(0, "\x16\x03\x03\x00\x5a\x02\x00\x00\x56\x03\x03"+random(80, false))),
			drops: map[string]uint64{"not_http": 1}, looksLike: "tls",
		},
		{
			// The server answered in HTTP: that response has no request.
			name:  "TLS ClientHello answered with 400",
			conn:  withSYN(client(0, clientHello), server(0, reject)),
			drops: map[string]uint64{"not_http": 1, "response_without_request": 1}, looksLike: "tls",
		},
		{
			name: "HTTP/2 with prior knowledge",
			conn: withSYN(client(0, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00"),
				server(0, "\x00\x00\x00\x04\x00\x00\x00\x00\x00")),
			drops: map[string]uint64{"not_http": 1}, looksLike: "http2",
		},
		{
			name:  "SSH: the server speaks first",
			conn:  withSYN(server(0, "SSH-2.0-OpenSSH_9.6\r\n"), client(0, "SSH-2.0-Go\r\n"), server(21, random(300, true))),
			drops: map[string]uint64{"not_http": 1}, looksLike: "unknown",
		},
		{
			name:  "random bytes on a connection joined without its SYN",
			conn:  hostile(client(0, random(1000, true)), server(0, random(1000, true))),
			drops: map[string]uint64{"mid_stream": 1}, looksLike: "unknown",
		},
		{
			name: "garbage between two requests",
			conn: withSYN(client(0, req1), server(0, resp1), client(len(req1), between),
				client(len(req1)+len(between), req2), server(len(resp1), resp2)),
			want:  valid,
			drops: map[string]uint64{"parse_error": 1},
		},
		{
			// The response is lost, not its place: GET /one is emitted
			// without it, and POST /two keeps its own response.
			name:  "a response with a bad chunk size",
			conn:  withSYN(client(0, req1), server(0, badChunkResp), client(len(req1), req2), server(len(badChunkResp), resp2)),
			want:  []string{"GET /one -> missing MISSING_REASON_PARSE_ERROR", "POST /two -> 201 second"},
			drops: map[string]uint64{"parse_error": 1},
		},
		{
			name: "an endless trailer section",
			conn: withSYN(append([]seg{client(0, req1)}, append(split(false, 0, longTrailers, 1400),
				client(len(req1), req2), server(len(longTrailers), resp2))...)...),
			want:  []string{"GET /one -> missing MISSING_REASON_PARSE_ERROR", "POST /two -> 201 second"},
			drops: map[string]uint64{"parse_error": 1},
		},
		{
			// The malformed request is dropped; its response must not be
			// taken for POST /two's.
			name: "a request with a bad chunk size",
			conn: withSYN(client(0, badChunkReq), server(0, badRequest),
				client(len(badChunkReq), req2), server(len(badRequest), resp2)),
			want:  []string{"POST /two -> 201 second"},
			drops: map[string]uint64{"parse_error": 1, "response_without_request": 1},
		},
		{
			name:  "a request line longer than 64 KiB, rejected and closed",
			conn:  withSYN(append(split(true, 0, longLine, 1400), server(0, reject), seg{off: len(reject), fin: true, port: 1})...),
			drops: map[string]uint64{"parse_error": 1, "response_without_request": 1},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			good := join(handshake, []seg{client(0, req1), server(0, resp1), client(len(req1), req2), server(len(resp1), resp2)})
			var script []seg
			for i := 0; i < max(len(good), len(tc.conn)); i++ {
				if i < len(good) {
					script = append(script, good[i])
				}
				if i < len(tc.conn) {
					script = append(script, tc.conn[i])
				}
			}
			var logs syncBuffer
			sink := &memSink{}
			r, err := New(Config{Live: build(t, script), Sink: sink, Logger: textLogger(&logs)})
			if err != nil {
				t.Fatal(err)
			}
			if err := r.Run(context.Background()); err != nil {
				t.Fatal(err)
			}
			var got [2][]string
			for _, e := range sink.exchanges(t) {
				line := e.Request.Method + " " + e.Request.Target + " -> "
				if resp := e.GetResponse(); resp != nil {
					line += fmt.Sprintf("%d %s", resp.Status, resp.Body)
				} else {
					line += "missing " + e.GetResponseMissing().GetReason().String()
				}
				got[e.Client.Port-40000] = append(got[e.Client.Port-40000], line)
			}
			if strings.Join(got[0], "|") != strings.Join(valid, "|") {
				t.Errorf("valid connection: %q, want %q", got[0], valid)
			}
			if strings.Join(got[1], "|") != strings.Join(tc.want, "|") {
				t.Errorf("hostile connection: %q, want %q", got[1], tc.want)
			}
			st := r.Stats()
			for reason, n := range st.Drops {
				if n != tc.drops[reason] {
					t.Errorf("drop %s = %d, want %d (all drops %v)", reason, n, tc.drops[reason], st.Drops)
				}
			}
			if st.Connections != 2 || st.Exchanges != uint64(len(valid)+len(tc.want)) {
				t.Errorf("%d connections, %d exchanges", st.Connections, st.Exchanges)
			}
			if tc.looksLike != "" {
				wantLog := `msg="skipping bytes before the first HTTP/1.x message" conn=10.0.0.`
				reason := "not_http"
				if tc.drops["mid_stream"] > 0 {
					reason = "mid_stream"
				}
				if n := strings.Count(logs.String(), wantLog); n != 1 || !strings.Contains(logs.String(), "reason="+reason+" looks_like="+tc.looksLike) {
					t.Errorf("want one debug line saying %s, looks_like=%s; logs:\n%s", reason, tc.looksLike, logs.String())
				}
			}
		})
	}
}
