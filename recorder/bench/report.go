package main

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The goals of issue 3. Each is reported as met or missed; none fails the
// command, which is a measurement, not a test.
const (
	targetSmallPerSec   = 100000 // exchanges/s on one core (GOMAXPROCS=1), small JSON pcap
	targetMixPerCPUSec  = 75000  // exchanges per CPU-second, API mix pcap
	targetLiveRate      = 5000   // requests/s live: all recovered ...
	targetLiveCPUPct    = 12.0   // ... using at most this % of one core
	targetMaxRecoverPct = 99.99  // at the most the machine generates, with every loss counted
	targetIdleRSSMiB    = 200.0  // with 10k idle connections
)

// group writes n with a space between thousands, as BENCHMARKS.md does.
func group(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(' ')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func verdict(ok bool, miss string) string {
	if ok {
		return "**met**"
	}
	return "**missed** (" + miss + ")"
}

// recovery is "100.00 % (n/n)" with the kinds of problems, if any.
func recovery(v report) string {
	s := fmt.Sprintf("%.2f %% (%s of %s)", floor2(v.Percent()), group(int64(v.Matched)), group(int64(v.Truth)))
	var bad []string
	for _, p := range []struct {
		n    int
		name string
	}{{v.Missing, "missing"}, {v.Extra, "extra"}, {v.WrongConn, "wrong conn"}, {v.OutOfOrder, "out of order"},
		{v.NoResponse, "no response"}, {v.StatusDiff, "status differs"}, {v.ReqBodyDiff, "request body differs"},
		{v.RespBodyDiff, "response body differs"}, {v.Undecodable, "undecodable"}} {
		if p.n > 0 {
			bad = append(bad, fmt.Sprintf("%s %s", group(int64(p.n)), p.name))
		}
	}
	if len(bad) > 0 {
		s += ": " + strings.Join(bad, ", ")
	}
	return s
}

// floor2 rounds a percentage down to two decimals, so 99.999 % is not
// printed as 100.00 %.
func floor2(p float64) float64 { return float64(int64(p*100)) / 100 }

func dropsText(drops map[string]uint64) string {
	var parts []string
	for k, v := range drops {
		if v > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", k, v))
		}
	}
	sort.Strings(parts)
	if len(parts) == 0 {
		return "0"
	}
	return strings.Join(parts, ", ")
}

func printReport(w io.Writer, o options, offline []offlineRow, lives []liveRow, idle *idleRow, took time.Duration) {
	fmt.Fprintf(w, "\n## Capture-path figures (recorder/bench)\n\n")
	fmt.Fprintf(w, "Machine: %s. Whole run: %s.\n", machine(), took.Round(time.Second))
	var problems []string

	if len(offline) > 0 {
		fmt.Fprintf(w, "\n### Offline: the recorder reading real loopback captures (GOMAXPROCS=1, counting sink, median of %d runs)\n\n", o.repeat)
		fmt.Fprintln(w, "| pcap | exchanges (client log) | pcap size | recorder CPU (user+sys) | exchanges / CPU-s | exchanges / wall-s | MB/s per CPU-s | allocs / exchange | bytes alloc / exchange | peak RSS | other processes | recovered byte-exact | target | verdict |")
		fmt.Fprintln(w, "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
		for _, r := range offline {
			m, v := r.Median, *r.Checked.Verify
			ex := float64(m.Stats.Exchanges)
			perCPU, perWall := ex/m.CPU.Total(), ex/m.Wall
			var lo, hi float64 = 1e18, 0
			for _, run := range r.Runs {
				x := float64(run.Stats.Exchanges) / run.CPU.Total()
				lo, hi = min(lo, x), max(hi, x)
			}
			exact := v.Matched == v.Truth && v.Extra == 0
			var target, verd string
			switch r.Data.Profile {
			case profileSmall:
				// One core: the lower of the CPU-time and the wall-clock rate.
				rate := min(perCPU, perWall)
				target = fmt.Sprintf("≥ %s/s on one core, 100.00 %%", group(targetSmallPerSec))
				verd = verdict(rate >= targetSmallPerSec && exact, missText(rate, targetSmallPerSec, exact))
			case profileMix:
				target = fmt.Sprintf("≥ %s / CPU-s, 100.00 %%", group(targetMixPerCPUSec))
				verd = verdict(perCPU >= targetMixPerCPUSec && exact, missText(perCPU, targetMixPerCPUSec, exact))
			}
			fmt.Fprintf(w, "| %s (%s conns, %s packets) | %s | %.1f MB | %.2f s (%.2f user, %.2f sys) | %s (runs %s–%s) | %s | %.1f | %.0f | %s | %.1f MiB | %.2f cores | %s | %s | %s |\n",
				r.Data.Profile, group(int64(r.Data.Conns)), group(r.Data.Packets), group(int64(r.Data.N)),
				float64(r.Data.PcapBytes)/1e6, m.CPU.Total(), m.CPU.User, m.CPU.Sys,
				group(int64(perCPU)), group(int64(lo)), group(int64(hi)), group(int64(perWall)),
				float64(r.Data.PcapBytes)/1e6/m.CPU.Total(), float64(m.Mallocs)/ex, group(int64(float64(m.AllocBytes)/ex)),
				mib(m.PeakRSSKiB), m.Background, recovery(v), target, verd)
			if st := m.Stats; recorderDrops(st) > 0 || st.ResponsesMissing > 0 {
				problems = append(problems, fmt.Sprintf("offline %s: recorder counters: responses missing %d, drops %s", r.Data.Profile, st.ResponsesMissing, dropsText(st.Drops)))
			}
			for _, p := range v.Problems {
				problems = append(problems, fmt.Sprintf("offline %s (%s): %s", r.Data.Profile, r.Data.Pcap, p))
			}
		}
	}

	if len(lives) > 0 {
		fmt.Fprintf(w, "\n### Live: recording lo while the client sends %q traffic over %d keep-alive connections, %s per rate\n\n", o.liveProfile, o.conns, o.liveDuration)
		fmt.Fprintln(w, "| rate asked | requests sent | rate achieved | recovered byte-exact / sent | recorder CPU (% of one core) | kernel drops | recorder drops | losses visible | other processes | target | verdict |")
		fmt.Fprintln(w, "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
		for _, r := range lives {
			v, st := r.Result.Verify, r.Result.Final.Stats
			pct := v.Percent()
			var target, verd string
			switch {
			case r.Rate == 0:
				target = fmt.Sprintf("≥ %.2f %%, every loss counted", targetMaxRecoverPct)
				ok := pct >= targetMaxRecoverPct && r.lossVisible()
				verd = verdict(ok, fmt.Sprintf("%.3f %%, losses visible: %v", pct, r.lossVisible()))
			case r.Rate == targetLiveRate:
				target = fmt.Sprintf("100 %% using ≤ %.0f %% of a core", targetLiveCPUPct)
				var miss []string
				if v.Matched != v.Truth || v.Extra > 0 {
					miss = append(miss, fmt.Sprintf("%s exchanges not recovered", group(int64(v.Truth-v.Matched))))
				}
				if r.CPUPercent() > targetLiveCPUPct {
					miss = append(miss, fmt.Sprintf("CPU %.1f %% is %.1f× the budget", r.CPUPercent(), r.CPUPercent()/targetLiveCPUPct))
				}
				verd = verdict(len(miss) == 0, strings.Join(miss, "; "))
			default:
				target, verd = "none set", "—"
			}
			if !r.rateReached() {
				verd = fmt.Sprintf("**not measured**: the client reached only %.0f %% of the rate", 100*r.Achieved/r.Rate)
			}
			fmt.Fprintf(w, "| %s | %s | %s/s | %s | %.1f %% (%.2f CPU-s, %.2f of it sys, over %.1f s) | %d | %s | %v | %.2f cores | %s | %s |\n",
				r.Name, group(int64(r.Sent)), group(int64(r.Achieved)), recovery(v), r.CPUPercent(), r.CPUSec, r.CPUSys, r.LoadSec,
				st.KernelDrops, dropsText(st.Drops), r.lossVisible(), r.Background, target, verd)
			if r.Result.RunError != "" {
				problems = append(problems, fmt.Sprintf("live %s: Run returned %s", r.Name, r.Result.RunError))
			}
			for _, p := range v.Problems {
				problems = append(problems, fmt.Sprintf("live %s: %s", r.Name, p))
			}
		}
	}

	if idle != nil {
		fmt.Fprintf(w, "\n### Idle connections: live recorder holding connections that each made one GET\n\n")
		fmt.Fprintln(w, "| connections | recorder RSS before | RSS holding them | peak RSS (VmHWM) | Go heap in use | Go runtime total (Sys) | exchanges recovered | target | verdict |")
		fmt.Fprintln(w, "| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
		h, v := idle.Held.Mem, idle.Result.Verify
		rss := mib(h.RSSKiB)
		fmt.Fprintf(w, "| %s | %.1f MiB | %.1f MiB | %.1f MiB | %.1f MiB | %.1f MiB | %s | ≤ %.0f MiB | %s |\n",
			group(int64(idle.Conns)), mib(idle.Before.Mem.RSSKiB), rss, mib(h.HWMKiB), float64(h.HeapInuse)/(1<<20), float64(h.GoSys)/(1<<20),
			recovery(v), targetIdleRSSMiB, verdict(rss <= targetIdleRSSMiB, fmt.Sprintf("%.1f MiB over", rss-targetIdleRSSMiB)))
		for _, p := range v.Problems {
			problems = append(problems, "idle: "+p)
		}
	}

	if len(problems) > 0 {
		fmt.Fprintf(w, "\n### Correctness problems (first %d per run)\n\n", maxProblems)
		for _, p := range problems {
			fmt.Fprintf(w, "- %s\n", p)
		}
	}
}

func missText(got, want float64, exact bool) string {
	var parts []string
	if got < want {
		parts = append(parts, fmt.Sprintf("%s/s short, %.0f %% of the target", group(int64(want-got)), 100*got/want))
	}
	if !exact {
		parts = append(parts, "not every exchange recovered byte-exact")
	}
	return strings.Join(parts, "; ")
}
