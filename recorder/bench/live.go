package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/tapline/tapline/recorder"
	"github.com/tapline/tapline/recorder/live"
)

// liveMark is a snapshot of the live child: its CPU time, memory and the
// recorder's counters.
type liveMark struct {
	CPU   cpu
	Wall  float64 // seconds since the child started capturing
	Mem   memory
	Stats recorder.Stats
}

// liveResult is what the live child reports when stopped.
type liveResult struct {
	Final       liveMark // after Run returned, before verifying
	RunError    string   `json:",omitempty"`
	Verify      report
	Undecodable int
}

// childLive runs in a child process: a live capture of one port on lo into
// a spoolSink, so that the child's CPU time is the recorder's (with
// libpcap's and the spool's) and its heap stays as small as with a real
// producer. It prints READY, then answers commands on stdin: "mark" prints
// a MARK line with a liveMark; "stop TRUTH" cancels the capture, lets Run
// flush, takes a last mark, then decodes every record, verifies it against
// the ground truth file TRUTH and prints a RESULT line.
func childLive(args []string) error {
	fs := flag.NewFlagSet("child-live", flag.ContinueOnError)
	port := fs.Int("port", 0, "TCP port to capture on lo")
	spool := fs.String("spool", "", "file the records are written to until verified")
	if err := fs.Parse(args); err != nil {
		return err
	}
	sink, err := newSpoolSink(*spool)
	if err != nil {
		return err
	}
	defer sink.close()
	src, err := live.Open(live.Config{Interface: "lo", Ports: []int{*port}})
	if err != nil {
		return err
	}
	rec, err := recorder.New(recorder.Config{
		Live: src, Sink: sink, Name: "bench",
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		src.Close()
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- rec.Run(ctx) }()
	// BENCH_LIVE_CPUPROFILE=path profiles the live recorder (the figures
	// of such a run include the profiler's own cost).
	if path := os.Getenv("BENCH_LIVE_CPUPROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	start := time.Now()
	mark := func() liveMark {
		return liveMark{CPU: cpuNow(), Wall: since(start), Mem: memoryNow(), Stats: rec.Stats()}
	}
	fmt.Println("READY")
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		cmd, arg, _ := strings.Cut(sc.Text(), " ")
		switch cmd {
		case "mark":
			if err := printResult("MARK", mark()); err != nil {
				return err
			}
		case "stop":
			cancel()
			runErr := <-done
			pprof.StopCPUProfile()
			res := liveResult{Final: mark()}
			src.Close()
			if runErr != nil {
				res.RunError = runErr.Error()
			}
			truth, err := readTruth(arg)
			if err != nil {
				return err
			}
			obs, undecodable, err := sink.observed()
			if err != nil {
				return err
			}
			res.Verify, res.Undecodable = verify(truth, obs), undecodable
			res.Verify.Undecodable = undecodable
			return printResult("RESULT", res)
		default:
			return fmt.Errorf("child-live: unknown command %q", sc.Text())
		}
	}
	return errors.New("child-live: stdin closed before stop")
}

// liveChild is the parent's handle on a child process it talks to by
// lines on stdin and stdout (childLive, childIdleClients).
type liveChild struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out <-chan string
}

// startChild runs this program again with args.
func startChild(ctx context.Context, args ...string) (*liveChild, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, self, args...)
	cmd.Env = append(os.Environ(), recorderGCEnv()...)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return &liveChild{cmd: cmd, in: in, out: readLines(stdout)}, nil
}

func startLiveChild(ctx context.Context, dir string, port int) (*liveChild, error) {
	spool := filepath.Join(dir, fmt.Sprintf("live-%d.spool", port))
	c, err := startChild(ctx, "child-live", "-port", fmt.Sprint(port), "-spool", spool)
	if err != nil {
		return nil, err
	}
	if _, err := c.expect("READY"); err != nil {
		c.kill()
		return nil, fmt.Errorf("starting the live recorder (needs root or CAP_NET_RAW): %w", err)
	}
	return c, nil
}

// expect waits for the next line starting with tag and returns the rest.
func (c *liveChild) expect(tag string) (string, error) {
	timeout := time.After(2 * time.Minute)
	for {
		select {
		case line, ok := <-c.out:
			if !ok {
				return "", fmt.Errorf("%s exited before %s", c.cmd.Args[1], tag)
			}
			if rest, ok := strings.CutPrefix(line, tag); ok {
				return strings.TrimSpace(rest), nil
			}
		case <-timeout:
			return "", fmt.Errorf("%s: no %s within 2 minutes", c.cmd.Args[1], tag)
		}
	}
}

func (c *liveChild) mark() (liveMark, error) {
	var m liveMark
	if _, err := io.WriteString(c.in, "mark\n"); err != nil {
		return m, err
	}
	line, err := c.expect("MARK")
	if err != nil {
		return m, err
	}
	return m, json.Unmarshal([]byte(line), &m)
}

func (c *liveChild) stop(truthPath string) (liveResult, error) {
	var r liveResult
	if _, err := io.WriteString(c.in, "stop "+truthPath+"\n"); err != nil {
		return r, err
	}
	line, err := c.expect("RESULT")
	if err != nil {
		return r, err
	}
	c.in.Close()
	if err := c.cmd.Wait(); err != nil {
		return r, fmt.Errorf("live recorder: %w", err)
	}
	return r, json.Unmarshal([]byte(line), &r)
}

func (c *liveChild) kill() {
	c.cmd.Process.Kill()
	c.cmd.Wait()
}

// liveRow is one live scenario's figures.
type liveRow struct {
	Name    string
	Rate    float64 // asked for; 0 is as fast as the clients go
	Sent    int
	LoadSec float64
	CPUSec  float64 // the recorder child's user+sys from the start of the load to 1s after its end
	CPUSys  float64 // of which system time
	// Background is the CPU (in cores) processes other than the bench and
	// its recorder used while the traffic flowed.
	Background float64
	Result     liveResult
	Achieved   float64
}

// rateReached says whether the client kept up with the rate asked for (a
// fixed-rate row where it did not measured something else).
func (r liveRow) rateReached() bool { return r.Rate == 0 || r.Achieved >= 0.97*r.Rate }

// CPUPercent is the recorder's CPU time as a share of one core over the
// time the traffic flowed (the second of draining after it is charged too).
func (r liveRow) CPUPercent() float64 { return 100 * r.CPUSec / r.LoadSec }

// runLive sends profile p at rate for duration over conns connections to
// a server captured live by a child recorder, and verifies every exchange.
func runLive(ctx context.Context, dir string, p profile, rate float64, duration time.Duration, conns int, logf func(string, ...any)) (liveRow, error) {
	row := liveRow{Name: fmt.Sprintf("%.0f/s", rate), Rate: rate}
	if rate == 0 {
		row.Name = "max"
	}
	srv, err := startServer()
	if err != nil {
		return row, err
	}
	defer srv.close()
	child, err := startLiveChild(ctx, dir, srv.port())
	if err != nil {
		return row, err
	}
	defer func() {
		if child.cmd.ProcessState == nil {
			child.kill()
		}
	}()
	waitQuiet(2*time.Minute, logf)
	m0, err := child.mark()
	if err != nil {
		return row, err
	}
	s0, own0 := sysNow(), selfChildrenCPU()
	res, err := load{base: srv.url(), prof: p, conns: conns, rate: rate, duration: duration}.run(ctx)
	if err != nil {
		return row, fmt.Errorf("live %s: sending traffic: %w", row.Name, err)
	}
	time.Sleep(time.Second) // the recorder reads what is still queued
	m1, err := child.mark()
	if err != nil {
		return row, err
	}
	ours := (selfChildrenCPU() - own0) + (m1.CPU.Total() - m0.CPU.Total())
	row.Background = max(0, ((sysNow().Busy-s0.Busy)-ours)/(m1.Wall-m0.Wall))
	truth := filepath.Join(dir, "live-"+strings.TrimSuffix(row.Name, "/s")+".truth.tsv")
	if err := writeTruth(truth, res.truth); err != nil {
		return row, err
	}
	if row.Result, err = child.stop(truth); err != nil {
		return row, err
	}
	row.Sent, row.LoadSec = len(res.truth), res.elapsed.Seconds()
	row.Achieved = float64(row.Sent) / row.LoadSec
	row.CPUSec, row.CPUSys = m1.CPU.Total()-m0.CPU.Total(), m1.CPU.Sys-m0.CPU.Sys
	v := row.Result.Verify
	logf("live %s: %d requests at %.0f/s, %d recovered byte-exact (%.3f%%), recorder CPU %.1f%% of one core, kernel drops %d, other processes %.2f cores",
		row.Name, row.Sent, row.Achieved, v.Matched, v.Percent(), row.CPUPercent(), row.Result.Final.Stats.KernelDrops, row.Background)
	return row, nil
}

// lossVisible says whether losses show in the counters: nothing was lost,
// or the kernel or the recorder counted drops or responses missing. (A
// dropped packet can cost several exchanges and a gap is counted once per
// message, so the counts are not expected to equal the losses.)
func (r liveRow) lossVisible() bool {
	v, st := r.Result.Verify, r.Result.Final.Stats
	if v.Matched == v.Truth {
		return true
	}
	return st.KernelDrops+recorderDrops(st)+st.ResponsesMissing > 0
}

func recorderDrops(s recorder.Stats) uint64 {
	var n uint64
	for _, v := range s.Drops {
		n += v
	}
	return n
}
