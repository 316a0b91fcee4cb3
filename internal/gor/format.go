package gor

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strconv"
)

// separatorLine is the line between two payloads. GoReplay writes each
// payload followed by "\n" + separatorLine + "\n"; its reader splits at
// lines equal to separatorLine, and so does this one (accepting a CRLF
// line end too, for files that went through a Windows editor).
const separatorLine = "🐵🙈🙉"

// Payload types, the first field of a payload header line.
const (
	typeRequest  = '1'
	typeResponse = '2'
	typeReplayed = '3'
)

// payload is one unit of a GoReplay file: a header line and a message.
type payload struct {
	// raw is the header line and the message, without the separator and
	// the line break in front of it. It is valid until the next call to
	// scanner.next.
	raw []byte
	// tooLarge means the payload was longer than the scanner's limit: raw
	// then holds only its first line (if that fits), the rest was skipped.
	tooLarge bool
	// size is the payload's full length.
	size int64
}

// scanner splits a GoReplay file into payloads, reading it line by line so
// that a payload over the limit is skipped without being held.
type scanner struct {
	br  *bufio.Reader
	max int // longest payload kept
	buf []byte
	err error // the error that ended the input, returned once buf is drained
}

func newScanner(r io.Reader, max int) *scanner {
	return &scanner{br: bufio.NewReaderSize(r, 64<<10), max: max}
}

// next returns the next payload. At the end of the input it returns io.EOF,
// or the read error that ended it. A payload the input ends in (no
// separator after it) is returned as it is: a cut message shows in its
// framing. Payloads holding only line breaks and blanks are skipped: they
// carry nothing (Join's separators between files make such).
func (s *scanner) next() (payload, error) {
	for {
		p, err := s.scan()
		if err != nil {
			return payload{}, err
		}
		if p.tooLarge || !blank(p.raw) {
			return p, nil
		}
	}
}

func (s *scanner) scan() (payload, error) {
	if s.err != nil {
		return payload{}, s.err
	}
	s.buf = s.buf[:0]
	var p payload
	atLineStart, prevCRLF := true, false
	for {
		line, err := s.br.ReadSlice('\n')
		if atLineStart && (err == nil || err == io.EOF) && isSeparator(line) {
			if err == io.EOF {
				s.err = io.EOF
			}
			// Drop the line break in front of the separator (a CRLF when
			// the separator line ends in one too).
			drop := 0
			if p.size > 0 {
				drop = 1
				if prevCRLF && bytes.HasSuffix(line, []byte("\r\n")) {
					drop = 2
				}
			}
			p.size -= int64(drop)
			if !p.tooLarge {
				p.raw = s.buf[:len(s.buf)-drop]
			}
			return p, nil
		}
		atLineStart = err == nil
		prevCRLF = bytes.HasSuffix(line, []byte("\r\n"))
		p.size += int64(len(line))
		if !p.tooLarge {
			s.buf = append(s.buf, line...)
			// The line break before a separator is not the payload's, so
			// the buffer may hold one byte more than the limit.
			if len(s.buf) > s.max+1 {
				p.tooLarge = true
				p.raw = firstLine(s.buf, min(s.max, 4096))
			}
		}
		switch {
		case err == nil, errors.Is(err, bufio.ErrBufferFull):
			continue
		case err == io.EOF:
			s.err = io.EOF
		default:
			s.err = err
		}
		if p.size == 0 {
			return payload{}, s.err
		}
		if !p.tooLarge {
			p.raw = s.buf
		}
		return p, nil
	}
}

// isSeparator reports whether line (with its line break) is a separator.
func isSeparator(line []byte) bool {
	line = bytes.TrimSuffix(line, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	return string(line) == separatorLine
}

// firstLine returns b up to and including its first line break, if that is
// within limit bytes; otherwise nothing.
func firstLine(b []byte, limit int) []byte {
	if i := bytes.IndexByte(b[:min(len(b), limit)], '\n'); i >= 0 {
		return b[:i+1]
	}
	return nil
}

func blank(b []byte) bool {
	for _, c := range b {
		if c != '\n' && c != '\r' && c != ' ' && c != '\t' {
			return false
		}
	}
	return true
}

// meta is a parsed payload header line.
type meta struct {
	typ     byte
	id      string
	ts      int64 // TIMESTAMP, ns since the epoch
	latency int64 // LATENCY in ns; -1 when absent (or negative)
}

// maxIDLen bounds a payload ID; GoReplay's are 24 or 40 hex digits.
const maxIDLen = 128

// splitPayload parses the header line of raw and returns it with the
// message after it. reason is empty on success, or the Stats.Malformed
// key of what is wrong.
func splitPayload(raw []byte) (m meta, msg []byte, reason string) {
	raw = trimLeadingLineBreaks(raw)
	line, msg, _ := bytes.Cut(raw, []byte("\n"))
	fields := bytes.Fields(line) // also drops a CR and trailing blanks
	if len(fields) < 3 || len(fields[0]) != 1 || len(fields[1]) > maxIDLen {
		return meta{}, nil, MalformedHeaderLine
	}
	ts, err := strconv.ParseInt(string(fields[2]), 10, 64)
	if err != nil {
		return meta{}, nil, MalformedHeaderLine
	}
	m = meta{typ: fields[0][0], id: string(fields[1]), ts: ts, latency: -1}
	if len(fields) > 3 {
		// Not an integer: a field of a fork (a client IP), not LATENCY.
		if lat, err := strconv.ParseInt(string(fields[3]), 10, 64); err == nil && lat >= 0 {
			m.latency = lat
		}
	}
	switch m.typ {
	case typeRequest, typeResponse, typeReplayed:
	default:
		return m, nil, MalformedType
	}
	return m, msg, ""
}
