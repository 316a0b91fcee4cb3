package recorder

import (
	"bytes"
	"net"
	"strconv"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/reassembly"

	"github.com/tapline/tapline/schema"
)

// streamFactory makes one conn per TCP connection for the assembler.
type streamFactory struct {
	r *Recorder
}

func (f *streamFactory) New(netFlow, tcpFlow gopacket.Flow, tcp *layers.TCP, ac reassembly.AssemblerContext) reassembly.Stream {
	c := &conn{r: f.r}
	// The first packet's direction is reassembly's ClientToServer; which
	// side really is the client is decided by what it sends (a request
	// line), so connections seen mid-stream work too.
	src, dst := netFlow.Endpoints()
	sport, dport := tcpFlow.Endpoints()
	c.ends[0] = endpoint(src, sport)
	c.ends[1] = endpoint(dst, dport)
	// A connection whose handshake we see starts at a message boundary:
	// bytes before its first start line are not HTTP, not a late join.
	c.fromStart = tcp.SYN
	for i := range c.halves {
		c.halves[i] = &half{conn: c, index: i}
	}
	f.r.conns[c] = struct{}{}
	return c
}

func endpoint(ip, port gopacket.Endpoint) *schema.Endpoint {
	p, _ := strconv.Atoi(port.String())
	return &schema.Endpoint{Ip: net.IP(ip.Raw()).String(), Port: uint32(p)}
}

// conn is one TCP connection: two halves, each parsed as HTTP, and the
// requests that wait for their responses, in order.
type conn struct {
	r        *Recorder
	session  string              // "client->server", the default session key; set by sessionKey
	key      []byte              // session as a record key, shared by the connection's records
	ends     [2]*schema.Endpoint // [0] sent the first packet seen
	halves   [2]*half
	pending  []*message // requests without a response yet, oldest first
	clientIx int        // index of the half that sends requests; -1 until known
	known    bool
	opaque   bool // upgraded (101, CONNECT): no longer HTTP
	late     int  // requests timed out whose responses may still arrive (and are then skipped)
	skipped  bool // counted a drop for this connection's mid-stream or non-HTTP start already
	counted  bool // counted in Stats.Connections already
	// fromStart: the first packet seen was a SYN, so the connection was
	// captured from its first byte.
	fromStart bool
}

// half is one direction of a conn.
type half struct {
	conn  *conn
	index int
	p     *parser // nil until the role of this direction is known
	pre   []byte  // bytes before the roles are known (no start line seen yet)
}

func dirIndex(dir reassembly.TCPFlowDirection) int {
	if dir == reassembly.TCPDirClientToServer {
		return 0
	}
	return 1
}

// Accept takes every packet; connections without a SYN start where we join
// them (the HTTP parser resynchronises at the next start line).
func (c *conn) Accept(tcp *layers.TCP, ci gopacket.CaptureInfo, dir reassembly.TCPFlowDirection, nextSeq reassembly.Sequence, start *bool, ac reassembly.AssemblerContext) bool {
	*start = true
	return true
}

// ReassembledSG receives in-order bytes of one direction.
func (c *conn) ReassembledSG(sg reassembly.ScatterGather, ac reassembly.AssemblerContext) {
	dir, _, _, skip := sg.Info()
	n, _ := sg.Lengths()
	h := c.halves[dirIndex(dir)]
	if n == 0 || c.opaque {
		return
	}
	if !c.counted {
		// Counted at the first payload byte: packets after a FIN
		// handshake, which reassembly sees as a new stream, do not count.
		c.counted = true
		c.r.stats.connections.Add(1)
	}
	ts := ac.GetCaptureInfo().Timestamp
	data := sg.Fetch(n)
	if skip > 0 { // -1 means "start of stream", not a gap
		// Bytes are missing (lost or never captured): what was being
		// parsed cannot be trusted.
		if h.p != nil {
			h.p.gap()
		} else {
			// Before the first message: the bytes up to the next start
			// line are this hole's loss, not a mid-stream join.
			h.pre, c.skipped = nil, true
		}
		if c.r.flushing {
			c.r.drop(dropGap)
		} else {
			// Skipped while a packet was being assembled: reassembly hit
			// its page limit and gave up on the hole early.
			c.r.drop(dropMemoryCap)
		}
	}
	if h.p == nil {
		// Decide the roles from the first complete start line, wherever
		// it is: a connection joined mid-stream starts mid-message.
		h.pre = append(h.pre, data...)
		pos, isRequest := sniff(h.pre)
		if pos < 0 {
			nl := bytes.LastIndexByte(h.pre, '\n')
			tooLong := nl < 0 && len(h.pre) > maxHeaderBytes
			switch {
			case tooLong && (plausibleStart(h.pre, false) || plausibleStart(h.pre, true)):
				// A start line longer than a whole header block may
				// be: HTTP, but malformed.
				if !c.skipped {
					c.skipped = true
					c.r.drop(dropParseError)
				}
			case nl >= 0 || tooLong:
				c.skipStart(h.pre)
			default:
				return // the first line is not complete yet
			}
			// Keep only an unfinished last line, and not a long one.
			if h.pre = h.pre[nl+1:]; len(h.pre) > maxHeaderBytes {
				h.pre = nil
			}
			return
		}
		if pos > 0 {
			c.skipStart(h.pre[:pos])
		}
		data, h.pre = h.pre[pos:], nil
		c.assignRoles(h, isRequest, ts)
	}
	h.p.feed(data, ts)
}

// sniff finds the first complete request or status line in b.
func sniff(b []byte) (pos int, isRequest bool) {
	req, resp := findStart(b, false), findStart(b, true)
	switch {
	case req >= 0 && (resp < 0 || req < resp):
		return req, true
	case resp >= 0:
		return resp, false
	}
	return -1, false
}

// assignRoles makes half h the client (it sends requests) or the server,
// and sets up both parsers.
func (c *conn) assignRoles(h *half, sendsRequests bool, ts time.Time) {
	clientIx := h.index
	if !sendsRequests {
		clientIx = 1 - h.index
	}
	c.clientIx, c.known = clientIx, true
	client, server := c.halves[clientIx], c.halves[1-clientIx]
	client.p = &parser{
		bodyCap:   c.r.cfg.BodyCap,
		onMessage: c.request,
		onSkip:    func(string) { c.r.drop(dropParseError) },
		onAbandon: c.requestFailed,
		pool:      &c.r.messages,
	}
	server.p = &parser{
		response:        true,
		bodyCap:         c.r.cfg.BodyCap,
		responseFraming: c.responseFraming,
		onMessage:       c.response,
		onSkip:          func(string) { c.r.drop(dropParseError) },
		onAbandon:       c.responseFailed,
		pool:            &c.r.messages,
	}
	// Bytes the other half buffered before the roles were known start
	// mid-message; its parser resynchronises on them.
	other := c.halves[1-h.index]
	if len(other.pre) > 0 && !plausibleStart(other.pre, other.p.response) {
		// Bytes that cannot begin its first message: for a request
		// side, typically what a client that does not speak HTTP/1.x
		// sent before the server answered with an error.
		c.skipStart(other.pre)
	}
	if len(other.pre) > 0 {
		pre := other.pre
		other.pre = nil
		other.p.state = stateResync
		other.p.lineStart = true
		other.p.feed(pre, ts)
	}
}

// responseFraming overrides the body framing of a response that cannot
// have a body, given the request it answers.
func (c *conn) responseFraming(status int) framing {
	method := ""
	if len(c.pending) > 0 {
		method = c.pending[0].method
	}
	switch {
	case status >= 100 && status < 200, status == 204, status == 304, method == "HEAD":
		return noBody
	case method == "CONNECT" && status >= 200 && status < 300:
		return noBody
	}
	return -1
}

func (c *conn) request(m *message) {
	c.pending = append(c.pending, m)
	if len(c.pending) > c.r.cfg.MaxPendingPerConn {
		old := c.popPending()
		if !old.failed { // a failed one is counted already
			c.r.drop(dropPendingOverflow)
		}
		c.r.messages.put(old)
	}
}

// requestFailed keeps a request abandoned as malformed (counted as a
// parse error) in the pending order: its response, when it comes, is
// skipped instead of being paired with the next request.
func (c *conn) requestFailed(m *message) {
	m.failed = true
	c.request(m)
}

// responseFailed: a response was abandoned as malformed (counted as a
// parse error) after its status line. The request it answers is emitted
// with the response missing (PARSE_ERROR), so the next response pairs
// with the next request.
func (c *conn) responseFailed(m *message) {
	status := m.status
	c.r.messages.put(m)
	switch {
	case status < 200:
		// An interim response answers nothing.
	case c.late > 0:
		c.late-- // it answered a request emitted already (timed out)
	case len(c.pending) == 0:
	case c.pending[0].failed:
		c.r.messages.put(c.popPending())
	default:
		c.r.emit(c, c.popPending(), nil, schema.MissingReason_MISSING_REASON_PARSE_ERROR)
	}
}

// popPending removes and returns the oldest pending request. The usual
// single pending request leaves the slice empty with its room kept, so
// the next request is appended without allocating.
func (c *conn) popPending() *message {
	m := c.pending[0]
	if len(c.pending) == 1 {
		c.pending[0] = nil
		c.pending = c.pending[:0]
	} else {
		c.pending = c.pending[1:]
	}
	return m
}

func (c *conn) response(m *message) {
	switch {
	case m.status == 101 || (len(c.pending) > 0 && c.pending[0].method == "CONNECT" && m.status/100 == 2):
		// The connection leaves HTTP. The request that switched it is
		// emitted with this response; the rest of the bytes are skipped.
		c.r.drop(dropUpgrade)
		c.opaque = true
		for _, h := range c.halves {
			h.p.upgrade()
		}
	case m.status < 200:
		// 100 Continue and other interim responses: the final one follows.
		c.r.messages.put(m)
		return
	case c.late > 0:
		// Responses come in request order: this one answers the oldest
		// request that already timed out.
		c.late--
		c.r.drop(dropLateResponse)
		c.r.messages.put(m)
		return
	case len(c.pending) > 0 && c.pending[0].failed:
		// It answers a request that was malformed (counted as a parse
		// error): there is no exchange to pair it with.
		c.r.messages.put(c.popPending())
		c.r.drop(dropResponseWithoutRequest)
		c.r.messages.put(m)
		return
	}
	if len(c.pending) == 0 {
		c.r.drop(dropResponseWithoutRequest)
		c.r.messages.put(m)
		return
	}
	c.r.emit(c, c.popPending(), m, schema.MissingReason_MISSING_REASON_UNSPECIFIED)
}

// ReassemblyComplete is called once both directions ended (FIN, RST, idle
// flush or the end of the capture). ac is nil here.
func (c *conn) ReassemblyComplete(ac reassembly.AssemblerContext) bool {
	delete(c.r.conns, c)
	if c.counted && !c.known {
		// It carried bytes but no complete HTTP/1.x start line. Garbage
		// without a line end (a TLS handshake) was not counted on
		// arrival; a first start line cut off by the end is incomplete.
		for _, h := range c.halves {
			switch {
			case len(h.pre) == 0:
			case plausibleStart(h.pre, false) || plausibleStart(h.pre, true):
				c.r.drop(dropIncomplete)
			default:
				c.skipStart(h.pre)
			}
		}
	}
	for _, h := range c.halves {
		if h.p != nil && !h.p.close() {
			c.r.drop(dropIncomplete)
		}
	}
	reason := schema.MissingReason_MISSING_REASON_CONNECTION_CLOSED
	if c.r.ending {
		reason = schema.MissingReason_MISSING_REASON_CAPTURE_ENDED
	}
	for _, req := range c.pending {
		if req.failed {
			c.r.messages.put(req) // counted as a parse error
			continue
		}
		c.r.emit(c, req, nil, reason)
	}
	c.pending = nil
	return true
}

// timeOut emits the requests that were complete before deadline and are
// still unanswered, oldest first.
func (c *conn) timeOut(deadline time.Time) {
	for len(c.pending) > 0 && c.pending[0].last.Before(deadline) {
		c.late++ // its response, should it come, is skipped
		if m := c.popPending(); m.failed {
			c.r.messages.put(m) // counted as a parse error
		} else {
			c.r.emit(c, m, nil, schema.MissingReason_MISSING_REASON_TIMEOUT)
		}
	}
}

// skipStart counts, once per connection, that bytes before its first
// message were skipped: not_http for a connection seen from its SYN
// (garbage, TLS, another protocol on the port), mid_stream for one joined
// while open. first is some of those bytes, to tell TLS and HTTP/2 apart
// in the log (which never shows the bytes themselves).
func (c *conn) skipStart(first []byte) {
	if c.skipped {
		return
	}
	c.skipped = true
	reason := dropMidStream
	if c.fromStart {
		reason = dropNotHTTP
	}
	c.r.drop(reason)
	c.r.log.Debug("skipping bytes before the first HTTP/1.x message", "conn", c.seen(), "reason", reason.String(), "looks_like", guessProtocol(first))
}

// seen is the connection as "first sender->other end", usable before the
// roles are known.
func (c *conn) seen() string {
	a, b := c.ends[0], c.ends[1]
	return a.Ip + ":" + strconv.Itoa(int(a.Port)) + "->" + b.Ip + ":" + strconv.Itoa(int(b.Port))
}

// guessProtocol names what non-HTTP/1.x bytes probably are.
func guessProtocol(b []byte) string {
	switch {
	case len(b) >= 3 && b[0] == 0x16 && b[1] == 0x03:
		return "tls"
	case bytes.HasPrefix(b, []byte("PRI * HTTP/2.0")):
		return "http2"
	}
	return "unknown"
}

// sessionKey is the connection as "client->server", computed once.
func (c *conn) sessionKey() string {
	if c.session == "" {
		cl, sv := c.client(), c.server()
		c.session = cl.Ip + ":" + strconv.Itoa(int(cl.Port)) + "->" + sv.Ip + ":" + strconv.Itoa(int(sv.Port))
	}
	return c.session
}

// recordKey is the record key for an exchange keyed by session: the
// connection's own key is made once and shared by its records.
func (c *conn) recordKey(session string) []byte {
	if session != c.sessionKey() {
		return []byte(session)
	}
	if c.key == nil {
		c.key = []byte(session)
	}
	return c.key[:len(c.key):len(c.key)]
}

// client and server return the endpoints once roles are known.
func (c *conn) client() *schema.Endpoint { return c.ends[c.clientIx] }
func (c *conn) server() *schema.Endpoint { return c.ends[1-c.clientIx] }

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}
