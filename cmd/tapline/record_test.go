package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// TestRecordDamagedCaptures runs `tapline record --pcap FILE --to -` on
// damaged copies of the real loopback capture (10 exchanges). A damaged
// header is an error naming the file (exit status 1, nothing printed); a
// file damaged later gives the exchanges before the damage, a warning
// naming the file and where it stopped, the drop in the summary line, and
// exit status 0.
func TestRecordDamagedCaptures(t *testing.T) {
	full, err := os.ReadFile("../../recorder/testdata/loopback.pcap")
	if err != nil {
		t.Fatal(err)
	}
	// Where each record starts (little-endian pcap).
	var starts []int
	for at := 24; at < len(full); at += 16 + int(binary.LittleEndian.Uint32(full[at+8:])) {
		starts = append(starts, at)
	}
	set32 := func(at int, v uint32) []byte {
		b := bytes.Clone(full)
		binary.LittleEndian.PutUint32(b[at:], v)
		return b
	}
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	w.Write(full)
	w.Close()

	cases := []struct {
		name    string
		file    []byte
		wantErr string // after "reading FILE: "
		lines   int
		logs    []string
	}{
		{name: "empty", file: nil, wantErr: "the file is empty: not a pcap or pcapng capture"},
		{name: "not a capture", file: []byte("hello, world\n"), wantErr: "not a pcap or pcapng file: it starts with 68 65 6c 6c"},
		{name: "corrupt file header", file: set32(4, 0x00090009), wantErr: "corrupt pcap file header: version 9.9 (want 2.x)"},
		{name: "whole and gzipped", file: gz.Bytes(), lines: 10,
			logs: []string{"exchanges=10 responses_missing=0"}},
		{name: "snap length 4 GB", file: set32(16, 0xffffffff), lines: 10,
			logs: []string{"exchanges=10 responses_missing=0"}},
		{name: "cut inside record 28", file: full[:len(full)/3], lines: 8,
			logs: []string{
				`level=WARN msg="capture file truncated or corrupt: the rest of it is skipped" file=FILE err="truncated: the file ends inside record 28 at byte 40861 (27912 of its 45122 bytes of packet data)" file_bytes=68789`,
				"exchanges=8 responses_missing=1", "corrupt_file:1", "incomplete:1"}},
		{name: "record 5 claims 2 GiB", file: set32(starts[4]+8, 1<<31), lines: 1,
			logs: []string{
				`err="corrupt: record 5 at byte ` + strconv.Itoa(starts[4]) + ` claims 2147483648 bytes of packet data, more than the 262144 a capture holds"`,
				"exchanges=1 responses_missing=1", "corrupt_file:1 "}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "capture.pcap")
			if err := os.WriteFile(path, tc.file, 0o644); err != nil {
				t.Fatal(err)
			}
			out, log, err := runTaplineOut(context.Background(), "record", "--pcap", path, "--to", "-")
			if tc.wantErr != "" {
				var coder cli.ExitCoder
				if err == nil || err.Error() != "reading "+path+": "+tc.wantErr || errors.As(err, &coder) {
					t.Fatalf("got %v, want a plain error (exit status 1) %q", err, "reading "+path+": "+tc.wantErr)
				}
			} else if err != nil {
				t.Fatalf("%v\n%s", err, log)
			}
			if n := strings.Count(out, "\n"); n != tc.lines {
				t.Errorf("%d exchanges printed, want %d", n, tc.lines)
			}
			for _, want := range tc.logs {
				if !strings.Contains(log, strings.ReplaceAll(want, "FILE", path)) {
					t.Errorf("log does not say %q:\n%s", want, log)
				}
			}
		})
	}
}
