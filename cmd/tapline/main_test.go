package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	kibanaobjects "github.com/tapline/tapline/deploy/kibana"
)

// TestEveryFlagHasEnv: every flag of every command can be set from the
// environment and explains itself.
func TestEveryFlagHasEnv(t *testing.T) {
	app := newApp(nil, nil)
	check := func(prefix string, flags []cli.Flag) {
		for _, f := range flags {
			df, ok := f.(cli.DocGenerationFlag)
			if !ok {
				t.Fatalf("flag %v has no docs", f.Names())
			}
			if len(df.GetEnvVars()) != 1 || !strings.HasPrefix(df.GetEnvVars()[0], prefix) {
				t.Errorf("flag --%s: env vars %v, want %s...", f.Names()[0], df.GetEnvVars(), prefix)
			}
			if len(df.GetUsage()) < 15 {
				t.Errorf("flag --%s: usage %q does not explain it", f.Names()[0], df.GetUsage())
			}
		}
	}
	check("TAPLINE_", app.Flags)
	for _, c := range app.Commands {
		check("TAPLINE_"+strings.ToUpper(c.Name)+"_", c.Flags)
		for _, sub := range c.Subcommands {
			check("TAPLINE_"+strings.ToUpper(c.Name)+"_", sub.Flags)
		}
	}
}

// TestKibanaImport runs the command against a stand-in for Kibana's
// saved-objects import API (Kibana cannot run here; internal/kibana's
// tests cover the protocol in detail): the built-in export is sent whole.
func TestKibanaImport(t *testing.T) {
	var got []byte
	kb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, _, err := r.FormFile("file")
		if err != nil || r.URL.Path != "/api/saved_objects/_import" || r.Header.Get("kbn-xsrf") == "" {
			http.Error(w, "bad request", 400)
			return
		}
		got, _ = io.ReadAll(f)
		n := bytes.Count(got, []byte("\n"))
		fmt.Fprintf(w, `{"success":true,"successCount":%d}`, n)
	}))
	defer kb.Close()
	out, stderr, err := runTaplineOut(context.Background(), "kibana", "import", "--url", kb.URL)
	if err != nil {
		t.Fatalf("kibana import: %v\n%s", err, stderr)
	}
	if !bytes.Equal(got, kibanaobjects.NDJSON) || !strings.Contains(out, "imported 9 saved objects") {
		t.Fatalf("sent %d bytes (want the %d of the export); said %q", len(got), len(kibanaobjects.NDJSON), out)
	}
	if _, err := runTapline(context.Background(), "kibana", "import"); err == nil || !strings.Contains(err.Error(), "--url is required") {
		t.Errorf("without --url: %v", err)
	}
}

func TestUsageErrors(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"record", "--pcap", "x.pcap"}, "--to is required"},
		{[]string{"record", "--to", "kafka://h:9092/t"}, "either --iface"},
		{[]string{"record", "--to", "kafka://h:9092/t", "--pcap", "x", "--iface", "lo"}, "either --iface"},
		{[]string{"record", "--to", "kafka://h:9092/t", "--iface", "no-such-if0"}, "no-such-if0"},
		{[]string{"replay", "--from", "file:///nonexistent/log", "--to", "-", "--target", "s=http://x", "--since", "-1h"}, "record into it first"},
		{[]string{"record", "--to", "kafka://h:9092/bad topic", "--pcap", "x"}, "not a valid Kafka topic"},
		{[]string{"record", "--to", "-", "--pcap", "x", "--sample", "150%"}, "--sample"},
		{[]string{"record", "--to", "-", "--pcap", "x", "--session-key", "ip"}, "--session-key"},
		{[]string{"record", "--to", "-", "--pcap", "x", "--deny-path", "("}, "("},
		{[]string{"record", "--to", "-", "--pcap", "x", "--redact-preset"}, "TAPLINE_RECORD_REDACT_KEY"},
		{[]string{"replay", "--from", "kafka://h/t", "--to", "kafka://h/r"}, "--target is required"},
		{[]string{"replay", "--from", "kafka://h/t", "--to", "kafka://h/r", "--target", "staging"}, "want name=http://host:port"},
		{[]string{"replay", "--from", "kafka://h/t", "--to", "kafka://h/r", "--target", "s=ftp://x"}, "not an http(s) URL"},
		{[]string{"replay", "--from", "kafka://h/t", "--to", "kafka://h/r", "--target", "s=http://x", "--start", "now"}, "want latest or earliest"},
		{[]string{"analyze", "--from", "kafka://h/t"}, "--es is required"},
		{[]string{"replay", "--from", "kafka://h/t", "--to", "kafka://h/r", "--target", "s=http://x", "--until", "now"}, "--until needs --since"},
		{[]string{"replay", "--from", "kafka://h/t", "--to", "kafka://h/r", "--target", "s=http://x", "--rate", "-1"}, "negative"},
		{[]string{"replay", "--from", "kafka://h/t", "--to", "kafka://h/r", "--target", "s=http://x", "--sample", "2x"}, "--sample"},
		{[]string{"replay", "--from", "kafka://h/t", "--to", "kafka://h/r", "--target", "s=http://x", "--rewrite-path", "(=>x"}, `path rewrite "(=>x"`},
		{[]string{"replay", "--from", "kafka://h/t", "--to", "kafka://h/r", "--target", "s=http://x", "--require-header", "X-A=("}, `--require-header "X-A=("`},
		{[]string{"replay", "--from", "kafka://h/t", "--to", "kafka://h/r", "--target", "s=http://x", "--rules", "testdata/bad-rules.yaml"}, "field pathz not found"},
		{[]string{"replay", "--from", "kafka://h/t", "--to", "kafka://h/r", "--target", "s=http://x", "--allow-path", "[a"}, "[a"},
		{[]string{"--log-level", "loud", "version"}, "--log-level"},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			_, err := runTapline(context.Background(), tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// TestRecordToStdout: `record --to -` prints one JSON line per exchange.
func TestRecordToStdout(t *testing.T) {
	out, log, err := runTaplineOut(context.Background(), "record", "--pcap", "../../recorder/testdata/loopback.pcap", "--to", "-")
	if err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 10 {
		t.Fatalf("%d lines, want 10:\n%s", len(lines), out)
	}
	var first struct {
		Request struct {
			Method, Target string
			Headers        [][2]string
		}
		Response struct {
			Status int
			Body   string
		}
	}
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatal(err)
	}
	if first.Request.Method != "GET" || first.Request.Target != "/users/1" || first.Response.Status != 200 ||
		first.Response.Body != `{"id":"1","name":"user"}` || first.Request.Headers[2] != [2]string{"X-Trace", "a"} {
		t.Fatalf("first line: %+v", first)
	}
}

// TestRecordFromStdin: `--pcap -` reads the capture from stdin.
func TestRecordFromStdin(t *testing.T) {
	f, err := os.Open("../../recorder/testdata/loopback.pcap")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	stdin := os.Stdin
	os.Stdin = f
	t.Cleanup(func() { os.Stdin = stdin })
	out, log, err := runTaplineOut(context.Background(), "record", "--pcap", "-", "--to", "-")
	if err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	if n := strings.Count(out, "\n"); n != 10 {
		t.Fatalf("%d exchanges from stdin, want 10", n)
	}
}

// TestRecordEnvVar: a flag given only through its environment variable.
func TestRecordEnvVar(t *testing.T) {
	t.Setenv("TAPLINE_RECORD_TO", "kafka://h:9092/bad topic")
	_, err := runTapline(context.Background(), "record", "--pcap", "x")
	if err == nil || !strings.Contains(err.Error(), "bad topic") {
		t.Fatalf("got %v, want the env value to be used", err)
	}
}
