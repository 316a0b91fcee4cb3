package replayer

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tapline/tapline/internal/stream"
	"github.com/tapline/tapline/schema"
)

// TestMiddlewareExample runs deploy/middleware/example.py (the documented
// example) as the middleware of a real replay batch.
func TestMiddlewareExample(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	staging := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Method+" "+r.URL.RequestURI()+" "+r.Header.Get("X-Middleware"))
		mu.Unlock()
	}))
	defer staging.Close()
	u, _ := url.Parse(staging.URL)
	mw, err := StartMiddleware(MiddlewareConfig{Command: []string{"python3", "../deploy/middleware/example.py"}, Timeout: 10 * time.Second, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer mw.Close()
	results := &fakeSink{}
	r, err := New(Config{Source: &fakeSource{}, Results: results, Targets: []Target{{Name: "t", URL: u}}, Middleware: mw, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	batch := []stream.Record{
		exchangeRecord(t, "1", "s", "GET", "/v1/items?x=1"),
		exchangeRecord(t, "2", "s", "GET", "/admin/users"),
		exchangeRecord(t, "3", "s", "GET", "/other"),
	}
	if err := runBatch(context.Background(), r, batch); err != nil {
		t.Fatal(err)
	}
	if strings.Join(seen, "|") != "GET /v2/items?x=1 example|GET /other example" {
		t.Fatalf("staging saw %q", seen)
	}
	if st := r.Stats(); st.Replayed != 2 || st.MiddlewareDropped != 1 {
		t.Fatalf("stats %+v", st)
	}
	// The result keeps the recorded request, not the transformed one.
	res, _ := schema.DecodeReplayResult(results.recs[0].Value, results.recs[0].Headers)
	if res.Exchange.Request.Target != "/v1/items?x=1" {
		t.Fatalf("result holds %q", res.Exchange.Request.Target)
	}
}

// TestMiddlewareFailures: no reply in time is an error outcome (the batch
// goes on); a process that is gone stops the replay with an error.
func TestMiddlewareFailures(t *testing.T) {
	u, _ := url.Parse("http://127.0.0.1:1")
	silent, err := StartMiddleware(MiddlewareConfig{Command: []string{"sleep", "30"}, Timeout: 50 * time.Millisecond, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	results := &fakeSink{}
	r, _ := New(Config{Source: &fakeSource{}, Results: results, Targets: []Target{{Name: "t", URL: u}}, Middleware: silent, Logger: quiet()})
	if err := runBatch(context.Background(), r, []stream.Record{exchangeRecord(t, "1", "s", "GET", "/")}); err != nil {
		t.Fatal(err)
	}
	res, _ := schema.DecodeReplayResult(results.recs[0].Value, results.recs[0].Headers)
	if !strings.Contains(res.Outcomes[0].GetError(), "did not answer") || res.Outcomes[0].GetErrorKind() != ErrMiddleware {
		t.Fatalf("outcome %v", res.Outcomes[0])
	}

	gone, err := StartMiddleware(MiddlewareConfig{Command: []string{"true"}, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer gone.Close()
	<-gone.exited
	r, _ = New(Config{Source: &fakeSource{}, Results: &fakeSink{}, Targets: []Target{{Name: "t", URL: u}}, Middleware: gone, Logger: quiet()})
	if err := runBatch(context.Background(), r, []stream.Record{exchangeRecord(t, "1", "s", "GET", "/")}); !errors.Is(err, errMiddlewareExited) {
		t.Fatalf("got %v, want errMiddlewareExited", err)
	}
	if _, err := StartMiddleware(MiddlewareConfig{Command: []string{"/no/such/program"}}); err == nil {
		t.Fatal("a missing program started")
	}
}
