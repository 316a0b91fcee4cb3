package live

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/tapline/tapline/internal/stream"
	"github.com/tapline/tapline/recorder"
	"github.com/tapline/tapline/schema"
)

type sink struct {
	mu   sync.Mutex
	recs []stream.Record
}

func (s *sink) Enqueue(r stream.Record) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recs = append(s.recs, r)
	return true
}

func (s *sink) EnqueueWait(_ context.Context, r stream.Record) error {
	s.Enqueue(r)
	return nil
}

func (s *sink) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.recs)
}

// TestLiveLoopback captures real traffic on the loopback interface while a
// real client talks to a real server, and checks that every exchange the
// client made was recorded, paired and byte-exact. It needs root or
// CAP_NET_RAW (CI runs as root) and fails, not skips, without them.
func TestLiveLoopback(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Echo-Len", strconv.Itoa(len(body)))
		fmt.Fprintf(w, "answer to %s %s", r.Method, r.URL.RequestURI())
	}))
	defer srv.Close()
	_, portText, _ := net.SplitHostPort(srv.Listener.Addr().String())
	port, _ := strconv.Atoi(portText)

	src, err := Open(Config{Interface: "lo", Ports: []int{port}})
	if err != nil {
		t.Fatalf("opening a live capture on lo (run as root or with CAP_NET_RAW): %v", err)
	}
	defer src.Close()
	out := &sink{}
	rec, err := recorder.New(recorder.Config{Live: src, Sink: out, Name: "live-test", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rec.Run(ctx) }()

	// 40 requests on a keep-alive connection, 10 on fresh connections.
	const keepAlive, fresh = 40, 10
	client := srv.Client()
	for i := 0; i < keepAlive+fresh; i++ {
		if i == keepAlive {
			client.CloseIdleConnections()
			client = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
		}
		resp, err := client.Get(fmt.Sprintf("%s/item/%d?q=%d", srv.URL, i, i))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	deadline := time.Now().Add(10 * time.Second)
	for out.len() < keepAlive+fresh && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	seen := map[string]bool{}
	for _, r := range out.recs {
		ex, err := schema.DecodeExchange(r.Value, r.Headers)
		if err != nil {
			t.Fatal(err)
		}
		resp := ex.GetResponse()
		want := "answer to GET " + ex.Request.Target
		if resp == nil || resp.Status != 200 || string(resp.Body) != want || ex.Server.Port != uint32(port) {
			t.Errorf("exchange %s %s: response %v", ex.Request.Method, ex.Request.Target, resp)
		}
		seen[ex.Request.Target] = true
	}
	for i := 0; i < keepAlive+fresh; i++ {
		if target := fmt.Sprintf("/item/%d?q=%d", i, i); !seen[target] {
			t.Errorf("request %s was not recorded", target)
		}
	}
	st := rec.Stats()
	if st.Exchanges != keepAlive+fresh || st.KernelDrops != 0 {
		t.Errorf("stats %+v", st)
	}
	for reason, n := range st.Drops {
		if n != 0 {
			t.Errorf("drop %s = %d", reason, n)
		}
	}
}

func TestFilter(t *testing.T) {
	cases := []struct {
		cfg  Config
		want string
	}{
		{Config{}, "tcp and " + withPayload},
		{Config{Ports: []int{80}}, "tcp and (port 80) and " + withPayload},
		{Config{Ports: []int{80, 8080}}, "tcp and (port 80 or port 8080) and " + withPayload},
		{Config{Ports: []int{80}, BPF: "host 10.0.0.1 and tcp"}, "host 10.0.0.1 and tcp"},
	}
	for _, tc := range cases {
		if got := tc.cfg.Filter(); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.cfg, got, tc.want)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	for _, cfg := range []Config{{}, {Interface: "no-such-if0"}, {Interface: "lo", Ports: []int{70000}}, {Interface: "lo", BPF: "not a filter ((("}} {
		if s, err := Open(cfg); err == nil {
			s.Close()
			t.Errorf("Open(%+v) succeeded", cfg)
		}
	}
}
