// Package kafkaio is the one place where tapline configures kafka-go.
//
// kafka-go's defaults do not fit a pipeline that must not lose or reorder
// data: RequiredAcks defaults to none, the balancer is round-robin (which
// breaks per-key order), BatchTimeout is one second, and Async mode queues
// without bound. Every such setting is chosen here, on purpose, and the
// choice is stated on the Config field that exposes it.
//
// Producer publishes records (synchronously with Publish, or through a
// bounded queue with Enqueue for the capture path, which must never block).
// Consumer fetches batches as a member of a consumer group and commits only
// what the caller acknowledges.
package kafkaio

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/compress"

	"github.com/tapline/tapline/internal/stream"
	"github.com/tapline/tapline/schema"
)

// ProducerConfig configures a Producer. The zero value of every field but
// Brokers and Topic is a working default.
type ProducerConfig struct {
	Brokers []string // bootstrap brokers, host:port; required
	Topic   string   // required

	// BatchSize is the most records in one produce request per partition.
	// Default 500.
	BatchSize int
	// BatchTimeout is how long a partly filled batch waits for more records
	// before it is sent. Default 5ms (kafka-go's default is 1s, which would
	// add a second of latency to every synchronous Publish).
	BatchTimeout time.Duration
	// WriteTimeout bounds one produce request. Default 10s.
	WriteTimeout time.Duration
	// MaxAttempts is how often a failed produce is tried before the records
	// are reported as failed. Default 5.
	MaxAttempts int
	// Compression is the codec for record batches: "none", "gzip",
	// "snappy", "lz4" or "zstd". Default "lz4": cheap on the capture host
	// and supported by every broker.
	Compression string
	// QueueSize is the capacity, in records, of the queue behind Enqueue.
	// When it is full Enqueue refuses the record and the caller counts the
	// drop. Default 10000.
	QueueSize int
	// QueueBytes bounds the bytes (keys and values) held by the queue
	// behind Enqueue, including the batch being published; a record that
	// does not fit is refused like one that finds the queue full. Default
	// 64 MiB.
	QueueBytes int64
	// RetryBackoffMax caps the wait between attempts of the queue
	// publisher, which keeps retrying a batch that failed for a transient
	// reason (broker unreachable, leader moving) until it is published or
	// Close gives up: during a Kafka outage the queue fills, and what does
	// not fit is dropped and counted, but nothing queued is given up early.
	// Default 5s.
	RetryBackoffMax time.Duration
	// Security is TLS and SASL for the connections. Default: plaintext,
	// no authentication.
	Security Security
	// Logger receives publish errors. Default slog.Default().
	Logger *slog.Logger
}

func (c *ProducerConfig) setDefaults() error {
	if len(c.Brokers) == 0 {
		return errors.New("kafka producer: no brokers")
	}
	if c.Topic == "" {
		return errors.New("kafka producer: no topic")
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 500
	}
	if c.BatchTimeout <= 0 {
		c.BatchTimeout = 5 * time.Millisecond
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 5
	}
	if c.Compression == "" {
		c.Compression = "lz4"
	}
	if c.QueueSize <= 0 {
		c.QueueSize = 10000
	}
	if c.QueueBytes <= 0 {
		c.QueueBytes = 64 << 20
	}
	if c.RetryBackoffMax <= 0 {
		c.RetryBackoffMax = 5 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

// ProducerStats counts what a Producer did with the records it was given.
// Every record handed to Publish or Enqueue ends in exactly one of
// Published, Failed or Dropped, or is still Queued.
type ProducerStats struct {
	Published uint64 // acknowledged by all in-sync replicas
	// Failed: Publish gave up after MaxAttempts; the queue publisher met a
	// permanent error (e.g. a record too large) or Close gave up on it.
	Failed  uint64
	Dropped uint64 // refused by Enqueue because the queue was full (QueueSize or QueueBytes)
	Queued  int    // in the Enqueue queue, or in the batch being published, right now
	// Retries counts failed attempts of the queue publisher that it
	// retried (each one a batch, after a backoff).
	Retries uint64
}

// Producer publishes records to one topic. Records with the same key go to
// the same partition (murmur2, the Java client's partitioner, so tapline
// and other clients agree) and keep their order there. It is safe for
// concurrent use.
type Producer struct {
	cfg       ProducerConfig
	transport *kafka.Transport
	w         *kafka.Writer
	queue     chan stream.Record

	published, failed, dropped, retries atomic.Uint64
	inFlight                            atomic.Int64 // records of the batch the queue publisher holds
	queuedBytes                         atomic.Int64 // bytes of the records in queue or in the batch being published

	closeOnce sync.Once
	cancel    context.CancelFunc // stops the queue publisher's in-flight write
	done      chan struct{}      // closed when the queue publisher has exited
}

// NewProducer returns a Producer for cfg. It does not contact the brokers;
// the first publish does.
func NewProducer(cfg ProducerConfig) (*Producer, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	codec, err := compressionCodec(cfg.Compression)
	if err != nil {
		return nil, err
	}
	sec, err := cfg.Security.compile()
	if err != nil {
		return nil, err
	}
	// A transport of its own: kafka-go's DefaultTransport is shared by the
	// whole process and caches topic metadata, so a topic created after
	// another client looked it up would stay "unknown" for its TTL.
	transport := sec.transport()
	p := &Producer{
		cfg:       cfg,
		transport: transport,
		w: &kafka.Writer{
			Addr:         kafka.TCP(cfg.Brokers...),
			Transport:    transport,
			Topic:        cfg.Topic,
			Balancer:     kafka.Murmur2Balancer{},
			RequiredAcks: kafka.RequireAll,
			Async:        false, // we bound the queue ourselves
			BatchSize:    cfg.BatchSize,
			BatchTimeout: cfg.BatchTimeout,
			// kafka-go refuses a larger record before sending it, and
			// fills a batch up to this by its own estimate of the records'
			// sizes. That estimate leaves out the batch header (61 bytes)
			// and the compression's framing (up to a few hundred bytes for
			// incompressible data), which the broker counts against its
			// message.max.bytes, 1 048 588 by default. Hence 4 KiB less.
			BatchBytes:             MaxRecordBytes,
			WriteTimeout:           cfg.WriteTimeout,
			MaxAttempts:            cfg.MaxAttempts,
			Compression:            codec,
			AllowAutoTopicCreation: false, // a typo in a topic name is an error, not a new topic
			ErrorLogger:            kafka.LoggerFunc(func(msg string, args ...any) { cfg.Logger.Debug(fmt.Sprintf(msg, args...), "topic", cfg.Topic) }),
		},
		queue: make(chan stream.Record, cfg.QueueSize),
		done:  make(chan struct{}),
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	go p.drainQueue(ctx)
	return p, nil
}

func compressionCodec(name string) (compress.Compression, error) {
	var c compress.Compression
	if name == "none" {
		return compress.None, nil
	}
	if err := c.UnmarshalText([]byte(name)); err != nil || c == compress.None {
		return 0, fmt.Errorf("kafka producer: unknown compression %q (want none, gzip, snappy, lz4 or zstd)", name)
	}
	return c, nil
}

// Publish writes recs and returns when all of them are acknowledged by all
// in-sync replicas, or with an error. On a partial failure the error is a
// kafka.WriteErrors naming the failed records by index.
func (p *Producer) Publish(ctx context.Context, recs ...stream.Record) error {
	if len(recs) == 0 {
		return nil
	}
	msgs := make([]kafka.Message, len(recs))
	for i, r := range recs {
		msgs[i] = toMessage(r)
	}
	err := p.w.WriteMessages(ctx, msgs...)
	p.account(len(recs), err)
	switch {
	case errors.Is(err, kafka.UnknownTopicOrPartition):
		return fmt.Errorf("publishing %d records: topic %s does not exist at %v (create it first; tapline does not auto-create topics): %w",
			len(recs), p.cfg.Topic, p.cfg.Brokers, err)
	case err != nil:
		return fmt.Errorf("publishing %d records to %s: %w", len(recs), p.cfg.Topic, err)
	}
	return nil
}

// account adds the outcome of one write of n records to the counters.
func (p *Producer) account(n int, err error) {
	var werrs kafka.WriteErrors
	switch {
	case err == nil:
		p.published.Add(uint64(n))
	case errors.As(err, &werrs):
		failed := werrs.Count()
		p.failed.Add(uint64(failed))
		p.published.Add(uint64(n - failed))
	default:
		p.failed.Add(uint64(n))
	}
}

// Enqueue hands rec to the background publisher without blocking. It
// returns false, and counts the record as dropped, when the queue is full:
// the capture path must never wait for Kafka.
func (p *Producer) Enqueue(rec stream.Record) bool {
	n := recordBytes(rec)
	if p.queuedBytes.Add(n) > p.cfg.QueueBytes {
		p.queuedBytes.Add(-n)
		p.dropped.Add(1)
		return false
	}
	select {
	case p.queue <- rec:
		return true
	default:
		p.queuedBytes.Add(-n)
		p.dropped.Add(1)
		return false
	}
}

func recordBytes(r stream.Record) int64 { return int64(len(r.Key) + len(r.Value)) }

// EnqueueWait hands rec to the background publisher, waiting for room in
// the queue until ctx is done. Use it where waiting is harmless (reading a
// capture file); the record is not taken when it returns an error.
func (p *Producer) EnqueueWait(ctx context.Context, rec stream.Record) error {
	p.queuedBytes.Add(recordBytes(rec)) // may overshoot QueueBytes: waiting is bounded by QueueSize
	select {
	case p.queue <- rec:
		return nil
	case <-ctx.Done():
		p.queuedBytes.Add(-recordBytes(rec))
		return fmt.Errorf("queueing a record for %s: %w", p.cfg.Topic, ctx.Err())
	}
}

// drainQueue publishes queued records in batches until the queue is closed.
func (p *Producer) drainQueue(ctx context.Context) {
	defer close(p.done)
	batch := make([]stream.Record, 0, p.cfg.BatchSize)
	for rec := range p.queue {
		batch = append(batch[:0], rec)
	fill:
		for len(batch) < p.cfg.BatchSize {
			select {
			case r, ok := <-p.queue:
				if !ok {
					break fill
				}
				batch = append(batch, r)
			default:
				break fill
			}
		}
		p.inFlight.Store(int64(len(batch)))
		p.publishQueued(ctx, batch)
		p.inFlight.Store(0)
		var n int64
		for _, r := range batch {
			n += recordBytes(r)
		}
		p.queuedBytes.Add(-n)
	}
}

// publishQueued publishes batch, retrying what failed for a transient
// reason with backoff until it is published or ctx ends (Close gave up).
// Every record ends as published or failed.
func (p *Producer) publishQueued(ctx context.Context, batch []stream.Record) {
	msgs := make([]kafka.Message, len(batch))
	for i, r := range batch {
		msgs[i] = toMessage(r)
	}
	backoff := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := p.w.WriteMessages(ctx, msgs...)
		if err == nil {
			p.published.Add(uint64(len(msgs)))
			return
		}
		retry := msgs[:0:0]
		var werrs kafka.WriteErrors
		var tooLarge kafka.MessageTooLargeError
		switch {
		case errors.As(err, &tooLarge):
			// kafka-go refuses the whole write, before sending anything,
			// for the first record over its limit: fail that one, go on
			// with the others at once.
			p.failed.Add(1)
			p.cfg.Logger.Error("record too large for Kafka; not published", "topic", p.cfg.Topic,
				"bytes", len(tooLarge.Message.Key)+len(tooLarge.Message.Value), "limit", p.w.BatchBytes)
			if msgs = tooLarge.Remaining; len(msgs) == 0 {
				return
			}
			attempt--
			continue
		case ctx.Err() != nil:
			p.failed.Add(uint64(len(msgs)))
			p.cfg.Logger.Error("giving up on queued records", "topic", p.cfg.Topic, "records", len(msgs), "err", err)
			return
		case errors.As(err, &werrs) && len(werrs) == len(msgs):
			for i, werr := range werrs {
				switch {
				case werr == nil:
					p.published.Add(1)
				case transient(werr):
					retry = append(retry, msgs[i])
				default:
					p.failed.Add(1)
					p.cfg.Logger.Error("record not published", "topic", p.cfg.Topic, "err", werr)
				}
			}
		case transient(err):
			retry = msgs
		default:
			p.failed.Add(uint64(len(msgs)))
			p.cfg.Logger.Error("records not published", "topic", p.cfg.Topic, "records", len(msgs), "err", err)
		}
		if len(retry) == 0 {
			return
		}
		msgs = retry
		p.retries.Add(1)
		// The first failures of an outage, then one line a minute or so.
		if attempt <= 3 || attempt%12 == 0 {
			msg := "Kafka does not take queued records; holding them and retrying"
			if errors.Is(err, kafka.UnknownTopicOrPartition) {
				msg = "topic does not exist (create it first; tapline does not auto-create topics); holding the records and retrying"
			}
			p.cfg.Logger.Warn(msg, "topic", p.cfg.Topic, "brokers", p.cfg.Brokers,
				"records", len(msgs), "queued", len(p.queue), "attempt", attempt, "retry_in", backoff, "err", firstError(err))
		}
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, p.cfg.RetryBackoffMax)
	}
}

// firstError returns the first error of a kafka.WriteErrors (they are
// mostly the same one, once per record), or err.
func firstError(err error) error {
	var werrs kafka.WriteErrors
	if errors.As(err, &werrs) {
		for _, e := range werrs {
			if e != nil {
				return fmt.Errorf("%w (and %d more records)", e, werrs.Count()-1)
			}
		}
	}
	return err
}

// transient reports whether a failed write may succeed later: every
// failure but an error Kafka calls permanent or a record too large.
func transient(err error) bool {
	var kerr kafka.Error
	if errors.As(err, &kerr) {
		return kerr.Temporary()
	}
	var tooLarge kafka.MessageTooLargeError
	return !errors.As(err, &tooLarge)
}

// Close publishes what is still queued, waiting at most until ctx is done
// (what is left then is counted as failed), and closes the connection.
// Enqueue must not be called after Close.
func (p *Producer) Close(ctx context.Context) error {
	var err error
	p.closeOnce.Do(func() {
		close(p.queue)
		select {
		case <-p.done:
		case <-ctx.Done():
			p.cancel() // the in-flight write fails and is counted
			<-p.done
			err = fmt.Errorf("closing producer for %s: %w", p.cfg.Topic, ctx.Err())
		}
		p.cancel()
		if cerr := p.w.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("closing producer for %s: %w", p.cfg.Topic, cerr)
		}
		p.transport.CloseIdleConnections()
	})
	return err
}

// MaxRecordBytes is the largest record a Producer publishes, as kafka-go
// counts it: key, value, headers and about 30 bytes. A larger record
// fails; the stages cut records to fit it (stream.SizeLimited). It is 4 KiB
// under a broker's default message.max.bytes, for the framing kafka-go
// does not count.
const MaxRecordBytes = 1<<20 - 4<<10

// MaxRecordBytes is the package's MaxRecordBytes; it makes the producer a
// stream.SizeLimited.
func (p *Producer) MaxRecordBytes() int { return int(p.w.BatchBytes) }

var _ stream.SizeLimited = (*Producer)(nil)

// Stats returns a snapshot of the counters.
func (p *Producer) Stats() ProducerStats {
	return ProducerStats{
		Published: p.published.Load(),
		Failed:    p.failed.Load(),
		Dropped:   p.dropped.Load(),
		Queued:    len(p.queue) + int(p.inFlight.Load()),
		Retries:   p.retries.Load(),
	}
}

func toMessage(r stream.Record) kafka.Message {
	hs := make([]kafka.Header, len(r.Headers))
	for i, h := range r.Headers {
		hs[i] = kafka.Header{Key: h.Key, Value: h.Value}
	}
	return kafka.Message{Key: r.Key, Value: r.Value, Headers: hs, Time: r.Time}
}

func fromMessage(m kafka.Message) stream.Record {
	hs := make([]schema.RecordHeader, len(m.Headers))
	for i, h := range m.Headers {
		hs[i] = schema.RecordHeader{Key: h.Key, Value: h.Value}
	}
	return stream.Record{Key: m.Key, Value: m.Value, Headers: hs, Time: m.Time, Partition: m.Partition, Offset: m.Offset}
}
