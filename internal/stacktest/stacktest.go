// Package stacktest gives tests a real Kafka broker and a real Elasticsearch
// node, plus uniquely named, self-cleaning topics and indices on them.
//
// # Contract
//
// Kafka(t) and ES(t) return where the services are:
//
//   - If KAFKA_BROKERS (comma-separated host:port list) or ES_URL is set, that
//     is used as is and nothing is started. CI and developers who keep a stack
//     running set them (deploy/local/stack.sh up prints the export line).
//   - Otherwise the first call in a test binary runs `deploy/local/stack.sh up`
//     (found by walking up from the working directory to go.mod), once per
//     binary (sync.Once; the script itself serialises concurrent binaries
//     with a lock and reuses a stack that is already up), and the defaults
//     127.0.0.1:9092 / http://127.0.0.1:9200 are returned.
//   - If the stack cannot be started the test fails (t.Fatalf with the script
//     output). It never skips: a test that needs Kafka or Elasticsearch and
//     cannot get them is a failure, not a pass.
//
// Nothing here stops the stack: it keeps running after the tests so the next
// `go test` reuses it. Stop it with `deploy/local/stack.sh down`.
//
// Topic(t, brokers, n) creates "tapline-test-<test name>-<random>" with n
// partitions, waits until every partition has a leader, and deletes the topic
// in t.Cleanup.
//
// Index(t, esURL, prefix) only returns a fresh lowercase name
// "<prefix>-<test name>-<random>"; the test creates what it needs under that
// exact name: a plain index, an alias, or a data stream (through an index
// template). By convention, an index template the test creates for it must
// be named exactly like the returned name, so that cleanup finds it. t.Cleanup
// then removes, for that exact name:
//
//   - a plain index: DELETE /<name>;
//   - an alias: the indices behind it;
//   - a data stream: DELETE /_data_stream/<name> where that API exists. The
//     integ-test distribution used by deploy/local (ES 8.19.16) has no
//     data-streams module, so that API answers 405 and neither the stream nor
//     its write index can be deleted ("index [...] is the write index for data
//     stream [...] and cannot be deleted"). Cleanup then deletes every backing
//     index it can and CLOSES the write index. A closed index holds no heap
//     and does not count against cluster.max_shards_per_node, but the stream
//     name and its (closed) write index stay in the cluster metadata until
//     `deploy/local/stack.sh down --wipe`. Names are unique, so this does not
//     leak into other tests;
//   - the composable index template named <name>. While a data stream still
//     uses it, ES refuses ("unable to remove composable templates [...] as they
//     are in use by a data streams [...]") and it stays, like the stream.
//
// Private(t, PrivateOptions{...}) starts a broker and/or a node of the
// test's own (state dir, free ports), for tests that stop them or need
// them configured differently; with Secure, in stack.sh's secure mode
// (SASL_SSL broker, https node with security on). Stack.Secure gives the
// CA and the credentials; Stack.Topic, Stack.Index and Stack.ESRequest
// work on the private services with them. Each start costs 15–60 s on
// this machine: start one per test binary, and share it among subtests.
package stacktest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
)

// Used when KAFKA_BROKERS / ES_URL are not set; they match deploy/local/stack.sh.
const (
	defaultKafkaBroker = "127.0.0.1:9092"
	defaultESURL       = "http://127.0.0.1:9200"
)

var (
	stackOnce sync.Once
	stackOut  string
	stackErr  error
)

// Kafka returns the bootstrap brokers: $KAFKA_BROKERS, or the local stack
// (started if needed) at 127.0.0.1:9092.
func Kafka(t testing.TB) []string {
	t.Helper()
	if env := strings.TrimSpace(os.Getenv("KAFKA_BROKERS")); env != "" {
		var brokers []string
		for _, b := range strings.Split(env, ",") {
			if b = strings.TrimSpace(b); b != "" {
				brokers = append(brokers, b)
			}
		}
		if len(brokers) > 0 {
			return brokers
		}
	}
	ensureStack(t)
	return []string{defaultKafkaBroker}
}

// ES returns the Elasticsearch base URL (no trailing slash): $ES_URL, or the
// local stack (started if needed) at http://127.0.0.1:9200.
func ES(t testing.TB) string {
	t.Helper()
	if env := strings.TrimSpace(os.Getenv("ES_URL")); env != "" {
		return strings.TrimRight(env, "/")
	}
	ensureStack(t)
	return defaultESURL
}

// ensureStack runs `deploy/local/stack.sh up` once per test binary.
func ensureStack(t testing.TB) {
	t.Helper()
	stackOnce.Do(func() {
		root, err := repoRoot()
		if err != nil {
			stackErr = err
			return
		}
		script := filepath.Join(root, "deploy", "local", "stack.sh")
		// Generous: the script waits up to 600 s for a concurrent `up` from
		// another test binary, then up to 180 s for Elasticsearch.
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "bash", script, "up")
		cmd.Dir = root
		cmd.WaitDelay = 10 * time.Second // never hang on a pipe kept open by a stray child
		start := time.Now()
		out, err := cmd.CombinedOutput()
		stackOut = string(out)
		if err != nil {
			stackErr = fmt.Errorf("%s up: %w (after %s)", script, err, time.Since(start).Round(time.Second))
			return
		}
		t.Logf("stacktest: %s up took %s:\n%s", script, time.Since(start).Round(100*time.Millisecond), out)
	})
	if stackErr != nil {
		t.Fatalf("stacktest: cannot start the local stack: %v\n%s", stackErr, stackOut)
	}
}

// repoRoot walks up from the working directory (a test runs in its package
// directory) to the directory holding go.mod; it falls back to this source
// file's location.
func repoRoot() (string, error) {
	var starts []string
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if _, file, _, ok := runtime.Caller(0); ok {
		starts = append(starts, filepath.Dir(file))
	}
	for _, dir := range starts {
		for d := dir; ; d = filepath.Dir(d) {
			if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
				if _, err := os.Stat(filepath.Join(d, "deploy", "local", "stack.sh")); err == nil {
					return d, nil
				}
			}
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	return "", fmt.Errorf("no go.mod with deploy/local/stack.sh above %v", starts)
}

// ------------------------------------------------------------------ Kafka --

// Topic creates a uniquely named topic with the given number of partitions
// (replication factor: the broker default), waits until all partitions have a
// leader, and deletes the topic when the test ends.
func Topic(t testing.TB, brokers []string, partitions int) string {
	t.Helper()
	return topic(t, kafkaConn{brokers: brokers}, partitions)
}

// kafkaConn is where a broker is and how to connect to it: plaintext for
// the shared stack, TLS and SASL for a secure private one.
type kafkaConn struct {
	brokers []string
	tls     *tls.Config    // nil: plaintext
	sasl    sasl.Mechanism // nil: none
}

func (k kafkaConn) transport() *kafka.Transport {
	return &kafka.Transport{DialTimeout: 5 * time.Second, TLS: k.tls, SASL: k.sasl}
}

func (k kafkaConn) dialer() *kafka.Dialer {
	return &kafka.Dialer{Timeout: 5 * time.Second, TLS: k.tls, SASLMechanism: k.sasl}
}

func topic(t testing.TB, kc kafkaConn, partitions int) string {
	t.Helper()
	brokers := kc.brokers
	if partitions < 1 {
		t.Fatalf("stacktest.Topic: partitions must be >= 1, got %d", partitions)
	}
	if len(brokers) == 0 {
		t.Fatalf("stacktest.Topic: no brokers")
	}
	name := topicName(t.Name(), randomHex(6))

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	transport := kc.transport()
	defer transport.CloseIdleConnections()
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 30 * time.Second, Transport: transport}

	res, err := client.CreateTopics(ctx, &kafka.CreateTopicsRequest{
		Topics: []kafka.TopicConfig{{Topic: name, NumPartitions: partitions, ReplicationFactor: -1}},
	})
	if err == nil {
		err = res.Errors[name]
	}
	if err != nil {
		t.Fatalf("stacktest.Topic: create %s (%d partitions) on %v: %v", name, partitions, brokers, err)
	}
	t.Cleanup(func() { deleteTopic(t, kc, name) })

	if err := waitForLeaders(ctx, kc, name, partitions); err != nil {
		t.Fatalf("stacktest.Topic: %s: %v", name, err)
	}
	return name
}

func deleteTopic(t testing.TB, kc kafkaConn, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	transport := kc.transport()
	defer transport.CloseIdleConnections()
	client := &kafka.Client{Addr: kafka.TCP(kc.brokers...), Timeout: 30 * time.Second, Transport: transport}
	res, err := client.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: []string{name}})
	if err == nil {
		err = res.Errors[name]
	}
	if err != nil && !errors.Is(err, kafka.UnknownTopicOrPartition) {
		t.Errorf("stacktest: delete topic %s: %v", name, err)
	}
}

// waitForLeaders polls the cluster metadata until topic has the expected
// number of partitions, each with a leader.
func waitForLeaders(ctx context.Context, kc kafkaConn, topic string, partitions int) error {
	var last string
	for {
		parts, err := topicPartitions(ctx, kc, topic)
		switch {
		case err != nil:
			last = err.Error()
		case len(parts) != partitions:
			last = fmt.Sprintf("metadata shows %d of %d partitions", len(parts), partitions)
		default:
			missing := 0
			for _, p := range parts {
				if p.Leader.Host == "" {
					missing++
				}
			}
			if missing == 0 {
				return nil
			}
			last = fmt.Sprintf("%d of %d partitions have no leader yet", missing, partitions)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("partitions not ready: %s", last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// topicPartitions returns the partitions the cluster metadata currently shows
// for topic (none if the topic does not exist). It lists all topics, because
// asking for one topic by name would auto-create it on a broker with
// auto.create.topics.enable=true.
func topicPartitions(ctx context.Context, kc kafkaConn, topic string) ([]kafka.Partition, error) {
	var errs []error
	for _, b := range kc.brokers {
		conn, err := kc.dialer().DialContext(ctx, "tcp", b)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if dl, ok := ctx.Deadline(); ok {
			_ = conn.SetDeadline(dl)
		} else {
			_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		}
		all, err := conn.ReadPartitions()
		conn.Close()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var parts []kafka.Partition
		for _, p := range all {
			if p.Topic == topic {
				parts = append(parts, p)
			}
		}
		return parts, nil
	}
	return nil, fmt.Errorf("metadata from %v: %w", kc.brokers, errors.Join(errs...))
}

var invalidTopicChars = regexp.MustCompile(`[^a-zA-Z0-9._-]+`)

// topicName builds "tapline-test-<sanitized test name>-<suffix>". Kafka allows
// [a-zA-Z0-9._-] and at most 249 characters.
func topicName(testName, suffix string) string {
	s := strings.Trim(invalidTopicChars.ReplaceAllString(testName, "_"), "_")
	if len(s) > 100 {
		s = s[:100]
	}
	if s == "" {
		s = "test"
	}
	return "tapline-test-" + s + "-" + suffix
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// ---------------------------------------------------------- Elasticsearch --

var (
	validPrefix       = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)
	invalidIndexChars = regexp.MustCompile(`[^a-z0-9._-]+`)
)

// Index returns a unique lowercase name "<prefix>-<test name>-<random>" for
// an index, alias or data stream, and registers a cleanup that removes
// whatever the test created under that exact name, plus the composable index
// template of the same name (see the package documentation for what the
// integ-test Elasticsearch cannot delete).
func Index(t testing.TB, esURL, prefix string) string {
	t.Helper()
	name, err := indexName(prefix, t.Name(), randomHex(4))
	if err != nil {
		t.Fatalf("stacktest.Index: %v", err)
	}
	es := esConn{url: strings.TrimRight(esURL, "/"), client: esClient}
	t.Cleanup(func() { cleanupIndex(t, es, name) })
	return name
}

// esConn is where an Elasticsearch node is and how to talk to it: plain
// HTTP for the shared stack, https with the superuser for a secure
// private one.
type esConn struct {
	url            string
	client         *http.Client
	user, password string // basic auth; none when empty
}

func indexName(prefix, testName, suffix string) (string, error) {
	prefix = strings.ToLower(prefix)
	if prefix == "" {
		prefix = "tapline-test"
	}
	if !validPrefix.MatchString(prefix) || strings.HasPrefix(prefix, ".ds-") {
		return "", fmt.Errorf("prefix %q: use lowercase letters, digits, '.', '_' and '-', not starting with a symbol", prefix)
	}
	s := strings.Trim(invalidIndexChars.ReplaceAllString(strings.ToLower(testName), "_"), "_")
	if len(s) > 60 {
		s = s[:60]
	}
	sep := "-"
	if strings.HasSuffix(prefix, "-") || strings.HasSuffix(prefix, "_") || strings.HasSuffix(prefix, ".") {
		sep = ""
	}
	name := prefix + sep
	if s != "" {
		name += s + "-"
	}
	name += suffix
	if len(name) > 255 {
		return "", fmt.Errorf("prefix %q is too long", prefix)
	}
	return name, nil
}

// resolved is the part of GET /_resolve/index/<name> that cleanup needs.
type resolved struct {
	Indices []struct {
		Name       string   `json:"name"`
		Attributes []string `json:"attributes"`
		DataStream string   `json:"data_stream"`
	} `json:"indices"`
	Aliases []struct {
		Name    string   `json:"name"`
		Indices []string `json:"indices"`
	} `json:"aliases"`
	DataStreams []struct {
		Name           string   `json:"name"`
		BackingIndices []string `json:"backing_indices"`
	} `json:"data_streams"`
}

func cleanupIndex(t testing.TB, es esConn, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	fail := func(format string, args ...any) {
		t.Errorf("stacktest: cleanup of %q: "+format, append([]any{name}, args...)...)
	}

	var r resolved
	code, body, err := es.do(ctx, http.MethodGet, "/_resolve/index/"+url.PathEscape(name)+"?expand_wildcards=all", nil)
	switch {
	case err != nil:
		fail("%v", err)
		return
	case code == http.StatusNotFound:
		// Nothing under that name (older ES answer for a missing name).
	case code != http.StatusOK:
		fail("GET _resolve/index: %d %s", code, body)
		return
	default:
		if err := json.Unmarshal(body, &r); err != nil {
			fail("GET _resolve/index: %v: %s", err, body)
			return
		}
	}

	for _, ds := range r.DataStreams {
		if ds.Name != name {
			continue
		}
		// The proper way, where the data-streams module exists.
		dsCode, _, err := es.do(ctx, http.MethodDelete, "/_data_stream/"+url.PathEscape(name), nil)
		if err != nil {
			fail("DELETE _data_stream: %v", err)
			return
		}
		if dsCode == http.StatusOK {
			continue
		}
		// Integ-test distribution: 405. Delete what can be deleted, close
		// the write index (ES refuses to delete it).
		var closed []string
		for _, idx := range ds.BackingIndices {
			code, body, err := es.do(ctx, http.MethodDelete, "/"+url.PathEscape(idx), nil)
			if err != nil {
				fail("DELETE %s: %v", idx, err)
				continue
			}
			if code == http.StatusOK || code == http.StatusNotFound {
				continue
			}
			if !bytes.Contains(body, []byte("is the write index for data stream")) {
				fail("DELETE %s: %d %s", idx, code, body)
				continue
			}
			code, body, err = es.do(ctx, http.MethodPost, "/"+url.PathEscape(idx)+"/_close", nil)
			if err != nil || code != http.StatusOK {
				fail("POST %s/_close: %d %s %v", idx, code, body, err)
				continue
			}
			closed = append(closed, idx)
		}
		t.Logf("stacktest: ES cannot delete data stream %s here (DELETE /_data_stream answered %d); "+
			"deleted its other backing indices and closed write index %v", name, dsCode, closed)
	}

	for _, a := range r.Aliases {
		if a.Name != name {
			continue
		}
		for _, idx := range a.Indices {
			if code, body, err := es.do(ctx, http.MethodDelete, "/"+url.PathEscape(idx), nil); err != nil ||
				(code != http.StatusOK && code != http.StatusNotFound) {
				fail("DELETE %s (behind alias): %d %s %v", idx, code, body, err)
			}
		}
	}

	for _, idx := range r.Indices {
		if idx.Name != name || idx.DataStream != "" {
			continue
		}
		if code, body, err := es.do(ctx, http.MethodDelete, "/"+url.PathEscape(name), nil); err != nil ||
			(code != http.StatusOK && code != http.StatusNotFound) {
			fail("DELETE index: %d %s %v", code, body, err)
		}
	}

	// The index template named like the index, by convention.
	code, body, err = es.do(ctx, http.MethodDelete, "/_index_template/"+url.PathEscape(name), nil)
	switch {
	case err != nil:
		fail("DELETE _index_template: %v", err)
	case code == http.StatusOK || code == http.StatusNotFound:
	case code == http.StatusBadRequest && bytes.Contains(body, []byte("in use by a data stream")):
		// Expected on the integ-test distribution: the stream could not go.
	default:
		fail("DELETE _index_template: %d %s", code, body)
	}
}

var esClient = &http.Client{
	Timeout: 30 * time.Second,
	Transport: &http.Transport{
		Proxy:               nil, // always direct: the stack is on loopback
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 4,
	},
}

// do sends one request for path (from the base URL) and returns the
// status and body.
func (es esConn) do(ctx context.Context, method, path string, body []byte) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, es.url+path, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if es.user != "" {
		req.SetBasicAuth(es.user, es.password)
	}
	res, err := es.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	return res.StatusCode, b, err
}

// esDo sends one request to the full URL u on the shared (plain) node.
func esDo(ctx context.Context, method, u string, body []byte) (int, []byte, error) {
	return esConn{client: esClient}.do(ctx, method, u, body)
}
