package replayer

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
)

// Rules are the request rewrites, as given by flags or a YAML rules file.
// They are compiled once by NewRewriter; an invalid rule is refused before
// anything is sent, with an error naming it.
type Rules struct {
	// Host overrides the Host header sent (default: the recorded one).
	Host string `yaml:"host"`
	// TagHeader names the header set on every replayed request to the
	// exchange id, so staging logs can be matched to results. Default
	// HeaderReplay.
	TagHeader string `yaml:"tag_header"`
	// Paths rewrites the path: each "REGEXP => REPLACEMENT" (Go regexp
	// syntax, $1 for groups), applied in order.
	Paths []string `yaml:"paths"`
	// SetHeaders sets headers: each "Name: value" (replaces recorded ones).
	SetHeaders []string `yaml:"set_headers"`
	// DeleteHeaders removes headers by name.
	DeleteHeaders []string `yaml:"delete_headers"`
	// ReplaceHeaders rewrites header values: each "Name: REGEXP => REPLACEMENT".
	ReplaceHeaders []string `yaml:"replace_headers"`
	// SetQuery sets query parameters: each "name=value" (replaces all values).
	SetQuery []string `yaml:"set_query"`
	// DeleteQuery removes query parameters by name.
	DeleteQuery []string `yaml:"delete_query"`
}

// Rewriter applies compiled Rules to outgoing requests. Safe for
// concurrent use.
type Rewriter struct {
	host           string
	tagHeader      string
	paths          []regexRule
	setHeaders     [][2]string
	deleteHeaders  []string
	replaceHeaders []headerRule
	setQuery       [][2]string
	deleteQuery    []string
}

type regexRule struct {
	re   *regexp.Regexp
	repl string
}

type headerRule struct {
	name string
	regexRule
}

// NewRewriter compiles rules.
func NewRewriter(rules Rules) (*Rewriter, error) {
	if !validHost(rules.Host) {
		return nil, fmt.Errorf("host %q: not a host name (RFC 3986 allows letters, digits and -._~:[]!$&'()*+,;=%% only)", rules.Host)
	}
	rw := &Rewriter{host: rules.Host, tagHeader: HeaderReplay}
	if rules.TagHeader != "" {
		if !validHeaderName(rules.TagHeader) {
			return nil, fmt.Errorf("tag header %q: not a header name", rules.TagHeader)
		}
		rw.tagHeader = rules.TagHeader
	}
	for _, p := range rules.Paths {
		r, err := compileRegexRule(p)
		if err != nil {
			return nil, fmt.Errorf("path rewrite %q: %w", p, err)
		}
		rw.paths = append(rw.paths, r)
	}
	for _, h := range rules.SetHeaders {
		name, value, ok := strings.Cut(h, ":")
		if !ok || !validHeaderName(strings.TrimSpace(name)) {
			return nil, fmt.Errorf("set header %q: want \"Name: value\"", h)
		}
		if !validHeaderValue(value) {
			return nil, fmt.Errorf("set header %q: the value holds a control character (a line break?)", h)
		}
		rw.setHeaders = append(rw.setHeaders, [2]string{strings.TrimSpace(name), strings.TrimSpace(value)})
	}
	for _, name := range rules.DeleteHeaders {
		if !validHeaderName(name) {
			return nil, fmt.Errorf("delete header %q: not a header name", name)
		}
		rw.deleteHeaders = append(rw.deleteHeaders, name)
	}
	for _, h := range rules.ReplaceHeaders {
		name, rule, ok := strings.Cut(h, ":")
		if !ok || !validHeaderName(strings.TrimSpace(name)) {
			return nil, fmt.Errorf("replace header %q: want \"Name: REGEXP => REPLACEMENT\"", h)
		}
		r, err := compileRegexRule(rule)
		if err != nil {
			return nil, fmt.Errorf("replace header %q: %w", h, err)
		}
		if !validHeaderValue(r.repl) {
			return nil, fmt.Errorf("replace header %q: the replacement holds a control character (a line break?)", h)
		}
		rw.replaceHeaders = append(rw.replaceHeaders, headerRule{name: strings.TrimSpace(name), regexRule: r})
	}
	for _, q := range rules.SetQuery {
		name, value, ok := strings.Cut(q, "=")
		if !ok || name == "" {
			return nil, fmt.Errorf("set query %q: want name=value", q)
		}
		rw.setQuery = append(rw.setQuery, [2]string{name, value})
	}
	for _, name := range rules.DeleteQuery {
		if name == "" {
			return nil, fmt.Errorf("delete query: empty parameter name")
		}
		rw.deleteQuery = append(rw.deleteQuery, name)
	}
	return rw, nil
}

func compileRegexRule(s string) (regexRule, error) {
	pattern, repl, ok := strings.Cut(s, "=>")
	if !ok {
		return regexRule{}, fmt.Errorf("want \"REGEXP => REPLACEMENT\"")
	}
	re, err := regexp.Compile(strings.TrimSpace(pattern))
	if err != nil {
		return regexRule{}, err
	}
	return regexRule{re: re, repl: strings.TrimSpace(repl)}, nil
}

func validHeaderName(name string) bool {
	if name == "" {
		return false
	}
	for _, c := range name {
		if c <= ' ' || c >= 0x7f || strings.ContainsRune(`"(),/:;<=>?@[\]{}`, c) {
			return false
		}
	}
	return true
}

// validHeaderValue: what the HTTP client sends, no control characters
// but tab (a line break in a value would end the header).
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// validHost: the characters the HTTP client accepts in a Host header
// (empty means "keep the recorded one").
func validHost(h string) bool {
	for i := 0; i < len(h); i++ {
		c := h[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("-._~:[]!$&'()*+,;=%", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// tag is the name of the header that carries the exchange id.
func (rw *Rewriter) tag() string {
	if rw == nil {
		return HeaderReplay
	}
	return rw.tagHeader
}

// rewritePath applies the path rules to a recorded path.
func (rw *Rewriter) rewritePath(path string) string {
	if rw == nil {
		return path
	}
	for _, r := range rw.paths {
		path = r.re.ReplaceAllString(path, r.repl)
	}
	return path
}

// apply rewrites the outgoing request's host, headers and query.
func (rw *Rewriter) apply(req *http.Request) {
	if rw == nil {
		return
	}
	if rw.host != "" {
		req.Host = rw.host
	}
	for _, name := range rw.deleteHeaders {
		deleteHeader(req.Header, name)
	}
	for _, r := range rw.replaceHeaders {
		for key, values := range req.Header {
			if strings.EqualFold(key, r.name) {
				for i, v := range values {
					values[i] = r.re.ReplaceAllString(v, r.repl)
				}
			}
		}
	}
	for _, h := range rw.setHeaders {
		deleteHeader(req.Header, h[0])
		req.Header[h[0]] = []string{h[1]}
	}
	if len(rw.setQuery) > 0 || len(rw.deleteQuery) > 0 {
		q := req.URL.Query()
		for _, name := range rw.deleteQuery {
			q.Del(name)
		}
		for _, kv := range rw.setQuery {
			q.Set(kv[0], kv[1])
		}
		req.URL.RawQuery = q.Encode()
	}
}

// deleteHeader removes name in any case (recorded names keep their case,
// so the map may hold several spellings).
func deleteHeader(h http.Header, name string) {
	for key := range h {
		if strings.EqualFold(key, name) {
			delete(h, key)
		}
	}
}
