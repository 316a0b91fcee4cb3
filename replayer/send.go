package replayer

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/tapline/tapline/internal/tlsca"
	"github.com/tapline/tapline/schema"
)

// HeaderReplay is the default header set on every replayed request to the
// exchange id (Rules.TagHeader renames it), so staging logs can tell
// replayed traffic apart.
const HeaderReplay = "X-Tapline-Replay"

// hopByHop are connection-level headers a proxy must not forward
// (RFC 9110 §7.6.1); Content-Length and Host are set from the request.
var hopByHop = map[string]bool{
	"connection": true, "proxy-connection": true, "keep-alive": true, "te": true,
	"trailer": true, "transfer-encoding": true, "upgrade": true,
	"content-length": true, "host": true,
}

// maxResponseHeaderBytes bounds a target's status line and headers; a
// target that sends more gets an error outcome. It is the recorder's bound
// (recorder/httpparse.go), and keeps the part of a result that cannot be
// cut (everything but bodies) far under Kafka's 1 MiB for up to a dozen
// targets.
const maxResponseHeaderBytes = 64 << 10

// sender sends replayed requests; safe for concurrent use.
type sender struct {
	client  *http.Client
	bodyCap int
	rewrite *Rewriter // nil: none
}

func newSender(workers int, timeout, connectTimeout time.Duration, tlsConfig *tls.Config, bodyCap int) *sender {
	return &sender{
		client: &http.Client{
			Timeout: timeout,
			Transport: &http.Transport{
				Proxy:               nil, // never through an environment proxy
				DialContext:         (&net.Dialer{Timeout: connectTimeout}).DialContext,
				TLSClientConfig:     tlsConfig,
				TLSHandshakeTimeout: connectTimeout,
				MaxIdleConnsPerHost: workers,
				// As the recorder bounds a header block: a result must
				// fit Kafka's record limit, and only bodies can be cut.
				MaxResponseHeaderBytes: maxResponseHeaderBytes,
				DisableCompression:     true, // compare bytes as the target sent them
				IdleConnTimeout:        90 * time.Second,
			},
			// A redirect is an answer to compare, not something to follow.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		bodyCap: bodyCap,
	}
}

// buildRequest makes a new outgoing request for target t from the recorded
// request. The recorded request is not modified.
func buildRequest(ctx context.Context, t Target, ex *schema.Exchange, rw *Rewriter) (*http.Request, error) {
	in := ex.GetRequest()
	if in.GetBodyTruncated() {
		return nil, fmt.Errorf("request body was truncated when recorded (%d of %d bytes: the body cap, or Kafka's record limit); not sent", len(in.Body), in.BodySize)
	}
	ref, err := url.Parse(in.GetTarget())
	if err != nil {
		return nil, fmt.Errorf("recorded target %q: %w", in.GetTarget(), err)
	}
	if rewritten := rw.rewritePath(ref.Path); rewritten != ref.Path {
		ref.Path, ref.RawPath = rewritten, ""
	}
	u := *t.URL
	u.Path = strings.TrimSuffix(t.URL.Path, "/") + ref.Path
	u.RawPath = ""
	if ref.RawPath != "" {
		u.RawPath = strings.TrimSuffix(t.URL.EscapedPath(), "/") + ref.RawPath
	}
	u.RawQuery = ref.RawQuery
	var body io.Reader
	if len(in.Body) > 0 {
		body = bytes.NewReader(in.Body)
	}
	out, err := http.NewRequestWithContext(ctx, in.GetMethod(), u.String(), body)
	if err != nil {
		return nil, fmt.Errorf("building request: %w", err)
	}
	// Assign header names as recorded (not canonicalised), in order.
	connectionTokens := map[string]bool{}
	for _, h := range in.Headers {
		if strings.EqualFold(h.Name, "Connection") {
			for _, tok := range strings.Split(h.Value, ",") {
				connectionTokens[strings.ToLower(strings.TrimSpace(tok))] = true
			}
		}
	}
	for _, h := range in.Headers {
		lower := strings.ToLower(h.Name)
		if hopByHop[lower] || connectionTokens[lower] {
			continue
		}
		out.Header[h.Name] = append(out.Header[h.Name], h.Value)
	}
	if out.Header.Get("User-Agent") == "" {
		out.Header.Set("User-Agent", "") // empty: Go then sends none rather than its own
	}
	out.Header.Set(rw.tag(), ex.GetId())
	if in.GetHost() != "" {
		out.Host = in.GetHost() // keep the recorded Host: virtual hosts route on it
	}
	rw.apply(out)
	return out, nil
}

// send sends ex to t and returns the outcome and, when it is an error,
// its kind (also in the outcome; "" for a response). Errors are recorded
// in the outcome, never returned.
func (s *sender) send(ctx context.Context, t Target, ex *schema.Exchange) (*schema.TargetOutcome, string) {
	out := &schema.TargetOutcome{Target: t.Name}
	req, err := buildRequest(ctx, t, ex, s.rewrite)
	if err != nil {
		out.Result = &schema.TargetOutcome_Error{Error: err.Error()}
		out.ErrorKind = ErrRequest
		return out, out.ErrorKind
	}
	out.Url = req.URL.String()
	start := time.Now()
	out.SentUnixNano = start.UnixNano()
	resp, err := s.client.Do(req)
	if err != nil {
		out.LatencyNanos = int64(time.Since(start))
		out.Result = &schema.TargetOutcome_Error{Error: err.Error()}
		out.ErrorKind = errorKind(err)
		return out, out.ErrorKind
	}
	defer resp.Body.Close()
	body, size, err := readCapped(resp.Body, s.bodyCap)
	out.LatencyNanos = int64(time.Since(start))
	if err != nil {
		out.Result = &schema.TargetOutcome_Error{Error: fmt.Sprintf("reading response body after %d bytes: %v", size, err)}
		out.ErrorKind = errorKind(err)
		return out, out.ErrorKind
	}
	out.Result = &schema.TargetOutcome_Response{Response: &schema.Response{
		Status:        int32(resp.StatusCode),
		Proto:         resp.Proto,
		Reason:        strings.TrimSpace(strings.TrimPrefix(resp.Status, fmt.Sprint(resp.StatusCode))),
		Headers:       headerList(resp.Header),
		Body:          body,
		BodyTruncated: size > int64(len(body)),
		BodySize:      size,
	}}
	return out, ""
}

// readCapped reads r to the end, keeping at most limit bytes.
func readCapped(r io.Reader, limit int) ([]byte, int64, error) {
	var buf bytes.Buffer
	n, err := io.Copy(&buf, io.LimitReader(r, int64(limit)))
	if err != nil {
		return buf.Bytes(), n, err
	}
	rest, err := io.Copy(io.Discard, r)
	return buf.Bytes(), n + rest, err
}

// headerList turns a response header map into the schema's list, sorted by
// name (Go's client does not keep the order of the wire).
func headerList(h http.Header) []*schema.Header {
	names := make([]string, 0, len(h))
	for name := range h {
		names = append(names, name)
	}
	sort.Strings(names)
	var out []*schema.Header
	for _, name := range names {
		for _, v := range h[name] {
			out = append(out, &schema.Header{Name: name, Value: v})
		}
	}
	return out
}

// tlsConfig builds the client TLS settings: extra trusted CAs from a PEM
// file, and optionally no verification at all (for staging with
// self-signed certificates; say so loudly).
func tlsConfig(caFile string, skipVerify bool) (*tls.Config, error) {
	cfg := &tls.Config{InsecureSkipVerify: skipVerify} //nolint:gosec // opt-in, for staging
	if caFile == "" {
		return cfg, nil
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if err := tlsca.AddFile(pool, caFile); err != nil {
		return nil, err
	}
	cfg.RootCAs = pool
	return cfg, nil
}
