package stacktest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// Service names for Stack.Stop and Stack.Start.
const (
	ServiceKafka = "kafka"
	ServiceES    = "es"
)

// PrivateOptions says which services a private stack runs.
type PrivateOptions struct {
	Kafka bool // a broker of its own
	ES    bool // an Elasticsearch node of its own
}

// Stack is a Kafka broker and/or an Elasticsearch node owned by one test:
// the same deploy/local/stack.sh, with its own state directory and its own
// free ports, so the test can stop and start them (fault tests) without
// disturbing the shared stack that other test binaries use at the same time.
type Stack struct {
	t     testing.TB
	root  string
	dir   string
	ports map[string]int // env var -> port
	opts  PrivateOptions
	Logs  []string // the script's output, one entry per call, for failure reports
}

// Private starts a private stack and registers its removal (stop, wipe,
// delete the state dir) in t.Cleanup. It fails the test if a service cannot
// start; it never skips. Expect 15–40 s per start on this machine.
func Private(t testing.TB, opts PrivateOptions) *Stack {
	t.Helper()
	root, err := repoRoot()
	if err != nil {
		t.Fatalf("stacktest: %v", err)
	}
	// Not t.TempDir: Elasticsearch runs as another user when the tests run as
	// root, and must be able to traverse the state dir (see stack.sh).
	base := filepath.Join(os.TempDir(), "tapline-private")
	if err := os.MkdirAll(base, 0o755); err != nil {
		t.Fatalf("stacktest: %v", err)
	}
	dir, err := os.MkdirTemp(base, "stack-")
	if err != nil {
		t.Fatalf("stacktest: %v", err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatalf("stacktest: %v", err)
	}
	s := &Stack{t: t, root: root, dir: dir, ports: map[string]int{}}
	for _, env := range []string{"TAPLINE_KAFKA_PORT", "TAPLINE_KAFKA_CONTROLLER_PORT", "TAPLINE_ES_PORT", "TAPLINE_ES_TRANSPORT_PORT"} {
		s.ports[env] = freePort(t)
	}
	t.Cleanup(func() {
		if err := s.run("down", "--wipe"); err != nil {
			t.Errorf("stacktest: stopping the private stack in %s: %v\n%s", dir, err, s.lastLog())
			return // keep the dir: its logs explain the failure
		}
		if err := os.RemoveAll(dir); err != nil {
			t.Logf("stacktest: removing %s: %v", dir, err)
		}
	})
	switch {
	case opts.Kafka && opts.ES:
		if err := s.run("up"); err != nil { // both in parallel
			t.Fatalf("stacktest: starting the private stack: %v\n%s", err, s.lastLog())
		}
	case opts.Kafka:
		s.Start(ServiceKafka)
	case opts.ES:
		s.Start(ServiceES)
	}
	return s
}

// Brokers is the private broker's bootstrap address.
func (s *Stack) Brokers() []string {
	return []string{"127.0.0.1:" + strconv.Itoa(s.ports["TAPLINE_KAFKA_PORT"])}
}

// ESURL is the private node's base URL.
func (s *Stack) ESURL() string {
	return "http://127.0.0.1:" + strconv.Itoa(s.ports["TAPLINE_ES_PORT"])
}

// Dir is the private stack's state directory (logs, data, pid files).
func (s *Stack) Dir() string { return s.dir }

// Stop stops one service (TERM, KILL after 30 s) and keeps its data.
func (s *Stack) Stop(service string) {
	s.t.Helper()
	if err := s.run("down", service); err != nil {
		s.t.Fatalf("stacktest: stopping private %s: %v\n%s", service, err, s.lastLog())
	}
}

// Start starts one service (again) on the same port and data, and returns
// when it really serves clients (stack.sh's readiness checks).
func (s *Stack) Start(service string) {
	s.t.Helper()
	if err := s.run("up", service); err != nil {
		s.t.Fatalf("stacktest: starting private %s: %v\n%s", service, err, s.lastLog())
	}
}

func (s *Stack) lastLog() string {
	if len(s.Logs) == 0 {
		return ""
	}
	return s.Logs[len(s.Logs)-1]
}

func (s *Stack) run(args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", append([]string{filepath.Join(s.root, "deploy", "local", "stack.sh")}, args...)...)
	cmd.Dir = s.root
	cmd.Env = append(os.Environ(), "TAPLINE_STACK_DIR="+s.dir)
	for env, port := range s.ports {
		cmd.Env = append(cmd.Env, env+"="+strconv.Itoa(port))
	}
	cmd.WaitDelay = 10 * time.Second
	start := time.Now()
	out, err := cmd.CombinedOutput()
	s.Logs = append(s.Logs, string(out))
	s.t.Logf("stacktest: private stack.sh %v took %s", args, time.Since(start).Round(100*time.Millisecond))
	if err != nil {
		return fmt.Errorf("stack.sh %v: %w", args, err)
	}
	return nil
}

// freePort asks the kernel for a free loopback port. Another process could
// take it before the service binds it; stack.sh then fails with the owner's
// name, which is rare enough for tests.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("stacktest: free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
