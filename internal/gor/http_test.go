package gor

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/tapline/tapline/schema"
)

// show renders a parsed message compactly for the tables below.
func show(headers []*schema.Header, body []byte, size int64, truncated bool, p parsed) string {
	var hs []string
	for _, h := range headers {
		hs = append(hs, h.Name+"="+h.Value)
	}
	return fmt.Sprintf("[%s] %q size=%d truncated=%v cut=%v trailing=%v", strings.Join(hs, " "), body, size, truncated, p.cut, p.trailing)
}

func TestParseRequest(t *testing.T) {
	cases := []struct {
		name, in string
		bodyCap  int
		want     string // show(), prefixed by "METHOD TARGET PROTO HOST "; or "error: ..." (a substring)
	}{
		{"crlf", "GET /a?b=c HTTP/1.1\r\nHost: x\r\n\r\n", 100, `GET /a?b=c HTTP/1.1 x [Host=x] "" size=0 truncated=false cut=false trailing=false`},
		{"lf and no final empty line", "GET / HTTP/1.0\nHost: x\n", 100, `GET / HTTP/1.0 x [Host=x] "" size=0 truncated=false cut=false trailing=false`},
		{"leading line breaks", "\r\n\nGET / HTTP/1.1\r\n\r\n", 100, `GET / HTTP/1.1  [] "" size=0 truncated=false cut=false trailing=false`},
		{"absolute target gives the host", "GET http://h.example:8080/p HTTP/1.1\r\n\r\n", 100, `GET http://h.example:8080/p HTTP/1.1 h.example:8080 [] "" size=0 truncated=false cut=false trailing=false`},
		{"case, repeats, blanks kept", "GET / HTTP/1.1\r\nhost: x\r\nA: 1\r\na:2\r\nA:\t 3 \r\n\r\n", 100, `GET / HTTP/1.1 x [host=x A=1 a=2 A=3] "" size=0 truncated=false cut=false trailing=false`},
		{"obsolete folding", "GET / HTTP/1.1\r\nA: one\r\n two\r\n\tthree\r\n\r\n", 100, `GET / HTTP/1.1  [A=one two three] "" size=0 truncated=false cut=false trailing=false`},
		{"content-length", "POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", 100, `POST / HTTP/1.1  [Content-Length=5] "hello" size=5 truncated=false cut=false trailing=false`},
		{"content-length over the cap", "POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", 2, `POST / HTTP/1.1  [Content-Length=5] "he" size=5 truncated=true cut=false trailing=false`},
		{"negative cap keeps nothing", "POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", -1, `POST / HTTP/1.1  [Content-Length=5] "" size=5 truncated=true cut=false trailing=false`},
		{"content-length cut", "POST / HTTP/1.1\r\nContent-Length: 9\r\n\r\nhello", 100, `POST / HTTP/1.1  [Content-Length=9] "hello" size=9 truncated=true cut=true trailing=false`},
		{"line breaks after the body are not trailing", "POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\nok\r\n\n", 100, `POST / HTTP/1.1  [Content-Length=2] "ok" size=2 truncated=false cut=false trailing=false`},
		{"bytes after the body are", "POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\nokGET / HTTP/1.1\r\n\r\n", 100, `POST / HTTP/1.1  [Content-Length=2] "ok" size=2 truncated=false cut=false trailing=true`},
		{"no length: no body", "GET / HTTP/1.1\r\n\r\nstray", 100, `GET / HTTP/1.1  [] "" size=0 truncated=false cut=false trailing=true`},
		{"equal lengths", "POST / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok", 100, `POST / HTTP/1.1  [Content-Length=2 Content-Length=2] "ok" size=2 truncated=false cut=false trailing=false`},
		{"chunked", "PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nT: t\r\n\r\n", 100, `PUT / HTTP/1.1  [Transfer-Encoding=chunked T=t] "abcde" size=5 truncated=false cut=false trailing=false`},
		{"chunked over the cap", "PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n", 4, `PUT / HTTP/1.1  [Transfer-Encoding=chunked] "abcd" size=5 truncated=true cut=false trailing=false`},
		{"chunked wins over length", "PUT / HTTP/1.1\r\nContent-Length: 99\r\nTransfer-Encoding: gzip, chunked\r\n\r\n1\r\nz\r\n0\r\n\r\n", 100, `PUT / HTTP/1.1  [Content-Length=99 Transfer-Encoding=gzip, chunked] "z" size=1 truncated=false cut=false trailing=false`},
		{"chunked, lf only, last line lost", "PUT / HTTP/1.1\nTransfer-Encoding: chunked\n\n2\nok\n0\n", 100, `PUT / HTTP/1.1  [Transfer-Encoding=chunked] "ok" size=2 truncated=false cut=false trailing=false`},
		{"chunked cut in data", "PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", 100, `PUT / HTTP/1.1  [Transfer-Encoding=chunked] "ab" size=2 truncated=true cut=true trailing=false`},
		{"chunked cut after data", "PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r", 100, `PUT / HTTP/1.1  [Transfer-Encoding=chunked] "ab" size=2 truncated=true cut=true trailing=false`},
		{"chunked cut in a size line", "PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n1", 100, `PUT / HTTP/1.1  [Transfer-Encoding=chunked] "ab" size=2 truncated=true cut=true trailing=false`},

		{"empty", "", 100, "error: no HTTP message"},
		{"cut in the head", "GET / HTTP/1.1\r\nHost: x", 100, "error: " + errCutHead.Error()},
		{"not a request line", "hello world\r\n\r\n", 100, "error: bad request line"},
		{"HTTP/2", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 100, "error: bad request line"},
		{"space in target", "GET /a b HTTP/1.1\r\n\r\n", 100, "error: bad request line"},
		{"bad header", "GET / HTTP/1.1\r\nno colon\r\n\r\n", 100, "error: bad header line"},
		{"fold first", "GET / HTTP/1.1\r\n folded\r\n\r\n", 100, "error: bad header line"},
		{"bad length", "POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 100, "error: bad Content-Length"},
		{"conflicting lengths", "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 100, "error: bad Content-Length"},
		{"bad chunk size", "PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 100, "error: bad chunk size"},
		{"chunk longer than its size", "PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nabc\r\n0\r\n\r\n", 100, "error: chunk data longer"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, p, err := parseRequest([]byte(tc.in), tc.bodyCap)
			if want, ok := strings.CutPrefix(tc.want, "error: "); ok {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("err = %v, want one containing %q", err, want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := fmt.Sprintf("%s %s %s %s %s", req.Method, req.Target, req.Proto, req.Host, show(req.Headers, req.Body, req.BodySize, req.BodyTruncated, p))
			if got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestParseResponse(t *testing.T) {
	cases := []struct {
		name, in string
		want     string // "STATUS REASON " + show(), or "error: ..."
	}{
		{"until the end", "HTTP/1.0 200 OK\r\nServer: s\r\n\r\nall of\r\nthis", `200 OK [Server=s] "all of\r\nthis" size=12 truncated=false cut=false trailing=false`},
		{"no reason", "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", `200  [Content-Length=0] "" size=0 truncated=false cut=false trailing=false`},
		{"reason with spaces", "HTTP/1.1 404 Not Found Here\r\nContent-Length: 0\r\n\r\n", `404 Not Found Here [Content-Length=0] "" size=0 truncated=false cut=false trailing=false`},
		{"204 has no body", "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n", `204 No Content [Content-Length=5] "" size=0 truncated=false cut=false trailing=false`},
		{"304 has no body", "HTTP/1.1 304 Not Modified\r\n\r\n", `304 Not Modified [] "" size=0 truncated=false cut=false trailing=false`},
		{"interim responses skipped", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", `200 OK [Content-Length=2] "ok" size=2 truncated=false cut=false trailing=false`},
		{"a lone interim response", "HTTP/1.1 100 Continue\r\n\r\n", `100 Continue [] "" size=0 truncated=false cut=false trailing=false`},
		{"101: the rest is another protocol", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x05hello", `101 Switching Protocols [Upgrade=websocket] "" size=0 truncated=false cut=false trailing=false`},
		{"chunked with trailers", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nX-T: 1\r\nX-T: 2\r\n\r\n", `200 OK [Transfer-Encoding=chunked X-T=1 X-T=2] "ok" size=2 truncated=false cut=false trailing=false`},

		{"bad status", "HTTP/1.1 2000 OK\r\n\r\n", "error: bad status line"},
		{"status below 100", "HTTP/1.1 099 Odd\r\n\r\n", "error: bad status line"},
		{"HTTP/2", "HTTP/2 200\r\n\r\n", "error: bad status line"},
		{"a request", "GET / HTTP/1.1\r\n\r\n", "error: bad status line"},
		{"cut in the head", "HTTP/1.1 200 OK\r\nContent-Le", "error: " + errCutHead.Error()},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, p, err := parseResponse([]byte(tc.in), 100)
			if want, ok := strings.CutPrefix(tc.want, "error: "); ok {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("err = %v, want one containing %q", err, want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := fmt.Sprintf("%d %s %s", resp.Status, resp.Reason, show(resp.Headers, resp.Body, resp.BodySize, resp.BodyTruncated, p))
			if got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestSplitPayload(t *testing.T) {
	cases := []struct {
		name, in string
		want     string // "TYPE ID TS LATENCY | message", or "malformed: REASON"
	}{
		{"current", "1 c35a0050c0a8000a00000001 1700000000000000000 150000\nGET / HTTP/1.1\r\n\r\n", "1 c35a0050c0a8000a00000001 1700000000000000000 150000 | GET / HTTP/1.1\r\n\r\n"},
		{"no latency, trailing blank", "1 8e091765 2233760 \nGET /", "1 8e091765 2233760 -1 | GET /"},
		{"latency -1", "1 ab 5 -1\nx", "1 ab 5 -1 | x"},
		{"crlf line", "2 ab 5 7\r\nHTTP/1.1 200 OK", "2 ab 5 7 | HTTP/1.1 200 OK"},
		{"a fork's ip field", "1 ab 5 192.168.1.102\nx", "1 ab 5 -1 | x"},
		{"more fields", "3 ab 5 7 extra fields\nx", "3 ab 5 7 | x"},
		{"leading blank lines", "\n\r\n1 ab 5 7\nx", "1 ab 5 7 | x"},
		{"header line only", "1 ab 5 7", "1 ab 5 7 | "},

		{"two fields", "1 ab\nx", "malformed: header_line"},
		{"timestamp not a number", "1 ab 1.5e9 7\nx", "malformed: header_line"},
		{"long type", "12 ab 5 7\nx", "malformed: header_line"},
		{"id too long", "1 " + strings.Repeat("a", maxIDLen+1) + " 5\nx", "malformed: header_line"},
		{"unknown type", "9 ab 5 7\nx", "malformed: type"},
		{"http first", "GET / HTTP/1.1\r\n\r\n", "malformed: header_line"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, msg, reason := splitPayload([]byte(tc.in))
			got := fmt.Sprintf("%c %s %d %d | %s", m.typ, m.id, m.ts, m.latency, msg)
			if reason != "" {
				got = "malformed: " + reason
			}
			if got != tc.want {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestScanner(t *testing.T) {
	sep := joinSeparator
	cases := []struct {
		name, in string
		max      int
		want     []string // payloads; "TOO LARGE <first line>" for skipped ones; "ERR" for the error that ends
	}{
		{"plain", "a\nb" + sep + "c" + sep, 100, []string{"a\nb", "c"}},
		{"no final separator", "a" + sep + "b\n", 100, []string{"a", "b\n"}},
		{"final separator without line break", "a\n🐵🙈🙉", 100, []string{"a"}},
		{"separator at the start, blank payloads", "🐵🙈🙉\n\n" + sep + "\r\n" + sep + "a" + sep + "\n\n", 100, []string{"a"}},
		{"crlf separator line", "a\r\n\r\n🐵🙈🙉\r\nb\r\n🐵🙈🙉\r\n", 100, []string{"a\r\n", "b"}},
		{"separator inside a line", "a 🐵🙈🙉\nb🐵🙈🙉" + sep, 100, []string{"a 🐵🙈🙉\nb🐵🙈🙉"}},
		{"separator with more on its line", "a\n🐵🙈🙉 x\nb" + sep, 100, []string{"a\n🐵🙈🙉 x\nb"}},
		{"exactly the limit", "12345" + sep + "123456" + sep + "1", 5, []string{"12345", "TOO LARGE ", "1"}},
		{"too large keeps its first line", "1 id 5\n" + strings.Repeat("x", 200) + sep + "ok" + sep, 20, []string{"TOO LARGE 1 id 5\n", "ok"}},
		{"long lines", strings.Repeat("y", 200<<10) + sep + "z", 300 << 10, []string{strings.Repeat("y", 200<<10), "z"}},
		{"long line too large", strings.Repeat("y", 200<<10) + sep + "z", 100 << 10, []string{"TOO LARGE ", "z"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sc := newScanner(strings.NewReader(tc.in), tc.max)
			var got []string
			for {
				p, err := sc.next()
				if err != nil {
					if !errors.Is(err, io.EOF) {
						got = append(got, "ERR")
					}
					break
				}
				if p.tooLarge {
					got = append(got, "TOO LARGE "+string(p.raw))
				} else {
					got = append(got, string(p.raw))
				}
			}
			if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", tc.want) {
				t.Errorf("got  %.200q\nwant %.200q", got, tc.want)
			}
		})
	}
}

// TestLinearTime: messages built to hit a parser's worst case (many folded
// lines, many interim responses, many chunks, many headers) parse in time
// linear in their size; a quadratic path would take minutes here.
func TestLinearTime(t *testing.T) {
	const n = 400_000
	cases := map[string]string{
		"folds":    "GET / HTTP/1.1\r\nA: x\r\n" + strings.Repeat(" y\r\n", n) + "\r\n",
		"interim":  strings.Repeat("HTTP/1.1 100 Continue\n\n", n) + "HTTP/1.1 200 OK\r\n\r\n",
		"chunks":   "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + strings.Repeat("1\r\nx\r\n", n) + "0\r\n\r\n",
		"headers":  "GET / HTTP/1.1\r\n" + strings.Repeat("A: b\r\n", n) + "\r\n",
		"trailers": "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n" + strings.Repeat("T: t\r\n", n) + "\r\n",
	}
	for name, msg := range cases {
		t.Run(name, func(t *testing.T) {
			start := time.Now()
			var err error
			if strings.HasPrefix(msg, "HTTP/") {
				_, _, err = parseResponse([]byte(msg), 1<<20)
			} else {
				_, _, err = parseRequest([]byte(msg), 1<<20)
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("%d bytes took %v", len(msg), d)
			}
		})
	}
}
