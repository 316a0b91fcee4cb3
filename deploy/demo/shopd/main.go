// Command shopd runs the demo shop of deploy/demo/shop as a server, or
// sends it the demo traffic mix, for the docker-compose and Kubernetes
// demos (make demo runs the shop in-process instead).
//
//	shopd -listen :8080                     production
//	shopd -listen :8080 -regression         staging, with the deliberate regression
//	shopd -drive http://shop:8080 -rate 20  the traffic mix, forever (until SIGTERM)
//	shopd -probe http://127.0.0.1:8080/health
//	                                        exit 0 when the URL answers 2xx (a healthcheck:
//	                                        the image has no curl)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tapline/tapline/deploy/demo/shop"
)

func main() {
	log.SetFlags(0)
	log.SetPrefix("shopd: ")
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		log.Print(err)
		os.Exit(1)
	}
}

// config is what the flags say.
type config struct {
	listen     string
	regression bool
	slowSearch time.Duration
	drive      string
	rate       float64
	conns      int
	probe      string
}

// newFlagSet returns shopd's flags bound to cfg; the tests use it to check
// the command lines in deploy/.
func newFlagSet(cfg *config, output io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("shopd", flag.ContinueOnError)
	fs.SetOutput(output)
	fs.StringVar(&cfg.listen, "listen", ":8080", "serve the shop on this address")
	fs.BoolVar(&cfg.regression, "regression", false, "be the staging build: /api/users/{id} renames name to full_name, /api/search is slower")
	fs.DurationVar(&cfg.slowSearch, "slow-search", 40*time.Millisecond, "with -regression: how much later /api/search answers")
	fs.StringVar(&cfg.drive, "drive", "", "instead of serving, send the demo traffic mix to this base URL (http://host:port) until stopped")
	fs.Float64Var(&cfg.rate, "rate", 20, "with -drive: requests per second")
	fs.IntVar(&cfg.conns, "conns", 8, "with -drive: keep-alive connections")
	fs.StringVar(&cfg.probe, "probe", "", "instead of serving, GET this URL once and exit 0 when it answers 2xx")
	return fs
}

func run(ctx context.Context, args []string, stderr io.Writer) error {
	var cfg config
	fs := newFlagSet(&cfg, stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q (flags only; -h lists them)", fs.Args())
	}
	switch {
	case cfg.probe != "":
		return probe(ctx, cfg.probe)
	case cfg.drive != "":
		if cfg.rate <= 0 || cfg.conns <= 0 {
			return fmt.Errorf("-rate %v and -conns %d must be positive", cfg.rate, cfg.conns)
		}
		return drive(ctx, cfg.drive, cfg.rate, cfg.conns, 30*time.Second)
	}
	return serve(ctx, cfg)
}

func serve(ctx context.Context, cfg config) error {
	l, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           shop.New(shop.Config{Regression: cfg.regression, SlowSearch: cfg.slowSearch}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	role := "production"
	if cfg.regression {
		role = "staging (with the regression)"
	}
	log.Printf("serving the demo shop as %s on %s", role, l.Addr())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(shutdown)
}

// drive sends the traffic mix to base at rate requests per second over
// conns keep-alive connections until ctx ends, logging a count every
// every. A failing request is counted and logged, never fatal: the shop
// may restart under a long-running demo.
func drive(ctx context.Context, base string, rate float64, conns int, every time.Duration) error {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conns}, Timeout: 10 * time.Second}
	var sent, failed atomic.Int64
	var lastErr atomic.Value
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				_, req := shop.Request(base, i)
				resp, err := client.Do(req.WithContext(ctx))
				sent.Add(1)
				if err != nil {
					failed.Add(1)
					lastErr.Store(err.Error())
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
	log.Printf("sending the demo traffic mix to %s at %v requests/s", base, rate)
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer tick.Stop()
	report := time.NewTicker(every)
	defer report.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			close(jobs)
			wg.Wait()
			log.Printf("stopped: %d requests sent, %d failed", sent.Load(), failed.Load())
			return nil
		case <-report.C:
			line := fmt.Sprintf("%d requests sent, %d failed", sent.Load(), failed.Load())
			if msg, _ := lastErr.Swap("").(string); msg != "" {
				line += " (last error: " + msg + ")"
			}
			log.Print(line)
		case <-tick.C:
			select {
			case jobs <- i:
			case <-ctx.Done():
			}
		}
	}
}

func probe(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return fmt.Errorf("-probe: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s answered %s", url, resp.Status)
	}
	return nil
}
