package replayer

import (
	"bytes"
	"context"
	"io"
	"net/url"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/tapline/tapline/schema"
)

func TestRewrite(t *testing.T) {
	rw, err := NewRewriter(Rules{
		Host:           "staging.internal",
		TagHeader:      "X-Shadow-Of",
		Paths:          []string{`^/api/v1/ => /api/v2/`, `/users/(\d+) => /people/$1`},
		SetHeaders:     []string{"Authorization: Bearer staging-token", "X-Env: staging"},
		DeleteHeaders:  []string{"cookie"},
		ReplaceHeaders: []string{"User-Agent: ^(.*)$ => $1 (replayed)"},
		SetQuery:       []string{"debug=1"},
		DeleteQuery:    []string{"session"},
	})
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse("http://staging:8080")
	ex := &schema.Exchange{Id: "e1", Request: &schema.Request{
		Method: "GET", Target: "/api/v1/users/42?session=abc&x=1", Host: "prod.example",
		Headers: []*schema.Header{{Name: "Cookie", Value: "sid=1"}, {Name: "User-Agent", Value: "app/1"}, {Name: "authorization", Value: "Bearer prod-secret"}},
	}}
	req, err := buildRequest(context.Background(), Target{Name: "t", URL: u}, ex, rw)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	req.Write(&b)
	wire := b.String()
	for _, want := range []string{"GET /api/v2/people/42?debug=1&x=1 HTTP/1.1\r\n", "Host: staging.internal\r\n", "Authorization: Bearer staging-token\r\n",
		"X-Env: staging\r\n", "User-Agent: app/1 (replayed)\r\n", "X-Shadow-Of: e1\r\n"} {
		if !strings.Contains(wire, want) {
			t.Errorf("missing %q in\n%s", want, wire)
		}
	}
	for _, unwanted := range []string{"sid=1", "prod-secret", "session=abc", HeaderReplay} {
		if strings.Contains(wire, unwanted) {
			t.Errorf("%q survived in\n%s", unwanted, wire)
		}
	}
	if ex.Request.Target != "/api/v1/users/42?session=abc&x=1" || ex.Request.Headers[0].Value != "sid=1" {
		t.Error("the recorded request was modified")
	}
}

func TestRewriteRulesRefused(t *testing.T) {
	cases := []struct {
		rules Rules
		want  string
	}{
		{Rules{Paths: []string{"no arrow"}}, `path rewrite "no arrow"`},
		{Rules{Paths: []string{"([ => x"}}, `path rewrite "([ => x"`},
		{Rules{SetHeaders: []string{"novalue"}}, `set header "novalue"`},
		{Rules{SetHeaders: []string{"Bad Name: v"}}, `set header "Bad Name: v"`},
		{Rules{DeleteHeaders: []string{""}}, "delete header"},
		{Rules{ReplaceHeaders: []string{"X-A: ( => y"}}, `replace header "X-A: ( => y"`},
		{Rules{SetQuery: []string{"=1"}}, `set query "=1"`},
		{Rules{DeleteQuery: []string{""}}, "delete query"},
		{Rules{TagHeader: "X Bad"}, `tag header "X Bad"`},
		{Rules{Host: "staging internal"}, `host "staging internal"`},
		{Rules{Host: "staging/x"}, `host "staging/x"`},
		{Rules{SetHeaders: []string{"X-A: a\nInjected: 1"}}, `set header "X-A: a\nInjected: 1": the value holds a control character`},
		{Rules{ReplaceHeaders: []string{"X-A: a => b\r\nc"}}, `the replacement holds a control character`},
	}
	for _, tc := range cases {
		if _, err := NewRewriter(tc.rules); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: got %v, want an error naming %s", tc.rules, err, tc.want)
		}
	}
}

// FuzzRules reads a rules file as `tapline replay --rules` does (YAML,
// unknown keys refused) and compiles it. Rules that compile must never
// panic and never yield a request the HTTP client would refuse to send: a
// bad rule is refused at start, not on every exchange.
func FuzzRules(f *testing.F) {
	for _, seed := range []string{
		"host: staging.internal\npaths:\n  - \"^/api/v1/ => /api/v2/\"\nset_headers:\n  - \"X-Env: staging\"\ndelete_headers:\n  - Cookie\n" +
			"replace_headers:\n  - \"User-Agent: ^(.*)$ => $1 (tapline replay)\"\nset_query:\n  - \"debug=1\"\ndelete_query:\n  - session\n",
		"tag_header: X-Shadow-Of\npaths: [\"/users/(\\\\d+) => /people/$1\"]\n",
		"set_headers: [\"X-A: a\\nb\"]\n",
		"host: \"a b\"\n",
		"replace_headers: [\"Cookie: sid=\\\\w+ => sid=x\"]\n",
		"paths: [\"(?i)^/A => /b\"]\nset_query: [\"q=a&b\"]\n",
		"unknown: 1\n",
	} {
		f.Add([]byte(seed), "/api/v1/users/42?session=abc&x=1")
	}
	u, _ := url.Parse("http://staging:8080/base")
	f.Fuzz(func(t *testing.T, file []byte, target string) {
		var rules Rules
		dec := yaml.NewDecoder(bytes.NewReader(file))
		dec.KnownFields(true)
		if err := dec.Decode(&rules); err != nil {
			return
		}
		rw, err := NewRewriter(rules)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("an empty error")
			}
			return
		}
		ex := &schema.Exchange{Id: "e1", Request: &schema.Request{Method: "GET", Target: target, Host: "prod.example",
			Headers: []*schema.Header{{Name: "Cookie", Value: "sid=1"}, {Name: "User-Agent", Value: "app/1"}, {Name: "X-Env", Value: "prod"}}}}
		req, err := buildRequest(context.Background(), Target{Name: "t", URL: u}, ex, rw)
		if err != nil {
			return // the recorded target, not the rules
		}
		for name, values := range req.Header {
			for _, v := range values {
				if !validHeaderName(name) || !validHeaderValue(v) {
					t.Fatalf("rules %q: header %q: %q would be refused", file, name, v)
				}
			}
		}
		// Request.Write refuses an invalid Host as the client does; header
		// values it would rewrite silently, the client then refuses.
		if err := req.Write(io.Discard); err != nil {
			t.Fatalf("rules %q: %v", file, err)
		}
	})
}
