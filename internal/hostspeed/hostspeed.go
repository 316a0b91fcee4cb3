// Package hostspeed watches how fast this machine's CPUs run a fixed piece
// of work, so that a latency benchmark can tell its own stalls from the
// host's.
//
// On a virtual machine the hypervisor can run a vCPU slowly while the
// guest's clocks keep going. The guest then sees its threads running, its
// timers firing late and its work taking longer, and no code in the guest
// can help it. On the 2-vCPU machines tapline is developed on, a pure CPU
// loop on an otherwise idle guest drops to a few percent of its speed
// (4–60 % seen, mostly under 10 %) for 30–250 ms at a time, about once a
// second or more often, on both vCPUs at once, while the guest's profiler
// shows the loop on the CPU the whole time and /proc/stat shows no steal
// time (BENCHMARKS.md, issue 4). A benchmark that keeps a schedule to the
// millisecond measures those slowdowns, not itself.
//
// A Watcher runs one probe thread per CPU, pinned to it. Every Every, the
// probe runs a fixed amount of arithmetic and reads its thread's CPU time
// around it. CPU time only counts while the guest runs the thread, so a
// guest that preempts the probe does not make it look slow; a host that
// slows the vCPU does, because the guest still counts that time as the
// thread's. A probe that took more than 1/Threshold times the fastest one
// seen on that CPU marks a Dip. The probes cost about 2 % of each CPU.
//
// What it cannot see: time the guest accounts as stolen (paravirtual steal
// time, the steal column of /proc/stat) is left out of thread CPU time, so
// a host that stops a vCPU and says so shows up there, not here.
package hostspeed

import (
	"fmt"
	"runtime"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Config says which CPUs to watch and how closely. The zero value watches
// every CPU the process may run on, once a millisecond, and reports probes
// that ran at under half speed.
type Config struct {
	// CPUs are the CPU numbers to watch. Default: every CPU in the
	// process's affinity mask.
	CPUs []int
	// Every is the time between two probes on a CPU. Default 1ms.
	Every time.Duration
	// Threshold is the speed, as a fraction of the fastest probe seen on
	// the CPU, under which a probe counts as slowed. Default 0.5.
	Threshold float64
	// Work is the number of arithmetic rounds a probe runs. Default 20000
	// (about 20 µs on a 2020s server core).
	Work int
	// MinDip is the shortest slowdown reported as a Dip. Default 2ms: a
	// lone slow probe is mostly an interrupt handled on the probe's time.
	MinDip time.Duration
	// OnDip, when set, is called with each dip as it ends, from the probe
	// thread of its CPU; it must return quickly.
	OnDip func(Dip)
}

// Dip is a stretch of at least Config.MinDip in which every probe on one
// CPU ran slower than Config.Threshold.
type Dip struct {
	CPU        int
	Start, End time.Time
	// Speed is the slowest probe in the dip, as a fraction of the fastest
	// probe seen on the CPU.
	Speed float64
}

// Duration is how long the dip lasted, from the start of its first slow
// probe to the end of its last.
func (d Dip) Duration() time.Duration { return d.End.Sub(d.Start) }

func (d Dip) String() string {
	return fmt.Sprintf("cpu %d: %v at %.0f%% speed from %s", d.CPU, d.Duration().Round(time.Millisecond),
		100*d.Speed, d.Start.Format("15:04:05.000"))
}

// Watcher runs the probes; see Start.
type Watcher struct {
	onDip func(Dip)
	cpus  int
	stop  chan struct{}
	wg    sync.WaitGroup

	mu     sync.Mutex
	dips   []Dip
	probes int
	err    error
	sum    uint64 // the probes' results, kept so the compiler keeps the work
}

// Start starts one probe thread per CPU in cfg.CPUs. Stop ends them.
func Start(cfg Config) (*Watcher, error) {
	if cfg.Every <= 0 {
		cfg.Every = time.Millisecond
	}
	if cfg.Threshold <= 0 || cfg.Threshold >= 1 {
		cfg.Threshold = 0.5
	}
	if cfg.Work <= 0 {
		cfg.Work = 20000
	}
	if cfg.MinDip <= 0 {
		cfg.MinDip = 2 * time.Millisecond
	}
	if len(cfg.CPUs) == 0 {
		var set unix.CPUSet
		if err := unix.SchedGetaffinity(0, &set); err != nil {
			return nil, fmt.Errorf("reading the CPUs this process may run on: %w", err)
		}
		for cpu := range 1024 {
			if set.IsSet(cpu) {
				cfg.CPUs = append(cfg.CPUs, cpu)
			}
		}
	}
	w := &Watcher{onDip: cfg.OnDip, cpus: len(cfg.CPUs), stop: make(chan struct{})}
	for _, cpu := range cfg.CPUs {
		w.wg.Add(1)
		go w.probe(cfg, cpu)
	}
	return w, nil
}

// Stop ends the probes and returns every dip seen, by start time within
// each CPU. The error is from a probe that could not pin itself to its CPU
// or read its CPU time; its dips are then missing.
func (w *Watcher) Stop() ([]Dip, error) {
	close(w.stop)
	w.wg.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.dips, w.err
}

// Dips returns the dips seen so far that overlap [from, to].
func (w *Watcher) Dips(from, to time.Time) []Dip {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []Dip
	for _, d := range w.dips {
		if !d.End.Before(from) && !d.Start.After(to) {
			out = append(out, d)
		}
	}
	return out
}

// CPUs is how many CPUs the watcher probes.
func (w *Watcher) CPUs() int { return w.cpus }

// Err is the first error of a probe so far: one that could not pin itself
// to its CPU or read its CPU time, so that CPU is not watched.
func (w *Watcher) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Probes is how many probes have run, over all CPUs.
func (w *Watcher) Probes() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.probes
}

func (w *Watcher) fail(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil {
		w.err = err
	}
}

// probe is the probe thread of one CPU.
func (w *Watcher) probe(cfg Config, cpu int) {
	defer w.wg.Done()
	runtime.LockOSThread() // never unlocked: the pinned thread ends with the goroutine
	var set unix.CPUSet
	set.Set(cpu)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		w.fail(fmt.Errorf("pinning the probe to cpu %d: %w", cpu, err))
		return
	}
	t := tracker{cpu: cpu, threshold: cfg.Threshold, minDip: cfg.MinDip}
	tick := time.NewTicker(cfg.Every)
	defer tick.Stop()
	var sum uint64
	for {
		select {
		case <-w.stop:
			w.record(t.flush(), 0)
			w.mu.Lock()
			w.sum += sum
			w.mu.Unlock()
			return
		case <-tick.C:
		}
		start := time.Now()
		c0, err := threadCPU()
		if err != nil {
			w.fail(err)
			return
		}
		sum += spin(cfg.Work)
		c1, err := threadCPU()
		if err != nil {
			w.fail(err)
			return
		}
		w.record(t.observe(start, time.Now(), c1-c0), 1)
	}
}

func (w *Watcher) record(d *Dip, probes int) {
	w.mu.Lock()
	w.probes += probes
	if d != nil {
		w.dips = append(w.dips, *d)
	}
	w.mu.Unlock()
	if d != nil && w.onDip != nil {
		w.onDip(*d)
	}
}

// warmup is how many probes set a CPU's full speed before any counts as
// slow.
const warmup = 20

// tracker turns one CPU's probes into dips.
type tracker struct {
	cpu       int
	threshold float64
	minDip    time.Duration
	n         int
	best      time.Duration // fastest probe so far: full speed
	open      *Dip          // the dip in progress
}

// observe takes a probe that ran from start to end and cost the thread cpu
// of CPU time. It returns a dip that the probe ended, if any.
func (t *tracker) observe(start, end time.Time, cpu time.Duration) *Dip {
	if cpu <= 0 {
		return nil // below the clock's resolution; tells nothing
	}
	t.n++
	if t.best == 0 || cpu < t.best {
		t.best = cpu
	}
	if t.n <= warmup {
		return nil
	}
	speed := float64(t.best) / float64(cpu)
	if speed >= t.threshold {
		return t.flush()
	}
	if t.open == nil {
		t.open = &Dip{CPU: t.cpu, Start: start, Speed: speed}
	}
	t.open.End = end
	t.open.Speed = min(t.open.Speed, speed)
	return nil
}

// flush ends the dip in progress, if any, and returns it unless it is
// shorter than minDip.
func (t *tracker) flush() *Dip {
	d := t.open
	t.open = nil
	if d != nil && d.Duration() < t.minDip {
		return nil
	}
	return d
}

// spin runs n rounds of xorshift: arithmetic in registers, no memory.
func spin(n int) uint64 {
	x := uint64(88172645463325252)
	for range n {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
	}
	return x
}

// threadCPU is the CPU time the calling thread has used.
func threadCPU() (time.Duration, error) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		return 0, fmt.Errorf("reading the probe thread's CPU time: %w", err)
	}
	return time.Duration(ts.Nano()), nil
}
