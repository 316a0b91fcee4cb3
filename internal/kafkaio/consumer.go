package kafkaio

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tapline/tapline/internal/stream"
)

// ConsumerConfig configures a Consumer. The zero value of every field but
// Brokers, Topic and Group is a working default.
type ConsumerConfig struct {
	Brokers []string // bootstrap brokers, host:port; required
	Topic   string   // required
	Group   string   // consumer group id; required (members share the partitions)

	// StartAtLatest makes a group that has no committed offset start at the
	// end of the topic (only new records). Default false: start at the
	// earliest retained record, so nothing already published is skipped.
	StartAtLatest bool
	// MaxBatch is the most records one Fetch returns. Default 100.
	MaxBatch int
	// BatchWait is how long Fetch keeps filling a batch after its first
	// record arrived. Default 50ms.
	BatchWait time.Duration
	// SessionTimeout is how long the group coordinator waits for a member
	// that stopped heartbeating (killed, partitioned) before it gives the
	// member's partitions to the others; its uncommitted records are then
	// delivered again. Default 10s (kafka-go's is 30s; the broker allows
	// 6s to 30 min by default).
	SessionTimeout time.Duration
	// MaxBytes bounds one fetch response from a broker. Default 10 MiB.
	MaxBytes int
	// Security is TLS and SASL for the connections. Default: plaintext,
	// no authentication. A refused authentication is retried like any
	// other connection error (the Consumer then waits): call Check first.
	Security Security
	// Logger receives the client's error log at debug level. Default
	// slog.Default().
	Logger *slog.Logger
}

func (c *ConsumerConfig) setDefaults() error {
	switch {
	case len(c.Brokers) == 0:
		return errors.New("kafka consumer: no brokers")
	case c.Topic == "":
		return errors.New("kafka consumer: no topic")
	case c.Group == "":
		return errors.New("kafka consumer: no consumer group")
	}
	if c.MaxBatch <= 0 {
		c.MaxBatch = 100
	}
	if c.BatchWait <= 0 {
		c.BatchWait = 50 * time.Millisecond
	}
	if c.SessionTimeout <= 0 {
		c.SessionTimeout = 10 * time.Second
	}
	if c.MaxBytes <= 0 {
		c.MaxBytes = 10 << 20
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

// Consumer reads a topic as a member of a consumer group. Fetch and Commit
// are separate: a record's offset is committed only when the caller says
// its output is durable. Records fetched but never committed are delivered
// again to the next member that owns the partition (after a restart or a
// rebalance): delivery is at least once.
//
// Fetch and Commit may be called from different goroutines, but Fetch must
// not be called concurrently with itself.
type Consumer struct {
	cfg ConsumerConfig
	r   *kafka.Reader
}

// NewConsumer returns a Consumer that joins cfg.Group on the first Fetch.
func NewConsumer(cfg ConsumerConfig) (*Consumer, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	sec, err := cfg.Security.compile()
	if err != nil {
		return nil, err
	}
	start := kafka.FirstOffset
	if cfg.StartAtLatest {
		start = kafka.LastOffset
	}
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:        cfg.Brokers,
		Dialer:         sec.dialer(),
		Topic:          cfg.Topic,
		GroupID:        cfg.Group,
		StartOffset:    start,
		MinBytes:       1,
		MaxBytes:       cfg.MaxBytes,
		MaxWait:        250 * time.Millisecond,
		SessionTimeout: cfg.SessionTimeout,
		CommitInterval: 0, // commits are synchronous: Commit returns when the broker has them
		IsolationLevel: kafka.ReadCommitted,
		ErrorLogger: kafka.LoggerFunc(func(msg string, args ...any) {
			cfg.Logger.Debug(fmt.Sprintf(msg, args...), "topic", cfg.Topic, "group", cfg.Group)
		}),
	})
	return &Consumer{cfg: cfg, r: r}, nil
}

// Fetch blocks until at least one record is available (or ctx is done),
// then keeps collecting for up to BatchWait or MaxBatch records.
func (c *Consumer) Fetch(ctx context.Context) ([]stream.Record, error) {
	m, err := c.r.FetchMessage(ctx)
	if err != nil {
		return nil, fmt.Errorf("fetching from %s: %w", c.cfg.Topic, err)
	}
	batch := []stream.Record{fromMessage(m)}
	fillCtx, cancel := context.WithTimeout(ctx, c.cfg.BatchWait)
	defer cancel()
	for len(batch) < c.cfg.MaxBatch {
		m, err := c.r.FetchMessage(fillCtx)
		if err != nil {
			if fillCtx.Err() == nil {
				// Not the end of the wait: the next Fetch will meet the
				// same error if it persists.
				c.cfg.Logger.Warn("fetching batch", "topic", c.cfg.Topic, "err", err)
			}
			break
		}
		batch = append(batch, fromMessage(m))
	}
	return batch, nil
}

// Commit marks recs as processed. For each partition the highest offset
// among recs is committed, which acknowledges every earlier record of that
// partition as well: commit only a prefix of what Fetch returned.
func (c *Consumer) Commit(ctx context.Context, recs []stream.Record) error {
	if len(recs) == 0 {
		return nil
	}
	msgs := make([]kafka.Message, len(recs))
	for i, r := range recs {
		msgs[i] = kafka.Message{Topic: c.cfg.Topic, Partition: r.Partition, Offset: r.Offset}
	}
	if err := c.r.CommitMessages(ctx, msgs...); err != nil {
		return fmt.Errorf("committing %d records of %s: %w", len(recs), c.cfg.Topic, err)
	}
	return nil
}

// Lag is the number of records behind the end of the assigned partitions,
// as of the last fetch (-1 before the first).
func (c *Consumer) Lag() int64 { return c.r.Stats().Lag }

// Close leaves the group. Uncommitted records are redelivered to whichever
// member takes the partition next.
func (c *Consumer) Close() error {
	if err := c.r.Close(); err != nil {
		return fmt.Errorf("closing consumer of %s: %w", c.cfg.Topic, err)
	}
	return nil
}
