// Command kafkaready waits until a Kafka cluster really serves clients: it
// creates a scratch topic (if needed), produces one record with
// RequiredAcks=all, fetches that same record back, and checks that a
// consumer-group coordinator is available. It retries until the deadline and
// exits 0 on the first fully successful attempt, 1 otherwise.
//
// deploy/local/stack.sh runs it (go run ./deploy/local/kafkaready) after
// starting the broker, because an open TCP port is not the same as a broker
// that has elected a controller, registered itself and can host partitions.
//
//	go run ./deploy/local/kafkaready -brokers 127.0.0.1:9092 -timeout 90s
//
// A SASL_SSL listener (stack.sh's secure mode) needs the CA and the SASL
// credentials, the password from a file:
//
//	go run ./deploy/local/kafkaready -brokers 127.0.0.1:9092 -ca-file ca.crt \
//	    -sasl SCRAM-SHA-512 -username admin -password-file admin-password
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tapline/tapline/internal/kafkaio"
)

func main() {
	brokers := flag.String("brokers", "127.0.0.1:9092", "comma-separated bootstrap brokers")
	timeout := flag.Duration("timeout", 90*time.Second, "give up after this long")
	topic := flag.String("topic", "tapline-stack-ready", "scratch topic used for the round trip (1 partition)")
	pid := flag.Int("pid", 0, "if > 0, give up as soon as this process (the broker) is gone")
	caFile := flag.String("ca-file", "", "connect with TLS, trusting the CAs in this PEM file")
	mechanism := flag.String("sasl", "", "SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (default: none)")
	username := flag.String("username", "", "SASL username")
	passwordFile := flag.String("password-file", "", "file holding the SASL password")
	flag.Parse()

	sec := kafkaio.Security{CAFile: *caFile, SASLMechanism: *mechanism, Username: *username}
	if *passwordFile != "" {
		pw, err := os.ReadFile(*passwordFile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "kafkaready:", err)
			os.Exit(2)
		}
		sec.Password = strings.TrimRight(string(pw), "\r\n")
	}
	if _, err := sec.Transport(); err != nil {
		fmt.Fprintln(os.Stderr, "kafkaready:", err)
		os.Exit(2)
	}

	addrs := splitBrokers(*brokers)
	if len(addrs) == 0 {
		fmt.Fprintln(os.Stderr, "kafkaready: -brokers is empty")
		os.Exit(2)
	}

	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()

	var lastErr string
	for attempt := 1; ; attempt++ {
		err := roundTrip(ctx, addrs, *topic, sec)
		if err == nil {
			fmt.Printf("kafkaready: produce/fetch round trip on %q and group coordinator via %s (%s) ok (attempt %d, %.1fs)\n",
				*topic, strings.Join(addrs, ","), sec, attempt, time.Since(start).Seconds())
			return
		}
		// Log only when the reason changes, so a slow start is not 200 lines.
		if msg := err.Error(); msg != lastErr {
			fmt.Fprintf(os.Stderr, "kafkaready: attempt %d (%.1fs): %v\n", attempt, time.Since(start).Seconds(), err)
			lastErr = msg
		}
		if *pid > 0 && !alive(*pid) {
			fmt.Fprintf(os.Stderr, "kafkaready: broker process %d has exited\n", *pid)
			os.Exit(1)
		}
		select {
		case <-ctx.Done():
			fmt.Fprintf(os.Stderr, "kafkaready: not ready after %s (last error: %s)\n", *timeout, lastErr)
			os.Exit(1)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// roundTrip makes one attempt with a fresh transport, so no cached metadata
// or broken connection from a previous attempt is reused.
func roundTrip(parent context.Context, addrs []string, topic string, sec kafkaio.Security) error {
	ctx, cancel := context.WithTimeout(parent, 10*time.Second)
	defer cancel()

	transport, err := sec.Transport()
	if err != nil {
		return err
	}
	transport.DialTimeout, transport.MetadataTTL = 2*time.Second, time.Second
	defer transport.CloseIdleConnections()
	client := &kafka.Client{Addr: kafka.TCP(addrs...), Timeout: 5 * time.Second, Transport: transport}

	created, err := client.CreateTopics(ctx, &kafka.CreateTopicsRequest{
		Topics: []kafka.TopicConfig{{Topic: topic, NumPartitions: 1, ReplicationFactor: 1}},
	})
	if err != nil {
		return fmt.Errorf("create topic: %w", err)
	}
	if err := created.Errors[topic]; err != nil && !errors.Is(err, kafka.TopicAlreadyExists) {
		return fmt.Errorf("create topic: %w", err)
	}

	nonce := make([]byte, 8)
	if _, err := rand.Read(nonce); err != nil {
		return err
	}
	want := "ready-" + hex.EncodeToString(nonce)

	produced, err := client.Produce(ctx, &kafka.ProduceRequest{
		Topic:        topic,
		Partition:    0,
		RequiredAcks: kafka.RequireAll,
		Records:      kafka.NewRecordReader(kafka.Record{Value: kafka.NewBytes([]byte(want))}),
	})
	if err != nil {
		return fmt.Errorf("produce: %w", err)
	}
	if produced.Error != nil {
		return fmt.Errorf("produce: %w", produced.Error)
	}

	fetched, err := client.Fetch(ctx, &kafka.FetchRequest{
		Topic:     topic,
		Partition: 0,
		Offset:    produced.BaseOffset,
		MinBytes:  1,
		MaxBytes:  1 << 20,
		MaxWait:   time.Second,
	})
	if err != nil {
		return fmt.Errorf("fetch: %w", err)
	}
	if fetched.Error != nil {
		return fmt.Errorf("fetch: %w", fetched.Error)
	}
	for {
		rec, err := fetched.Records.ReadRecord()
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("fetch: record at offset %d not returned", produced.BaseOffset)
		}
		if err != nil {
			return fmt.Errorf("fetch: read record: %w", err)
		}
		if rec.Offset != produced.BaseOffset || rec.Value == nil {
			continue // a batch may start before the requested offset
		}
		got, err := kafka.ReadAll(rec.Value)
		if err != nil {
			return fmt.Errorf("fetch: read value: %w", err)
		}
		if string(got) != want {
			return fmt.Errorf("fetch: offset %d holds %q, want %q", rec.Offset, got, want)
		}
		break
	}

	// Consumer groups need the group coordinator, which needs the internal
	// __consumer_offsets topic; the first FindCoordinator creates it. Doing
	// it here keeps the first consumer-group test from paying for it (a
	// kafka-go Reader backs off 5 s after a failed join).
	coord, err := client.FindCoordinator(ctx, &kafka.FindCoordinatorRequest{
		Key: topic, KeyType: kafka.CoordinatorKeyTypeConsumer,
	})
	if err != nil {
		return fmt.Errorf("find group coordinator: %w", err)
	}
	if coord.Error != nil {
		return fmt.Errorf("find group coordinator: %w", coord.Error)
	}
	return nil
}

func splitBrokers(s string) []string {
	var out []string
	for _, b := range strings.Split(s, ",") {
		if b = strings.TrimSpace(b); b != "" {
			out = append(out, b)
		}
	}
	return out
}

// alive reports whether a process with this pid exists (signal 0 probe).
func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
