package gor

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"

	"github.com/tapline/tapline/schema"
)

// Config configures a Reader. Zero values are the documented defaults.
type Config struct {
	// Recorder names the source in every exchange (Exchange.recorder).
	// Default "goreplay-import".
	Recorder string
	// BodyCap is how many bytes of each body are kept; longer bodies are
	// cut and flagged truncated, with their full size recorded. Default
	// 1 MiB, as the recorder's. Negative: no body bytes are kept.
	BodyCap int
	// MaxPayload is the longest payload (header line and message) read;
	// a longer one is skipped without being held and counted as malformed
	// ("too_large"). Default 64 MiB.
	MaxPayload int
	// PairWindow is how many payloads after a request its response may
	// come (and how many after a response its request may); then the
	// request is emitted with its response missing (TIMEOUT) and the
	// response counted as an orphan. Default 10 000.
	PairWindow int
	// PendingBytes bounds the memory held by exchanges waiting for their
	// response, or for the requests before them to be answered (exchanges
	// leave in request order), and by responses waiting for their request,
	// counting the bodies as kept (after BodyCap) and the headers. Past it
	// the oldest request is emitted without its response (TIMEOUT) before
	// its window is over, or the oldest waiting response counted as an
	// orphan. Default 256 MiB.
	PendingBytes int64
	// Redact, when set, is applied to every exchange before its session
	// key is taken, and returns how many values it replaced (counted in
	// Stats.Redacted). recorder.Redactor's Apply fits.
	Redact func(ex *schema.Exchange) int
	// SessionKey, when set, derives the session key from the request (after
	// Redact); recorder.ParseSessionKey makes one from "header:NAME" or
	// "cookie:NAME". Default nil, and also when it finds no key: "gor:"
	// and the GoReplay ID (see the package documentation).
	SessionKey func(req *schema.Request) (string, bool)
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Defaults of Config.
const (
	DefaultRecorder     = "goreplay-import"
	DefaultBodyCap      = 1 << 20
	DefaultMaxPayload   = 64 << 20
	DefaultPairWindow   = 10_000
	DefaultPendingBytes = 256 << 20
)

// The reasons a payload is malformed, the keys of Stats.Malformed.
const (
	MalformedHeaderLine = "header_line" // the first line is not "TYPE ID TIMESTAMP [LATENCY]"
	MalformedType       = "type"        // TYPE is not 1, 2 or 3
	MalformedTooLarge   = "too_large"   // longer than Config.MaxPayload
	MalformedTruncated  = "truncated"   // the message ends inside its header block
	MalformedRequest    = "request"     // a type-1 payload that is not an HTTP/1.x request
	MalformedResponse   = "response"    // a type-2 payload that is not an HTTP/1.x response
)

var malformedReasons = []string{
	MalformedHeaderLine, MalformedType, MalformedTooLarge, MalformedTruncated, MalformedRequest, MalformedResponse,
}

// Stats are a Reader's counters.
type Stats struct {
	Payloads         uint64 `json:"payloads"`          // payloads read, skipped ones included (blank ones not)
	Exchanges        uint64 `json:"exchanges"`         // exchanges returned by Next
	ResponsesMissing uint64 `json:"responses_missing"` // of those, without a response
	OrphanResponses  uint64 `json:"orphan_responses"`  // type-2 payloads no request claimed; skipped
	ReplayedSkipped  uint64 `json:"replayed_skipped"`  // type-3 payloads (replayed responses); skipped
	// Cut counts messages whose body the payload holds only in part (cut
	// by GoReplay, or by the end of the file); they are kept, flagged
	// truncated.
	Cut uint64 `json:"cut"`
	// TrailingBytes counts payloads with bytes after their HTTP message
	// (other than line breaks); those bytes were ignored.
	TrailingBytes uint64 `json:"trailing_bytes"`
	Redacted      uint64 `json:"redacted"` // values Config.Redact replaced
	// Malformed counts the payloads skipped as malformed, by reason (the
	// Malformed* constants); reasons that did not occur are left out.
	Malformed map[string]uint64 `json:"malformed,omitempty"`
}

// counters back Stats; Next updates them, Stats reads them from any
// goroutine.
type counters struct {
	payloads, exchanges, missing, orphans atomic.Uint64
	replayed, cut, trailing, redacted     atomic.Uint64
	// malformed has a counter per reason, made by NewReader; the map is
	// never changed afterwards.
	malformed map[string]*atomic.Uint64
}

// Reader reads exchanges from a GoReplay capture. Create it with NewReader.
// Next is not safe for concurrent use; Stats is, with Next or itself.
type Reader struct {
	cfg Config
	log *slog.Logger
	sc  *scanner

	seq     uint64                // payloads read (the number of the last one)
	queue   []*entry              // requests in file order, waiting to be emitted
	waiting map[string][]*entry   // requests without a response yet, by GoReplay ID, oldest first
	early   map[string][]*pending // responses without a request yet, by GoReplay ID, oldest first
	earlyQ  []*pending            // the same, in the order read (taken ones included)
	held    int64                 // bytes held by queue and early, for PendingBytes

	sawRequest, sawResponse bool
	done                    bool  // the input is over
	err                     error // the read error that ended it, returned after the last exchange
	stats                   counters
}

// entry is a request waiting to leave, with its response once found.
type entry struct {
	seq      uint64 // the request's payload number
	gorID    string
	id       string // the exchange id
	reqMeta  meta
	req      *schema.Request
	reqCut   bool
	resp     *pending                // the response, or nil
	missing  *schema.ResponseMissing // why there is none, once decided
	heldSize int64
}

// pending is a parsed response, waiting for its request in early or given
// to one.
type pending struct {
	seq   uint64
	meta  meta
	resp  *schema.Response
	cut   bool
	size  int64
	taken bool // paired with a request (in earlyQ: skip it)
}

// NewReader returns a Reader of the GoReplay capture r. It reads r only
// when Next is called, never concurrently, and does not close it.
func NewReader(r io.Reader, cfg Config) *Reader {
	if cfg.Recorder == "" {
		cfg.Recorder = DefaultRecorder
	}
	if cfg.BodyCap == 0 {
		cfg.BodyCap = DefaultBodyCap
	}
	if cfg.MaxPayload <= 0 {
		cfg.MaxPayload = DefaultMaxPayload
	}
	if cfg.PairWindow <= 0 {
		cfg.PairWindow = DefaultPairWindow
	}
	if cfg.PendingBytes <= 0 {
		cfg.PendingBytes = DefaultPendingBytes
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	rd := &Reader{
		cfg: cfg, log: log, sc: newScanner(r, cfg.MaxPayload),
		waiting: make(map[string][]*entry),
		early:   make(map[string][]*pending),
	}
	rd.stats.malformed = make(map[string]*atomic.Uint64, len(malformedReasons))
	for _, reason := range malformedReasons {
		rd.stats.malformed[reason] = new(atomic.Uint64)
	}
	return rd
}

// Next returns the next exchange, in the order of the requests in the
// capture. At the end of the input it returns io.EOF, and so on every later
// call. If reading the input failed, it first returns every exchange still
// held (those without a response with CAPTURE_ENDED), then the read error,
// wrapped, on every later call; a gzip stream cut short gives
// io.ErrUnexpectedEOF. The exchange is the caller's.
func (r *Reader) Next() (*schema.Exchange, error) {
	for {
		if e := r.ready(); e != nil {
			return r.exchange(e), nil
		}
		if r.done {
			r.expireEarly(true)
			if r.err != nil {
				return nil, r.err
			}
			return nil, io.EOF
		}
		r.expireEarly(false)
		r.read()
	}
}

// Stats returns a snapshot of the counters.
func (r *Reader) Stats() Stats {
	s := Stats{
		Payloads:         r.stats.payloads.Load(),
		Exchanges:        r.stats.exchanges.Load(),
		ResponsesMissing: r.stats.missing.Load(),
		OrphanResponses:  r.stats.orphans.Load(),
		ReplayedSkipped:  r.stats.replayed.Load(),
		Cut:              r.stats.cut.Load(),
		TrailingBytes:    r.stats.trailing.Load(),
		Redacted:         r.stats.redacted.Load(),
	}
	for reason, n := range r.stats.malformed {
		if v := n.Load(); v > 0 {
			if s.Malformed == nil {
				s.Malformed = make(map[string]uint64)
			}
			s.Malformed[reason] = v
		}
	}
	return s
}

// ready removes and returns the oldest request if it may leave: it has its
// response, or will not get one.
func (r *Reader) ready() *entry {
	if len(r.queue) == 0 {
		return nil
	}
	e := r.queue[0]
	if e.resp == nil && e.missing == nil {
		switch {
		case r.done:
			detail := "the capture holds no response for this request"
			if r.err != nil {
				detail = "reading the capture failed before a response"
			}
			e.missing = &schema.ResponseMissing{Reason: schema.MissingReason_MISSING_REASON_CAPTURE_ENDED, Detail: detail}
		case r.seq-e.seq >= uint64(r.cfg.PairWindow):
			e.missing = &schema.ResponseMissing{
				Reason: schema.MissingReason_MISSING_REASON_TIMEOUT,
				Detail: fmt.Sprintf("no response within %d payloads of the capture", r.cfg.PairWindow),
			}
		case r.held > r.cfg.PendingBytes:
			e.missing = &schema.ResponseMissing{
				Reason: schema.MissingReason_MISSING_REASON_TIMEOUT,
				Detail: fmt.Sprintf("no response before the import held %d bytes of waiting exchanges", r.cfg.PendingBytes),
			}
		default:
			return nil
		}
		r.unwait(e)
	}
	r.queue[0] = nil
	r.queue = r.queue[1:]
	r.held -= e.heldSize
	return e
}

// unwait removes e from the requests waiting for a response.
func (r *Reader) unwait(e *entry) {
	list := r.waiting[e.gorID]
	for i, w := range list {
		if w == e {
			list = append(list[:i:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(r.waiting, e.gorID)
	} else {
		r.waiting[e.gorID] = list
	}
}

// expireEarly counts as orphans the responses whose request did not come
// within the window (all of them when all is set), and the oldest ones
// while the held bytes are over the limit and no request is held.
func (r *Reader) expireEarly(all bool) {
	for len(r.earlyQ) > 0 {
		x := r.earlyQ[0]
		if !x.taken {
			over := all || r.seq-x.seq >= uint64(r.cfg.PairWindow) || (r.held > r.cfg.PendingBytes && len(r.queue) == 0)
			if !over {
				return
			}
			// x is the oldest response not taken, so the first of its ID.
			id := x.meta.id
			if list := r.early[id]; len(list) > 1 {
				list[0] = nil
				r.early[id] = list[1:]
			} else {
				delete(r.early, id)
			}
			r.held -= x.size
			r.stats.orphans.Add(1)
			r.log.Debug("skipping a GoReplay response without request", "payload", x.seq, "gor_id", id)
		}
		r.earlyQ[0] = nil
		r.earlyQ = r.earlyQ[1:]
	}
}

// read reads and files one payload.
func (r *Reader) read() {
	p, err := r.sc.next()
	if err != nil {
		r.done = true
		if err != io.EOF {
			r.err = fmt.Errorf("reading GoReplay capture: %w", err)
		}
		if r.sawRequest && !r.sawResponse {
			r.log.Info("the GoReplay capture holds no responses (type 2 payloads): its exchanges are imported without one; " +
				"gor records them with --input-raw-track-response")
		}
		return
	}
	r.seq++
	r.stats.payloads.Add(1)
	m, msg, reason := splitPayload(p.raw)
	if p.tooLarge {
		r.malformed(MalformedTooLarge, m, fmt.Errorf("payload of %d bytes, more than the limit of %d", p.size, r.cfg.MaxPayload))
		if m.typ == typeResponse {
			r.responseFailed(m.id, "the response payload was larger than the import's limit")
		}
		return
	}
	if reason != "" {
		line, _, _ := bytes.Cut(trimLeadingLineBreaks(p.raw), []byte("\n"))
		r.malformed(reason, m, fmt.Errorf("payload header line %q", clip(string(line[:min(len(line), 100)]), 80)))
		return
	}
	switch m.typ {
	case typeReplayed:
		r.stats.replayed.Add(1)
	case typeRequest:
		r.request(m, msg)
	case typeResponse:
		r.response(m, msg)
	}
}

func (r *Reader) request(m meta, msg []byte) {
	r.sawRequest = true
	req, pr, err := parseRequest(msg, r.cfg.BodyCap)
	if err != nil {
		reason := MalformedRequest
		if errors.Is(err, errCutHead) {
			reason = MalformedTruncated
		}
		r.malformed(reason, m, err)
		return
	}
	r.trailing(pr, m)
	e := &entry{
		seq: r.seq, gorID: m.id, id: exchangeID(m.id, m.ts, msg),
		reqMeta: m, req: req, reqCut: pr.cut,
		heldSize: requestSize(req),
	}
	r.queue = append(r.queue, e)
	r.held += e.heldSize
	if list := r.early[m.id]; len(list) > 0 {
		x := list[0]
		if len(list) > 1 {
			list[0] = nil
			r.early[m.id] = list[1:]
		} else {
			delete(r.early, m.id)
		}
		x.taken = true
		e.heldSize += x.size // already in r.held
		r.pair(e, x)
		return
	}
	r.waiting[m.id] = append(r.waiting[m.id], e)
}

func (r *Reader) response(m meta, msg []byte) {
	r.sawResponse = true
	resp, pr, err := parseResponse(msg, r.cfg.BodyCap)
	if err != nil {
		reason := MalformedResponse
		if errors.Is(err, errCutHead) {
			reason = MalformedTruncated
		}
		r.malformed(reason, m, err)
		r.responseFailed(m.id, "the response payload is not valid HTTP: "+err.Error())
		return
	}
	r.trailing(pr, m)
	x := &pending{seq: r.seq, meta: m, resp: resp, cut: pr.cut, size: responseSize(resp)}
	r.held += x.size
	if list := r.waiting[m.id]; len(list) > 0 {
		e := list[0]
		if len(list) > 1 {
			list[0] = nil
			r.waiting[m.id] = list[1:]
		} else {
			delete(r.waiting, m.id)
		}
		x.taken = true
		e.heldSize += x.size
		r.pair(e, x)
		return
	}
	r.early[m.id] = append(r.early[m.id], x)
	r.earlyQ = append(r.earlyQ, x)
}

// responseFailed gives the oldest request waiting under id a missing
// response (PARSE_ERROR): its response payload came but was unusable.
func (r *Reader) responseFailed(id, detail string) {
	list := r.waiting[id]
	if len(list) == 0 {
		return
	}
	e := list[0]
	r.unwait(e)
	e.missing = &schema.ResponseMissing{Reason: schema.MissingReason_MISSING_REASON_PARSE_ERROR, Detail: detail}
}

// pair gives e its response. A response to HEAD, or a successful one to
// CONNECT, has no body whatever its headers say.
func (r *Reader) pair(e *entry, x *pending) {
	e.resp = x
	method := e.req.GetMethod()
	if method == "HEAD" || (method == "CONNECT" && x.resp.Status/100 == 2) {
		x.resp.Body, x.resp.BodySize, x.resp.BodyTruncated, x.cut = nil, 0, false, false
	}
}

func (r *Reader) trailing(pr parsed, m meta) {
	if pr.trailing {
		r.stats.trailing.Add(1)
		r.log.Debug("ignoring bytes after the HTTP message of a GoReplay payload", "payload", r.seq, "gor_id", m.id)
	}
}

func (r *Reader) malformed(reason string, m meta, err error) {
	r.stats.malformed[reason].Add(1)
	r.log.Warn("skipping malformed GoReplay payload", "payload", r.seq, "gor_id", m.id, "reason", reason, "err", err)
}

// exchange builds the exchange of e.
func (r *Reader) exchange(e *entry) *schema.Exchange {
	ex := &schema.Exchange{
		Id:         e.id,
		SessionKey: sessionKey(e.gorID),
		Times:      times(e),
		Request:    e.req,
		Recorder:   r.cfg.Recorder,
	}
	if e.reqCut {
		r.stats.cut.Add(1)
	}
	if e.resp != nil {
		ex.Original = &schema.Exchange_Response{Response: e.resp.resp}
		if e.resp.cut {
			r.stats.cut.Add(1)
		}
	} else {
		ex.Original = &schema.Exchange_ResponseMissing{ResponseMissing: e.missing}
		r.stats.missing.Add(1)
	}
	if r.cfg.Redact != nil {
		r.stats.redacted.Add(uint64(r.cfg.Redact(ex)))
	}
	if r.cfg.SessionKey != nil {
		if key, ok := r.cfg.SessionKey(ex.Request); ok {
			ex.SessionKey = key
		}
	}
	r.stats.exchanges.Add(1)
	return ex
}

// roundTripBelow: a response TIMESTAMP without LATENCY below this is the
// round trip (the oldest GoReplay files), not a time (2^50 ns is in 1970).
const roundTripBelow = 1 << 50

// times maps the payload timestamps to capture times (see the package
// documentation); what is not known stays 0.
func times(e *entry) *schema.CaptureTimes {
	t := &schema.CaptureTimes{}
	rq := e.reqMeta
	if rq.ts > 0 {
		t.RequestFirstByteUnixNano = rq.ts
		if rq.latency >= 0 {
			t.RequestLastByteUnixNano = rq.ts + rq.latency
		}
	}
	if e.resp == nil {
		return t
	}
	rs := e.resp.meta
	switch {
	case rs.latency < 0 && rs.ts > 0 && rs.ts < roundTripBelow:
		if rq.ts > 0 {
			t.ResponseLastByteUnixNano = rq.ts + rs.ts
		}
	case rs.ts == rq.ts:
		if rq.ts > 0 && rs.latency >= 0 {
			t.ResponseLastByteUnixNano = rq.ts + rs.latency
		}
	case rs.ts > 0:
		t.ResponseFirstByteUnixNano = rs.ts
		if rs.latency >= 0 {
			t.ResponseLastByteUnixNano = rs.ts + rs.latency
		}
	}
	return t
}

// requestSize and responseSize estimate the memory a message holds.
func requestSize(req *schema.Request) int64 {
	return 256 + int64(len(req.Body)+len(req.Target)) + headersSize(req.Headers)
}

func responseSize(resp *schema.Response) int64 {
	return 256 + int64(len(resp.Body)+len(resp.Reason)) + headersSize(resp.Headers)
}

func headersSize(hs []*schema.Header) int64 {
	n := int64(0)
	for _, h := range hs {
		n += 64 + int64(len(h.Name)+len(h.Value))
	}
	return n
}
