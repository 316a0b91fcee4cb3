// Command capture drives real HTTP traffic over loopback at a small
// "production" server, for recording with tcpdump into a pcap fixture.
// capture.sh runs it; the exchanges it makes are listed in want.txt, which
// the recorder tests compare against.
package main

import (
	"bytes"
	"compress/gzip"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:18080", "address of the production server")
	feat := flag.Bool("features", false, "drive the raw protocol-feature scenarios instead (features.go)")
	flag.Parse()
	if *feat {
		features(*addr)
		return
	}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(production)}
	go srv.Serve(ln)

	base := "http://" + *addr
	client := &http.Client{Transport: &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 1}}
	do := func(method, path, body string, hdr ...string) {
		var r io.Reader
		if body != "" {
			r = strings.NewReader(body)
		}
		req, err := http.NewRequest(method, base+path, r)
		if err != nil {
			log.Fatal(err)
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Add(hdr[i], hdr[i+1])
		}
		resp, err := client.Do(req)
		if err != nil {
			log.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		fmt.Printf("%s %s %d\n", method, path, resp.StatusCode)
	}
	// One keep-alive connection carries all of these, in order.
	do("GET", "/users/1", "", "X-Trace", "a", "X-Trace", "b")
	do("GET", "/users/2?verbose=1", "")
	do("POST", "/users", `{"name":"ada"}`, "Content-Type", "application/json")
	do("GET", "/chunked", "")
	do("HEAD", "/users/1", "")
	do("GET", "/missing", "")
	do("GET", "/gzip", "", "Accept-Encoding", "gzip")
	do("GET", "/big", "")
	do("DELETE", "/users/2", "")
	client.CloseIdleConnections()
	// A second connection, closed by the server after one response.
	do("GET", "/close", "")
	time.Sleep(100 * time.Millisecond)
	srv.Close()
}

func production(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	switch r.URL.Path {
	case "/users/1", "/users/2":
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id":%q,"name":"user"}`, strings.TrimPrefix(r.URL.Path, "/users/"))
	case "/users":
		if r.Method != "POST" {
			http.Error(w, "method", 405)
			return
		}
		w.WriteHeader(201)
		io.WriteString(w, `{"id":"3"}`)
	case "/chunked":
		f := w.(http.Flusher)
		for i := 0; i < 3; i++ {
			fmt.Fprintf(w, "part %d\n", i)
			f.Flush()
		}
	case "/gzip":
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		zw.Write([]byte(strings.Repeat("compressed ", 50)))
		zw.Close()
		w.Header().Set("Content-Encoding", "gzip")
		w.Write(b.Bytes())
	case "/big":
		w.Header().Set("Content-Length", "200000")
		w.Write(bytes.Repeat([]byte("0123456789"), 20000))
	case "/close":
		w.Header().Set("Connection", "close")
		io.WriteString(w, "bye")
	default:
		if r.Method == "DELETE" {
			w.WriteHeader(204)
			return
		}
		http.NotFound(w, r)
	}
}
