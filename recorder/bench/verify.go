package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/tapline/tapline/internal/stream"
	"github.com/tapline/tapline/recorder"
	"github.com/tapline/tapline/schema"
)

// writeTruth stores the client's log as tab-separated lines: conn, seq,
// method, target, status, request length and sha256, response length and
// sha256.
func writeTruth(path string, truth []exchange) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("writing the ground truth: %w", err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	for _, e := range truth {
		fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%d\t%d\t%x\t%d\t%x\n", e.Conn, e.Seq, e.Method, e.Target, e.Status, e.ReqLen, e.ReqSHA, e.RespLen, e.RespSHA)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("writing the ground truth: %w", err)
	}
	return f.Close()
}

func readTruth(path string) ([]exchange, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading the ground truth: %w", err)
	}
	defer f.Close()
	var out []exchange
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for line := 1; sc.Scan(); line++ {
		fl := strings.Split(sc.Text(), "\t")
		if len(fl) != 9 {
			return nil, fmt.Errorf("%s:%d: %d fields, want 9", path, line, len(fl))
		}
		var e exchange
		var errs [5]error
		e.Conn, e.Method, e.Target = fl[0], fl[2], fl[3]
		e.Seq, errs[0] = strconv.Atoi(fl[1])
		e.Status, errs[1] = strconv.Atoi(fl[4])
		e.ReqLen, errs[2] = strconv.ParseInt(fl[5], 10, 64)
		e.RespLen, errs[3] = strconv.ParseInt(fl[7], 10, 64)
		if _, err := hex.Decode(e.ReqSHA[:], []byte(fl[6])); err != nil {
			errs[4] = err
		} else if _, err := hex.Decode(e.RespSHA[:], []byte(fl[8])); err != nil {
			errs[4] = err
		}
		for _, err := range errs {
			if err != nil {
				return nil, fmt.Errorf("%s:%d: %w", path, line, err)
			}
		}
		out = append(out, e)
	}
	return out, sc.Err()
}

// observed is what the recorder emitted for one exchange, reduced to what
// the ground truth can be compared with.
type observed struct {
	Conn           string
	Method, Target string
	Status         int // 0 when the response is missing
	Missing        string
	ReqLen         int64
	ReqSHA         [32]byte
	ReqTruncated   bool
	RespLen        int64
	RespSHA        [32]byte
	RespTruncated  bool
	CaptureNano    int64 // capture time of the request's first byte
}

func observe(rec stream.Record) (observed, error) {
	ex, err := schema.DecodeExchange(rec.Value, rec.Headers)
	if err != nil {
		return observed{}, err
	}
	o := observed{
		Conn:         fmt.Sprintf("%s:%d", ex.GetClient().GetIp(), ex.GetClient().GetPort()),
		Method:       ex.GetRequest().GetMethod(),
		Target:       ex.GetRequest().GetTarget(),
		ReqLen:       int64(len(ex.GetRequest().GetBody())),
		ReqSHA:       sha256.Sum256(ex.GetRequest().GetBody()),
		ReqTruncated: ex.GetRequest().GetBodyTruncated(),
		CaptureNano:  ex.GetTimes().GetRequestFirstByteUnixNano(),
	}
	if resp := ex.GetResponse(); resp != nil {
		o.Status = int(resp.GetStatus())
		o.RespLen = int64(len(resp.GetBody()))
		o.RespSHA = sha256.Sum256(resp.GetBody())
		o.RespTruncated = resp.GetBodyTruncated()
	} else {
		o.Missing = ex.GetResponseMissing().GetReason().String()
	}
	return o, nil
}

// report compares what the recorder emitted with the ground truth.
// Matched counts exchanges recorded on the right connection, in order,
// with status and both bodies byte-exact.
type report struct {
	Truth, Recorded, Matched  int
	Missing                   int // in the truth, never recorded
	Extra                     int // recorded, not in the truth (or recorded twice)
	WrongConn, OutOfOrder     int
	NoResponse                int // recorded with the response missing
	StatusDiff                int
	ReqBodyDiff, RespBodyDiff int
	Undecodable               int
	Problems                  []string // the first few, each a minimal reproduction
}

const maxProblems = 12

func (r *report) problem(format string, args ...any) {
	if len(r.Problems) < maxProblems {
		r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
	}
}

// Percent is the share of the truth recovered byte-exact.
func (r report) Percent() float64 {
	if r.Truth == 0 {
		return 0
	}
	return 100 * float64(r.Matched) / float64(r.Truth)
}

// verify matches each recorded exchange to the client's by method and
// target (unique per request), then checks the connection, the order on
// it, the status and the sha256 of both bodies.
func verify(truth []exchange, got []observed) report {
	r := report{Truth: len(truth), Recorded: len(got)}
	byKey := make(map[string]int, len(truth))
	for i, e := range truth {
		byKey[e.Method+" "+e.Target] = i
	}
	seen := make([]bool, len(truth))
	lastSeq := map[string]int{} // per connection: the truth seq of the last match
	for _, o := range got {
		i, ok := byKey[o.Method+" "+o.Target]
		if !ok || seen[i] {
			r.Extra++
			r.problem("extra: conn %s %s %s recorded (status %d) but %s", o.Conn, o.Method, o.Target, o.Status,
				map[bool]string{true: "already matched once", false: "the client never sent it"}[ok])
			continue
		}
		seen[i] = true
		e := truth[i]
		where := fmt.Sprintf("conn %s seq %d %s %s (captured at %d ns)", e.Conn, e.Seq, e.Method, e.Target, o.CaptureNano)
		good := true
		if o.Conn != e.Conn {
			r.WrongConn++
			good = false
			r.problem("%s: recorded on conn %s", where, o.Conn)
		}
		if last, ok := lastSeq[e.Conn]; ok && e.Seq <= last {
			r.OutOfOrder++
			good = false
			r.problem("%s: recorded after seq %d of the same connection", where, last)
		}
		lastSeq[e.Conn] = e.Seq
		if o.Missing != "" {
			r.NoResponse++
			r.problem("%s: response missing (%s); client got %d with %d bytes", where, o.Missing, e.Status, e.RespLen)
			continue
		}
		if o.Status != e.Status {
			r.StatusDiff++
			good = false
			r.problem("%s: status %d, client got %d", where, o.Status, e.Status)
		}
		if o.ReqSHA != e.ReqSHA || o.ReqTruncated {
			r.ReqBodyDiff++
			good = false
			r.problem("%s: request body differs: recorder %d bytes (truncated %v) sha256 %x…, client sent %d bytes sha256 %x…",
				where, o.ReqLen, o.ReqTruncated, o.ReqSHA[:6], e.ReqLen, e.ReqSHA[:6])
		}
		if o.RespSHA != e.RespSHA || o.RespTruncated {
			r.RespBodyDiff++
			good = false
			r.problem("%s: response body differs: recorder %d bytes (truncated %v) sha256 %x…, client received %d bytes sha256 %x…",
				where, o.RespLen, o.RespTruncated, o.RespSHA[:6], e.RespLen, e.RespSHA[:6])
		}
		if good {
			r.Matched++
		}
	}
	for i, e := range truth {
		if !seen[i] {
			r.Missing++
			r.problem("missing: conn %s seq %d %s %s (status %d, request %d bytes, response %d bytes) was not recorded",
				e.Conn, e.Seq, e.Method, e.Target, e.Status, e.ReqLen, e.RespLen)
		}
	}
	return r
}

// countSink takes every record and keeps only counts: the cheapest sink,
// so that what is measured is the recorder.
type countSink struct {
	records, bytes uint64
}

var _ recorder.Sink = (*countSink)(nil)

func (s *countSink) Enqueue(rec stream.Record) bool {
	s.records++
	s.bytes += uint64(len(rec.Value))
	return true
}

func (s *countSink) EnqueueWait(_ context.Context, rec stream.Record) error {
	s.Enqueue(rec)
	return nil
}

// verifySink decodes every record with schema.DecodeExchange as it
// arrives and keeps what verify needs. It is safe for concurrent use.
type verifySink struct {
	mu          sync.Mutex
	obs         []observed
	undecodable int
}

var _ recorder.Sink = (*verifySink)(nil)

func (s *verifySink) Enqueue(rec stream.Record) bool {
	o, err := observe(rec)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.undecodable++
		return true
	}
	s.obs = append(s.obs, o)
	return true
}

func (s *verifySink) EnqueueWait(_ context.Context, rec stream.Record) error {
	s.Enqueue(rec)
	return nil
}

// spoolSink writes the records to a file as they come (length-prefixed,
// through a 256 KiB buffer) and reads them back for verifying only when
// asked, after the CPU of the capture has been measured. Keeping them in
// memory instead would grow the heap and make the garbage collector run
// less often than with a real (bounded) producer, flattering the CPU
// figure by a tenth; decoding them as they come would charge the decoding
// to the recorder. It is safe for concurrent use.
type spoolSink struct {
	mu sync.Mutex
	f  *os.File
	w  *bufio.Writer // its error is sticky: observed reports it
	n  int
}

var _ recorder.Sink = (*spoolSink)(nil)

func newSpoolSink(path string) (*spoolSink, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("creating the record spool: %w", err)
	}
	return &spoolSink{f: f, w: bufio.NewWriterSize(f, 256<<10)}, nil
}

func (s *spoolSink) Enqueue(rec stream.Record) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b [4]byte
	put := func(p []byte) {
		binary.LittleEndian.PutUint32(b[:], uint32(len(p)))
		s.w.Write(b[:])
		s.w.Write(p)
	}
	binary.LittleEndian.PutUint32(b[:], uint32(len(rec.Headers)))
	s.w.Write(b[:])
	for _, h := range rec.Headers {
		put([]byte(h.Key))
		put(h.Value)
	}
	put(rec.Value)
	s.n++
	return true
}

func (s *spoolSink) EnqueueWait(_ context.Context, rec stream.Record) error {
	s.Enqueue(rec)
	return nil
}

// observed flushes the spool and decodes every record in it.
func (s *spoolSink) observed() (obs []observed, undecodable int, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.w.Flush(); err != nil {
		return nil, 0, fmt.Errorf("writing the record spool: %w", err)
	}
	if _, err := s.f.Seek(0, io.SeekStart); err != nil {
		return nil, 0, err
	}
	r := bufio.NewReaderSize(s.f, 256<<10)
	next := func() ([]byte, error) {
		var b [4]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return nil, err
		}
		p := make([]byte, binary.LittleEndian.Uint32(b[:]))
		_, err := io.ReadFull(r, p)
		return p, err
	}
	for range s.n {
		var b [4]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return nil, 0, fmt.Errorf("reading the record spool: %w", err)
		}
		rec := stream.Record{Headers: make([]schema.RecordHeader, binary.LittleEndian.Uint32(b[:]))}
		for i := range rec.Headers {
			k, err := next()
			if err != nil {
				return nil, 0, fmt.Errorf("reading the record spool: %w", err)
			}
			v, err := next()
			if err != nil {
				return nil, 0, fmt.Errorf("reading the record spool: %w", err)
			}
			rec.Headers[i] = schema.RecordHeader{Key: string(k), Value: v}
		}
		if rec.Value, err = next(); err != nil {
			return nil, 0, fmt.Errorf("reading the record spool: %w", err)
		}
		o, err := observe(rec)
		if err != nil {
			undecodable++
			continue
		}
		obs = append(obs, o)
	}
	return obs, undecodable, nil
}

// close removes the spool.
func (s *spoolSink) close() {
	s.f.Close()
	os.Remove(s.f.Name())
}
