// Package stream names where records go and come from: the Record that
// every transport carries, and the endpoint URLs of DESIGN.md
// (kafka://brokers/topic, file://dir).
//
// It holds no transport code: internal/kafkaio implements Kafka,
// internal/filelog the embedded file log (file://).
package stream

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/tapline/tapline/schema"
)

// Record is one message on a stream: a key that decides the partition, a
// value, and headers naming its schema. Partition and Offset are set on
// records read from a source and are what a commit acknowledges.
type Record struct {
	Key       []byte
	Value     []byte
	Headers   []schema.RecordHeader
	Time      time.Time
	Partition int
	Offset    int64
}

// SizeLimited is implemented by outputs that refuse a record over a size:
// kafkaio.Producer (kafkaio.MaxRecordBytes, just under Kafka's 1 MiB). The stages cut the bodies of a
// record that would be over it (schema.FitExchange) instead of losing it.
type SizeLimited interface {
	// MaxRecordBytes is the largest record the output takes: key, value,
	// headers and the transport's framing of them.
	MaxRecordBytes() int
}

// ValueLimit is how many bytes of value a record with this key and these
// headers may have to be taken by out, or 0 when out takes any size.
func ValueLimit(out any, key []byte, headers []schema.RecordHeader) int {
	l, ok := out.(SizeLimited)
	if !ok {
		return 0
	}
	// Room for framing: Kafka's counts about 30 bytes a record and a few
	// per header.
	n := l.MaxRecordBytes() - len(key) - 64
	for _, h := range headers {
		n -= len(h.Key) + len(h.Value) + 10
	}
	return max(n, 1)
}

// Scheme is the kind of endpoint.
type Scheme string

const (
	SchemeKafka Scheme = "kafka"
	SchemeFile  Scheme = "file"
)

// Endpoint is a parsed stream URL.
type Endpoint struct {
	Scheme  Scheme
	Brokers []string // kafka: host:port of each bootstrap broker
	Topic   string   // kafka: the topic
	Path    string   // file: the directory of the log
}

func (e Endpoint) String() string {
	switch e.Scheme {
	case SchemeKafka:
		return "kafka://" + strings.Join(e.Brokers, ",") + "/" + e.Topic
	case SchemeFile:
		return "file://" + e.Path
	}
	return string(e.Scheme) + "://?"
}

// ParseURL parses kafka://host:9092[,host2:9092]/topic or file://dir. A
// broker without a port gets :9092.
func ParseURL(raw string) (Endpoint, error) {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return Endpoint{}, fmt.Errorf("endpoint %q: want kafka://host:9092/topic or file://dir", raw)
	}
	switch Scheme(scheme) {
	case SchemeKafka:
		if strings.Contains(rest, "@") {
			// Not repeated in the message: it may hold a password. A topic
			// name cannot contain "@".
			return Endpoint{}, errors.New("kafka:// endpoint holds credentials (user:password@): they would show in ps and in logs; " +
				"give the user with --kafka-username (and --kafka-sasl), the password with --kafka-password-file or the command's KAFKA_PASSWORD variable")
		}
		hosts, topic, _ := strings.Cut(rest, "/")
		if hosts == "" {
			return Endpoint{}, fmt.Errorf("endpoint %q: no broker address (want kafka://host:9092/topic)", raw)
		}
		topic, err := url.PathUnescape(topic)
		if err != nil || !validTopic(topic) {
			return Endpoint{}, fmt.Errorf("endpoint %q: topic %q is not a valid Kafka topic name (1-249 of [a-zA-Z0-9._-])", raw, topic)
		}
		var brokers []string
		for _, h := range strings.Split(hosts, ",") {
			if h == "" {
				return Endpoint{}, fmt.Errorf("endpoint %q: empty broker address", raw)
			}
			if !strings.Contains(h, ":") {
				h += ":9092"
			}
			brokers = append(brokers, h)
		}
		return Endpoint{Scheme: SchemeKafka, Brokers: brokers, Topic: topic}, nil
	case SchemeFile:
		if rest == "" {
			return Endpoint{}, fmt.Errorf("endpoint %q: no directory (want file://path/to/dir)", raw)
		}
		return Endpoint{Scheme: SchemeFile, Path: rest}, nil
	}
	return Endpoint{}, fmt.Errorf("endpoint %q: unknown scheme %q (want kafka:// or file://)", raw, scheme)
}

func validTopic(t string) bool {
	if t == "" || len(t) > 249 || t == "." || t == ".." {
		return false
	}
	for _, c := range t {
		ok := c == '.' || c == '_' || c == '-' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
		if !ok {
			return false
		}
	}
	return true
}

// HeaderDLQReason is the record header that says why a record was sent to
// the dead-letter topic.
const HeaderDLQReason = "tapline-dlq-reason"

// DeadLetter returns a copy of rec for the dead-letter topic: the original
// key, value and headers, plus a header with the reason. Partition and
// offset are not carried over; the source position goes into the reason.
func DeadLetter(rec Record, reason string) Record {
	hs := make([]schema.RecordHeader, 0, len(rec.Headers)+1)
	hs = append(hs, rec.Headers...)
	hs = append(hs, schema.RecordHeader{Key: HeaderDLQReason, Value: []byte(reason)})
	return Record{Key: rec.Key, Value: rec.Value, Headers: hs, Time: rec.Time}
}
