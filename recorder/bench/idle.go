package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// idleRow is the memory the live recorder holds for many idle connections.
type idleRow struct {
	Conns   int
	Before  liveMark // before any connection
	Held    liveMark // with every connection open and idle
	Result  liveResult
	OpenSec float64 // how long opening them and making the GETs took
}

// runIdle opens n keep-alive connections to a server captured live by a
// child recorder, makes one small GET on each (so the recorder holds state
// for every connection), leaves them idle, and reads the child's resident
// set. The connections are then closed and the n exchanges verified. The
// client ends are held by another child process, so that no process needs
// more than n descriptors (raising the hard limit needs CAP_SYS_RESOURCE).
func runIdle(ctx context.Context, dir string, n int, logf func(string, ...any)) (idleRow, error) {
	row := idleRow{Conns: n}
	if err := raiseOpenFiles(uint64(n + 1024)); err != nil {
		return row, err
	}
	srv, err := startServer()
	if err != nil {
		return row, err
	}
	defer srv.close()
	rec, err := startLiveChild(ctx, dir, srv.port())
	if err != nil {
		return row, err
	}
	defer func() {
		if rec.cmd.ProcessState == nil {
			rec.kill()
		}
	}()
	time.Sleep(300 * time.Millisecond)
	if row.Before, err = rec.mark(); err != nil {
		return row, err
	}

	path := filepath.Join(dir, "idle.truth.tsv")
	start := time.Now()
	clients, err := startChild(ctx, "child-idle-clients", "-addr", srv.ln.Addr().String(), "-n", fmt.Sprint(n), "-truth", path)
	if err != nil {
		return row, err
	}
	defer func() {
		if clients.cmd.ProcessState == nil {
			clients.kill()
		}
	}()
	if _, err := clients.expect("OPEN"); err != nil {
		return row, fmt.Errorf("opening %d idle connections: %w", n, err)
	}
	row.OpenSec = since(start)
	time.Sleep(3 * time.Second) // idle
	if row.Held, err = rec.mark(); err != nil {
		return row, err
	}
	logf("idle: %d connections opened in %.1fs and held, recorder RSS %.1f MiB (peak %.1f MiB, Go heap %.1f MiB)",
		n, row.OpenSec, mib(row.Held.Mem.RSSKiB), mib(row.Held.Mem.HWMKiB), float64(row.Held.Mem.HeapInuse)/(1<<20))
	if _, err := io.WriteString(clients.in, "close\n"); err != nil {
		return row, err
	}
	if _, err := clients.expect("CLOSED"); err != nil {
		return row, err
	}
	clients.in.Close()
	if err := clients.cmd.Wait(); err != nil {
		return row, fmt.Errorf("idle clients: %w", err)
	}
	time.Sleep(time.Second)
	row.Result, err = rec.stop(path)
	return row, err
}

// childIdleClients runs in a child process: it opens -n connections to
// -addr, makes one GET on each, writes the ground truth to -truth, prints
// OPEN and keeps the connections open until it reads "close" on stdin,
// then closes them and prints CLOSED.
func childIdleClients(args []string) error {
	fs := flag.NewFlagSet("child-idle-clients", flag.ContinueOnError)
	addr := fs.String("addr", "", "server address")
	n := fs.Int("n", 10000, "connections")
	path := fs.String("truth", "", "where to write the ground truth")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := raiseOpenFiles(uint64(*n + 1024)); err != nil {
		return err
	}
	conns := make([]net.Conn, *n)
	truth := make([]exchange, *n)
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		gate  = make(chan struct{}, 64) // connections being opened at once
	)
	for i := range *n {
		wg.Add(1)
		gate <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-gate }()
			c, e, err := idleExchange(*addr, uint64(i))
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if first == nil {
					first = err
				}
				return
			}
			conns[i], truth[i] = c, e
		}()
	}
	wg.Wait()
	if first != nil {
		return first
	}
	if err := writeTruth(*path, truth); err != nil {
		return err
	}
	fmt.Println("OPEN")
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		if sc.Text() == "close" {
			for i, c := range conns {
				c.Close()
				conns[i] = nil
			}
			fmt.Println("CLOSED")
			return nil
		}
	}
	return errors.New("child-idle-clients: stdin closed before close")
}

// idleExchange opens a connection, makes one GET on it and leaves it open.
func idleExchange(addr string, rid uint64) (net.Conn, exchange, error) {
	c, err := net.DialTimeout("tcp", addr, 30*time.Second)
	if err != nil {
		return nil, exchange{}, err
	}
	target := fmt.Sprintf("/api/users/%d", rid)
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: tapline-bench/1\r\nAccept: application/json\r\n\r\n", target, addr); err != nil {
		c.Close()
		return nil, exchange{}, err
	}
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		c.Close()
		return nil, exchange{}, err
	}
	h := sha256.New()
	n, err := io.Copy(h, resp.Body)
	resp.Body.Close()
	if err != nil {
		c.Close()
		return nil, exchange{}, err
	}
	e := exchange{Conn: c.LocalAddr().String(), Method: "GET", Target: target, Status: resp.StatusCode,
		ReqSHA: sha256.Sum256(nil), RespLen: n}
	h.Sum(e.RespSHA[:0])
	return c, e, nil
}
