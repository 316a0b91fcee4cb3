// Package live captures packets from a network interface with libpcap, as
// a recorder.PacketSource. It is the only package in tapline that uses cgo
// (gopacket/pcap); building it needs libpcap's headers (Debian:
// libpcap-dev) and running it needs root or CAP_NET_RAW.
//
// The capture is bypass: it reads copies of the packets the kernel hands
// to the production application and never sits in its path.
package live

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcap"

	"github.com/tapline/tapline/recorder"
)

// Config configures a live capture. Zero values are the documented
// defaults.
type Config struct {
	Interface string // required, e.g. "eth0" or "lo"
	// Ports limits the capture to TCP traffic on these ports (either
	// direction). Ignored when BPF is set. Default: all TCP. Either way
	// pure ACKs are filtered out in the kernel (see Filter).
	Ports []int
	// BPF is a complete capture filter in tcpdump syntax; it replaces the
	// one built from Ports.
	BPF string
	// SnapLen is the most bytes kept of each packet. Default 262144: whole
	// packets, also with segmentation offload on loopback.
	SnapLen int
	// BufferSize is the kernel capture buffer in bytes; a larger one
	// absorbs bursts without drops. Default 16 MiB.
	BufferSize int
	// Promiscuous also captures traffic not addressed to this host.
	// Default false.
	Promiscuous bool
	// ReadTimeout is how long a read waits for packets before returning
	// recorder.ErrNoPacket, so the recorder can flush and stop. Default
	// 100ms.
	ReadTimeout time.Duration
}

// withPayload keeps, of IPv4 TCP, only segments that carry payload or
// open or close the connection: the pure ACKs (often a third or more of
// all packets) are dropped in the kernel, since reassembly does not need
// them. IPv6 is kept whole (its extension headers make the payload length
// hard to compute in BPF).
const withPayload = "((ip and (tcp[tcpflags] & (tcp-syn|tcp-fin|tcp-rst) != 0 or " +
	"ip[2:2] - ((ip[0] & 0xf) << 2) - ((tcp[12] & 0xf0) >> 2) > 0)) or ip6)"

// Filter returns the BPF filter cfg captures with: TCP on Ports (all TCP
// without Ports) without pure ACKs, unless BPF replaces it.
func (cfg Config) Filter() string {
	if cfg.BPF != "" {
		return cfg.BPF
	}
	if len(cfg.Ports) == 0 {
		return "tcp and " + withPayload
	}
	ports := make([]string, len(cfg.Ports))
	for i, p := range cfg.Ports {
		ports[i] = "port " + strconv.Itoa(p)
	}
	return "tcp and (" + strings.Join(ports, " or ") + ") and " + withPayload
}

// Source is an open live capture. Close it when done.
type Source struct {
	h *pcap.Handle
}

var (
	_ recorder.PacketSource  = (*Source)(nil)
	_ recorder.KernelDropper = (*Source)(nil)
)

// Open starts capturing on cfg.Interface.
func Open(cfg Config) (*Source, error) {
	if cfg.Interface == "" {
		return nil, errors.New("live capture: no interface")
	}
	for _, p := range cfg.Ports {
		if p <= 0 || p > 65535 {
			return nil, fmt.Errorf("live capture: port %d out of range", p)
		}
	}
	if cfg.SnapLen <= 0 {
		cfg.SnapLen = 262144
	}
	if cfg.BufferSize <= 0 {
		cfg.BufferSize = 16 << 20
	}
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = 100 * time.Millisecond
	}
	in, err := pcap.NewInactiveHandle(cfg.Interface)
	if err != nil {
		return nil, fmt.Errorf("live capture on %s: %w", cfg.Interface, err)
	}
	defer in.CleanUp()
	for _, set := range []func() error{
		func() error { return in.SetSnapLen(cfg.SnapLen) },
		func() error { return in.SetBufferSize(cfg.BufferSize) },
		func() error { return in.SetPromisc(cfg.Promiscuous) },
		func() error { return in.SetTimeout(cfg.ReadTimeout) },
	} {
		if err := set(); err != nil {
			return nil, fmt.Errorf("live capture on %s: %w", cfg.Interface, err)
		}
	}
	h, err := in.Activate()
	if err != nil {
		return nil, fmt.Errorf("live capture on %s: %w (capturing needs root or CAP_NET_RAW; list interfaces with `ip link`)", cfg.Interface, err)
	}
	if err := h.SetBPFFilter(cfg.Filter()); err != nil {
		h.Close()
		return nil, fmt.Errorf("live capture on %s: filter %q: %w", cfg.Interface, cfg.Filter(), err)
	}
	return &Source{h: h}, nil
}

// ReadPacketData returns the next packet, or recorder.ErrNoPacket when the
// read timeout passed without one.
func (s *Source) ReadPacketData() ([]byte, gopacket.CaptureInfo, error) {
	data, ci, err := s.h.ZeroCopyReadPacketData()
	if errors.Is(err, pcap.NextErrorTimeoutExpired) {
		return nil, ci, recorder.ErrNoPacket
	}
	return data, ci, err
}

// LinkType is the interface's link type.
func (s *Source) LinkType() layers.LinkType { return s.h.LinkType() }

// KernelDrops is what the kernel and the interface dropped so far.
func (s *Source) KernelDrops() (uint64, error) {
	st, err := s.h.Stats()
	if err != nil {
		return 0, err
	}
	return uint64(st.PacketsDropped) + uint64(st.PacketsIfDropped), nil
}

// Close stops the capture.
func (s *Source) Close() { s.h.Close() }
