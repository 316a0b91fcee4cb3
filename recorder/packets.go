package recorder

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/reassembly"
)

// PacketSource is the one input seam: a pcap file, a pcapng file and a
// live handle (recorder/live) look the same. ReadPacketData returns the
// next packet, io.EOF at the end, or ErrNoPacket when a live source had
// nothing within its read timeout (the recorder then flushes idle
// connections and checks for cancellation). The data is only valid until
// the next call. A source is read by one goroutine.
type PacketSource interface {
	ReadPacketData() ([]byte, gopacket.CaptureInfo, error)
	LinkType() layers.LinkType
}

// KernelDropper is implemented by live sources that can report packets
// the kernel or the interface dropped before the recorder saw them.
type KernelDropper interface {
	KernelDrops() (uint64, error)
}

// ErrNoPacket is returned by a live PacketSource when its read timed out.
var ErrNoPacket = errors.New("no packet within the read timeout")

// fileSet reads several capture files in order.
type fileSet struct {
	paths []string
	next  int
	cur   *os.File
	src   PacketSource
	read  *countingReader
}

func openFiles(paths []string) (*fileSet, error) {
	fs := &fileSet{paths: paths}
	// Fail before reading anything when a file is missing.
	for _, p := range paths {
		if p == "-" {
			continue
		}
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("opening capture: %w", err)
		}
	}
	return fs, nil
}

// total is the size in bytes of all regular files (stdin counts as 0).
func (fs *fileSet) total() int64 {
	var n int64
	for _, p := range fs.paths {
		n += fs.size(p)
	}
	return n
}

// size is the size of one file; 0 for stdin and what is not a regular file.
func (fs *fileSet) size(path string) int64 {
	if path == "-" {
		return 0
	}
	if st, err := os.Stat(path); err == nil && st.Mode().IsRegular() {
		return st.Size()
	}
	return 0
}

// advance opens the next file; io.EOF when there is none.
func (fs *fileSet) advance() error {
	fs.Close()
	if fs.next >= len(fs.paths) {
		return io.EOF
	}
	path := fs.paths[fs.next]
	fs.next++
	f := os.Stdin
	if path != "-" {
		var err error
		if f, err = os.Open(path); err != nil {
			return fmt.Errorf("opening capture: %w", err)
		}
	}
	fs.cur = f
	fs.read = &countingReader{r: f}
	src, err := openCapture(fs.read)
	if err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	fs.src = src
	return nil
}

func (fs *fileSet) Close() {
	if fs.cur != nil && fs.cur != os.Stdin {
		fs.cur.Close()
	}
	fs.cur, fs.src = nil, nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// decoder decodes link, network and transport layers without allocating,
// for the link types a capture may use.
type decoder struct {
	eth      layers.Ethernet
	dot1q    layers.Dot1Q
	sll      layers.LinuxSLL
	loopback layers.Loopback
	ip4      layers.IPv4
	ip6      layers.IPv6
	tcp      layers.TCP
	payload  gopacket.Payload
	parsers  map[gopacket.LayerType]*gopacket.DecodingLayerParser
	decoded  []gopacket.LayerType
}

func newDecoder() *decoder {
	d := &decoder{parsers: map[gopacket.LayerType]*gopacket.DecodingLayerParser{}}
	for _, first := range []gopacket.LayerType{layers.LayerTypeEthernet, layers.LayerTypeLinuxSLL, layers.LayerTypeLoopback, layers.LayerTypeIPv4, layers.LayerTypeIPv6} {
		p := gopacket.NewDecodingLayerParser(first, &d.eth, &d.dot1q, &d.sll, &d.loopback, &d.ip4, &d.ip6, &d.tcp, &d.payload)
		p.IgnoreUnsupported = true
		d.parsers[first] = p
	}
	return d
}

// firstLayer is the layer a frame of link type lt starts with; for raw IP
// it depends on the version nibble.
func firstLayer(lt layers.LinkType, data []byte) (gopacket.LayerType, bool) {
	switch lt {
	case layers.LinkTypeEthernet:
		return layers.LayerTypeEthernet, true
	case layers.LinkTypeLinuxSLL:
		return layers.LayerTypeLinuxSLL, true
	case layers.LinkTypeNull, layers.LinkTypeLoop:
		return layers.LayerTypeLoopback, true
	case linkTypeLinuxSLL2:
		// gopacket has no SLL2 layer: tcpPacket strips its fixed header
		// and decodes the rest as raw IP.
		if len(data) > sll2HeaderLen && data[sll2HeaderLen]>>4 == 6 {
			return layers.LayerTypeIPv6, true
		}
		return layers.LayerTypeIPv4, true
	case layers.LinkTypeRaw, layers.LinkTypeIPv4, layers.LinkTypeIPv6, 12:
		if len(data) > 0 && data[0]>>4 == 6 {
			return layers.LayerTypeIPv6, true
		}
		return layers.LayerTypeIPv4, true
	}
	return 0, false
}

// Linux cooked capture v2 (LINKTYPE_LINUX_SLL2, 276; `tcpdump -i any` on
// newer libpcap) puts a 20-byte header before the network layer.
// gopacket v1.1.19 keeps link types in a uint8, so both pcapgo and
// gopacket/pcap report 276 as 276&0xff = 20, a value no other link type
// uses (LINKTYPE 20 is unassigned).
const (
	linkTypeLinuxSLL2 = layers.LinkType(276 & 0xff)
	sll2HeaderLen     = 20
)

// tcpPacket decodes data; ok is false for anything but TCP over IP.
func (d *decoder) tcpPacket(lt layers.LinkType, data []byte) (netFlow gopacket.Flow, tcp *layers.TCP, ok bool) {
	first, known := firstLayer(lt, data)
	if !known {
		return gopacket.Flow{}, nil, false
	}
	if lt == linkTypeLinuxSLL2 {
		if len(data) <= sll2HeaderLen {
			return gopacket.Flow{}, nil, false
		}
		data = data[sll2HeaderLen:]
	}
	if err := d.parsers[first].DecodeLayers(data, &d.decoded); err != nil {
		var unsupported gopacket.UnsupportedLayerType
		if !errors.As(err, &unsupported) {
			return gopacket.Flow{}, nil, false
		}
	}
	var haveNet bool
	for _, l := range d.decoded {
		switch l {
		case layers.LayerTypeIPv4:
			netFlow, haveNet = d.ip4.NetworkFlow(), true
		case layers.LayerTypeIPv6:
			netFlow, haveNet = d.ip6.NetworkFlow(), true
		case layers.LayerTypeTCP:
			return netFlow, &d.tcp, haveNet
		}
	}
	return gopacket.Flow{}, nil, false
}

// assemblerContext gives reassembly the capture info of the packet.
type assemblerContext gopacket.CaptureInfo

func (c *assemblerContext) GetCaptureInfo() gopacket.CaptureInfo { return gopacket.CaptureInfo(*c) }

// contextChunk hands out assembler contexts. Reassembly keeps the context
// of the bytes it holds back (out of order), so every packet needs one of
// its own; taking them from chunks of 256 costs one allocation per chunk
// instead of one per packet. A chunk is freed once reassembly holds none
// of its contexts.
type contextChunk []assemblerContext

func (cc *contextChunk) next(ci gopacket.CaptureInfo) *assemblerContext {
	if len(*cc) == 0 {
		*cc = make(contextChunk, 256)
	}
	ac := &(*cc)[0]
	*cc = (*cc)[1:]
	*ac = assemblerContext(ci)
	return ac
}

// packet decodes one packet and hands it to the assembler.
func (r *Recorder) packet(dec *decoder, lt layers.LinkType, data []byte, ci gopacket.CaptureInfo) {
	r.stats.packets.Add(1)
	r.stats.bytes.Add(uint64(len(data)))
	netFlow, tcp, ok := dec.tcpPacket(lt, data)
	if !ok {
		r.drop(dropDecode)
		return
	}
	// Time-driven work first: data held behind an old hole belongs
	// before this packet.
	r.tick(ci.Timestamp)
	r.assembler.AssembleWithContext(netFlow, tcp, r.contexts.next(ci))
}

// tickEvery is how often (in capture time) the recorder flushes held
// out-of-order data, closes idle connections and times out requests.
const tickEvery = 250 * time.Millisecond

// tick runs the time-driven work as of now (capture time): bytes held
// behind a hole for OutOfOrderWait are pushed through (the hole is then a
// counted gap), connections idle for IdleTimeout are closed, and requests
// unanswered for ResponseTimeout are emitted without a response.
func (r *Recorder) tick(now time.Time) {
	if now.Sub(r.lastTick) < tickEvery {
		return
	}
	if r.lastTick.IsZero() {
		r.lastTick = now
		return
	}
	r.lastTick = now
	r.flushing = true
	defer func() { r.flushing = false }()
	r.assembler.FlushWithOptions(reassembly.FlushOptions{
		T:  now.Add(-r.cfg.OutOfOrderWait),
		TC: now.Add(-r.cfg.IdleTimeout),
	})
	deadline := now.Add(-r.cfg.ResponseTimeout)
	for c := range r.conns {
		c.timeOut(deadline)
	}
}

// readFiles feeds every packet of the files to the assembler until they
// end or ctx is done.
func (r *Recorder) readFiles(ctx context.Context, fs *fileSet) error {
	r.stats.fileTotal.Store(fs.total())
	dec := newDecoder()
	var (
		lastProgress = time.Now()
		readBefore   int64 // bytes of the files already finished
		exchangesAt  uint64
	)
	for {
		if err := fs.advance(); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		path := fs.paths[fs.next-1]
		for i := 0; ; i++ {
			if i%1024 == 0 && ctx.Err() != nil {
				return ctx.Err()
			}
			data, ci, err := fs.src.ReadPacketData()
			if errors.Is(err, io.EOF) {
				break
			}
			if errors.Is(err, errSkipPacket) {
				// A pcapng interface of a link type we do not decode.
				r.stats.packets.Add(1)
				r.drop(dropDecode)
				continue
			}
			if err != nil {
				// A truncated or corrupt file: keep what was read, say
				// where it stopped, skip the rest of the file.
				r.drop(dropCorruptFile)
				r.log.Warn("capture file truncated or corrupt: the rest of it is skipped", "file", path, "err", err, "file_bytes", fs.size(path))
				break
			}
			// pcapng files may mix link types: each packet has its own.
			lt := fs.src.LinkType()
			r.packet(dec, lt, data, ci)
			if i%1024 == 0 {
				r.stats.fileRead.Store(readBefore + fs.read.n)
				if now := time.Now(); now.Sub(lastProgress) >= r.cfg.ProgressInterval {
					ex := r.stats.exchanges.Load()
					r.log.Info("reading capture", "read_bytes", readBefore+fs.read.n, "total_bytes", r.stats.fileTotal.Load(),
						"exchanges", ex, "exchanges_per_s", float64(ex-exchangesAt)/now.Sub(lastProgress).Seconds())
					lastProgress, exchangesAt = now, ex
				}
			}
		}
		readBefore += fs.read.n
		r.stats.fileRead.Store(readBefore)
	}
}

// readLive feeds packets from a live source until ctx is done, logging a
// summary line every StatsInterval.
func (r *Recorder) readLive(ctx context.Context, src PacketSource) error {
	lt := src.LinkType()
	if _, ok := firstLayer(lt, nil); !ok {
		return fmt.Errorf("capturing: link type %v is not supported (want Ethernet, Linux cooked, loopback or raw IP)", lt)
	}
	dec := newDecoder()
	kd, _ := src.(KernelDropper)
	lastStats, lastKernel := time.Now(), time.Now()
	for i := 0; ; i++ {
		if ctx.Err() != nil {
			r.readKernelDrops(kd)
			return ctx.Err()
		}
		data, ci, err := src.ReadPacketData()
		switch {
		case err == nil:
			r.packet(dec, lt, data, ci)
			if i%16 != 0 {
				// Reading the clock costs about as much as a small
				// packet: do it every 16 packets (and when idle).
				continue
			}
		case errors.Is(err, ErrNoPacket):
			r.tick(time.Now())
		case errors.Is(err, io.EOF):
			return nil
		default:
			return fmt.Errorf("capturing: %w", err)
		}
		if now := time.Now(); now.Sub(lastKernel) >= time.Second {
			r.readKernelDrops(kd)
			lastKernel = now
			if now.Sub(lastStats) >= r.cfg.StatsInterval {
				r.logSummary("recorder stats")
				lastStats = now
			}
		}
	}
}

func (r *Recorder) readKernelDrops(kd KernelDropper) {
	if kd == nil {
		return
	}
	if n, err := kd.KernelDrops(); err == nil {
		r.stats.kernelDrops.Store(n)
	}
}
