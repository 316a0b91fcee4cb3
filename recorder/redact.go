package recorder

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/tapline/tapline/schema"
)

// minRedactKeyLen is the shortest pseudonym key NewRedactor accepts.
const minRedactKeyLen = 16

// pseudonymPrefix starts every value the Redactor writes; pseudonymLen is
// the length of a pseudonym.
const (
	pseudonymPrefix = "tap_"
	pseudonymLen    = len(pseudonymPrefix) + 16
)

// redactPreset are the headers RedactConfig.Preset adds.
var redactPreset = []string{"Authorization", "Proxy-Authorization", "Cookie", "Set-Cookie", "X-Api-Key"}

// RedactConfig lists what a Redactor replaces. The zero value redacts
// nothing.
//
// Every redacted value is replaced by a pseudonym, "tap_" followed by the
// first 16 characters of base64url(HMAC-SHA256(Key, value)), so the same
// secret gets the same pseudonym in every exchange, field and recorder that
// shares the key, and diffs between recordings still line up.
type RedactConfig struct {
	// Key is the HMAC key for pseudonyms, at least 16 bytes. It is required
	// as soon as any rule is set. Keep it out of config files and command
	// lines: read it from a file or an env var (TAPLINE_RECORD_REDACT_KEY).
	// Recorders whose output is compared must share it.
	Key []byte
	// Headers are header names (case-insensitive) whose values are
	// redacted in requests and responses. Some names get a shape-keeping
	// treatment: Authorization and Proxy-Authorization keep their scheme
	// ("Bearer tap_…"); Cookie keeps the cookie names and redacts each
	// value ("a=tap_…; sid=tap_…"); Set-Cookie redacts the value of its
	// first name=value pair and keeps the name and the attributes. A Host
	// rule also redacts Request.Host. Default: none.
	Headers []string
	// QueryParams are query parameter names whose values are redacted in
	// Request.Target, in URL-valued headers (Location, Content-Location,
	// Referer) and in application/x-www-form-urlencoded bodies. Names are
	// compared after percent-decoding and case-insensitively; only the
	// value bytes change, the rest stays byte for byte. Parameters are
	// separated by '&' only (as in net/url and WHATWG URLs), so a ';' is
	// part of a value; a '#' is part of a value too (request targets carry
	// no fragment, and if one does, hiding it errs on the safe side).
	// Default: none.
	QueryParams []string
	// JSONFields are paths to JSON fields whose values are redacted in
	// request and response bodies. A path is keys separated by '.', where
	// "*" stands for any key at that level and "[*]" for every element of
	// an array: "password", "user.token", "items[*].card", "*.secret",
	// "[*].token" (a top-level array). Paths start at the top of the
	// document; keys are compared case-insensitively (after strings.ToLower,
	// as many JSON decoders match fields loosely). Arrays are transparent
	// for key steps: "items.card" also reaches the card of every element
	// of an items array, and "password" the password of every object in a
	// top-level array. Keys containing '.', '[' or ']' cannot be named.
	// Default: none.
	//
	// Only strings and numbers are replaced (by a JSON string pseudonym;
	// a number's pseudonym is that of its literal text); true, false and
	// null stay. A path that reaches an object or array redacts every
	// string and number inside it and keeps the keys.
	JSONFields []string
	// Preset adds the headers Authorization, Proxy-Authorization, Cookie,
	// Set-Cookie and X-Api-Key to Headers. Default false.
	Preset bool
}

// Redactor replaces secrets in exchanges with keyed pseudonyms, following a
// RedactConfig compiled once by NewRedactor. It is safe for concurrent use;
// a nil *Redactor redacts nothing.
type Redactor struct {
	headers map[string]headerRedaction // lower-case name -> how to redact its value
	query   map[string]bool            // lower-case, decoded parameter names
	json    []jsonNode                 // path trie; nil without JSON rules; json[0] is the root
	host    bool                       // a Host rule: Request.Host too
	active  bool                       // any rule at all

	macs  sync.Pool // *redactMAC
	walks sync.Pool // *jsonRewriter
}

// headerRedaction says how a header's value is redacted.
type headerRedaction uint8

const (
	redactURL       headerRedaction = iota // not redacted as a whole; query parameters in its URL are
	redactWhole                            // the whole value
	redactAuth                             // keep the auth scheme, redact the credentials
	redactCookie                           // every cookie value of a Cookie header
	redactSetCookie                        // the value of a Set-Cookie's first pair
	redactNone                             // (never stored) leave the header alone
)

// redactMAC is one HMAC state with its buffers, reused through a pool.
type redactMAC struct {
	h   hash.Hash
	sum []byte
	buf []byte // a string value being hashed
}

// NewRedactor validates and compiles cfg. It refuses a rule it cannot apply
// exactly, naming the rule, and a key that is missing or shorter than
// 16 bytes when any rule is set.
func NewRedactor(cfg RedactConfig) (*Redactor, error) {
	r := &Redactor{}
	names := cfg.Headers
	if cfg.Preset {
		names = append(append([]string(nil), redactPreset...), names...)
	}
	if len(names) > 0 {
		r.headers = make(map[string]headerRedaction, len(names)+3)
	}
	for i, name := range names {
		if !isToken(name) {
			return nil, fmt.Errorf("recorder: redact header %d (%q): not a valid header name", i+1, name)
		}
		lower := strings.ToLower(name)
		how := redactWhole
		switch lower {
		case "authorization", "proxy-authorization":
			how = redactAuth
		case "cookie":
			how = redactCookie
		case "set-cookie":
			how = redactSetCookie
		case "host":
			r.host = true
		}
		r.headers[lower] = how
	}
	for i, name := range cfg.QueryParams {
		if name == "" {
			return nil, fmt.Errorf("recorder: redact query param %d: empty name", i+1)
		}
		if r.query == nil {
			r.query = make(map[string]bool, len(cfg.QueryParams))
		}
		r.query[strings.ToLower(name)] = true
	}
	if len(r.query) > 0 {
		if r.headers == nil {
			r.headers = make(map[string]headerRedaction, 3)
		}
		for _, name := range []string{"location", "content-location", "referer"} {
			if _, ok := r.headers[name]; !ok {
				r.headers[name] = redactURL
			}
		}
	}
	for _, path := range cfg.JSONFields {
		steps, err := parseJSONPath(path)
		if err != nil {
			return nil, fmt.Errorf("recorder: redact JSON field %q: %w", path, err)
		}
		r.addJSONPath(steps)
	}
	if r.headers == nil && r.query == nil && r.json == nil {
		return r, nil
	}
	switch {
	case len(cfg.Key) == 0:
		return nil, fmt.Errorf("recorder: redaction rules need a key of at least %d bytes for the pseudonyms: "+
			"read it from a file or an env var such as TAPLINE_RECORD_REDACT_KEY", minRedactKeyLen)
	case len(cfg.Key) < minRedactKeyLen:
		return nil, fmt.Errorf("recorder: the redaction key is %d bytes, it needs at least %d: "+
			"read a longer one from a file or an env var such as TAPLINE_RECORD_REDACT_KEY", len(cfg.Key), minRedactKeyLen)
	}
	r.active = true
	key := append([]byte(nil), cfg.Key...)
	r.macs.New = func() any {
		return &redactMAC{h: hmac.New(sha256.New, key), sum: make([]byte, 0, sha256.Size)}
	}
	r.walks.New = func() any { return &jsonRewriter{r: r} }
	return r, nil
}

// Apply redacts ex in place (the recorder owns its copy) and returns how
// many values it replaced. It redacts, in the request and the response:
// header values, query parameters in the target and in URL-valued headers,
// and form and JSON bodies.
//
// Bodies are rewritten only when they are readable:
//
//   - A body with a Content-Encoding (other than identity) or an unusual
//     Transfer-Encoding cannot be read here. When a rule would apply to it
//     (JSON rules and a JSON or missing Content-Type, or query rules and a
//     form body), its bytes are dropped: Body becomes empty and
//     BodyTruncated true, which the schema already defines as "body holds
//     only the first part of the body" (here an empty part), with BodySize
//     left at the original size. This counts as one replaced value.
//   - A body is JSON when its Content-Type contains "json" or, whatever the
//     type, it starts with '{' or '[' after white space. A stream of
//     whitespace-separated JSON values (NDJSON, RFC 7464 sequences) is
//     redacted value by value. JSON that does not parse is dropped as above
//     when its Content-Type says JSON, since a mostly valid document may
//     still hold secrets; when only its first byte looked like JSON it is
//     left unchanged and counts nothing, since it is not JSON.
//   - A truncated JSON body (BodyTruncated) is redacted as far as it goes;
//     a redacted string or number cut by the truncation is removed from the
//     end, so the body stays a prefix of the redacted full body.
//
// When a complete body changes length, BodySize and every Content-Length
// header of that message are set to the new length. For a truncated body
// they keep describing the original, which was never seen whole.
func (r *Redactor) Apply(ex *schema.Exchange) (n int) {
	if r == nil || ex == nil || !r.active {
		return 0
	}
	if req := ex.GetRequest(); req != nil {
		// The body first: it reads Content-Type and Content-Encoding, which
		// a header rule could otherwise have replaced.
		n += r.redactBody(&req.Body, &req.BodyTruncated, &req.BodySize, req.Headers)
		n += r.redactHeaders(req.Headers)
		if len(r.query) > 0 {
			if t, m := r.redactURL(req.Target); m > 0 {
				req.Target, n = t, n+m
			}
		}
		if r.host && req.Host != "" {
			req.Host = r.pseudonym(req.Host)
			n++
		}
	}
	return n + r.ApplyResponse(ex.GetResponse())
}

// ApplyResponse redacts one response in place, as Apply does an
// exchange's: the replayer applies it to staging's responses, with the
// recorder's rules and key, so that they carry the same pseudonyms. It
// returns the number of values replaced and is safe for concurrent use.
func (r *Redactor) ApplyResponse(resp *schema.Response) (n int) {
	if r == nil || resp == nil || !r.active {
		return 0
	}
	n += r.redactBody(&resp.Body, &resp.BodyTruncated, &resp.BodySize, resp.Headers)
	n += r.redactHeaders(resp.Headers)
	return n
}

// redactHeaders redacts header values in place.
func (r *Redactor) redactHeaders(hs []*schema.Header) (n int) {
	if len(r.headers) == 0 {
		return 0
	}
	for _, h := range hs {
		if h == nil || h.Value == "" {
			continue
		}
		how := r.headerRule(h.Name)
		var v string
		var m int
		switch how {
		case redactNone:
			continue
		case redactWhole:
			v, m = r.pseudonym(h.Value), 1
		case redactAuth:
			v, m = r.redactAuthorization(h.Value)
		case redactCookie:
			v, m = r.redactCookies(h.Value, false)
		case redactSetCookie:
			v, m = r.redactCookies(h.Value, true)
		case redactURL:
			v, m = r.redactURL(h.Value)
		}
		if m > 0 {
			h.Value, n = v, n+m
		}
	}
	return n
}

// headerRule looks a header name up without allocating for names that fit
// a small buffer.
func (r *Redactor) headerRule(name string) headerRedaction {
	var buf [64]byte
	var how headerRedaction
	var ok bool
	if len(name) <= len(buf) {
		for i := 0; i < len(name); i++ {
			c := name[i]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			buf[i] = c
		}
		how, ok = r.headers[string(buf[:len(name)])]
	} else {
		how, ok = r.headers[strings.ToLower(name)]
	}
	if !ok {
		return redactNone
	}
	return how
}

// redactAuthorization keeps the auth scheme of an Authorization value and
// redacts the credentials after it; a value without a scheme is redacted
// whole.
func (r *Redactor) redactAuthorization(v string) (string, int) {
	sp := strings.IndexAny(v, " \t")
	if sp <= 0 || !isToken(v[:sp]) {
		return r.pseudonym(v), 1
	}
	start := sp
	for start < len(v) && (v[start] == ' ' || v[start] == '\t') {
		start++
	}
	if start == len(v) {
		return r.pseudonym(v), 1
	}
	p := r.pseudonymArray(v[start:])
	return v[:start] + string(p[:]), 1
}

// redactCookies redacts cookie values and keeps names and separators: every
// pair of a Cookie header, or only the first pair of a Set-Cookie (the rest
// are attributes). A pair without '=' is a value with an empty name, as
// browsers read it. Double quotes around a value are kept.
func (r *Redactor) redactCookies(v string, setCookie bool) (string, int) {
	var b strings.Builder
	last, n := 0, 0
	for start := 0; start < len(v); {
		end := strings.IndexByte(v[start:], ';')
		if end < 0 {
			end = len(v)
		} else {
			end += start
		}
		vs := start
		if eq := strings.IndexByte(v[start:end], '='); eq >= 0 {
			vs = start + eq + 1
		}
		ve := end
		for vs < ve && (v[vs] == ' ' || v[vs] == '\t') {
			vs++
		}
		for ve > vs && (v[ve-1] == ' ' || v[ve-1] == '\t') {
			ve--
		}
		if ve-vs >= 2 && v[vs] == '"' && v[ve-1] == '"' {
			vs, ve = vs+1, ve-1
		}
		if vs < ve {
			if n == 0 {
				pairs := 1
				if !setCookie {
					pairs += strings.Count(v[end:], ";")
				}
				b.Grow(len(v) + pairs*pseudonymLen)
			}
			b.WriteString(v[last:vs])
			p := r.pseudonymArray(v[vs:ve])
			b.Write(p[:])
			last = ve
			n++
		}
		if setCookie {
			break
		}
		start = end + 1
	}
	if n == 0 {
		return v, 0
	}
	b.WriteString(v[last:])
	return b.String(), n
}

// redactURL redacts the query parameters of a URL or request target.
func (r *Redactor) redactURL(u string) (string, int) {
	q := strings.IndexByte(u, '?')
	if q < 0 {
		return u, 0
	}
	if out, n := r.redactQuery(u[:q+1], u[q+1:]); n > 0 {
		return out, n
	}
	return u, 0
}

// redactQuery returns prefix and the query (or form body) q with the values
// of the redacted parameters replaced, and how many it replaced; "" when
// none. Empty values and parameters without '=' carry no secret and are
// kept.
func (r *Redactor) redactQuery(prefix, q string) (string, int) {
	var b strings.Builder
	last, n := 0, 0
	for start := 0; start < len(q); {
		end := strings.IndexByte(q[start:], '&')
		if end < 0 {
			end = len(q)
		} else {
			end += start
		}
		if eq := strings.IndexByte(q[start:end], '='); eq > 0 && start+eq+1 < end && r.queryParam(q[start:start+eq]) {
			val := q[start+eq+1 : end]
			if dec, err := url.QueryUnescape(val); err == nil {
				val = dec
			}
			if n == 0 {
				b.Grow(len(prefix) + len(q) + pseudonymLen*(1+strings.Count(q[end:], "&")))
				b.WriteString(prefix)
			}
			b.WriteString(q[last : start+eq+1])
			p := r.pseudonymArray(val)
			b.Write(p[:])
			last = end
			n++
		}
		start = end + 1
	}
	if n == 0 {
		return "", 0
	}
	b.WriteString(q[last:])
	return b.String(), n
}

// queryParam reports whether the (encoded) parameter name is redacted.
func (r *Redactor) queryParam(name string) bool {
	if dec, err := url.QueryUnescape(name); err == nil {
		name = dec
	}
	return r.query[strings.ToLower(name)]
}

// redactBody redacts a request or response body in place; hs are that
// message's headers. See Apply for what happens to which body.
func (r *Redactor) redactBody(body *[]byte, truncated *bool, size *int64, hs []*schema.Header) int {
	if len(*body) == 0 || (r.json == nil && r.query == nil) {
		return 0
	}
	ct := strings.ToLower(redactHeaderValue(hs, "Content-Type"))
	jsonType := strings.Contains(ct, "json")
	form := len(r.query) > 0 && strings.Contains(ct, "application/x-www-form-urlencoded")
	if redactEncoded(hs) {
		if (r.json != nil && (jsonType || ct == "")) || form {
			if *size == 0 {
				*size = int64(len(*body))
			}
			*body, *truncated = nil, true
			return 1
		}
		return 0
	}
	var out []byte
	var n int
	switch {
	case r.json != nil && (jsonType || looksJSON(*body)):
		var err error
		out, n, err = r.redactJSON(*body, *truncated)
		if err != nil {
			if !jsonType {
				return 0 // it only looked like JSON
			}
			if *size == 0 {
				*size = int64(len(*body))
			}
			*body, *truncated = nil, true
			return 1
		}
	case form:
		var s string
		if s, n = r.redactQuery("", string(*body)); n > 0 {
			out = []byte(s)
		}
	}
	if out == nil {
		return n
	}
	changed := len(out) != len(*body)
	*body = out
	if changed && !*truncated {
		*size = int64(len(out))
		cl := strconv.Itoa(len(out))
		for _, h := range hs {
			if h != nil && strings.EqualFold(h.Name, "Content-Length") {
				h.Value = cl
			}
		}
	}
	return n
}

// redactHeaderValue is the first value of the named header, or "".
func redactHeaderValue(hs []*schema.Header, name string) string {
	for _, h := range hs {
		if h != nil && strings.EqualFold(h.Name, name) {
			return h.Value
		}
	}
	return ""
}

// redactEncoded reports whether the stored body is still encoded: a
// Content-Encoding other than identity, or a Transfer-Encoding other than
// chunked (which the recorder removes) and identity.
func redactEncoded(hs []*schema.Header) bool {
	for _, h := range hs {
		if h == nil {
			continue
		}
		te := strings.EqualFold(h.Name, "Transfer-Encoding")
		if !te && !strings.EqualFold(h.Name, "Content-Encoding") {
			continue
		}
		for coding := range strings.SplitSeq(h.Value, ",") {
			coding = strings.TrimSpace(coding)
			if coding == "" || strings.EqualFold(coding, "identity") || te && strings.EqualFold(coding, "chunked") {
				continue
			}
			return true
		}
	}
	return false
}

// looksJSON reports whether b starts with '{' or '[' after white space
// (and an optional UTF-8 byte order mark).
func looksJSON(b []byte) bool {
	b = trimBOM(b)
	for _, c := range b {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		case '{', '[':
			return true
		}
		return false
	}
	return false
}

func trimBOM(b []byte) []byte {
	if len(b) >= 3 && b[0] == 0xef && b[1] == 0xbb && b[2] == 0xbf {
		return b[3:]
	}
	return b
}

// pseudonym returns the pseudonym of value.
func (r *Redactor) pseudonym(value string) string {
	p := r.pseudonymArray(value)
	return string(p[:])
}

// pseudonymArray returns the pseudonym of value.
func (r *Redactor) pseudonymArray(value string) (p [pseudonymLen]byte) {
	m := r.macs.Get().(*redactMAC)
	m.buf = append(m.buf[:0], value...)
	m.appendPseudonym(p[:0], m.buf)
	if cap(m.buf) > 4<<10 {
		m.buf = nil // do not keep a large value alive in the pool
	}
	r.macs.Put(m)
	return p
}

// appendPseudonymBytes appends the pseudonym of value to dst.
func (r *Redactor) appendPseudonymBytes(dst, value []byte) []byte {
	m := r.macs.Get().(*redactMAC)
	dst = m.appendPseudonym(dst, value)
	r.macs.Put(m)
	return dst
}

// appendPseudonym appends "tap_" and the first 16 characters of
// base64url(HMAC-SHA256(key, value)) to dst.
func (m *redactMAC) appendPseudonym(dst, value []byte) []byte {
	m.h.Reset()
	m.h.Write(value)
	m.sum = m.h.Sum(m.sum[:0])
	// 12 bytes are exactly 16 base64 characters: the first 16 characters
	// of the whole sum's encoding.
	var enc [16]byte
	base64.RawURLEncoding.Encode(enc[:], m.sum[:12])
	dst = append(dst, pseudonymPrefix...)
	return append(dst, enc[:]...)
}

// JSON paths.

// jsonStep is one step of a compiled JSON path.
type jsonStep struct {
	kind jsonStepKind
	key  string // lower case, for jsonKey
}

type jsonStepKind uint8

const (
	jsonKey     jsonStepKind = iota // an object key
	jsonAnyKey                      // "*": any key
	jsonElement                     // "[*]": every array element
)

// jsonNode is a node of the trie of JSON paths: where a path can be after
// some steps, and where it goes next.
type jsonNode struct {
	keys     map[string]int32 // child by lower-case key
	anyKey   int32            // child for "*", or -1
	element  int32            // child for "[*]", or -1
	terminal bool             // a path ends here: everything below is redacted
}

// parseJSONPath parses a JSONFields path into steps.
func parseJSONPath(path string) ([]jsonStep, error) {
	if path == "" {
		return nil, errors.New("empty path")
	}
	if !utf8.ValidString(path) {
		return nil, errors.New("not valid UTF-8")
	}
	var steps []jsonStep
	for i, part := range strings.Split(path, ".") {
		name, elems := part, ""
		if b := strings.IndexByte(part, '['); b >= 0 {
			name, elems = part[:b], part[b:]
		}
		switch {
		case name == "" && (elems == "" || i > 0):
			return nil, fmt.Errorf("step %d is empty: write keys separated by single dots, with [*] right after a key", i+1)
		case name == "*":
			steps = append(steps, jsonStep{kind: jsonAnyKey})
		case strings.Contains(name, "*"):
			return nil, fmt.Errorf("step %q: * stands for a whole key, not for part of one", part)
		case strings.Contains(name, "]"):
			return nil, fmt.Errorf("step %q: ] without [", part)
		case name != "":
			steps = append(steps, jsonStep{kind: jsonKey, key: strings.ToLower(name)})
		}
		for elems != "" {
			if !strings.HasPrefix(elems, "[*]") {
				return nil, fmt.Errorf("step %q: only [*] (every element) can follow a key; array indexes are not supported", part)
			}
			steps = append(steps, jsonStep{kind: jsonElement})
			elems = elems[len("[*]"):]
		}
	}
	return steps, nil
}

// addJSONPath adds a path to the trie.
func (r *Redactor) addJSONPath(steps []jsonStep) {
	if r.json == nil {
		r.json = []jsonNode{{anyKey: -1, element: -1}}
	}
	at := int32(0)
	for _, s := range steps {
		var next *int32
		switch s.kind {
		case jsonAnyKey:
			next = &r.json[at].anyKey
		case jsonElement:
			next = &r.json[at].element
		case jsonKey:
			if r.json[at].keys == nil {
				r.json[at].keys = map[string]int32{}
			}
			if c, ok := r.json[at].keys[s.key]; ok {
				at = c
				continue
			}
			r.json[at].keys[s.key] = -1
		}
		if s.kind != jsonKey && *next >= 0 {
			at = *next
			continue
		}
		r.json = append(r.json, jsonNode{anyKey: -1, element: -1})
		c := int32(len(r.json) - 1)
		switch s.kind {
		case jsonAnyKey:
			r.json[at].anyKey = c
		case jsonElement:
			r.json[at].element = c
		case jsonKey:
			r.json[at].keys[s.key] = c
		}
		at = c
	}
	r.json[at].terminal = true
}

// JSON rewriting.

// maxJSONDepth is the deepest nesting accepted, as in encoding/json.
const maxJSONDepth = 10000

var (
	errJSONEnd    = errors.New("unexpected end of JSON input")
	errJSONSyntax = errors.New("invalid JSON")
)

// redactJSON returns body with the values at the JSON paths replaced, and
// how many it replaced; out is nil when nothing changed. body may be a
// stream of whitespace-separated values. When truncated, the body may end
// anywhere: it is redacted as far as it goes, and a redacted value cut by
// the end is left out. An error means the body is not JSON.
func (r *Redactor) redactJSON(body []byte, truncated bool) (out []byte, n int, err error) {
	w := r.walks.Get().(*jsonRewriter)
	defer func() {
		w.in, w.out = nil, nil
		r.walks.Put(w)
	}()
	w.reset(body, truncated)
	err = w.run()
	if errors.Is(err, errJSONEnd) && truncated {
		end := len(body)
		if w.cut >= 0 {
			end = w.cut
		}
		if w.out == nil && end == len(body) {
			return nil, 0, nil
		}
		out = append(w.out, body[w.last:end]...)
		return out, w.n, nil
	}
	if err != nil {
		return nil, 0, err
	}
	if w.out == nil {
		return nil, 0, nil
	}
	return append(w.out, body[w.last:]...), w.n, nil
}

// jsonRewriter is a strict JSON scanner (it accepts what json.Valid
// accepts) that copies its input to out with redacted values replaced. The
// path state of each level is a set of trie nodes, kept as a span of the
// states stack.
type jsonRewriter struct {
	r         *Redactor
	in        []byte
	pos       int
	truncated bool
	depth     int

	out  []byte // nil until the first replacement
	last int    // in[last:] is not yet copied to out
	n    int
	cut  int // truncated input: where a redacted value cut by the end starts, or -1

	states []int32 // trie nodes of the open levels
	key    []byte  // scratch for lower-casing keys
}

func (w *jsonRewriter) reset(in []byte, truncated bool) {
	w.in, w.pos, w.truncated, w.depth = in, 0, truncated, 0
	w.out, w.last, w.n, w.cut = nil, 0, 0, -1
	w.states = append(w.states[:0], 0)
}

// run reads the top-level values.
func (w *jsonRewriter) run() error {
	w.pos = len(w.in) - len(trimBOM(w.in))
	for first := true; ; first = false {
		start := w.pos
		for w.pos < len(w.in) {
			if c := w.in[w.pos]; c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == 0x1e { // RS: RFC 7464
				w.pos++
				continue
			}
			break
		}
		if w.pos == len(w.in) {
			return nil
		}
		if !first && w.pos == start {
			return errJSONSyntax // values must be separated
		}
		if err := w.value(0, 1, false); err != nil {
			return err
		}
	}
}

func (w *jsonRewriter) skipSpace() {
	for w.pos < len(w.in) {
		switch w.in[w.pos] {
		case ' ', '\t', '\r', '\n':
			w.pos++
		default:
			return
		}
	}
}

// value reads one value whose path state is states[lo:hi]; redact says a
// path already matched above it.
func (w *jsonRewriter) value(lo, hi int, redact bool) error {
	w.skipSpace()
	if w.pos == len(w.in) {
		return errJSONEnd
	}
	start := w.pos
	switch c := w.in[w.pos]; {
	case c == '{':
		return w.object(lo, hi, redact)
	case c == '[':
		return w.array(lo, hi, redact)
	case c == '"':
		esc, err := w.str()
		if err != nil {
			if err == errJSONEnd && redact {
				w.cut = start
			}
			return err
		}
		if redact {
			raw := w.in[start+1 : w.pos-1]
			if esc || !utf8.Valid(raw) {
				w.replace(start, w.pos, decodeJSONString(w.in[start:w.pos]))
			} else {
				w.replace(start, w.pos, raw)
			}
		}
		return nil
	case c == '-' || '0' <= c && c <= '9':
		err := w.number()
		if err == nil && w.truncated && w.pos == len(w.in) {
			err = errJSONEnd // the number may go on past the cut
		}
		if err != nil {
			if err == errJSONEnd && redact {
				w.cut = start
			}
			return err
		}
		if redact {
			w.replace(start, w.pos, w.in[start:w.pos])
		}
		return nil
	case c == 't':
		return w.literal("true")
	case c == 'f':
		return w.literal("false")
	case c == 'n':
		return w.literal("null")
	}
	return errJSONSyntax
}

func (w *jsonRewriter) object(lo, hi int, redact bool) error {
	if w.depth++; w.depth > maxJSONDepth {
		return errJSONSyntax
	}
	w.pos++
	w.skipSpace()
	if w.pos == len(w.in) {
		return errJSONEnd
	}
	if w.in[w.pos] == '}' {
		w.pos++
		w.depth--
		return nil
	}
	for {
		w.skipSpace()
		if w.pos == len(w.in) {
			return errJSONEnd
		}
		if w.in[w.pos] != '"' {
			return errJSONSyntax
		}
		start := w.pos
		esc, err := w.str()
		if err != nil {
			return err
		}
		chi, credact := w.keyState(lo, hi, redact, start, esc)
		w.skipSpace()
		if w.pos == len(w.in) {
			return errJSONEnd
		}
		if w.in[w.pos] != ':' {
			return errJSONSyntax
		}
		w.pos++
		if err := w.value(hi, chi, credact); err != nil {
			return err
		}
		w.states = w.states[:hi]
		if done, err := w.separator('}'); done || err != nil {
			return err
		}
	}
}

func (w *jsonRewriter) array(lo, hi int, redact bool) error {
	if w.depth++; w.depth > maxJSONDepth {
		return errJSONSyntax
	}
	w.pos++
	// The elements' state: the array's own (arrays are transparent for key
	// steps) plus every [*] child.
	ehi, eredact := hi, redact
	if !redact {
		for i := lo; i < hi; i++ {
			w.states = append(w.states, w.states[i])
		}
		for i := lo; i < hi; i++ {
			if c := w.r.json[w.states[i]].element; c >= 0 {
				eredact = w.push(hi, c) || eredact
			}
		}
		ehi = len(w.states)
		if eredact {
			// Below a match nothing needs tracking.
			w.states = w.states[:hi]
			ehi = hi
		}
	}
	w.skipSpace()
	if w.pos == len(w.in) {
		return errJSONEnd
	}
	if w.in[w.pos] == ']' {
		w.pos++
		w.depth--
		w.states = w.states[:hi]
		return nil
	}
	for {
		if err := w.value(hi, ehi, eredact); err != nil {
			return err
		}
		w.states = w.states[:ehi]
		if done, err := w.separator(']'); done || err != nil {
			w.states = w.states[:hi]
			return err
		}
	}
}

// separator reads what follows an object member or an array element: a
// comma (more follow) or closer (the container ends: done).
func (w *jsonRewriter) separator(closer byte) (done bool, err error) {
	w.skipSpace()
	if w.pos == len(w.in) {
		return false, errJSONEnd
	}
	switch w.in[w.pos] {
	case ',':
		w.pos++
		return false, nil
	case closer:
		w.pos++
		w.depth--
		return true, nil
	}
	return false, errJSONSyntax
}

// keyState pushes the state after the key in[start:w.pos] (a JSON string)
// onto states[hi:] and returns its end, and whether the value is redacted.
func (w *jsonRewriter) keyState(lo, hi int, redact bool, start int, esc bool) (int, bool) {
	w.states = w.states[:hi]
	if redact || lo == hi {
		return hi, redact
	}
	raw := w.in[start+1 : w.pos-1]
	ascii := !esc
	for i := 0; ascii && i < len(raw); i++ {
		ascii = raw[i] < utf8.RuneSelf
	}
	var key []byte
	if ascii {
		w.key = w.key[:0]
		for _, c := range raw {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			w.key = append(w.key, c)
		}
		key = w.key
	} else {
		key = []byte(strings.ToLower(string(decodeJSONString(w.in[start:w.pos]))))
	}
	matched := false
	for i := lo; i < hi; i++ {
		nd := &w.r.json[w.states[i]]
		if c, ok := nd.keys[string(key)]; ok {
			matched = w.push(hi, c) || matched
		}
		if nd.anyKey >= 0 {
			matched = w.push(hi, nd.anyKey) || matched
		}
	}
	if matched {
		w.states = w.states[:hi]
		return hi, true
	}
	return len(w.states), false
}

// push adds node c to the state being built in states[from:], once, and
// reports whether a path ends at it.
func (w *jsonRewriter) push(from int, c int32) bool {
	for _, s := range w.states[from:] {
		if s == c {
			return w.r.json[c].terminal
		}
	}
	w.states = append(w.states, c)
	return w.r.json[c].terminal
}

// replace writes the pseudonym of secret, as a JSON string, in place of
// in[start:end].
func (w *jsonRewriter) replace(start, end int, secret []byte) {
	if w.out == nil {
		w.out = make([]byte, 0, len(w.in)+len(w.in)/8+32)
	}
	w.out = append(w.out, w.in[w.last:start]...)
	w.out = append(w.out, '"')
	w.out = w.r.appendPseudonymBytes(w.out, secret)
	w.out = append(w.out, '"')
	w.last = end
	w.n++
}

// str reads a string starting at the opening quote, and reports whether it
// holds escapes.
func (w *jsonRewriter) str() (esc bool, err error) {
	w.pos++
	for w.pos < len(w.in) {
		c := w.in[w.pos]
		switch {
		case c == '"':
			w.pos++
			return esc, nil
		case c < 0x20:
			return esc, errJSONSyntax
		case c == '\\':
			esc = true
			w.pos++
			if w.pos == len(w.in) {
				return esc, errJSONEnd
			}
			switch w.in[w.pos] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				w.pos++
			case 'u':
				w.pos++
				for range 4 {
					if w.pos == len(w.in) {
						return esc, errJSONEnd
					}
					if !isHexDigit(w.in[w.pos]) {
						return esc, errJSONSyntax
					}
					w.pos++
				}
			default:
				return esc, errJSONSyntax
			}
		default:
			w.pos++
		}
	}
	return esc, errJSONEnd
}

func isHexDigit(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// number reads a number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (w *jsonRewriter) number() error {
	digits := func() (int, error) {
		n := 0
		for w.pos < len(w.in) && '0' <= w.in[w.pos] && w.in[w.pos] <= '9' {
			w.pos++
			n++
		}
		if n == 0 {
			if w.pos == len(w.in) {
				return 0, errJSONEnd
			}
			return 0, errJSONSyntax
		}
		return n, nil
	}
	if w.in[w.pos] == '-' {
		w.pos++
	}
	if w.pos == len(w.in) {
		return errJSONEnd
	}
	if w.in[w.pos] == '0' {
		w.pos++
	} else if _, err := digits(); err != nil {
		return err
	}
	if w.pos < len(w.in) && w.in[w.pos] == '.' {
		w.pos++
		if _, err := digits(); err != nil {
			return err
		}
	}
	if w.pos < len(w.in) && (w.in[w.pos] == 'e' || w.in[w.pos] == 'E') {
		w.pos++
		if w.pos < len(w.in) && (w.in[w.pos] == '+' || w.in[w.pos] == '-') {
			w.pos++
		}
		if _, err := digits(); err != nil {
			return err
		}
	}
	return nil
}

func (w *jsonRewriter) literal(lit string) error {
	for i := 0; i < len(lit); i++ {
		if w.pos == len(w.in) {
			return errJSONEnd
		}
		if w.in[w.pos] != lit[i] {
			return errJSONSyntax
		}
		w.pos++
	}
	return nil
}

// decodeJSONString decodes a valid JSON string literal the way encoding/json
// does (invalid UTF-8 and lone surrogates become U+FFFD).
func decodeJSONString(lit []byte) []byte {
	var s string
	if err := json.Unmarshal(lit, &s); err != nil {
		return lit // cannot happen: str accepted it
	}
	return []byte(s)
}
