package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// profile names a kind of traffic. Every request is derived from its
// request id (rid) alone, so a run is reproducible and every target is
// unique: the ground truth can be looked up by method and target.
type profile string

const (
	// profileSmall is small JSON exchanges: 80 % GET of a ~150-byte JSON
	// document, 20 % POST of a ~100-byte JSON document answered 201.
	profileSmall profile = "small"
	// profileMix is a realistic API mix (per 10 000 requests): 5 500 small
	// JSON GETs, 300 GETs answered 404, 100 DELETEs answered 204, 2 200
	// POSTs of 1–10 KiB JSON, 800 chunked feeds (3–6 flushed chunks), 1 090
	// gzip reports (Content-Encoding: gzip, 2–24 KiB before compression,
	// mostly chunked), 5 downloads and 5 uploads of 256 KiB.
	profileMix profile = "mix"
)

func parseProfile(s string) (profile, error) {
	switch p := profile(s); p {
	case profileSmall, profileMix:
		return p, nil
	}
	return "", fmt.Errorf("profile %q: want small or mix", s)
}

const bigBody = 256 << 10

// mix64 is splitmix64's finaliser: a well-spread hash of a request id.
func mix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// filler is incompressible-looking printable text that bodies are cut from.
var filler = func() []byte {
	const hex = "0123456789abcdef"
	b := make([]byte, 2*bigBody)
	x := uint64(1)
	for i := range b {
		x = mix64(x)
		b[i] = hex[x&15]
	}
	return b
}()

// fill returns n bytes of filler starting at an offset chosen by seed.
func fill(seed uint64, n int) []byte {
	off := int(seed % uint64(len(filler)-n))
	return filler[off : off+n]
}

// jsonBody is `{"rid":N,<prefix>"pad":"…"}` of exactly size bytes (or a
// little more when size is too small to hold the fields).
func jsonBody(rid uint64, prefix string, size int) []byte {
	b := fmt.Appendf(make([]byte, 0, size+64), `{"rid":%d,%s"pad":"`, rid, prefix)
	if pad := size - len(b) - 2; pad > 0 {
		b = append(b, fill(mix64(rid^0x5eed), pad)...)
	}
	return append(b, `"}`...)
}

// call is one request a client makes.
type call struct {
	method, target string
	body           []byte
	header         [][2]string
}

// request is the call with id rid in profile p.
func (p profile) request(rid uint64) call {
	h := mix64(rid)
	pick := h % 10000
	id := strconv.FormatUint(rid, 10)
	json := [][2]string{{"Content-Type", "application/json"}}
	if p == profileSmall {
		if pick < 8000 {
			return call{method: "GET", target: "/api/users/" + id}
		}
		return call{method: "POST", target: "/api/users?rid=" + id, header: json,
			body: jsonBody(rid, `"name":"user-`+id+`",`, 80+int(h>>32%40))}
	}
	switch {
	case pick < 5500:
		t := "/api/users/" + id
		if h>>20%4 == 0 {
			t += "?expand=roles&fields=id,name,email"
		}
		return call{method: "GET", target: t}
	case pick < 5800:
		return call{method: "GET", target: "/api/users/" + id + "/avatar"}
	case pick < 5900:
		return call{method: "DELETE", target: "/api/sessions/" + id}
	case pick < 8100:
		return call{method: "POST", target: "/api/orders?rid=" + id, header: json,
			body: jsonBody(rid, `"customer":"c-`+id+`","items":[{"sku":"A-1","qty":2}],`, 1024+int(h>>32%(9*1024+1)))}
	case pick < 8900:
		return call{method: "GET", target: "/api/feed/" + id + "?page=" + strconv.FormatUint(h>>40%50, 10)}
	case pick < 9990:
		return call{method: "GET", target: "/api/reports/" + id, header: [][2]string{{"Accept-Encoding", "gzip"}}}
	case pick < 9995:
		return call{method: "GET", target: "/api/exports/" + id}
	default:
		return call{method: "POST", target: "/api/uploads?rid=" + id, header: [][2]string{{"Content-Type", "application/octet-stream"}},
			body: fill(mix64(rid^0xb16), bigBody)}
	}
}

// server is the "production" application the traffic is sent to.
type server struct {
	ln  net.Listener
	srv *http.Server
	gz  sync.Pool
}

func startServer() (*server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("starting the traffic server: %w", err)
	}
	s := &server{ln: ln}
	s.srv = &http.Server{Handler: http.HandlerFunc(s.serve), ReadHeaderTimeout: time.Minute}
	go s.srv.Serve(ln)
	return s, nil
}

func (s *server) port() int   { return s.ln.Addr().(*net.TCPAddr).Port }
func (s *server) url() string { return "http://" + s.ln.Addr().String() }
func (s *server) close()      { s.srv.Close() }

// ridOf finds the request id in the path or in ?rid=.
func ridOf(r *http.Request) uint64 {
	if q := r.URL.Query().Get("rid"); q != "" {
		n, _ := strconv.ParseUint(q, 10, 64)
		return n
	}
	parts := strings.Split(r.URL.Path, "/")
	for i := len(parts) - 1; i >= 0; i-- {
		if n, err := strconv.ParseUint(parts[i], 10, 64); err == nil {
			return n
		}
	}
	return 0
}

func (s *server) serve(w http.ResponseWriter, r *http.Request) {
	n, _ := io.Copy(io.Discard, r.Body)
	rid := ridOf(r)
	h := mix64(rid ^ 0xfeed)
	p := r.URL.Path
	hdr := w.Header()
	hdr.Set("Content-Type", "application/json")
	hdr.Set("X-Request-Id", strconv.FormatUint(rid, 10))
	switch {
	case r.Method == "GET" && strings.HasSuffix(p, "/avatar"):
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprintf(w, `{"error":"not found","rid":%d}`, rid)
	case r.Method == "GET" && strings.HasPrefix(p, "/api/users/"):
		fmt.Fprintf(w, `{"id":%d,"name":"user-%d","email":"user-%d@example.com","roles":["reader"],"created":"2026-11-28T00:00:00Z","score":%d}`,
			rid, rid, rid, h%1000)
	case r.Method == "POST" && (p == "/api/users" || p == "/api/orders" || p == "/api/uploads"):
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"id":%d,"received":%d,"status":"accepted"}`, rid, n)
	case r.Method == "DELETE":
		w.WriteHeader(http.StatusNoContent)
	case strings.HasPrefix(p, "/api/feed/"):
		f := w.(http.Flusher)
		parts := 3 + int(h%4)
		for i := range parts {
			w.Write(jsonBody(rid+uint64(i), `"part":`+strconv.Itoa(i)+`,`, 100+int(mix64(h+uint64(i))%500)))
			w.Write([]byte("\n"))
			f.Flush()
		}
	case strings.HasPrefix(p, "/api/reports/"):
		hdr.Set("Content-Encoding", "gzip")
		zw, _ := s.gz.Get().(*gzip.Writer)
		if zw == nil {
			zw, _ = gzip.NewWriterLevel(w, gzip.BestSpeed)
		} else {
			zw.Reset(w)
		}
		// Half filler (compresses to ~60 %), half repeated JSON.
		size := 2048 + int(h%(22*1024))
		zw.Write(jsonBody(rid, strings.Repeat(`"k":"v",`, size/16), size))
		zw.Close()
		s.gz.Put(zw)
	case strings.HasPrefix(p, "/api/exports/"):
		hdr.Set("Content-Type", "application/octet-stream")
		hdr.Set("Content-Length", strconv.Itoa(bigBody))
		w.Write(fill(h, bigBody))
	default:
		w.WriteHeader(http.StatusNotFound)
	}
}

// exchange is one request/response pair as the client saw it: the ground
// truth the recorder is checked against.
type exchange struct {
	Conn    string // the client's address, "127.0.0.1:port": the connection
	Seq     int    // position on the connection, from 0
	Method  string
	Target  string
	Status  int
	ReqLen  int64
	ReqSHA  [32]byte
	RespLen int64
	RespSHA [32]byte
}

// client is one keep-alive connection (its own Transport, one connection
// at a time) that logs what it sent and received.
type client struct {
	base string
	tr   *http.Transport
	hc   *http.Client
	tc   *httptrace.ClientTrace
	conn string // local address of the connection in use, set by GotConn
	seq  map[string]int
	log  []exchange
}

func newClient(base string) *client {
	c := &client{base: base, seq: map[string]int{}}
	c.tr = &http.Transport{
		DisableCompression:  true, // receive the body as sent, gzip included
		MaxIdleConnsPerHost: 1,
		MaxConnsPerHost:     1,
		IdleConnTimeout:     time.Hour,
	}
	c.hc = &http.Client{Transport: c.tr, Timeout: time.Minute}
	c.tc = &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) { c.conn = info.Conn.LocalAddr().String() }}
	return c
}

func (c *client) do(ctx context.Context, cl call) error {
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, c.tc), cl.method, c.base+cl.target, bytes.NewReader(cl.body))
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", "tapline-bench/1")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Authorization", "Bearer 6f1c2d9e0b7a4c3f8e5d1a2b9c0d7e6f")
	for _, kv := range cl.header {
		req.Header.Set(kv[0], kv[1])
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", cl.method, cl.target, err)
	}
	h := sha256.New()
	n, err := io.Copy(h, resp.Body)
	resp.Body.Close()
	if err != nil {
		return fmt.Errorf("%s %s: reading the response: %w", cl.method, cl.target, err)
	}
	e := exchange{Conn: c.conn, Seq: c.seq[c.conn], Method: cl.method, Target: cl.target, Status: resp.StatusCode,
		ReqLen: int64(len(cl.body)), ReqSHA: sha256.Sum256(cl.body), RespLen: n}
	h.Sum(e.RespSHA[:0])
	c.seq[c.conn]++
	c.log = append(c.log, e)
	return nil
}

// load is traffic to send: requests with ids 0..n-1 (or until duration
// passes, when n is 0) over conns keep-alive connections, paced at rate
// requests per second on a fixed schedule (request rid is due at
// rid/rate), or as fast as the connections go when rate is 0.
type load struct {
	base     string
	prof     profile
	conns    int
	rate     float64
	n        uint64
	duration time.Duration
}

type loadResult struct {
	truth   []exchange
	elapsed time.Duration // from the first request to the last response
}

func (l load) run(ctx context.Context) (loadResult, error) {
	var (
		next    atomic.Uint64
		wg      sync.WaitGroup
		mu      sync.Mutex
		firstEr error
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	clients := make([]*client, l.conns)
	start := time.Now()
	deadline := start.Add(l.duration)
	for i := range clients {
		c := newClient(l.base)
		clients[i] = c
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				rid := next.Add(1) - 1
				if l.n > 0 && rid >= l.n {
					return
				}
				if l.rate > 0 {
					due := start.Add(time.Duration(float64(rid) / l.rate * float64(time.Second)))
					if l.n == 0 && due.After(deadline) {
						return
					}
					if d := time.Until(due); d > 0 {
						time.Sleep(d)
					}
				} else if l.n == 0 && time.Now().After(deadline) {
					return
				}
				if err := c.do(ctx, l.prof.request(rid)); err != nil {
					mu.Lock()
					if firstEr == nil {
						firstEr = err
					}
					mu.Unlock()
					cancel()
					return
				}
			}
		}()
	}
	wg.Wait()
	res := loadResult{elapsed: time.Since(start)}
	for _, c := range clients {
		// Close the connections so their FINs are captured too.
		c.tr.CloseIdleConnections()
		res.truth = append(res.truth, c.log...)
	}
	return res, firstEr
}
