package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// TestServeProbeDrive: shopd serves the shop, -probe sees it healthy, and
// -drive sends it the mix until stopped.
func TestServeProbeDrive(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() {
		served <- run(ctx, []string{"-listen", addr, "-regression", "-slow-search", "1ms"}, io.Discard)
	}()
	deadline := time.Now().Add(5 * time.Second)
	for run(context.Background(), []string{"-probe", "http://" + addr + "/health"}, io.Discard) != nil {
		if time.Now().After(deadline) {
			t.Fatal("shopd did not answer -probe within 5s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	resp, err := http.Get("http://" + addr + "/api/users/7")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), `"full_name"`) {
		t.Errorf("-regression: users answered %s, want the renamed field", b)
	}
	if err := run(context.Background(), []string{"-probe", "http://" + addr + "/nothing"}, io.Discard); err == nil {
		t.Error("-probe of a 404 succeeded")
	}
	cancel()
	if err := <-served; err != nil {
		t.Errorf("serve after SIGTERM: %v", err)
	}

	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer srv.Close()
	ctx, cancel = context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := drive(ctx, srv.URL, 200, 4, time.Hour); err != nil {
		t.Fatal(err)
	}
	if n := hits.Load(); n < 10 || n > 80 {
		t.Errorf("-drive at 200/s for 0.3s: %d requests", n)
	}
	if err := run(context.Background(), []string{"-listen"}, io.Discard); err == nil {
		t.Error("a flag without its value was accepted")
	}
}

// TestComposeCommandLines: every shopd command line in
// deploy/docker-compose.yml (services and healthchecks) is valid for the
// flags above, so renaming a flag fails here.
func TestComposeCommandLines(t *testing.T) {
	b, err := os.ReadFile("../../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var cf struct {
		Services map[string]struct {
			Entrypoint  []string `yaml:"entrypoint"`
			Command     []string `yaml:"command"`
			Healthcheck *struct {
				Test []string `yaml:"test"`
			} `yaml:"healthcheck"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(b, &cf); err != nil {
		t.Fatal(err)
	}
	var lines int
	check := func(where string, args []string) {
		lines++
		var cfg config
		fs := newFlagSet(&cfg, io.Discard)
		if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
			t.Errorf("%s: shopd %s: %v (arguments left: %q)", where, strings.Join(args, " "), err, fs.Args())
		}
	}
	for name, s := range cf.Services {
		if len(s.Entrypoint) > 0 && path.Base(s.Entrypoint[0]) == "shopd" {
			check("service "+name, append(s.Entrypoint[1:], s.Command...))
		}
		if hc := s.Healthcheck; hc != nil && len(hc.Test) > 1 && hc.Test[0] == "CMD" && path.Base(hc.Test[1]) == "shopd" {
			check("service "+name+" healthcheck", hc.Test[2:])
		}
	}
	if lines < 4 {
		t.Errorf("found %d shopd command lines in docker-compose.yml, want production, staging, traffic and their healthchecks", lines)
	}
}
