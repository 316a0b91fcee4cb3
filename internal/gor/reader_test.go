package gor

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/uuid"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/tapline/tapline/schema"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// golden is what a golden file holds: every exchange a capture gave (as
// protojson, the form `tapline cat` users know), the error that ended it
// if not io.EOF, and the counters.
type golden struct {
	Exchanges []json.RawMessage `json:"exchanges"`
	Err       string            `json:"err,omitempty"`
	Stats     Stats             `json:"stats"`
}

// TestGolden reads each capture in testdata and compares everything it
// gives with testdata/NAME.golden.json. Run with -update after an intended
// change and review the diff.
func TestGolden(t *testing.T) {
	cases := []struct {
		name, file string
		cfg        Config
	}{
		{"pairs", "pairs.gor", Config{}},                                  // out of order, response first, HEAD, header case and repeats
		{"pairs_gzip", "pairs.gor.gz", Config{}},                          // the same, gzip-compressed: same golden content as pairs
		{"pairs_maxpayload", "pairs.gor", Config{MaxPayload: 170}},        // a request and a response refused as too large
		{"chunked", "chunked.gor", Config{}},                              // chunked bodies decoded, trailers, 100 Continue, gzip kept
		{"binary", "binary.gor", Config{}},                                // every byte value, the separator inside a line
		{"binary_bodycap", "binary.gor", Config{BodyCap: 8}},              // bodies cut at the cap, full sizes kept
		{"skips", "skips.gor", Config{}},                                  // type 3, orphan, no response, malformed of each kind
		{"cut", "cut.gor", Config{}},                                      // bodies cut by GoReplay, a last payload cut in its head
		{"cut_tail", "cut_tail.gor", Config{}},                            // the file ends inside a body
		{"handwritten", "handwritten.gor", Config{}},                      // LF, CRLF header lines and separators, older header forms
		{"window", "window.gor", Config{PairWindow: 2}},                   // a response past the window: timeout, then orphan
		{"recorder_name", "window.gor", Config{Recorder: "gor:prod-eu1"}}, // the name carried in every exchange
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, err := OpenFile(filepath.Join("testdata", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			tc.cfg.Logger = quietLogger()
			got := readGolden(t, NewReader(f, tc.cfg))
			file := filepath.Join("testdata", tc.name+".golden.json")
			if *update {
				if err := os.WriteFile(file, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(file)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs; got:\n%s", file, got)
			}
		})
	}
}

// readGolden reads r to its end and renders what it gave.
func readGolden(t *testing.T, r *Reader) []byte {
	t.Helper()
	var g golden
	g.Exchanges = []json.RawMessage{}
	for {
		ex, err := r.Next()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				g.Err = err.Error()
			}
			break
		}
		checkExchange(t, ex)
		b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(ex)
		if err != nil {
			t.Fatal(err)
		}
		g.Exchanges = append(g.Exchanges, b)
	}
	g.Stats = r.Stats()
	// json re-indents the exchanges, which also drops the whitespace that
	// protojson varies on purpose.
	out, err := json.MarshalIndent(g, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(out, '\n')
}

// checkExchange checks what every exchange must satisfy.
func checkExchange(t *testing.T, ex *schema.Exchange) {
	t.Helper()
	id, err := uuid.Parse(ex.GetId())
	if err != nil || id.Version() != 7 || id.Variant() != uuid.RFC4122 {
		t.Errorf("exchange id %q is not a UUIDv7 (%v)", ex.GetId(), err)
	}
	if ex.GetRequest() == nil || ex.GetOriginal() == nil || ex.GetSessionKey() == "" || ex.GetRecorder() == "" {
		t.Errorf("exchange %s lacks a request, an original, a session key or a recorder", ex.GetId())
	}
	idMilli := int64(id[0])<<40 | int64(id[1])<<32 | int64(id[2])<<24 | int64(id[3])<<16 | int64(id[4])<<8 | int64(id[5])
	if ms := ex.GetTimes().GetRequestFirstByteUnixNano() / 1e6; ms > 0 && ms != idMilli {
		t.Errorf("exchange id %s has time %d ms, want the request's %d", ex.GetId(), idMilli, ms)
	}
	for _, body := range []struct {
		b         []byte
		size      int64
		truncated bool
	}{
		{ex.GetRequest().GetBody(), ex.GetRequest().GetBodySize(), ex.GetRequest().GetBodyTruncated()},
		{ex.GetResponse().GetBody(), ex.GetResponse().GetBodySize(), ex.GetResponse().GetBodyTruncated()},
	} {
		if int64(len(body.b)) > body.size || (!body.truncated && int64(len(body.b)) != body.size) {
			t.Errorf("exchange %s: body of %d bytes, size %d, truncated %v", ex.GetId(), len(body.b), body.size, body.truncated)
		}
	}
}

func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// TestGzipSameAsPlain: a gzip capture gives exactly what the plain one
// does.
func TestGzipSameAsPlain(t *testing.T) {
	plain, err := os.ReadFile(filepath.Join("testdata", "pairs.golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	gz, err := os.ReadFile(filepath.Join("testdata", "pairs_gzip.golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(plain, gz) {
		t.Error("pairs.gor.gz reads differently from pairs.gor")
	}
}

// TestTruncatedGzip: a gzip capture cut short (gor was killed) gives every
// exchange it holds, then the read error.
func TestTruncatedGzip(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "pairs.gor.gz"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "cut.gor.gz")
	if err := os.WriteFile(path, data[:len(data)-40], 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := NewReader(f, Config{Logger: quietLogger()})
	var n int
	for {
		_, err = r.Next()
		if err != nil {
			break
		}
		n++
	}
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("err = %v, want io.ErrUnexpectedEOF after the exchanges", err)
	}
	if n == 0 {
		t.Error("no exchanges before the error")
	}
	if _, err2 := r.Next(); !errors.Is(err2, io.ErrUnexpectedEOF) {
		t.Errorf("Next after the error = %v, want the same error", err2)
	}
}

// TestIdempotentIDs: reading a capture twice gives the same ids; ids are
// distinct within it.
func TestIdempotentIDs(t *testing.T) {
	read := func() []string {
		f, err := OpenFile(filepath.Join("testdata", "pairs.gor"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		var ids []string
		for ex := range exchanges(t, NewReader(f, Config{Logger: quietLogger()})) {
			ids = append(ids, ex.GetId())
		}
		return ids
	}
	first, second := read(), read()
	if strings.Join(first, ",") != strings.Join(second, ",") {
		t.Errorf("ids differ between two reads:\n%v\n%v", first, second)
	}
	seen := map[string]bool{}
	for _, id := range first {
		if seen[id] {
			t.Errorf("id %s given twice", id)
		}
		seen[id] = true
	}
}

// exchanges yields every exchange of r, failing the test on an error other
// than io.EOF.
func exchanges(t *testing.T, r *Reader) func(func(*schema.Exchange) bool) {
	return func(yield func(*schema.Exchange) bool) {
		for {
			ex, err := r.Next()
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !yield(ex) {
				return
			}
		}
	}
}

// TestSessionKeyAndRedact: Redact runs before the session key is taken,
// so a redacted header keys by its pseudonym; without a key the GoReplay
// connection is used.
func TestSessionKeyAndRedact(t *testing.T) {
	capture := "1 c35a0050c0a8000a00000001 1700000000000000000 1000\nGET /a HTTP/1.1\r\nX-User: alice\r\n\r\n" + joinSeparator +
		"1 c35a0050c0a8000a00000002 1700000000100000000 1000\nGET /b HTTP/1.1\r\n\r\n" + joinSeparator
	cfg := Config{
		Logger: quietLogger(),
		Redact: func(ex *schema.Exchange) int {
			n := 0
			for _, h := range ex.GetRequest().GetHeaders() {
				if h.Name == "X-User" {
					h.Value, n = "pseudo-1", n+1
				}
			}
			return n
		},
		SessionKey: func(req *schema.Request) (string, bool) {
			for _, h := range req.GetHeaders() {
				if h.Name == "X-User" {
					return h.Value, true
				}
			}
			return "", false
		},
	}
	r := NewReader(strings.NewReader(capture), cfg)
	var keys []string
	for ex := range exchanges(t, r) {
		keys = append(keys, ex.GetSessionKey())
	}
	if want := "pseudo-1,gor:c35a0050c0a8000a"; strings.Join(keys, ",") != want {
		t.Errorf("session keys %v, want %s", keys, want)
	}
	if got := r.Stats().Redacted; got != 1 {
		t.Errorf("Stats.Redacted = %d, want 1", got)
	}
}

// TestJoin: a request and its response in two files (gor rotated its
// output) are paired when the files are joined, and a payload cut at the
// end of the first file does not swallow the first payload of the next.
func TestJoin(t *testing.T) {
	first := "1 j1 1700000000000000000 1000\nGET /a HTTP/1.1\r\n\r\n" + joinSeparator +
		"1 j2 1700000000100000000 1000\nPOST /cut HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc"
	second := "2 j1 1700000000001000000 1000\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n" + joinSeparator
	r := NewReader(Join(strings.NewReader(first), strings.NewReader(second)), Config{Logger: quietLogger()})
	var got []string
	for ex := range exchanges(t, r) {
		got = append(got, ex.GetRequest().GetTarget()+" "+strconv.Itoa(int(ex.GetResponse().GetStatus())))
	}
	if want := "/a 200,/cut 0"; strings.Join(got, ",") != want {
		t.Errorf("got %q, want %q", strings.Join(got, ","), want)
	}
	if st := r.Stats(); st.Cut != 1 || st.Payloads != 3 || st.ResponsesMissing != 1 {
		t.Errorf("stats %+v, want 3 payloads, 1 cut, 1 response missing", st)
	}
}

// TestOpenFileStdinAndErrors: "-" is stdin; a missing file is an error
// naming it.
func TestOpenFileStdinAndErrors(t *testing.T) {
	if _, err := OpenFile(filepath.Join(t.TempDir(), "nope.gor")); err == nil || !strings.Contains(err.Error(), "nope.gor") {
		t.Errorf("OpenFile(missing) = %v, want an error naming the file", err)
	}
	data, err := os.ReadFile(filepath.Join("testdata", "pairs.gor.gz"))
	if err != nil {
		t.Fatal(err)
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		pw.Write(data)
		pw.Close()
	}()
	old := os.Stdin
	os.Stdin = pr
	defer func() { os.Stdin = old }()
	f, err := OpenFile("-")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := NewReader(f, Config{Logger: quietLogger()})
	n := 0
	for range exchanges(t, r) {
		n++
	}
	if n != 4 {
		t.Errorf("%d exchanges from gzip on stdin, want 4", n)
	}
}
