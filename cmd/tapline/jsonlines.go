package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/tapline/tapline/analyzer/diff"
	"github.com/tapline/tapline/internal/kafkaio"
	"github.com/tapline/tapline/internal/stream"
	"github.com/tapline/tapline/schema"
)

// jsonLines is an output for people: each exchange or replay result as one
// JSON line on a writer (stdout for `record --to -` and `replay --to -`).
// Like the Kafka producer it offers a bounded queue (Enqueue, for a live
// capture that must never stall on a slow terminal) and a synchronous
// Publish (for the replayer, which commits once Publish returns).
type jsonLines struct {
	queue chan stream.Record
	mu    sync.Mutex // guards w
	w     *bufio.Writer
	done  chan struct{}
	once  sync.Once

	published, failed, dropped atomic.Uint64
}

func newJSONLines(w io.Writer, queueSize int) *jsonLines {
	j := &jsonLines{queue: make(chan stream.Record, queueSize), w: bufio.NewWriter(w), done: make(chan struct{})}
	go j.run()
	return j
}

func (j *jsonLines) Enqueue(rec stream.Record) bool {
	select {
	case j.queue <- rec:
		return true
	default:
		j.dropped.Add(1)
		return false
	}
}

func (j *jsonLines) EnqueueWait(ctx context.Context, rec stream.Record) error {
	select {
	case j.queue <- rec:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (j *jsonLines) run() {
	defer close(j.done)
	for rec := range j.queue {
		j.mu.Lock()
		err := j.write(rec)
		if len(j.queue) == 0 && err == nil {
			err = j.w.Flush()
		}
		j.mu.Unlock()
		if err != nil {
			j.failed.Add(1)
			slog.Error("writing a record as JSON", "err", err)
			continue
		}
		j.published.Add(1)
	}
	j.mu.Lock()
	j.w.Flush()
	j.mu.Unlock()
}

// Publish writes recs and flushes them before it returns.
func (j *jsonLines) Publish(_ context.Context, recs ...stream.Record) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, rec := range recs {
		if err := j.write(rec); err != nil {
			j.failed.Add(uint64(len(recs)))
			return err
		}
	}
	if err := j.w.Flush(); err != nil {
		j.failed.Add(uint64(len(recs)))
		return fmt.Errorf("writing JSON lines: %w", err)
	}
	j.published.Add(uint64(len(recs)))
	return nil
}

// write writes rec as one JSON line, an exchange or a replay result by
// its schema header; j.mu must be held.
func (j *jsonLines) write(rec stream.Record) error {
	var view any
	if schemaName(rec.Headers) == schema.SchemaReplayResult {
		res, err := schema.DecodeReplayResult(rec.Value, rec.Headers)
		if err != nil {
			return err
		}
		view = resultView(res)
	} else {
		ex, err := schema.DecodeExchange(rec.Value, rec.Headers)
		if err != nil {
			return err
		}
		view = exchangeView(ex)
	}
	line, err := json.Marshal(view)
	if err != nil {
		return err
	}
	_, err = j.w.Write(append(line, '\n'))
	return err
}

func schemaName(hs []schema.RecordHeader) string {
	for _, h := range hs {
		if h.Key == schema.HeaderSchema {
			return string(h.Value)
		}
	}
	return ""
}

// Close writes what is queued and flushes.
func (j *jsonLines) Close(ctx context.Context) error {
	j.once.Do(func() { close(j.queue) })
	select {
	case <-j.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("writing queued exchanges: %w", ctx.Err())
	}
}

func (j *jsonLines) Stats() kafkaio.ProducerStats {
	return kafkaio.ProducerStats{Published: j.published.Load(), Failed: j.failed.Load(), Dropped: j.dropped.Load(), Queued: len(j.queue)}
}

// exchangeView is an Exchange as people read it: bodies as text when they
// are UTF-8, base64 otherwise; headers as [name, value] pairs in order.
func exchangeView(ex *schema.Exchange) map[string]any {
	v := map[string]any{
		"id": ex.GetId(), "session_key": ex.GetSessionKey(), "recorder": ex.GetRecorder(),
		"client": fmt.Sprintf("%s:%d", ex.GetClient().GetIp(), ex.GetClient().GetPort()),
		"server": fmt.Sprintf("%s:%d", ex.GetServer().GetIp(), ex.GetServer().GetPort()),
		"times":  ex.GetTimes(),
	}
	req := ex.GetRequest()
	r := map[string]any{"method": req.GetMethod(), "target": req.GetTarget(), "proto": req.GetProto(), "host": req.GetHost(),
		"headers": headerPairs(req.GetHeaders()), "body_size": req.GetBodySize(), "body_truncated": req.GetBodyTruncated()}
	addBody(r, req.GetHeaders(), req.GetBody(), req.GetBodyTruncated())
	v["request"] = r
	if resp := ex.GetResponse(); resp != nil {
		o := map[string]any{"status": resp.GetStatus(), "reason": resp.GetReason(), "proto": resp.GetProto(),
			"headers": headerPairs(resp.GetHeaders()), "body_size": resp.GetBodySize(), "body_truncated": resp.GetBodyTruncated()}
		addBody(o, resp.GetHeaders(), resp.GetBody(), resp.GetBodyTruncated())
		v["response"] = o
	} else {
		v["response_missing"] = ex.GetResponseMissing().GetReason().String()
	}
	return v
}

// resultView is a ReplayResult as people read it: the exchange, then one
// entry per target with its response or error.
func resultView(res *schema.ReplayResult) map[string]any {
	var outcomes []map[string]any
	for _, o := range res.GetOutcomes() {
		m := map[string]any{"target": o.GetTarget(), "url": o.GetUrl(),
			"sent":       time.Unix(0, o.GetSentUnixNano()).UTC().Format(time.RFC3339Nano),
			"latency_ms": float64(o.GetLatencyNanos()) / 1e6}
		if resp := o.GetResponse(); resp != nil {
			r := map[string]any{"status": resp.GetStatus(), "headers": headerPairs(resp.GetHeaders()),
				"body_size": resp.GetBodySize(), "body_truncated": resp.GetBodyTruncated()}
			addBody(r, resp.GetHeaders(), resp.GetBody(), resp.GetBodyTruncated())
			m["response"] = r
		} else {
			m["error"] = o.GetError()
		}
		outcomes = append(outcomes, m)
	}
	return map[string]any{"replayer": res.GetReplayer(), "exchange": exchangeView(res.GetExchange()), "outcomes": outcomes}
}

func headerPairs(hs []*schema.Header) [][2]string {
	out := make([][2]string, len(hs))
	for i, h := range hs {
		out[i] = [2]string{h.GetName(), h.GetValue()}
	}
	return out
}

// addBody puts body in m for people: decoded (Content-Encoding undone,
// charset converted; "body_decoded" says so) when that gives UTF-8 text,
// else as recorded when that is text, else base64.
func addBody(m map[string]any, headers []*schema.Header, body []byte, truncated bool) {
	if len(body) == 0 {
		return
	}
	if dec, _, err := diff.DecodeBody(headers, body, truncated, 1<<20); err == nil && utf8.Valid(dec) {
		m["body"] = string(dec)
		if !bytes.Equal(dec, body) {
			m["body_decoded"] = true
		}
		return
	}
	if utf8.Valid(body) {
		m["body"] = string(body)
		return
	}
	m["body_base64"] = base64.StdEncoding.EncodeToString(body)
}
