package recorder

import (
	"fmt"
	"strings"
	"testing"

	"github.com/tapline/tapline/schema"
)

func TestFilterKeep(t *testing.T) {
	type req struct {
		method, host, target string
		want                 bool
	}
	cases := []struct {
		name string
		cfg  FilterConfig
		reqs []req
	}{
		{
			name: "zero config keeps everything",
			reqs: []req{{"GET", "a", "/", true}, {"", "", "", true}},
		},
		{
			name: "methods, any case",
			cfg:  FilterConfig{AllowMethods: []string{"get", "POST"}, DenyMethods: []string{"Post"}},
			reqs: []req{{"GET", "a", "/", true}, {"get", "a", "/", true}, {"POST", "a", "/", false}, {"PUT", "a", "/", false}},
		},
		{
			name: "deny methods only",
			cfg:  FilterConfig{DenyMethods: []string{"OPTIONS"}},
			reqs: []req{{"GET", "a", "/", true}, {"OPTIONS", "a", "*", false}},
		},
		{
			name: "hosts exact, any case, port and trailing dot ignored",
			cfg:  FilterConfig{AllowHosts: []string{"API.example.com", "[::1]", "10.0.0.1"}},
			reqs: []req{
				{"GET", "api.example.com", "/", true},
				{"GET", "Api.Example.Com:8443", "/", true},
				{"GET", "api.example.com.", "/", true},
				{"GET", "[::1]:80", "/", true},
				{"GET", "10.0.0.1:80", "/", true},
				{"GET", "www.api.example.com", "/", false},
				{"GET", "example.com", "/", false},
				{"GET", "", "/", false},
				{"GET", "", "http://api.example.com:80/x?y", true}, // from an absolute target
				{"GET", "", "http://user@10.0.0.1/x", true},
			},
		},
		{
			name: "deny host wins over allow host",
			cfg:  FilterConfig{AllowHosts: []string{"a.example"}, DenyHosts: []string{"a.example"}},
			reqs: []req{{"GET", "a.example", "/", false}},
		},
		{
			name: "paths: regexps on the path without the query",
			cfg:  FilterConfig{AllowPaths: []string{`^/api/`, `^/login$`}, DenyPaths: []string{`^/api/internal(/|$)`, `\.png$`}},
			reqs: []req{
				{"GET", "h", "/api/users?id=1", true},
				{"GET", "h", "/api/internal/x", false},
				{"GET", "h", "/api/internal", false},
				{"GET", "h", "/api/internals", true},
				{"GET", "h", "/api/logo.png?v=2", false},
				{"GET", "h", "/login?next=/api/", true},
				{"GET", "h", "/login/x", false},
				{"GET", "h", "/other?p=/api/", false},
				{"GET", "h", "http://h/api/x?y", true},
				{"GET", "h", "http://h?/api/", false},   // the path is "/"
				{"GET", "h", "/api/%69nternal/x", true}, // matched as sent, not decoded
			},
		},
		{
			name: "allow lists of different kinds must all match",
			cfg:  FilterConfig{AllowMethods: []string{"GET"}, AllowHosts: []string{"h"}, AllowPaths: []string{"^/a"}},
			reqs: []req{{"GET", "h", "/a", true}, {"POST", "h", "/a", false}, {"GET", "x", "/a", false}, {"GET", "h", "/b", false}},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, err := NewFilter(c.cfg)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range c.reqs {
				if got := f.Keep(&schema.Request{Method: r.method, Host: r.host, Target: r.target}); got != r.want {
					t.Errorf("Keep(%s %s host %q) = %v, want %v", r.method, r.target, r.host, got, r.want)
				}
			}
		})
	}
	var nilFilter *Filter
	if !nilFilter.Keep(&schema.Request{Method: "GET"}) {
		t.Error("a nil Filter dropped a request")
	}
}

func TestFilterConfigErrors(t *testing.T) {
	cases := []struct {
		name string
		cfg  FilterConfig
		want string
	}{
		{"bad regexp", FilterConfig{AllowPaths: []string{"^/ok", "(unclosed"}}, `allow path "(unclosed": error parsing regexp`},
		{"bad deny regexp", FilterConfig{DenyPaths: []string{"a**"}}, `deny path "a**"`},
		{"bad method", FilterConfig{DenyMethods: []string{"GET POST"}}, `deny method "GET POST"`},
		{"empty method", FilterConfig{AllowMethods: []string{""}}, `allow method ""`},
		{"host with port", FilterConfig{AllowHosts: []string{"a.example:8080"}}, `allow host "a.example:8080": ports are ignored`},
		{"empty host", FilterConfig{DenyHosts: []string{""}}, `deny host ""`},
		{"url as host", FilterConfig{DenyHosts: []string{"http//a/b"}}, `deny host "http//a/b"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := NewFilter(c.cfg)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one containing %q", err, c.want)
			}
		})
	}
}

func TestTargetPath(t *testing.T) {
	cases := map[string]string{
		"/a/b?c=d":             "/a/b",
		"/a/b":                 "/a/b",
		"/a#f":                 "/a",
		"/?x":                  "/",
		"http://h:80/p/q?x=1":  "/p/q",
		"https://h":            "/",
		"https://h?x=/a":       "/",
		"example.com:443":      "example.com:443",
		"*":                    "*",
		"":                     "",
		"http://u@h/p;params?": "/p;params",
	}
	for target, want := range cases {
		if got := targetPath(target); got != want {
			t.Errorf("targetPath(%q) = %q, want %q", target, got, want)
		}
	}
}

func TestParseSessionKey(t *testing.T) {
	req := &schema.Request{Headers: headers(
		"x-user-id:  u-42 ",
		"X-User-Id: u-43",
		"X-Empty: ",
		"Cookie: a=1; sid=\"s-1\"",
		"Cookie: sid=s-2; other=x",
		"Cookie: empty=",
	)}
	cases := []struct {
		spec   string
		nilFn  bool
		want   string
		wantOK bool
	}{
		{spec: "", nilFn: true},
		{spec: "connection", nilFn: true},
		{spec: " Connection ", nilFn: true},
		{spec: "header:X-User-Id", want: "u-42", wantOK: true},
		{spec: "Header: x-USER-id", want: "u-42", wantOK: true},
		{spec: "header:X-Missing"},
		{spec: "header:X-Empty"},
		{spec: "cookie:sid", want: "s-1", wantOK: true},
		{spec: "cookie:other", want: "x", wantOK: true},
		{spec: "cookie:SID"}, // cookie names are case-sensitive
		{spec: "cookie:a", want: "1", wantOK: true},
		{spec: "cookie:empty"},
		{spec: "cookie:missing"},
	}
	for _, c := range cases {
		t.Run(c.spec, func(t *testing.T) {
			fn, err := ParseSessionKey(c.spec)
			if err != nil {
				t.Fatal(err)
			}
			if c.nilFn {
				if fn != nil {
					t.Fatal("want nil (the connection)")
				}
				return
			}
			got, ok := fn(req)
			if got != c.want || ok != c.wantOK {
				t.Errorf("got %q, %v; want %q, %v", got, ok, c.want, c.wantOK)
			}
		})
	}
	noHeaders := &schema.Request{}
	for _, spec := range []string{"header:X-User-Id", "cookie:sid"} {
		fn, _ := ParseSessionKey(spec)
		if _, ok := fn(noHeaders); ok {
			t.Errorf("%s: found a key in a request without headers", spec)
		}
	}
}

func TestParseSessionKeyErrors(t *testing.T) {
	for _, spec := range []string{"user", "header:", "header:X Bad", "cookie:", "cookie:a=b", "query:id", ":x"} {
		_, err := ParseSessionKey(spec)
		if err == nil {
			t.Errorf("%q accepted", spec)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, fmt.Sprintf("%q", spec)) || !strings.Contains(msg, `"header:NAME" or "cookie:NAME"`) {
			t.Errorf("%q: error %q should name the spec and list the forms", spec, msg)
		}
	}
}

func TestNewSampler(t *testing.T) {
	cases := []struct {
		spec    string
		rate    float64
		session bool
		err     string // in the error; "" means no error
	}{
		{spec: "", rate: 1},
		{spec: "100%", rate: 1},
		{spec: "1", rate: 1},
		{spec: "10%", rate: 0.1},
		{spec: " 10 % ", rate: 0.1},
		{spec: "0.1", rate: 0.1},
		{spec: ".5", rate: 0.5},
		{spec: "0.5%", rate: 0.005},
		{spec: "0%", rate: 0},
		{spec: "0", rate: 0},
		{spec: "10%:session", rate: 0.1, session: true},
		{spec: "0.25:session", rate: 0.25, session: true},
		{spec: "-5%", err: "negative"},
		{spec: "101%", err: "more than 100%"},
		{spec: "10", err: `did you mean "10%"`},
		{spec: "1.5", err: `did you mean "1.5%"`},
		{spec: "abc", err: "not a rate"},
		{spec: "%", err: "not a rate"},
		{spec: "1e-1", err: "not a rate"},
		{spec: "NaN", err: "not a rate"},
		{spec: "inf", err: "not a rate"},
		{spec: "0x1p-2", err: "not a rate"},
		{spec: "1.2.3", err: "not a rate"},
		{spec: "10%%", err: "not a rate"},
		{spec: "10%:random", err: `unknown mode "random"`},
		{spec: "10%:", err: "unknown mode"},
	}
	for _, c := range cases {
		t.Run(c.spec, func(t *testing.T) {
			s, err := NewSampler(c.spec)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %v, want one containing %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.rate != c.rate || s.session != c.session {
				t.Errorf("rate %v session %v, want %v %v", s.rate, s.session, c.rate, c.session)
			}
		})
	}
}

func TestSamplerKeepsAllOrNone(t *testing.T) {
	for _, spec := range []string{"", "100%", "100%:session"} {
		s, _ := NewSampler(spec)
		for i := range 1000 {
			if !s.Keep(fmt.Sprint(i)) {
				t.Fatalf("%q dropped key %d", spec, i)
			}
		}
	}
	for _, spec := range []string{"0%", "0:session"} {
		s, _ := NewSampler(spec)
		for i := range 1000 {
			if s.Keep(fmt.Sprint(i)) {
				t.Fatalf("%q kept key %d", spec, i)
			}
		}
	}
	var nilSampler *Sampler
	if !nilSampler.Keep("x") {
		t.Error("a nil Sampler dropped")
	}
}

// TestSamplerRate checks that 10% keeps about 10% of 100k keys. The
// standard deviation is about 0.1%, so 9-11% is ten deviations away.
func TestSamplerRate(t *testing.T) {
	const n = 100_000
	for _, spec := range []string{"10%", "10%:session"} {
		s, err := NewSampler(spec)
		if err != nil {
			t.Fatal(err)
		}
		kept := 0
		for i := range n {
			if s.Keep(fmt.Sprintf("user-%d", i)) {
				kept++
			}
		}
		if kept < n*9/100 || kept > n*11/100 {
			t.Errorf("%s kept %d of %d", spec, kept, n)
		}
	}
}

func TestSamplerSessionConsistent(t *testing.T) {
	a, _ := NewSampler("10%:session")
	b, _ := NewSampler("0.1:session")
	wider, _ := NewSampler("30%:session")
	kept := 0
	for i := range 100_000 {
		key := fmt.Sprintf("10.0.0.%d:%d->10.0.1.1:80", i%256, 1024+i)
		ka := a.Keep(key)
		if ka != b.Keep(key) || ka != a.Keep(key) {
			t.Fatalf("session %q kept by one sampler and not the other", key)
		}
		if ka && !wider.Keep(key) {
			t.Fatalf("session %q kept at 10%% but not at 30%%", key)
		}
		if ka {
			kept++
		}
	}
	if kept == 0 {
		t.Fatal("kept nothing")
	}
	// The hash is part of the output contract (which sessions every
	// recorder keeps): pin it.
	for key, want := range map[string]float64{
		"":                            0.93676944839044,
		"user-1":                      0.2563932327962135,
		"10.0.0.1:51234->10.0.0.2:80": 0.8404267893886463,
	} {
		if got := sessionPoint(key); got != want {
			t.Errorf("sessionPoint(%q) = %v, want %v", key, got, want)
		}
	}
}
