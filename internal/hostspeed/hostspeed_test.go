package hostspeed

import (
	"testing"
	"time"
)

func TestTracker(t *testing.T) {
	t0 := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	ms := func(i int) time.Time { return t0.Add(time.Duration(i) * time.Millisecond) }
	// probe costs in µs, one per millisecond, after a warm-up at 20 µs
	tests := []struct {
		name   string
		minDip time.Duration
		costs  []int
		want   []Dip // Start/End in probe indexes (as ms), Speed
	}{
		{"steady", 0, []int{20, 21, 19, 22, 20}, nil},
		{"one slow probe", 0, []int{20, 20, 100, 20}, []Dip{{Start: ms(2), End: ms(3), Speed: 0.2}}},
		{"a dip of two probes; 40 µs is at the threshold", 0, []int{20, 50, 200, 40, 20},
			[]Dip{{Start: ms(1), End: ms(3), Speed: 0.1}}},
		{"two dips", 0, []int{100, 20, 20, 80, 20}, []Dip{{Start: ms(0), End: ms(1), Speed: 0.2}, {Start: ms(3), End: ms(4), Speed: 0.25}}},
		{"at the threshold is not slow", 0, []int{40, 40, 20}, nil},
		{"still open at the end is flushed", 0, []int{20, 200, 200}, []Dip{{Start: ms(1), End: ms(3), Speed: 0.1}}},
		{"a zero reading is ignored", 0, []int{0, 20, 0}, nil},
		{"shorter than MinDip is dropped", 2 * time.Millisecond, []int{20, 100, 20, 100, 100, 20},
			[]Dip{{Start: ms(3), End: ms(5), Speed: 0.2}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := tracker{cpu: 1, threshold: 0.5, minDip: tc.minDip}
			for range warmup {
				if d := tr.observe(t0.Add(-time.Second), t0.Add(-time.Second), 20*time.Microsecond); d != nil {
					t.Fatalf("dip during warm-up: %v", d)
				}
			}
			var got []Dip
			for i, c := range tc.costs {
				if d := tr.observe(ms(i), ms(i+1), time.Duration(c)*time.Microsecond); d != nil {
					got = append(got, *d)
				}
			}
			if d := tr.flush(); d != nil {
				got = append(got, *d)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("dips = %v, want %v", got, tc.want)
			}
			for i, w := range tc.want {
				w.CPU = 1
				if got[i] != w {
					t.Errorf("dip %d = %+v, want %+v", i, got[i], w)
				}
			}
		})
	}
}

func TestTrackerWarmup(t *testing.T) {
	// A slow first probe sets no baseline that later probes are judged by.
	tr := tracker{threshold: 0.5}
	t0 := time.Now()
	tr.observe(t0, t0, 200*time.Microsecond)
	for range warmup - 1 {
		if d := tr.observe(t0, t0, 20*time.Microsecond); d != nil {
			t.Fatalf("dip during warm-up: %v", d)
		}
	}
	if tr.best != 20*time.Microsecond {
		t.Fatalf("full speed = %v, want the fastest probe, 20µs", tr.best)
	}
}

// TestWatcher runs the real probes briefly: they pin themselves, read
// their CPU time and count.
func TestWatcher(t *testing.T) {
	w, err := Start(Config{})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	dips, err := w.Stop()
	if err != nil {
		t.Fatal(err)
	}
	if w.Probes() == 0 || w.CPUs() == 0 {
		t.Fatalf("%d probes on %d CPUs in 200ms", w.Probes(), w.CPUs())
	}
	for _, d := range dips {
		if d.End.Before(d.Start) || d.Speed <= 0 || d.Speed >= 0.5 {
			t.Errorf("malformed dip %+v", d)
		}
	}
	t.Logf("%d probes, %d dips: %v", w.Probes(), len(dips), dips)
}

func TestStartRefusesABadCPU(t *testing.T) {
	w, err := Start(Config{CPUs: []int{1023}})
	if err != nil {
		t.Fatal(err)
	}
	// The probe fails as it starts; on a loaded machine that can take a
	// moment.
	for end := time.Now().Add(10 * time.Second); w.Err() == nil && time.Now().Before(end); {
		time.Sleep(10 * time.Millisecond)
	}
	if w.Err() == nil {
		t.Error("Err: a probe pinned to cpu 1023 reported no error while running")
	}
	if _, err := w.Stop(); err == nil {
		t.Fatal("Stop: a probe pinned to cpu 1023 reported no error")
	}
}

// BenchmarkHostSpeed watches the machine's CPUs for one second per
// iteration and reports how often and how far they slowed down: dips per
// minute, the share of time in a dip, the slowest speed seen and the
// longest dip. It measures the host, not tapline: run it before trusting
// a latency figure from this machine.
//
//	go test -run='^$' -bench=HostSpeed -benchtime=30x ./internal/hostspeed
func BenchmarkHostSpeed(b *testing.B) {
	w, err := Start(Config{})
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	for b.Loop() {
		time.Sleep(time.Second)
	}
	dips, err := w.Stop()
	if err != nil {
		b.Fatal(err)
	}
	elapsed := time.Since(start)
	slowest, longest := 1.0, time.Duration(0)
	var in time.Duration
	for _, d := range dips {
		slowest = min(slowest, d.Speed)
		longest = max(longest, d.Duration())
		in += d.Duration()
	}
	b.ReportMetric(float64(len(dips))/elapsed.Minutes(), "dips/min")
	b.ReportMetric(100*in.Seconds()/elapsed.Seconds()/float64(w.CPUs()), "%-in-dip")
	b.ReportMetric(100*slowest, "%-slowest")
	b.ReportMetric(float64(longest.Milliseconds()), "ms-longest")
	b.ReportMetric(0, "ns/op")
}
