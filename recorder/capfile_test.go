package recorder

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// capturePackets is what the capture-file cases write and then damage:
// two connections one after the other, each a handshake and two
// exchanges, one packet per message. Records 1-12:
//
//	1 A SYN   2 A SYN-ACK   3 A GET /one   4 A 200   5 A POST /two   6 A 201
//	7 B SYN   8 B SYN-ACK   9 B GET /one  10 B 200  11 B POST /two  12 B 201
func capturePackets(t *testing.T) *segments { return capturePacketsOn(t, 0) }

// capturePacketsOn is capturePackets on client ports 40000+first and on.
func capturePacketsOn(t *testing.T, first int) *segments {
	t.Helper()
	var script []seg
	for port := first; port < first+2; port++ {
		script = append(script,
			seg{fromClient: true, syn: true, port: port}, seg{syn: true, port: port},
			seg{fromClient: true, data: req1, port: port}, seg{data: resp1, port: port},
			seg{fromClient: true, off: len(req1), data: req2, port: port}, seg{off: len(resp1), data: resp2, port: port})
	}
	return build(t, script)
}

// pcapFile writes packets as a classic pcap file (little-endian,
// microseconds, Ethernet). Each record's header may be changed by edit
// (record numbers from 1). It also returns where each record starts.
func pcapFile(src *segments, edit func(record int, hdr []byte)) ([]byte, []int) {
	le := binary.LittleEndian
	b := make([]byte, 24)
	le.PutUint32(b[0:], pcapMagicMicros)
	le.PutUint16(b[4:], 2)
	le.PutUint16(b[6:], 4)
	le.PutUint32(b[16:], 262144)
	le.PutUint32(b[20:], 1)
	var starts []int
	for i, p := range src.pkts {
		starts = append(starts, len(b))
		h := make([]byte, 16)
		le.PutUint32(h[0:], uint32(src.ts[i].Unix()))
		le.PutUint32(h[4:], uint32(src.ts[i].Nanosecond()/1000))
		le.PutUint32(h[8:], uint32(len(p)))
		le.PutUint32(h[12:], uint32(len(p)))
		if edit != nil {
			edit(i+1, h)
		}
		b = append(append(b, h...), p...)
	}
	return b, starts
}

// ngFile builds pcapng files block by block.
type ngFile struct {
	b     []byte
	order interface {
		binary.ByteOrder
		binary.AppendByteOrder
	}
	starts []int // where each packet block starts
}

func newNgFile(order interface {
	binary.ByteOrder
	binary.AppendByteOrder
}) *ngFile {
	f := &ngFile{order: order}
	body := make([]byte, 16)
	order.PutUint32(body[0:], ngByteOrderMagic)
	order.PutUint16(body[4:], 1)
	order.PutUint64(body[8:], ^uint64(0)) // section length unknown
	f.block(ngSectionHeader, body)
	return f
}

func (f *ngFile) block(typ uint32, body []byte) int {
	start := len(f.b)
	body = append(body, make([]byte, (4-len(body)%4)%4)...)
	n := uint32(12 + len(body))
	f.b = f.order.AppendUint32(f.b, typ)
	f.b = f.order.AppendUint32(f.b, n)
	f.b = append(f.b, body...)
	f.b = f.order.AppendUint32(f.b, n)
	return start
}

// iface adds an interface description with nanosecond timestamps.
func (f *ngFile) iface(linkType uint16, snaplen uint32) {
	body := f.order.AppendUint16(nil, linkType)
	body = f.order.AppendUint16(body, 0)
	body = f.order.AppendUint32(body, snaplen)
	body = f.order.AppendUint16(body, ngOptionTSResol)
	body = f.order.AppendUint16(body, 1)
	body = append(body, 9, 0, 0, 0)
	body = append(body, 0, 0, 0, 0) // end of options
	f.block(ngInterfaceDesc, body)
}

// packet adds an Enhanced Packet Block.
func (f *ngFile) packet(iface uint32, ts time.Time, data []byte) {
	ns := uint64(ts.UnixNano())
	body := f.order.AppendUint32(nil, iface)
	body = f.order.AppendUint32(body, uint32(ns>>32))
	body = f.order.AppendUint32(body, uint32(ns))
	body = f.order.AppendUint32(body, uint32(len(data)))
	body = f.order.AppendUint32(body, uint32(len(data)))
	f.starts = append(f.starts, f.block(ngEnhancedPacket, append(body, data...)))
}

func ngCapture(src *segments, order interface {
	binary.ByteOrder
	binary.AppendByteOrder
}) *ngFile {
	f := newNgFile(order)
	f.iface(1, 262144)
	for i, p := range src.pkts {
		f.packet(0, src.ts[i], p)
	}
	return f
}

func put32(b []byte, at int, v uint32) []byte {
	b = bytes.Clone(b)
	binary.LittleEndian.PutUint32(b[at:], v)
	return b
}

// TestCaptureFiles feeds damaged pcap and pcapng files to the recorder.
// Each gives either an error that names the file and says what is wrong
// (nothing usable could be read), or the exchanges before the damage plus
// one corrupt_file drop, with exact counts. No file makes the recorder
// allocate more than a bounded amount, whatever lengths it claims.
func TestCaptureFiles(t *testing.T) {
	src := capturePackets(t)
	pcap, rec := pcapFile(src, nil)
	other, _ := pcapFile(capturePacketsOn(t, 2), nil) // other connections
	ng := ngCapture(src, binary.LittleEndian)
	ngBig := ngCapture(src, binary.BigEndian)
	gz := func(b []byte) []byte {
		var out bytes.Buffer
		w := gzip.NewWriter(&out)
		w.Write(b)
		w.Close()
		return out.Bytes()
	}
	edited := func(edit func(record int, hdr []byte)) []byte {
		b, _ := pcapFile(src, edit)
		return b
	}
	// A pcapng file with a second interface: Linux cooked (113) or a
	// link type the recorder does not decode (147, USER0); connection B
	// (records 7-12) is captured on it.
	twoIfaces := func(linkType uint16, frame func([]byte) []byte) []byte {
		f := newNgFile(binary.LittleEndian)
		f.iface(1, 0)
		f.iface(linkType, 0)
		for i, p := range src.pkts {
			if i < 6 {
				f.packet(0, src.ts[i], p)
			} else {
				f.packet(1, src.ts[i], frame(p))
			}
		}
		return f.b
	}
	sll := func(eth []byte) []byte {
		h := make([]byte, 16, 16+len(eth))
		h[14], h[15] = 0x08, 0x00
		return append(h, eth[14:]...)
	}
	ngWith := func(edit func(f *ngFile)) []byte {
		f := ngCapture(src, binary.LittleEndian)
		edit(f)
		return f.b
	}
	ngNoIface := func(after func(f *ngFile)) []byte {
		f := newNgFile(binary.LittleEndian)
		after(f)
		return f.b
	}
	all := map[string]uint64{}

	cases := []struct {
		name       string
		files      [][]byte
		wantErr    string // the run fails with an error naming the file and saying this
		exchanges  uint64
		missing    uint64 // of the exchanges, emitted without a response
		drops      map[string]uint64
		wantInLogs string
	}{
		{name: "pcap: whole", files: [][]byte{pcap}, exchanges: 4, drops: all},
		{name: "pcap: empty file", files: [][]byte{nil}, wantErr: "the file is empty: not a pcap or pcapng capture"},
		{name: "pcap: 3 bytes", files: [][]byte{pcap[:3]}, wantErr: "not a pcap or pcapng file: only 3 bytes"},
		{name: "pcap: cut inside the file header", files: [][]byte{pcap[:10]}, wantErr: "truncated: the file ends inside the pcap file header (10 of 24 bytes)"},
		{name: "pcap: 13 bytes of text", files: [][]byte{[]byte("hello, world\n")}, wantErr: "not a pcap or pcapng file: it starts with 68 65 6c 6c"},
		{name: "pcap: file header only", files: [][]byte{pcap[:24]}, exchanges: 0, drops: all},
		{name: "pcap: not a capture", files: [][]byte{[]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")}, wantErr: "not a pcap or pcapng file: it starts with 47 45 54 20"},
		{name: "pcap: corrupt file header (version 3.0)", files: [][]byte{put32(pcap, 4, 3)}, wantErr: "corrupt pcap file header: version 3.0 (want 2.x)"},
		{name: "pcap: link type 147", files: [][]byte{put32(pcap, 20, 147)}, wantErr: "link type 147 is not supported"},
		{name: "pcap: link type 300", files: [][]byte{put32(pcap, 20, 300)}, wantErr: "link type 300 is not supported"},
		{name: "pcap: link type 20 (not SLL2's 276)", files: [][]byte{put32(pcap, 20, 20)}, wantErr: "link type 20 is not supported"},
		// The snap length is not trusted (a 4 GB one allocated 4 GB with
		// gopacket/pcapgo): records are bounded by maxSnaplen instead.
		{name: "pcap: snap length 0xffffffff", files: [][]byte{put32(pcap, 16, 0xffffffff)}, exchanges: 4, drops: all},
		{name: "pcap: snap length 0", files: [][]byte{put32(pcap, 16, 0)}, exchanges: 4, drops: all},
		{name: "pcap: big-endian nanosecond, gzipped", files: [][]byte{gz(bigEndianNanos(t, pcap))}, exchanges: 4, drops: all},
		{name: "pcap: cut inside record 11's header", files: [][]byte{pcap[:rec[10]+7]},
			exchanges: 3, drops: map[string]uint64{"corrupt_file": 1},
			wantInLogs: "truncated: the file ends inside the header of record 11 at byte " + itoa(rec[10]) + " (7 of 16 bytes)"},
		{name: "pcap: cut between records 11 and 12", files: [][]byte{pcap[:rec[11]]},
			exchanges: 4, missing: 1}, // POST /two on B waits for its response until the capture ends
		{name: "pcap: cut inside record 12's data", files: [][]byte{pcap[:rec[11]+16+30]},
			exchanges: 4, missing: 1, drops: map[string]uint64{"corrupt_file": 1},
			wantInLogs: "truncated: the file ends inside record 12 at byte " + itoa(rec[11]) + " (30 of its"},
		{name: "pcap: cut inside record 4's data", files: [][]byte{pcap[:rec[3]+16+1]},
			exchanges: 1, missing: 1, drops: map[string]uint64{"corrupt_file": 1}},
		{name: "pcap: record 9 claims 2 GiB", files: [][]byte{edited(func(r int, h []byte) {
			if r == 9 {
				binary.LittleEndian.PutUint32(h[8:], 1<<31-1)
			}
		})}, exchanges: 2, drops: map[string]uint64{"corrupt_file": 1},
			wantInLogs: "corrupt: record 9 at byte " + itoa(rec[8]) + " claims 2147483647 bytes of packet data, more than the 262144 a capture holds"},
		// Record 9 says 20 bytes: those decode as nothing (a torn IPv4
		// header), and the next "record header" is the middle of the
		// packet, whose length field (IP addresses) is far too large.
		{name: "pcap: record 9 claims 20 bytes", files: [][]byte{edited(func(r int, h []byte) {
			if r == 9 {
				binary.LittleEndian.PutUint32(h[8:], 20)
			}
		})}, exchanges: 2, drops: map[string]uint64{"decode": 1, "corrupt_file": 1}},
		{name: "pcap: an empty record and a non-IP record in the middle", files: [][]byte{insertRecords(pcap, rec[6], []byte{}, []byte("\xff\xff\xff\xff\xff\xffgarbage frame"))},
			exchanges: 4, drops: map[string]uint64{"decode": 2}},
		{name: "pcap: several files, the first cut", files: [][]byte{pcap[:rec[10]+7], other},
			exchanges: 3 + 4, drops: map[string]uint64{"corrupt_file": 1}},

		{name: "pcapng: whole", files: [][]byte{ng.b}, exchanges: 4, drops: all},
		{name: "pcapng: big-endian", files: [][]byte{ngBig.b}, exchanges: 4, drops: all},
		{name: "pcapng: section header only", files: [][]byte{ngNoIface(func(*ngFile) {})}, exchanges: 0, drops: all},
		{name: "pcapng: cut inside the section header", files: [][]byte{ng.b[:20]}, wantErr: "truncated: the file ends inside pcapng block 1 at byte 0"},
		{name: "pcapng: bad byte-order magic", files: [][]byte{put32(ng.b, 8, 0x12345678)}, wantErr: "corrupt: pcapng section header (block 1 at byte 0) has byte-order magic 78 56 34 12"},
		{name: "pcapng: version 2.0", files: [][]byte{put32(ng.b, 12, 2)}, wantErr: "version 2.0 is not supported (want 1.x)"},
		{name: "pcapng: a packet before any interface", files: [][]byte{ngNoIface(func(f *ngFile) { f.packet(0, src.ts[0], src.pkts[0]) })},
			wantErr: "corrupt: pcapng block 2 at byte 28 is a packet before any interface description"},
		{name: "pcapng: first interface of link type 147", files: [][]byte{ngNoIface(func(f *ngFile) { f.iface(147, 0); f.packet(0, src.ts[0], src.pkts[0]) })},
			wantErr: "link type 147 is not supported"},
		{name: "pcapng: cut inside block 13 (packet 11)", files: [][]byte{ng.b[:ng.starts[10]+40]},
			exchanges: 3, drops: map[string]uint64{"corrupt_file": 1},
			wantInLogs: "truncated: the file ends inside pcapng block 13 at byte " + itoa(ng.starts[10])},
		{name: "pcapng: packet 9 claims 2 GiB", files: [][]byte{put32(ng.b, ng.starts[8]+20, 1<<31-16)},
			exchanges: 2, drops: map[string]uint64{"corrupt_file": 1},
			wantInLogs: "corrupt: pcapng packet (block 11 at byte " + itoa(ng.starts[8]) + ") claims 2147483632 bytes of packet data in a"},
		{name: "pcapng: packet 9's block length not a multiple of 4", files: [][]byte{put32(ng.b, ng.starts[8]+4, 1001)},
			exchanges: 2, drops: map[string]uint64{"corrupt_file": 1},
			wantInLogs: "has length 1001 (want a multiple of 4, at least 12)"},
		{name: "pcapng: packet 9's block length 4 GiB", files: [][]byte{put32(ng.b, ng.starts[8]+4, 0xfffffffc)},
			exchanges: 2, drops: map[string]uint64{"corrupt_file": 1}},
		{name: "pcapng: packet 9's trailer differs", files: [][]byte{ngWith(func(f *ngFile) {
			end := f.starts[9] - 4
			f.order.PutUint32(f.b[end:], 4)
		})}, exchanges: 2, drops: map[string]uint64{"corrupt_file": 1},
			wantInLogs: "but its trailer says 4"},
		{name: "pcapng: packet 9 names interface 7", files: [][]byte{put32(ng.b, ng.starts[8]+8, 7)},
			exchanges: 2, drops: map[string]uint64{"corrupt_file": 1},
			wantInLogs: "names interface 7, the section has 1"},
		// gopacket/pcapgo sized its buffer from this: 4 GB.
		{name: "pcapng: interface snap length 0xffffffff", files: [][]byte{put32(ng.b, 28+12, 0xffffffff)}, exchanges: 4, drops: all},
		{name: "pcapng: unknown blocks are skipped", files: [][]byte{ngWith(func(f *ngFile) {
			f.block(0x40000bad, []byte("a custom block"))
			f.block(5, make([]byte, 20)) // interface statistics
		})}, exchanges: 4, drops: all},
		{name: "pcapng: second interface Linux cooked", files: [][]byte{twoIfaces(113, sll)}, exchanges: 4, drops: all},
		// pcapgo skipped such packets without a word.
		{name: "pcapng: second interface of an unsupported link type", files: [][]byte{twoIfaces(147, sll)},
			exchanges: 2, drops: map[string]uint64{"decode": 6}},
		{name: "pcapng: gzipped, cut", files: [][]byte{gz(ng.b)[:40]}, wantErr: "truncated: the gzip stream ends after 0 bytes of capture"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			var paths []string
			for i, b := range tc.files {
				p := filepath.Join(dir, "capture"+itoa(i)+".pcap")
				if err := os.WriteFile(p, b, 0o644); err != nil {
					t.Fatal(err)
				}
				paths = append(paths, p)
			}
			var logs syncBuffer
			sink := &memSink{}
			r, err := New(Config{PcapFiles: paths, Sink: sink, Name: "test", Logger: textLogger(&logs)})
			if err != nil {
				t.Fatal(err)
			}
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			err = r.Run(context.Background())
			runtime.ReadMemStats(&after)
			// Memory, not time: whatever a file claims, reading it
			// allocates a bounded amount.
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 64<<20 {
				t.Errorf("reading allocated %d MiB", alloc>>20)
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "reading "+paths[len(paths)-1]+": ") {
					t.Fatalf("got error %v, want one naming %s and saying %q", err, paths[len(paths)-1], tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			st := r.Stats()
			got := sink.exchanges(t)
			if st.Exchanges != tc.exchanges || uint64(len(got)) != tc.exchanges || st.ResponsesMissing != tc.missing {
				t.Errorf("%d exchanges (%d in the sink), %d without a response; want %d, %d", st.Exchanges, len(got), st.ResponsesMissing, tc.exchanges, tc.missing)
			}
			for reason, n := range st.Drops {
				if n != tc.drops[reason] {
					t.Errorf("drop %s = %d, want %d (all drops %v)", reason, n, tc.drops[reason], st.Drops)
				}
			}
			if tc.drops["corrupt_file"] > 0 && !strings.Contains(logs.String(), "capture file truncated or corrupt") {
				t.Errorf("no warning logged:\n%s", logs.String())
			}
			if tc.wantInLogs != "" && !strings.Contains(logs.String(), tc.wantInLogs) {
				t.Errorf("logs do not say %q:\n%s", tc.wantInLogs, logs.String())
			}
		})
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

// syncBuffer collects log output.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// textLogger logs everything, debug included, to w.
func textLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// bigEndianNanos rewrites a little-endian microsecond pcap file as a
// big-endian nanosecond one.
func bigEndianNanos(t *testing.T, b []byte) []byte {
	t.Helper()
	le, be := binary.LittleEndian, binary.BigEndian
	out := make([]byte, 0, len(b))
	out = be.AppendUint32(out, pcapMagicNanos)
	out = be.AppendUint16(out, 2)
	out = be.AppendUint16(out, 4)
	out = append(out, make([]byte, 8)...)
	out = be.AppendUint32(out, le.Uint32(b[16:]))
	out = be.AppendUint32(out, le.Uint32(b[20:]))
	for rest := b[24:]; len(rest) > 0; {
		n := int(le.Uint32(rest[8:]))
		out = be.AppendUint32(out, le.Uint32(rest[0:]))
		out = be.AppendUint32(out, le.Uint32(rest[4:])*1000)
		out = be.AppendUint32(out, uint32(n))
		out = be.AppendUint32(out, le.Uint32(rest[12:]))
		out = append(out, rest[16:16+n]...)
		rest = rest[16+n:]
	}
	return out
}

// insertRecords puts records (timestamped like the one at at) before the
// record starting at byte at.
func insertRecords(b []byte, at int, packets ...[]byte) []byte {
	var ins []byte
	for _, p := range packets {
		h := bytes.Clone(b[at : at+16])
		binary.LittleEndian.PutUint32(h[8:], uint32(len(p)))
		binary.LittleEndian.PutUint32(h[12:], uint32(len(p)))
		ins = append(append(ins, h...), p...)
	}
	return append(append(append([]byte{}, b[:at]...), ins...), b[at:]...)
}

// TestNgTimestamps: pcapng timestamps in every resolution the format
// allows, with an offset.
func TestNgTimestamps(t *testing.T) {
	want := time.Date(2026, 11, 28, 9, 30, 1, 123456789, time.UTC)
	cases := []struct {
		name  string
		in    ngInterface
		units uint64
		want  time.Time
	}{
		{"microseconds (default)", ngInterface{resolDec: true, resol: 6}, uint64(want.UnixNano() / 1000), want.Truncate(time.Microsecond)},
		{"nanoseconds", ngInterface{resolDec: true, resol: 9}, uint64(want.UnixNano()), want},
		{"seconds", ngInterface{resolDec: true, resol: 0}, uint64(want.Unix()), want.Truncate(time.Second)},
		{"picoseconds", ngInterface{resolDec: true, resol: 12}, 1_000_000*1e12 + 123456789123, time.Unix(1_000_000, 123456789).UTC()},
		{"2^-10 s", ngInterface{resol: 10}, uint64(want.Unix())<<10 | 512, want.Truncate(time.Second).Add(500 * time.Millisecond)},
		{"2^-30 s", ngInterface{resol: 30}, uint64(want.Unix())<<30 | 1<<28, want.Truncate(time.Second).Add(250 * time.Millisecond)},
		{"offset", ngInterface{resolDec: true, resol: 9, offset: 3600}, uint64(want.UnixNano()), want.Add(time.Hour)},
	}
	for _, tc := range cases {
		if got := tc.in.time(tc.units); !got.Equal(tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

// FuzzCaptureFile reads arbitrary bytes as a capture file: the readers
// never panic, never hand over a packet longer than maxSnaplen nor hold
// buffers beyond their bounds whatever lengths the bytes claim, and say
// what went wrong; then the recorder reads the same bytes as a file and
// accounts for every exchange it emits.
func FuzzCaptureFile(f *testing.F) {
	t := &testing.T{}
	src := capturePackets(t)
	src.pkts, src.ts = src.pkts[:8], src.ts[:8] // A's two exchanges and B's handshake
	pcap, rec := pcapFile(src, nil)
	ng := ngCapture(src, binary.LittleEndian)
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	w.Write(pcap)
	w.Close()
	for _, seed := range [][]byte{
		pcap, ng.b, gz.Bytes(), pcap[:rec[4]+20], ng.b[:ng.starts[3]+30],
		put32(pcap, rec[2]+8, 1<<31), put32(ng.b, ng.starts[2]+20, 1<<31), put32(ng.b, 28+12, 0xffffffff),
		ngCapture(src, binary.BigEndian).b, nil, []byte("\x0a\x0d\x0d\x0a"),
	} {
		f.Add(seed)
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := openCapture(bytes.NewReader(data))
		if err != nil {
			if err.Error() == "" {
				t.Fatal("an empty error")
			}
			return
		}
		for {
			pkt, ci, err := r.ReadPacketData()
			if errors.Is(err, errSkipPacket) {
				continue
			}
			if err != nil {
				if err.Error() == "" {
					t.Fatal("an empty error")
				}
				break
			}
			if len(pkt) > maxSnaplen || ci.CaptureLength != len(pkt) {
				t.Fatalf("a packet of %d bytes, capture length %d", len(pkt), ci.CaptureLength)
			}
			if _, ok := firstLayer(r.LinkType(), nil); !ok {
				t.Fatalf("a packet of unsupported link type %d handed over", r.LinkType())
			}
		}
		switch r := r.(type) {
		case *pcapReader:
			if cap(r.buf) > maxSnaplen {
				t.Fatalf("packet buffer of %d bytes", cap(r.buf))
			}
		case *ngReader:
			if cap(r.buf) > maxSnaplen || cap(r.meta) > maxMetaBlock {
				t.Fatalf("buffers of %d and %d bytes", cap(r.buf), cap(r.meta))
			}
		}

		path := filepath.Join(dir, "capture")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		sink := &memSink{}
		rec, err := New(Config{PcapFiles: []string{path}, Sink: sink, Logger: quietLogger()})
		if err != nil {
			t.Fatal(err)
		}
		if err := rec.Run(context.Background()); err != nil {
			return // an unreadable file header: checked above
		}
		if st := rec.Stats(); st.Exchanges != uint64(len(sink.exchanges(t))) || st.Drops["corrupt_file"] > 1 {
			t.Fatalf("stats %+v, %d exchanges in the sink", st, len(sink.recs))
		}
	})
}
