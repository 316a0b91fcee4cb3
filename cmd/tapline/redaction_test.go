package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tapline/tapline/internal/stacktest"
	"github.com/tapline/tapline/internal/stream"
)

// The secrets TestRedactionEndToEnd sends, and where.
const (
	secretToken     = "SECRET-TOKEN-3f9a"     // request Authorization: Bearer …
	secretCookie    = "SECRET-COOKIE-77c1"    // request Cookie: sid=…
	secretPassword  = "SECRET-PASS-a1b2"      // response JSON field "password"
	secretSetCookie = "SECRET-SETCOOKIE-9d0e" // response Set-Cookie: session=…
)

// TestRedactionEndToEnd records live traffic that carries a secret in a
// request header, a cookie, a JSON response field and a Set-Cookie, with
// redaction configured, replays it to a staging that answers with the
// same secrets, and analyzes the results into Elasticsearch (issue 7).
// Then every Kafka record (exchanges and results, values and headers) and
// every Elasticsearch document is searched for the secrets, and none is
// found; the pseudonyms of production's and staging's responses are the
// same, so every pair is a match.
func TestRedactionEndToEnd(t *testing.T) {
	brokers := stacktest.Kafka(t)
	esURL := stacktest.ES(t)
	exchanges, results := stacktest.Topic(t, brokers, 2), stacktest.Topic(t, brokers, 2)
	dataStream := stacktest.Index(t, esURL, "tapline-pairs-redact")
	kafkaURL := func(topic string) string { return "kafka://" + strings.Join(brokers, ",") + "/" + topic }
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	keyFile := filepath.Join(t.TempDir(), "redact.key")
	if err := os.WriteFile(keyFile, []byte("0123456789abcdef0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	redact := []string{"--redact-preset", "--redact-json", "password", "--redact-key-file", keyFile}

	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "session", Value: secretSetCookie, Path: "/"})
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"user":"alice","password":%q,"path":%q}`, secretPassword, r.URL.Path)
	})
	prod := httptest.NewServer(app)
	defer prod.Close()
	staging := httptest.NewServer(app)
	defer staging.Close()
	_, port, _ := net.SplitHostPort(prod.Listener.Addr().String())

	// Record from lo while the client sends n requests.
	rctx, stopRecord := context.WithCancel(ctx)
	var rlog syncBuffer
	recorded := make(chan error, 1)
	go func() {
		recorded <- newApp(io.Discard, &rlog).RunContext(rctx, append([]string{"tapline", "record", "--iface", "lo", "--port", port,
			"--to", kafkaURL(exchanges)}, redact...))
	}()
	for !strings.Contains(rlog.String(), "capturing") {
		select {
		case err := <-recorded:
			t.Fatalf("record exited at start: %v\n%s", err, rlog.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	const n = 20
	for i := range n {
		req, _ := http.NewRequest("GET", fmt.Sprintf("%s/account/%d", prod.URL, i), nil)
		req.Header.Set("Authorization", "Bearer "+secretToken)
		req.Header.Set("Cookie", "sid="+secretCookie+"; theme=dark")
		resp, err := prod.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	for len(stacktest.ReadTopic(t, brokers, exchanges)) < n {
		select {
		case err := <-recorded:
			t.Fatalf("record exited: %v\n%s", err, rlog.String())
		case <-ctx.Done():
			t.Fatalf("fewer than %d exchanges recorded:\n%s", n, rlog.String())
		case <-time.After(300 * time.Millisecond):
		}
	}
	stopRecord()
	if err := <-recorded; err != nil {
		t.Fatalf("record: %v\n%s", err, rlog.String())
	}

	replayOut, replayLog, err := runTaplineOut(ctx, append([]string{"replay", "--from", kafkaURL(exchanges), "--since", "-1h", "--speed", "0",
		"--to", kafkaURL(results), "--target", "staging=" + staging.URL}, redact...)...)
	if err != nil {
		t.Fatalf("replay: %v\n%s", err, replayLog)
	}
	if summaryCount(replayLog, "replayed") != n || summaryCount(replayLog, "redacted_values") != 2*n {
		t.Fatalf("replay: want %d replayed and %d values redacted in staging's responses (password, Set-Cookie):\n%s\n%s", n, 2*n, replayLog, replayOut)
	}

	actx, stopAnalyze := context.WithCancel(ctx)
	analyzed := make(chan error, 1)
	var alog string
	go func() {
		var err error
		_, alog, err = runTaplineOut(actx, "analyze", "--from", kafkaURL(results), "--group", results+"-analyze",
			"--es", esURL, "--data-stream", dataStream)
		analyzed <- err
	}()
	for esCount(t, esURL, dataStream) < n {
		select {
		case err := <-analyzed:
			t.Fatalf("analyze exited: %v\n%s", err, alog)
		case <-ctx.Done():
			t.Fatal("analyze did not index every pair")
		case <-time.After(300 * time.Millisecond):
		}
	}
	stopAnalyze()
	if err := <-analyzed; err != nil {
		t.Fatalf("analyze: %v\n%s", err, alog)
	}

	secrets := []string{secretToken, secretCookie, secretPassword, secretSetCookie}
	// Every Kafka record, raw.
	for _, topic := range []string{exchanges, results} {
		recs := stacktest.ReadTopic(t, brokers, topic)
		if len(recs) != n {
			t.Fatalf("%s holds %d records, want %d", topic, len(recs), n)
		}
		for _, r := range recs {
			for _, s := range secrets {
				if leaked(r, s) {
					t.Errorf("a record of %s (offset %d) carries the secret %s", topic, r.Offset, s)
				}
			}
			if !bytes.Contains(r.Value, []byte("tap_")) {
				t.Errorf("a record of %s (offset %d) carries no pseudonym: was anything redacted?", topic, r.Offset)
			}
		}
	}
	// Every Elasticsearch document, raw.
	resp, err := http.Post(esURL+"/"+dataStream+"/_search?size=1000", "application/json", strings.NewReader(`{"query":{"match_all":{}}}`))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, s := range secrets {
		if bytes.Contains(raw, []byte(s)) {
			t.Errorf("Elasticsearch holds the secret %s", s)
		}
	}
	var found struct {
		Hits struct {
			Hits []struct {
				Source map[string]any `json:"_source"`
			}
		}
	}
	if err := json.Unmarshal(raw, &found); err != nil {
		t.Fatal(err)
	}
	if len(found.Hits.Hits) != n {
		t.Fatalf("%d documents, want %d", len(found.Hits.Hits), n)
	}
	// Production's and staging's pseudonyms are the same: no differences.
	for _, h := range found.Hits.Hits {
		if h.Source["verdict"] != "match" {
			t.Errorf("%v: verdict %v, diffs %v; want a match (the pseudonyms line up)", h.Source["url"], h.Source["verdict"], h.Source["diffs"])
		}
	}
	if !bytes.Contains(raw, []byte("tap_")) {
		t.Error("no pseudonym in the documents' body excerpts")
	}
}

// leaked reports whether a record's key, value or headers contain s.
func leaked(r stream.Record, s string) bool {
	if bytes.Contains(r.Key, []byte(s)) || bytes.Contains(r.Value, []byte(s)) {
		return true
	}
	for _, h := range r.Headers {
		if strings.Contains(h.Key, s) || bytes.Contains(h.Value, []byte(s)) {
			return true
		}
	}
	return false
}
