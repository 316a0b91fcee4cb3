package recorder

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/tapline/tapline/schema"
)

// maxHeaderBytes bounds the start line plus headers of one message. A
// message whose header block is longer is a parse error (and is counted).
const maxHeaderBytes = 64 << 10

// message is one parsed HTTP/1.x request or response.
type message struct {
	// request line
	method, target string
	// status line
	status int
	reason string

	proto   string
	headers []*schema.Header

	body      []byte
	bodySize  int64
	truncated bool

	// failed: a request abandoned as malformed after its head was
	// parsed, kept in its connection's order so that its response is
	// not paired with the next request.
	failed bool

	first, last time.Time // capture time of the first and last byte

	store []schema.Header // what headers point into, kept for reuse
}

// messagePool recycles messages, with their header and body storage, once
// their exchange has been encoded: a message costs several allocations
// and its body often kilobytes. The zero value and nil are ready to use
// (nil allocates every time). Like the parsers it serves, a pool is used
// by the assembler's goroutine only.
type messagePool struct {
	free []*message
}

// The pool keeps at most maxPooledMessages messages, and of a body buffer
// at most maxPooledBody bytes of capacity, so it holds a bounded amount of
// memory (about 64 × 16 KiB plus headers).
const (
	maxPooledMessages = 64
	maxPooledBody     = 16 << 10
)

// get returns an empty message whose storage may be reused.
func (mp *messagePool) get() *message {
	if mp == nil || len(mp.free) == 0 {
		return &message{}
	}
	m := mp.free[len(mp.free)-1]
	mp.free[len(mp.free)-1] = nil
	mp.free = mp.free[:len(mp.free)-1]
	return m
}

// put recycles m. Nothing may use m, its headers or its body afterwards.
func (mp *messagePool) put(m *message) {
	if mp == nil || m == nil || len(mp.free) >= maxPooledMessages {
		return
	}
	body := m.body[:0]
	if cap(body) > maxPooledBody {
		body = nil
	}
	// Drop the strings (they pin the header block) but keep capacities.
	clear(m.store)
	clear(m.headers)
	*m = message{store: m.store[:0], headers: m.headers[:0], body: body}
	mp.free = append(mp.free, m)
}

// framing says how a message body is delimited on the wire.
type framing int

const (
	noBody        framing = iota
	contentLength         // Content-Length bytes follow
	chunked               // Transfer-Encoding: chunked
	untilClose            // a response without a length: the body ends with the connection
)

type parseState int

const (
	stateStartLine  parseState = iota // waiting for a complete header block
	stateBody                         // reading bodyLeft bytes of a Content-Length body
	stateChunkSize                    // reading a chunk-size line
	stateChunkData                    // reading bodyLeft bytes of chunk data
	stateChunkCRLF                    // the CRLF after chunk data
	stateTrailers                     // trailer lines after the last chunk
	stateUntilClose                   // everything until the connection ends
	stateResync                       // after an error: skipping to the next start line
	stateOpaque                       // after an upgrade: the rest is not HTTP
)

// errParse marks errors about malformed HTTP on the wire.
var errParse = errors.New("malformed HTTP")

// parser reads one direction of an HTTP/1.x connection incrementally. Feed
// it bytes as they are reassembled; it calls onMessage for every complete
// message. It copies what it keeps: callers may reuse the bytes they feed.
//
// A parser is used by one goroutine (the assembler's).
type parser struct {
	response bool
	bodyCap  int
	// responseFraming is asked, for a response, how its body is framed
	// given the status code; for requests it is unused.
	responseFraming func(status int) framing
	onMessage       func(*message)
	// pool supplies the messages; nil allocates each.
	pool *messagePool
	// onSkip is told about bytes dropped while resynchronising and why.
	onSkip func(reason string)
	// onAbandon is given a message whose head parsed but whose body or
	// trailers did not (it is then not passed to onMessage); nil drops
	// it.
	onAbandon func(*message)

	state     parseState
	lineStart bool   // in stateResync: buf[0] begins a line
	buf       []byte // unconsumed bytes: the caller's data (during feed) or own
	own       []byte // storage for bytes kept between feeds
	cur       *message
	bodyLeft  int64
	trailers  int // bytes of the trailer section so far, bounded like a header block
}

// feed consumes data captured at ts.
func (p *parser) feed(data []byte, ts time.Time) {
	if p.state == stateOpaque || len(data) == 0 {
		return
	}
	// Parse straight from data when nothing is buffered (the common case:
	// a segment holds whole messages); only an unfinished tail is copied.
	// Everything a message keeps is copied out of buf (strings, body).
	borrowed := len(p.buf) == 0
	if borrowed {
		p.buf = data
	} else {
		p.buf = append(p.buf, data...)
	}
	if p.cur != nil {
		p.cur.last = ts
	}
	for p.step(ts) {
	}
	switch {
	case borrowed && len(p.buf) > 0:
		p.own = append(p.own[:0], p.buf...)
		p.buf = p.own
	case len(p.buf) == 0:
		p.buf = nil
		if cap(p.own) > 1<<20 {
			p.own = nil // do not hold on to a large buffer
		}
	}
}

// step makes one unit of progress; false means it needs more bytes.
func (p *parser) step(ts time.Time) bool {
	switch p.state {
	case stateResync:
		return p.resync()
	case stateStartLine:
		if len(p.buf) == 0 {
			return false
		}
		end := headerEnd(p.buf)
		if end < 0 {
			if len(p.buf) > maxHeaderBytes {
				p.fail(fmt.Errorf("%w: header block longer than %d bytes", errParse, maxHeaderBytes), false)
				return true
			}
			if !plausibleStart(p.buf, p.response) {
				p.fail(fmt.Errorf("%w: %q does not start a message", errParse, clip(p.buf, 20)), false)
				return true
			}
			return false
		}
		m, fr, err := p.parseHead(p.buf[:end])
		if err != nil {
			p.fail(err, false)
			return true
		}
		m.first, m.last = ts, ts
		p.buf = p.buf[end:]
		p.cur = m
		return p.startBody(fr)
	case stateBody:
		p.takeBody()
		if p.bodyLeft == 0 {
			p.finish()
		}
		return p.bodyLeft == 0
	case stateChunkSize:
		line, ok := p.line()
		if !ok {
			return p.lineTooLong()
		}
		sizeText, _, _ := strings.Cut(string(line), ";") // drop chunk extensions
		size, err := strconv.ParseInt(strings.TrimSpace(sizeText), 16, 64)
		if err != nil || size < 0 {
			p.fail(fmt.Errorf("%w: bad chunk size %q", errParse, clip(line, 20)), true)
			return true
		}
		if size == 0 {
			p.state, p.trailers = stateTrailers, 0
		} else {
			p.bodyLeft, p.state = size, stateChunkData
		}
		return true
	case stateChunkData:
		p.takeBody()
		if p.bodyLeft == 0 {
			p.state = stateChunkCRLF
			return true
		}
		return false
	case stateChunkCRLF:
		line, ok := p.line()
		if !ok {
			return p.lineTooLong()
		}
		if len(line) != 0 {
			p.fail(fmt.Errorf("%w: chunk data longer than its size", errParse), true)
			return true
		}
		p.state = stateChunkSize
		return true
	case stateTrailers:
		line, ok := p.line()
		if !ok {
			return p.lineTooLong()
		}
		if len(line) == 0 {
			p.finish()
			return true
		}
		// Trailers are headers: bounded as a header block is, or a
		// stream of trailer lines would grow the message without end.
		if p.trailers += len(line) + 2; p.trailers > maxHeaderBytes {
			p.fail(fmt.Errorf("%w: trailer section longer than %d bytes", errParse, maxHeaderBytes), true)
			return true
		}
		if name, value, ok := splitHeader(string(line)); ok {
			p.cur.headers = append(p.cur.headers, &schema.Header{Name: name, Value: value})
		}
		return true
	case stateUntilClose:
		p.cur.bodySize += int64(len(p.buf))
		p.keep(p.buf)
		p.buf = p.buf[:0]
		return false
	}
	return false
}

// close tells the parser the direction ended. A response delimited by the
// close is complete now; anything else in progress is reported as
// incomplete (false).
func (p *parser) close() (completeOrIdle bool) {
	switch p.state {
	case stateUntilClose:
		p.finish()
		return true
	case stateStartLine:
		return len(p.buf) == 0
	case stateOpaque, stateResync:
		return true
	}
	return false
}

func (p *parser) startBody(fr framing) bool {
	switch fr {
	case noBody:
		p.finish()
	case contentLength:
		if p.bodyLeft == 0 {
			p.finish()
		} else {
			// The size is known: allocate the kept part once (unless
			// the recycled message has room).
			if n := min(p.bodyLeft, int64(p.bodyCap)); int64(cap(p.cur.body)) < n {
				p.cur.body = make([]byte, 0, n)
			}
			p.state = stateBody
		}
	case chunked:
		p.state = stateChunkSize
	case untilClose:
		p.state = stateUntilClose
	}
	return true
}

// takeBody moves up to bodyLeft bytes from buf into the current body.
func (p *parser) takeBody() {
	n := int64(len(p.buf))
	if n > p.bodyLeft {
		n = p.bodyLeft
	}
	p.keep(p.buf[:n])
	p.cur.bodySize += n
	p.bodyLeft -= n
	p.buf = p.buf[n:]
}

// keep stores body bytes up to the body cap.
func (p *parser) keep(b []byte) {
	room := p.bodyCap - len(p.cur.body)
	if room <= 0 {
		if len(b) > 0 {
			p.cur.truncated = true
		}
		return
	}
	if len(b) > room {
		b, p.cur.truncated = b[:room], true
	}
	p.cur.body = append(p.cur.body, b...)
}

func (p *parser) finish() {
	m := p.cur
	p.cur, p.state = nil, stateStartLine
	if p.onMessage != nil {
		p.onMessage(m)
	}
}

// fail drops the message in progress and resynchronises: the buffered
// bytes are skipped up to the next line that could start a message. If the
// offending line was already consumed, buf starts at a line boundary and
// that line is a candidate too; otherwise the bad start line is skipped.
func (p *parser) fail(err error, lineConsumed bool) {
	m := p.cur
	p.cur = nil
	if p.onSkip != nil {
		p.onSkip(err.Error())
	}
	if m != nil && p.onAbandon != nil {
		p.onAbandon(m)
	}
	p.lineStart = lineConsumed
	p.state = stateResync
}

// resync discards bytes until a complete start line, found anywhere in
// the buffer (a request often follows a body without a line break).
func (p *parser) resync() bool {
	if !p.lineStart {
		// The failed message's own start line must not be found again.
		nl := bytes.IndexByte(p.buf, '\n')
		if nl < 0 {
			p.discardLongPartialLine()
			return false
		}
		p.buf, p.lineStart = p.buf[nl+1:], true
	}
	if pos := findStart(p.buf, p.response); pos >= 0 {
		p.buf, p.state = p.buf[pos:], stateStartLine
		return true
	}
	// Keep the last, unfinished line: a start line may be arriving.
	if nl := bytes.LastIndexByte(p.buf, '\n'); nl >= 0 {
		p.buf = p.buf[nl+1:]
	}
	p.discardLongPartialLine()
	return false
}

// knownMethods may be found glued to preceding bytes when resynchronising
// ("...body bytesGET /next HTTP/1.1"); other methods only at a line start.
var knownMethods = []string{"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}

// findStart returns the offset of the first complete start line in b: a
// request line "METHOD target HTTP/1.x" (response false) or a status line
// "HTTP/1.x NNN ..." (response true), or -1. Only lines whose end (LF) is
// in b count, so the answer does not depend on how b was split.
func findStart(b []byte, response bool) int {
	const marker = "HTTP/1."
	for from := 0; ; {
		j := bytes.Index(b[from:], []byte(marker))
		if j < 0 {
			return -1
		}
		j += from
		from = j + 1
		nl := bytes.IndexByte(b[j:], '\n')
		if nl < 0 {
			return -1 // that line is not complete yet
		}
		line := bytes.TrimSuffix(b[j:j+nl], []byte("\r"))
		if response {
			if len(line) >= 12 && isHTTP1(string(line[:8])) && line[8] == ' ' && isDigits(line[9:12]) && (len(line) == 12 || line[12] == ' ') {
				return j
			}
			continue
		}
		// A request line ends in " HTTP/1.x".
		if !isHTTP1(string(line)) || j < 3 || b[j-1] != ' ' {
			continue
		}
		sp := bytes.LastIndexByte(b[:j-1], ' ')
		if sp <= 0 || sp == j-2 || bytes.ContainsAny(b[sp+1:j-1], "\r\n") {
			continue // no target
		}
		k := sp
		for k > 0 && isMethodChar(b[k-1]) && sp-k < maxMethodLen {
			k--
		}
		token := string(b[k:sp])
		atLineStart := k == 0 || b[k-1] == '\n'
		switch {
		case token == "":
		case atLineStart:
			return k
		default:
			for _, m := range knownMethods {
				if strings.HasSuffix(token, m) {
					return sp - len(m)
				}
			}
		}
	}
}

func isDigits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return len(b) > 0
}

func (p *parser) discardLongPartialLine() {
	if len(p.buf) > maxHeaderBytes {
		p.buf, p.lineStart = p.buf[:0], false
	}
}

// gap tells the parser that bytes before the next feed were never
// captured. What was buffered or in progress cannot be trusted; parsing
// resumes at the next complete start line (the caller counts the gap, so it
// is not also a parse error).
func (p *parser) gap() {
	if p.state == stateOpaque {
		return
	}
	p.buf, p.cur = p.buf[:0], nil
	p.state, p.lineStart = stateResync, true
}

// upgrade makes the parser ignore the rest of this direction.
func (p *parser) upgrade() {
	p.state, p.buf, p.cur = stateOpaque, nil, nil
}

// line returns the next CRLF- (or LF-) terminated line without its ending.
func (p *parser) line() ([]byte, bool) {
	nl := bytes.IndexByte(p.buf, '\n')
	if nl < 0 {
		return nil, false
	}
	line := p.buf[:nl]
	p.buf = p.buf[nl+1:]
	return bytes.TrimSuffix(line, []byte("\r")), true
}

func (p *parser) lineTooLong() bool {
	if len(p.buf) > maxHeaderBytes {
		p.fail(fmt.Errorf("%w: line longer than %d bytes", errParse, maxHeaderBytes), false)
		return true
	}
	return false
}

// parseHead parses a start line and header block (ending in an empty line)
// and decides how the body is framed.
func (p *parser) parseHead(head []byte) (*message, framing, error) {
	// One string for the whole block: start line fields, header names and
	// values are substrings of it.
	end := len(head)
	for end > 0 && (head[end-1] == '\n' || head[end-1] == '\r') {
		end--
	}
	block := string(head[:end])
	first, rest, _ := strings.Cut(block, "\n")
	first = strings.TrimSuffix(first, "\r")
	var m *message
	if p.response {
		proto, rest, _ := strings.Cut(first, " ")
		code, reason, _ := strings.Cut(rest, " ")
		status, ok := parseStatus(code)
		if !isHTTP1(proto) || !ok {
			return nil, 0, fmt.Errorf("%w: bad status line %q", errParse, clip([]byte(first), 40))
		}
		m = p.pool.get()
		m.proto, m.status, m.reason = proto, status, reason
	} else {
		method, rest, _ := strings.Cut(first, " ")
		target, proto, _ := strings.Cut(rest, " ")
		if !isMethod(method) || target == "" || !isHTTP1(proto) {
			return nil, 0, fmt.Errorf("%w: bad request line %q", errParse, clip([]byte(first), 40))
		}
		m = p.pool.get()
		m.method, m.target, m.proto = method, target, proto
	}
	var length int64 = -1
	var isChunked bool
	var badLength string // reported once every header line parsed
	if rest != "" {
		// One allocation for all headers of the message, or none when a
		// recycled message has room.
		store := m.store[:0]
		if cap(store) == 0 {
			store = make([]schema.Header, 0, strings.Count(rest, "\n")+1)
		}
		for rest != "" {
			// As splitHeader does, in one pass: the name is the token
			// characters up to the colon.
			i := 0
			for i < len(rest) && tokenChar[rest[i]] {
				i++
			}
			if i == 0 || i == len(rest) || rest[i] != ':' {
				p.pool.put(m)
				l, _, _ := strings.Cut(rest, "\n")
				return nil, 0, fmt.Errorf("%w: bad header line %q", errParse, clip([]byte(l), 40))
			}
			name, value := rest[:i], rest[i+1:]
			if nl := strings.IndexByte(value, '\n'); nl >= 0 {
				value, rest = value[:nl], value[nl+1:]
			} else {
				rest = ""
			}
			value = trimOWS(strings.TrimSuffix(value, "\r"))
			store = append(store, schema.Header{Name: name, Value: value})
			// Only the framing headers matter here; the first letter
			// rules out the others cheaply.
			switch name[0] | 0x20 {
			case 'c':
				if strings.EqualFold(name, "Content-Length") {
					n, err := strconv.ParseInt(value, 10, 64)
					if badLength == "" && (err != nil || n < 0 || (length >= 0 && n != length)) {
						badLength = value
					}
					length = n
				}
			case 't':
				if strings.EqualFold(name, "Transfer-Encoding") {
					// chunked must be the last coding (RFC 9112 §6.3).
					last := value
					if i := strings.LastIndexByte(value, ','); i >= 0 {
						last = value[i+1:]
					}
					isChunked = strings.EqualFold(strings.TrimSpace(last), "chunked")
				}
			}
		}
		if badLength != "" {
			p.pool.put(m)
			return nil, 0, fmt.Errorf("%w: bad Content-Length %q", errParse, badLength)
		}
		// The pointers are taken once store no longer moves.
		m.store, m.headers = store, m.headers[:0]
		if cap(m.headers) < len(store) {
			m.headers = make([]*schema.Header, 0, cap(store))
		}
		for i := range store {
			m.headers = append(m.headers, &store[i])
		}
	}
	fr := noBody
	switch {
	case isChunked: // Transfer-Encoding overrides Content-Length
		fr = chunked
	case length >= 0:
		fr, p.bodyLeft = contentLength, length
	case p.response:
		fr = untilClose
	}
	if p.response && p.responseFraming != nil {
		// HEAD, 1xx, 204, 304 and a successful CONNECT have no body
		// whatever the headers say.
		if override := p.responseFraming(m.status); override == noBody {
			fr = noBody
		}
	}
	return m, fr, nil
}

// headerEnd returns the length of the header block including its
// terminating empty line, or -1 if it is not complete yet.
func headerEnd(b []byte) int {
	// The block ends at the first line end followed by an empty line,
	// "\n\r\n" or (bare LF) "\n\n". Search for the usual one first, then
	// for the other only before it.
	end := -1
	if i := bytes.Index(b, []byte("\n\r\n")); i >= 0 {
		b, end = b[:i+1], i+3
	}
	if i := bytes.Index(b, []byte("\n\n")); i >= 0 {
		end = i + 2
	}
	return end
}

func splitHeader(line string) (name, value string, ok bool) {
	n, v, found := strings.Cut(line, ":")
	if !found || !isToken(n) {
		return "", "", false
	}
	return n, trimOWS(v), true
}

// trimOWS removes the optional whitespace (spaces and tabs) around a
// header value.
func trimOWS(v string) string {
	for v != "" && (v[0] == ' ' || v[0] == '\t') {
		v = v[1:]
	}
	for v != "" && (v[len(v)-1] == ' ' || v[len(v)-1] == '\t') {
		v = v[:len(v)-1]
	}
	return v
}

// parseStatus parses a three-digit status code of at least 100.
func parseStatus(code string) (int, bool) {
	digit := func(c byte) bool { return c >= '0' && c <= '9' }
	if len(code) != 3 || code[0] == '0' || !digit(code[0]) || !digit(code[1]) || !digit(code[2]) {
		return 0, false
	}
	return int(code[0]-'0')*100 + int(code[1]-'0')*10 + int(code[2]-'0'), true
}

// plausibleStart reports whether b may begin a request or status line,
// looking only at the bytes present.
func plausibleStart(b []byte, response bool) bool {
	if response {
		const prefix = "HTTP/1."
		n := min(len(b), len(prefix))
		return string(b[:n]) == prefix[:n]
	}
	for i, c := range b {
		if c == ' ' {
			return i > 0
		}
		if !isMethodChar(c) || i >= maxMethodLen {
			return false
		}
	}
	return true
}

// maxMethodLen bounds a method name; longer ones are not HTTP we record.
const maxMethodLen = 16

// isMethodChar: methods are case-sensitive tokens, in practice upper-case
// letters ("GET", "M-SEARCH", "BASELINE_CONTROL"). Being stricter than
// RFC 9110 lets the parser find request lines in garbage reliably.
func isMethodChar(c byte) bool { return (c >= 'A' && c <= 'Z') || c == '-' || c == '_' }

func isMethod(s string) bool {
	if s == "" || len(s) > maxMethodLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isMethodChar(s[i]) {
			return false
		}
	}
	return true
}

func isHTTP1(proto string) bool { return proto == "HTTP/1.1" || proto == "HTTP/1.0" }

// isToken reports whether s is an RFC 9110 token.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !tokenChar[s[i]] {
			return false
		}
	}
	return true
}

// tokenChar says which bytes may appear in a token: visible ASCII except
// the delimiters.
var tokenChar = func() (t [256]bool) {
	for c := '!'; c < 0x7f; c++ {
		t[c] = !strings.ContainsRune(`"(),/:;<=>?@[\]{}`, c)
	}
	return t
}()

func clip(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}
