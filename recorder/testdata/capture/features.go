package main

import (
	"bufio"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"time"
)

// features drives raw HTTP/1.x over TCP for the protocol features a Go
// http.Client does not produce: pipelining, 100-continue, 204/304,
// chunked trailers, an upgrade, and a response delimited by close. It
// prints one line per exchange as the client saw it.
func features(addr string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(featureServer)}
	go srv.Serve(ln)
	defer srv.Close()

	// Pipelining: two requests in one write, two responses in order.
	raw(addr, func(c net.Conn, r *bufio.Reader) {
		io.WriteString(c, "GET /p1 HTTP/1.1\r\nHost: x\r\n\r\nGET /p2 HTTP/1.1\r\nHost: x\r\n\r\n")
		readResponse(r, "GET", "/p1")
		readResponse(r, "GET", "/p2")
	})
	// 100-continue: headers, wait for 100, then the body.
	raw(addr, func(c net.Conn, r *bufio.Reader) {
		io.WriteString(c, "POST /upload HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 11\r\n\r\n")
		line, _ := r.ReadString('\n')
		if !strings.HasPrefix(line, "HTTP/1.1 100") {
			log.Fatalf("want 100 Continue, got %q", line)
		}
		r.ReadString('\n') // the empty line after the interim response
		io.WriteString(c, "hello world")
		readResponse(r, "POST", "/upload")
	})
	// 204 and 304: no bodies whatever the headers say.
	raw(addr, func(c net.Conn, r *bufio.Reader) {
		io.WriteString(c, "DELETE /thing HTTP/1.1\r\nHost: x\r\n\r\n")
		readResponse(r, "DELETE", "/thing")
		io.WriteString(c, "GET /etag HTTP/1.1\r\nHost: x\r\nIf-None-Match: \"v1\"\r\n\r\n")
		readResponse(r, "GET", "/etag")
		io.WriteString(c, "HEAD /etag HTTP/1.1\r\nHost: x\r\n\r\n")
		readResponse(r, "HEAD", "/etag")
	})
	// Chunked with a trailer, and a chunked request body.
	raw(addr, func(c net.Conn, r *bufio.Reader) {
		io.WriteString(c, "GET /trailer HTTP/1.1\r\nHost: x\r\n\r\n")
		readResponse(r, "GET", "/trailer")
		io.WriteString(c, "PUT /chunks HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
		readResponse(r, "PUT", "/chunks")
	})
	// An upgrade: the 101 exchange is recorded, the rest is not HTTP.
	raw(addr, func(c net.Conn, r *bufio.Reader) {
		io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		readResponse(r, "GET", "/ws")
		io.WriteString(c, "\x81\x05hello GET /not-http HTTP/1.1\r\n\r\n")
		buf := make([]byte, 7)
		io.ReadFull(r, buf)
	})
	// HTTP/1.0, the response delimited by the server closing.
	raw(addr, func(c net.Conn, r *bufio.Reader) {
		io.WriteString(c, "GET /legacy HTTP/1.0\r\n\r\n")
		readResponse(r, "GET", "/legacy")
	})
	time.Sleep(100 * time.Millisecond)
}

func raw(addr string, f func(net.Conn, *bufio.Reader)) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	f(c, bufio.NewReader(c))
}

// readResponse reads one response and prints what the client saw.
func readResponse(r *bufio.Reader, method, target string) {
	req, _ := http.NewRequest(method, "http://x"+target, nil)
	resp, err := http.ReadResponse(r, req)
	if err != nil {
		log.Fatalf("%s %s: %v", method, target, err)
	}
	var body []byte
	if resp.StatusCode != http.StatusSwitchingProtocols {
		body, _ = io.ReadAll(resp.Body)
	}
	resp.Body.Close()
	fmt.Printf("%s %s %d %q\n", method, target, resp.StatusCode, body)
}

func featureServer(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/p1", "/p2":
		io.WriteString(w, "pipelined "+r.URL.Path)
	case "/upload", "/chunks":
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "got %d bytes: %s", len(b), b)
	case "/thing":
		w.WriteHeader(http.StatusNoContent)
	case "/etag":
		w.Header().Set("ETag", `"v1"`)
		if r.Header.Get("If-None-Match") == `"v1"` {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("Content-Length", "7")
		io.WriteString(w, "version")
	case "/trailer":
		w.Header().Set("Trailer", "X-Checksum")
		io.WriteString(w, "chunk one, ")
		w.(http.Flusher).Flush()
		io.WriteString(w, "chunk two")
		w.Header().Set("X-Checksum", "abc123")
	case "/ws":
		c, brw, _ := w.(http.Hijacker).Hijack()
		defer c.Close()
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		buf := make([]byte, 7)
		io.ReadFull(brw, buf)
		c.Write([]byte("\x81\x05world"))
	case "/legacy":
		c, _, _ := w.(http.Hijacker).Hijack()
		io.WriteString(c, "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the connection closes")
		c.Close()
	}
}
