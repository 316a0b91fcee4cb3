package replayer

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tapline/tapline/internal/hostspeed"
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

func fastHandler(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Write([]byte(`{"ok":true}`))
}

// stagingProcess runs the fast staging server in a child process (this
// test binary, re-executed), as a real staging would be: its goroutines,
// garbage collector and scheduler are not the replayer's. It returns the
// server's URL.
func stagingProcess(b *testing.B) string {
	line, err := bufio.NewReader(childProcess(b, "TestStagingChild", "TAPLINE_STAGING_CHILD")).ReadString('\n')
	if err != nil {
		b.Fatalf("staging child: %v", err)
	}
	return strings.TrimSpace(line)
}

// childProcess re-executes this test binary to run only the test named,
// with env set to 1 (the child's test does its work only then), and
// returns the child's standard output. The child is killed at the end of
// the benchmark.
func childProcess(b *testing.B, test, env string) io.Reader {
	cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$")
	cmd.Env = append(os.Environ(), env+"=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return out
}

// TestStagingChild is the staging server of stagingProcess; it does
// nothing in a normal test run.
func TestStagingChild(t *testing.T) {
	if os.Getenv("TAPLINE_STAGING_CHILD") == "" {
		return
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println("http://" + l.Addr().String())
	http.Serve(l, http.HandlerFunc(fastHandler))
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

// asTheCommand gives the benchmark the garbage-collector settings that
// `tapline replay` runs with (unless GOGC or GOMEMLIMIT is set), for its
// duration.
func asTheCommand(b *testing.B) {
	if os.Getenv("GOGC") == "" {
		old := debug.SetGCPercent(DefaultGCPercent)
		b.Cleanup(func() { debug.SetGCPercent(old) })
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		old := debug.SetMemoryLimit(DefaultMemoryLimit)
		b.Cleanup(func() { debug.SetMemoryLimit(old) })
	}
}

// BenchmarkReplayRate replays to a fast local server (another process)
// with 64 requests in flight, unpaced, from a source of batches of 100
// (b.N exchanges in all); the figure is requests/s. Client and server
// share the machine's cores.
//
// host-slow-% is the share of the run's CPU time in which the host ran the
// CPUs at under half speed (internal/hostspeed; see BenchmarkScheduleError).
func BenchmarkReplayRate(b *testing.B) {
	asTheCommand(b)
	u, _ := url.Parse(stagingProcess(b))
	host := hostProcess(b)
	src := &batchSource{recs: benchBatch(b, 1000, 0), batchSize: 100, total: b.N}
	r, err := New(Config{Source: src, Results: &fakeSink{}, Targets: []Target{{Name: "t", URL: u}}, Workers: 64, Logger: quiet()})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	if err := r.Run(context.Background()); err != nil {
		b.Fatal(err)
	}
	end := time.Now()
	b.StopTimer()
	time.Sleep(200 * time.Millisecond) // a slowdown is reported when it ends
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "requests/s")
	b.ReportMetric(100*host.slowShare(start, end), "host-slow-%")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkScheduleError replays 0.5 s of traffic recorded at 1k and 5k
// requests/s (in batches of 100, like a window) at --speed 1, b.N times,
// and reports how late sends were against their due times, measured when
// a worker takes the exchange: p50 and p99 over all runs, and p99 over the
// clean runs only.
//
// A run is clean when the host ran the machine's CPUs at half their full
// speed or more, from 100 ms before the run to its end, with no slowdown
// of 2 ms or longer below that: internal/hostspeed watches them from
// another process during the benchmark (about 2 % of each CPU). On the
// virtual machines tapline is developed on, the host slows both vCPUs to
// a few percent of their speed for 30–250 ms at a time, about once a
// second; a send due then is late by about that much, whatever the
// replayer does, and one such slowdown decides the p99 of the run it
// falls in. Both figures are
// reported so that neither hides the other; runs and clean-runs say how
// many runs each covers.
//
//	go test -run='^$' -bench=ScheduleError -benchtime=20x ./replayer
func BenchmarkScheduleError(b *testing.B) {
	asTheCommand(b)
	for _, perSecond := range []int{1000, 5000} {
		b.Run(fmt.Sprintf("%d_per_s", perSecond), func(b *testing.B) {
			u, _ := url.Parse(stagingProcess(b))
			host := hostProcess(b)
			type run struct {
				start, end time.Time
				late       []time.Duration
			}
			var runs []run
			recs := benchBatch(b, perSecond/2, time.Second/time.Duration(perSecond))
			for b.Loop() {
				var mu sync.Mutex
				var late []time.Duration
				// Each replay starts its own schedule, and its own
				// connections to staging.
				r, err := New(Config{Source: &batchSource{recs: recs, batchSize: 100, total: len(recs)}, Results: &fakeSink{},
					Targets: []Target{{Name: "t", URL: u}}, Workers: 64, Speed: 1, Logger: quiet(), OnSchedule: func(d time.Duration) {
						mu.Lock()
						late = append(late, d)
						mu.Unlock()
					}})
				if err != nil {
					b.Fatal(err)
				}
				start := time.Now()
				if err := r.Run(context.Background()); err != nil {
					b.Fatal(err)
				}
				runs = append(runs, run{start, time.Now(), late})
			}
			// A slowdown is reported when it ends: give one in progress
			// at the last run's end the time to.
			time.Sleep(time.Second)
			var all, clean []time.Duration
			cleanRuns := 0
			for _, r := range runs {
				all = append(all, r.late...)
				if len(host.Dips(r.start.Add(-100*time.Millisecond), r.end)) == 0 {
					cleanRuns++
					clean = append(clean, r.late...)
				}
			}
			b.Logf("%d host slowdowns during %d runs (%d clean)", len(host.Dips(runs[0].start, time.Now())), len(runs), cleanRuns)
			b.ReportMetric(quantileMS(all, 0.5), "p50-ms")
			b.ReportMetric(quantileMS(all, 0.99), "p99-ms")
			b.ReportMetric(float64(len(runs)), "runs")
			b.ReportMetric(float64(cleanRuns), "clean-runs")
			if cleanRuns > 0 {
				b.ReportMetric(quantileMS(clean, 0.99), "clean-p99-ms")
			}
			b.ReportMetric(0, "ns/op")
		})
	}
}

// dipLog holds the slowdowns that a host watcher process reported.
type dipLog struct {
	mu   sync.Mutex
	dips []hostspeed.Dip
	err  error // the watcher could not watch every CPU
}

// Dips returns the slowdowns reported so far that overlap [from, to].
func (l *dipLog) Dips(from, to time.Time) []hostspeed.Dip {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []hostspeed.Dip
	for _, d := range l.dips {
		if !d.End.Before(from) && !d.Start.After(to) {
			out = append(out, d)
		}
	}
	return out
}

// slowShare is the share of [from, to] × the CPUs that had slowdowns
// (the CPUs are those the watcher process found, here every one).
func (l *dipLog) slowShare(from, to time.Time) float64 {
	var slow time.Duration
	for _, d := range l.Dips(from, to) {
		start, end := d.Start, d.End
		if start.Before(from) {
			start = from
		}
		if end.After(to) {
			end = to
		}
		slow += end.Sub(start)
	}
	return slow.Seconds() / to.Sub(from).Seconds() / float64(runtime.NumCPU())
}

// hostProcess watches the machine's CPUs from a child process (this test
// binary, re-executed), so that the probes' pinned threads do not take
// turns on the replayer's own Go scheduler. It returns once the probes
// know the CPUs' full speed.
func hostProcess(b *testing.B) *dipLog {
	out := childProcess(b, "TestHostSpeedChild", "TAPLINE_HOSTSPEED_CHILD")
	l := &dipLog{}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if sc.Text() == "ready" {
				close(ready)
				continue
			}
			if strings.HasPrefix(sc.Text(), "error:") {
				l.mu.Lock()
				l.err = errors.New(strings.TrimPrefix(sc.Text(), "error: "))
				l.mu.Unlock()
				close(ready)
				continue
			}
			var d hostspeed.Dip
			if json.Unmarshal(sc.Bytes(), &d) == nil && !d.Start.IsZero() {
				l.mu.Lock()
				l.dips = append(l.dips, d)
				l.mu.Unlock()
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		b.Fatal("the host watcher process did not start")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		b.Fatalf("the host watcher process: %v", l.err)
	}
	return l
}

// TestHostSpeedChild is the host watcher of hostProcess; it does nothing
// in a normal test run. It writes each slowdown as a JSON line.
func TestHostSpeedChild(t *testing.T) {
	if os.Getenv("TAPLINE_HOSTSPEED_CHILD") == "" {
		return
	}
	var mu sync.Mutex
	enc := json.NewEncoder(os.Stdout)
	w, err := hostspeed.Start(hostspeed.Config{OnDip: func(d hostspeed.Dip) {
		mu.Lock()
		defer mu.Unlock()
		enc.Encode(d)
	}})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // the probes' warm-up
	if err := w.Err(); err != nil {
		fmt.Println("error:", err) // a CPU not watched: no run could be called clean
		select {}
	}
	fmt.Println("ready")
	select {} // until the benchmark kills it
}

// quantileMS is the q-quantile of ds in milliseconds; it sorts ds.
func quantileMS(ds []time.Duration, q float64) float64 {
	slices.Sort(ds)
	return float64(ds[int(float64(len(ds)-1)*q)].Microseconds()) / 1000
}

// BenchmarkStagingOutage measures the replayer's memory while its only
// target is down, with an endless backlog to replay (a consumer far
// behind): 5 s healthy, then the outage, then 5 s healthy again. The
// outage lasts TAPLINE_BENCH_OUTAGE (default 60s). Two kinds of outage:
// "refused" (nothing listens: errors at once, the breaker pauses the
// target) and "hanging" (connections accepted, never answered: every
// request waits for the 10 s timeout). It reports the peak heap in use,
// the peak RSS, and the live heap (after a collection) at the start, the
// middle and the end of the outage. Run it with -benchtime=1x.
func BenchmarkStagingOutage(b *testing.B) {
	asTheCommand(b)
	outage := 60 * time.Second
	if v := os.Getenv("TAPLINE_BENCH_OUTAGE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			b.Fatal(err)
		}
		outage = d
	}
	for _, kind := range []string{"refused", "hanging"} {
		b.Run(kind, func(b *testing.B) {
			for b.Loop() {
				outageRun(b, kind, outage)
			}
		})
	}
}

func outageRun(b *testing.B, kind string, outage time.Duration) {
	var down atomic.Bool
	hold := make(chan struct{})
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			<-hold
			return
		}
		w.Write([]byte(`{"ok":true}`))
	})
	staging := httptest.NewServer(handler)
	addr := staging.Listener.Addr().String()
	u, _ := url.Parse(staging.URL)
	src := &batchSource{recs: benchBatch(b, 10_000, 0), batchSize: 100, total: math.MaxInt}
	r, err := New(Config{Source: src, Results: &discardSink{}, Targets: []Target{{Name: "t", URL: u}}, Logger: quiet()})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- r.Run(ctx) }()

	var peakHeap, peakRSS uint64
	sample := func() uint64 {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		peakHeap = max(peakHeap, ms.HeapInuse)
		peakRSS = max(peakRSS, vmRSS())
		return ms.HeapInuse
	}
	// live is the heap that survives a collection: what "flat" is about.
	// A plain reading lands anywhere on the collector's saw, which spans
	// a few times the live heap at GOGC=400.
	live := func() uint64 {
		sample()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	watch := func(d time.Duration) {
		for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(time.Second) {
			sample()
		}
	}
	watch(5 * time.Second)
	before := r.Stats()
	switch kind {
	case "refused":
		staging.Close()
	case "hanging":
		down.Store(true)
	}
	heapAtStart := live()
	watch(outage / 2)
	heapAtMiddle := live()
	watch(outage - outage/2)
	heapAtEnd := live()
	during := r.Stats()
	switch kind {
	case "refused":
		l, err := net.Listen("tcp", addr)
		if err != nil {
			b.Fatalf("listening on %s again: %v", addr, err)
		}
		staging = &httptest.Server{Listener: l, Config: &http.Server{Handler: handler}}
		staging.Start()
	case "hanging":
		down.Store(false)
		close(hold)
	}
	watch(5 * time.Second)
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	staging.Close()
	after := r.Stats()
	b.ReportMetric(float64(peakHeap)/(1<<20), "peak-heap-MiB")
	b.ReportMetric(float64(peakRSS)/(1<<20), "peak-RSS-MiB")
	b.ReportMetric(float64(heapAtStart)/(1<<20), "live-heap-outage-start-MiB")
	b.ReportMetric(float64(heapAtMiddle)/(1<<20), "live-heap-outage-middle-MiB")
	b.ReportMetric(float64(heapAtEnd)/(1<<20), "live-heap-outage-end-MiB")
	b.ReportMetric(float64(during.Replayed-before.Replayed), "results-in-outage")
	b.ReportMetric(float64(after.Replayed-during.Replayed), "results-after")
	b.ReportMetric(0, "ns/op")
}

// discardSink counts what it is given and keeps nothing.
type discardSink struct{ n atomic.Uint64 }

func (s *discardSink) Publish(_ context.Context, recs ...stream.Record) error {
	s.n.Add(uint64(len(recs)))
	return nil
}

// vmRSS is this process's resident set size in bytes (Linux), 0 if unknown.
func vmRSS() uint64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}
