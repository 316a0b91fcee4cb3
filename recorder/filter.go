package recorder

import (
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"regexp"
	"strconv"
	"strings"

	"github.com/tapline/tapline/schema"
)

// FilterConfig says which requests are recorded. The zero value keeps
// everything.
//
// A request is dropped when it matches any deny list. Otherwise it is kept
// when, for each allow list that is not empty, it matches that list: allow
// lists of different kinds must all match, an empty one allows all.
type FilterConfig struct {
	// AllowMethods and DenyMethods are request methods, compared
	// case-insensitively ("get" is GET). Default: none.
	AllowMethods, DenyMethods []string
	// AllowHosts and DenyHosts are host names or IP addresses, compared
	// exactly (no wildcards) and case-insensitively with the request's
	// Host, ignoring its port and a trailing dot. Write them without a
	// port. Default: none.
	AllowHosts, DenyHosts []string
	// AllowPaths and DenyPaths are regular expressions (Go syntax, RE2)
	// matched against the path of Request.Target as sent, still
	// percent-encoded and without the query: "/api/v1/users" for
	// "/api/v1/users?id=3" and for "http://h/api/v1/users?id=3". They are
	// not anchored: write "^/health$" to match one path exactly.
	// Default: none.
	AllowPaths, DenyPaths []string
}

// Filter decides which requests are recorded, following a FilterConfig
// compiled once by NewFilter. It is safe for concurrent use; a nil *Filter
// keeps everything.
type Filter struct {
	allowMethods, denyMethods map[string]bool // upper case
	allowHosts, denyHosts     map[string]bool // lower case, no trailing dot
	allowPaths, denyPaths     []*regexp.Regexp
}

// NewFilter validates and compiles cfg. It refuses a method that is not a
// token, a host with a port, and a path that is not a valid regexp, naming
// the rule.
func NewFilter(cfg FilterConfig) (*Filter, error) {
	f := &Filter{}
	var err error
	if f.allowMethods, err = filterMethods("allow", cfg.AllowMethods); err != nil {
		return nil, err
	}
	if f.denyMethods, err = filterMethods("deny", cfg.DenyMethods); err != nil {
		return nil, err
	}
	if f.allowHosts, err = filterHosts("allow", cfg.AllowHosts); err != nil {
		return nil, err
	}
	if f.denyHosts, err = filterHosts("deny", cfg.DenyHosts); err != nil {
		return nil, err
	}
	if f.allowPaths, err = filterPaths("allow", cfg.AllowPaths); err != nil {
		return nil, err
	}
	if f.denyPaths, err = filterPaths("deny", cfg.DenyPaths); err != nil {
		return nil, err
	}
	return f, nil
}

func filterMethods(list string, methods []string) (map[string]bool, error) {
	if len(methods) == 0 {
		return nil, nil
	}
	set := make(map[string]bool, len(methods))
	for _, m := range methods {
		if !isToken(m) {
			return nil, fmt.Errorf("recorder: filter: %s method %q: not a valid method name", list, m)
		}
		set[strings.ToUpper(m)] = true
	}
	return set, nil
}

func filterHosts(list string, hosts []string) (map[string]bool, error) {
	if len(hosts) == 0 {
		return nil, nil
	}
	set := make(map[string]bool, len(hosts))
	for _, h := range hosts {
		name := h
		if strings.HasPrefix(name, "[") && strings.HasSuffix(name, "]") {
			name = name[1 : len(name)-1] // [::1]
		} else if strings.Count(name, ":") == 1 {
			return nil, fmt.Errorf("recorder: filter: %s host %q: ports are ignored, give the host alone", list, h)
		}
		name = strings.TrimSuffix(strings.ToLower(name), ".")
		if name == "" || strings.ContainsAny(name, " \t/?#@[]") {
			return nil, fmt.Errorf("recorder: filter: %s host %q: not a host name or IP address", list, h)
		}
		set[name] = true
	}
	return set, nil
}

func filterPaths(list string, exprs []string) ([]*regexp.Regexp, error) {
	var res []*regexp.Regexp
	for _, e := range exprs {
		re, err := regexp.Compile(e)
		if err != nil {
			return nil, fmt.Errorf("recorder: filter: %s path %q: %w", list, e, err)
		}
		res = append(res, re)
	}
	return res, nil
}

// Keep reports whether req is recorded: it matches no deny list, and every
// allow list that is not empty.
func (f *Filter) Keep(req *schema.Request) bool {
	if f == nil {
		return true
	}
	if f.allowMethods != nil || f.denyMethods != nil {
		m := strings.ToUpper(req.GetMethod())
		if f.denyMethods[m] || f.allowMethods != nil && !f.allowMethods[m] {
			return false
		}
	}
	if f.allowHosts != nil || f.denyHosts != nil {
		h := requestHostname(req)
		if f.denyHosts[h] || f.allowHosts != nil && !f.allowHosts[h] {
			return false
		}
	}
	if f.allowPaths != nil || f.denyPaths != nil {
		p := targetPath(req.GetTarget())
		for _, re := range f.denyPaths {
			if re.MatchString(p) {
				return false
			}
		}
		if f.allowPaths != nil {
			for _, re := range f.allowPaths {
				if re.MatchString(p) {
					return true
				}
			}
			return false
		}
	}
	return true
}

// requestHostname is the request's host name in lower case, without port,
// brackets or trailing dot: from Request.Host, or else from an
// absolute-form target.
func requestHostname(req *schema.Request) string {
	h := req.GetHost()
	if h == "" {
		t := req.GetTarget()
		if i := strings.Index(t, "://"); i > 0 {
			h = t[i+3:]
			if j := strings.IndexAny(h, "/?#"); j >= 0 {
				h = h[:j]
			}
			if j := strings.LastIndexByte(h, '@'); j >= 0 {
				h = h[j+1:] // userinfo
			}
		}
	}
	if name, _, err := net.SplitHostPort(h); err == nil {
		h = name
	} else {
		h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	}
	return strings.TrimSuffix(strings.ToLower(h), ".")
}

// targetPath is the path of a request target, without query or fragment:
// as is for origin form ("/a/b?c" is "/a/b"), the path of an absolute URL
// ("/" when it has none), and the whole target otherwise (authority form
// "host:443", asterisk form "*").
func targetPath(t string) string {
	if !strings.HasPrefix(t, "/") {
		i := strings.Index(t, "://")
		if i <= 0 {
			return t
		}
		rest := t[i+3:]
		j := strings.IndexAny(rest, "/?#")
		if j < 0 || rest[j] != '/' {
			return "/"
		}
		t = rest[j:]
	}
	if i := strings.IndexAny(t, "?#"); i >= 0 {
		t = t[:i]
	}
	return t
}

// SessionKeyFunc extracts a session key from a request. It returns false
// when the request does not carry one (or carries an empty one); the caller
// then falls back to the connection.
type SessionKeyFunc func(req *schema.Request) (string, bool)

// sessionKeyForms lists the specs ParseSessionKey accepts, for errors.
const sessionKeyForms = `"connection" (or empty), "header:NAME" or "cookie:NAME"`

// ParseSessionKey parses a session key spec:
//
//   - "" or "connection": nil; the caller uses the client connection.
//   - "header:X-User-Id": the first value of that request header (the
//     name is case-insensitive), trimmed.
//   - "cookie:sid": the value of that cookie (the name is case-sensitive,
//     as in browsers) in the first Cookie header that has it, without
//     surrounding double quotes.
//
// When the header or cookie is also redacted, call the function after
// Redactor.Apply: the key is then the pseudonym, which groups the same
// sessions without carrying the secret into the record key.
func ParseSessionKey(spec string) (SessionKeyFunc, error) {
	spec = strings.TrimSpace(spec)
	if spec == "" || strings.EqualFold(spec, "connection") {
		return nil, nil
	}
	kind, name, ok := strings.Cut(spec, ":")
	name = strings.TrimSpace(name)
	if !ok {
		return nil, fmt.Errorf("recorder: session key %q: want %s", spec, sessionKeyForms)
	}
	switch strings.ToLower(strings.TrimSpace(kind)) {
	case "header":
		if !isToken(name) {
			return nil, fmt.Errorf("recorder: session key %q: %q is not a valid header name; want %s", spec, name, sessionKeyForms)
		}
		return func(req *schema.Request) (string, bool) {
			for _, h := range req.GetHeaders() {
				if h != nil && strings.EqualFold(h.Name, name) {
					v := strings.TrimSpace(h.Value)
					return v, v != ""
				}
			}
			return "", false
		}, nil
	case "cookie":
		if !isToken(name) {
			return nil, fmt.Errorf("recorder: session key %q: %q is not a valid cookie name; want %s", spec, name, sessionKeyForms)
		}
		return func(req *schema.Request) (string, bool) {
			for _, h := range req.GetHeaders() {
				if h == nil || !strings.EqualFold(h.Name, "Cookie") {
					continue
				}
				if v, ok := cookieValue(h.Value, name); ok {
					return v, v != ""
				}
			}
			return "", false
		}, nil
	}
	return nil, fmt.Errorf("recorder: session key %q: want %s", spec, sessionKeyForms)
}

// cookieValue finds the named cookie in a Cookie header value.
func cookieValue(header, name string) (string, bool) {
	for pair := range strings.SplitSeq(header, ";") {
		n, v, ok := strings.Cut(strings.TrimSpace(pair), "=")
		if !ok || strings.TrimSpace(n) != name {
			continue
		}
		v = strings.TrimSpace(v)
		if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
			v = v[1 : len(v)-1]
		}
		return v, true
	}
	return "", false
}

// Sampler decides which exchanges are recorded, by rate. It is safe for
// concurrent use; a nil *Sampler keeps everything.
type Sampler struct {
	rate    float64 // in [0, 1]
	session bool    // decide by session key, not at random
}

// samplerForms lists the specs NewSampler accepts, for errors.
const samplerForms = `"" or "100%" (keep all), a rate such as "10%" or "0.1" (random), or a rate with ":session" such as "10%:session" (by session key)`

// NewSampler parses a sampling spec:
//
//   - "" or "100%": keep everything.
//   - "10%" or "0.1": keep each exchange with that probability.
//   - "10%:session" or "0.1:session": keep that share of sessions, decided
//     by a hash of the session key alone, so the same sessions are in or
//     out on every run and every recorder, a session is recorded whole,
//     and the sessions kept at a rate are a subset of those kept at any
//     higher rate.
//
// Rates are decimal numbers from 0 to 1, or 0% to 100%.
func NewSampler(spec string) (*Sampler, error) {
	s := strings.TrimSpace(spec)
	if s == "" {
		return &Sampler{rate: 1}, nil
	}
	rate, mode, hasMode := strings.Cut(s, ":")
	var sm Sampler
	if hasMode {
		if strings.TrimSpace(mode) != "session" {
			return nil, fmt.Errorf("recorder: sample %q: unknown mode %q; want %s", spec, mode, samplerForms)
		}
		sm.session = true
	}
	rate = strings.TrimSpace(rate)
	percent := strings.HasSuffix(rate, "%")
	num := strings.TrimSpace(strings.TrimSuffix(rate, "%"))
	if strings.HasPrefix(num, "-") {
		return nil, fmt.Errorf("recorder: sample %q: the rate is negative; want %s", spec, samplerForms)
	}
	if !isDecimal(num) {
		return nil, fmt.Errorf("recorder: sample %q: %q is not a rate; want %s", spec, rate, samplerForms)
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || math.IsInf(v, 0) {
		return nil, fmt.Errorf("recorder: sample %q: %q is not a rate; want %s", spec, rate, samplerForms)
	}
	if percent {
		v /= 100
	}
	if v > 1 {
		if percent {
			return nil, fmt.Errorf("recorder: sample %q: more than 100%%", spec)
		}
		return nil, fmt.Errorf("recorder: sample %q: a rate without %% is a fraction from 0 to 1; did you mean %q?", spec, num+"%")
	}
	sm.rate = v
	return &sm, nil
}

// isDecimal reports whether s is digits with at most one '.', and at least
// one digit.
func isDecimal(s string) bool {
	digits, dots := 0, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case '0' <= c && c <= '9':
			digits++
		case c == '.':
			dots++
		default:
			return false
		}
	}
	return digits > 0 && dots <= 1
}

// Keep reports whether to record an exchange of the given session. Random
// sampling ignores sessionKey.
func (s *Sampler) Keep(sessionKey string) bool {
	switch {
	case s == nil || s.rate >= 1:
		return true
	case s.rate <= 0:
		return false
	case s.session:
		return sessionPoint(sessionKey) < s.rate
	}
	return rand.Float64() < s.rate
}

// sessionPoint maps a session key to [0, 1): FNV-1a (64 bits) of the key,
// mixed by the MurmurHash3 finalizer so that keys differing only in their
// last bytes (user-1, user-2...) spread over the whole range, and the top
// 53 bits as a fraction. Changing it reshuffles which sessions every
// recorder keeps: it is part of the output contract.
func sessionPoint(key string) float64 {
	const (
		offset64 = 14695981039346656037
		prime64  = 1099511628211
	)
	h := uint64(offset64)
	for i := 0; i < len(key); i++ {
		h ^= uint64(key[i])
		h *= prime64
	}
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return float64(h>>11) / (1 << 53)
}
