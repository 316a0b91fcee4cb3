package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/tapline/tapline/internal/kafkaio"
	"github.com/tapline/tapline/internal/stream"
	"github.com/tapline/tapline/schema"
)

// jsonLines is an output for people: each exchange as one JSON line on a
// writer (stdout for `record --to -`). Like the Kafka producer it sits
// behind a bounded queue, so a slow terminal never stalls a live capture.
type jsonLines struct {
	queue chan stream.Record
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
		ex, err := schema.DecodeExchange(rec.Value, rec.Headers)
		if err == nil {
			var line []byte
			if line, err = json.Marshal(exchangeView(ex)); err == nil {
				line = append(line, '\n')
				_, err = j.w.Write(line)
			}
		}
		if len(j.queue) == 0 && err == nil {
			err = j.w.Flush()
		}
		if err != nil {
			j.failed.Add(1)
			slog.Error("writing exchange as JSON", "err", err)
			continue
		}
		j.published.Add(1)
	}
	j.w.Flush()
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
	addBody(r, req.GetBody())
	v["request"] = r
	if resp := ex.GetResponse(); resp != nil {
		o := map[string]any{"status": resp.GetStatus(), "reason": resp.GetReason(), "proto": resp.GetProto(),
			"headers": headerPairs(resp.GetHeaders()), "body_size": resp.GetBodySize(), "body_truncated": resp.GetBodyTruncated()}
		addBody(o, resp.GetBody())
		v["response"] = o
	} else {
		v["response_missing"] = ex.GetResponseMissing().GetReason().String()
	}
	return v
}

func headerPairs(hs []*schema.Header) [][2]string {
	out := make([][2]string, len(hs))
	for i, h := range hs {
		out[i] = [2]string{h.GetName(), h.GetValue()}
	}
	return out
}

func addBody(m map[string]any, body []byte) {
	switch {
	case len(body) == 0:
	case utf8.Valid(body):
		m["body"] = string(body)
	default:
		m["body_base64"] = base64.StdEncoding.EncodeToString(body)
	}
}
