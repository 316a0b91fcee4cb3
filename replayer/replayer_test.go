package replayer

import (
	"bytes"
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tapline/tapline/internal/stream"
	"github.com/tapline/tapline/schema"
)

// fakeSource hands out one batch, then blocks until ctx is done, or with
// eof set reports io.EOF like a window.
type fakeSource struct {
	batch  []stream.Record
	served bool
	eof    bool

	mu        sync.Mutex // Commit runs on the committer goroutine
	committed []stream.Record
}

func (s *fakeSource) Fetch(ctx context.Context) ([]stream.Record, error) {
	if !s.served {
		s.served = true
		return s.batch, nil
	}
	if s.eof {
		return nil, io.EOF
	}
	<-ctx.Done()
	return nil, ctx.Err()
}

func (s *fakeSource) Commit(_ context.Context, recs []stream.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.committed = append(s.committed, recs...)
	return nil
}

// runBatch replays one batch with r (whose Source must be a *fakeSource):
// Run over a source that then ends.
func runBatch(ctx context.Context, r *Replayer, batch []stream.Record) error {
	src := r.cfg.Source.(*fakeSource)
	src.batch, src.served, src.eof = batch, false, true
	return r.Run(ctx)
}

type fakeSink struct {
	mu   sync.Mutex
	recs []stream.Record
	err  error
}

func (s *fakeSink) Publish(_ context.Context, recs ...stream.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	s.recs = append(s.recs, recs...)
	return nil
}

func exchangeRecord(t *testing.T, id, session, method, target string, headers ...string) stream.Record {
	t.Helper()
	ex := &schema.Exchange{Id: id, SessionKey: session, Request: &schema.Request{Method: method, Target: target, Proto: "HTTP/1.1", Host: "prod.example"}}
	for i := 0; i+1 < len(headers); i += 2 {
		ex.Request.Headers = append(ex.Request.Headers, &schema.Header{Name: headers[i], Value: headers[i+1]})
	}
	ex.Original = &schema.Exchange_Response{Response: &schema.Response{Status: 200}}
	v, h, err := schema.EncodeExchange(ex)
	if err != nil {
		t.Fatal(err)
	}
	return stream.Record{Key: []byte(session), Value: v, Headers: h}
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestReplayBatch(t *testing.T) {
	var mu sync.Mutex
	var seen []string // "session path" in arrival order
	var lastReq *http.Request
	staging := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Get("X-Session")+" "+r.URL.RequestURI())
		if r.URL.Path == "/prefix/inspect" {
			lastReq = r.Clone(context.Background())
		}
		mu.Unlock()
		w.Header().Set("X-Staging", "1")
		w.WriteHeader(503)
		io.WriteString(w, "unavailable")
	}))
	defer staging.Close()
	u, _ := url.Parse(staging.URL + "/prefix/")

	src := &fakeSource{batch: []stream.Record{
		exchangeRecord(t, "e1", "s1", "GET", "/a?x=1", "X-Session", "s1"),
		exchangeRecord(t, "e2", "s2", "GET", "/b", "X-Session", "s2"),
		exchangeRecord(t, "e3", "s1", "GET", "/c", "X-Session", "s1"),
		exchangeRecord(t, "e4", "s1", "POST", "/write"),
		{Key: []byte("junk"), Value: []byte("not protobuf")},
		exchangeRecord(t, "e5", "s3", "GET", "/inspect", "x-lower-case", "v", "Connection", "close, X-Hop", "X-Hop", "h", "Keep-Alive", "5", "Content-Length", "999"),
	}}
	results, dlq := &fakeSink{}, &fakeSink{}
	r, err := New(Config{Source: src, Results: results, DLQ: dlq, Name: "r1", Logger: quiet(),
		Targets: []Target{{Name: "candidate", URL: u}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- r.Run(ctx) }()
	for r.Stats().Replayed+r.Stats().Filtered+r.Stats().Undecodable < 6 {
		// Run is working on the one batch; wait for it to be accounted.
		select {
		case err := <-done:
			t.Fatalf("Run returned early: %v", err)
		case <-time.After(time.Millisecond):
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	st := r.Stats()
	if st != (Stats{Fetched: 6, Replayed: 4, Filtered: 1, Undecodable: 1, TargetErrors: 0}) {
		t.Fatalf("stats %+v", st)
	}
	if len(src.committed) != 6 {
		t.Fatalf("committed %d records, want the whole batch", len(src.committed))
	}
	if len(dlq.recs) != 1 || string(dlq.recs[0].Value) != "not protobuf" {
		t.Fatalf("dlq %+v", dlq.recs)
	}
	// Session s1's requests arrive in recorded order.
	var s1 []string
	for _, s := range seen {
		if strings.HasPrefix(s, "s1 ") {
			s1 = append(s1, s)
		}
	}
	if strings.Join(s1, ",") != "s1 /prefix/a?x=1,s1 /prefix/c" {
		t.Fatalf("session s1 order: %q", s1)
	}
	// Headers: recorded case kept, hop-by-hop gone, replay tag added.
	h := lastReq.Header
	if h.Get("x-lower-case") != "v" || h.Get("User-Agent") != "" || h.Get("X-Hop") != "" || h.Get("Keep-Alive") != "" || h.Get(HeaderReplay) != "e5" || lastReq.Host != "prod.example" || lastReq.ContentLength != 0 {
		t.Fatalf("outgoing request: host %q headers %v content-length %d", lastReq.Host, h, lastReq.ContentLength)
	}
	// Results decode and carry the staging answer.
	for _, rec := range results.recs {
		res, err := schema.DecodeReplayResult(rec.Value, rec.Headers)
		if err != nil {
			t.Fatal(err)
		}
		o := res.Outcomes[0]
		if o.Target != "candidate" || o.GetResponse().GetStatus() != 503 || string(o.GetResponse().GetBody()) != "unavailable" || res.Replayer != "r1" || o.LatencyNanos <= 0 {
			t.Fatalf("outcome %v", o)
		}
	}
}

// TestWireHeaders checks the bytes of the outgoing request: header names
// as recorded, repeated headers kept, hop-by-hop headers gone, Content-Length
// right for the body.
func TestWireHeaders(t *testing.T) {
	u, _ := url.Parse("http://staging:8080/base")
	ex := &schema.Exchange{Id: "e9", Request: &schema.Request{
		Method: "POST", Target: "/p%2Fq?a=1&a=2", Host: "prod", Body: []byte("hello"), BodySize: 5,
		Headers: []*schema.Header{{Name: "x-mixed-Case", Value: "1"}, {Name: "X-Rep", Value: "a"}, {Name: "X-Rep", Value: "b"},
			{Name: "Transfer-Encoding", Value: "chunked"}, {Name: "Content-Length", Value: "1"}, {Name: "TE", Value: "trailers"}},
	}}
	req, err := buildRequest(context.Background(), Target{Name: "t", URL: u}, ex, nil)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := req.Write(&b); err != nil {
		t.Fatal(err)
	}
	wire := b.String()
	for _, want := range []string{"POST /base/p%2Fq?a=1&a=2 HTTP/1.1\r\n", "Host: prod\r\n", "x-mixed-Case: 1\r\n", "X-Rep: a\r\nX-Rep: b\r\n", "Content-Length: 5\r\n", "X-Tapline-Replay: e9\r\n", "\r\n\r\nhello"} {
		if !strings.Contains(wire, want) {
			t.Errorf("request on the wire lacks %q:\n%s", want, wire)
		}
	}
	for _, unwanted := range []string{"chunked", "TE:", "Content-Length: 1\r"} {
		if strings.Contains(wire, unwanted) {
			t.Errorf("request on the wire has %q:\n%s", unwanted, wire)
		}
	}
	if ex.Request.Headers[0].Name != "x-mixed-Case" || len(ex.Request.Headers) != 6 {
		t.Errorf("recorded request was modified")
	}
}

// TestPacing replays three exchanges recorded 0, 150 and 300 ms apart at
// speed 1 and at speed 3. Pacing only delays, so the check is a lower bound
// (a request arrives after its due time, which is after the test's start),
// which a slow machine cannot break.
func TestPacing(t *testing.T) {
	for _, tc := range []struct {
		speed   float64
		minGaps []time.Duration
	}{
		{1, []time.Duration{150 * time.Millisecond, 300 * time.Millisecond}},
		{3, []time.Duration{50 * time.Millisecond, 100 * time.Millisecond}},
	} {
		var mu sync.Mutex
		var arrived []time.Time
		staging := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			arrived = append(arrived, time.Now())
			mu.Unlock()
		}))
		u, _ := url.Parse(staging.URL)
		t0 := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
		var batch []stream.Record
		for i, off := range []time.Duration{0, 150 * time.Millisecond, 300 * time.Millisecond} {
			rec := exchangeRecord(t, fmt.Sprint(i), fmt.Sprint("s", i), "GET", "/")
			rec.Time = t0.Add(off)
			batch = append(batch, rec)
		}
		r, err := New(Config{Source: &fakeSource{}, Results: &fakeSink{}, Targets: []Target{{Name: "t", URL: u}}, Speed: tc.speed, Logger: quiet()})
		if err != nil {
			t.Fatal(err)
		}
		began := time.Now() // the pacer's start is after this
		if err := runBatch(context.Background(), r, batch); err != nil {
			t.Fatal(err)
		}
		staging.Close()
		if len(arrived) != 3 {
			t.Fatalf("speed %v: %d requests", tc.speed, len(arrived))
		}
		sort.Slice(arrived, func(i, j int) bool { return arrived[i].Before(arrived[j]) })
		for i, min := range tc.minGaps {
			if gap := arrived[i+1].Sub(began); gap < min {
				t.Errorf("speed %v: request %d came %v after the start, want at least %v", tc.speed, i+1, gap, min)
			}
		}
	}
}

// TestSessionParallel: with SessionParallel, a slow first request of a
// session does not hold back the second; without it, it does.
func TestSessionParallel(t *testing.T) {
	for _, parallel := range []bool{false, true} {
		release := make(chan struct{})
		var mu sync.Mutex
		var seen []string
		staging := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			seen = append(seen, r.URL.Path)
			mu.Unlock()
			if r.URL.Path == "/slow" {
				<-release
			}
		}))
		u, _ := url.Parse(staging.URL)
		r, err := New(Config{Source: &fakeSource{}, Results: &fakeSink{}, Targets: []Target{{Name: "t", URL: u}}, Workers: 2,
			SessionParallel: parallel, Logger: quiet()})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error)
		go func() {
			done <- runBatch(context.Background(), r, []stream.Record{exchangeRecord(t, "1", "s", "GET", "/slow"), exchangeRecord(t, "2", "s", "GET", "/fast")})
		}()
		// Wait until /slow is in; then see whether /fast arrives before
		// /slow is released.
		// Bounded waits, never a pass/fail threshold: sequentially /fast
		// cannot arrive at all while /slow is held (a short look is
		// enough); in parallel it must arrive (a long bound is generous).
		waitFor := func(n int, limit time.Duration) bool {
			for deadline := time.Now().Add(limit); time.Now().Before(deadline); {
				mu.Lock()
				got := len(seen)
				mu.Unlock()
				if got >= n {
					return true
				}
				time.Sleep(5 * time.Millisecond)
			}
			return false
		}
		if !waitFor(1, 30*time.Second) {
			t.Fatal("/slow never arrived")
		}
		look := 200 * time.Millisecond
		if parallel {
			look = 30 * time.Second
		}
		fastFirst := waitFor(2, look)
		close(release)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		staging.Close()
		if fastFirst != parallel {
			t.Errorf("session-parallel %v: /fast arrived while /slow was held: %v", parallel, fastFirst)
		}
	}
}

// TestSelect: exchanges refused by Select are counted as filtered and not
// sent, and the batch is still committed.
func TestSelect(t *testing.T) {
	var mu sync.Mutex // the handler runs on the server's goroutines
	var hits []string
	staging := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits = append(hits, r.URL.Path)
		mu.Unlock()
	}))
	defer staging.Close()
	u, _ := url.Parse(staging.URL)
	src := &fakeSource{}
	r, err := New(Config{Source: src, Results: &fakeSink{}, Targets: []Target{{Name: "t", URL: u}}, Workers: 1, Logger: quiet(),
		Select: func(ex *schema.Exchange) bool { return ex.Request.Target != "/skip" }})
	if err != nil {
		t.Fatal(err)
	}
	batch := []stream.Record{exchangeRecord(t, "1", "s", "GET", "/keep"), exchangeRecord(t, "2", "s", "GET", "/skip")}
	if err := runBatch(context.Background(), r, batch); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if st := r.Stats(); st.Replayed != 1 || st.Filtered != 1 || len(hits) != 1 || hits[0] != "/keep" || len(src.committed) != 2 {
		t.Fatalf("stats %+v, hits %v, committed %d", st, hits, len(src.committed))
	}
}

// TestBreakerPausesFailingTarget: a target answering 500 is paused after
// BreakerThreshold failures; the rest is recorded as not sent, not retried.
func TestBreakerPausesFailingTarget(t *testing.T) {
	var hits atomic.Int32 // the handler runs on the server's goroutines
	staging := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.WriteHeader(500)
	}))
	defer staging.Close()
	u, _ := url.Parse(staging.URL)
	results := &fakeSink{}
	r, err := New(Config{Source: &fakeSource{}, Results: results, Targets: []Target{{Name: "t", URL: u}}, Workers: 1, Logger: quiet(),
		BreakerThreshold: 2, BreakerPause: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	var batch []stream.Record
	for i := 0; i < 5; i++ {
		batch = append(batch, exchangeRecord(t, fmt.Sprint(i), "s", "GET", "/"))
	}
	if err := runBatch(context.Background(), r, batch); err != nil {
		t.Fatal(err)
	}
	if st := r.Stats(); hits.Load() != 2 || st.Paused != 3 || st.Replayed != 5 {
		t.Fatalf("hits %d, stats %+v", hits.Load(), st)
	}
	last, _ := schema.DecodeReplayResult(results.recs[4].Value, results.recs[4].Headers)
	if !strings.Contains(last.Outcomes[0].GetError(), "circuit breaker") || last.Outcomes[0].GetErrorKind() != ErrPaused {
		t.Fatalf("paused outcome: %v", last.Outcomes[0])
	}
}

// A failed publish must leave the batch uncommitted and stop Run.
func TestPublishFailureDoesNotCommit(t *testing.T) {
	staging := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer staging.Close()
	u, _ := url.Parse(staging.URL)
	src := &fakeSource{batch: []stream.Record{exchangeRecord(t, "e1", "s1", "GET", "/")}}
	r, _ := New(Config{Source: src, Results: &fakeSink{err: errors.New("broker down")}, Targets: []Target{{Name: "t", URL: u}}, Logger: quiet()})
	err := r.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "broker down") {
		t.Fatalf("Run: %v, want the publish error", err)
	}
	if len(src.committed) != 0 {
		t.Fatalf("committed %d records after a failed publish", len(src.committed))
	}
}

// TestTargetErrorKinds: a failing target is an outcome with an error, not
// a failure of the run, and each way of failing has its kind, from real
// servers on loopback.
func TestTargetErrorKinds(t *testing.T) {
	// Accepts, then resets the connection without answering.
	resetter, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer resetter.Close()
	go func() {
		for {
			c, err := resetter.Accept()
			if err != nil {
				return
			}
			c.Read(make([]byte, 4096))
			c.(*net.TCPConn).SetLinger(0)
			c.Close()
		}
	}()
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	}))
	defer slow.Close()
	untrusted := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer untrusted.Close()
	// Headers over the bound a result can carry (only bodies can be cut
	// to fit Kafka's record limit).
	hugeHeaders := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Huge", strings.Repeat("h", maxResponseHeaderBytes))
	}))
	defer hugeHeaders.Close()

	ex := &schema.Exchange{Id: "e", Request: &schema.Request{Method: "GET", Target: "/"}}
	truncated := &schema.Exchange{Id: "t", Request: &schema.Request{Method: "POST", Target: "/", BodyTruncated: true, BodySize: 10}}
	for _, tc := range []struct {
		name, url string
		ex        *schema.Exchange
		want      string
	}{
		{"nothing listens", "http://127.0.0.1:1", ex, ErrRefused},
		{"reset", "http://" + resetter.Addr().String(), ex, ErrReset},
		{"slower than the timeout", slow.URL, ex, ErrTimeout},
		{"untrusted certificate", untrusted.URL, ex, ErrTLS},
		{"truncated request body", "http://127.0.0.1:1", truncated, ErrRequest},
		{"response headers over 64 KiB", hugeHeaders.URL, ex, ErrOther},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, _ := url.Parse(tc.url)
			o, kind := newSender(1, time.Second, 200*time.Millisecond, nil, 10).send(context.Background(), Target{Name: "t", URL: u}, tc.ex)
			if o.GetError() == "" || o.GetResponse() != nil || kind != tc.want || o.GetErrorKind() != tc.want {
				t.Fatalf("outcome %v, kind %q; want an error of kind %q", o, kind, tc.want)
			}
		})
	}
	if got := errorKind(&net.DNSError{Err: "no such host", Name: "staging.invalid", IsNotFound: true}); got != ErrDNS {
		t.Errorf("a DNS error is %q, want %q", got, ErrDNS)
	}
}

func TestConfigErrors(t *testing.T) {
	u, _ := url.Parse("http://x")
	bad, _ := url.Parse("ftp://x")
	ok := Config{Source: &fakeSource{}, Results: &fakeSink{}}
	cases := map[string]Config{
		"no target":      ok,
		"bad scheme":     {Source: ok.Source, Results: ok.Results, Targets: []Target{{Name: "a", URL: bad}}},
		"duplicate name": {Source: ok.Source, Results: ok.Results, Targets: []Target{{Name: "a", URL: u}, {Name: "a", URL: u}}},
		"no source":      {Results: ok.Results, Targets: []Target{{Name: "a", URL: u}}},
	}
	for name, cfg := range cases {
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestTLSTargets: an https target with a certificate nobody trusts is an
// error outcome; trusting its CA file, or skipping verification, works.
func TestTLSTargets(t *testing.T) {
	staging := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "secure") }))
	defer staging.Close()
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: staging.Certificate().Raw})
	if err := os.WriteFile(caFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(staging.URL)
	ex := &schema.Exchange{Id: "e", Request: &schema.Request{Method: "GET", Target: "/"}}
	cases := []struct {
		name       string
		caFile     string
		skipVerify bool
		wantBody   string // "" = want an error outcome
	}{
		{"untrusted", "", false, ""},
		{"trusted CA file", caFile, false, "secure"},
		{"skip verify", "", true, "secure"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tlsCfg, err := tlsConfig(tc.caFile, tc.skipVerify)
			if err != nil {
				t.Fatal(err)
			}
			o, _ := newSender(1, 5*time.Second, time.Second, tlsCfg, 100).send(context.Background(), Target{Name: "t", URL: u}, ex)
			if got := string(o.GetResponse().GetBody()); got != tc.wantBody || (tc.wantBody == "" && o.GetError() == "") {
				t.Fatalf("outcome %v", o)
			}
		})
	}
	if _, err := tlsConfig(filepath.Join(t.TempDir(), "missing.pem"), false); err == nil {
		t.Error("a missing CA file was accepted")
	}
	notPEM := filepath.Join(t.TempDir(), "x.pem")
	os.WriteFile(notPEM, []byte("hello"), 0o600)
	if _, err := tlsConfig(notPEM, false); err == nil {
		t.Error("a CA file without certificates was accepted")
	}
}

// listSource serves its batches in order, then io.EOF, and records each
// Commit call.
type listSource struct {
	batches [][]stream.Record
	mu      sync.Mutex
	commits [][]stream.Record
}

func (s *listSource) Fetch(ctx context.Context) ([]stream.Record, error) {
	if len(s.batches) == 0 {
		return nil, io.EOF
	}
	b := s.batches[0]
	s.batches = s.batches[1:]
	return b, nil
}

func (s *listSource) Commit(_ context.Context, recs []stream.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.commits = append(s.commits, recs)
	return nil
}

func (s *listSource) committed() [][]stream.Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.commits)
}

// heldStaging is a target that holds every request to /slow until release
// is closed and reports each path as it arrives.
func heldStaging(t *testing.T) (u *url.URL, arrived <-chan string, release chan struct{}) {
	release = make(chan struct{})
	ch := make(chan string, 16)
	staging := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ch <- r.URL.Path
		if r.URL.Path == "/slow" {
			<-release
		}
	}))
	t.Cleanup(staging.Close)
	u, _ = url.Parse(staging.URL)
	return u, ch, release
}

// TestPipelinedCommitOrder: while an exchange of the first batch is held
// by a slow target, the second batch is already sent (batches are
// pipelined), but it is committed only after the first.
func TestPipelinedCommitOrder(t *testing.T) {
	u, arrived, release := heldStaging(t)
	a := []stream.Record{exchangeRecord(t, "a", "s1", "GET", "/slow")}
	b := []stream.Record{exchangeRecord(t, "b", "s2", "GET", "/fast")}
	src := &listSource{batches: [][]stream.Record{a, b}}
	results := &fakeSink{}
	r, err := New(Config{Source: src, Results: results, Targets: []Target{{Name: "t", URL: u}}, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() { done <- r.Run(context.Background()) }()
	got := []string{<-arrived, <-arrived}
	slices.Sort(got)
	if !slices.Equal(got, []string{"/fast", "/slow"}) {
		t.Fatalf("arrived %v", got)
	}
	// /fast is done; its batch must wait for the first one. Give a wrongly
	// early commit time to happen (this can only miss a bug, never fail a
	// correct replayer).
	time.Sleep(50 * time.Millisecond)
	if c := src.committed(); len(c) != 0 {
		t.Fatalf("committed %d batches while the first was in flight", len(c))
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	c := src.committed()
	if len(c) != 2 || string(c[0][0].Key) != "s1" || string(c[1][0].Key) != "s2" {
		t.Fatalf("commits %v, want batch a then batch b", c)
	}
	if st := r.Stats(); st.Replayed != 2 || len(results.recs) != 2 {
		t.Fatalf("stats %+v, %d results", st, len(results.recs))
	}
}

// TestCancelMidBatch: a cancel while a request is held lets it finish and
// publishes its result, sends nothing more, and commits nothing.
func TestCancelMidBatch(t *testing.T) {
	u, arrived, release := heldStaging(t)
	batch := []stream.Record{exchangeRecord(t, "1", "s", "GET", "/slow"), exchangeRecord(t, "2", "s", "GET", "/after")}
	src := &listSource{batches: [][]stream.Record{batch, {exchangeRecord(t, "3", "s3", "GET", "/next")}}}
	results := &fakeSink{}
	r, err := New(Config{Source: src, Results: results, Targets: []Target{{Name: "t", URL: u}}, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- r.Run(ctx) }()
	for p := range arrived {
		if p == "/slow" {
			break
		}
	}
	cancel()
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-arrived:
		if p == "/after" {
			t.Fatalf("/after was sent after the cancel")
		}
	default:
	}
	if c := src.committed(); len(c) != 0 {
		t.Fatalf("committed %v after a cancel mid-batch", c)
	}
	var ids []string
	for _, rec := range results.recs {
		res, _ := schema.DecodeReplayResult(rec.Value, rec.Headers)
		ids = append(ids, res.Exchange.Id)
	}
	if !slices.Contains(ids, "1") || slices.Contains(ids, "2") {
		t.Fatalf("published results of %v, want the one sent (1) and not 2", ids)
	}
}

// limitedSink is a fakeSink that, like Kafka, takes records up to a size.
type limitedSink struct {
	fakeSink
	limit int
}

func (s *limitedSink) MaxRecordBytes() int { return s.limit }

// TestResultFitsTheOutput: a result over the output's record limit (the
// recorded answer and staging's, 700 KiB each, against Kafka's 1 MiB) is
// published with both answers cut to one length and marked truncated,
// instead of failing the publish, which would stop the replayer at the
// same batch after every restart.
func TestResultFitsTheOutput(t *testing.T) {
	answer := bytes.Repeat([]byte("s"), 700<<10)
	staging := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(answer) }))
	defer staging.Close()
	u, _ := url.Parse(staging.URL)
	results := &limitedSink{limit: 1 << 20}
	r, err := New(Config{Source: &fakeSource{}, Results: results, Targets: []Target{{Name: "t", URL: u}}, Workers: 1, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	recorded := bytes.Repeat([]byte("p"), 700<<10)
	ex := &schema.Exchange{Id: "big", SessionKey: "s", Request: &schema.Request{Method: "GET", Target: "/report", Proto: "HTTP/1.1", Host: "prod.example"},
		Original: &schema.Exchange_Response{Response: &schema.Response{Status: 200, Body: recorded, BodySize: int64(len(recorded))}}}
	v, h, err := schema.EncodeExchange(ex)
	if err != nil {
		t.Fatal(err)
	}
	small := exchangeRecord(t, "small", "s2", "GET", "/small")
	if err := runBatch(context.Background(), r, []stream.Record{{Key: []byte("s"), Value: v, Headers: h}, small}); err != nil {
		t.Fatal(err)
	}
	if st := r.Stats(); st.Replayed != 2 || st.BodiesCut != 2 || len(results.recs) != 2 {
		t.Fatalf("stats %+v, %d records; want 2 replayed, 2 bodies cut", st, len(results.recs))
	}
	for _, rec := range results.recs {
		if size := len(rec.Key) + len(rec.Value); size > results.limit {
			t.Errorf("a record of %d bytes, over the output's %d", size, results.limit)
		}
	}
	res, err := schema.DecodeReplayResult(results.recs[0].Value, results.recs[0].Headers)
	if err != nil {
		t.Fatal(err)
	}
	prod, got := res.Exchange.GetResponse(), res.Outcomes[0].GetResponse()
	if len(prod.Body) != len(got.Body) || len(prod.Body) < 400<<10 || !prod.BodyTruncated || !got.BodyTruncated ||
		prod.BodySize != int64(len(recorded)) || got.BodySize != int64(len(answer)) {
		t.Errorf("production keeps %d of %d bytes (truncated %v), staging %d of %d (%v); want one length over 400 KiB, both flagged",
			len(prod.Body), prod.BodySize, prod.BodyTruncated, len(got.Body), got.BodySize, got.BodyTruncated)
	}
	other, _ := schema.DecodeReplayResult(results.recs[1].Value, results.recs[1].Headers)
	if other.Exchange.GetId() != "small" || other.Outcomes[0].GetResponse().GetBodyTruncated() {
		t.Errorf("the small result: %v", other)
	}
}
