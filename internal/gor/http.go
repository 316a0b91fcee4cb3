package gor

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"golang.org/x/net/http/httpguts"

	"github.com/tapline/tapline/schema"
)

// The HTTP/1.x parser of this file reads one whole message from a payload.
// It is not the recorder's (which is incremental and unexported): a payload
// holds the message complete or cut short, never spread over several feeds,
// so parsing it is simpler.

// errCutHead marks a message that ends inside its header block.
var errCutHead = errors.New("message ends inside its header block")

// parsed is what parsing a message found besides the message itself.
type parsed struct {
	// cut: the payload holds only part of the body its framing announced.
	cut bool
	// trailing: bytes (other than line breaks) follow the message; they
	// were ignored.
	trailing bool
}

// framing says how a body is delimited.
type framing int

const (
	noBody framing = iota
	contentLength
	chunked
	untilEnd // a response without a length: the body is the rest
)

// head is a parsed start line and header block.
type head struct {
	first   string // the start line, without its line break
	headers []*schema.Header
	fr      framing
	length  int64 // for contentLength
}

// parseRequest parses an HTTP/1.x request. bodyCap bounds the body bytes
// kept (the full size is still recorded).
func parseRequest(b []byte, bodyCap int) (*schema.Request, parsed, error) {
	h, rest, err := parseHead(b)
	if err != nil {
		return nil, parsed{}, err
	}
	method, rest1, _ := strings.Cut(h.first, " ")
	target, proto, _ := strings.Cut(rest1, " ")
	if !isToken(method) || target == "" || strings.ContainsAny(target, " \t") || !isHTTP1(proto) {
		return nil, parsed{}, fmt.Errorf("bad request line %q", clip(h.first, 60))
	}
	req := &schema.Request{Method: method, Target: target, Proto: proto, Headers: h.headers}
	req.Host = requestHost(req)
	if h.fr == untilEnd { // only responses are delimited by the end
		h.fr = noBody
	}
	var p parsed
	req.Body, req.BodySize, req.BodyTruncated, p, req.Headers, err = readBody(rest, h, bodyCap)
	if err != nil {
		return nil, parsed{}, err
	}
	return req, p, nil
}

// parseResponse parses an HTTP/1.x response. Interim (1xx) responses in
// front of a final one are skipped; a lone interim response is returned as
// is.
func parseResponse(b []byte, bodyCap int) (*schema.Response, parsed, error) {
	for {
		h, rest, err := parseHead(b)
		if err != nil {
			return nil, parsed{}, err
		}
		proto, rest1, _ := strings.Cut(h.first, " ")
		code, reason, _ := strings.Cut(rest1, " ")
		status, ok := parseStatus(code)
		if !isHTTP1(proto) || !ok {
			return nil, parsed{}, fmt.Errorf("bad status line %q", clip(h.first, 60))
		}
		if status < 200 && status != 101 {
			if next := trimLeadingLineBreaks(rest); bytes.HasPrefix(next, []byte("HTTP/1.")) {
				b = next
				continue
			}
		}
		if status < 200 || status == 204 || status == 304 {
			h.fr = noBody
		}
		resp := &schema.Response{Status: int32(status), Proto: proto, Reason: reason, Headers: h.headers}
		var p parsed
		resp.Body, resp.BodySize, resp.BodyTruncated, p, resp.Headers, err = readBody(rest, h, bodyCap)
		if err != nil {
			return nil, parsed{}, err
		}
		if status == 101 {
			p.trailing = false // what follows is another protocol
		}
		return resp, p, nil
	}
}

// parseHead parses the start line and headers at the start of b and
// returns the bytes after the header block. The block ends at its empty
// line, or at the end of b when b ends with a line break: a hand-written
// file loses the empty line after a body-less message to the separator's
// line break ("Host: x\n\n🐵🙈🙉" holds the payload "…Host: x\n").
func parseHead(b []byte) (head, []byte, error) {
	b = trimLeadingLineBreaks(b)
	if len(b) == 0 {
		return head{}, nil, errors.New("no HTTP message")
	}
	end := headerEnd(b)
	if end < 0 {
		if b[len(b)-1] != '\n' {
			return head{}, nil, errCutHead
		}
		end = len(b)
	}
	block := b[:end]
	for len(block) > 0 && (block[len(block)-1] == '\n' || block[len(block)-1] == '\r') {
		block = block[:len(block)-1]
	}
	// One string for the block: the start line, names and values are
	// substrings of it.
	text := string(block)
	first, rest, _ := strings.Cut(text, "\n")
	h := head{first: strings.TrimSuffix(first, "\r")}
	var store []schema.Header
	if rest != "" {
		store = make([]schema.Header, 0, strings.Count(rest, "\n")+1)
	}
	var folded []string // continuation lines of the last header
	unfold := func() {
		if len(folded) > 0 {
			prev := &store[len(store)-1]
			prev.Value = trimOWS(prev.Value + " " + strings.Join(folded, " "))
			folded = folded[:0]
		}
	}
	for rest != "" {
		var line string
		line, rest, _ = strings.Cut(rest, "\n")
		line = strings.TrimSuffix(line, "\r")
		if line != "" && (line[0] == ' ' || line[0] == '\t') {
			// An obsolete line folding: it continues the previous value.
			if len(store) == 0 {
				return head{}, nil, fmt.Errorf("bad header line %q", clip(line, 60))
			}
			if v := trimOWS(line); v != "" {
				folded = append(folded, v)
			}
			continue
		}
		unfold()
		name, value, ok := strings.Cut(line, ":")
		if !ok || !isToken(name) {
			return head{}, nil, fmt.Errorf("bad header line %q", clip(line, 60))
		}
		store = append(store, schema.Header{Name: name, Value: trimOWS(value)})
	}
	unfold()
	h.headers = make([]*schema.Header, len(store))
	h.length = -1
	var isChunked bool
	for i := range store {
		hd := &store[i]
		h.headers[i] = hd
		switch {
		case strings.EqualFold(hd.Name, "Content-Length"):
			n, err := strconv.ParseInt(hd.Value, 10, 64)
			if err != nil || n < 0 || (h.length >= 0 && n != h.length) {
				return head{}, nil, fmt.Errorf("bad Content-Length %q", clip(hd.Value, 30))
			}
			h.length = n
		case strings.EqualFold(hd.Name, "Transfer-Encoding"):
			// chunked must be the last coding (RFC 9112 §6.3).
			last := hd.Value
			if i := strings.LastIndexByte(last, ','); i >= 0 {
				last = last[i+1:]
			}
			isChunked = strings.EqualFold(strings.TrimSpace(last), "chunked")
		}
	}
	switch {
	case isChunked: // Transfer-Encoding overrides Content-Length
		h.fr = chunked
	case h.length >= 0:
		h.fr = contentLength
	default:
		h.fr = untilEnd
	}
	return h, b[end:], nil
}

// readBody reads the body framed as h says from rest. It returns the kept
// bytes (a copy, at most bodyCap), the full size, whether the body is
// truncated (by the cap or because the payload holds only part of it), and
// the headers with any chunk trailers appended.
func readBody(rest []byte, h head, bodyCap int) (body []byte, size int64, truncated bool, p parsed, headers []*schema.Header, err error) {
	headers = h.headers
	switch h.fr {
	case noBody:
		p.trailing = !onlyLineBreaks(rest)
		return nil, 0, false, p, headers, nil
	case untilEnd:
		// The separator's line break is not part of the payload, so the
		// body is exactly the rest.
		body, truncated = keep(rest, bodyCap)
		return body, int64(len(rest)), truncated, p, headers, nil
	case contentLength:
		data := rest
		if int64(len(rest)) < h.length {
			p.cut = true
		} else {
			data = rest[:h.length]
			p.trailing = !onlyLineBreaks(rest[h.length:])
		}
		body, truncated = keep(data, bodyCap)
		return body, h.length, truncated || p.cut, p, headers, nil
	}
	return readChunked(rest, headers, bodyCap)
}

// readChunked decodes a chunked body. A payload that ends before the last
// chunk gives what was there, flagged cut.
func readChunked(b []byte, headers []*schema.Header, bodyCap int) (body []byte, size int64, truncated bool, p parsed, _ []*schema.Header, err error) {
	add := func(data []byte) {
		size += int64(len(data))
		room := max(bodyCap-len(body), 0)
		if len(data) > room {
			data, truncated = data[:room], true
		}
		body = append(body, data...)
	}
	for {
		line, next, ok := cutLine(b)
		if !ok {
			p.cut = true
			return body, size, true, p, headers, nil
		}
		sizeText, _, _ := bytes.Cut(line, []byte(";")) // drop chunk extensions
		n, perr := strconv.ParseInt(string(bytes.TrimSpace(sizeText)), 16, 64)
		if perr != nil || n < 0 {
			return nil, 0, false, p, nil, fmt.Errorf("bad chunk size %q", clip(string(line), 30))
		}
		b = next
		if n == 0 {
			break
		}
		if int64(len(b)) < n {
			add(b)
			p.cut = true
			return body, size, true, p, headers, nil
		}
		add(b[:n])
		b = b[n:]
		crlf, next, ok := cutLine(b)
		switch {
		case !ok && (len(b) == 0 || string(b) == "\r"):
			// The payload ends after the data of a chunk that was not
			// the last.
			p.cut = true
			return body, size, true, p, headers, nil
		case !ok || len(crlf) != 0:
			return nil, 0, false, p, nil, errors.New("chunk data longer than its size")
		}
		b = next
	}
	// Trailers, up to an empty line or the end of the payload.
	for len(b) > 0 {
		line, next, ok := cutLine(b)
		if !ok {
			line, next = b, nil
		}
		b = next
		if len(line) == 0 {
			break
		}
		if name, value, found := strings.Cut(string(line), ":"); found && isToken(name) {
			headers = append(headers, &schema.Header{Name: name, Value: trimOWS(value)})
		}
	}
	p.trailing = !onlyLineBreaks(b)
	return body, size, truncated, p, headers, nil
}

// keep returns a copy of at most bodyCap bytes of b, and whether b was
// longer.
func keep(b []byte, bodyCap int) ([]byte, bool) {
	if len(b) == 0 {
		return nil, false
	}
	n := min(len(b), max(bodyCap, 0))
	if n == 0 {
		return nil, true
	}
	return bytes.Clone(b[:n]), n < len(b)
}

// cutLine returns the line at the start of b without its line break (CRLF
// or LF), and the bytes after it; ok is false when b holds no line break.
func cutLine(b []byte) (line, rest []byte, ok bool) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return nil, b, false
	}
	return bytes.TrimSuffix(b[:i], []byte("\r")), b[i+1:], true
}

// headerEnd returns the length of the header block including its empty
// line, or -1 when b holds no empty line. It looks at each line break once,
// so finding many blocks one after the other (interim responses) stays
// linear.
func headerEnd(b []byte) int {
	for i := 0; ; {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return -1
		}
		i += j + 1
		switch {
		case i < len(b) && b[i] == '\n':
			return i + 1
		case i+1 < len(b) && b[i] == '\r' && b[i+1] == '\n':
			return i + 2
		}
	}
}

// requestHost is the Host header, or the host of an absolute target.
func requestHost(req *schema.Request) string {
	for _, h := range req.Headers {
		if strings.EqualFold(h.Name, "Host") {
			return h.Value
		}
	}
	if strings.Contains(req.Target, "://") {
		if u, err := url.Parse(req.Target); err == nil {
			return u.Host
		}
	}
	return ""
}

func trimLeadingLineBreaks(b []byte) []byte {
	for len(b) > 0 && (b[0] == '\r' || b[0] == '\n') {
		b = b[1:]
	}
	return b
}

func onlyLineBreaks(b []byte) bool { return len(trimLeadingLineBreaks(b)) == 0 }

// trimOWS removes the optional whitespace (spaces and tabs) around a value.
func trimOWS(v string) string { return strings.Trim(v, " \t") }

// parseStatus parses a three-digit status code of at least 100.
func parseStatus(code string) (int, bool) {
	if len(code) != 3 || code[0] < '1' || code[0] > '9' {
		return 0, false
	}
	n := 0
	for i := 0; i < 3; i++ {
		if code[i] < '0' || code[i] > '9' {
			return 0, false
		}
		n = n*10 + int(code[i]-'0')
	}
	return n, true
}

func isHTTP1(proto string) bool { return proto == "HTTP/1.1" || proto == "HTTP/1.0" }

// isToken reports whether s is an RFC 9110 token (a method, a header
// name): httpguts, as net/http checks them.
func isToken(s string) bool { return httpguts.ValidHeaderFieldName(s) }

// clip shortens s for an error message.
func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
