package replayer

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tapline/tapline/internal/stream"
	"github.com/tapline/tapline/schema"
)

func TestProductionGuard(t *testing.T) {
	target := func(name, raw string) Target {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		return Target{Name: name, URL: u}
	}
	targets := []Target{
		target("plain", "http://api.example.com"),
		target("ip", "http://127.0.0.1:8080"),
		target("tls", "https://secure.example"),
		target("local", "http://localhost:9999/prefix"),
	}
	g := newProductionGuard(targets, time.Second)
	ex := func(host, serverIP string, port uint32) *schema.Exchange {
		return &schema.Exchange{Request: &schema.Request{Host: host}, Server: &schema.Endpoint{Ip: serverIP, Port: port}}
	}
	cases := []struct {
		target  string
		ex      *schema.Exchange
		refused bool
	}{
		{"plain", ex("api.example.com", "", 0), true},
		{"plain", ex("API.Example.com:80", "", 0), true},
		{"plain", ex("api.example.com:8080", "", 0), false},
		{"plain", ex("www.example.com", "", 0), false},
		{"ip", ex("127.0.0.1:8080", "", 0), true},
		{"ip", ex("prod.internal", "127.0.0.1", 8080), true}, // an IP literal resolves to itself
		{"ip", ex("prod.internal", "127.0.0.1", 8081), false},
		{"tls", ex("secure.example", "", 0), false}, // :80 recorded, :443 targeted
		{"tls", ex("secure.example:443", "", 0), true},
		{"local", ex("prod.internal", "127.0.0.1", 9999), true}, // localhost resolves to 127.0.0.1
		{"local", ex("prod.internal", "127.0.0.1", 80), false},
		{"local", ex("", "", 0), false},
	}
	for _, tc := range cases {
		var tg Target
		for _, x := range targets {
			if x.Name == tc.target {
				tg = x
			}
		}
		why := g.production(tg, tc.ex)
		if (why != "") != tc.refused {
			t.Errorf("target %s, host %q server %s:%d: refused %q, want refused=%v", tc.target, tc.ex.Request.Host,
				tc.ex.Server.Ip, tc.ex.Server.Port, why, tc.refused)
		}
	}
	var off *productionGuard
	if off.production(targets[0], ex("api.example.com", "", 0)) != "" {
		t.Error("a nil guard refused")
	}
}

// TestProductionTargetRefused: an exchange recorded from the host a target
// names is not sent there (an outcome says why, a counter counts it)
// unless AllowProductionTarget.
func TestProductionTargetRefused(t *testing.T) {
	for _, allow := range []bool{false, true} {
		var hits atomic.Int32
		staging := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
		u, _ := url.Parse(staging.URL)
		ex := &schema.Exchange{Id: "e1", SessionKey: "s", Request: &schema.Request{Method: "GET", Target: "/", Host: u.Host},
			Original: &schema.Exchange_Response{Response: &schema.Response{Status: 200}}}
		v, h, _ := schema.EncodeExchange(ex)
		results := &fakeSink{}
		r, err := New(Config{Source: &fakeSource{}, Results: results, Targets: []Target{{Name: "t", URL: u}}, AllowProductionTarget: allow, Logger: quiet()})
		if err != nil {
			t.Fatal(err)
		}
		if err := runBatch(context.Background(), r, []stream.Record{{Value: v, Headers: h}}); err != nil {
			t.Fatal(err)
		}
		staging.Close()
		res, _ := schema.DecodeReplayResult(results.recs[0].Value, results.recs[0].Headers)
		refused := strings.Contains(res.Outcomes[0].GetError(), "production") && res.Outcomes[0].GetErrorKind() == ErrProduction
		if refused == allow || (hits.Load() == 1) != allow || (r.Stats().ProductionRefused == 1) == allow {
			t.Errorf("allow %v: outcome %v, staging hits %d, stats %+v", allow, res.Outcomes[0], hits.Load(), r.Stats())
		}
	}
}
