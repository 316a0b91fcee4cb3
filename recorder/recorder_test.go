package recorder

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/tapline/tapline/internal/stream"
	"github.com/tapline/tapline/schema"
)

// memSink keeps what the recorder emits. Enqueue refuses once full.
type memSink struct {
	mu   sync.Mutex
	recs []stream.Record
	max  int // 0: unbounded
}

func (s *memSink) Enqueue(r stream.Record) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.max > 0 && len(s.recs) >= s.max {
		return false
	}
	s.recs = append(s.recs, r)
	return true
}

func (s *memSink) EnqueueWait(ctx context.Context, r stream.Record) error {
	if !s.Enqueue(r) {
		return fmt.Errorf("full")
	}
	return nil
}

func (s *memSink) exchanges(t *testing.T) []*schema.Exchange {
	t.Helper()
	var out []*schema.Exchange
	for _, r := range s.recs {
		e, err := schema.DecodeExchange(r.Value, r.Headers)
		if err != nil {
			t.Fatal(err)
		}
		if string(r.Key) != e.SessionKey {
			t.Fatalf("record key %q, session key %q", r.Key, e.SessionKey)
		}
		out = append(out, e)
	}
	return out
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func record(t *testing.T, sink *memSink, files ...string) Stats {
	t.Helper()
	r, err := New(Config{PcapFiles: files, Sink: sink, Name: "test", Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	return r.Stats()
}

// TestLoopbackCapture records testdata/loopback.pcap, real traffic made by
// testdata/capture (see capture.sh), and checks every exchange against
// what the client saw (loopback.want) and what the server sent.
func TestLoopbackCapture(t *testing.T) {
	sink := &memSink{}
	st := record(t, sink, "testdata/loopback.pcap")
	got := sink.exchanges(t)

	wantLines := readLines(t, "testdata/loopback.want")
	if len(got) != len(wantLines) {
		t.Fatalf("%d exchanges, want %d", len(got), len(wantLines))
	}
	for i, e := range got {
		line := fmt.Sprintf("%s %s %d", e.Request.Method, e.Request.Target, e.GetResponse().GetStatus())
		if line != wantLines[i] {
			t.Errorf("exchange %d: %q, want %q", i, line, wantLines[i])
		}
		if e.Request.Host != "127.0.0.1:18080" || e.Server.Port != 18080 || e.Server.Ip != "127.0.0.1" || e.Client.Port == 0 {
			t.Errorf("exchange %d: host %q server %v client %v", i, e.Request.Host, e.Server, e.Client)
		}
		tm := e.Times
		if !(tm.RequestFirstByteUnixNano > 0 && tm.RequestFirstByteUnixNano <= tm.RequestLastByteUnixNano &&
			tm.RequestLastByteUnixNano <= tm.ResponseFirstByteUnixNano && tm.ResponseFirstByteUnixNano <= tm.ResponseLastByteUnixNano) {
			t.Errorf("exchange %d: capture times out of order: %v", i, tm)
		}
	}
	byPath := map[string]*schema.Exchange{}
	for _, e := range got {
		byPath[e.Request.Method+" "+e.Request.Target] = e
	}

	if h := headerValues(byPath["GET /users/1"].Request.Headers, "X-Trace"); !equal(h, []string{"a", "b"}) {
		t.Errorf("repeated request header: %q", h)
	}
	if b := byPath["POST /users"].Request.Body; string(b) != `{"name":"ada"}` {
		t.Errorf("POST body %q", b)
	}
	if b := byPath["GET /chunked"].GetResponse().Body; string(b) != "part 0\npart 1\npart 2\n" {
		t.Errorf("chunked body %q (framing not removed?)", b)
	}
	head := byPath["HEAD /users/1"].GetResponse()
	if len(head.Body) != 0 || head.Status != 200 {
		t.Errorf("HEAD response: status %d body %q", head.Status, head.Body)
	}
	big := byPath["GET /big"].GetResponse()
	if !bytes.Equal(big.Body, bytes.Repeat([]byte("0123456789"), 20000)) || big.BodyTruncated || big.BodySize != 200000 {
		t.Errorf("big body: %d bytes, size %d, truncated %v; want 200000 exact", len(big.Body), big.BodySize, big.BodyTruncated)
	}
	if gz := byPath["GET /gzip"].GetResponse(); !bytes.HasPrefix(gz.Body, []byte{0x1f, 0x8b}) {
		t.Errorf("gzip body not kept as sent: % x", gz.Body[:min(4, len(gz.Body))])
	}
	if byPath["GET /users/1"].SessionKey == byPath["GET /close"].SessionKey {
		t.Errorf("two connections share a session key")
	}

	if st.Exchanges != uint64(len(wantLines)) || st.Connections != 2 || st.ResponsesMissing != 0 {
		t.Errorf("stats %+v", st)
	}
	for reason, n := range st.Drops {
		if n != 0 {
			t.Errorf("drop %s = %d, want 0", reason, n)
		}
	}
	if st.FileBytesRead != st.FileBytesTotal || st.FileBytesTotal == 0 {
		t.Errorf("progress %d of %d bytes", st.FileBytesRead, st.FileBytesTotal)
	}
}

// TestTruncatedCapture cuts the real capture file in the middle of a
// packet: the recorder keeps what it read, counts the file once as
// corrupt_file, emits the request whose response was cut off without it
// (CAPTURE_ENDED, its torn response counted as incomplete), and does not
// fail.
func TestTruncatedCapture(t *testing.T) {
	full, err := os.ReadFile("testdata/loopback.pcap")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		cut                         int
		packets, exchanges, missing uint64
		incomplete                  uint64
	}{
		{cut: 24 + 16 + 3, packets: 0},                                              // inside the first packet
		{cut: len(full) / 3, packets: 27, exchanges: 8, missing: 1, incomplete: 1},  // inside GET /big's response
		{cut: len(full) / 2, packets: 28, exchanges: 8, missing: 1, incomplete: 1},  // likewise, one packet on
		{cut: len(full) - 7, packets: 48, exchanges: 10, missing: 0, incomplete: 0}, // inside the last packet (a FIN)
	}
	for _, tc := range cases {
		t.Run(fmt.Sprint(tc.cut), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "cut.pcap")
			if err := os.WriteFile(path, full[:tc.cut], 0o644); err != nil {
				t.Fatal(err)
			}
			sink := &memSink{}
			st := record(t, sink, path)
			want := map[string]uint64{"corrupt_file": 1, "incomplete": tc.incomplete}
			for reason, n := range st.Drops {
				if n != want[reason] {
					t.Errorf("drop %s = %d, want %d", reason, n, want[reason])
				}
			}
			got := sink.exchanges(t)
			if st.Packets != tc.packets || st.Exchanges != tc.exchanges || uint64(len(got)) != tc.exchanges || st.ResponsesMissing != tc.missing {
				t.Errorf("%d packets, %d exchanges (%d in the sink), %d without a response; want %d, %d, %d",
					st.Packets, st.Exchanges, len(got), st.ResponsesMissing, tc.packets, tc.exchanges, tc.missing)
			}
			for _, e := range got {
				if r := e.GetResponseMissing(); r != nil && r.Reason != schema.MissingReason_MISSING_REASON_CAPTURE_ENDED {
					t.Errorf("%s %s: missing %v, want CAPTURE_ENDED", e.Request.Method, e.Request.Target, r.Reason)
				}
			}
		})
	}
}

func TestNotACapture(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.pcap")
	os.WriteFile(garbage, []byte("this is not a pcap file at all"), 0o644)
	empty := filepath.Join(dir, "empty.pcap")
	os.WriteFile(empty, nil, 0o644)
	for _, path := range []string{garbage, empty, filepath.Join(dir, "missing.pcap")} {
		r, err := New(Config{PcapFiles: []string{path}, Sink: &memSink{}, Logger: quietLogger()})
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Run(context.Background()); err == nil || !strings.Contains(err.Error(), filepath.Base(path)) {
			t.Errorf("%s: got %v, want an error naming the file", filepath.Base(path), err)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	if _, err := New(Config{Sink: &memSink{}}); err == nil {
		t.Error("no input accepted")
	}
	if _, err := New(Config{PcapFiles: []string{"x"}}); err == nil {
		t.Error("no sink accepted")
	}
}

func BenchmarkRecordLoopback(b *testing.B) {
	data, err := os.ReadFile("testdata/loopback.pcap")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		r, _ := New(Config{PcapFiles: []string{"testdata/loopback.pcap"}, Sink: &memSink{}, Logger: quietLogger()})
		if err := r.Run(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	return lines
}

func headerValues(hs []*schema.Header, name string) []string {
	var out []string
	for _, h := range hs {
		if strings.EqualFold(h.Name, name) {
			out = append(out, h.Value)
		}
	}
	return out
}

func equal(a, b []string) bool { return strings.Join(a, "\x00") == strings.Join(b, "\x00") }

// TestFilterSampleRedact runs the loopback fixture through the capture-time
// filter, sampling, session keys and redaction.
func TestFilterSampleRedact(t *testing.T) {
	onlyGET, err := NewFilter(FilterConfig{AllowMethods: []string{"GET"}, DenyPaths: []string{"^/big$"}})
	if err != nil {
		t.Fatal(err)
	}
	redactor, err := NewRedactor(RedactConfig{Key: []byte("0123456789abcdef-test-key"), Headers: []string{"X-Trace"}, QueryParams: []string{"verbose"}})
	if err != nil {
		t.Fatal(err)
	}
	byTrace, err := ParseSessionKey("header:X-Trace")
	if err != nil {
		t.Fatal(err)
	}
	none, err := NewSampler("0%")
	if err != nil {
		t.Fatal(err)
	}

	sink := &memSink{}
	r, err := New(Config{PcapFiles: []string{"testdata/loopback.pcap"}, Sink: sink, Logger: quietLogger(),
		Filter: onlyGET, Redactor: redactor, SessionKey: byTrace})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := sink.exchanges(t)
	st := r.Stats()
	// 10 exchanges: POST, HEAD and DELETE are not GET, /big is denied.
	if len(got) != 6 || st.Filtered != 4 || st.Exchanges != 6 {
		t.Fatalf("%d exchanges, stats %+v", len(got), st)
	}
	for _, e := range got {
		if e.Request.Method != "GET" || e.Request.Target == "/big" {
			t.Errorf("filter let through %s %s", e.Request.Method, e.Request.Target)
		}
		if strings.Contains(e.Request.Target, "verbose=1") {
			t.Errorf("query parameter not redacted: %s", e.Request.Target)
		}
	}
	first := got[0]
	traces := headerValues(first.Request.Headers, "X-Trace")
	if len(traces) != 2 || traces[0] == "a" || traces[1] == "b" || traces[0] == traces[1] || !strings.HasPrefix(traces[0], "tap_") {
		t.Errorf("X-Trace not redacted to distinct pseudonyms: %q", traces)
	}
	if first.SessionKey != traces[0] {
		t.Errorf("session key %q, want the (redacted) first X-Trace %q", first.SessionKey, traces[0])
	}
	if st.Redacted == 0 {
		t.Errorf("no redactions counted: %+v", st)
	}

	sink = &memSink{}
	r, _ = New(Config{PcapFiles: []string{"testdata/loopback.pcap"}, Sink: sink, Logger: quietLogger(), Sampler: none})
	if err := r.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := r.Stats(); len(sink.recs) != 0 || st.SampledOut != 10 {
		t.Fatalf("0%% sample: %d exchanges, stats %+v", len(sink.recs), st)
	}
}

// TestFeaturesCapture records testdata/features.pcap: raw HTTP/1.x over
// loopback with pipelining, 100-continue, 204/304, HEAD, chunked bodies with
// trailers, an upgrade and an HTTP/1.0 response delimited by close (see
// testdata/capture/features.go). Every exchange must match what the client
// saw (features.want), bodies byte-exact.
func TestFeaturesCapture(t *testing.T) {
	sink := &memSink{}
	st := record(t, sink, "testdata/features.pcap")
	got := sink.exchanges(t)
	want := readLines(t, "testdata/features.want")
	if len(got) != len(want) {
		t.Fatalf("%d exchanges, want %d", len(got), len(want))
	}
	// Exchanges of different connections may interleave; compare as sets
	// keyed by request, and the order within each connection.
	seen := map[string]bool{}
	lastPerConn := map[string]int{}
	for _, e := range got {
		line := fmt.Sprintf("%s %s %d %q", e.Request.Method, e.Request.Target, e.GetResponse().GetStatus(), e.GetResponse().GetBody())
		seen[line] = true
		idx := -1
		for i, w := range want {
			if w == line {
				idx = i
			}
		}
		if idx < lastPerConn[e.SessionKey] {
			t.Errorf("%s recorded out of order on its connection", line)
		}
		lastPerConn[e.SessionKey] = idx
	}
	for _, w := range want {
		if !seen[w] {
			t.Errorf("missing or different: %s", w)
		}
	}
	byTarget := map[string]*schema.Exchange{}
	for _, e := range got {
		byTarget[e.Request.Method+" "+e.Request.Target] = e
	}
	if b := byTarget["POST /upload"].Request.Body; string(b) != "hello world" {
		t.Errorf("100-continue request body %q", b)
	}
	if b := byTarget["PUT /chunks"].Request.Body; string(b) != "hello world" {
		t.Errorf("chunked request body %q", b)
	}
	if v := headerValues(byTarget["GET /trailer"].GetResponse().Headers, "X-Checksum"); !equal(v, []string{"abc123"}) {
		t.Errorf("trailer: %q", v)
	}
	if st.Drops["upgrade"] != 1 {
		t.Errorf("drops %v: want the upgraded connection counted once", st.Drops)
	}
	for reason, n := range st.Drops {
		if reason != "upgrade" && n != 0 {
			t.Errorf("drop %s = %d", reason, n)
		}
	}
}

// TestLinkTypes re-frames the loopback capture in every supported link
// type (and as pcapng) and expects the same 10 exchanges from each.
func TestLinkTypes(t *testing.T) {
	in, err := os.Open("testdata/loopback.pcap")
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	pr, err := pcapgo.NewReader(in)
	if err != nil {
		t.Fatal(err)
	}
	type packet struct {
		ci   gopacket.CaptureInfo
		data []byte // Ethernet frame
	}
	var pkts []packet
	for {
		data, ci, err := pr.ReadPacketData()
		if err != nil {
			break
		}
		pkts = append(pkts, packet{ci, data})
	}
	const ethLen = 14
	sll2 := func(ip []byte) []byte {
		h := make([]byte, 20, 20+len(ip))
		h[0], h[1] = 0x08, 0x00 // protocol: IPv4
		h[9] = 4                // ARPHRD_LOOPBACK (772) low byte; not checked
		return append(h, ip...)
	}
	sll1 := func(ip []byte) []byte {
		h := make([]byte, 16, 16+len(ip))
		h[14], h[15] = 0x08, 0x00
		return append(h, ip...)
	}
	null := func(ip []byte) []byte { return append([]byte{2, 0, 0, 0}, ip...) } // AF_INET, little-endian
	vlan := func(eth []byte) []byte {
		out := append([]byte{}, eth[:12]...)
		out = append(out, 0x81, 0x00, 0x00, 0x07) // 802.1Q, VLAN 7
		return append(out, eth[12:]...)
	}
	cases := []struct {
		name     string
		linkType uint32
		frame    func(eth []byte) []byte
		ng       bool
	}{
		{"ethernet pcapng", 1, func(e []byte) []byte { return e }, true},
		{"ethernet with VLAN tag", 1, vlan, false},
		{"raw IP", 101, func(e []byte) []byte { return e[ethLen:] }, false},
		{"Linux SLL", 113, func(e []byte) []byte { return sll1(e[ethLen:]) }, false},
		{"Linux SLL2", 276, func(e []byte) []byte { return sll2(e[ethLen:]) }, false},
		{"BSD null loopback", 0, func(e []byte) []byte { return null(e[ethLen:]) }, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "c.pcap")
			writeCapture(t, path, tc.linkType, tc.ng, len(pkts), func(i int) (gopacket.CaptureInfo, []byte) {
				frame := tc.frame(pkts[i].data)
				ci := pkts[i].ci
				ci.CaptureLength, ci.Length = len(frame), len(frame)
				return ci, frame
			})
			sink := &memSink{}
			st := record(t, sink, path)
			if st.Exchanges != 10 || st.Drops["decode"] != 0 {
				t.Fatalf("stats %+v, want 10 exchanges and no decode drops", st)
			}
		})
	}
}

// writeCapture writes n packets to a pcap (or pcapng) file with the given
// link type. The pcap file header is written by hand: gopacket's LinkType
// cannot hold 276.
func writeCapture(t *testing.T, path string, linkType uint32, ng bool, n int, packet func(int) (gopacket.CaptureInfo, []byte)) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if ng {
		w, err := pcapgo.NewNgWriter(f, layers.LinkType(linkType))
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < n; i++ {
			if err := w.WritePacket(packet(i)); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		return
	}
	hdr := make([]byte, 24)
	binary.LittleEndian.PutUint32(hdr[0:], 0xa1b2c3d4)
	binary.LittleEndian.PutUint16(hdr[4:], 2)
	binary.LittleEndian.PutUint16(hdr[6:], 4)
	binary.LittleEndian.PutUint32(hdr[16:], 262144)
	binary.LittleEndian.PutUint32(hdr[20:], linkType)
	if _, err := f.Write(hdr); err != nil {
		t.Fatal(err)
	}
	w := pcapgo.NewWriter(f)
	for i := 0; i < n; i++ {
		if err := w.WritePacket(packet(i)); err != nil {
			t.Fatal(err)
		}
	}
}
