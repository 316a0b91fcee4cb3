package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net/http"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
)

// The -stack kafka backend: the same scenario through the local Kafka and
// Elasticsearch (deploy/local/stack.sh up). Topics are created when
// missing; the pair documents go to the data stream demoStream, and the
// report reads them back from Elasticsearch for this run's time window
// (the topics and the stream keep earlier runs).
const (
	demoExchanges = "tapline-demo-exchanges"
	demoResults   = "tapline-demo-results"
	demoStream    = "tapline-pairs-demo"
)

func kafkaBackend(broker, esURL string) backend {
	topicURL := func(topic string) string { return "kafka://" + broker + "/" + topic }
	return backend{
		name:      "Kafka and Elasticsearch",
		exchanges: func(string) string { return topicURL(demoExchanges) },
		results:   func(string) string { return topicURL(demoResults) },
		prepare: func(ctx context.Context) error {
			client := &kafka.Client{Addr: kafka.TCP(broker), Timeout: 20 * time.Second}
			res, err := client.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{
				{Topic: demoExchanges, NumPartitions: 3, ReplicationFactor: 1},
				{Topic: demoResults, NumPartitions: 3, ReplicationFactor: 1},
			}})
			if err != nil {
				return fmt.Errorf("creating the demo topics on %s (is the stack up? deploy/local/stack.sh up): %w", broker, err)
			}
			for topic, err := range res.Errors {
				if err != nil && !errors.Is(err, kafka.TopicAlreadyExists) {
					return fmt.Errorf("creating topic %s: %w", topic, err)
				}
			}
			return nil
		},
		recorded: func(ctx context.Context, _ string) (int64, error) { return topicSize(ctx, broker, demoExchanges) },
		analyze: func(ctx context.Context, bin, results string, since time.Time, replayed int64) ([]string, error) {
			an, err := start(bin, "analyze", "--from", results, "--group", "tapline-demo-analyzer", "--start", "earliest",
				"--es", esURL, "--data-stream", demoStream)
			if err != nil {
				return nil, err
			}
			defer an.kill()
			deadline := time.Now().Add(2 * time.Minute)
			for {
				n, _ := esCount(esURL, since)
				if n >= replayed { // documents of this run: captured since it began
					break
				}
				if an.exited() || time.Now().After(deadline) {
					return nil, fmt.Errorf("analyze indexed %d of %d pairs:\n%s", n, replayed, an.tail())
				}
				select {
				case <-ctx.Done():
					return nil, ctx.Err()
				case <-time.After(time.Second):
				}
			}
			if err := an.interrupt(); err != nil {
				return nil, fmt.Errorf("analyze: %w", err)
			}
			log.Printf("the pairs are in Elasticsearch: %s/%s/_search (Kibana: tapline kibana import --url http://127.0.0.1:5601, data view tapline-pairs*)", esURL, demoStream)
			return []string{"--es", esURL, "--data-stream", demoStream}, nil
		},
	}
}

// topicSize is how many records topic holds (the sum over partitions).
func topicSize(ctx context.Context, broker, topic string) (int64, error) {
	conn, err := kafka.DialContext(ctx, "tcp", broker)
	if err != nil {
		return 0, err
	}
	parts, err := conn.ReadPartitions(topic)
	conn.Close()
	if err != nil {
		return 0, err
	}
	var n int64
	for _, p := range parts {
		c, err := kafka.DialLeader(ctx, "tcp", broker, topic, p.ID)
		if err != nil {
			return 0, err
		}
		first, last, err := c.ReadOffsets()
		c.Close()
		if err != nil {
			return 0, err
		}
		n += last - first
	}
	return n, nil
}

// esCount is how many pair documents of the demo stream were captured
// since t.
func esCount(esURL string, since time.Time) (int64, error) {
	q := fmt.Sprintf(`{"query":{"range":{"@timestamp":{"gte":%q}}}}`, since.Add(-time.Second).UTC().Format(time.RFC3339Nano))
	if resp, err := http.Post(esURL+"/"+demoStream+"/_refresh", "application/json", nil); err == nil {
		resp.Body.Close()
	}
	resp, err := http.Post(esURL+"/"+demoStream+"/_count", "application/json", strings.NewReader(q))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var out struct {
		Count int64 `json:"count"`
	}
	if resp.StatusCode != 200 {
		return 0, fmt.Errorf("count: %s", resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return 0, err
	}
	return out.Count, nil
}
