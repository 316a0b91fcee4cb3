package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/tapline/tapline/internal/stacktest"
)

// TestCat prints the loopback capture (10 exchanges) from the file log and
// from Kafka, with filters and a limit, and the results of a replay.
func TestCat(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	brokers := stacktest.Kafka(t)
	topic := stacktest.Topic(t, brokers, 2)
	dir := t.TempDir()
	sources := map[string]string{"file": "file://" + dir + "/exchanges", "kafka": "kafka://" + strings.Join(brokers, ",") + "/" + topic}
	for name, src := range sources {
		if out, err := runTapline(ctx, "record", "--pcap", "../../recorder/testdata/loopback.pcap", "--to", src); err != nil {
			t.Fatalf("record to %s: %v\n%s", name, err, out)
		}
	}
	type line struct {
		Request struct {
			Method, Target string
		}
		Response struct {
			Status      int
			Body        string
			BodyDecoded bool `json:"body_decoded"`
		}
		Outcomes []struct{ Target string }
	}
	parse := func(t *testing.T, out string) []line {
		var lines []line
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			if l == "" {
				continue
			}
			var x line
			if err := json.Unmarshal([]byte(l), &x); err != nil {
				t.Fatalf("line %q: %v", l, err)
			}
			lines = append(lines, x)
		}
		return lines
	}
	requests := func(lines []line) []string {
		var out []string
		for _, l := range lines {
			out = append(out, l.Request.Method+" "+l.Request.Target)
		}
		slices.Sort(out)
		return out
	}
	cases := []struct {
		name string
		args []string
		want []string
	}{
		{"everything", nil, []string{"DELETE /users/2", "GET /big", "GET /chunked", "GET /close", "GET /gzip", "GET /missing",
			"GET /users/1", "GET /users/2?verbose=1", "HEAD /users/1", "POST /users"}},
		{"writes only", []string{"--allow-method", "POST,DELETE"}, []string{"DELETE /users/2", "POST /users"}},
		{"users paths but not HEAD", []string{"--allow-path", "^/users", "--deny-method", "HEAD"},
			[]string{"DELETE /users/2", "GET /users/1", "GET /users/2?verbose=1", "POST /users"}},
		{"a window before the capture", []string{"--since", "2026-11-28T03:00:00Z", "--until", "2026-11-28T04:00:00Z"}, nil},
	}
	for name, src := range sources {
		for _, tc := range cases {
			t.Run(name+"/"+tc.name, func(t *testing.T) {
				out, stderr, err := runTaplineOut(ctx, append(append([]string{"cat"}, tc.args...), src)...)
				if err != nil {
					t.Fatalf("cat: %v\n%s", err, stderr)
				}
				if got := requests(parse(t, out)); !slices.Equal(got, tc.want) {
					t.Fatalf("printed %q, want %q\n%s", got, tc.want, stderr)
				}
			})
		}
		t.Run(name+"/limit and a decoded gzip body", func(t *testing.T) {
			out, stderr, err := runTaplineOut(ctx, "cat", "--allow-path", "^/gzip$", "--limit", "1", src)
			if err != nil {
				t.Fatalf("cat: %v\n%s", err, stderr)
			}
			lines := parse(t, out)
			if len(lines) != 1 || !lines[0].Response.BodyDecoded || !strings.HasPrefix(lines[0].Response.Body, "compressed compressed") {
				t.Fatalf("printed %+v, want the /gzip exchange with its body decoded\n%s", lines, out)
			}
		})
	}

	// Results: replay the file log into another one, then cat it.
	staging := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer staging.Close()
	results := "file://" + dir + "/results"
	if _, stderr, err := runTaplineOut(ctx, "replay", "--from", sources["file"], "--to", results, "--since", "2026-11-28T04:00:00Z",
		"--until", "2026-11-28T06:00:00Z", "--target", "staging="+staging.URL); err != nil {
		t.Fatalf("replay: %v\n%s", err, stderr)
	}
	out, stderr, err := runTaplineOut(ctx, "cat", "--allow-path", "^/users", results)
	if err != nil {
		t.Fatalf("cat results: %v\n%s", err, stderr)
	}
	var got []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var x struct {
			Exchange struct {
				Request struct{ Method, Target string }
			}
			Outcomes []struct{ Target string }
		}
		if err := json.Unmarshal([]byte(l), &x); err != nil || len(x.Outcomes) != 1 || x.Outcomes[0].Target != "staging" {
			t.Fatalf("result line %q: %v", l, err)
		}
		got = append(got, x.Exchange.Request.Method+" "+x.Exchange.Request.Target)
	}
	slices.Sort(got)
	if want := []string{"GET /users/1", "GET /users/2?verbose=1", "HEAD /users/1"}; !slices.Equal(got, want) {
		t.Fatalf("results printed %q, want %q", got, want)
	}
	// The same results through report: staging answers every GET with an
	// empty 200, so everything with a body mismatches, and the gate trips.
	rep, stderr, err := runTaplineOut(ctx, "report", "--from", results, "--fail-on", "mismatch-rate>10%", "--format", "json")
	var exit cli.ExitCoder
	if !errors.As(err, &exit) || exit.ExitCode() != 3 || !strings.Contains(err.Error(), "mismatch-rate") {
		t.Fatalf("report with a failing gate: %v, want exit 3 naming the gate\n%s", err, stderr)
	}
	var sum struct {
		Pairs int64 `json:"pairs"`
	}
	if err := json.Unmarshal([]byte(rep), &sum); err != nil || sum.Pairs != 8 {
		t.Fatalf("report JSON: %v, pairs %d (want the 8 replayed)\n%s", err, sum.Pairs, rep)
	}
	if _, err := runTapline(ctx, "report", "--from", results, "--fail-on", "mismatch-rate>>1"); err == nil {
		t.Error("a bad --fail-on was accepted")
	}
	if _, err := runTapline(ctx, "cat"); err == nil {
		t.Error("cat without a URL was accepted")
	}
	if _, err := runTapline(ctx, "cat", results, "--limit", "1"); err == nil || !strings.Contains(err.Error(), "flags go before the URL") {
		t.Errorf("a flag after the URL: %v, want advice to put it first", err)
	}
}
