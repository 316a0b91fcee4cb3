package replayer

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tapline/tapline/internal/stream"
)

func TestPacerDue(t *testing.T) {
	t0 := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	wall := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	cases := []struct {
		name   string
		speed  float64
		maxGap time.Duration
		in     []time.Duration // recorded offsets from t0
		want   []time.Duration // due offsets from wall; -1 = now
	}{
		{"no pacing", 0, 0, []time.Duration{0, time.Second}, []time.Duration{-1, -1}},
		{"speed 1 keeps the gaps", 1, 0, []time.Duration{0, time.Second, 3 * time.Second}, []time.Duration{0, time.Second, 3 * time.Second}},
		{"speed 2 halves them", 2, 0, []time.Duration{0, time.Second, 3 * time.Second}, []time.Duration{0, 500 * time.Millisecond, 1500 * time.Millisecond}},
		{"speed 0.5 doubles them", 0.5, 0, []time.Duration{0, time.Second}, []time.Duration{0, 2 * time.Second}},
		{"max gap cuts idle time", 1, 10 * time.Second, []time.Duration{0, time.Hour, time.Hour + time.Second}, []time.Duration{0, 10 * time.Second, 11 * time.Second}},
		{"an earlier record is due at once", 1, 0, []time.Duration{0, 2 * time.Second, time.Second, 3 * time.Second}, []time.Duration{0, 2 * time.Second, -1, 3 * time.Second}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := &pacer{speed: tc.speed, maxGap: tc.maxGap, now: func() time.Time { return wall }}
			for i, d := range tc.in {
				got := p.due(at(d))
				want := wall.Add(tc.want[i])
				if tc.want[i] < 0 {
					want = time.Time{}
				}
				if !got.Equal(want) {
					t.Errorf("record %d (+%v): due %v, want %v", i, d, got, want)
				}
			}
		})
	}
}

// TestSleepUntil runs under synctest: time is virtual, so the test checks
// exact waits without depending on the machine's speed.
func TestSleepUntil(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		if err := sleepUntil(context.Background(), start.Add(3*time.Second)); err != nil {
			t.Fatal(err)
		}
		if got := time.Since(start); got != 3*time.Second {
			t.Fatalf("slept %v, want 3s", got)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := sleepUntil(ctx, time.Now().Add(time.Hour)); err == nil {
			t.Fatal("sleep outlived its context")
		}
		if err := sleepUntil(context.Background(), time.Time{}); err != nil {
			t.Fatal(err)
		}
	})
}

// roundTripFunc is an in-memory target for tests under synctest, where
// real sockets would not let time advance.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestSchedule runs the whole pipeline (fetch, dispatch, lanes, commit)
// under synctest with an in-memory target: time is virtual, so every
// request must go out exactly at its due time, whatever the machine's
// speed.
func TestSchedule(t *testing.T) {
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	cases := []struct {
		name     string
		cfg      Config
		recorded []time.Duration // offsets of the recorded exchanges
		want     []time.Duration // when each is sent, from the start
	}{
		{"speed 1 keeps the recorded gaps", Config{Speed: 1},
			[]time.Duration{0, ms(100), ms(250), ms(1000)}, []time.Duration{0, ms(100), ms(250), ms(1000)}},
		{"speed 2 halves them", Config{Speed: 2},
			[]time.Duration{0, ms(100), ms(250), ms(1000)}, []time.Duration{0, ms(50), ms(125), ms(500)}},
		{"speed 0.5 doubles them", Config{Speed: 0.5},
			[]time.Duration{0, ms(100), ms(250)}, []time.Duration{0, ms(200), ms(500)}},
		{"max gap cuts a long idle gap", Config{Speed: 1, MaxGap: ms(200)},
			[]time.Duration{0, ms(100), time.Hour, time.Hour + ms(50)}, []time.Duration{0, ms(100), ms(300), ms(350)}},
		{"rate 2/s slows an unpaced replay (burst of 2)", Config{Rate: 2},
			[]time.Duration{0, 0, 0, 0, 0}, []time.Duration{0, 0, ms(500), ms(1000), ms(1500)}},
		{"rate below the recorded pace delays", Config{Speed: 1, Rate: 1},
			[]time.Duration{0, ms(100), ms(200)}, []time.Duration{0, ms(1000), ms(2000)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				t0 := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
				var batch []stream.Record
				for i, off := range tc.recorded {
					rec := exchangeRecord(t, fmt.Sprint(i), fmt.Sprint("s", i), "GET", fmt.Sprint("/", i))
					rec.Time = t0.Add(off)
					batch = append(batch, rec)
				}
				cfg := tc.cfg
				u, _ := url.Parse("http://staging.test")
				cfg.Source, cfg.Results, cfg.Targets, cfg.Logger = &fakeSource{}, &fakeSink{}, []Target{{Name: "t", URL: u}}, quiet()
				r, err := New(cfg)
				if err != nil {
					t.Fatal(err)
				}
				start := time.Now()
				var mu sync.Mutex
				sent := map[string]time.Duration{}
				r.sender.client.Transport = roundTripFunc(func(req *http.Request) (*http.Response, error) {
					mu.Lock()
					sent[req.URL.Path] = time.Since(start)
					mu.Unlock()
					return &http.Response{StatusCode: 200, Header: http.Header{}, Body: io.NopCloser(strings.NewReader("")), Request: req}, nil
				})
				if err := runBatch(context.Background(), r, batch); err != nil {
					t.Fatal(err)
				}
				for i, want := range tc.want {
					if got, ok := sent[fmt.Sprint("/", i)]; !ok || got != want {
						t.Errorf("exchange %d: sent at +%v (sent: %v), want +%v", i, got, ok, want)
					}
				}
				if st := r.Stats(); st.Replayed != uint64(len(batch)) {
					t.Errorf("stats %+v", st)
				}
			})
		})
	}
}

// endlessSource serves batches of one fresh exchange and counts its
// fetches; after 10 it waits for ctx, like a consumer with no more
// records.
type endlessSource struct {
	t       *testing.T
	fetches int
}

func (s *endlessSource) Fetch(ctx context.Context) ([]stream.Record, error) {
	if s.fetches == 10 {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	s.fetches++
	return []stream.Record{exchangeRecord(s.t, fmt.Sprint(s.fetches), fmt.Sprint("s", s.fetches), "GET", "/")}, nil
}

func (s *endlessSource) Commit(context.Context, []stream.Record) error { return nil }

// TestBackpressure: while the target holds every request, the replayer
// stops fetching once Prefetch batches, or PrefetchBytes of records, are
// in the pipeline (Kafka keeps the backlog), and fetches again as soon as
// they are done.
func TestBackpressure(t *testing.T) {
	one := exchangeRecord(t, "1", "s1", "GET", "/")
	size := int64(len(one.Key) + len(one.Value))
	for _, tc := range []struct {
		name          string
		prefetch      int
		prefetchBytes int64
		want          int // fetches while the target holds
	}{
		{"batches", 3, 1 << 30, 3},
		// The second batch brings the bytes in the pipeline past the bound.
		{"bytes", 10, size + 1, 2},
	} {
		t.Run(tc.name, func(t *testing.T) { backpressure(t, tc.prefetch, tc.prefetchBytes, tc.want) })
	}
}

func backpressure(t *testing.T, prefetch int, prefetchBytes int64, want int) {
	synctest.Test(t, func(t *testing.T) {
		src := &endlessSource{t: t}
		u, _ := url.Parse("http://192.0.2.1") // an IP: no DNS lookup (the resolver is shared between synctest bubbles)
		r, err := New(Config{Source: src, Results: &fakeSink{}, Targets: []Target{{Name: "t", URL: u}},
			Prefetch: prefetch, PrefetchBytes: prefetchBytes, Workers: 2, Logger: quiet()})
		if err != nil {
			t.Fatal(err)
		}
		release := make(chan struct{})
		r.sender.client.Transport = roundTripFunc(func(req *http.Request) (*http.Response, error) {
			<-release
			return &http.Response{StatusCode: 200, Header: http.Header{}, Body: io.NopCloser(strings.NewReader("")), Request: req}, nil
		})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- r.Run(ctx) }()
		synctest.Wait()
		if src.fetches != want {
			t.Fatalf("%d fetches while the target holds every request, want %d", src.fetches, want)
		}
		close(release)
		time.Sleep(time.Second) // virtual: the pipeline drains and fetches on
		synctest.Wait()
		if src.fetches != 10 {
			t.Fatalf("%d fetches after the target let go, want all 10", src.fetches)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}
