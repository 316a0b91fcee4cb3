// Command bench measures the recorder against the capture-path goals of
// issue 3, on real traffic, and prints the figures as Markdown tables with
// a pass/fail per target. `make bench-capture` runs it; it needs root (or
// CAP_NET_RAW and CAP_SYS_RESOURCE), tcpdump and libpcap.
//
//  1. Offline: a real Go client sends -n requests to a real Go server over
//     -conns keep-alive connections on loopback while tcpdump captures the
//     port; the client logs every exchange (connection, order, method,
//     target, status, sha256 of both bodies). Two pcaps: "small" (small JSON
//     exchanges) and "mix" (a realistic API mix, see profileMix). They are
//     kept in -dir and reused while they match -n and -conns (-fresh makes
//     new ones).
//  2. The recorder reads each pcap in a child process with GOMAXPROCS=1 and
//     a sink that only counts (-repeat times; the median is reported): CPU
//     is getrusage user+sys around Run, allocations from runtime.MemStats,
//     peak RSS from VmHWM. A further child run decodes every exchange with
//     schema.DecodeExchange and compares it with the client's log.
//  3. Live: a child process records lo live (recorder/live) while the
//     client sends the -live-profile traffic at each -live-rates rate for
//     -live-duration ("max": as fast as the clients go). The child's CPU is
//     the recorder's; its sink spools the records to a file and decodes
//     them after the CPU is read.
//  4. Idle: -idle-conns connections (their client ends in another child,
//     as one process may not hold both ends of 10k connections under a
//     20 000 descriptor limit) each make one GET and stay open; the live
//     recorder child's resident set is read while they are held.
//
// Subcommands child-offline, child-live and child-idle-clients are the
// child processes.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"time"
)

func main() {
	var err error
	switch {
	case len(os.Args) > 1 && os.Args[1] == "child-offline":
		err = childOffline(os.Args[2:])
	case len(os.Args) > 1 && os.Args[1] == "child-live":
		err = childLive(os.Args[2:])
	case len(os.Args) > 1 && os.Args[1] == "child-idle-clients":
		err = childIdleClients(os.Args[2:])
	default:
		err = run(os.Args[1:])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type options struct {
	dir          string
	n            uint64
	conns        int
	fresh        bool
	repeat       int
	profileDir   string
	liveDuration time.Duration
	liveRates    []float64 // 0 is "max"
	liveProfile  profile
	idleConns    int
	skip         map[string]bool
}

func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.StringVar(&o.dir, "dir", ".cache/bench-capture", "where the pcaps and ground truths are kept (large; not committed)")
	fs.Uint64Var(&o.n, "n", 100000, "exchanges in each offline pcap")
	fs.IntVar(&o.conns, "conns", 32, "keep-alive connections the client uses")
	fs.BoolVar(&o.fresh, "fresh", false, "capture new pcaps even if matching ones are in -dir")
	fs.IntVar(&o.repeat, "repeat", 5, "timed offline runs per pcap (the median is reported)")
	fs.StringVar(&o.profileDir, "cpuprofile", "", "also write a CPU profile of one offline run per pcap into this directory")
	fs.DurationVar(&o.liveDuration, "live-duration", 15*time.Second, "how long each live rate runs")
	rates := fs.String("live-rates", "2000,5000,max", "live request rates per second; max = as fast as the clients go")
	prof := fs.String("live-profile", "mix", "traffic for the live runs: small or mix")
	fs.IntVar(&o.idleConns, "idle-conns", 10000, "idle connections held for the memory figure")
	skip := fs.String("skip", "", "comma-separated parts to skip: offline, live, idle")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	for _, r := range strings.Split(*rates, ",") {
		if r = strings.TrimSpace(r); r == "max" {
			o.liveRates = append(o.liveRates, 0)
			continue
		}
		v, err := strconv.ParseFloat(r, 64)
		if err != nil || v <= 0 {
			return o, fmt.Errorf("-live-rates: %q is not a rate (want numbers per second or max)", r)
		}
		o.liveRates = append(o.liveRates, v)
	}
	var err error
	if o.liveProfile, err = parseProfile(*prof); err != nil {
		return o, fmt.Errorf("-live-profile: %w", err)
	}
	o.skip = map[string]bool{}
	for _, s := range strings.Split(*skip, ",") {
		if s = strings.TrimSpace(s); s != "" {
			o.skip[s] = true
		}
	}
	if o.repeat < 1 {
		o.repeat = 1
	}
	return o, nil
}

func run(args []string) error {
	o, err := parseFlags(args)
	if err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "bench: not root: capturing needs CAP_NET_RAW and the idle test CAP_SYS_RESOURCE")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	began := time.Now()
	logf := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "[%6.1fs] %s\n", since(began), fmt.Sprintf(format, args...))
	}
	if err := os.MkdirAll(o.dir, 0o755); err != nil {
		return err
	}

	var offline []offlineRow
	if !o.skip["offline"] {
		for _, p := range []profile{profileSmall, profileMix} {
			d, ok := loadDataset(o.dir, p, o.n, o.conns)
			if ok && !o.fresh {
				logf("reusing %s (captured %s; -fresh captures anew)", d.Pcap, d.Created)
			} else {
				logf("capturing %d %s exchanges with tcpdump into %s", o.n, p, o.dir)
				if d, err = captureDataset(ctx, o.dir, p, o.n, o.conns, logf); err != nil {
					return err
				}
			}
			row, err := measureOffline(ctx, d, o.repeat, o.profileDir, logf)
			if err != nil {
				return err
			}
			offline = append(offline, row)
		}
	}
	var lives []liveRow
	if !o.skip["live"] {
		for _, rate := range o.liveRates {
			row, err := runLive(ctx, o.dir, o.liveProfile, rate, o.liveDuration, o.conns, logf)
			if err != nil {
				return err
			}
			lives = append(lives, row)
		}
	}
	var idle *idleRow
	if !o.skip["idle"] {
		row, err := runIdle(ctx, o.dir, o.idleConns, logf)
		if err != nil {
			return err
		}
		idle = &row
	}
	printReport(os.Stdout, o, offline, lives, idle, time.Since(began))
	return nil
}

// machine describes where the figures were taken.
func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if name, val, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(name) == "model name" {
				model = strings.TrimSpace(val)
				break
			}
		}
	}
	return fmt.Sprintf("%d CPUs `%s`, %s, %s/%s", runtime.NumCPU(), model, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
