package kafkaio

import (
	"context"
	"crypto/rand"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/tapline/tapline/internal/stacktest"
	"github.com/tapline/tapline/internal/stream"
	"github.com/tapline/tapline/schema"
)

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func newProducer(t *testing.T, cfg ProducerConfig) *Producer {
	t.Helper()
	p, err := NewProducer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close(context.Background()) })
	return p
}

func newConsumer(t *testing.T, cfg ConsumerConfig) *Consumer {
	t.Helper()
	c, err := NewConsumer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// fetchN fetches until n records arrived.
func fetchN(t *testing.T, ctx context.Context, c *Consumer, n int) []stream.Record {
	t.Helper()
	var got []stream.Record
	for len(got) < n {
		batch, err := c.Fetch(ctx)
		if err != nil {
			t.Fatalf("after %d of %d records: %v", len(got), n, err)
		}
		got = append(got, batch...)
	}
	if len(got) != n {
		t.Fatalf("got %d records, want %d", len(got), n)
	}
	return got
}

// TestPerKeyOrder publishes interleaved sequences for several keys to a
// topic with several partitions and checks that each key lands in one
// partition with its sequence in order.
func TestPerKeyOrder(t *testing.T) {
	ctx := testContext(t)
	brokers := stacktest.Kafka(t)
	topic := stacktest.Topic(t, brokers, 4)
	const keys, perKey = 8, 40

	p := newProducer(t, ProducerConfig{Brokers: brokers, Topic: topic})
	for seq := 0; seq < perKey; seq += 10 {
		var batch []stream.Record
		for s := seq; s < seq+10; s++ {
			for k := 0; k < keys; k++ {
				batch = append(batch, stream.Record{Key: []byte(fmt.Sprintf("session-%d", k)), Value: []byte(strconv.Itoa(s))})
			}
		}
		if err := p.Publish(ctx, batch...); err != nil {
			t.Fatal(err)
		}
	}
	if st := p.Stats(); st.Published != keys*perKey || st.Failed != 0 {
		t.Fatalf("producer stats %+v, want %d published", st, keys*perKey)
	}

	c := newConsumer(t, ConsumerConfig{Brokers: brokers, Topic: topic, Group: topic + "-g"})
	defer c.Close()
	recs := fetchN(t, ctx, c, keys*perKey)

	next := map[string]int{}
	partition := map[string]int{}
	partitionsUsed := map[int]bool{}
	for _, r := range recs {
		k := string(r.Key)
		seq, _ := strconv.Atoi(string(r.Value))
		if seq != next[k] {
			t.Fatalf("key %s: got seq %d, want %d (order broken)", k, seq, next[k])
		}
		next[k]++
		if p, ok := partition[k]; ok && p != r.Partition {
			t.Fatalf("key %s in partitions %d and %d", k, p, r.Partition)
		}
		partition[k] = r.Partition
		partitionsUsed[r.Partition] = true
	}
	if len(partitionsUsed) < 2 {
		t.Fatalf("all keys hashed to one partition %v; the balancer is not spreading keys", partitionsUsed)
	}
}

// TestUncommittedRedelivered checks at-least-once: what a member fetched
// but did not commit is delivered again to the next member of the group.
func TestUncommittedRedelivered(t *testing.T) {
	ctx := testContext(t)
	brokers := stacktest.Kafka(t)
	topic := stacktest.Topic(t, brokers, 1)
	group := topic + "-g"

	p := newProducer(t, ProducerConfig{Brokers: brokers, Topic: topic})
	var recs []stream.Record
	for i := 0; i < 10; i++ {
		recs = append(recs, stream.Record{Key: []byte("k"), Value: []byte(strconv.Itoa(i))})
	}
	if err := p.Publish(ctx, recs...); err != nil {
		t.Fatal(err)
	}

	first := newConsumer(t, ConsumerConfig{Brokers: brokers, Topic: topic, Group: group})
	got := fetchN(t, ctx, first, 10)
	if err := first.Commit(ctx, got[:4]); err != nil { // handler finished only 0..3
		t.Fatal(err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}

	second := newConsumer(t, ConsumerConfig{Brokers: brokers, Topic: topic, Group: group})
	again := fetchN(t, ctx, second, 6)
	for i, r := range again {
		if want := strconv.Itoa(i + 4); string(r.Value) != want {
			t.Fatalf("redelivered record %d = %q, want %q", i, r.Value, want)
		}
	}
	if err := second.Commit(ctx, again); err != nil {
		t.Fatal(err)
	}
	if err := second.Close(); err != nil {
		t.Fatal(err)
	}

	// Everything is committed now: a third member sees only new records.
	if err := p.Publish(ctx, stream.Record{Key: []byte("k"), Value: []byte("new")}); err != nil {
		t.Fatal(err)
	}
	third := newConsumer(t, ConsumerConfig{Brokers: brokers, Topic: topic, Group: group})
	defer third.Close()
	last := fetchN(t, ctx, third, 1)
	if string(last[0].Value) != "new" {
		t.Fatalf("after full commit got %q, want only the new record", last[0].Value)
	}
}

// TestEnqueuePublishesEverything: records handed to the queue are all
// published by Close.
func TestEnqueuePublishesEverything(t *testing.T) {
	ctx := testContext(t)
	brokers := stacktest.Kafka(t)
	topic := stacktest.Topic(t, brokers, 2)
	const n = 2000

	p, err := NewProducer(ProducerConfig{Brokers: brokers, Topic: topic, QueueSize: n})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		if !p.Enqueue(stream.Record{Key: []byte(strconv.Itoa(i % 7)), Value: []byte(strconv.Itoa(i))}) {
			t.Fatalf("queue of %d refused record %d", n, i)
		}
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if st := p.Stats(); st.Published != n || st.Failed != 0 || st.Dropped != 0 || st.Queued != 0 {
		t.Fatalf("stats %+v, want %d published", st, n)
	}
	c := newConsumer(t, ConsumerConfig{Brokers: brokers, Topic: topic, Group: topic + "-g"})
	defer c.Close()
	fetchN(t, ctx, c, n)
}

// TestEnqueueTooLarge: a record over kafka-go's size limit fails alone;
// the records queued with it are published.
func TestEnqueueTooLarge(t *testing.T) {
	ctx := testContext(t)
	brokers := stacktest.Kafka(t)
	topic := stacktest.Topic(t, brokers, 1)
	p, err := NewProducer(ProducerConfig{Brokers: brokers, Topic: topic, Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	for _, size := range []int{10, 3 << 19, 10, 2 << 20, 10} {
		if !p.Enqueue(stream.Record{Key: []byte("k"), Value: make([]byte, size)}) {
			t.Fatal("queue refused a record")
		}
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if st := p.Stats(); st.Published != 3 || st.Failed != 2 || st.Queued != 0 {
		t.Fatalf("stats %+v, want the 3 small records published and the 2 large ones failed", st)
	}
	c := newConsumer(t, ConsumerConfig{Brokers: brokers, Topic: topic, Group: topic + "-g"})
	defer c.Close()
	fetchN(t, ctx, c, 3)
}

// TestLargestRecordIsAccepted: the largest record the stages cut to
// (stream.ValueLimit), made of random bytes that no codec shrinks, is
// taken by the real broker with every codec; so are two half-size ones
// that kafka-go packs into one batch. kafka-go's limit alone (1 MiB) let
// such batches exceed the broker's message.max.bytes by the framing it
// does not count.
func TestLargestRecordIsAccepted(t *testing.T) {
	ctx := testContext(t)
	brokers := stacktest.Kafka(t)
	key := []byte("10.0.0.1:40000->10.0.0.2:80")
	headers := []schema.RecordHeader{{Key: schema.HeaderSchema, Value: []byte(schema.SchemaExchange)}, {Key: schema.HeaderVersion, Value: []byte(schema.Version)}}
	random := func(n int) []byte {
		b := make([]byte, n)
		rand.Read(b)
		return b
	}
	for _, codec := range []string{"none", "lz4", "snappy", "gzip", "zstd"} {
		t.Run(codec, func(t *testing.T) {
			topic := stacktest.Topic(t, brokers, 1)
			p, err := NewProducer(ProducerConfig{Brokers: brokers, Topic: topic, Compression: codec, Logger: discardLogger()})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close(ctx)
			limit := stream.ValueLimit(p, key, headers)
			if limit < 1_000_000 {
				t.Fatalf("value limit %d: the room kept for framing is too large", limit)
			}
			if err := p.Publish(ctx, stream.Record{Key: key, Value: random(limit), Headers: headers}); err != nil {
				t.Fatalf("a %d-byte value, at the limit: %v", limit, err)
			}
			half := stream.Record{Key: key, Value: random(limit / 2), Headers: headers}
			other := half
			other.Value = random(limit / 2)
			if err := p.Publish(ctx, half, other); err != nil {
				t.Fatalf("two %d-byte values in one batch: %v", limit/2, err)
			}
			if err := p.Publish(ctx, stream.Record{Key: key, Value: random(limit + 200), Headers: headers}); err == nil {
				t.Errorf("a value 200 bytes over the limit was published; the limit is not where kafka-go refuses")
			}
		})
	}
}

// TestDeadBrokerAccounting: with no broker, Enqueue never blocks, and every
// record ends up counted as failed or dropped.
func TestDeadBrokerAccounting(t *testing.T) {
	p, err := NewProducer(ProducerConfig{
		Brokers: []string{"127.0.0.1:1"}, Topic: "nowhere",
		QueueSize: 10, MaxAttempts: 1, WriteTimeout: 100 * time.Millisecond,
		Logger: discardLogger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	const n = 1000
	for i := 0; i < n; i++ {
		p.Enqueue(stream.Record{Value: []byte("x")})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_ = p.Close(ctx) // may time out; what is left is counted as failed
	st := p.Stats()
	if st.Published != 0 || st.Dropped == 0 || st.Failed+st.Dropped != n {
		t.Fatalf("stats %+v: want failed+dropped = %d and some drops", st, n)
	}
}

// TestQueueBytesBound: the queue behind Enqueue holds at most QueueBytes;
// while the broker is unreachable the publisher keeps the batch it holds
// (it retries until Close gives up), so exactly what fits is accepted.
func TestQueueBytesBound(t *testing.T) {
	p, err := NewProducer(ProducerConfig{
		Brokers: []string{"127.0.0.1:1"}, Topic: "nowhere",
		QueueSize: 1000, QueueBytes: 1000, MaxAttempts: 1, WriteTimeout: 100 * time.Millisecond,
		Logger: discardLogger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	accepted := 0
	for range 100 {
		if p.Enqueue(stream.Record{Value: make([]byte, 100)}) {
			accepted++
		}
	}
	if st := p.Stats(); accepted != 10 || st.Dropped != 90 {
		t.Fatalf("accepted %d, stats %+v: want 10 accepted (1000 bytes) and 90 dropped", accepted, st)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := p.Close(ctx); err == nil {
		t.Error("Close returned nil with records it could not publish")
	}
	if st := p.Stats(); st.Failed != 10 || st.Published != 0 {
		t.Fatalf("after Close: %+v, want the 10 queued records failed", st)
	}
}

func TestProducerConfigErrors(t *testing.T) {
	cases := []ProducerConfig{
		{Topic: "t"},
		{Brokers: []string{"b:1"}},
		{Brokers: []string{"b:1"}, Topic: "t", Compression: "brotli"},
	}
	for _, cfg := range cases {
		if _, err := NewProducer(cfg); err == nil {
			t.Errorf("NewProducer(%+v) succeeded, want an error", cfg)
		}
	}
	for _, cfg := range []ConsumerConfig{{Topic: "t", Group: "g"}, {Brokers: []string{"b"}, Group: "g"}, {Brokers: []string{"b"}, Topic: "t"}} {
		if _, err := NewConsumer(cfg); err == nil {
			t.Errorf("NewConsumer(%+v) succeeded, want an error", cfg)
		}
	}
}
