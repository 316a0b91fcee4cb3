package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tapline/tapline/internal/stacktest"
	"github.com/tapline/tapline/schema"
	"google.golang.org/protobuf/proto"
)

// TestLargeBodiesThroughKafka: an exchange whose request and response are
// 700 KiB each (under the 1 MiB body cap, together over Kafka's 1 MiB
// record limit) goes through the real Kafka. Import cuts the response,
// marked truncated, to fit the record, and keeps the request whole; the
// replay sends all of it to a staging that answers 900 KiB, and fits the
// result: the request (sent, never compared) is emptied first, then
// staging's answer is cut. Before, the import counted the exchange as
// failed, and the replay stopped with "message too large" at the same
// batch after every restart.
func TestLargeBodiesThroughKafka(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	brokers := stacktest.Kafka(t)
	exchanges := stacktest.Topic(t, brokers, 1)
	results := stacktest.Topic(t, brokers, 1)
	kafkaURL := func(topic string) string { return "kafka://" + strings.Join(brokers, ",") + "/" + topic }

	// Random bytes: no codec shrinks them, as with gzip-encoded bodies, so
	// the records really are as large as they look.
	random := func(n int) string {
		b := make([]byte, n)
		rand.Read(b)
		return string(b)
	}
	upload, download := random(700<<10), random(700<<10)
	gorFile := filepath.Join(t.TempDir(), "big.gor")
	gor := fmt.Sprintf("1 aa01 1764302400000000000 0\nPOST /upload HTTP/1.1\r\nHost: shop.example\r\nContent-Length: %d\r\n\r\n%s\n🐵🙈🙉\n"+
		"2 aa01 1764302400002000000 2000000\nHTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s\n🐵🙈🙉\n", len(upload), upload, len(download), download)
	if err := os.WriteFile(gorFile, []byte(gor), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, log, err := runTaplineOut(ctx, "import", "--gor", gorFile, "--to", kafkaURL(exchanges)); err != nil || !strings.Contains(log, "published=1 ") ||
		!strings.Contains(log, "bodies_cut=1") {
		t.Fatalf("import: %v; want published=1 and bodies_cut=1 in:\n%s", err, log)
	}
	recs := stacktest.ReadTopic(t, brokers, exchanges)
	if len(recs) != 1 {
		t.Fatalf("%d records in the exchanges topic, want 1", len(recs))
	}
	ex, err := schema.DecodeExchange(recs[0].Value, recs[0].Headers)
	if err != nil {
		t.Fatal(err)
	}
	q, s := ex.GetRequest(), ex.GetResponse()
	if string(q.Body) != upload || q.BodyTruncated || len(s.Body) < 250<<10 || !s.BodyTruncated || s.BodySize != int64(len(download)) {
		t.Fatalf("stored exchange: request %d of %d bytes (truncated %v), response %d of %d (%v); want the request whole, the response cut",
			len(q.Body), q.BodySize, q.BodyTruncated, len(s.Body), s.BodySize, s.BodyTruncated)
	}

	var got atomic.Int64 // the handler runs on the server's goroutines
	answer := random(900 << 10)
	staging := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		got.Add(n)
		w.Write([]byte(answer))
	}))
	defer staging.Close()
	log, err := runTapline(ctx, "replay", "--from", kafkaURL(exchanges), "--to", kafkaURL(results), "--since", "2025-11-28T03:00:00Z",
		"--until", "2025-11-28T05:00:00Z", "--target", "staging="+staging.URL, "--allow-method", "POST")
	if err != nil || !strings.Contains(log, "replayed=1 ") || !strings.Contains(log, "bodies_cut=2") {
		t.Fatalf("replay: %v; want replayed=1 and bodies_cut=2 in:\n%s", err, log)
	}
	out := stacktest.ReadTopic(t, brokers, results)
	if len(out) != 1 {
		t.Fatalf("%d results, want 1", len(out))
	}
	res, err := schema.DecodeReplayResult(out[0].Value, out[0].Headers)
	if err != nil {
		t.Fatal(err)
	}
	req, prod, stag := res.GetExchange().GetRequest(), res.GetExchange().GetResponse(), res.GetOutcomes()[0].GetResponse()
	if stag == nil || len(req.Body) != 0 || !req.BodyTruncated || len(prod.Body) != len(s.Body) || !stag.BodyTruncated ||
		len(stag.Body) < len(prod.Body) || stag.BodySize != int64(len(answer)) || proto.Size(res) > 1<<20 {
		t.Fatalf("result: request %d bytes (truncated %v), production %d, staging %v; want the request emptied, production's stored answer, staging's cut to fit",
			len(req.Body), req.BodyTruncated, len(prod.Body), stag.GetBodySize())
	}
	if got.Load() != int64(len(upload)) {
		t.Errorf("staging got a %d-byte request body, want the whole %d", got.Load(), len(upload))
	}
}
