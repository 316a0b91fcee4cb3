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
	Failed    uint64 // given up after MaxAttempts (or at Close)
	Dropped   uint64 // refused by Enqueue because the queue was full
	Queued    int    // in the Enqueue queue right now
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

	published, failed, dropped atomic.Uint64

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
			Addr:                   kafka.TCP(cfg.Brokers...),
			Transport:              transport,
			Topic:                  cfg.Topic,
			Balancer:               kafka.Murmur2Balancer{},
			RequiredAcks:           kafka.RequireAll,
			Async:                  false, // we bound the queue ourselves
			BatchSize:              cfg.BatchSize,
			BatchTimeout:           cfg.BatchTimeout,
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
	select {
	case p.queue <- rec:
		return true
	default:
		p.dropped.Add(1)
		return false
	}
}

// EnqueueWait hands rec to the background publisher, waiting for room in
// the queue until ctx is done. Use it where waiting is harmless (reading a
// capture file); the record is not taken when it returns an error.
func (p *Producer) EnqueueWait(ctx context.Context, rec stream.Record) error {
	select {
	case p.queue <- rec:
		return nil
	case <-ctx.Done():
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
		if err := p.Publish(ctx, batch...); err != nil {
			p.cfg.Logger.Error("publishing queued records", "topic", p.cfg.Topic, "records", len(batch), "err", err)
		}
	}
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

// Stats returns a snapshot of the counters.
func (p *Producer) Stats() ProducerStats {
	return ProducerStats{
		Published: p.published.Load(),
		Failed:    p.failed.Load(),
		Dropped:   p.dropped.Load(),
		Queued:    len(p.queue),
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
