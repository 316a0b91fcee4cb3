package stacktest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/elastic/go-elasticsearch/v8"
	"github.com/segmentio/kafka-go"
)

// These tests run against the real stack: they start it through
// deploy/local/stack.sh unless KAFKA_BROKERS / ES_URL are set.

func TestTopicName(t *testing.T) {
	valid := regexp.MustCompile(`^[a-zA-Z0-9._-]{1,249}$`)
	for _, name := range []string{
		"TestX",
		"TestX/sub_test#01",
		"Test with spaces/and ünïcode/" + strings.Repeat("x", 400),
		"///",
	} {
		got := topicName(name, "0123456789ab")
		if !valid.MatchString(got) || !strings.HasPrefix(got, "tapline-test-") || !strings.HasSuffix(got, "-0123456789ab") {
			t.Errorf("topicName(%q) = %q: not a valid tapline-test-*-suffix topic name", name, got)
		}
	}
}

func TestIndexName(t *testing.T) {
	valid := regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,254}$`)
	for _, tc := range []struct{ prefix, test, want string }{
		{"tapline-events", "TestX/Sub", "tapline-events-testx_sub-00ff"},
		{"Logs-", "TestX", "logs-testx-00ff"},
		{"", "TestX", "tapline-test-testx-00ff"},
	} {
		got, err := indexName(tc.prefix, tc.test, "00ff")
		if err != nil || got != tc.want || !valid.MatchString(got) {
			t.Errorf("indexName(%q, %q) = %q, %v; want %q", tc.prefix, tc.test, got, err, tc.want)
		}
	}
	for _, bad := range []string{"-x", "_x", "a b", "a*", ".ds-x"} {
		if got, err := indexName(bad, "TestX", "00ff"); err == nil {
			t.Errorf("indexName(%q) = %q, want an error", bad, got)
		}
	}
}

func TestTopicCreatedAndDeleted(t *testing.T) {
	brokers := Kafka(t)
	const partitions = 3
	var name string
	t.Run("use", func(t *testing.T) {
		name = Topic(t, brokers, partitions)
		if !strings.HasPrefix(name, "tapline-test-TestTopicCreatedAndDeleted_use-") {
			t.Errorf("unexpected topic name %q", name)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		parts, err := topicPartitions(ctx, kafkaConn{brokers: brokers}, name)
		if err != nil {
			t.Fatal(err)
		}
		if len(parts) != partitions {
			t.Fatalf("topic %s has %d partitions, want %d", name, len(parts), partitions)
		}
		for _, p := range parts {
			if p.Leader.Host == "" {
				t.Errorf("partition %d has no leader", p.ID)
			}
		}
	})
	// The subtest's cleanup has run: the topic must be gone.
	deadline := time.Now().Add(15 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		parts, err := topicPartitions(ctx, kafkaConn{brokers: brokers}, name)
		cancel()
		if err == nil && len(parts) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("topic %s still present after cleanup: %d partitions, err %v", name, len(parts), err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Kafka 4.x dropped old protocol versions; this checks that kafka-go's
// producer and consumer-group paths (JoinGroup/SyncGroup/OffsetCommit) work
// against the broker the stack runs.
func TestTopicProduceConsumeWithGroup(t *testing.T) {
	brokers := Kafka(t)
	topic := Topic(t, brokers, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: topic, RequiredAcks: kafka.RequireAll, BatchTimeout: 10 * time.Millisecond}
	const n = 10
	var msgs []kafka.Message
	for i := 0; i < n; i++ {
		msgs = append(msgs, kafka.Message{Key: []byte(fmt.Sprint(i)), Value: []byte(fmt.Sprintf("v%d", i))})
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatalf("write: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers: brokers, Topic: topic, GroupID: topic + "-group",
		StartOffset: kafka.FirstOffset, MaxWait: 200 * time.Millisecond,
	})
	defer r.Close()
	seen := map[string]bool{}
	for len(seen) < n {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			t.Fatalf("fetch after %d/%d messages: %v", len(seen), n, err)
		}
		seen[string(m.Value)] = true
		if err := r.CommitMessages(ctx, m); err != nil {
			t.Fatalf("commit: %v", err)
		}
	}
}

// resolve returns GET /_resolve/index/<name>?expand_wildcards=all (empty
// when ES answers 404 for a concrete name that does not exist).
func resolve(t *testing.T, esURL, name string) resolved {
	t.Helper()
	code, body, err := esDo(context.Background(), http.MethodGet, esURL+"/_resolve/index/"+name+"?expand_wildcards=all", nil)
	if err == nil && code == http.StatusNotFound {
		return resolved{}
	}
	if err != nil || code != http.StatusOK {
		t.Fatalf("resolve %s: %d %s %v", name, code, body, err)
	}
	var r resolved
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

func mustES(t *testing.T, method, u, body string, want int) []byte {
	t.Helper()
	var b []byte
	if body != "" {
		b = []byte(body)
	}
	code, res, err := esDo(context.Background(), method, u, b)
	if err != nil || code != want {
		t.Fatalf("%s %s: got %d %s %v, want %d", method, u, code, res, err, want)
	}
	return res
}

func TestIndexPlainRemoved(t *testing.T) {
	esURL := ES(t)
	var name string
	t.Run("use", func(t *testing.T) {
		name = Index(t, esURL, "tapline-stacktest")
		if !strings.HasPrefix(name, "tapline-stacktest-") || name != strings.ToLower(name) {
			t.Fatalf("unexpected index name %q", name)
		}
		// A template named like the index (the convention), then an index
		// auto-created from it.
		mustES(t, http.MethodPut, esURL+"/_index_template/"+name,
			`{"index_patterns":["`+name+`"],"priority":500,"template":{"settings":{"number_of_replicas":0}}}`, 200)
		mustES(t, http.MethodPost, esURL+"/"+name+"/_doc?refresh=true", `{"@timestamp":"2025-01-01T00:00:00Z","k":"a"}`, 201)
		if r := resolve(t, esURL, name); len(r.Indices) != 1 {
			t.Fatalf("index %s not created: %+v", name, r)
		}
	})
	if r := resolve(t, esURL, name); len(r.Indices)+len(r.Aliases)+len(r.DataStreams) != 0 {
		t.Errorf("still present after cleanup: %+v", r)
	}
	mustES(t, http.MethodGet, esURL+"/_index_template/"+name, "", 404)
}

func TestIndexAliasRemoved(t *testing.T) {
	esURL := ES(t)
	var name, backing string
	t.Run("use", func(t *testing.T) {
		name = Index(t, esURL, "tapline-stacktest-alias")
		backing = name + "-000001"
		mustES(t, http.MethodPut, esURL+"/"+backing,
			`{"settings":{"number_of_replicas":0},"aliases":{"`+name+`":{"is_write_index":true}}}`, 200)
		mustES(t, http.MethodPost, esURL+"/"+name+"/_doc?refresh=true", `{"k":"a"}`, 201)
	})
	if r := resolve(t, esURL, name+"*"); len(r.Indices)+len(r.Aliases)+len(r.DataStreams) != 0 {
		t.Errorf("still present after cleanup: %+v", r)
	}
}

func TestIndexDataStreamRemoved(t *testing.T) {
	esURL := ES(t)
	var name string
	t.Run("use", func(t *testing.T) {
		name = Index(t, esURL, "tapline-stacktest-ds")
		mustES(t, http.MethodPut, esURL+"/_index_template/"+name,
			`{"index_patterns":["`+name+`"],"data_stream":{},"priority":500,"template":{"settings":{"number_of_replicas":0}}}`, 200)
		res := mustES(t, http.MethodPost, esURL+"/"+name+"/_bulk?refresh=true",
			`{"create":{}}`+"\n"+`{"@timestamp":"2025-01-01T00:00:00Z","k":"a"}`+"\n", 200)
		if strings.Contains(string(res), `"errors":true`) {
			t.Fatalf("bulk: %s", res)
		}
		// Roll over once so cleanup meets a non-write backing index too.
		mustES(t, http.MethodPost, esURL+"/"+name+"/_rollover", "", 200)
		if r := resolve(t, esURL, name); len(r.DataStreams) != 1 || len(r.DataStreams[0].BackingIndices) != 2 {
			t.Fatalf("data stream %s not as expected: %+v", name, r)
		}
	})

	r := resolve(t, esURL, name)
	if len(r.DataStreams) == 0 {
		return // a full ES deleted the stream (DELETE /_data_stream works there)
	}
	// Integ-test distribution: the stream stays, but nothing of it is open.
	ds := r.DataStreams[0]
	if len(ds.BackingIndices) != 1 {
		t.Errorf("want only the (closed) write index left, got %v", ds.BackingIndices)
	}
	for _, idx := range resolve(t, esURL, ".ds-"+name+"-*").Indices {
		if !contains(idx.Attributes, "closed") {
			t.Errorf("backing index %s is not closed: %v", idx.Name, idx.Attributes)
		}
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// go-elasticsearch v8 checks only the X-Elastic-Product header of the first
// 2xx answer, so it accepts the integ-test distribution. GET / (Info, Ping)
// is not served there (no rest-root module): use _cluster/health instead.
func TestGoElasticsearchClient(t *testing.T) {
	es, err := elasticsearch.NewClient(elasticsearch.Config{Addresses: []string{ES(t)}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := es.Cluster.Health(es.Cluster.Health.WithWaitForStatus("yellow"))
	if err != nil {
		t.Fatalf("cluster health through go-elasticsearch: %v", err)
	}
	res.Body.Close()
	if res.IsError() {
		t.Fatalf("cluster health: %s", res.Status())
	}
	info, err := es.Info()
	if err != nil {
		t.Fatalf("Info: %v", err)
	}
	info.Body.Close()
	t.Logf("es.Info() answered %s (405 on the integ-test distribution: no rest-root module)", info.Status())
}
