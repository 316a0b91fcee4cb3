package replayer

import (
	"context"
	"fmt"
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

// BenchmarkReplayRate replays batches of 100 exchanges to a fast local
// server with 64 requests in flight, unpaced; the figure is requests/s.
// Client and server share the machine's cores.
func BenchmarkReplayRate(b *testing.B) {
	staging := fastStaging()
	defer staging.Close()
	u, _ := url.Parse(staging.URL)
	r, err := New(Config{Source: &fakeSource{}, Results: &fakeSink{}, Targets: []Target{{Name: "t", URL: u}}, Workers: 64, Logger: quiet()})
	if err != nil {
		b.Fatal(err)
	}
	batch := benchBatch(b, 100, 0)
	b.ReportAllocs()
	for b.Loop() {
		if err := r.handle(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(batch))/b.Elapsed().Seconds(), "requests/s")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkScheduleError replays 1 s of traffic recorded at 1k and 5k
// requests/s at --speed 1 and reports how late sends were against their
// due times (p50, p99).
func BenchmarkScheduleError(b *testing.B) {
	for _, perSecond := range []int{1000, 5000} {
		b.Run(fmt.Sprintf("%d_per_s", perSecond), func(b *testing.B) {
			staging := fastStaging()
			defer staging.Close()
			u, _ := url.Parse(staging.URL)
			var mu sync.Mutex
			var late []time.Duration
			r, err := New(Config{Source: &fakeSource{}, Results: &fakeSink{}, Targets: []Target{{Name: "t", URL: u}}, Workers: 64,
				Speed: 1, Logger: quiet(), OnSchedule: func(d time.Duration) {
					mu.Lock()
					late = append(late, d)
					mu.Unlock()
				}})
			if err != nil {
				b.Fatal(err)
			}
			batch := benchBatch(b, perSecond, time.Second/time.Duration(perSecond))
			for b.Loop() {
				r.pace = &pacer{speed: 1, now: time.Now} // each run starts its own schedule
				if err := r.handle(context.Background(), batch); err != nil {
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
