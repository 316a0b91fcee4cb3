// Package recorder is tapline's capture stage: packets in, one Exchange
// (schema v1) per HTTP request/response pair out.
//
// Input: pcap or pcapng files, or a live capture (a PacketSource such as
// recorder/live, which holds the libpcap cgo code), holding
// Ethernet, Linux cooked (SLL), loopback/null or raw IP frames with IPv4 or
// IPv6 and TCP. TCP is reassembled with gopacket's reassembly package, both
// directions are parsed as HTTP/1.x, and responses are paired with requests
// in order per connection.
//
// Output: encoded Exchange records handed to a Sink (kafkaio.Producer in
// production). Nothing is dropped silently: every packet, connection and
// message the recorder could not turn into an exchange is counted by reason
// in Stats.
package recorder

import (
	"context"
	"errors"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/gopacket/reassembly"

	"github.com/tapline/tapline/internal/stream"
	"github.com/tapline/tapline/schema"
)

// Sink receives encoded exchanges. Enqueue must not block: it returns
// false when the sink is full, and the recorder counts the exchange as
// dropped (a live capture must never stall). EnqueueWait blocks until there
// is room or ctx is done; the recorder uses it for files, where waiting
// costs nothing. kafkaio.Producer implements Sink.
//
// The records are read-only: the recorder never changes one it handed
// over, and records share memory (a connection's records share their key,
// all share their headers, values are cut from shared buffers), so a sink
// must not change them either.
type Sink interface {
	Enqueue(rec stream.Record) bool
	EnqueueWait(ctx context.Context, rec stream.Record) error
}

// Config configures a Recorder. Zero values are the documented defaults.
type Config struct {
	// PcapFiles are read in order, as one capture ("-" is stdin). Exactly
	// one of PcapFiles and Live is required.
	PcapFiles []string
	// Live is a live capture. Exchanges are then offered to the sink
	// without waiting (Sink.Enqueue): when it is full they are dropped and
	// counted, so capture never stalls.
	Live PacketSource
	// Sink receives the exchanges. Required.
	Sink Sink
	// Name identifies this recorder in every exchange. Default: the host
	// name.
	Name string
	// BodyCap is how many bytes of each body are kept; longer bodies are
	// cut and flagged truncated, with their full size recorded. Default
	// 1 MiB.
	BodyCap int
	// IdleTimeout closes a connection that saw no packet for this long
	// (capture time). Its unanswered requests are emitted with the
	// response missing. Default 2m.
	IdleTimeout time.Duration
	// Filter keeps only the requests it matches (methods, hosts, paths).
	// Default nil: all.
	Filter *Filter
	// SessionKey derives the session key (the Kafka key) from the request,
	// e.g. from a header or cookie; see ParseSessionKey. Default nil: the
	// client connection ("ip:port->ip:port"), also used when a request does
	// not carry the key.
	SessionKey SessionKeyFunc
	// Sampler keeps a share of the exchanges, at random or consistently by
	// session key; see NewSampler. Default nil: all.
	Sampler *Sampler
	// Redactor replaces secrets with keyed pseudonyms before an exchange
	// leaves the recorder. Default nil: nothing is redacted.
	Redactor *Redactor
	// ResponseTimeout is how long (capture time) a request waits for its
	// response; then it is emitted with the response missing (TIMEOUT),
	// and its response, should it still come, is counted as late and
	// skipped. Default 30s.
	ResponseTimeout time.Duration
	// DropUnanswered drops (and counts) requests that end without a
	// response instead of emitting them with the response missing.
	DropUnanswered bool
	// OutOfOrderWait is how long reassembly holds bytes that arrived after
	// a hole, waiting for the hole to be filled by a retransmission; then
	// the hole is skipped and counted as a gap. Default 2s.
	OutOfOrderWait time.Duration
	// MaxPendingPerConn bounds the requests waiting for a response on one
	// connection; the oldest beyond it is dropped and counted. Default 100.
	MaxPendingPerConn int
	// MaxBufferedPages bounds the out-of-order data held by TCP reassembly
	// in total and per connection (pages of ~1900 bytes). Defaults 50000
	// (about 95 MB) and 4000.
	MaxBufferedPages, MaxBufferedPagesPerConn int
	// FlushTimeout bounds how long Run waits for the sink to take the
	// exchanges still open when the capture ends. Default 10s.
	FlushTimeout time.Duration
	// ProgressInterval is how often progress is logged while reading
	// files. Default 5s.
	ProgressInterval time.Duration
	// StatsInterval is how often a live capture logs a summary line.
	// Default 30s.
	StatsInterval time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Recorder turns captured packets into exchanges. Create it with New.
type Recorder struct {
	cfg   Config
	log   *slog.Logger
	stats counters

	scratch   emitScratch            // messages emit fills and encodes, reused
	messages  messagePool            // parsed messages, recycled once emitted
	encoder   schema.ExchangeEncoder // cuts the record values from shared slabs
	contexts  contextChunk           // the packets' assembler contexts
	assembler *reassembly.Assembler
	lastTick  time.Time          // capture time of the last tick
	conns     map[*conn]struct{} // open connections, for response timeouts
	ctx       context.Context    // Run's context, for EnqueueWait
	ending    bool               // the capture is over: pending requests are CAPTURE_ENDED
	flushing  bool               // the recorder is flushing the assembler: holes skipped now timed out
}

// New validates cfg and returns a Recorder.
func New(cfg Config) (*Recorder, error) {
	if (len(cfg.PcapFiles) == 0) == (cfg.Live == nil) {
		return nil, errors.New("recorder: give either pcap files or a live capture")
	}
	if cfg.Sink == nil {
		return nil, errors.New("recorder: no sink")
	}
	if cfg.Name == "" {
		cfg.Name, _ = os.Hostname()
	}
	if cfg.BodyCap <= 0 {
		cfg.BodyCap = 1 << 20
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 2 * time.Minute
	}
	if cfg.ResponseTimeout <= 0 {
		cfg.ResponseTimeout = 30 * time.Second
	}
	if cfg.OutOfOrderWait <= 0 {
		cfg.OutOfOrderWait = 2 * time.Second
	}
	if cfg.MaxPendingPerConn <= 0 {
		cfg.MaxPendingPerConn = 100
	}
	if cfg.MaxBufferedPages <= 0 {
		cfg.MaxBufferedPages = 50000
	}
	if cfg.MaxBufferedPagesPerConn <= 0 {
		cfg.MaxBufferedPagesPerConn = 4000
	}
	if cfg.FlushTimeout <= 0 {
		cfg.FlushTimeout = 10 * time.Second
	}
	if cfg.ProgressInterval <= 0 {
		cfg.ProgressInterval = 5 * time.Second
	}
	if cfg.StatsInterval <= 0 {
		cfg.StatsInterval = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	r := &Recorder{cfg: cfg, log: cfg.Logger, conns: map[*conn]struct{}{}}
	pool := reassembly.NewStreamPool(&streamFactory{r: r})
	r.assembler = reassembly.NewAssembler(pool)
	r.assembler.MaxBufferedPagesTotal = cfg.MaxBufferedPages
	r.assembler.MaxBufferedPagesPerConnection = cfg.MaxBufferedPagesPerConn
	return r, nil
}

// Run reads the inputs to their end, emits every exchange, and returns. On
// cancel it stops reading, flushes the connections it has (their pending
// requests are emitted as CAPTURE_ENDED) and returns nil. Run may be called
// once.
func (r *Recorder) Run(ctx context.Context) error {
	r.ctx = ctx
	defer r.logSummary("recorder summary")
	var err error
	if r.cfg.Live != nil {
		err = r.readLive(ctx, r.cfg.Live)
	} else {
		var files *fileSet
		if files, err = openFiles(r.cfg.PcapFiles); err != nil {
			return err
		}
		defer files.Close()
		err = r.readFiles(ctx, files)
	}
	// Emit what the open connections still hold, even after a cancel, but
	// do not wait for a stuck sink forever.
	flushCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.FlushTimeout)
	defer cancel()
	r.ctx, r.ending = flushCtx, true
	r.flushing = true
	r.assembler.FlushAll()
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

func (r *Recorder) logSummary(msg string) {
	s := r.Stats()
	r.log.Info(msg, "packets", s.Packets, "bytes", s.Bytes, "kernel_drops", s.KernelDrops, "connections", s.Connections,
		"exchanges", s.Exchanges, "responses_missing", s.ResponsesMissing,
		"filtered", s.Filtered, "sampled_out", s.SampledOut, "redacted_values", s.Redacted, "bodies_cut", s.BodiesCut, "drops", s.Drops)
}

// emit builds, encodes and hands one exchange to the sink. It takes req
// and resp over: they are recycled when it returns.
func (r *Recorder) emit(c *conn, req, resp *message, missing schema.MissingReason) {
	defer r.messages.put(req)
	defer r.messages.put(resp)
	if resp == nil && r.cfg.DropUnanswered {
		r.drop(dropUnanswered)
		return
	}
	// The messages are filled into reused storage: they are encoded to
	// bytes before emit returns, and nothing keeps a pointer to them.
	s := &r.scratch
	s.req = schema.Request{
		Method: req.method, Target: req.target, Proto: req.proto, Host: requestHost(req),
		Headers: req.headers, Body: req.body, BodyTruncated: req.truncated, BodySize: req.bodySize,
	}
	request := &s.req
	if !r.cfg.Filter.Keep(request) {
		r.stats.filtered.Add(1)
		return
	}
	id, err := schema.NewID()
	if err != nil {
		r.drop(dropEncode)
		r.log.Error("emitting exchange", "conn", c.sessionKey(), "err", err)
		return
	}
	s.times = schema.CaptureTimes{
		RequestFirstByteUnixNano: unixNano(req.first),
		RequestLastByteUnixNano:  unixNano(req.last),
	}
	s.ex = schema.Exchange{
		Id:         id,
		SessionKey: c.sessionKey(),
		Client:     c.client(),
		Server:     c.server(),
		Times:      &s.times,
		Request:    request,
		Recorder:   r.cfg.Name,
	}
	ex := &s.ex
	if resp != nil {
		s.times.ResponseFirstByteUnixNano = unixNano(resp.first)
		s.times.ResponseLastByteUnixNano = unixNano(resp.last)
		s.resp = schema.Response{
			Status: int32(resp.status), Proto: resp.proto, Reason: resp.reason,
			Headers: resp.headers, Body: resp.body, BodyTruncated: resp.truncated, BodySize: resp.bodySize,
		}
		s.respOf = schema.Exchange_Response{Response: &s.resp}
		ex.Original = &s.respOf
	} else {
		s.missing = schema.ResponseMissing{Reason: missing}
		s.missingOf = schema.Exchange_ResponseMissing{ResponseMissing: &s.missing}
		ex.Original = &s.missingOf
	}
	// Nothing leaves the host unredacted. The session key is taken after
	// redaction: a redacted cookie keys by its pseudonym.
	r.stats.redacted.Add(uint64(r.cfg.Redactor.Apply(ex)))
	if r.cfg.SessionKey != nil {
		if key, ok := r.cfg.SessionKey(ex.Request); ok {
			ex.SessionKey = key
		}
	}
	if !r.cfg.Sampler.Keep(ex.SessionKey) {
		r.stats.sampledOut.Add(1)
		return
	}
	// The values share slabs: the sink releases them in about the order
	// it got them, so that costs a slab or two of memory (see
	// schema.ExchangeEncoder).
	value, headers, err := r.encoder.Encode(ex)
	key := c.recordKey(ex.SessionKey)
	if limit := stream.ValueLimit(r.cfg.Sink, key, headers); err == nil && limit > 0 && len(value) > limit {
		// Kafka refuses a record over its limit: cut the longest bodies
		// (marked truncated, as the body cap does) rather than lose it.
		size := len(value)
		n := schema.FitExchange(ex, limit)
		r.stats.bodiesCut.Add(uint64(n))
		r.log.Debug("exchange cut to fit the output", "conn", c.sessionKey(), "bytes", size, "limit", limit, "bodies_cut", n)
		value, headers, err = r.encoder.Encode(ex)
	}
	if err != nil {
		r.drop(dropEncode)
		r.log.Error("encoding exchange", "conn", c.sessionKey(), "err", err)
		return
	}
	rec := stream.Record{Key: key, Value: value, Headers: headers, Time: req.first}
	switch {
	case r.cfg.Live != nil && !r.ending:
		// Never stall a live capture: drop and count instead.
		if !r.cfg.Sink.Enqueue(rec) {
			r.drop(dropQueueFull)
			return
		}
	default:
		// Files (and the final flush) wait for the sink rather than drop.
		if err := r.cfg.Sink.EnqueueWait(r.ctx, rec); err != nil {
			r.drop(dropSinkClosed)
			return
		}
	}
	r.stats.exchanges.Add(1)
	if resp == nil {
		r.stats.responsesMissing.Add(1)
	}
}

// emitScratch is the storage emit fills for each exchange.
type emitScratch struct {
	ex        schema.Exchange
	times     schema.CaptureTimes
	req       schema.Request
	resp      schema.Response
	respOf    schema.Exchange_Response
	missing   schema.ResponseMissing
	missingOf schema.Exchange_ResponseMissing
}

// requestHost is the Host header, or the host of an absolute-form target.
func requestHost(m *message) string {
	for _, h := range m.headers {
		if strings.EqualFold(h.Name, "Host") {
			return h.Value
		}
	}
	if u, err := url.Parse(m.target); err == nil && u.Host != "" {
		return u.Host
	}
	return ""
}

// dropReason names why something captured did not become an exchange.
type dropReason int

const (
	dropDecode                 dropReason = iota // a packet that is not Ethernet/IP/TCP we can decode
	dropMidStream                                // a connection joined mid-message; bytes skipped up to the next start line
	dropGap                                      // bytes missing in a TCP stream (the hole outlived OutOfOrderWait); the message in progress is lost
	dropMemoryCap                                // out-of-order data over MaxBufferedPages(PerConn): reassembly skipped a hole early; the message in progress is lost
	dropParseError                               // malformed HTTP; skipped to the next start line
	dropIncomplete                               // a message cut off by the end of its connection
	dropResponseWithoutRequest                   // a response whose request was not captured
	dropPendingOverflow                          // more than MaxPendingPerConn requests waiting on a connection
	dropUpgrade                                  // a connection that left HTTP (101 Switching Protocols, CONNECT); the rest is skipped
	dropEncode                                   // an exchange that could not be encoded
	dropLateResponse                             // a response that came after its request timed out
	dropUnanswered                               // a request without a response, dropped because DropUnanswered is set
	dropQueueFull                                // live capture: the sink's queue was full
	dropSinkClosed                               // the run ended (or the flush timed out) while waiting for the sink
	dropCorruptFile                              // a capture file truncated or corrupt: the rest of it is skipped (counts files)
	dropNotHTTP                                  // a connection seen from its start whose first bytes are not HTTP/1.x (counts connections)
	numDropReasons
)

var dropNames = [numDropReasons]string{
	"decode", "mid_stream", "gap", "memory_cap", "parse_error", "incomplete",
	"response_without_request", "pending_overflow", "upgrade", "encode", "late_response", "unanswered", "queue_full", "sink_closed",
	"corrupt_file", "not_http",
}

func (d dropReason) String() string { return dropNames[d] }

type counters struct {
	packets, bytes, kernelDrops, connections, exchanges, responsesMissing atomic.Uint64
	filtered, sampledOut, redacted, bodiesCut                             atomic.Uint64
	fileRead, fileTotal                                                   atomic.Int64
	drops                                                                 [numDropReasons]atomic.Uint64
}

func (r *Recorder) drop(d dropReason) { r.stats.drops[d].Add(1) }

// Stats is a snapshot of what the recorder has seen and done.
type Stats struct {
	Packets, Bytes   uint64 // packets and bytes read
	KernelDrops      uint64 // live capture: packets dropped by the kernel or interface before we saw them
	Connections      uint64 // TCP connections that carried payload
	Exchanges        uint64 // exchanges handed to the sink
	ResponsesMissing uint64 // of those, emitted without a response
	Filtered         uint64 // exchanges left out by the Filter (not a loss: asked for)
	SampledOut       uint64 // exchanges left out by the Sampler (not a loss: asked for)
	Redacted         uint64 // values replaced by pseudonyms
	// BodiesCut counts bodies cut short (and marked truncated) so that an
	// exchange fits the sink's record limit (stream.SizeLimited): with
	// 1 MiB bodies, a request and its response can be over Kafka's 1 MiB.
	BodiesCut uint64
	// Drops counts, by reason, what did not become an exchange; see the
	// dropReason constants for what each reason means. Upgrade counts
	// connections, not exchanges: the upgrading exchange itself is emitted.
	Drops map[string]uint64
	// FileBytesRead and FileBytesTotal give the progress through files.
	FileBytesRead, FileBytesTotal int64
}

// Stats returns a snapshot of the counters. It is safe to call while Run
// is running.
func (r *Recorder) Stats() Stats {
	s := Stats{
		Packets:          r.stats.packets.Load(),
		Bytes:            r.stats.bytes.Load(),
		KernelDrops:      r.stats.kernelDrops.Load(),
		Connections:      r.stats.connections.Load(),
		Exchanges:        r.stats.exchanges.Load(),
		ResponsesMissing: r.stats.responsesMissing.Load(),
		Filtered:         r.stats.filtered.Load(),
		SampledOut:       r.stats.sampledOut.Load(),
		Redacted:         r.stats.redacted.Load(),
		BodiesCut:        r.stats.bodiesCut.Load(),
		Drops:            make(map[string]uint64, numDropReasons),
		FileBytesRead:    r.stats.fileRead.Load(),
		FileBytesTotal:   r.stats.fileTotal.Load(),
	}
	for i := range r.stats.drops {
		s.Drops[dropNames[i]] = r.stats.drops[i].Load()
	}
	return s
}

// The garbage-collector settings `tapline record` runs with unless the
// GOGC / GOMEMLIMIT environment variables say otherwise. Capture allocates
// short-lived objects at a high rate, and every collection also rescans
// gopacket's large decoder tables (about 7 MiB); collecting less often buys
// throughput (see BENCHMARKS.md), and the soft memory limit keeps the
// recorder's footprint bounded on the production host.
const (
	DefaultGCPercent   = 400
	DefaultMemoryLimit = 192 << 20 // bytes
)
