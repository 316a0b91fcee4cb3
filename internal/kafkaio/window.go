package kafkaio

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tapline/tapline/internal/stream"
)

// WindowConfig configures a Window. The zero value of every field but
// Brokers, Topic and Since is a working default.
type WindowConfig struct {
	Brokers []string  // bootstrap brokers, host:port; required
	Topic   string    // required
	Since   time.Time // first record time included; required
	// Until is the first record time excluded. Default: the time the
	// window is opened, so records published while it is read are not
	// included and the window ends.
	Until time.Time
	// MaxBatch is the most records one Fetch returns. Default 100.
	MaxBatch int
	// Security is TLS and SASL for the connections. Default: plaintext,
	// no authentication.
	Security Security
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Window reads the records of a topic whose timestamps fall in [Since,
// Until), once, and then reports io.EOF. It finds where to start and stop
// in each partition with Kafka's offsets-for-times lookup and does not
// join a consumer group: no offsets are committed anywhere, and Commit is
// a no-op.
//
// Fetch merges the partitions by record time. Its look-ahead is bounded:
// one record per partition waits in the merge, plus what each
// partition's reader prefetches (kafka-go's queue, 100 messages).
//
// A Window is used by one goroutine.
type Window struct {
	cfg     WindowConfig
	dialer  *kafka.Dialer
	parts   []*windowPart
	heads   recordHeap
	started bool

	skipped int // records inside the offset range but outside the time range
}

type windowPart struct {
	partition  int
	start, end int64 // offsets: [start, end)
	r          *kafka.Reader
	done       bool
}

// NewWindow looks up the offsets of the window in every partition.
func NewWindow(ctx context.Context, cfg WindowConfig) (*Window, error) {
	switch {
	case len(cfg.Brokers) == 0:
		return nil, errors.New("kafka window: no brokers")
	case cfg.Topic == "":
		return nil, errors.New("kafka window: no topic")
	case cfg.Since.IsZero():
		return nil, errors.New("kafka window: no start time")
	}
	if cfg.Until.IsZero() {
		cfg.Until = time.Now()
	}
	if !cfg.Until.After(cfg.Since) {
		return nil, fmt.Errorf("kafka window: until %s is not after since %s", cfg.Until.Format(time.RFC3339), cfg.Since.Format(time.RFC3339))
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = 100
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	sec, err := cfg.Security.compile()
	if err != nil {
		return nil, err
	}
	transport := sec.transport()
	defer transport.CloseIdleConnections()
	client := &kafka.Client{Addr: kafka.TCP(cfg.Brokers...), Transport: transport, Timeout: 10 * time.Second}
	meta, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{cfg.Topic}})
	if err != nil {
		return nil, fmt.Errorf("kafka window: reading metadata of %s: %w", cfg.Topic, explain(strings.Join(cfg.Brokers, ","), cfg.Security, sec, err))
	}
	if len(meta.Topics) != 1 || meta.Topics[0].Error != nil {
		var terr error
		if len(meta.Topics) == 1 {
			terr = meta.Topics[0].Error
		}
		return nil, fmt.Errorf("kafka window: topic %s at %v: %v", cfg.Topic, cfg.Brokers, terr)
	}
	var partitions []int
	for _, p := range meta.Topics[0].Partitions {
		partitions = append(partitions, p.ID)
	}
	// One lookup per kind: Kafka refuses a partition twice in one request.
	lookup := func(req func(p int) kafka.OffsetRequest) (map[int]kafka.PartitionOffsets, error) {
		reqs := make([]kafka.OffsetRequest, len(partitions))
		for i, p := range partitions {
			reqs[i] = req(p)
		}
		res, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{cfg.Topic: reqs}})
		if err != nil {
			return nil, fmt.Errorf("kafka window: looking up offsets of %s: %w", cfg.Topic, err)
		}
		out := map[int]kafka.PartitionOffsets{}
		for _, po := range res.Topics[cfg.Topic] {
			if po.Error != nil {
				return nil, fmt.Errorf("kafka window: offsets of %s partition %d: %w", cfg.Topic, po.Partition, po.Error)
			}
			out[po.Partition] = po
		}
		return out, nil
	}
	last, err := lookup(kafka.LastOffsetOf)
	if err != nil {
		return nil, err
	}
	since, err := lookup(func(p int) kafka.OffsetRequest { return kafka.TimeOffsetOf(p, cfg.Since) })
	if err != nil {
		return nil, err
	}
	until, err := lookup(func(p int) kafka.OffsetRequest { return kafka.TimeOffsetOf(p, cfg.Until) })
	if err != nil {
		return nil, err
	}
	w := &Window{cfg: cfg, dialer: sec.dialer()}
	for _, p := range partitions {
		// A time lookup that finds no record at or after the time answers
		// -1: the window then starts (or ends) at the end of the partition.
		hw := last[p].LastOffset
		start, end := offsetAt(since[p], hw), offsetAt(until[p], hw)
		part := &windowPart{partition: p, start: start, end: end, done: start >= end}
		w.parts = append(w.parts, part)
		cfg.Logger.Debug("window partition", "topic", cfg.Topic, "partition", p, "start", start, "end", end)
	}
	return w, nil
}

// offsetAt is the offset a time lookup found, or hw when it found none.
func offsetAt(po kafka.PartitionOffsets, hw int64) int64 {
	for off := range po.Offsets {
		if off >= 0 {
			return off
		}
	}
	return hw
}

// Records is the number of records the window spans by offset (an upper
// bound of what Fetch returns).
func (w *Window) Records() int64 {
	var n int64
	for _, p := range w.parts {
		if p.end > p.start {
			n += p.end - p.start
		}
	}
	return n
}

// Fetch returns the next records in time order; io.EOF once the window is
// exhausted.
func (w *Window) Fetch(ctx context.Context) ([]stream.Record, error) {
	if !w.started {
		w.started = true
		for _, p := range w.parts {
			if p.done {
				continue
			}
			p.r = kafka.NewReader(kafka.ReaderConfig{
				Brokers: w.cfg.Brokers, Dialer: w.dialer, Topic: w.cfg.Topic, Partition: p.partition,
				MinBytes: 1, MaxBytes: 10 << 20, MaxWait: 250 * time.Millisecond,
				IsolationLevel: kafka.ReadCommitted,
			})
			if err := p.r.SetOffset(p.start); err != nil {
				return nil, fmt.Errorf("kafka window: seeking %s partition %d to %d: %w", w.cfg.Topic, p.partition, p.start, err)
			}
			if err := w.refill(ctx, p); err != nil {
				return nil, err
			}
		}
	}
	var batch []stream.Record
	for len(batch) < w.cfg.MaxBatch && w.heads.Len() > 0 {
		h := heap.Pop(&w.heads).(head)
		if err := w.refill(ctx, h.part); err != nil {
			return batch, err
		}
		if h.rec.Time.Before(w.cfg.Since) || !h.rec.Time.Before(w.cfg.Until) {
			w.skipped++ // in the offset range, out of the time range (timestamps are not strictly ordered)
			continue
		}
		batch = append(batch, h.rec)
	}
	if len(batch) == 0 && w.heads.Len() == 0 {
		return nil, io.EOF
	}
	return batch, nil
}

// refill reads the next record of p into the merge, if p has one left.
func (w *Window) refill(ctx context.Context, p *windowPart) error {
	if p.done {
		return nil
	}
	m, err := p.r.FetchMessage(ctx)
	if err != nil {
		return fmt.Errorf("kafka window: reading %s partition %d: %w", w.cfg.Topic, p.partition, err)
	}
	if m.Offset >= p.end {
		p.done = true
		return p.r.Close()
	}
	heap.Push(&w.heads, head{rec: fromMessage(m), part: p})
	if m.Offset >= p.end-1 {
		p.done = true
		return p.r.Close()
	}
	return nil
}

// Commit does nothing: a window keeps no position.
func (w *Window) Commit(context.Context, []stream.Record) error { return nil }

// Skipped is how many records inside the window's offsets had a time
// outside it and were left out.
func (w *Window) Skipped() int { return w.skipped }

// Close stops the partition readers.
func (w *Window) Close() error {
	var errs []error
	for _, p := range w.parts {
		if p.r != nil && !p.done {
			errs = append(errs, p.r.Close())
		}
	}
	return errors.Join(errs...)
}

type head struct {
	rec  stream.Record
	part *windowPart
}

// recordHeap orders heads by record time, then partition (stable order for
// equal times).
type recordHeap []head

func (h recordHeap) Len() int { return len(h) }
func (h recordHeap) Less(i, j int) bool {
	if !h[i].rec.Time.Equal(h[j].rec.Time) {
		return h[i].rec.Time.Before(h[j].rec.Time)
	}
	return h[i].part.partition < h[j].part.partition
}
func (h recordHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *recordHeap) Push(x any)   { *h = append(*h, x.(head)) }
func (h *recordHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
