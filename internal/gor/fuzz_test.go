package gor

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// checkAccounting checks that every payload is accounted for exactly once:
// as a request (one per exchange), a paired response, an orphan, a
// replayed response or a malformed payload.
func checkAccounting(t *testing.T, st Stats) {
	t.Helper()
	var malformed uint64
	for _, n := range st.Malformed {
		malformed += n
	}
	paired := st.Exchanges - st.ResponsesMissing
	if got := st.Exchanges + paired + st.OrphanResponses + st.ReplayedSkipped + malformed; got != st.Payloads {
		t.Errorf("%d payloads, but %d accounted for: %+v", st.Payloads, got, st)
	}
}

// TestAccountingAndWarnings: over every fixture, each payload is accounted
// for, and each malformed one was logged as a warning.
func TestAccountingAndWarnings(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.gor*"))
	if err != nil || len(files) == 0 {
		t.Fatal("no fixtures", err)
	}
	for _, file := range files {
		for _, cfg := range []Config{{}, {MaxPayload: 150, PairWindow: 1, BodyCap: 4}} {
			var logs bytes.Buffer
			cfg.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
			f, err := OpenFile(file)
			if err != nil {
				t.Fatal(err)
			}
			r := NewReader(f, cfg)
			for {
				if _, err := r.Next(); err != nil {
					break
				}
			}
			f.Close()
			st := r.Stats()
			checkAccounting(t, st)
			var malformed uint64
			for _, n := range st.Malformed {
				malformed += n
			}
			if warned := strings.Count(logs.String(), "skipping malformed GoReplay payload"); uint64(warned) != malformed {
				t.Errorf("%s: %d malformed payloads, %d warnings:\n%s", file, malformed, warned, logs.String())
			}
		}
	}
}

// FuzzReader: arbitrary bytes never make the Reader panic, hold more than
// its limits allow, or lose count of a payload.
func FuzzReader(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.gor"))
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("1 a 1 1\nGET / HTTP/1.1\r\n\r\n" + joinSeparator + "2 a 2 1\nHTTP/1.1 200 OK\r\n\r\n"))
	f.Add([]byte("2 a 2 1\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n" + joinSeparator + "1 a 1\nGET / HTTP/1.1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg := Config{MaxPayload: 512, PairWindow: 4, PendingBytes: 4 << 10, BodyCap: 64, Logger: quietLogger()}
		// An estimate of one message's size is linear in its payload (a
		// header costs at most 64 bytes more than its text).
		maxMessage := int64(256 + 65*cfg.MaxPayload)
		r := NewReader(bytes.NewReader(data), cfg)
		n := 0
		for {
			ex, err := r.Next()
			if err != nil {
				if !errors.Is(err, io.EOF) {
					t.Fatalf("Next: %v", err)
				}
				break
			}
			checkExchange(t, ex)
			if n++; n > len(data) {
				t.Fatal("more exchanges than bytes")
			}
			if len(r.queue) > cfg.PairWindow+1 || len(r.earlyQ) > cfg.PairWindow+1 {
				t.Fatalf("%d requests and %d responses held, window %d", len(r.queue), len(r.earlyQ), cfg.PairWindow)
			}
			if r.held < 0 || r.held > cfg.PendingBytes+2*maxMessage {
				t.Fatalf("%d bytes held, limit %d", r.held, cfg.PendingBytes)
			}
			if cap(r.sc.buf) > 2*(cfg.MaxPayload+64<<10) {
				t.Fatalf("payload buffer of %d bytes, limit %d", cap(r.sc.buf), cfg.MaxPayload)
			}
		}
		if _, err := r.Next(); !errors.Is(err, io.EOF) {
			t.Fatalf("Next after the end: %v, want io.EOF", err)
		}
		if r.held != 0 || len(r.waiting) != 0 || len(r.early) != 0 || len(r.queue) != 0 || len(r.earlyQ) != 0 {
			t.Fatalf("at the end still held: %d bytes, %d waiting, %d early", r.held, len(r.waiting), len(r.early))
		}
		checkAccounting(t, r.Stats())
	})
}
