package replayer

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tapline/tapline/internal/stream"
	"github.com/tapline/tapline/schema"
)

// benchBatch makes n small GET exchanges, one per session, recorded at
// the given interval.
func benchBatch(b *testing.B, n int, every time.Duration) []stream.Record {
	t0 := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	out := make([]stream.Record, n)
	for i := range out {
		ex := &schema.Exchange{Id: fmt.Sprint(i), SessionKey: fmt.Sprint("s", i), Request: &schema.Request{
			Method: "GET", Target: fmt.Sprintf("/api/items/%d?x=1", i), Host: "api.example.com",
			Headers: []*schema.Header{{Name: "Accept", Value: "application/json"}, {Name: "User-Agent", Value: "bench"}},
		}}
		v, h, err := schema.EncodeExchange(ex)
		if err != nil {
			b.Fatal(err)
		}
		out[i] = stream.Record{Key: []byte(ex.SessionKey), Value: v, Headers: h, Time: t0.Add(time.Duration(i) * every)}
	}
	return out
}

func fastStaging() *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"ok":true}`))
	}))
}

// batchSource serves recs in batches of batchSize, then io.EOF, like a
// window; it repeats recs until it has served total records.
type batchSource struct {
	recs      []stream.Record
	batchSize int
	total     int
	served    int
}

func (s *batchSource) Fetch(ctx context.Context) ([]stream.Record, error) {
	if s.served >= s.total {
		return nil, io.EOF
	}
	i := s.served % len(s.recs)
	n := min(s.batchSize, len(s.recs)-i, s.total-s.served)
	s.served += n
	return s.recs[i : i+n], nil
}

func (s *batchSource) Commit(context.Context, []stream.Record) error { return nil }

// BenchmarkReplayRate replays to a fast local server with 64 requests in
// flight, unpaced, from a source of batches of 100 (b.N exchanges in all);
// the figure is requests/s. Client and server share the machine's cores.
func BenchmarkReplayRate(b *testing.B) {
	staging := fastStaging()
	defer staging.Close()
	u, _ := url.Parse(staging.URL)
	src := &batchSource{recs: benchBatch(b, 1000, 0), batchSize: 100, total: b.N}
	r, err := New(Config{Source: src, Results: &fakeSink{}, Targets: []Target{{Name: "t", URL: u}}, Workers: 64, Logger: quiet()})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	if err := r.Run(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "requests/s")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkScheduleError replays 2 s of traffic recorded at 1k and 5k
// requests/s (in batches of 100, like a window) at --speed 1 and reports
// how late sends were against their due times (p50, p99), over all b.N
// replays.
func BenchmarkScheduleError(b *testing.B) {
	for _, perSecond := range []int{1000, 5000} {
		b.Run(fmt.Sprintf("%d_per_s", perSecond), func(b *testing.B) {
			staging := fastStaging()
			defer staging.Close()
			u, _ := url.Parse(staging.URL)
			var mu sync.Mutex
			var late []time.Duration
			recs := benchBatch(b, 2*perSecond, time.Second/time.Duration(perSecond))
			for b.Loop() {
				// Each replay starts its own schedule.
				r, err := New(Config{Source: &batchSource{recs: recs, batchSize: 100, total: len(recs)}, Results: &fakeSink{},
					Targets: []Target{{Name: "t", URL: u}}, Workers: 64, Speed: 1, Logger: quiet(), OnSchedule: func(d time.Duration) {
						mu.Lock()
						late = append(late, d)
						mu.Unlock()
					}})
				if err != nil {
					b.Fatal(err)
				}
				if err := r.Run(context.Background()); err != nil {
					b.Fatal(err)
				}
			}
			slices.Sort(late)
			b.ReportMetric(float64(late[len(late)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(late[len(late)*99/100].Microseconds())/1000, "p99-ms")
			b.ReportMetric(0, "ns/op")
		})
	}
}
