package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sort"
	"strings"
	"time"

	"github.com/tapline/tapline/recorder"
)

// offlineResult is what one child run of the recorder over a pcap reports.
type offlineResult struct {
	GOMAXPROCS   int
	Stats        recorder.Stats
	Records      uint64 // records the sink took
	RecordBytes  uint64
	CPU          cpu     // during Run
	Wall         float64 // seconds, during Run
	Mallocs      uint64  // heap allocations during Run
	AllocBytes   uint64
	NumGC        uint32
	PeakRSSKiB   int64   // VmHWM of the child after Run
	Background   float64 // cores other processes used during the run (set by the parent)
	Verify       *report
	Undecodable  int
	ProfileWrote string `json:",omitempty"`
}

// childOffline runs in a child process (GOMAXPROCS=1 in its environment):
// the recorder reads one pcap into a sink, and the child prints its CPU
// time (getrusage, around Run only), allocations and peak RSS as a RESULT
// line. With -verify the sink decodes every exchange and the result holds
// the comparison with the ground truth; that run is not the one timed.
func childOffline(args []string) error {
	fs := flag.NewFlagSet("child-offline", flag.ContinueOnError)
	pcap := fs.String("pcap", "", "capture file")
	truthPath := fs.String("truth", "", "ground truth (with -verify)")
	check := fs.Bool("verify", false, "decode and verify every exchange (not timed)")
	profile := fs.String("cpuprofile", "", "write a CPU profile of Run here")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var (
		counts               = &countSink{}
		checks               = &verifySink{}
		sink   recorder.Sink = counts
	)
	if *check {
		sink = checks
	}
	rec, err := recorder.New(recorder.Config{
		PcapFiles: []string{*pcap}, Sink: sink, Name: "bench",
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		return err
	}
	if *profile != "" {
		f, err := os.Create(*profile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
	}
	runtime.GC()
	m0, c0, t0 := memoryNow(), cpuNow(), time.Now()
	err = rec.Run(context.Background())
	wall, c1, m1 := since(t0), cpuNow(), memoryNow()
	if *profile != "" {
		pprof.StopCPUProfile()
	}
	if err != nil {
		return fmt.Errorf("recording %s: %w", *pcap, err)
	}
	res := offlineResult{
		GOMAXPROCS: runtime.GOMAXPROCS(0), Stats: rec.Stats(), Records: counts.records, RecordBytes: counts.bytes,
		CPU: c1.sub(c0), Wall: wall, Mallocs: m1.Mallocs - m0.Mallocs, AllocBytes: m1.TotalAlloc - m0.TotalAlloc,
		NumGC: m1.NumGC - m0.NumGC, PeakRSSKiB: m1.HWMKiB, ProfileWrote: *profile,
	}
	if *check {
		truth, err := readTruth(*truthPath)
		if err != nil {
			return err
		}
		rep := verify(truth, checks.obs)
		rep.Undecodable = checks.undecodable
		res.Records = uint64(len(checks.obs) + checks.undecodable)
		res.Verify = &rep
	}
	return printResult("RESULT", res)
}

func printResult(tag string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Printf("%s %s\n", tag, b)
	return err
}

// runChild runs this program again with args and env added, and decodes
// the line it prints with the RESULT tag into out.
func runChild(ctx context.Context, env []string, out any, args ...string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, self, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
	b, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("child %s: %w", strings.Join(args, " "), err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "RESULT "); ok {
			return json.Unmarshal([]byte(rest), out)
		}
	}
	return errors.New("child " + strings.Join(args, " ") + ": no result")
}

// offlineRow is the measured figures for one dataset.
type offlineRow struct {
	Data    dataset
	Runs    []offlineResult // timed runs, sorted by CPU time
	Median  offlineResult
	Checked offlineResult // the verifying run
}

// measureOffline times the recorder over d repeat times in children with
// GOMAXPROCS=1 and a counting sink, then verifies it once with the
// decoding sink. With profileDir set, five more runs write CPU profiles.
func measureOffline(ctx context.Context, d dataset, repeat int, profileDir string, logf func(string, ...any)) (offlineRow, error) {
	row := offlineRow{Data: d}
	env := append([]string{"GOMAXPROCS=1"}, recorderGCEnv()...)
	for i := range repeat {
		waitQuiet(2*time.Minute, logf)
		var res offlineResult
		s0, own0, t0 := sysNow(), selfChildrenCPU(), time.Now()
		if err := runChild(ctx, env, &res, "child-offline", "-pcap", d.Pcap); err != nil {
			return row, err
		}
		res.Background = max(0, ((sysNow().Busy-s0.Busy)-(selfChildrenCPU()-own0))/since(t0))
		logf("offline %s run %d: %d exchanges in %.2f CPU-s (%.0f/CPU-s), %.2fs wall, other processes %.2f cores",
			d.Profile, i+1, res.Stats.Exchanges, res.CPU.Total(), float64(res.Stats.Exchanges)/res.CPU.Total(), res.Wall, res.Background)
		row.Runs = append(row.Runs, res)
	}
	sort.Slice(row.Runs, func(i, j int) bool { return row.Runs[i].CPU.Total() < row.Runs[j].CPU.Total() })
	row.Median = row.Runs[len(row.Runs)/2]
	if err := runChild(ctx, env, &row.Checked, "child-offline", "-pcap", d.Pcap, "-truth", d.Truth, "-verify"); err != nil {
		return row, err
	}
	v := row.Checked.Verify
	logf("offline %s verified: %d of %d exchanges byte-exact (%d missing, %d extra, %d body differences)",
		d.Profile, v.Matched, v.Truth, v.Missing, v.Extra, v.ReqBodyDiff+v.RespBodyDiff)
	if profileDir != "" {
		// One run gives ~150 samples: profile five and merge them.
		if err := os.MkdirAll(profileDir, 0o755); err != nil {
			return row, err
		}
		var paths []string
		for i := range 5 {
			path := filepath.Join(profileDir, fmt.Sprintf("offline-%s-%d.pprof", d.Profile, i+1))
			waitQuiet(2*time.Minute, logf)
			var res offlineResult
			if err := runChild(ctx, env, &res, "child-offline", "-pcap", d.Pcap, "-cpuprofile", path); err != nil {
				return row, err
			}
			paths = append(paths, path)
		}
		logf("offline %s: CPU profiles of 5 runs: go tool pprof -top %s", d.Profile, strings.Join(paths, " "))
	}
	return row, nil
}

// recorderGCEnv is the garbage-collector setting `tapline record` runs
// with by default, for the children that run the recorder.
func recorderGCEnv() []string {
	return []string{fmt.Sprintf("GOGC=%d", recorder.DefaultGCPercent), fmt.Sprintf("GOMEMLIMIT=%d", recorder.DefaultMemoryLimit)}
}
