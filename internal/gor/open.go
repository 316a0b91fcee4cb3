package gor

import (
	"bufio"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
)

// OpenFile opens a GoReplay capture for NewReader: path, or stdin for "-".
// Gzip data (what gor writes to a ".gz" output file) is recognised by its
// content, whatever the name, and decompressed. A gzip stream that ends
// early (gor was killed) reads as io.ErrUnexpectedEOF at that point. Close
// closes the file (not stdin).
func OpenFile(path string) (io.ReadCloser, error) {
	var f io.ReadCloser
	name := path
	if path == "-" {
		f, name = io.NopCloser(os.Stdin), "stdin"
	} else {
		file, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("opening GoReplay capture: %w", err)
		}
		f = file
	}
	br := bufio.NewReaderSize(f, 64<<10)
	magic, err := br.Peek(2)
	if err != nil && !errors.Is(err, io.EOF) {
		f.Close()
		return nil, fmt.Errorf("reading GoReplay capture %s: %w", name, err)
	}
	if len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("reading GoReplay capture %s: gzip header: %w", name, err)
		}
		return &readCloser{Reader: zr, close: func() error { return errors.Join(zr.Close(), f.Close()) }}, nil
	}
	return &readCloser{Reader: br, close: f.Close}, nil
}

type readCloser struct {
	io.Reader
	close func() error
}

func (rc *readCloser) Close() error { return rc.close() }

// Join returns a reader of the captures rs one after the other, as one
// capture, so that a request and its response written to different files
// (gor rotates its output by size or count) are paired. A separator is put
// between two files, so that a payload cut at the end of one does not run
// into the first payload of the next. A read error of one of them ends the
// joined reader with that error, as io.MultiReader does.
func Join(rs ...io.Reader) io.Reader {
	parts := make([]io.Reader, 0, 2*len(rs))
	for i, r := range rs {
		if i > 0 {
			parts = append(parts, &separatorReader{})
		}
		parts = append(parts, r)
	}
	return io.MultiReader(parts...)
}

// separatorReader reads one payload separator. Between two files it makes
// at most an empty payload, which the Reader skips.
type separatorReader struct{ off int }

const joinSeparator = "\n" + separatorLine + "\n"

func (s *separatorReader) Read(p []byte) (int, error) {
	if s.off == len(joinSeparator) {
		return 0, io.EOF
	}
	n := copy(p, joinSeparator[s.off:])
	s.off += n
	return n, nil
}
