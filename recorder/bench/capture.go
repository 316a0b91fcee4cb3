package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// tcpdump is a running capture of one TCP port on loopback into a file.
type tcpdump struct {
	cmd   *exec.Cmd
	lines []string      // what tcpdump wrote to stderr; read after done
	done  chan struct{} // closed when its stderr ends
}

// startTcpdump starts capturing and returns once tcpdump says it is
// listening. The 256 MiB kernel buffer (-B, in KiB) absorbs bursts; -Z root
// keeps tcpdump from switching users (and losing access to the file).
func startTcpdump(ctx context.Context, path string, port int) (*tcpdump, error) {
	cmd := exec.CommandContext(ctx, "tcpdump", "-i", "lo", "-s", "0", "-B", "262144", "-Z", "root", "-w", path,
		"tcp port "+strconv.Itoa(port))
	pipe, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting tcpdump (install it: apt-get install tcpdump): %w", err)
	}
	t := &tcpdump{cmd: cmd, done: make(chan struct{})}
	listening := make(chan struct{})
	go func() {
		defer close(t.done)
		sc := bufio.NewScanner(pipe)
		said := false
		for sc.Scan() {
			if !said && strings.Contains(sc.Text(), "listening on") {
				said = true
				close(listening)
			}
			t.lines = append(t.lines, sc.Text())
		}
	}()
	select {
	case <-listening:
		return t, nil
	case <-t.done:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-t.done
	}
	cmd.Wait()
	return nil, fmt.Errorf("tcpdump did not start (it needs root or CAP_NET_RAW): %s", strings.Join(t.lines, "; "))
}

var dumpStat = regexp.MustCompile(`^(\d+) packets? (captured|received by filter|dropped by kernel)`)

// stop ends the capture and returns tcpdump's counts of packets captured
// and dropped by the kernel.
func (t *tcpdump) stop() (captured, dropped int64, err error) {
	t.cmd.Process.Signal(syscall.SIGINT)
	<-t.done
	werr := t.cmd.Wait()
	for _, line := range t.lines {
		if m := dumpStat.FindStringSubmatch(line); m != nil {
			n, _ := strconv.ParseInt(m[1], 10, 64)
			switch m[2] {
			case "captured":
				captured = n
			case "dropped by kernel":
				dropped = n
			}
		}
	}
	var exit *exec.ExitError
	if werr != nil && !errors.As(werr, &exit) {
		return 0, 0, fmt.Errorf("tcpdump: %w (%s)", werr, strings.Join(t.lines, "; "))
	}
	if captured == 0 {
		return 0, 0, fmt.Errorf("tcpdump captured nothing: %s", strings.Join(t.lines, "; "))
	}
	return captured, dropped, nil
}

// dataset is one captured pcap with the client's log of what was in it.
type dataset struct {
	Profile   profile
	N         uint64
	Conns     int
	Pcap      string
	Truth     string
	PcapBytes int64
	Packets   int64
	Seconds   float64 // how long the traffic took
	Created   string
}

func datasetPaths(dir string, p profile) (pcap, truth, meta string) {
	base := filepath.Join(dir, string(p))
	return base + ".pcap", base + ".truth.tsv", base + ".json"
}

// loadDataset returns a dataset captured earlier with the same profile,
// size and connection count, if its files are still there.
func loadDataset(dir string, p profile, n uint64, conns int) (dataset, bool) {
	pcap, truth, meta := datasetPaths(dir, p)
	b, err := os.ReadFile(meta)
	if err != nil {
		return dataset{}, false
	}
	var d dataset
	if json.Unmarshal(b, &d) != nil || d.N != n || d.Conns != conns {
		return dataset{}, false
	}
	st, err := os.Stat(pcap)
	if err != nil || st.Size() != d.PcapBytes {
		return dataset{}, false
	}
	if _, err := os.Stat(truth); err != nil {
		return dataset{}, false
	}
	return d, true
}

// captureDataset sends n requests of profile p from a real Go client to a
// real Go server over conns keep-alive connections on loopback, captures
// them with tcpdump, and writes the pcap, the client's log and a
// description into dir. A capture that tcpdump reports drops for is
// retried at a lower, paced rate: the ground truth must be complete.
func captureDataset(ctx context.Context, dir string, p profile, n uint64, conns int, logf func(string, ...any)) (dataset, error) {
	pcap, truth, meta := datasetPaths(dir, p)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return dataset{}, err
	}
	rate := 0.0
	for attempt := 1; ; attempt++ {
		srv, err := startServer()
		if err != nil {
			return dataset{}, err
		}
		dump, err := startTcpdump(ctx, pcap, srv.port())
		if err != nil {
			srv.close()
			return dataset{}, err
		}
		res, lerr := load{base: srv.url(), prof: p, conns: conns, rate: rate, n: n}.run(ctx)
		time.Sleep(300 * time.Millisecond) // let the FINs through
		srv.close()
		// tcpdump reads the kernel ring in blocks handed over when full or
		// after its 1s timeout, and a block not yet handed over when it is
		// interrupted is lost without being counted as a drop: wait that out.
		time.Sleep(2500 * time.Millisecond)
		captured, dropped, derr := dump.stop()
		if lerr != nil {
			return dataset{}, fmt.Errorf("sending %s traffic: %w", p, lerr)
		}
		if derr != nil {
			return dataset{}, derr
		}
		achieved := float64(n) / res.elapsed.Seconds()
		logf("captured %s: %d exchanges in %.1fs (%.0f/s) over %d connections, %d packets, %d dropped by the kernel",
			p, n, res.elapsed.Seconds(), achieved, conns, captured, dropped)
		if dropped > 0 {
			if attempt == 3 {
				return dataset{}, fmt.Errorf("tcpdump dropped %d packets three times; the ground truth would be incomplete", dropped)
			}
			rate = achieved / 2
			logf("retrying the %s capture paced at %.0f requests/s", p, rate)
			continue
		}
		if err := writeTruth(truth, res.truth); err != nil {
			return dataset{}, err
		}
		st, err := os.Stat(pcap)
		if err != nil {
			return dataset{}, err
		}
		d := dataset{Profile: p, N: n, Conns: conns, Pcap: pcap, Truth: truth, PcapBytes: st.Size(), Packets: captured,
			Seconds: res.elapsed.Seconds(), Created: time.Now().UTC().Format(time.RFC3339)}
		b, _ := json.MarshalIndent(d, "", "  ")
		return d, os.WriteFile(meta, b, 0o644)
	}
}

// readLines sends each line r produces to the returned channel.
func readLines(r io.Reader) <-chan string {
	ch := make(chan string, 16)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		for sc.Scan() {
			ch <- sc.Text()
		}
	}()
	return ch
}
