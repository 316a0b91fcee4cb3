package kafkaio

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"testing"
	"time"

	"github.com/tapline/tapline/internal/stacktest"
	"github.com/tapline/tapline/internal/stream"
)

// TestWindow publishes records with known times over three partitions and
// reads time windows back: exactly the records inside, in time order, then
// io.EOF, without touching any consumer group.
func TestWindow(t *testing.T) {
	ctx := testContext(t)
	brokers := stacktest.Kafka(t)
	topic := stacktest.Topic(t, brokers, 3)
	base := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC) // "last Tuesday 10:00"
	p := newProducer(t, ProducerConfig{Brokers: brokers, Topic: topic})
	var recs []stream.Record
	for i := 0; i < 60; i++ {
		recs = append(recs, stream.Record{Key: []byte(fmt.Sprintf("s%d", i%7)), Value: []byte(strconv.Itoa(i)), Time: base.Add(time.Duration(i) * time.Minute)})
	}
	if err := p.Publish(ctx, recs...); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name         string
		since, until time.Time
		want         []int // record numbers, in order
	}{
		{"10:10 to 10:20", base.Add(10 * time.Minute), base.Add(20 * time.Minute), seq(10, 20)},
		{"everything", base.Add(-time.Hour), base.Add(2 * time.Hour), seq(0, 60)},
		{"until defaults to now", base.Add(55 * time.Minute), time.Time{}, seq(55, 60)},
		{"before the first record", base.Add(-2 * time.Hour), base.Add(-time.Hour), nil},
		{"after the last record", base.Add(3 * time.Hour), base.Add(4 * time.Hour), nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w, err := NewWindow(ctx, WindowConfig{Brokers: brokers, Topic: topic, Since: tc.since, Until: tc.until, MaxBatch: 7})
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			var got []int
			for {
				batch, err := w.Fetch(ctx)
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				if len(batch) == 0 || len(batch) > 7 {
					t.Fatalf("batch of %d records", len(batch))
				}
				for _, r := range batch {
					n, _ := strconv.Atoi(string(r.Value))
					got = append(got, n)
				}
				if err := w.Commit(ctx, batch); err != nil {
					t.Fatal(err)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("got %v\nwant %v", got, tc.want)
			}
			if _, err := w.Fetch(ctx); !errors.Is(err, io.EOF) {
				t.Fatalf("after the end: %v, want io.EOF", err)
			}
		})
	}
	if _, err := NewWindow(ctx, WindowConfig{Brokers: brokers, Topic: topic, Since: base, Until: base}); err == nil {
		t.Error("an empty time range was accepted")
	}
	if _, err := NewWindow(ctx, WindowConfig{Brokers: brokers, Topic: topic + "-missing", Since: base}); err == nil {
		t.Error("a missing topic was accepted")
	}
}

func seq(from, to int) []int {
	var out []int
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out
}
