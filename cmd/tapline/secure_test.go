package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tapline/tapline/analyzer/report"
	"github.com/tapline/tapline/internal/stacktest"
)

// TestSecurePipeline runs the real binary against a private broker whose
// only client listener is SASL_SSL (SCRAM-SHA-512) and a private
// Elasticsearch node with security on and https (deploy/local/stack.sh
// secure mode), started once for all its subtests: record into Kafka,
// replay, analyze into Elasticsearch with basic auth, report from it, with
// exact counts end to end; then what must fail, and how; and that no
// secret shows in what the binary printed or in its /metrics.
func TestSecurePipeline(t *testing.T) {
	bin := buildTapline(t)
	stack := stacktest.Private(t, stacktest.PrivateOptions{Kafka: true, ES: true, Secure: true})
	sec := stack.Secure()
	brokers := strings.Join(stack.Brokers(), ",")
	kafkaURL := func(topic string) string { return "kafka://" + brokers + "/" + topic }
	secrets := []string{sec.KafkaPassword, sec.ESPassword, sec.ESAdminPassword}
	var outputs []*process // every run, checked for secrets at the end

	// Kafka flags for every command; the password from a file here, from
	// the command's variable where env says so.
	kafkaFlags := func(withPasswordFile bool) []string {
		f := []string{"--kafka-ca-file", sec.CAFile, "--kafka-sasl", "scram-sha-512", "--kafka-username", sec.KafkaUser}
		if withPasswordFile {
			f = append(f, "--kafka-password-file", sec.KafkaPasswordFile)
		}
		return f
	}
	esFlags := []string{"--es", stack.ESURL(), "--es-ca-file", sec.CAFile, "--es-username", sec.ESUser}
	run := func(t *testing.T, env []string, args ...string) *process {
		t.Helper()
		p := startTaplineEnv(t, bin, env, args...)
		outputs = append(outputs, p)
		return p
	}
	// finished waits for p to exit by itself (a hang shows as the
	// generous limit passing) and returns its error.
	finished := func(t *testing.T, p *process) error {
		t.Helper()
		select {
		case err := <-p.done:
			return err
		case <-time.After(3 * time.Minute):
			t.Fatalf("%s did not exit within 3m:\n%s", p.name, p.log)
			return nil
		}
	}

	exchanges, results := stack.Topic(t, 2), stack.Topic(t, 2)
	dataStream := stack.Index(t, "tapline-pairs-secure")

	t.Run("pipeline with basic auth", func(t *testing.T) {
		rec := run(t, nil, append([]string{"record", "--pcap", "../../recorder/testdata/loopback.pcap", "--to", kafkaURL(exchanges), "--name", "secure"},
			kafkaFlags(true)...)...)
		if err := finished(t, rec); err != nil || !strings.Contains(rec.log.String(), "exchanges=10") {
			t.Fatalf("record: %v, want 10 exchanges published:\n%s", err, rec.log)
		}

		staging := regressedStaging(t) // as in TestEndToEnd: /users/2 changed, /chunked is gone

		replay := run(t, []string{"TAPLINE_REPLAY_KAFKA_PASSWORD=" + sec.KafkaPassword},
			append([]string{"replay", "--from", kafkaURL(exchanges), "--to", kafkaURL(results), "--group", "secure-replay",
				"--start", "earliest", "--target", "staging=" + staging.URL, "--metrics-addr", "127.0.0.1:0"}, kafkaFlags(false)...)...)
		analyze := run(t, nil, append(append([]string{"analyze", "--from", kafkaURL(results), "--group", "secure-analyze", "--start", "earliest",
			"--data-stream", dataStream, "--es-password-file", sec.ESPasswordFile}, esFlags...), kafkaFlags(true)...)...)

		// 8 of the 10 exchanges are GET or HEAD (as in TestEndToEnd).
		const want = 8
		waitForCount(t, stack, dataStream, want, replay, analyze)

		// /metrics of a running replayer over SASL_SSL.
		m := regexp.MustCompile(`url=(http://127\.0\.0\.1:\d+/metrics)`).FindStringSubmatch(replay.log.String())
		if m == nil {
			t.Fatalf("replay did not log its metrics address:\n%s", replay.log)
		}
		metrics := scrape(t, m[1])
		if !strings.Contains(metrics, `tapline_replay_exchanges_total{outcome="replayed"} 8`) {
			t.Errorf("metrics do not count 8 replayed exchanges:\n%s", metrics)
		}
		for _, s := range secrets {
			if strings.Contains(metrics, s) {
				t.Errorf("a secret is in /metrics")
			}
		}

		replay.stop(t)
		analyze.stop(t)
		if !strings.Contains(replay.log.String(), "fetched=10 replayed=8 filtered=2") {
			t.Errorf("replay summary does not account for all 10 exchanges:\n%s", replay.log)
		}

		// The report reads the pair documents back over https, the
		// password from the command's variable.
		rep := run(t, []string{"TAPLINE_REPORT_ES_PASSWORD=" + sec.ESPassword},
			append([]string{"report", "--data-stream", dataStream, "--format", "json"}, esFlags...)...)
		if err := finished(t, rep); err != nil {
			t.Fatalf("report: %v\n%s", err, rep.log)
		}
		var s report.Summary
		out := rep.stdout.String()
		if err := json.Unmarshal([]byte(out), &s); err != nil {
			t.Fatalf("report printed no JSON summary (%v):\n%s", err, rep.log)
		}
		// Its mismatches are the documents' (counted here as the superuser).
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		code, body, err := stack.ESRequest(ctx, http.MethodPost, "/"+dataStream+"/_count",
			[]byte(`{"query":{"term":{"verdict":"mismatch"}}}`))
		var mismatches struct{ Count int64 }
		if err != nil || code != http.StatusOK || json.Unmarshal(body, &mismatches) != nil || mismatches.Count == 0 {
			t.Fatalf("counting mismatches: %d %s %v", code, body, err)
		}
		if s.Pairs != want || s.Verdicts.Mismatch != mismatches.Count {
			t.Errorf("report: %d pairs, %d mismatches; want %d and %d:\n%s", s.Pairs, s.Verdicts.Mismatch, want, mismatches.Count, out)
		}

		// The same report trusting the node by the CA's fingerprint (what
		// Elasticsearch prints at its first start) instead of the CA file:
		// the node's own certificate must verify up to the pinned CA.
		pemBytes, err := os.ReadFile(sec.CAFile)
		if err != nil {
			t.Fatal(err)
		}
		block, _ := pem.Decode(pemBytes)
		if block == nil {
			t.Fatalf("%s holds no PEM block", sec.CAFile)
		}
		sum := sha256.Sum256(block.Bytes)
		byFingerprint := run(t, nil, "report", "--data-stream", dataStream, "--format", "json", "--es", stack.ESURL(),
			"--es-ca-fingerprint", hex.EncodeToString(sum[:]), "--es-username", sec.ESUser, "--es-password-file", sec.ESPasswordFile)
		if err := finished(t, byFingerprint); err != nil {
			t.Fatalf("report with --es-ca-fingerprint: %v\n%s", err, byFingerprint.log)
		}
		var s2 report.Summary
		if err := json.Unmarshal([]byte(byFingerprint.stdout.String()), &s2); err != nil || s2.Pairs != want {
			t.Errorf("report with --es-ca-fingerprint: %d pairs (%v), want %d:\n%s", s2.Pairs, err, want, byFingerprint.log)
		}
	})

	t.Run("API key", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		// The superuser makes a key for the analyzer.
		code, body, err := stack.ESRequest(ctx, http.MethodPost, "/_security/api_key", []byte(`{"name":"tapline-analyze"}`))
		if err != nil {
			t.Fatal(err)
		}
		keyFile := filepath.Join(t.TempDir(), "api-key")
		var key struct{ Encoded string }
		switch {
		case code == http.StatusOK && json.Unmarshal(body, &key) == nil && key.Encoded != "":
			// A node that can hold API keys: the whole analyze path.
			if err := os.WriteFile(keyFile, []byte(key.Encoded+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			secrets = append(secrets, key.Encoded)
			ds := stack.Index(t, "tapline-pairs-apikey")
			analyze := run(t, nil, append([]string{"analyze", "--from", kafkaURL(results), "--group", "secure-analyze-apikey",
				"--start", "earliest", "--data-stream", ds, "--es", stack.ESURL(), "--es-ca-file", sec.CAFile, "--es-api-key-file", keyFile},
				kafkaFlags(true)...)...)
			waitForCount(t, stack, ds, 8, analyze)
			analyze.stop(t)
			return
		case bytes.Contains(body, []byte("pattern_capture")):
			// The integ-test distribution of deploy/local lacks the
			// analysis-common module that the security index's mapping
			// needs, so it cannot store API keys (deploy/local/README.md).
			t.Logf("this node cannot create API keys: POST /_security/api_key answered %d %s", code, body)
		default:
			t.Fatalf("POST /_security/api_key: %d %s", code, body)
		}
		// What can be shown here: tapline sends the key as an API key, and
		// the node's refusal is reported as an authentication failure.
		if err := os.WriteFile(keyFile, []byte("dGFwbGluZS1pZDpub3QtYS1rZXk=\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		analyze := run(t, nil, append([]string{"analyze", "--from", kafkaURL(results), "--group", "secure-analyze-apikey",
			"--data-stream", dataStream, "--es", stack.ESURL(), "--es-ca-file", sec.CAFile, "--es-api-key-file", keyFile},
			kafkaFlags(true)...)...)
		err = finished(t, analyze)
		if err == nil || !strings.Contains(analyze.log.String(), "authentication failed with the API key") ||
			!strings.Contains(analyze.log.String(), "API key") {
			t.Fatalf("analyze with an unknown API key: %v, want an authentication failure:\n%s", err, analyze.log)
		}
	})

	// What must fail does, at once, saying what failed.
	wrongPassword := filepath.Join(t.TempDir(), "wrong")
	if err := os.WriteFile(wrongPassword, []byte("not-the-password\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"wrong Kafka password",
			[]string{"replay", "--from", kafkaURL(exchanges), "--to", "-", "--target", "s=http://127.0.0.1:1",
				"--kafka-ca-file", sec.CAFile, "--kafka-sasl", "scram-sha-512", "--kafka-username", sec.KafkaUser, "--kafka-password-file", wrongPassword},
			`SASL SCRAM-SHA-512 authentication as "tapline" failed`},
		{"plaintext client at the SASL_SSL listener",
			[]string{"cat", "--limit", "1", kafkaURL(exchanges)},
			"it may expect TLS"},
		{"no CA for the broker",
			[]string{"cat", "--kafka-tls", "--kafka-sasl", "scram-sha-512", "--kafka-username", sec.KafkaUser, "--kafka-password-file", sec.KafkaPasswordFile, kafkaURL(exchanges)},
			"not signed by a trusted CA"},
		{"wrong Elasticsearch password",
			append(append([]string{"analyze", "--from", kafkaURL(results), "--data-stream", dataStream, "--es-password-file", wrongPassword}, esFlags...), kafkaFlags(true)...),
			`authentication failed as user "tapline"`},
		{"Elasticsearch without its CA",
			[]string{"report", "--es", stack.ESURL(), "--es-username", sec.ESUser, "--es-password-file", sec.ESPasswordFile, "--data-stream", dataStream},
			"certificate"},
		{"Kafka credentials in the URL",
			[]string{"cat", "kafka://tapline:" + sec.KafkaPassword + "@" + brokers + "/" + exchanges},
			"--kafka-password-file"},
		{"Elasticsearch credentials in the URL",
			[]string{"report", "--es", strings.Replace(stack.ESURL(), "https://", "https://tapline:"+sec.ESPassword+"@", 1),
				"--es-ca-file", sec.CAFile, "--data-stream", dataStream},
			"URL holds credentials"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := run(t, nil, tc.args...)
			err := finished(t, p)
			if err == nil || !strings.Contains(p.log.String(), tc.want) {
				t.Fatalf("tapline %s: %v, want a failure saying %q:\n%s", tc.args[0], err, tc.want, p.log)
			}
		})
	}

	// Nothing the binary printed, at debug level, holds a secret; the URL
	// cases above were given the passwords themselves.
	for _, p := range outputs {
		out := p.log.String()
		for _, s := range secrets {
			if strings.Contains(out, s) {
				t.Errorf("tapline %s printed a secret:\n%s", p.name, redactAll(out, secrets))
			}
		}
	}
}

// startTaplineEnv is startTapline with extra environment variables.
func startTaplineEnv(t *testing.T, bin string, env []string, args ...string) *process {
	t.Helper()
	// Debug logging: the most a secret could leak into.
	p := &process{name: args[0], cmd: exec.Command(bin, append([]string{"--log-level", "debug"}, args...)...), log: &syncBuffer{}, done: make(chan error, 1)}
	p.cmd.Env = append(os.Environ(), env...)
	p.stdout = &syncBuffer{}
	p.cmd.Stdout, p.cmd.Stderr = io.MultiWriter(p.log, p.stdout), p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() { p.cmd.Process.Kill() })
	return p
}

// waitForCount polls the data stream on the private node until it holds
// want documents, failing on more, or when one of procs exits.
func waitForCount(t *testing.T, stack *stacktest.Stack, dataStream string, want int, procs ...*process) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		stack.ESRequest(ctx, http.MethodPost, "/"+dataStream+"/_refresh", nil)
		code, body, err := stack.ESRequest(ctx, http.MethodGet, "/"+dataStream+"/_count", nil)
		cancel()
		var n struct{ Count int }
		if err == nil && code == http.StatusOK {
			json.Unmarshal(body, &n)
		}
		if n.Count == want {
			return
		}
		if n.Count > want {
			t.Fatalf("%d documents in %s, want %d", n.Count, dataStream, want)
		}
		for _, p := range procs {
			select {
			case err := <-p.done:
				t.Fatalf("%s exited early (%v):\n%s", p.name, err, p.log)
			default:
			}
		}
		if time.Now().After(deadline) {
			var logs strings.Builder
			for _, p := range procs {
				logs.WriteString(p.name + ":\n" + p.log.String())
			}
			t.Fatalf("after 3m: %d documents in %s (last answer %d %s), want %d\n%s", n.Count, dataStream, code, body, want, logs.String())
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func scrape(t *testing.T, u string) string {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// redactAll hides the secrets in s, so that a failure report does not
// print them either.
func redactAll(s string, secrets []string) string {
	for _, x := range secrets {
		s = strings.ReplaceAll(s, x, "[SECRET]")
	}
	return s
}
