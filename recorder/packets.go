package recorder

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// packetSource is the one input seam: a pcap file, a pcapng file and (in
// issue 3) a live handle look the same. ReadPacketData returns io.EOF at
// the end; the data is only valid until the next call.
type packetSource interface {
	ReadPacketData() ([]byte, gopacket.CaptureInfo, error)
	LinkType() layers.LinkType
}

// fileSet reads several capture files in order.
type fileSet struct {
	paths []string
	next  int
	cur   *os.File
	src   packetSource
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
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			n += st.Size()
		}
	}
	return n
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
	br := bufio.NewReaderSize(fs.read, 1<<16)
	magic, err := br.Peek(4)
	if err != nil {
		return fmt.Errorf("reading %s: not a pcap or pcapng file (%d bytes)", path, len(magic))
	}
	if string(magic) == "\x0a\x0d\x0d\x0a" {
		ng, err := pcapgo.NewNgReader(br, pcapgo.DefaultNgReaderOptions)
		if err != nil {
			return fmt.Errorf("reading pcapng %s: %w", path, err)
		}
		fs.src = ng
		return nil
	}
	pr, err := pcapgo.NewReader(br)
	if err != nil {
		return fmt.Errorf("reading %s: not a pcap or pcapng file: %w", path, err)
	}
	fs.src = pr
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
	case layers.LinkTypeRaw, layers.LinkTypeIPv4, layers.LinkTypeIPv6, 12:
		if len(data) > 0 && data[0]>>4 == 6 {
			return layers.LayerTypeIPv6, true
		}
		return layers.LayerTypeIPv4, true
	}
	return 0, false
}

// tcpPacket decodes data; ok is false for anything but TCP over IP.
func (d *decoder) tcpPacket(lt layers.LinkType, data []byte) (netFlow gopacket.Flow, tcp *layers.TCP, ok bool) {
	first, known := firstLayer(lt, data)
	if !known {
		return gopacket.Flow{}, nil, false
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

// readPackets feeds every packet of src to the assembler until the files
// end or ctx is done.
func (r *Recorder) readPackets(ctx context.Context, fs *fileSet) error {
	r.stats.fileTotal.Store(fs.total())
	dec := newDecoder()
	var (
		lastFlush    time.Time // capture time of the last idle flush
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
		lt := fs.src.LinkType()
		if _, ok := firstLayer(lt, nil); !ok {
			return fmt.Errorf("reading %s: link type %v is not supported (want Ethernet, Linux cooked, loopback or raw IP)", fs.paths[fs.next-1], lt)
		}
		for i := 0; ; i++ {
			if i%1024 == 0 && ctx.Err() != nil {
				return ctx.Err()
			}
			data, ci, err := fs.src.ReadPacketData()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				// A truncated or corrupt file: keep what was read, say
				// where it stopped.
				r.log.Warn("capture file ends early", "file", fs.paths[fs.next-1], "err", err)
				r.drop(dropDecode)
				break
			}
			r.stats.packets.Add(1)
			r.stats.bytes.Add(uint64(len(data)))
			netFlow, tcp, ok := dec.tcpPacket(lt, data)
			if !ok {
				r.drop(dropDecode)
				continue
			}
			ac := assemblerContext(ci)
			r.assembler.AssembleWithContext(netFlow, tcp, &ac)

			if ci.Timestamp.Sub(lastFlush) > r.cfg.IdleTimeout/4 {
				if !lastFlush.IsZero() {
					r.assembler.FlushCloseOlderThan(ci.Timestamp.Add(-r.cfg.IdleTimeout))
				}
				lastFlush = ci.Timestamp
			}
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
