package stacktest

import (
	"context"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tapline/tapline/internal/stream"
	"github.com/tapline/tapline/schema"
)

// ReadTopic returns every record in topic now, partition by partition in
// offset order, without joining a consumer group.
func ReadTopic(t testing.TB, brokers []string, topic string) []stream.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	parts, err := topicPartitions(ctx, kafkaConn{brokers: brokers}, topic)
	if err != nil || len(parts) == 0 {
		t.Fatalf("stacktest.ReadTopic %s: no partitions (%v)", topic, err)
	}
	var out []stream.Record
	for _, p := range parts {
		conn, err := kafka.DialLeader(ctx, "tcp", brokers[0], topic, p.ID)
		if err != nil {
			t.Fatalf("stacktest.ReadTopic %s/%d: %v", topic, p.ID, err)
		}
		first, last, err := conn.ReadOffsets()
		conn.Close()
		if err != nil {
			t.Fatalf("stacktest.ReadTopic %s/%d: offsets: %v", topic, p.ID, err)
		}
		if first == last {
			continue
		}
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: topic, Partition: p.ID, MaxWait: 100 * time.Millisecond})
		if err := r.SetOffset(first); err != nil {
			t.Fatal(err)
		}
		for {
			m, err := r.FetchMessage(ctx)
			if err != nil {
				r.Close()
				t.Fatalf("stacktest.ReadTopic %s/%d at %d of [%d, %d): %v", topic, p.ID, len(out), first, last, err)
			}
			hs := make([]schema.RecordHeader, len(m.Headers))
			for i, h := range m.Headers {
				hs[i] = schema.RecordHeader{Key: h.Key, Value: h.Value}
			}
			out = append(out, stream.Record{Key: m.Key, Value: m.Value, Headers: hs, Time: m.Time, Partition: m.Partition, Offset: m.Offset})
			if m.Offset >= last-1 {
				break
			}
		}
		r.Close()
	}
	return out
}

// Committed returns the offsets group has committed for topic, by
// partition (partitions without a commit are left out).
func Committed(t testing.TB, brokers []string, group, topic string) map[int]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	parts, err := topicPartitions(ctx, kafkaConn{brokers: brokers}, topic)
	if err != nil {
		t.Fatalf("stacktest.Committed: %v", err)
	}
	ids := make([]int, len(parts))
	for i, p := range parts {
		ids[i] = p.ID
	}
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 20 * time.Second}
	res, err := client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: ids}})
	if err == nil {
		err = res.Error
	}
	if err != nil {
		t.Fatalf("stacktest.Committed %s %s: %v", group, topic, err)
	}
	out := map[int]int64{}
	for _, p := range res.Topics[topic] {
		if p.Error != nil {
			t.Fatalf("stacktest.Committed %s %s/%d: %v", group, topic, p.Partition, p.Error)
		}
		if p.CommittedOffset >= 0 {
			out[p.Partition] = p.CommittedOffset
		}
	}
	return out
}
