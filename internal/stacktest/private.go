package stacktest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go/sasl/scram"
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
	// Secure runs them in stack.sh's secure mode (TAPLINE_STACK_SECURE=1):
	// the broker's only client listener is SASL_SSL, the node has security
	// on and speaks https. Stack.Secure says where the CA and the
	// passwords are.
	Secure bool
}

// Secure is what a client of a secure private stack needs. stack.sh made
// the CA, the certificate (127.0.0.1, localhost) and the passwords in the
// state dir; each *File holds the password next to it, for flags such as
// --kafka-password-file.
type Secure struct {
	CAFile string // PEM CA that signed the broker's and the node's certificates

	// The broker's client user: SCRAM-SHA-512, SCRAM-SHA-256 and PLAIN.
	KafkaUser, KafkaPassword, KafkaPasswordFile string

	// The node's user for tapline, in the file realm with the role
	// tapline_writer: index templates, and create/read on tapline-*.
	ESUser, ESPassword, ESPasswordFile string
	// The node's superuser, for what tests do around tapline.
	ESAdminUser, ESAdminPassword string
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
	s := &Stack{t: t, root: root, dir: dir, ports: map[string]int{}, opts: opts}
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

// ESURL is the private node's base URL: https in secure mode.
func (s *Stack) ESURL() string {
	scheme := "http"
	if s.opts.Secure {
		scheme = "https"
	}
	return scheme + "://127.0.0.1:" + strconv.Itoa(s.ports["TAPLINE_ES_PORT"])
}

// Secure returns the CA and the credentials of a secure stack. It fails
// the test for a stack that is not secure.
func (s *Stack) Secure() Secure {
	s.t.Helper()
	if !s.opts.Secure {
		s.t.Fatalf("stacktest: Secure() on a private stack started without PrivateOptions.Secure")
	}
	dir := filepath.Join(s.dir, "secure")
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			s.t.Fatalf("stacktest: %v", err)
		}
		return strings.TrimRight(string(b), "\r\n")
	}
	return Secure{
		CAFile:    filepath.Join(dir, "ca.crt"),
		KafkaUser: "tapline", KafkaPassword: read("kafka-password"), KafkaPasswordFile: filepath.Join(dir, "kafka-password"),
		ESUser: "tapline", ESPassword: read("es-password"), ESPasswordFile: filepath.Join(dir, "es-password"),
		ESAdminUser: "admin", ESAdminPassword: read("es-admin-password"),
	}
}

// kafka is how to reach the private broker: with TLS and SCRAM-SHA-512 as
// the client user in secure mode.
func (s *Stack) kafka() kafkaConn {
	s.t.Helper()
	kc := kafkaConn{brokers: s.Brokers()}
	if !s.opts.Secure {
		return kc
	}
	sec := s.Secure()
	tc, err := tlsTrusting(sec.CAFile)
	if err != nil {
		s.t.Fatalf("stacktest: %v", err)
	}
	mech, err := scram.Mechanism(scram.SHA512, sec.KafkaUser, sec.KafkaPassword)
	if err != nil {
		s.t.Fatalf("stacktest: %v", err)
	}
	kc.tls, kc.sasl = tc, mech
	return kc
}

// es is how to reach the private node: https as the superuser in secure
// mode.
func (s *Stack) es() esConn {
	s.t.Helper()
	if !s.opts.Secure {
		return esConn{url: s.ESURL(), client: esClient}
	}
	sec := s.Secure()
	tc, err := tlsTrusting(sec.CAFile)
	if err != nil {
		s.t.Fatalf("stacktest: %v", err)
	}
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{Proxy: nil, TLSClientConfig: tc}}
	return esConn{url: s.ESURL(), client: client, user: sec.ESAdminUser, password: sec.ESAdminPassword}
}

func tlsTrusting(caFile string) (*tls.Config, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", caFile)
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

// Topic is stacktest.Topic on the private broker (over SASL_SSL in secure
// mode).
func (s *Stack) Topic(t testing.TB, partitions int) string {
	t.Helper()
	return topic(t, s.kafka(), partitions)
}

// Index is stacktest.Index on the private node; cleanup runs as the
// superuser in secure mode.
func (s *Stack) Index(t testing.TB, prefix string) string {
	t.Helper()
	name, err := indexName(prefix, t.Name(), randomHex(4))
	if err != nil {
		t.Fatalf("stacktest.Index: %v", err)
	}
	es := s.es()
	t.Cleanup(func() { cleanupIndex(t, es, name) })
	return name
}

// ESRequest sends one request to the private node (as the superuser in
// secure mode) for path, e.g. "/tapline-pairs-x/_count", and returns the
// status and the body.
func (s *Stack) ESRequest(ctx context.Context, method, path string, body []byte) (int, []byte, error) {
	return s.es().do(ctx, method, path, body)
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
	secure := "0" // whatever the caller's environment says
	if s.opts.Secure {
		secure = "1"
	}
	cmd.Env = append(cmd.Env, "TAPLINE_STACK_SECURE="+secure)
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
