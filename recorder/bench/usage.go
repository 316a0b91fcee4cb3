package main

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// cpu is the user and system CPU time of this process so far.
type cpu struct {
	User, Sys float64 // seconds
	MaxRSSKiB int64   // peak resident set (getrusage ru_maxrss)
}

func (c cpu) Total() float64 { return c.User + c.Sys }

func cpuNow() cpu {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	sec := func(tv syscall.Timeval) float64 { return float64(tv.Sec) + float64(tv.Usec)/1e6 }
	return cpu{User: sec(ru.Utime), Sys: sec(ru.Stime), MaxRSSKiB: ru.Maxrss}
}

func (c cpu) sub(before cpu) cpu {
	return cpu{User: c.User - before.User, Sys: c.Sys - before.Sys, MaxRSSKiB: c.MaxRSSKiB}
}

// memory is the resident set now and at its peak (/proc/self/status), and
// the Go runtime's view.
type memory struct {
	RSSKiB, HWMKiB      int64
	HeapInuse, GoSys    uint64 // bytes
	Mallocs, TotalAlloc uint64
	NumGC               uint32
}

func memoryNow() memory {
	var m memory
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m.HeapInuse, m.GoSys, m.Mallocs, m.TotalAlloc, m.NumGC = ms.HeapInuse, ms.Sys, ms.Mallocs, ms.TotalAlloc, ms.NumGC
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return m
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		kib, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(val), " kB"), 10, 64)
		switch name {
		case "VmRSS":
			m.RSSKiB = kib
		case "VmHWM":
			m.HWMKiB = kib
		}
	}
	return m
}

// raiseOpenFiles lets this process (and its children) hold want open
// files: the 10k idle connections need two descriptors each here (client
// and server side). Raising the hard limit needs root (CAP_SYS_RESOURCE).
func raiseOpenFiles(want uint64) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("reading the open-files limit: %w", err)
	}
	if lim.Cur >= want {
		return nil
	}
	if lim.Max < want {
		lim.Max = want
	}
	lim.Cur = want
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("raising the open-files limit to %d (needs root or CAP_SYS_RESOURCE, or run `ulimit -n %d` first): %w", want, want, err)
	}
	return nil
}

func mib(kib int64) float64 { return float64(kib) / 1024 }

func since(t time.Time) float64 { return time.Since(t).Seconds() }

// sysCPU is the whole machine's CPU time so far (/proc/stat), in seconds.
type sysCPU struct {
	Busy, Total float64
}

func sysNow() sysCPU {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return sysCPU{}
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal ...
	var s sysCPU
	for i, v := range f[1:] {
		n, _ := strconv.ParseFloat(v, 64)
		n /= 100 // USER_HZ
		if i == 7 {
			continue // steal: time the hypervisor gave to someone else
		}
		s.Total += n
		if i != 3 && i != 4 { // idle, iowait
			s.Busy += n
		}
	}
	return s
}

// selfChildrenCPU is the CPU time of this process and of its children
// that have been waited for.
func selfChildrenCPU() float64 {
	var self, kids syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &self)
	syscall.Getrusage(syscall.RUSAGE_CHILDREN, &kids)
	sec := func(tv syscall.Timeval) float64 { return float64(tv.Sec) + float64(tv.Usec)/1e6 }
	return sec(self.Utime) + sec(self.Stime) + sec(kids.Utime) + sec(kids.Stime)
}

// quietBelow is the CPU (in cores) other processes may use for the
// machine to count as quiet.
const quietBelow = 0.15

// waitQuiet waits, up to limit, until processes other than this one use
// less than quietBelow cores over a second: these machines are shared,
// and someone's fuzzer on both cores changes every figure. It returns the
// background load it saw last.
func waitQuiet(limit time.Duration, logf func(string, ...any)) float64 {
	deadline := time.Now().Add(limit)
	warned := false
	for {
		s0, own0, t0 := sysNow(), selfChildrenCPU(), time.Now()
		time.Sleep(time.Second)
		bg := ((sysNow().Busy - s0.Busy) - (selfChildrenCPU() - own0)) / since(t0)
		if bg < quietBelow {
			return max(bg, 0)
		}
		if time.Now().After(deadline) {
			logf("machine still busy (other processes use %.2f cores); measuring anyway", bg)
			return bg
		}
		if !warned {
			logf("machine busy (other processes use %.2f cores); waiting up to %s for it to calm down", bg, limit)
			warned = true
		}
	}
}
