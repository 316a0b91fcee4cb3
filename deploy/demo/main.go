// Command demo is `make demo`: tapline's whole scenario on one machine
// with no infrastructure, on the embedded file:// log.
//
//  1. A demo shop API runs as "production" and, with a deliberate
//     regression (a renamed field, a slower route), as "staging", both on
//     127.0.0.1 (deploy/demo/shop).
//  2. `tapline record` captures production's port on the loopback
//     interface into file://DIR/exchanges (live capture: root or
//     CAP_NET_RAW).
//  3. A real HTTP client sends a realistic mix of requests to production
//     over keep-alive connections.
//  4. `tapline replay` replays the recorded window to staging into
//     file://DIR/results.
//  5. `tapline report` compares each staging answer with production's and
//     prints the per-route table and writes DIR/report.html.
//
// The demo checks that the regression was found and exits non-zero when
// it was not, so it doubles as a smoke test.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tapline/tapline/deploy/demo/shop"
	"github.com/tapline/tapline/internal/filelog"
)

func main() {
	bin := flag.String("tapline", "bin/tapline", "the tapline binary to run")
	dir := flag.String("dir", ".demo", "work directory (emptied first): the file logs and the report")
	requests := flag.Int("requests", 3000, "requests to send to production")
	rate := flag.Float64("rate", 500, "requests per second to production")
	iface := flag.String("iface", "lo", "loopback interface to capture on")
	stack := flag.String("stack", "file", "file: the embedded file:// log, nothing else needed; kafka: the local Kafka and Elasticsearch (deploy/local/stack.sh up first)")
	brokers := flag.String("brokers", "127.0.0.1:9092", "with -stack kafka: the Kafka bootstrap broker")
	esURL := flag.String("es", "http://127.0.0.1:9200", "with -stack kafka: Elasticsearch")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("demo: ")

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var b backend
	switch *stack {
	case "file":
		b = fileBackend(*dir)
	case "kafka":
		b = kafkaBackend(*brokers, *esURL)
	default:
		log.Fatalf("-stack %q: want file or kafka", *stack)
	}
	if err := run(ctx, *bin, *dir, *iface, *requests, *rate, b); err != nil {
		log.Fatalf("%v", err)
	}
}

// backend is where the scenario keeps its records: the embedded file log,
// or the local Kafka and Elasticsearch.
type backend struct {
	name               string
	exchanges, results func(dir string) string // endpoint URLs
	prepare            func(ctx context.Context) error
	recorded           func(ctx context.Context, exchanges string) (int64, error) // records in the exchanges endpoint so far
	// analyze turns the replay results into the report's source: the
	// arguments of `tapline report` that read them.
	analyze func(ctx context.Context, bin, results string, since time.Time, replayed int64) ([]string, error)
}

func fileBackend(dir string) backend {
	return backend{
		name:      "the file:// log",
		exchanges: func(dir string) string { return "file://" + filepath.Join(dir, "exchanges") },
		results:   func(dir string) string { return "file://" + filepath.Join(dir, "results") },
		prepare:   func(context.Context) error { return nil },
		recorded: func(_ context.Context, url string) (int64, error) {
			r, err := filelog.NewReader(strings.TrimPrefix(url, "file://"), filelog.ReaderConfig{})
			if err != nil {
				return 0, err
			}
			defer r.Close()
			n, _ := r.Records()
			return n, nil
		},
		// The report compares the results itself.
		analyze: func(_ context.Context, _, results string, _ time.Time, _ int64) ([]string, error) {
			return []string{"--from", results}, nil
		},
	}
}

func run(ctx context.Context, bin, dir, iface string, requests int, rate float64, b backend) error {
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("%s: %w (build it first: make build)", bin, err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	exchanges, results := b.exchanges(dir), b.results(dir)
	if err := b.prepare(ctx); err != nil {
		return err
	}
	log.Printf("records go through %s: %s, %s", b.name, exchanges, results)

	prod, err := serve(shop.New(shop.Config{}))
	if err != nil {
		return err
	}
	staging, err := serve(shop.New(shop.Config{Regression: true}))
	if err != nil {
		return err
	}
	log.Printf("production shop on %s, staging (with a regression) on %s", prod, staging)

	_, port, _ := net.SplitHostPort(prod)
	rec, err := start(bin, "record", "--iface", iface, "--port", port, "--to", exchanges, "--name", "demo", "--stats-interval", "5s")
	if err != nil {
		return err
	}
	defer rec.kill()
	began := time.Now()
	if err := waitRecording(ctx, prod, func() (int64, error) { return b.recorded(ctx, exchanges) }, rec); err != nil {
		return err
	}

	sent, err := drive(ctx, "http://"+prod, requests, rate)
	if err != nil {
		return err
	}
	log.Printf("sent %d requests to production (%s)", sent.total.Load(), sent.summary())
	// Let the last responses reach the capture, then stop the recorder:
	// it flushes its connections and says what it recovered.
	time.Sleep(time.Second)
	if err := rec.interrupt(); err != nil {
		return fmt.Errorf("record: %w", err)
	}
	ended := time.Now()

	since, until := began.Add(-time.Second).UTC().Format(time.RFC3339Nano), ended.Add(time.Second).UTC().Format(time.RFC3339Nano)
	replayLog, err := runTapline(ctx, bin, "replay", "--from", exchanges, "--since", since, "--until", until, "--speed", "0",
		"--to", results, "--target", "staging=http://"+staging, "--max-inflight", "16")
	if err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	var replayed int64
	if m := regexp.MustCompile(`replayed=(\d+)`).FindStringSubmatch(replayLog); m != nil {
		replayed, _ = strconv.ParseInt(m[1], 10, 64)
	}
	source, err := b.analyze(ctx, bin, results, began, replayed)
	if err != nil {
		return err
	}
	html := filepath.Join(dir, "report.html")
	out, err := outputOf(ctx, bin, append(append([]string{"report"}, source...), "--since", began.Add(-time.Second).UTC().Format(time.RFC3339Nano), "--html", html)...)
	fmt.Print(out)
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	// The demo is also a smoke test: the renamed field must be reported
	// on the users route.
	if !strings.Contains(out, "GET /api/users/{id}") || !strings.Contains(out, "body:$.name") {
		return errors.New("the report does not show the regression on GET /api/users/{id} (body:$.name); something is wrong")
	}
	abs, _ := filepath.Abs(html)
	fmt.Printf("\ntapline found the regression: GET /api/users/{id} lost \"name\" on staging, and /api/search got slower.\nHTML report: %s\n", abs)
	return nil
}

// serve runs h on a free port of 127.0.0.1 and returns host:port.
func serve(h http.Handler) (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	go http.Serve(l, h)
	return l.Addr().String(), nil
}

// waitRecording sends health checks to production until the recorder has
// written one to the log: from then on the capture is live.
func waitRecording(ctx context.Context, prod string, recorded func() (int64, error), rec *proc) error {
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; time.Now().Before(deadline); i++ {
		if rec.exited() {
			return fmt.Errorf("record exited: %s (live capture needs root or CAP_NET_RAW: sudo make demo, or setcap cap_net_raw+ep bin/tapline)", rec.tail())
		}
		if resp, err := http.Get(fmt.Sprintf("http://%s/health?warmup=%d", prod, i)); err == nil {
			resp.Body.Close()
		}
		if n, err := recorded(); err == nil && n > 0 {
			log.Printf("recorder is capturing (%d warm-up exchanges seen)", n)
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(300 * time.Millisecond):
		}
	}
	return fmt.Errorf("the recorder wrote nothing in 20s; its output:\n%s", rec.tail())
}

// counts is what the traffic driver sent, by route and status.
type counts struct {
	total  atomic.Int64
	mu     sync.Mutex
	byKind map[string]int
}

func (c *counts) add(kind string, status int) {
	c.total.Add(1)
	c.mu.Lock()
	c.byKind[fmt.Sprintf("%s %d", kind, status)]++
	c.mu.Unlock()
}

func (c *counts) summary() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var parts []string
	for k, n := range c.byKind {
		parts = append(parts, fmt.Sprintf("%s: %d", k, n))
	}
	return strings.Join(parts, ", ")
}

// drive sends n requests at about rate per second over 8 keep-alive
// connections: users 40 %, product pages 25 %, searches 20 %, orders (POST)
// 10 %, health 5 %.
func drive(ctx context.Context, base string, n int, rate float64) (*counts, error) {
	c := &counts{byKind: map[string]int{}}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}, Timeout: 10 * time.Second}
	jobs := make(chan int)
	var wg sync.WaitGroup
	var firstErr atomic.Value
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				kind, req := shop.Request(base, i)
				resp, err := client.Do(req.WithContext(ctx))
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				c.add(kind, resp.StatusCode)
			}
		}()
	}
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer tick.Stop()
	for i := 0; i < n; i++ {
		select {
		case <-ctx.Done():
			close(jobs)
			wg.Wait()
			return c, ctx.Err()
		case <-tick.C:
		}
		jobs <- i
		if (i+1)%1000 == 0 {
			log.Printf("traffic: %d/%d requests sent", i+1, n)
		}
	}
	close(jobs)
	wg.Wait()
	if err, ok := firstErr.Load().(error); ok {
		return c, fmt.Errorf("sending traffic to production: %w", err)
	}
	return c, nil
}

// proc is a tapline command running in the background, its output kept.
type proc struct {
	cmd  *exec.Cmd
	out  *lockedBuffer
	done chan error
}

func start(bin string, args ...string) (*proc, error) {
	p := &proc{cmd: exec.Command(bin, args...), out: &lockedBuffer{}, done: make(chan error, 1)}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { p.done <- p.cmd.Wait() }()
	return p, nil
}

func (p *proc) exited() bool {
	select {
	case err := <-p.done:
		p.done <- err
		return true
	default:
		return false
	}
}

// interrupt stops p like Ctrl-C, prints its output and returns its exit
// error.
func (p *proc) interrupt() error {
	p.cmd.Process.Signal(os.Interrupt)
	select {
	case err := <-p.done:
		fmt.Print(indent(p.out.String()))
		return err
	case <-time.After(30 * time.Second):
		p.kill()
		return fmt.Errorf("did not stop within 30s of SIGINT:\n%s", p.out)
	}
}

func (p *proc) kill() {
	if !p.exited() {
		p.cmd.Process.Kill()
	}
}

func (p *proc) tail() string {
	s := p.out.String()
	if len(s) > 4000 {
		s = "..." + s[len(s)-4000:]
	}
	return s
}

// runTapline runs a tapline command to its end, prints its output
// indented and returns it.
func runTapline(ctx context.Context, bin string, args ...string) (string, error) {
	log.Printf("tapline %s", strings.Join(args, " "))
	cmd := exec.CommandContext(ctx, bin, args...)
	out, err := cmd.CombinedOutput()
	fmt.Print(indent(string(out)))
	return string(out), err
}

// outputOf runs a tapline command and returns its standard output; its
// log lines go to stderr, indented.
func outputOf(ctx context.Context, bin string, args ...string) (string, error) {
	log.Printf("tapline %s", strings.Join(args, " "))
	cmd := exec.CommandContext(ctx, bin, args...)
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	fmt.Fprint(os.Stderr, indent(stderr.String()))
	return string(out), err
}

func indent(s string) string {
	var b strings.Builder
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		b.WriteString("    | " + sc.Text() + "\n")
	}
	return b.String()
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
