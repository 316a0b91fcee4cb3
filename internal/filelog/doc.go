// Package filelog is the embedded default behind file://dir endpoints: an
// append-only local log of stream.Records, so tapline runs on one machine
// with no infrastructure. The recorder writes exchanges into one (Enqueue),
// the replayer reads them (Fetch/Commit) and writes results into another
// (Publish), and the analyzer reads those.
//
// It is a local log, not a second Kafka: one partition, one writer (an
// exclusive lock on dir/.lock), no replication and no consumer groups. A
// Reader may run in another goroutine or process while the Writer appends.
//
// # Files
//
//	dir/.lock                        flock(2)ed by the one Writer; holds its pid
//	dir/00000000000000000000.log     segment: records from offset 0
//	dir/00000000000000000000.tix     sparse time index of that segment
//	dir/00000000000000012345.log     next segment: its name is its first offset
//	dir/cursors/<name>               a Reader's committed position (JSON)
//
// Segments are rotated when they would grow past WriterConfig.SegmentBytes
// and deleted whole, oldest first, by retention. The .log files are the
// truth; a .tix file is an optimisation that the Writer rebuilds when it is
// missing or short, and that a Reader verifies before trusting it.
//
// # Segment file (.log)
//
// All integers are big-endian. A segment starts with a 16-byte header:
//
//	offset  size  field
//	0       4     magic "TLOG"
//	4       1     version, 1
//	5       3     reserved, zero
//	8       8     base offset: the offset of the first record (= the file name)
//
// followed by records, back to back:
//
//	offset  size  field
//	0       4     body length L (bytes after the CRC), 19 ≤ L ≤ MaxRecordBytes
//	4       4     CRC-32C (Castagnoli) of the L body bytes
//	8       8     offset of the record (base offset + its index in the segment)
//	16      8     time, Unix nanoseconds
//	24      var   key: bytes
//	        var   header count: uvarint, ≤ MaxHeaders
//	        var   per header: key as uvarint length + bytes, value: bytes
//	        var   value: bytes
//
// where "bytes" is a zigzag varint length n followed by n bytes, and n = -1
// stands for a nil slice (as in Kafka's record format), so nil and empty
// keys, values and header values both round-trip. The body must end exactly
// after the value.
//
// # Time index file (.tix)
//
// A 16-byte header like the segment's (magic "TIDX", version 1, reserved,
// base offset), then 24-byte entries:
//
//	offset  size  field
//	0       8     T: the largest record time (Unix ns) of the segment's records before O
//	8       8     O: the offset of a record
//	16      8     P: the byte position of record O in the .log
//
// An entry is added before appending a record when at least
// WriterConfig.IndexInterval bytes were written since the previous entry,
// and a final "seal" entry (O = next offset, P = segment size) when a segment
// is rotated or the Writer closes. T is monotone, so the first record whose
// time is ≥ t lies after the last entry with T < t and before the next
// one: a time lookup reads one entry per older segment and decodes at most
// about IndexInterval bytes of records (Kafka's offsets-for-times, with the
// same meaning when times are not in order: the first record in log order
// whose time is ≥ t).
//
// # Durability and crashes
//
// Writer.Publish returns after the records are written and fsynced. Records
// given to Enqueue are fsynced every WriterConfig.SyncInterval and on Close,
// so a power loss can lose up to that interval of them; a killed process
// loses nothing the kernel already has.
//
// A Writer that is killed mid-append leaves a torn tail: a record whose
// bytes stop short. Open scans the last segment from its last good index
// entry, cuts the file at the first record that is short or fails its CRC,
// logs it and counts it in WriterStats.TornBytesCut. Records before it are
// never rewritten. Index entries past the cut are dropped and rebuilt.
//
// # Reading damaged data
//
// A Reader never returns a record whose CRC fails. A record that is not
// complete yet at the end of the newest segment is "not yet": a following
// Reader waits for it, any other Reader stops there (io.EOF). A record that
// fails its checks in a closed segment (one with a newer segment after it),
// that is bit rot, is skipped together with the rest of that segment: the
// Reader logs the file and byte position at error level, counts it in
// ReaderStats.Corrupt and ReaderStats.Lost, and goes on with the next
// segment. The same damage in the middle of the newest segment cannot be
// skipped (there is nothing to skip to yet): Fetch returns a *CorruptError
// naming the file and byte position until the segment is closed.
package filelog
