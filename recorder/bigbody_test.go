package recorder

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"iter"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// bigBody is the size of the request body and of the response body that
// TestTwoGigabyteBodies streams through the recorder: 2 GiB each, one
// past what an int32 holds.
const bigBody = 2 << 30

// bigSegment is the TCP payload per body packet, as on loopback (whose
// MTU is 64 KiB); a body is bigBody/bigSegment packets.
const bigSegment = 32 << 10

// heapBound is what the recorder's heap may reach while bodies of any
// size stream through it: a memory bound, not a time bound.
const heapBound = 256 << 20

// synthSource is a PacketSource whose packets are generated as they are
// read: Ethernet/IPv4/TCP headers written by hand into one reused buffer
// (the recorder checks no checksums), nothing stored. Every 1024 packets
// it samples the heap.
type synthSource struct {
	next    func() ([]byte, time.Time, bool)
	stop    func()
	packets int
	maxHeap uint64
}

func newSynthSource(gen iter.Seq2[[]byte, time.Time]) *synthSource {
	next, stop := iter.Pull2(gen)
	return &synthSource{next: next, stop: stop}
}

func (s *synthSource) ReadPacketData() ([]byte, gopacket.CaptureInfo, error) {
	if s.packets%1024 == 0 {
		s.sampleHeap()
	}
	p, ts, ok := s.next()
	if !ok {
		s.sampleHeap()
		return nil, gopacket.CaptureInfo{}, io.EOF
	}
	s.packets++
	return p, gopacket.CaptureInfo{Timestamp: ts, CaptureLength: len(p), Length: len(p)}, nil
}

func (s *synthSource) LinkType() layers.LinkType { return layers.LinkTypeEthernet }

func (s *synthSource) sampleHeap() {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s.maxHeap = max(s.maxHeap, ms.HeapInuse)
}

// tcpConn writes the frames of one scripted TCP connection (client port
// 40000+port to 10.0.0.2:80) into a buffer it reuses.
type tcpConn struct {
	port               uint16
	clientSeq, srvSeq  uint32 // next sequence number of each side
	clientISN, servISN uint32
	buf                []byte
}

const frameHeaders = 14 + 20 + 20

func newTCPConn(port uint16, clientISN, servISN uint32) *tcpConn {
	return &tcpConn{port: port, clientISN: clientISN, servISN: servISN, clientSeq: clientISN + 1, srvSeq: servISN + 1,
		buf: make([]byte, frameHeaders+bigSegment+64)}
}

// frame returns a packet carrying payload from one side; payload may
// already sit at buf[frameHeaders:] (then it is not copied).
func (c *tcpConn) frame(fromClient, syn bool, payload []byte) []byte {
	b := c.buf[:frameHeaders+len(payload)]
	if len(payload) > 0 && &payload[0] != &c.buf[frameHeaders] {
		copy(b[frameHeaders:], payload)
	}
	src, dst := [4]byte{10, 0, 0, 1}, [4]byte{10, 0, 0, 2}
	sport, dport := 40000+c.port, uint16(80)
	seq := &c.clientSeq
	if !fromClient {
		src, dst, sport, dport, seq = dst, src, dport, sport, &c.srvSeq
	}
	copy(b[0:6], []byte{0, 0, 0, 0, 0, 2})
	copy(b[6:12], []byte{0, 0, 0, 0, 0, 1})
	binary.BigEndian.PutUint16(b[12:], 0x0800)
	ip := b[14:34]
	clear(ip)
	ip[0], ip[8], ip[9] = 0x45, 64, 6
	binary.BigEndian.PutUint16(ip[2:], uint16(20+20+len(payload)))
	copy(ip[12:16], src[:])
	copy(ip[16:20], dst[:])
	tcp := b[34:54]
	clear(tcp)
	binary.BigEndian.PutUint16(tcp[0:], sport)
	binary.BigEndian.PutUint16(tcp[2:], dport)
	flags := byte(0x10) // ACK
	if syn {
		isn := c.clientISN
		if !fromClient {
			isn = c.servISN
		} else {
			flags = 0
		}
		binary.BigEndian.PutUint32(tcp[4:], isn)
		flags |= 0x02
	} else {
		binary.BigEndian.PutUint32(tcp[4:], *seq)
		*seq += uint32(len(payload))
	}
	tcp[12], tcp[13] = 5<<4, flags
	binary.BigEndian.PutUint16(tcp[14:], 65535)
	return b
}

// pattern is the bodies' content: bigSegment bytes repeated, so a body
// packet's payload never changes and is never copied.
var pattern = func() []byte {
	b := make([]byte, bigSegment)
	for i := range b {
		b[i] = "0123456789abcdefghijklmnopqrstuvwxyz"[i%36]
	}
	return b
}()

// TestTwoGigabyteBodies streams a 2 GiB request body (Content-Length)
// and a 2 GiB response body (chunked) through one keep-alive connection
// whose sequence numbers wrap, while another connection carries small
// exchanges in between. The recorder's heap stays under heapBound; each
// big body is recorded cut at the body cap (1 MiB), flagged truncated,
// with its full size and its first MiB byte-exact; the request after
// the big ones on the same connection and every exchange on the other
// connection are recorded; nothing is dropped.
//
// Under -race the parsing costs more, but the bytes past the cap are
// skipped without being looked at, so the 4 GiB take a few seconds (see
// BENCHMARKS.md).
func TestTwoGigabyteBodies(t *testing.T) {
	if testing.Short() {
		t.Skip("streams 4 GiB through the recorder")
	}
	const (
		segments = bigBody / bigSegment
		every    = 4096 // body packets between two exchanges on the other connection
	)
	upload := fmt.Sprintf("POST /upload HTTP/1.1\r\nHost: big\r\nContent-Length: %d\r\n\r\n", bigBody)
	download := "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	chunk := append(append([]byte(fmt.Sprintf("%x\r\n", bigSegment-8)), pattern[:bigSegment-8]...), "\r\n"...)
	gen := func(yield func([]byte, time.Time) bool) {
		now := time.Unix(1_700_000_000, 0)
		// One packet every 25 µs of capture time: 32 KiB at about 10 Gbit/s.
		emit := func(p []byte) bool { now = now.Add(25 * time.Microsecond); return yield(p, now) }
		big := newTCPConn(1, 0xffff0000, 0x7fffff00) // the client's sequence numbers wrap
		other := newTCPConn(2, 1000, 5000)
		otherN := 0
		small := func() bool {
			otherN++
			return emit(other.frame(true, false, fmt.Appendf(nil, "GET /other/%d HTTP/1.1\r\nHost: h\r\n\r\n", otherN))) &&
				emit(other.frame(false, false, []byte(resp1)))
		}
		if !emit(big.frame(true, true, nil)) || !emit(big.frame(false, true, nil)) ||
			!emit(other.frame(true, true, nil)) || !emit(other.frame(false, true, nil)) {
			return
		}
		if !emit(big.frame(true, false, []byte(upload))) {
			return
		}
		copy(big.buf[frameHeaders:], pattern)
		for i := range segments {
			if !emit(big.frame(true, false, big.buf[frameHeaders:frameHeaders+bigSegment])) {
				return
			}
			if i%every == every-1 && !small() {
				return
			}
		}
		if !emit(big.frame(false, false, []byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))) ||
			!emit(big.frame(true, false, []byte("GET /download HTTP/1.1\r\nHost: big\r\n\r\n"))) ||
			!emit(big.frame(false, false, []byte(download))) {
			return
		}
		// The chunks' data also repeats the pattern (its first
		// bigSegment-8 bytes each time).
		copy(big.buf[frameHeaders:], chunk)
		for i := range bigBody / (bigSegment - 8) {
			if !emit(big.frame(false, false, big.buf[frameHeaders:frameHeaders+len(chunk)])) {
				return
			}
			if i%every == every-1 && !small() {
				return
			}
		}
		last := bigBody % (bigSegment - 8)
		tail := append(fmt.Appendf(nil, "%x\r\n", last), pattern[:last]...)
		tail = append(tail, "\r\n0\r\n\r\n"...)
		if !emit(big.frame(false, false, tail)) ||
			!emit(big.frame(true, false, []byte("GET /after HTTP/1.1\r\nHost: big\r\n\r\n"))) ||
			!emit(big.frame(false, false, []byte("HTTP/1.1 204 No Content\r\n\r\n"))) {
			return
		}
		small()
	}
	src := newSynthSource(gen)
	defer src.stop()
	sink := &memSink{}
	r, err := New(Config{Live: src, Sink: sink, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	start := time.Now()
	if err := r.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d packets, %d MiB of bodies in %v; peak heap in use %d MiB", src.packets, 2*bigBody>>20, time.Since(start).Round(time.Millisecond), src.maxHeap>>20)
	if src.maxHeap > heapBound {
		t.Errorf("heap in use reached %d MiB, want at most %d MiB", src.maxHeap>>20, heapBound>>20)
	}

	st := r.Stats()
	for reason, n := range st.Drops {
		if n != 0 {
			t.Errorf("drop %s = %d, want 0", reason, n)
		}
	}
	smallN := 2*segments/every + 1
	if st.Exchanges != uint64(3+smallN) || st.Connections != 2 || st.ResponsesMissing != 0 {
		t.Errorf("%d exchanges on %d connections, %d without a response; want %d on 2, 0", st.Exchanges, st.Connections, st.ResponsesMissing, 3+smallN)
	}
	var onBig []string
	others := 0
	for _, e := range sink.exchanges(t) {
		if e.Client.Port == 40002 {
			if others++; e.Request.Target != fmt.Sprintf("/other/%d", others) || string(e.GetResponse().GetBody()) != "first" {
				t.Errorf("other connection, exchange %d: %s %s -> %q", others, e.Request.Method, e.Request.Target, e.GetResponse().GetBody())
			}
			continue
		}
		req, resp := e.Request, e.GetResponse()
		onBig = append(onBig, fmt.Sprintf("%s %s -> %d", req.Method, req.Target, resp.GetStatus()))
		for _, body := range []struct {
			what      string
			b         []byte
			size      int64
			truncated bool
		}{{"request", req.Body, req.BodySize, req.BodyTruncated}, {"response", resp.GetBody(), resp.GetBodySize(), resp.GetBodyTruncated()}} {
			if body.size < bigBody {
				continue
			}
			want := bytes.Repeat(pattern, (1<<20)/bigSegment)
			if body.what == "response" {
				want = bytes.Repeat(pattern[:bigSegment-8], (1<<20)/(bigSegment-8)+1)[:1<<20]
			}
			if body.size != bigBody || !body.truncated || !bytes.Equal(body.b, want) {
				t.Errorf("%s %s: %s body of %d bytes kept, size %d, truncated %v; want the first MiB of %d, truncated",
					req.Method, req.Target, body.what, len(body.b), body.size, body.truncated, bigBody)
			}
		}
	}
	if want := "POST /upload -> 200|GET /download -> 200|GET /after -> 204"; strings.Join(onBig, "|") != want {
		t.Errorf("big connection: %q, want %q", onBig, want)
	}
	if others != smallN {
		t.Errorf("%d exchanges on the other connection, want %d", others, smallN)
	}
}
