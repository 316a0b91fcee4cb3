package diff

import (
	"fmt"
	"regexp"
	"strings"
)

// Router maps a request to its route, "METHOD /path/template", so that
// results aggregate by endpoint. It is immutable and safe for concurrent
// use. Create it with NewRouter.
//
// Configured patterns are tried first, in order; the first that matches
// gives the route. Two forms, both with an optional method in front
// ("GET /users/{id}"; without one a pattern applies to every method):
//
//	/users/{id}/orders/{order}       a template: {name} matches one non-empty
//	                                 segment, a final {name...} the rest of the
//	                                 path (one segment or more); other segments
//	                                 match literally. The route is the template.
//	~^/v[0-9]+/files/.+$ => /files/{path}
//	                                 a regular expression over the path; the route
//	                                 is the text after "=>", in which $1 or
//	                                 ${name} are replaced by the groups.
//
// Without a matching pattern each path segment is rewritten by the first
// rule that applies:
//
//	all digits                                   → {id}      /users/123
//	a UUID (8-4-4-4-12 hex digits)               → {uuid}
//	8 or more hex digits, at least one a digit   → {hex}     5f3c9a1b2e..., deadbeef stays
//	20 or more characters of [A-Za-z0-9_=-] with
//	  letters and digits, not made of words      → {token}   (words: parts split by - _ that
//	                                                          are all lower-case or all digits,
//	                                                          so slugs like my-post-2024 stay)
//	one of the above plus an extension           → {id}.json
//
// Other segments are kept. The query and fragment are dropped, an
// absolute URL is reduced to its path, and the method is upper-cased.
type Router struct {
	rules []routeRule
}

type routeRule struct {
	method string   // "" for any
	segs   []string // template segments
	rest   bool     // the last segment is {name...}
	re     *regexp.Regexp
	route  string
}

// NewRouter compiles route patterns (see Router). A pattern that does not
// compile is refused with an error naming it.
func NewRouter(patterns []string) (*Router, error) {
	r := &Router{}
	for i, p := range patterns {
		rule, err := parseRouteRule(p)
		if err != nil {
			return nil, fmt.Errorf("diff: route pattern %d %q: %w", i, p, err)
		}
		r.rules = append(r.rules, rule)
	}
	return r, nil
}

func parseRouteRule(p string) (routeRule, error) {
	var rule routeRule
	s := strings.TrimSpace(p)
	if m, rest, ok := strings.Cut(s, " "); ok && m != "" && !strings.HasPrefix(m, "/") && !strings.HasPrefix(m, "~") {
		for _, c := range m {
			if c < 'A' || c > 'Z' {
				return rule, fmt.Errorf("%q is not a method: write it in upper case, like GET", m)
			}
		}
		rule.method, s = m, strings.TrimSpace(rest)
	}
	if strings.HasPrefix(s, "~") {
		expr, route, ok := strings.Cut(s[1:], "=>")
		if !ok {
			return rule, fmt.Errorf(`a regular expression needs "=> /route" after it`)
		}
		re, err := regexp.Compile(strings.TrimSpace(expr))
		if err != nil {
			return rule, err
		}
		rule.re, rule.route = re, strings.TrimSpace(route)
		if !strings.HasPrefix(rule.route, "/") {
			return rule, fmt.Errorf("the route %q after => must start with /", rule.route)
		}
		return rule, nil
	}
	if !strings.HasPrefix(s, "/") {
		return rule, fmt.Errorf(`a template starts with "/", a regular expression with "~"`)
	}
	rule.route = s
	rule.segs = strings.Split(s, "/")[1:]
	for i, seg := range rule.segs {
		hasOpen, hasClose := strings.Contains(seg, "{"), strings.Contains(seg, "}")
		switch {
		case !hasOpen && !hasClose:
		case !strings.HasPrefix(seg, "{") || !strings.HasSuffix(seg, "}") || len(seg) < 3 || strings.Count(seg, "{") > 1:
			return rule, fmt.Errorf("segment %q: a wildcard is a whole segment, {name}", seg)
		case strings.HasSuffix(seg, "...}"):
			if i != len(rule.segs)-1 {
				return rule, fmt.Errorf("segment %q: {name...} must be the last segment", seg)
			}
			rule.rest = true
		}
	}
	return rule, nil
}

// Route returns the route of a request: its upper-cased method, a space
// and its path template. target is the request-target as recorded ("/a?b",
// or an absolute URL). A nil Router applies the default rules only.
func (r *Router) Route(method, target string) string {
	method = strings.ToUpper(method)
	path := routePath(target)
	var rules []routeRule
	if r != nil {
		rules = r.rules
	}
	for _, rule := range rules {
		if rule.method != "" && rule.method != method {
			continue
		}
		if rule.re != nil {
			if m := rule.re.FindStringSubmatchIndex(path); m != nil {
				return method + " " + string(rule.re.ExpandString(nil, rule.route, path, m))
			}
			continue
		}
		if rule.matches(path) {
			return method + " " + rule.route
		}
	}
	segs := strings.Split(path, "/")
	for i, s := range segs {
		segs[i] = templateSegment(s)
	}
	return method + " " + strings.Join(segs, "/")
}

func (rule *routeRule) matches(path string) bool {
	segs := strings.Split(path, "/")[1:]
	if len(segs) < len(rule.segs) || !rule.rest && len(segs) != len(rule.segs) {
		return false
	}
	for i, t := range rule.segs {
		switch {
		case strings.HasPrefix(t, "{"):
			if segs[i] == "" {
				return false
			}
		case t != segs[i]:
			return false
		}
	}
	return true
}

// routePath returns the path of a request-target: no query or fragment,
// no scheme and host, never empty.
func routePath(target string) string {
	if i := strings.IndexAny(target, "?#"); i >= 0 {
		target = target[:i]
	}
	if i := strings.Index(target, "://"); i >= 0 && !strings.Contains(target[:i], "/") {
		target = target[i+3:]
		if j := strings.IndexByte(target, '/'); j >= 0 {
			target = target[j:]
		} else {
			target = "/"
		}
	}
	switch {
	case target == "" || target == "/":
		return "/"
	case target == "*":
		return "*"
	case target[0] != '/':
		return "/" + target
	}
	return target
}

// templateSegment applies the default rules of Router to one segment.
func templateSegment(s string) string {
	if t := classify(s); t != "" {
		return t
	}
	// An identifier with an extension: 123.json, 5f3c9a1b2e.png.
	if i := strings.LastIndexByte(s, '.'); i > 0 && len(s)-i-1 >= 1 && len(s)-i-1 <= 5 && isAlpha(s[i+1:]) {
		if t := classify(s[:i]); t != "" {
			return t + s[i:]
		}
	}
	return s
}

func classify(s string) string {
	switch {
	case s == "":
		return ""
	case allBytes(s, isDigit):
		return "{id}"
	case isUUID(s):
		return "{uuid}"
	case len(s) >= 8 && allBytes(s, isHex) && strings.IndexFunc(s, func(r rune) bool { return r >= '0' && r <= '9' }) >= 0:
		return "{hex}"
	case isToken(s):
		return "{token}"
	}
	return ""
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isHex(c byte) bool   { return isDigit(c) || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }
func isLetter(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func isAlpha(s string) bool { return allBytes(s, isLetter) }

func allBytes(s string, f func(byte) bool) bool {
	for i := 0; i < len(s); i++ {
		if !f(s[i]) {
			return false
		}
	}
	return true
}

func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			if s[i] != '-' {
				return false
			}
		} else if !isHex(s[i]) {
			return false
		}
	}
	return true
}

// isToken reports whether s looks like a random token: 20 or more
// base64url characters (with '=' padding) mixing letters and digits, and
// not a phrase of words (see Router).
func isToken(s string) bool {
	if len(s) < 20 {
		return false
	}
	var letter, digit bool
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case isLetter(c):
			letter = true
		case isDigit(c):
			digit = true
		case c == '-' || c == '_' || c == '=':
		default:
			return false
		}
	}
	if !letter || !digit {
		return false
	}
	words := true
	for part := range strings.FieldsFuncSeq(strings.TrimRight(s, "="), func(r rune) bool { return r == '-' || r == '_' }) {
		if !allBytes(part, func(c byte) bool { return c >= 'a' && c <= 'z' }) && !allBytes(part, isDigit) {
			words = false
			break
		}
	}
	return !words
}
