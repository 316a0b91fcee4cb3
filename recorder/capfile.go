package recorder

import (
	"bufio"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// Capture files are read by the two readers here rather than by
// gopacket/pcapgo, whose readers size their packet buffer from the file
// (a corrupt snap length or capture length of 4 GB allocates 4 GB), and
// whose pcapng reader skips packets of a second link type without a word.
// These readers hold at most maxSnaplen bytes of packet data, check every
// length against the bytes it claims before reading them, and say which
// record, at which byte, is truncated or corrupt.
//
// Both read into one buffer reused for every packet: the data returned is
// valid until the next call (reassembly copies what it holds back, the
// parser copies what it keeps).

// maxSnaplen is the most bytes of one packet a capture file may hold, as
// in tcpdump and libpcap (MAXIMUM_SNAPLEN). A record claiming more is
// corrupt.
const maxSnaplen = 262144

// maxMetaBlock bounds the pcapng blocks read whole to learn something
// from them (section headers, interface descriptions); larger ones are
// corrupt. Blocks of other types are skipped without being held.
const maxMetaBlock = 1 << 20

// errSkipPacket is returned for a packet the reader read but cannot hand
// over: it was captured on a pcapng interface whose link type the recorder
// does not decode. The caller counts it and reads on.
var errSkipPacket = errors.New("packet on an interface with an unsupported link type")

// unsupportedLinkTypeError says which link type a file uses.
type unsupportedLinkTypeError uint32

func (e unsupportedLinkTypeError) Error() string {
	return fmt.Sprintf("link type %d is not supported (want Ethernet, Linux cooked, loopback or raw IP)", uint32(e))
}

// fileLinkType maps a LINKTYPE_ value from a capture file to gopacket's
// LinkType (8 bits here, see linkTypeLinuxSLL2) when the recorder decodes
// it.
func fileLinkType(v uint32) (layers.LinkType, bool) {
	switch {
	case v == 276:
		return linkTypeLinuxSLL2, true
	case v == uint32(linkTypeLinuxSLL2): // 20 stands for 276 here: refuse the real 20
		return 0, false
	case v > 0xff:
		return 0, false
	}
	lt := layers.LinkType(v)
	_, ok := firstLayer(lt, nil)
	return lt, ok
}

// openCapture reads the file header of a pcap or pcapng capture, gzipped
// or not, and returns a PacketSource for its packets. Errors do not name
// the file; the caller does.
func openCapture(r io.Reader) (PacketSource, error) {
	br := bufio.NewReaderSize(r, 1<<16)
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		gz, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("reading the gzip header: %w", err)
		}
		br = bufio.NewReaderSize(gz, 1<<16)
	}
	magic, err := br.Peek(4)
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF): // a gzip stream cut short
		return nil, fmt.Errorf("truncated: the gzip stream ends after %d bytes of capture", len(magic))
	case len(magic) == 0 && errors.Is(err, io.EOF):
		return nil, errors.New("the file is empty: not a pcap or pcapng capture")
	case len(magic) < 4 && errors.Is(err, io.EOF):
		return nil, fmt.Errorf("not a pcap or pcapng file: only %d bytes", len(magic))
	case err != nil:
		return nil, err
	case string(magic) == "\x0a\x0d\x0d\x0a":
		return newNgReader(br)
	}
	return newPcapReader(br)
}

// readFull reads len(b) bytes; io.EOF only when none were there.
func readFull(r io.Reader, b []byte) (int, error) {
	n, err := io.ReadFull(r, b)
	if errors.Is(err, io.ErrUnexpectedEOF) {
		err = io.EOF // the callers say what was cut
	}
	return n, err
}

// pcapReader reads classic pcap files (microsecond or nanosecond
// timestamps, either byte order).
type pcapReader struct {
	r      *bufio.Reader
	order  binary.ByteOrder
	nanos  bool
	link   layers.LinkType
	buf    []byte // the packet storage, reused; at most maxSnaplen
	hdr    [16]byte
	off    int64 // bytes consumed
	record int   // records read
}

const (
	pcapMagicMicros = 0xa1b2c3d4
	pcapMagicNanos  = 0xa1b23c4d
)

func newPcapReader(br *bufio.Reader) (*pcapReader, error) {
	var h [24]byte
	// The magic first (openCapture peeked it): a short file that is not
	// a capture is "not a capture", not "truncated".
	if _, err := readFull(br, h[:4]); err != nil {
		return nil, err
	}
	p := &pcapReader{r: br, off: 24}
	switch {
	case binary.LittleEndian.Uint32(h[:]) == pcapMagicMicros:
		p.order = binary.LittleEndian
	case binary.BigEndian.Uint32(h[:]) == pcapMagicMicros:
		p.order = binary.BigEndian
	case binary.LittleEndian.Uint32(h[:]) == pcapMagicNanos:
		p.order, p.nanos = binary.LittleEndian, true
	case binary.BigEndian.Uint32(h[:]) == pcapMagicNanos:
		p.order, p.nanos = binary.BigEndian, true
	default:
		return nil, fmt.Errorf("not a pcap or pcapng file: it starts with % x", h[:4])
	}
	if n, err := readFull(br, h[4:]); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("truncated: the file ends inside the pcap file header (%d of 24 bytes)", 4+n)
		}
		return nil, err
	}
	if major, minor := p.order.Uint16(h[4:]), p.order.Uint16(h[6:]); major != 2 {
		return nil, fmt.Errorf("corrupt pcap file header: version %d.%d (want 2.x)", major, minor)
	}
	// The snap length (h[16:20]) is not trusted: records are bounded by
	// maxSnaplen, as tcpdump does. The link type is the low 16 bits; the
	// upper ones may describe a frame check sequence.
	raw := p.order.Uint32(h[20:]) & 0xffff
	lt, ok := fileLinkType(raw)
	if !ok {
		return nil, unsupportedLinkTypeError(raw)
	}
	p.link = lt
	return p, nil
}

func (p *pcapReader) LinkType() layers.LinkType { return p.link }

func (p *pcapReader) ReadPacketData() ([]byte, gopacket.CaptureInfo, error) {
	start := p.off
	n, err := readFull(p.r, p.hdr[:])
	p.off += int64(n)
	if err != nil {
		if errors.Is(err, io.EOF) && n > 0 {
			err = fmt.Errorf("truncated: the file ends inside the header of record %d at byte %d (%d of 16 bytes)", p.record+1, start, n)
		}
		return nil, gopacket.CaptureInfo{}, err
	}
	caplen, origlen := p.order.Uint32(p.hdr[8:]), p.order.Uint32(p.hdr[12:])
	if caplen > maxSnaplen {
		return nil, gopacket.CaptureInfo{}, fmt.Errorf("corrupt: record %d at byte %d claims %d bytes of packet data, more than the %d a capture holds", p.record+1, start, caplen, maxSnaplen)
	}
	data := p.packetBuf(int(caplen))
	n, err = readFull(p.r, data)
	p.off += int64(n)
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = fmt.Errorf("truncated: the file ends inside record %d at byte %d (%d of its %d bytes of packet data)", p.record+1, start, n, caplen)
		}
		return nil, gopacket.CaptureInfo{}, err
	}
	p.record++
	sec, frac := int64(p.order.Uint32(p.hdr[0:])), int64(p.order.Uint32(p.hdr[4:]))
	if !p.nanos {
		frac *= 1000
	}
	return data, gopacket.CaptureInfo{Timestamp: time.Unix(sec, frac).UTC(), CaptureLength: int(caplen), Length: int(origlen)}, nil
}

func (p *pcapReader) packetBuf(n int) []byte {
	if cap(p.buf) < n {
		p.buf = make([]byte, min(max(n, 2*cap(p.buf), 2048), maxSnaplen))
	}
	return p.buf[:n]
}

// ngReader reads pcapng files: every section, every interface; Enhanced,
// Simple and (obsolete) Packet Blocks; other blocks are skipped. Packets
// may come from interfaces of different link types: LinkType is the one
// of the packet just read.
type ngReader struct {
	r      *bufio.Reader
	order  binary.ByteOrder
	ifaces []ngInterface // of the current section
	link   layers.LinkType
	buf    []byte // the packet storage, reused; at most maxSnaplen
	meta   []byte // a section header or interface description being read
	hdr    [20]byte
	off    int64 // bytes consumed
	block  int   // blocks read
}

type ngInterface struct {
	link     layers.LinkType
	raw      uint16 // the link type in the file
	ok       bool   // the recorder decodes this link type
	snaplen  uint32
	resolDec bool  // timestamps in units of 10^-resol s (else 2^-resol s)
	resol    uint8 // default 6: microseconds
	offset   int64 // seconds added to every timestamp (if_tsoffset)
}

const (
	ngSectionHeader    = 0x0a0d0d0a
	ngInterfaceDesc    = 1
	ngObsoletePacket   = 2
	ngSimplePacket     = 3
	ngEnhancedPacket   = 6
	ngByteOrderMagic   = 0x1a2b3c4d
	ngOptionTSResol    = 9
	ngOptionTSOffset   = 14
	ngOptionEndOfOpts  = 0
	ngMinBlock         = 12 // type, length, trailing length
	ngPacketHeaderSize = 20 // interface, timestamp, captured and original length
)

// newNgReader reads the first section header and the blocks up to the
// first interface description, which gives the file's link type (a file
// without one has no packets).
func newNgReader(br *bufio.Reader) (*ngReader, error) {
	g := &ngReader{r: br}
	typ, length, start, err := g.blockHeader()
	if err != nil {
		return nil, err
	}
	if typ != ngSectionHeader {
		return nil, fmt.Errorf("corrupt: pcapng block 1 has type %#x, want a section header", typ)
	}
	if err := g.sectionHeader(length, start); err != nil {
		return nil, err
	}
	for len(g.ifaces) == 0 {
		typ, length, start, err := g.blockHeader()
		if errors.Is(err, io.EOF) {
			return g, nil // no interface, so no packets
		}
		if err != nil {
			return nil, err
		}
		switch typ {
		case ngSectionHeader:
			err = g.sectionHeader(length, start)
		case ngInterfaceDesc:
			err = g.interfaceDesc(length, start)
		case ngEnhancedPacket, ngSimplePacket, ngObsoletePacket:
			err = fmt.Errorf("corrupt: pcapng block %d at byte %d is a packet before any interface description", g.block, start)
		default:
			err = g.skip(length, 8, start)
		}
		if err != nil {
			return nil, err
		}
	}
	if !g.ifaces[0].ok {
		return nil, unsupportedLinkTypeError(g.ifaces[0].raw)
	}
	g.link = g.ifaces[0].link
	return g, nil
}

func (g *ngReader) LinkType() layers.LinkType { return g.link }

// blockHeader reads a block's type and total length and checks the length.
// For a section header it also reads the byte-order magic (the length is
// in the section's byte order), which the length then includes as read.
func (g *ngReader) blockHeader() (typ, length uint32, start int64, err error) {
	start = g.off
	var h [12]byte
	n, err := readFull(g.r, h[:8])
	g.off += int64(n)
	if err != nil {
		if errors.Is(err, io.EOF) && n > 0 {
			err = fmt.Errorf("truncated: the file ends inside the header of pcapng block %d at byte %d", g.block+1, start)
		}
		return 0, 0, start, err
	}
	g.block++
	order := g.order
	typ = binary.LittleEndian.Uint32(h[:]) // the section header type reads the same both ways
	if typ == ngSectionHeader {
		n, err := readFull(g.r, h[8:12])
		g.off += int64(n)
		if err != nil {
			return 0, 0, start, g.cut(start, err)
		}
		switch {
		case binary.LittleEndian.Uint32(h[8:]) == ngByteOrderMagic:
			order = binary.LittleEndian
		case binary.BigEndian.Uint32(h[8:]) == ngByteOrderMagic:
			order = binary.BigEndian
		default:
			return 0, 0, start, fmt.Errorf("corrupt: pcapng section header (block %d at byte %d) has byte-order magic % x", g.block, start, h[8:12])
		}
		g.order = order
	} else if order == nil {
		return 0, 0, start, fmt.Errorf("corrupt: pcapng block %d at byte %d comes before any section header", g.block, start)
	} else {
		typ = order.Uint32(h[:])
	}
	length = order.Uint32(h[4:])
	if length < ngMinBlock || length%4 != 0 {
		return 0, 0, start, fmt.Errorf("corrupt: pcapng block %d at byte %d (type %#x) has length %d (want a multiple of 4, at least %d)", g.block, start, typ, length, ngMinBlock)
	}
	return typ, length, start, nil
}

// cut turns an end of file inside the block at start into a clear error.
func (g *ngReader) cut(start int64, err error) error {
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("truncated: the file ends inside pcapng block %d at byte %d", g.block, start)
	}
	return err
}

// skip discards the rest of a block of the given length of which read
// bytes were read, and checks its trailing length.
func (g *ngReader) skip(length, read uint32, start int64) error {
	if length < read+4 {
		return fmt.Errorf("corrupt: pcapng block %d at byte %d is %d bytes long, too short for its fields", g.block, start, length)
	}
	n, err := g.r.Discard(int(length - read - 4))
	g.off += int64(n)
	if err != nil {
		return g.cut(start, err)
	}
	return g.trailer(length, start)
}

// trailer reads a block's trailing copy of its length.
func (g *ngReader) trailer(length uint32, start int64) error {
	var t [4]byte
	n, err := readFull(g.r, t[:])
	g.off += int64(n)
	if err != nil {
		return g.cut(start, err)
	}
	if got := g.order.Uint32(t[:]); got != length {
		return fmt.Errorf("corrupt: pcapng block %d at byte %d is %d bytes long but its trailer says %d", g.block, start, length, got)
	}
	return nil
}

// body reads the rest of a block (after read bytes) into g.meta, without
// its trailer, which it checks.
func (g *ngReader) body(length, read uint32, start int64, what string) ([]byte, error) {
	if length > maxMetaBlock {
		return nil, fmt.Errorf("corrupt: pcapng %s (block %d at byte %d) is %d bytes long, more than %d", what, g.block, start, length, maxMetaBlock)
	}
	if length < read+4 {
		return nil, fmt.Errorf("corrupt: pcapng block %d at byte %d is %d bytes long, too short for a %s", g.block, start, length, what)
	}
	n := int(length - read - 4)
	if cap(g.meta) < n {
		g.meta = make([]byte, n)
	}
	b := g.meta[:n]
	m, err := readFull(g.r, b)
	g.off += int64(m)
	if err != nil {
		return nil, g.cut(start, err)
	}
	return b, g.trailer(length, start)
}

// sectionHeader reads a section header (its type, length and byte-order
// magic already read) and starts a new section: interfaces are numbered
// afresh.
func (g *ngReader) sectionHeader(length uint32, start int64) error {
	b, err := g.body(length, 12, start, "section header")
	if err != nil {
		return err
	}
	if len(b) < 12 {
		return fmt.Errorf("corrupt: pcapng section header (block %d at byte %d) is %d bytes long", g.block, start, length)
	}
	if major := g.order.Uint16(b); major != 1 {
		return fmt.Errorf("pcapng section header (block %d at byte %d): version %d.%d is not supported (want 1.x)", g.block, start, major, g.order.Uint16(b[2:]))
	}
	g.ifaces = g.ifaces[:0]
	return nil
}

// interfaceDesc reads an interface description: link type, snap length
// and timestamp resolution and offset.
func (g *ngReader) interfaceDesc(length uint32, start int64) error {
	b, err := g.body(length, 8, start, "interface description")
	if err != nil {
		return err
	}
	if len(b) < 8 {
		return fmt.Errorf("corrupt: pcapng interface description (block %d at byte %d) is %d bytes long", g.block, start, length)
	}
	in := ngInterface{raw: g.order.Uint16(b), snaplen: g.order.Uint32(b[4:]), resolDec: true, resol: 6}
	in.link, in.ok = fileLinkType(uint32(in.raw))
	for opts := b[8:]; len(opts) >= 4; {
		code, olen := g.order.Uint16(opts), int(g.order.Uint16(opts[2:]))
		if code == ngOptionEndOfOpts {
			break
		}
		if 4+olen > len(opts) {
			return fmt.Errorf("corrupt: pcapng interface description (block %d at byte %d) has an option longer than the block", g.block, start)
		}
		v := opts[4 : 4+olen]
		switch {
		case code == ngOptionTSResol && olen == 1:
			in.resolDec, in.resol = v[0]&0x80 == 0, v[0]&0x7f
			if (in.resolDec && in.resol > 19) || (!in.resolDec && in.resol > 63) {
				return fmt.Errorf("corrupt: pcapng interface description (block %d at byte %d) has timestamp resolution %#x", g.block, start, v[0])
			}
		case code == ngOptionTSOffset && olen == 8:
			in.offset = int64(g.order.Uint64(v))
		}
		opts = opts[min(len(opts), 4+(olen+3)&^3):]
	}
	g.ifaces = append(g.ifaces, in)
	return nil
}

func (g *ngReader) ReadPacketData() ([]byte, gopacket.CaptureInfo, error) {
	for {
		typ, length, start, err := g.blockHeader()
		if err != nil {
			return nil, gopacket.CaptureInfo{}, err
		}
		switch typ {
		case ngEnhancedPacket, ngObsoletePacket, ngSimplePacket:
			return g.packet(typ, length, start)
		case ngSectionHeader:
			err = g.sectionHeader(length, start)
		case ngInterfaceDesc:
			err = g.interfaceDesc(length, start)
		default:
			err = g.skip(length, 8, start)
		}
		if err != nil {
			return nil, gopacket.CaptureInfo{}, err
		}
	}
}

// packet reads a packet block's fixed fields and data.
func (g *ngReader) packet(typ, length uint32, start int64) ([]byte, gopacket.CaptureInfo, error) {
	fixed := uint32(ngPacketHeaderSize)
	if typ == ngSimplePacket {
		fixed = 4
	}
	if length < 8+fixed+4 {
		return nil, gopacket.CaptureInfo{}, fmt.Errorf("corrupt: pcapng block %d at byte %d is %d bytes long, too short for a packet", g.block, start, length)
	}
	n, err := readFull(g.r, g.hdr[:fixed])
	g.off += int64(n)
	if err != nil {
		return nil, gopacket.CaptureInfo{}, g.cut(start, err)
	}
	room := length - 8 - fixed - 4 // packet data, padding and options
	var (
		iface           int
		units           uint64
		caplen, origlen uint32
	)
	switch typ {
	case ngEnhancedPacket:
		iface = int(g.order.Uint32(g.hdr[0:]))
		units = uint64(g.order.Uint32(g.hdr[4:]))<<32 | uint64(g.order.Uint32(g.hdr[8:]))
		caplen, origlen = g.order.Uint32(g.hdr[12:]), g.order.Uint32(g.hdr[16:])
	case ngObsoletePacket:
		iface = int(g.order.Uint16(g.hdr[0:]))
		units = uint64(g.order.Uint32(g.hdr[4:]))<<32 | uint64(g.order.Uint32(g.hdr[8:]))
		caplen, origlen = g.order.Uint32(g.hdr[12:]), g.order.Uint32(g.hdr[16:])
	case ngSimplePacket:
		// No timestamp; the data fills the block (with its padding) up
		// to the original length or the first interface's snap length.
		origlen = g.order.Uint32(g.hdr[0:])
		caplen = min(origlen, room)
		if len(g.ifaces) > 0 && g.ifaces[0].snaplen > 0 {
			caplen = min(caplen, g.ifaces[0].snaplen)
		}
	}
	if iface >= len(g.ifaces) {
		return nil, gopacket.CaptureInfo{}, fmt.Errorf("corrupt: pcapng packet (block %d at byte %d) names interface %d, the section has %d", g.block, start, iface, len(g.ifaces))
	}
	if caplen > room {
		return nil, gopacket.CaptureInfo{}, fmt.Errorf("corrupt: pcapng packet (block %d at byte %d) claims %d bytes of packet data in a %d-byte block", g.block, start, caplen, length)
	}
	if caplen > maxSnaplen {
		return nil, gopacket.CaptureInfo{}, fmt.Errorf("corrupt: pcapng packet (block %d at byte %d) claims %d bytes of packet data, more than the %d a capture holds", g.block, start, caplen, maxSnaplen)
	}
	data := g.packetBuf(int(caplen))
	n, err = readFull(g.r, data)
	g.off += int64(n)
	if err != nil {
		return nil, gopacket.CaptureInfo{}, g.cut(start, err)
	}
	if err := g.skip(length, 8+fixed+caplen, start); err != nil {
		return nil, gopacket.CaptureInfo{}, err
	}
	in := &g.ifaces[iface]
	if !in.ok {
		return nil, gopacket.CaptureInfo{}, errSkipPacket
	}
	g.link = in.link
	ci := gopacket.CaptureInfo{CaptureLength: int(caplen), Length: int(origlen), InterfaceIndex: iface}
	if typ != ngSimplePacket {
		ci.Timestamp = in.time(units)
	}
	return data, ci, nil
}

func (g *ngReader) packetBuf(n int) []byte {
	if cap(g.buf) < n {
		g.buf = make([]byte, min(max(n, 2*cap(g.buf), 2048), maxSnaplen))
	}
	return g.buf[:n]
}

// time converts a timestamp in the interface's units to a time.
func (in *ngInterface) time(units uint64) time.Time {
	var sec, nsec uint64
	if in.resolDec {
		per := pow10[in.resol] // units per second
		sec, nsec = units/per, units%per
		if in.resol <= 9 {
			nsec *= pow10[9-in.resol]
		} else {
			nsec /= pow10[in.resol-9]
		}
	} else {
		sec = units >> in.resol
		frac := units & (1<<in.resol - 1)
		hi, lo := bits.Mul64(frac, 1e9) // frac·10⁹ / 2^resol without overflow
		if in.resol > 0 {
			nsec = hi<<(64-in.resol) | lo>>in.resol
		}
	}
	return time.Unix(int64(sec)+in.offset, int64(nsec)).UTC()
}

var pow10 = func() (p [20]uint64) {
	p[0] = 1
	for i := 1; i < len(p); i++ {
		p[i] = p[i-1] * 10
	}
	return p
}()
