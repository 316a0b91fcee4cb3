package recorder

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/tapline/tapline/schema"
)

var testRedactKey = []byte("tapline-test-key-0123456789")

// pseudonymOf computes a pseudonym from the documented formula, independently
// of the code under test.
func pseudonymOf(key []byte, value string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(value))
	return "tap_" + base64.RawURLEncoding.EncodeToString(m.Sum(nil))[:16]
}

var placeholder = regexp.MustCompile(`\{\{(.*?)\}\}`)

// expand replaces every {{secret}} in s with the pseudonym of secret.
func expand(key []byte, s string) string {
	return placeholder.ReplaceAllStringFunc(s, func(m string) string {
		return pseudonymOf(key, m[2:len(m)-2])
	})
}

// headers builds headers from "Name: value" lines.
func headers(lines ...string) []*schema.Header {
	var hs []*schema.Header
	for _, l := range lines {
		name, value, _ := strings.Cut(l, ": ")
		hs = append(hs, &schema.Header{Name: name, Value: value})
	}
	return hs
}

// renderMessage renders a request or response for comparison: the start
// line (the request's Host field in brackets), headers, body size and
// truncation, and the body.
func renderMessage(req *schema.Request, resp *schema.Response) string {
	var b strings.Builder
	var hs []*schema.Header
	var body []byte
	var size int64
	var trunc bool
	if req != nil {
		fmt.Fprintf(&b, "%s %s [%s]\n", req.Method, req.Target, req.Host)
		hs, body, size, trunc = req.Headers, req.Body, req.BodySize, req.BodyTruncated
	} else {
		fmt.Fprintf(&b, "%d\n", resp.Status)
		hs, body, size, trunc = resp.Headers, resp.Body, resp.BodySize, resp.BodyTruncated
	}
	for _, h := range hs {
		fmt.Fprintf(&b, "%s: %s\n", h.Name, h.Value)
	}
	fmt.Fprintf(&b, "size=%d trunc=%v\n%s", size, trunc, body)
	return b.String()
}

// msg is a message in a test table: headers, body, and for a request the
// target (its Host field is the Host header).
type msg struct {
	target  string
	headers []string
	body    string
	trunc   bool
	size    int64 // default len(body)
}

func (m msg) request() *schema.Request {
	req := &schema.Request{Method: "POST", Target: m.target, Proto: "HTTP/1.1", Headers: headers(m.headers...),
		Body: []byte(m.body), BodyTruncated: m.trunc, BodySize: m.bodySize()}
	req.Host = redactHeaderValue(req.Headers, "Host")
	return req
}

func (m msg) response() *schema.Response {
	return &schema.Response{Status: 200, Proto: "HTTP/1.1", Headers: headers(m.headers...),
		Body: []byte(m.body), BodyTruncated: m.trunc, BodySize: m.bodySize()}
}

// expand replaces the {{secret}} placeholders in m.
func (m msg) expand(key []byte) msg {
	m.target, m.body = expand(key, m.target), expand(key, m.body)
	hs := make([]string, len(m.headers))
	for i, h := range m.headers {
		hs[i] = expand(key, h)
	}
	if m.headers != nil {
		m.headers = hs
	}
	return m
}

func (m msg) bodySize() int64 {
	if m.size != 0 {
		return m.size
	}
	return int64(len(m.body))
}

func TestRedactApply(t *testing.T) {
	jsonType := "Content-Type: application/json"
	cases := []struct {
		name          string
		cfg           RedactConfig
		req, resp     msg
		wantReq       msg // a zero wantReq means: unchanged
		wantResp      msg // a zero wantResp means: unchanged
		wantN         int
		wantSizeReq   int64 // BodySize after, when it is not len(want body)
		wantSizeResp  int64
		wantTruncResp bool
	}{
		// Headers.
		{
			name:     "header by name, any case, repeated, request and response",
			cfg:      RedactConfig{Headers: []string{"x-secret"}},
			req:      msg{target: "/", headers: []string{"X-Secret: s1", "x-SECRET: s2", "X-Other: keep"}},
			resp:     msg{headers: []string{"X-Secret: s3", "X-Secret: s1"}},
			wantReq:  msg{target: "/", headers: []string{"X-Secret: {{s1}}", "x-SECRET: {{s2}}", "X-Other: keep"}},
			wantResp: msg{headers: []string{"X-Secret: {{s3}}", "X-Secret: {{s1}}"}},
			wantN:    4,
		},
		{
			name: "authorization keeps the scheme",
			cfg:  RedactConfig{Preset: true},
			req: msg{target: "/", headers: []string{"Authorization: Bearer abc.def", "authorization: Basic dXNlcjpwYXNz",
				"Authorization: rawkey", "Proxy-Authorization: Digest username=\"u\", response=\"r\"", "X-Api-Key: k1"}},
			wantReq: msg{target: "/", headers: []string{"Authorization: Bearer {{abc.def}}", "authorization: Basic {{dXNlcjpwYXNz}}",
				"Authorization: {{rawkey}}", "Proxy-Authorization: Digest {{username=\"u\", response=\"r\"}}", "X-Api-Key: {{k1}}"}},
			wantN: 5,
		},
		{
			name:    "cookie values, not names",
			cfg:     RedactConfig{Preset: true},
			req:     msg{target: "/", headers: []string{"Cookie: a=1; sid=xyz", "Cookie: q=\"v w\";e=;  flag ;x=y=z"}},
			wantReq: msg{target: "/", headers: []string{"Cookie: a={{1}}; sid={{xyz}}", "Cookie: q=\"{{v w}}\";e=;  {{flag}} ;x={{y=z}}"}},
			wantN:   5,
		},
		{
			name:     "set-cookie keeps name and attributes",
			cfg:      RedactConfig{Preset: true},
			resp:     msg{headers: []string{"Set-Cookie: sid=xyz; Path=/; HttpOnly", "Set-Cookie: bare; Secure", "Set-Cookie: e=; Path=/"}},
			wantResp: msg{headers: []string{"Set-Cookie: sid={{xyz}}; Path=/; HttpOnly", "Set-Cookie: {{bare}}; Secure", "Set-Cookie: e=; Path=/"}},
			wantN:    2,
		},
		{
			name:  "cookies untouched without the preset",
			cfg:   RedactConfig{Headers: []string{"X-Token"}},
			req:   msg{target: "/", headers: []string{"Cookie: sid=xyz", "Authorization: Bearer t"}},
			wantN: 0,
		},
		{
			name:    "user rule for cookie gets the cookie treatment",
			cfg:     RedactConfig{Headers: []string{"COOKIE"}},
			req:     msg{target: "/", headers: []string{"Cookie: sid=xyz"}},
			wantReq: msg{target: "/", headers: []string{"Cookie: sid={{xyz}}"}},
			wantN:   1,
		},
		{
			name:    "host rule also redacts Request.Host",
			cfg:     RedactConfig{Headers: []string{"Host"}},
			req:     msg{target: "/", headers: []string{"Host: internal.example"}},
			wantReq: msg{target: "/", headers: []string{"Host: {{internal.example}}"}},
			wantN:   2,
		},
		// Query parameters.
		{
			name:    "repeated params, no value, empty value",
			cfg:     RedactConfig{QueryParams: []string{"token"}},
			req:     msg{target: "/p?token=a&x=1&token=b&token&token=&y=2&xtoken=c"},
			wantReq: msg{target: "/p?token={{a}}&x=1&token={{b}}&token&token=&y=2&xtoken=c"},
			wantN:   2,
		},
		{
			name:    "percent-encoding and case: names decoded, values hashed decoded, the rest byte for byte",
			cfg:     RedactConfig{QueryParams: []string{"token", "api key"}},
			req:     msg{target: "/a%2Fb?keep=%2F+x&to%6Ben=a%2Fb&TOKEN=Z&api+key=k%20k&bad=%zz&token=%zz&end"},
			wantReq: msg{target: "/a%2Fb?keep=%2F+x&to%6Ben={{a/b}}&TOKEN={{Z}}&api+key={{k k}}&bad=%zz&token={{%zz}}&end"},
			wantN:   4,
		},
		{
			name:    "only the first ? starts the query; ; and # are part of values",
			cfg:     RedactConfig{QueryParams: []string{"token"}},
			req:     msg{target: "/p?a=1;token=x&token=s;t#f?token=u"},
			wantReq: msg{target: "/p?a=1;token=x&token={{s;t#f?token=u}}"},
			wantN:   1,
		},
		{
			name:     "absolute target and URL-valued headers",
			cfg:      RedactConfig{QueryParams: []string{"code"}},
			req:      msg{target: "http://h.example/cb?code=c1&state=s", headers: []string{"Referer: https://idp/x?code=c2"}},
			resp:     msg{headers: []string{"Location: /next?code=c3", "Content-Location: /c?x=1"}},
			wantReq:  msg{target: "http://h.example/cb?code={{c1}}&state=s", headers: []string{"Referer: https://idp/x?code={{c2}}"}},
			wantResp: msg{headers: []string{"Location: /next?code={{c3}}", "Content-Location: /c?x=1"}},
			wantN:    3,
		},
		{
			name: "form body, Content-Length follows",
			cfg:  RedactConfig{QueryParams: []string{"password"}},
			req: msg{target: "/login", headers: []string{"Content-Type: application/x-www-form-urlencoded", "Content-Length: 25"},
				body: "user=bob&password=hunter2"},
			wantReq: msg{target: "/login", headers: []string{"Content-Type: application/x-www-form-urlencoded", "Content-Length: 38"},
				body: "user=bob&password={{hunter2}}"},
			wantN: 1,
		},
		// JSON bodies.
		{
			name: "fields keep formatting and order; sizes follow",
			cfg:  RedactConfig{JSONFields: []string{"password", "user.token"}},
			req: msg{target: "/", headers: []string{jsonType, "Content-Length: 70"},
				body: "{\n  \"password\": \"hunter2\",\n  \"user\": {\"name\": \"bob\", \"token\": 12345}\n}"},
			wantReq: msg{target: "/", headers: []string{jsonType, "Content-Length: 100"},
				body: "{\n  \"password\": \"{{hunter2}}\",\n  \"user\": {\"name\": \"bob\", \"token\": \"{{12345}}\"}\n}"},
			wantN: 2,
		},
		{
			name:     "items[*].card and *.secret in a response",
			cfg:      RedactConfig{JSONFields: []string{"items[*].card", "*.secret"}},
			resp:     msg{headers: []string{jsonType}, body: `{"items":[{"card":"4111"},{"x":1,"card":5500}],"card":"top","a":{"secret":"s1"},"b":{"c":{"secret":"deep"},"secret":"s2"},"secret":"root"}`},
			wantResp: msg{headers: []string{jsonType}, body: `{"items":[{"card":"{{4111}}"},{"x":1,"card":"{{5500}}"}],"card":"top","a":{"secret":"{{s1}}"},"b":{"c":{"secret":"deep"},"secret":"{{s2}}"},"secret":"root"}`},
			wantN:    4,
		},
		{
			name:    "a path to an object or array redacts the strings and numbers inside",
			cfg:     RedactConfig{JSONFields: []string{"user.token"}},
			req:     msg{target: "/", body: `{"user":{"token":{"a":"x","b":[1.5e3,true,null,"y",{"c":-0}]}},"other":"o"}`},
			wantReq: msg{target: "/", body: `{"user":{"token":{"a":"{{x}}","b":["{{1.5e3}}",true,null,"{{y}}",{"c":"{{-0}}"}]}},"other":"o"}`},
			wantN:   4,
		},
		{
			name:    "arrays are transparent, nested arrays, [*] on the top level",
			cfg:     RedactConfig{JSONFields: []string{"password", "items.card", "[*].id"}},
			req:     msg{target: "/", body: `[{"password":"a","id":7},[{"password":"b"}],{"items":[[{"card":"1"}],{"card":"2"}]}]`},
			wantReq: msg{target: "/", body: `[{"password":"{{a}}","id":"{{7}}"},[{"password":"{{b}}"}],{"items":[[{"card":"{{1}}"}],{"card":"{{2}}"}]}]`},
			wantN:   5,
		},
		{
			name:    "keys any case or escaped, duplicates, escaped values decoded",
			cfg:     RedactConfig{JSONFields: []string{"password"}},
			req:     msg{target: "/", body: `{"PassWord":"a","pass\u0077ord":"\u0061b","password":"a","password":true,"password":null,"ok":"a"}`},
			wantReq: msg{target: "/", body: `{"PassWord":"{{a}}","pass\u0077ord":"{{ab}}","password":"{{a}}","password":true,"password":null,"ok":"a"}`},
			wantN:   3,
		},
		{
			name:    "NDJSON is redacted value by value",
			cfg:     RedactConfig{JSONFields: []string{"password"}},
			req:     msg{target: "/", headers: []string{"Content-Type: application/x-ndjson"}, body: "{\"password\":\"a\"}\n{\"password\":\"b\"}\n"},
			wantReq: msg{target: "/", headers: []string{"Content-Type: application/x-ndjson"}, body: "{\"password\":\"{{a}}\"}\n{\"password\":\"{{b}}\"}\n"},
			wantN:   2,
		},
		{
			name:    "JSON found by its first byte, without a JSON type",
			cfg:     RedactConfig{JSONFields: []string{"password"}},
			req:     msg{target: "/", headers: []string{"Content-Type: text/plain"}, body: " \n{\"password\":\"a\"}"},
			wantReq: msg{target: "/", headers: []string{"Content-Type: text/plain"}, body: " \n{\"password\":\"{{a}}\"}"},
			wantN:   1,
		},
		{
			name:  "a body that is not JSON is left alone",
			cfg:   RedactConfig{JSONFields: []string{"password"}},
			req:   msg{target: "/", headers: []string{"Content-Type: text/plain"}, body: `password="a"`},
			wantN: 0,
		},
		{
			name:  "invalid JSON that only looked like JSON is left alone",
			cfg:   RedactConfig{JSONFields: []string{"password"}},
			req:   msg{target: "/", body: `{password: "a"}`},
			wantN: 0,
		},
		{
			name:        "invalid JSON with a JSON type is dropped",
			cfg:         RedactConfig{JSONFields: []string{"password"}},
			req:         msg{target: "/", headers: []string{jsonType, "Content-Length: 17"}, body: `{"password":"a",}`},
			wantReq:     msg{target: "/", headers: []string{jsonType, "Content-Length: 17"}, trunc: true},
			wantSizeReq: 17,
			wantN:       1,
		},
		{
			name:          "encoded JSON body is dropped, encoded other types kept",
			cfg:           RedactConfig{JSONFields: []string{"password"}},
			req:           msg{target: "/", headers: []string{"Content-Type: text/html", "Content-Encoding: gzip"}, body: "\x1f\x8b..."},
			resp:          msg{headers: []string{jsonType, "Content-Encoding: gzip"}, body: "\x1f\x8b...."},
			wantResp:      msg{headers: []string{jsonType, "Content-Encoding: gzip"}, trunc: true},
			wantSizeResp:  6,
			wantTruncResp: true,
			wantN:         1,
		},
		{
			name:    "encoded body without a type is dropped; identity is no encoding",
			cfg:     RedactConfig{JSONFields: []string{"password"}},
			req:     msg{target: "/", headers: []string{"Transfer-Encoding: gzip, chunked"}, body: "\x1f\x8b.."},
			wantReq: msg{target: "/", headers: []string{"Transfer-Encoding: gzip, chunked"}, trunc: true},
			resp:    msg{headers: []string{jsonType, "Content-Encoding: identity", "Transfer-Encoding: chunked"}, body: `{"password":"a"}`},
			wantResp: msg{headers: []string{jsonType, "Content-Encoding: identity", "Transfer-Encoding: chunked"},
				body: `{"password":"{{a}}"}`},
			wantSizeReq: 4,
			wantN:       2,
		},
		{
			name: "truncated JSON is redacted as far as it goes; a cut secret is left out",
			cfg:  RedactConfig{JSONFields: []string{"password", "pin"}},
			req: msg{target: "/", headers: []string{jsonType, "Content-Length: 100"},
				body: `{"a":"keep","password":"x","pin":12`, trunc: true, size: 100},
			wantReq: msg{target: "/", headers: []string{jsonType, "Content-Length: 100"},
				body: `{"a":"keep","password":"{{x}}","pin":`, trunc: true, size: 100},
			resp:          msg{headers: []string{jsonType}, body: `{"a":"ke`, trunc: true, size: 50},
			wantSizeReq:   100,
			wantSizeResp:  50,
			wantTruncResp: true,
			wantN:         1,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.cfg.Key == nil {
				c.cfg.Key = testRedactKey
			}
			r, err := NewRedactor(c.cfg)
			if err != nil {
				t.Fatal(err)
			}
			ex := &schema.Exchange{Request: c.req.request()}
			if c.resp.headers != nil || c.resp.body != "" {
				ex.Original = &schema.Exchange_Response{Response: c.resp.response()}
			}
			n := r.Apply(ex)

			want := c.wantReq
			if want.target == "" && want.headers == nil && want.body == "" && !want.trunc {
				want = c.req
			}
			wantReq := want.expand(c.cfg.Key).request()
			if c.wantSizeReq != 0 {
				wantReq.BodySize = c.wantSizeReq
			}
			if got, want := renderMessage(ex.Request, nil), renderMessage(wantReq, nil); got != want {
				t.Errorf("request:\n got %s\nwant %s", got, want)
			}
			if resp := ex.GetResponse(); resp != nil {
				want := c.wantResp
				if want.headers == nil && want.body == "" && !want.trunc {
					want = c.resp
				}
				wantResp := want.expand(c.cfg.Key).response()
				if c.wantSizeResp != 0 {
					wantResp.BodySize = c.wantSizeResp
				}
				if c.wantTruncResp {
					wantResp.BodyTruncated = true
				}
				if got, want := renderMessage(nil, resp), renderMessage(nil, wantResp); got != want {
					t.Errorf("response:\n got %s\nwant %s", got, want)
				}
			}
			if n != c.wantN {
				t.Errorf("Apply = %d, want %d", n, c.wantN)
			}
		})
	}
}

func TestRedactConsistent(t *testing.T) {
	cfg := RedactConfig{Key: testRedactKey, Preset: true, QueryParams: []string{"token"}, JSONFields: []string{"token"}}
	exchange := func() *schema.Exchange {
		return &schema.Exchange{Request: &schema.Request{
			Method: "POST", Target: "/?token=s3cret",
			Headers: headers("Authorization: Bearer s3cret", "Content-Type: application/json"),
			Body:    []byte(`{"token":"s3cret"}`),
		}}
	}
	tokens := func(cfg RedactConfig) []string {
		r, err := NewRedactor(cfg)
		if err != nil {
			t.Fatal(err)
		}
		ex := exchange()
		if n := r.Apply(ex); n != 3 {
			t.Fatalf("Apply = %d, want 3", n)
		}
		var v struct{ Token string }
		if err := json.Unmarshal(ex.Request.Body, &v); err != nil {
			t.Fatal(err)
		}
		return []string{
			strings.TrimPrefix(ex.Request.Target, "/?token="),
			strings.TrimPrefix(ex.Request.Headers[0].Value, "Bearer "),
			v.Token,
		}
	}
	a, b := tokens(cfg), tokens(cfg)
	if a[0] != pseudonymOf(testRedactKey, "s3cret") {
		t.Errorf("pseudonym %s, want %s", a[0], pseudonymOf(testRedactKey, "s3cret"))
	}
	for i := range a {
		if a[i] != a[0] || b[i] != a[0] {
			t.Errorf("the same secret got different pseudonyms: %v and %v", a, b)
		}
	}
	other := cfg
	other.Key = []byte("another-key-of-enough-bytes")
	if c := tokens(other); c[0] == a[0] {
		t.Errorf("a different key gave the same pseudonym %s", c[0])
	}
}

// TestRedactConcurrent runs Apply from several goroutines (run it with
// -race): the pools must not share state between calls.
func TestRedactConcurrent(t *testing.T) {
	r, err := NewRedactor(RedactConfig{Key: testRedactKey, Preset: true, QueryParams: []string{"token"}, JSONFields: []string{"*.secret"}})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 200 {
				secret := fmt.Sprintf("s-%d-%d", g, i)
				ex := &schema.Exchange{Request: &schema.Request{
					Target:  "/?token=" + secret,
					Headers: headers("Cookie: sid="+secret, "Content-Type: application/json"),
					Body:    []byte(`{"a":{"secret":"` + secret + `"}}`),
				}}
				if n := r.Apply(ex); n != 3 {
					t.Errorf("Apply = %d, want 3", n)
					return
				}
				want := pseudonymOf(testRedactKey, secret)
				if ex.Request.Target != "/?token="+want || ex.Request.Headers[0].Value != "sid="+want ||
					string(ex.Request.Body) != `{"a":{"secret":"`+want+`"}}` {
					t.Errorf("wrong pseudonyms for %s: %s %s %s", secret, ex.Request.Target, ex.Request.Headers[0].Value, ex.Request.Body)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestRedactConfigErrors(t *testing.T) {
	cases := []struct {
		name string
		cfg  RedactConfig
		want string // in the error; "" means no error
	}{
		{"no rules need no key", RedactConfig{}, ""},
		{"missing key", RedactConfig{Preset: true}, "TAPLINE_RECORD_REDACT_KEY"},
		{"short key", RedactConfig{Key: []byte("short"), JSONFields: []string{"a"}}, "is 5 bytes, it needs at least 16"},
		{"bad header name", RedactConfig{Key: testRedactKey, Headers: []string{"X-Ok", "X Bad"}}, `header 2 ("X Bad")`},
		{"empty header name", RedactConfig{Key: testRedactKey, Headers: []string{""}}, `header 1 ("")`},
		{"empty query param", RedactConfig{Key: testRedactKey, QueryParams: []string{"a", ""}}, "query param 2: empty name"},
		{"empty JSON path", RedactConfig{Key: testRedactKey, JSONFields: []string{""}}, `JSON field "": empty path`},
		{"empty JSON step", RedactConfig{Key: testRedactKey, JSONFields: []string{"a..b"}}, `"a..b": step 2 is empty`},
		{"array index", RedactConfig{Key: testRedactKey, JSONFields: []string{"items[0].card"}}, "array indexes are not supported"},
		{"open bracket", RedactConfig{Key: testRedactKey, JSONFields: []string{"items[*"}}, "only [*]"},
		{"partial wildcard", RedactConfig{Key: testRedactKey, JSONFields: []string{"pass*"}}, "whole key"},
		{"element after a dot", RedactConfig{Key: testRedactKey, JSONFields: []string{"a.[*]"}}, "step 2 is empty"},
		{"stray bracket", RedactConfig{Key: testRedactKey, JSONFields: []string{"a]"}}, "] without ["},
		{"valid paths", RedactConfig{Key: testRedactKey, JSONFields: []string{"[*]", "[*][*].a", "*", "a.*.b[*][*]", "user.token", "user"}}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := NewRedactor(c.cfg)
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case c.want != "" && err == nil:
				t.Fatalf("no error, want one with %q", c.want)
			case c.want != "" && !strings.Contains(err.Error(), c.want):
				t.Fatalf("error %q does not contain %q", err, c.want)
			}
		})
	}
}

func TestRedactNothing(t *testing.T) {
	ex := &schema.Exchange{Request: &schema.Request{Target: "/?token=x", Headers: headers("Authorization: Bearer x")}}
	var nilRedactor *Redactor
	if n := nilRedactor.Apply(ex); n != 0 {
		t.Errorf("nil Redactor: Apply = %d", n)
	}
	r, err := NewRedactor(RedactConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if n := r.Apply(ex); n != 0 || ex.Request.Target != "/?token=x" {
		t.Errorf("empty config: Apply = %d, target %q", n, ex.Request.Target)
	}
	if n := r.Apply(nil); n != 0 {
		t.Errorf("nil exchange: Apply = %d", n)
	}
}

// The rules the fuzz test redacts with.
var fuzzJSONFields = []string{"password", "user.token", "items[*].card", "*.secret", "a[*][*].b", "list"}

func FuzzRedactJSON(f *testing.F) {
	for _, seed := range []string{
		`{"password":"hunter2","user":{"token":"t","name":"n"},"items":[{"card":"4111"}]}`,
		`{"x":{"secret":1.5e-3},"a":[[{"b":"c"}],[{"b":[1,2]}]],"list":{"k":["v",true,null]}}`,
		`[{"PASSWORD":"\u0068unter\"2\""},{"pass\u0077ord":"\ud800"}]`,
		"{\"password\":\"a\"}\n{\"password\":\"b\"}\n",
		"\xef\xbb\xbf {\"password\" : -0.0E+1 }",
		`{"password":"x","password":{"y":["z"]}}`,
		`"just a string"`,
		`{"password":"x",}`,
		`{"user":{"token":"abc`,
		`[[[[[[[]]]]]]]`,
	} {
		f.Add([]byte(seed))
	}
	r, err := NewRedactor(RedactConfig{Key: testRedactKey, JSONFields: fuzzJSONFields})
	if err != nil {
		f.Fatal(err)
	}
	var rules [][]string
	for _, p := range fuzzJSONFields {
		rules = append(rules, oracleRule(p))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		out, n, err := r.redactJSON(in, false)
		if out == nil && err == nil {
			out = in
		}
		valid := json.Valid(in)
		switch {
		case valid && err != nil:
			t.Fatalf("valid JSON refused: %v", err)
		case !valid && err == nil:
			// Accepted only as a stream of separated values (RFC 7464
			// ones too), or after a byte order mark.
			if _, err := oracleParse(oracleNormalize(in)); err != nil {
				t.Fatalf("invalid JSON accepted: %v", err)
			}
		}
		if err != nil {
			return
		}
		if valid && !json.Valid(out) {
			t.Fatalf("output is not valid JSON: %q", out)
		}
		ins, err := oracleParse(oracleNormalize(in))
		if err != nil {
			t.Fatal(err)
		}
		outs, err := oracleParse(oracleNormalize(out))
		if err != nil {
			t.Fatalf("output does not parse: %v\n%q", err, out)
		}
		if len(ins) != len(outs) {
			t.Fatalf("%d values in, %d out", len(ins), len(outs))
		}
		replaced := 0
		for i := range ins {
			replaced += oracleCompare(t, rules, ins[i], outs[i], nil)
		}
		if replaced != n {
			t.Fatalf("reported %d replacements, the oracle counted %d", n, replaced)
		}

		// A truncated body, at any cut, redacts to a prefix of the full
		// body's redaction: nothing the full redaction hides survives.
		if !valid || len(in) == 0 {
			return
		}
		cut := int(in[0]) * len(in) / 256
		tout, _, err := r.redactJSON(in[:cut], true)
		if err != nil {
			t.Fatalf("a prefix of valid JSON refused (cut %d): %v", cut, err)
		}
		if tout == nil {
			tout = in[:cut]
		}
		if !bytes.HasPrefix(out, tout) {
			t.Fatalf("cut at %d: %q is not a prefix of %q", cut, tout, out)
		}

		// And through Apply.
		ex := &schema.Exchange{Request: &schema.Request{Headers: headers("Content-Type: application/json"), Body: in, BodySize: int64(len(in))}}
		r.Apply(ex)
		if !bytes.Equal(ex.Request.Body, out) || ex.Request.BodySize != int64(len(out)) {
			t.Fatalf("Apply gave %q (size %d), want %q", ex.Request.Body, ex.Request.BodySize, out)
		}
	})
}

// oracleRule splits a path into steps: keys (lower case), "*" and "[*]".
func oracleRule(path string) []string {
	var steps []string
	for _, part := range strings.Split(path, ".") {
		name, elems, _ := strings.Cut(part, "[")
		if name != "" {
			steps = append(steps, strings.ToLower(name))
		}
		for range strings.Count("["+elems, "[*]") {
			steps = append(steps, "[*]")
		}
	}
	return steps
}

// oracleMatches reports whether a rule matches a prefix of path, where a
// path step is a key or "[" for an array element. Arrays are transparent:
// an element either takes a "[*]" step or no step.
func oracleMatches(rule []string, path []string) bool {
	at := make([]bool, len(rule)+1)
	next := make([]bool, len(rule)+1)
	at[0] = true
	for _, p := range path {
		if at[len(rule)] {
			return true
		}
		clear(next)
		for i, ok := range at[:len(rule)] {
			switch {
			case !ok:
			case p == "[":
				next[i] = true
				if rule[i] == "[*]" {
					next[i+1] = true
				}
			case rule[i] == "*" || rule[i] != "[*]" && rule[i] == strings.ToLower(p[1:]):
				next[i+1] = true
			}
		}
		at, next = next, at
	}
	return at[len(rule)]
}

// jnode is a parsed JSON value that keeps duplicate keys and key order.
type jnode struct {
	kind byte   // '{', '[', 's' (string), 'n' (number), 'l' (true, false, null)
	text string // the string, the number's literal, the literal
	keys []string
	vals []*jnode
}

// oracleNormalize makes what redactJSON accepts beyond json.Valid readable
// by encoding/json: it drops a byte order mark and turns RS (which can only
// be a separator, as strings cannot hold control characters) into spaces.
func oracleNormalize(b []byte) []byte {
	return bytes.ReplaceAll(trimBOM(b), []byte{0x1e}, []byte{' '})
}

// oracleParse parses a stream of JSON values with encoding/json.
func oracleParse(b []byte) ([]*jnode, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var vals []*jnode
	for {
		v, err := oracleValue(d)
		if errors.Is(err, io.EOF) {
			return vals, nil
		}
		if err != nil {
			return nil, err
		}
		vals = append(vals, v)
	}
}

func oracleValue(d *json.Decoder) (*jnode, error) {
	tok, err := d.Token()
	if err != nil {
		return nil, err
	}
	switch tok := tok.(type) {
	case json.Delim:
		n := &jnode{kind: byte(tok)}
		for d.More() {
			if tok == '{' {
				k, err := d.Token()
				if err != nil {
					return nil, err
				}
				n.keys = append(n.keys, k.(string))
			}
			v, err := oracleValue(d)
			if err != nil {
				return nil, err
			}
			n.vals = append(n.vals, v)
		}
		if _, err := d.Token(); err != nil {
			return nil, err
		}
		return n, nil
	case string:
		return &jnode{kind: 's', text: tok}, nil
	case json.Number:
		return &jnode{kind: 'n', text: string(tok)}, nil
	default:
		return &jnode{kind: 'l', text: fmt.Sprint(tok)}, nil
	}
}

// oracleCompare checks out against in: the same document, except that
// every string and number whose path some rule matches is the pseudonym of
// its value. It returns how many values were replaced.
func oracleCompare(t *testing.T, rules [][]string, in, out *jnode, path []string) int {
	t.Helper()
	if in.kind == 's' || in.kind == 'n' {
		for _, rule := range rules {
			if oracleMatches(rule, path) {
				if want := pseudonymOf(testRedactKey, in.text); out.kind != 's' || out.text != want {
					t.Fatalf("at %v: %c %q, want the pseudonym of %q", path, out.kind, out.text, in.text)
				}
				return 1
			}
		}
	}
	if in.kind != out.kind || in.text != out.text || len(in.vals) != len(out.vals) {
		t.Fatalf("at %v: %c %q (%d values), want %c %q (%d values)", path, out.kind, out.text, len(out.vals), in.kind, in.text, len(in.vals))
	}
	n := 0
	for i := range in.vals {
		step := "["
		if in.kind == '{' {
			if in.keys[i] != out.keys[i] {
				t.Fatalf("at %v: key %q, want %q", path, out.keys[i], in.keys[i])
			}
			step = "." + in.keys[i]
		}
		n += oracleCompare(t, rules, in.vals[i], out.vals[i], append(path, step))
	}
	return n
}

// benchBody is a realistic 1 KiB JSON request body.
var benchBody = []byte(`{
  "order_id": "ord_8f14e45fceea167a5a36dedd4bea2543",
  "created_at": "2024-05-17T09:31:27.118Z",
  "customer": {
    "id": 482913,
    "email": "jane.doe@example.com",
    "name": "Jane Doe",
    "password": "correct horse battery staple",
    "token": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI0ODI5MTMifQ.7h2n0cQy",
    "address": {"street": "1 Main St", "city": "Springfield", "zip": "12345", "country": "US"}
  },
  "items": [
    {"sku": "SKU-1001", "name": "Widget", "qty": 2, "price": 19.99, "card": "4111111111111111"},
    {"sku": "SKU-2002", "name": "Gadget", "qty": 1, "price": 149.5, "card": "5500005555555559"},
    {"sku": "SKU-3003", "name": "Gizmo", "qty": 5, "price": 3.25, "card": null}
  ],
  "payment": {"method": "card", "secret": "pi_3NqLz2CZ6qsJgndJ0a1b2c3d_secret_xyz", "amount": 205.24, "currency": "USD"},
  "shipping": {"method": "express", "eta_days": 2, "tracking": null, "gift": false},
  "metadata": {"source": "web", "campaign": "spring-sale", "ab_bucket": 17, "session": {"secret": "s_9c1f", "id": 7}},
  "notes": "Leave the package at the back door, please. Ring twice if nobody answers."
}`)

func BenchmarkRedact(b *testing.B) {
	r, err := NewRedactor(RedactConfig{
		Key: testRedactKey, Preset: true, QueryParams: []string{"token"},
		JSONFields: []string{"customer.password", "customer.token", "items[*].card", "*.secret"},
	})
	if err != nil {
		b.Fatal(err)
	}
	hs := headers("Host: api.example.com", "User-Agent: bench/1.0", "Accept: application/json",
		"Content-Type: application/json", fmt.Sprintf("Content-Length: %d", len(benchBody)),
		"Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.abc", "Cookie: _ga=GA1.2.3; sid=9c1f2e")
	values := make([]string, len(hs))
	for i, h := range hs {
		values[i] = h.Value
	}
	req := &schema.Request{Method: "POST", Target: "/v1/orders?token=abc123&page=2", Host: "api.example.com", Headers: hs}
	ex := &schema.Exchange{Request: req}
	b.SetBytes(int64(len(benchBody)))
	b.ReportAllocs()
	for b.Loop() {
		req.Target, req.Body, req.BodySize = "/v1/orders?token=abc123&page=2", benchBody, int64(len(benchBody))
		for i, h := range hs {
			h.Value = values[i]
		}
		if n := r.Apply(ex); n != 9 {
			b.Fatalf("Apply = %d, want 9", n)
		}
	}
}

// TestRedactJSONDepth checks the nesting limit, the same as encoding/json's.
func TestRedactJSONDepth(t *testing.T) {
	r, err := NewRedactor(RedactConfig{Key: testRedactKey, JSONFields: []string{"password"}})
	if err != nil {
		t.Fatal(err)
	}
	nested := func(depth int) []byte {
		return []byte(strings.Repeat("[", depth-1) + `{"password":"x"}` + strings.Repeat("]", depth-1))
	}
	out, n, err := r.redactJSON(nested(maxJSONDepth), false)
	if err != nil || n != 1 || !bytes.Contains(out, []byte(pseudonymOf(testRedactKey, "x"))) {
		t.Errorf("depth %d: %d replaced, err %v", maxJSONDepth, n, err)
	}
	if json.Valid(nested(maxJSONDepth + 1)) {
		t.Fatal("encoding/json's limit changed")
	}
	if _, _, err := r.redactJSON(nested(maxJSONDepth+1), false); err == nil {
		t.Errorf("depth %d accepted", maxJSONDepth+1)
	}
}
