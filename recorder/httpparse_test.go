package recorder

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tapline/tapline/schema"
)

// got is what a parser produced: messages and skips.
type got struct {
	msgs  []*message
	skips []string
}

func runParser(response bool, bodyCap int, framingFor func(int) framing, chunks ...string) got {
	var g got
	p := &parser{
		response:        response,
		bodyCap:         bodyCap,
		responseFraming: framingFor,
		onMessage:       func(m *message) { g.msgs = append(g.msgs, m) },
		onSkip:          func(r string) { g.skips = append(g.skips, r) },
	}
	for _, c := range chunks {
		p.feed([]byte(c), time.Unix(0, 0))
	}
	p.close()
	return g
}

// runRecycling parses like runParser, but takes its messages from a pool
// and gives each back as soon as it has been summarised, the way the
// recorder recycles them once emitted: what is parsed must not change.
func runRecycling(response bool, bodyCap int, framingFor func(int) framing, chunks ...string) (summaries []string, skips int) {
	pool := &messagePool{}
	p := &parser{
		response:        response,
		bodyCap:         bodyCap,
		responseFraming: framingFor,
		pool:            pool,
		onMessage: func(m *message) {
			summaries = append(summaries, summary([]*message{m})...)
			pool.put(m)
		},
		onSkip: func(string) { skips++ },
	}
	for _, c := range chunks {
		p.feed([]byte(c), time.Unix(0, 0))
	}
	p.close()
	return summaries, skips
}

// summary renders messages compactly for comparison.
func summary(ms []*message) []string {
	var out []string
	for _, m := range ms {
		var hs []string
		for _, h := range m.headers {
			hs = append(hs, h.Name+"="+h.Value)
		}
		head := m.method + " " + m.target
		if m.status != 0 {
			head = fmt.Sprintf("%d %s", m.status, m.reason)
		}
		out = append(out, fmt.Sprintf("%s %s [%s] body=%q size=%d trunc=%v", head, m.proto, strings.Join(hs, ","), m.body, m.bodySize, m.truncated))
	}
	return out
}

func TestParseRequests(t *testing.T) {
	cases := []struct {
		name      string
		in        string
		want      []string
		wantSkips int
	}{
		{
			name: "get without body",
			in:   "GET /a?b=1 HTTP/1.1\r\nHost: x\r\n\r\n",
			want: []string{`GET /a?b=1 HTTP/1.1 [Host=x] body="" size=0 trunc=false`},
		},
		{
			name: "header case, order and repeats kept",
			in:   "GET / HTTP/1.1\r\nhost: x\r\nX-A: 1\r\nx-a: 2\r\nX-A:3 \r\n\r\n",
			want: []string{`GET / HTTP/1.1 [host=x,X-A=1,x-a=2,X-A=3] body="" size=0 trunc=false`},
		},
		{
			name: "content-length body",
			in:   "POST /p HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
			want: []string{`POST /p HTTP/1.1 [Content-Length=5] body="hello" size=5 trunc=false`},
		},
		{
			name: "chunked with extension and trailer",
			in:   "POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nX-Trailer: t\r\n\r\n",
			want: []string{`POST /c HTTP/1.1 [Transfer-Encoding=chunked,X-Trailer=t] body="abcde" size=5 trunc=false`},
		},
		{
			name: "pipelined",
			in:   "GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.0\r\n\r\n",
			want: []string{`GET /1 HTTP/1.1 [] body="" size=0 trunc=false`, `GET /2 HTTP/1.0 [] body="" size=0 trunc=false`},
		},
		{
			name: "bare LF line endings",
			in:   "GET /lf HTTP/1.1\nHost: x\n\n",
			want: []string{`GET /lf HTTP/1.1 [Host=x] body="" size=0 trunc=false`},
		},
		{
			name: "body over the cap is truncated, size kept",
			in:   "POST /big HTTP/1.1\r\nContent-Length: 12\r\n\r\n0123456789ab",
			want: []string{`POST /big HTTP/1.1 [Content-Length=12] body="01234567" size=12 trunc=true`},
		},
		{
			name:      "garbage then a request: skipped and counted",
			in:        "\x00\x01garbage here\r\nmore\r\nGET /ok HTTP/1.1\r\n\r\n",
			want:      []string{`GET /ok HTTP/1.1 [] body="" size=0 trunc=false`},
			wantSkips: 1,
		},
		{
			name:      "mid-stream start inside a body",
			in:        "tail of a body\r\nPUT /next HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
			want:      []string{`PUT /next HTTP/1.1 [Content-Length=0] body="" size=0 trunc=false`},
			wantSkips: 1,
		},
		{
			name:      "bad header line",
			in:        "GET /x HTTP/1.1\r\nno colon\r\n\r\nGET /y HTTP/1.1\r\n\r\n",
			want:      []string{`GET /y HTTP/1.1 [] body="" size=0 trunc=false`},
			wantSkips: 1,
		},
		{
			name:      "bad chunk size",
			in:        "POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nGET /y HTTP/1.1\r\n\r\n",
			want:      []string{`GET /y HTTP/1.1 [] body="" size=0 trunc=false`},
			wantSkips: 1,
		},
		{
			name:      "conflicting content-lengths",
			in:        "POST /c HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nGET /y HTTP/1.1\r\n\r\n",
			want:      []string{`GET /y HTTP/1.1 [] body="" size=0 trunc=false`},
			wantSkips: 1,
		},
		{
			name: "HTTP/2 preface is not HTTP/1",
			in:   "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
			want: nil, wantSkips: 1,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Whole, then split at every byte: reassembly may hand over
			// any split, and the result must not depend on it.
			whole := runParser(false, 8, nil, tc.in)
			if s := summary(whole.msgs); !reflect.DeepEqual(s, tc.want) {
				t.Fatalf("whole:\n got %q\nwant %q", s, tc.want)
			}
			if len(whole.skips) != tc.wantSkips {
				t.Fatalf("whole: %d skips %q, want %d", len(whole.skips), whole.skips, tc.wantSkips)
			}
			for i := 1; i < len(tc.in); i++ {
				split := runParser(false, 8, nil, tc.in[:i], tc.in[i:])
				if s := summary(split.msgs); !reflect.DeepEqual(s, tc.want) {
					t.Fatalf("split at %d:\n got %q\nwant %q", i, s, tc.want)
				}
			}
			bytewise := make([]string, len(tc.in))
			for i := range tc.in {
				bytewise[i] = tc.in[i : i+1]
			}
			if s := summary(runParser(false, 8, nil, bytewise...).msgs); !reflect.DeepEqual(s, tc.want) {
				t.Fatalf("byte by byte:\n got %q\nwant %q", s, tc.want)
			}
		})
	}
}

func TestParseResponses(t *testing.T) {
	headRequest := func(status int) framing { return noBody }
	cases := []struct {
		name       string
		in         string
		framingFor func(int) framing
		want       []string
	}{
		{
			name: "content-length",
			in:   "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi",
			want: []string{`200 OK HTTP/1.1 [Content-Length=2] body="hi" size=2 trunc=false`},
		},
		{
			name: "until close",
			in:   "HTTP/1.0 200 OK\r\nServer: s\r\n\r\nall of it",
			want: []string{`200 OK HTTP/1.0 [Server=s] body="all of i" size=9 trunc=true`},
		},
		{
			name:       "HEAD response has no body despite Content-Length",
			in:         "HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\nHTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
			framingFor: headRequest,
			want: []string{`200 OK HTTP/1.1 [Content-Length=99] body="" size=0 trunc=false`,
				`404 Not Found HTTP/1.1 [Content-Length=0] body="" size=0 trunc=false`},
		},
		{
			name: "reason phrase with spaces, empty reason",
			in:   "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200\r\nContent-Length: 0\r\n\r\n",
			want: []string{`503 Service Unavailable HTTP/1.1 [Content-Length=0] body="" size=0 trunc=false`,
				`200  HTTP/1.1 [Content-Length=0] body="" size=0 trunc=false`},
		},
		{
			name: "chunked response",
			in:   "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n4\r\n\x1f\x8b\x08\x00\r\n0\r\n\r\n",
			want: []string{`200 OK HTTP/1.1 [Transfer-Encoding=gzip, chunked] body="\x1f\x8b\b\x00" size=4 trunc=false`},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for i := 1; i <= len(tc.in); i++ {
				g := runParser(true, 8, tc.framingFor, tc.in[:i], tc.in[i:])
				if s := summary(g.msgs); !reflect.DeepEqual(s, tc.want) || len(g.skips) != 0 {
					t.Fatalf("split at %d:\n got %q (skips %q)\nwant %q", i, s, g.skips, tc.want)
				}
			}
		})
	}
}

// FuzzParser feeds arbitrary bytes, split at an arbitrary point, to both
// parser roles: no panic, bodies within the cap, and a split must not
// change what is parsed.
func FuzzParser(f *testing.F) {
	f.Add([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), uint16(3), false)
	f.Add([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"), uint16(20), true)
	f.Add([]byte("POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET / HTTP/1.0\r\n\r\n"), uint16(40), false)
	f.Fuzz(func(t *testing.T, data []byte, at uint16, response bool) {
		split := int(at) % (len(data) + 1)
		const bodyCap = 16
		a := runParser(response, bodyCap, nil, string(data))
		b := runParser(response, bodyCap, nil, string(data[:split]), string(data[split:]))
		for _, m := range append(a.msgs, b.msgs...) {
			if len(m.body) > bodyCap || int64(len(m.body)) > m.bodySize {
				t.Fatalf("body %d bytes, size %d, cap %d", len(m.body), m.bodySize, bodyCap)
			}
		}
		if !reflect.DeepEqual(summary(a.msgs), summary(b.msgs)) {
			t.Fatalf("split at %d changed the result:\n%q\n%q", split, summary(a.msgs), summary(b.msgs))
		}
		if c, skips := runRecycling(response, bodyCap, nil, string(data[:split]), string(data[split:])); !reflect.DeepEqual(c, summary(a.msgs)) || skips != len(a.skips) {
			t.Fatalf("recycling messages changed the result:\n%q (%d skips)\n%q (%d skips)", c, skips, summary(a.msgs), len(a.skips))
		}
	})
}

// TestParserRecyclesMessages parses sequences in which a recycled message
// is reused for a smaller or differently framed one: nothing of the
// earlier message may show, and the pool must actually save allocations.
func TestParserRecyclesMessages(t *testing.T) {
	big := "POST /big HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nContent-Length: 40\r\n\r\n" + strings.Repeat("b", 40)
	cases := []struct {
		name     string
		response bool
		in       []string
	}{
		{"smaller after bigger", false, []string{big, "GET /small HTTP/1.1\r\nHost: h\r\n\r\n", "GET /none HTTP/1.1\r\n\r\n", big}},
		{"chunked with trailers after content-length", false, []string{big,
			"POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nT: 1\r\nU: 2\r\n\r\n",
			"POST /p HTTP/1.1\r\nContent-Length: 2\r\n\r\nxy"}},
		{"body over the cap, then a short one", false, []string{
			"POST /cap HTTP/1.1\r\nContent-Length: 100\r\n\r\n" + strings.Repeat("z", 100),
			"POST /p HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"}},
		{"a bad header line between messages", false, []string{big, "GET /bad HTTP/1.1\r\nA: 1\r\nno colon\r\n\r\n", "GET /ok HTTP/1.1\r\nB: 2\r\n\r\n"}},
		{"responses: close-delimited last", true, []string{
			"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX: y\r\n\r\nhello",
			"HTTP/1.1 204 No Content\r\n\r\n",
			"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
			"HTTP/1.0 200 OK\r\n\r\nuntil close"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			framing := func(status int) framing {
				if status == 204 {
					return noBody
				}
				return -1
			}
			want := runParser(tc.response, 64, framing, strings.Join(tc.in, ""))
			got, skips := runRecycling(tc.response, 64, framing, tc.in...)
			if !reflect.DeepEqual(got, summary(want.msgs)) || skips != len(want.skips) {
				t.Fatalf("with recycling\n got %q (%d skips)\nwant %q (%d skips)", got, skips, summary(want.msgs), len(want.skips))
			}
		})
	}

	// Once warm, a message costs one allocation: its header block string.
	req := []byte("POST /p HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\nContent-Length: 8\r\n\r\n{\"a\":12}")
	pool := &messagePool{}
	p := &parser{bodyCap: 1 << 20, pool: pool, onMessage: pool.put}
	p.feed(req, time.Time{})
	if allocs := testing.AllocsPerRun(100, func() { p.feed(req, time.Time{}) }); allocs > 1 {
		t.Errorf("%.1f allocations per recycled request, want 1", allocs)
	}
}

func BenchmarkParseRequests(b *testing.B) {
	req := "POST /api/v1/users/123?verbose=1 HTTP/1.1\r\nHost: api.example.com\r\nUser-Agent: bench\r\nAccept: */*\r\nContent-Type: application/json\r\nContent-Length: 64\r\n\r\n" + strings.Repeat("x", 64)
	stream := []byte(strings.Repeat(req, 100))
	p := &parser{bodyCap: 1 << 20, onMessage: func(*message) {}}
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	for b.Loop() {
		p.feed(stream, time.Time{})
	}
}

// BenchmarkParseRequestsRecycled is BenchmarkParseRequests with the
// messages given back to a pool, as the recorder does once it has
// emitted them.
func BenchmarkParseRequestsRecycled(b *testing.B) {
	req := "POST /api/v1/users/123?verbose=1 HTTP/1.1\r\nHost: api.example.com\r\nUser-Agent: bench\r\nAccept: */*\r\nContent-Type: application/json\r\nContent-Length: 64\r\n\r\n" + strings.Repeat("x", 64)
	stream := []byte(strings.Repeat(req, 100))
	pool := &messagePool{}
	p := &parser{bodyCap: 1 << 20, pool: pool, onMessage: pool.put}
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	for b.Loop() {
		p.feed(stream, time.Time{})
	}
}

var _ = schema.Header{}

// headerEndByLines is headerEnd written the plain way, line by line: the
// reference FuzzHeaderEnd checks the faster search against.
func headerEndByLines(b []byte) int {
	for i := 0; ; {
		nl := bytes.IndexByte(b[i:], '\n')
		if nl < 0 {
			return -1
		}
		next := i + nl + 1
		rest := b[next:]
		if bytes.HasPrefix(rest, []byte("\r\n")) {
			return next + 2
		}
		if bytes.HasPrefix(rest, []byte("\n")) {
			return next + 1
		}
		i = next
	}
}

func FuzzHeaderEnd(f *testing.F) {
	for _, s := range []string{"", "\n", "\n\n", "\r\n\r\n", "\n\r\n", "a\n\n\r\n", "GET / HTTP/1.1\r\nA: b\r\n\r\nbody\n\n", "a\r\nb\n\nc\r\n\r\n", "\r\r\n\r\r\n\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := headerEnd(b), headerEndByLines(b); got != want {
			t.Fatalf("headerEnd(%q) = %d, want %d", b, got, want)
		}
	})
}

// TestParserBoundsTrailers: trailers are headers, bounded like a header
// block. 10 MB of trailer lines after the last chunk used to be kept, a
// header each (167 MiB of heap for 13 MB); now the message is abandoned
// (one skip) once they pass maxHeaderBytes, and the next response parses.
func TestParserBoundsTrailers(t *testing.T) {
	var msgs []*message
	var skips []string
	p := &parser{
		response:  true,
		bodyCap:   1 << 20,
		onMessage: func(m *message) { msgs = append(msgs, m) },
		onSkip:    func(r string) { skips = append(skips, r) },
	}
	now := time.Unix(0, 0)
	p.feed([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n"), now)
	line := "X-Pad: 0123456789\r\n"
	block := []byte(strings.Repeat(line, (64<<10)/len(line)))
	for range 160 { // 10 MB
		p.feed(block, now)
	}
	p.feed([]byte("\r\nHTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n"), now)
	if len(skips) != 1 || !strings.Contains(skips[0], "trailer section longer than 65536 bytes") {
		t.Fatalf("skips %q, want one for the trailer section", skips)
	}
	if p.cur != nil {
		t.Fatalf("the message is still being parsed, %d headers", len(p.cur.headers))
	}
	if len(msgs) != 1 || msgs[0].status != 204 {
		t.Fatalf("messages %q, want the 204 after the trailers", summary(msgs))
	}
}
