package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/tapline/tapline/internal/kafkaio"
	"github.com/tapline/tapline/internal/stacktest"
	"github.com/tapline/tapline/internal/stream"
	"github.com/tapline/tapline/replayer"
	"github.com/tapline/tapline/schema"
)

// TestStagingFaults (issue 7): staging answers 5xx, resets connections,
// or takes 30 s per request. Each case publishes exchanges to a real
// Kafka topic, runs the real binary as a consumer-group member against a
// fake staging that counts what it sees by exchange id, and then checks
// the results topic, the committed offsets and the replayer's summary
// exactly against those counts. While the replayer runs, every poll
// checks that the group never committed more exchanges than there are
// results stored (offsets are committed only after results are durable).
func TestStagingFaults(t *testing.T) {
	bin := buildTapline(t)
	brokers := stacktest.Kafka(t)
	t.Run("5xx", func(t *testing.T) { staging5xx(t, bin, brokers) })
	t.Run("5xx-breaker", func(t *testing.T) { staging5xxBreaker(t, bin, brokers) })
	t.Run("reset", func(t *testing.T) { stagingReset(t, bin, brokers) })
	t.Run("slow", func(t *testing.T) { stagingSlow(t, bin, brokers) })
}

// staging5xx: staging answers 503 to everything. A 5xx is an answer, so
// with the breaker off every exchange gets a result holding the 503 (and
// its body), none is a target error, and every offset is committed.
func staging5xx(t *testing.T, bin string, brokers []string) {
	f := newFaultRun(t, bin, brokers)
	const n = 60
	var seen idCounter
	staging := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.add(r.Header.Get("X-Tapline-Replay"))
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, "overloaded")
	}))
	defer staging.Close()

	ids := f.publish("e5-", n, 0)
	p := f.start(staging.URL, "--breaker-threshold", "-1")
	f.waitCommitted(p, n, nil)
	p.stop(t)

	results := f.results(ids)
	for _, res := range results {
		o := res.Outcomes[0]
		if kind := outcomeKind(o); kind != "503" || string(o.GetResponse().GetBody()) != "overloaded" {
			t.Errorf("exchange %s: outcome %s (%v), want the 503 and its body", res.Exchange.Id, kind, o)
		}
	}
	if got := seen.ids(); !slices.Equal(got, ids) || seen.total() != n {
		t.Errorf("staging saw %d requests for %d exchanges, want each of the %d exchanges once", seen.total(), len(got), n)
	}
	f.wantSummary(p, map[string]int64{"fetched": n, "replayed": n, "target_errors": 0, "paused": 0})
	f.wantCommitted(n)
}

// staging5xxBreaker: the documented behaviour (README, --breaker-threshold)
// is that a 5xx counts as a breaker failure: staging answering 503 to
// everything is paused after 5 in a row (the default). With one request in
// flight and a pause longer than the test, exactly 5 requests reach
// staging; the other exchanges still get a result, recorded as not sent
// because the target is paused.
func staging5xxBreaker(t *testing.T, bin string, brokers []string) {
	f := newFaultRun(t, bin, brokers)
	const n, threshold = 20, 5
	var seen idCounter
	staging := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.add(r.Header.Get("X-Tapline-Replay"))
		w.WriteHeader(http.StatusInternalServerError)
	}))
	defer staging.Close()

	ids := f.publish("b5-", n, 0)
	p := f.start(staging.URL, "--max-inflight", "1", "--breaker-pause", "1h")
	f.waitCommitted(p, n, nil)
	p.stop(t)

	results := f.results(ids)
	kinds := outcomeKinds(results)
	want := slices.Concat(slices.Repeat([]string{"500"}, threshold), slices.Repeat([]string{"paused"}, n-threshold))
	if !slices.Equal(kinds, want) {
		t.Errorf("outcomes in order %v, want %d × 500 then %d × paused", kinds, threshold, n-threshold)
	}
	if got := seen.ids(); seen.total() != threshold || !slices.Equal(got, idsWith(results, "500")) {
		t.Errorf("staging saw %d requests (%v), want exactly the %d exchanges whose results hold the 500", seen.total(), got, threshold)
	}
	f.wantSummary(p, map[string]int64{"fetched": n, "replayed": n, "target_errors": 0, "paused": n - threshold})
	f.wantCommitted(n)
}

// stagingReset: staging accepts each request and answers it with a TCP
// RST. Three waves, one request in flight, breaker threshold 3, pause 3 s:
//
//   - wave 0, staging healthy: 10 answered (this leaves a keep-alive
//     connection for wave 1's first request);
//   - wave 1, staging resetting: the first 3 exchanges end in "connection
//     reset by peer", the breaker opens, the rest are recorded as paused
//     (a probe that falls into the wave fails and reopens it);
//   - the test waits out the pause and heals staging; wave 2: the first
//     exchange is the probe, it is answered, and all 20 are answered.
//
// Every count is checked against staging's, by exchange id: the set of
// exchanges whose result is a reset is the set staging reset, the
// answered ones are the ones staging answered, and the paused ones are the
// ones staging never saw.
func stagingReset(t *testing.T, bin string, brokers []string) {
	f := newFaultRun(t, bin, brokers)
	const wave0, wave1, wave2, threshold, pause = 10, 20, 20, 3, 3 * time.Second
	staging := newResetStaging(t)

	ids := f.publish("w0-", wave0, 0)
	p := f.start(staging.url, "--max-inflight", "1", "--breaker-threshold", strconv.Itoa(threshold), "--breaker-pause", pause.String(),
		"--timeout", "5s")
	f.waitCommitted(p, wave0, nil)

	staging.broken.Store(true)
	ids = append(ids, f.publish("w1-", wave1, 0)...)
	f.waitCommitted(p, wave0+wave1, nil)
	// The breaker opened before these results were stored; after one
	// more pause it lets a probe through.
	time.Sleep(pause)
	staging.broken.Store(false)
	ids = append(ids, f.publish("w2-", wave2, 0)...)
	const total = wave0 + wave1 + wave2
	f.waitCommitted(p, total, nil)
	p.stop(t)

	results := f.results(ids)
	kinds := outcomeKinds(results)
	count := func(kinds []string, kind string) (n int) {
		for _, k := range kinds {
			if k == kind {
				n++
			}
		}
		return n
	}
	k0, k1, k2 := kinds[:wave0], kinds[wave0:wave0+wave1], kinds[wave0+wave1:]
	if count(k0, "200") != wave0 || count(k2, "200") != wave2 {
		t.Errorf("healthy waves: outcomes %v and %v, want all 200", k0, k2)
	}
	resets, paused := count(k1, "reset"), count(k1, "paused")
	if resets+paused != wave1 || resets < threshold || paused == 0 {
		t.Errorf("resetting wave: outcomes %v; want resets (at least %d) and paused only", k1, threshold)
	}
	// The breaker's rules hold in the order the requests were made (one
	// in flight: results are stored in that order): a pause only after
	// threshold failures in a row, and sending resumed by a probe.
	if !slices.Equal(k1[:threshold], slices.Repeat([]string{"reset"}, threshold)) {
		t.Errorf("resetting wave starts %v, want %d resets before any pause", k1, threshold)
	}
	failures := 0
	for i, k := range kinds {
		switch k {
		case "200":
			failures = 0
		case "reset":
			failures++
		case "paused":
			if failures < threshold {
				t.Errorf("result %d paused after %d failures in a row, want at least %d", i, failures, threshold)
			}
		default:
			t.Errorf("result %d: unexpected outcome %s", i, k)
		}
	}

	// Against what staging saw, by exchange id.
	answered, reset := staging.answered.ids(), staging.reset.ids()
	resetRequests := staging.reset.total()
	if !slices.Equal(answered, idsWith(results, "200")) || staging.answered.total() != wave0+wave2 {
		t.Errorf("staging answered %d requests for %d exchanges, want exactly the %d whose results hold the 200", staging.answered.total(), len(answered), wave0+wave2)
	}
	if !slices.Equal(reset, idsWith(results, "reset")) {
		t.Errorf("staging reset %v, results record resets for %v", reset, idsWith(results, "reset"))
	}
	// net/http sends an idempotent request once more when a reused
	// keep-alive connection fails before any answer: wave 1's first
	// exchange went out on wave 0's connection. Fresh connections are not
	// retried, and only one connection was ever idle.
	if retries := resetRequests - len(reset); retries < 0 || retries > 1 {
		t.Errorf("staging reset %d requests for %d exchanges, want at most one retry", resetRequests, len(reset))
	}
	if got := idsWith(results, "paused"); len(got) != paused || len(answered)+len(reset)+len(got) != total {
		t.Errorf("paused %d; answered %d + reset %d + paused %d != %d published", len(got), len(answered), len(reset), len(got), total)
	}
	f.wantSummary(p, map[string]int64{"fetched": total, "replayed": total, "target_errors": int64(resets), "paused": int64(paused)})
	f.wantCommitted(total)
	t.Logf("published %d: answered %d, reset %d (%d requests at staging), paused %d; a reset reads %q", total, len(answered), len(reset), resetRequests, paused,
		firstError(results, "reset"))
}

// stagingSlow: staging holds every request for 30 s; the replayer's
// total timeout is 1 s and the breaker is off, so every request meets the
// slow staging and the 3000 published exchanges (16 KiB each, 47 MiB)
// queue. While staging holds, the replayer must not fetch more than its
// pipeline holds (Prefetch+1 batches of 100 beyond what it published:
// Kafka keeps the backlog), and its resident memory stays at most
// 256 MiB. Once 24 requests have been held, staging answers at once; the
// held requests still end in timeouts. Every held request is a timeout
// in the results, every answered one a 200, nothing is paused, and
// the committed offsets equal the results.
func stagingSlow(t *testing.T, bin string, brokers []string) {
	f := newFaultRun(t, bin, brokers)
	const n, bodySize, holdUntil = 3000, 16 << 10, 24
	const maxRSS = 256 << 20
	const pipeline = (4 + 1) * 100 // the replayer's Prefetch (4) + 1 batches of the consumer's MaxBatch (100)
	var healthy atomic.Bool
	var held, answered, answeredLate idCounter
	release := make(chan struct{})
	staging := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Tapline-Replay")
		if healthy.Load() {
			answered.add(id)
			io.WriteString(w, "ok")
			return
		}
		held.add(id)
		select {
		case <-time.After(30 * time.Second):
			answeredLate.add(id)
			io.WriteString(w, "late")
		case <-r.Context().Done(): // the replayer gave up
		case <-release:
		}
	}))
	defer staging.Close()
	defer close(release)

	ids := f.publish("s-", n, bodySize)
	p := f.start(staging.URL, "--timeout", "1s", "--breaker-threshold", "-1", "--metrics-addr", "127.0.0.1:0")
	metrics := p.metricsURL(t)

	var peakRSS uint64
	sample := func() {
		rss := procRSS(t, p.cmd.Process.Pid)
		peakRSS = max(peakRSS, rss)
		if rss > maxRSS {
			t.Fatalf("replayer resident memory %d MiB, want at most %d MiB", rss>>20, maxRSS>>20)
		}
	}
	var maxAhead int64
	for held.total() < holdUntil {
		sample()
		fetched, replayed := scrapeExchanges(t, metrics)
		maxAhead = max(maxAhead, fetched-replayed)
		if fetched-replayed > pipeline {
			t.Fatalf("while staging holds: fetched %d, published %d results: %d exchanges in the replayer, want at most %d", fetched, replayed, fetched-replayed, pipeline)
		}
		f.checkCommitted(p)
		select {
		case <-f.ctx.Done():
			t.Fatalf("staging held %d of %d requests in time:\n%s", held.total(), holdUntil, p.log)
		case <-time.After(100 * time.Millisecond):
		}
	}
	healthy.Store(true)
	f.waitCommitted(p, n, sample)
	sample()
	p.stop(t)

	results := f.results(ids)
	timeouts, oks := idsWith(results, "timeout"), idsWith(results, "200")
	if len(timeouts)+len(oks) != n {
		t.Errorf("%d timeouts + %d answered != %d results: other outcomes %v", len(timeouts), len(oks), n, otherKinds(results, "timeout", "200"))
	}
	if !slices.Equal(timeouts, held.ids()) || held.total() != len(timeouts) || answeredLate.total() != 0 {
		t.Errorf("staging held %d requests (%d answered late), results record %d timeouts; want the same exchanges", held.total(), answeredLate.total(), len(timeouts))
	}
	if !slices.Equal(oks, answered.ids()) || answered.total() != len(oks) {
		t.Errorf("staging answered %d requests, results record %d answers; want the same exchanges", answered.total(), len(oks))
	}
	f.wantSummary(p, map[string]int64{"fetched": n, "replayed": n, "target_errors": int64(len(timeouts)), "paused": 0})
	f.wantCommitted(n)
	t.Logf("published %d (%d MiB of bodies): %d timed out, %d answered; at most %d exchanges in the replayer while staging held; peak RSS %.1f MiB; a timeout reads %q",
		n, n*bodySize>>20, len(timeouts), len(oks), maxAhead, float64(peakRSS)/(1<<20), firstError(results, "timeout"))
}

// faultRun is one case: an exchanges topic (2 partitions), a results
// topic, a consumer group, and the replayer's arguments.
type faultRun struct {
	t                              *testing.T
	ctx                            context.Context
	bin                            string
	brokers                        []string
	exchanges, resultsTopic, group string
}

func newFaultRun(t *testing.T, bin string, brokers []string) *faultRun {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	exchanges := stacktest.Topic(t, brokers, 2)
	return &faultRun{t: t, ctx: ctx, bin: bin, brokers: brokers, exchanges: exchanges, resultsTopic: stacktest.Topic(t, brokers, 1),
		group: "faults-" + strings.TrimPrefix(exchanges, "tapline-test-")}
}

func (f *faultRun) kafkaURL(topic string) string {
	return "kafka://" + strings.Join(f.brokers, ",") + "/" + topic
}

// publish puts n GET exchanges on the exchanges topic, ids prefix0000 on,
// each its own session, with a recorded response body of bodySize bytes;
// it returns their ids, sorted.
func (f *faultRun) publish(prefix string, n, bodySize int) []string {
	f.t.Helper()
	prod, err := kafkaio.NewProducer(kafkaio.ProducerConfig{Brokers: f.brokers, Topic: f.exchanges})
	if err != nil {
		f.t.Fatal(err)
	}
	defer prod.Close(f.ctx)
	var recs []stream.Record
	var ids []string
	for i := range n {
		id := fmt.Sprintf("%s%04d", prefix, i)
		unit := fmt.Sprintf(`{"item":%d,"exchange":%q}`, i, id)
		body := []byte(strings.Repeat(unit, bodySize/len(unit)+1)[:bodySize])
		ex := &schema.Exchange{Id: id, SessionKey: id,
			Request:  &schema.Request{Method: "GET", Target: "/items/" + id, Host: "prod.example"},
			Original: &schema.Exchange_Response{Response: &schema.Response{Status: 200, Body: body, BodySize: int64(len(body))}}}
		v, h, err := schema.EncodeExchange(ex)
		if err != nil {
			f.t.Fatal(err)
		}
		recs = append(recs, stream.Record{Key: []byte(id), Value: v, Headers: h, Time: time.Now()})
		ids = append(ids, id)
		if len(recs) == 500 {
			if err := prod.Publish(f.ctx, recs...); err != nil {
				f.t.Fatal(err)
			}
			recs = recs[:0]
		}
	}
	if err := prod.Publish(f.ctx, recs...); err != nil {
		f.t.Fatal(err)
	}
	slices.Sort(ids)
	return ids
}

// start runs the replayer in group mode from the earliest offset against
// staging, with extra flags.
func (f *faultRun) start(staging string, extra ...string) *process {
	args := append([]string{"replay", "--from", f.kafkaURL(f.exchanges), "--to", f.kafkaURL(f.resultsTopic), "--group", f.group,
		"--start", "earliest", "--target", "staging=" + staging}, extra...)
	return startTapline(f.t, f.bin, args...)
}

// committed is the number of exchanges the group has committed (the
// topic is fresh: offsets start at 0).
func (f *faultRun) committed() int64 {
	var sum int64
	for _, off := range stacktest.Committed(f.t, f.brokers, f.group, f.exchanges) {
		sum += off
	}
	return sum
}

// stored is the number of records on the results topic (its end offset).
func (f *faultRun) stored() int64 {
	f.t.Helper()
	conn, err := kafka.DialLeader(f.ctx, "tcp", f.brokers[0], f.resultsTopic, 0)
	if err != nil {
		f.t.Fatalf("results topic: %v", err)
	}
	defer conn.Close()
	end, err := conn.ReadLastOffset()
	if err != nil {
		f.t.Fatalf("results topic end offset: %v", err)
	}
	return end
}

// checkCommitted fails the test when the group committed more exchanges
// than there are results stored, or when the replayer exited; it returns
// the committed count. Committed is read first: results only grow.
func (f *faultRun) checkCommitted(p *process) int64 {
	f.t.Helper()
	c := f.committed()
	if s := f.stored(); c > s {
		f.t.Fatalf("the group committed %d exchanges with only %d results stored", c, s)
	}
	select {
	case err := <-p.done:
		f.t.Fatalf("the replayer exited (%v):\n%s", err, p.log)
	default:
	}
	return c
}

// waitCommitted polls until the group has committed want exchanges,
// calling each (when set) on every poll.
func (f *faultRun) waitCommitted(p *process, want int64, each func()) {
	f.t.Helper()
	for {
		if each != nil {
			each()
		}
		c := f.checkCommitted(p)
		if c == want {
			return
		}
		if c > want {
			f.t.Fatalf("the group committed %d exchanges, only %d were published", c, want)
		}
		select {
		case <-f.ctx.Done():
			f.t.Fatalf("the group committed %d of %d exchanges in time:\n%s", c, want, p.log)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// wantCommitted checks, after the replayer stopped, that the group
// committed exactly n exchanges and the results topic holds exactly n.
func (f *faultRun) wantCommitted(n int64) {
	f.t.Helper()
	if c, s := f.committed(), f.stored(); c != n || s != n {
		f.t.Errorf("committed %d exchanges, %d results stored; want %d and %d", c, s, n, n)
	}
}

// results reads the results topic, in order, and wants exactly one
// result, with one outcome, for each of the exchanges ids.
func (f *faultRun) results(ids []string) []*schema.ReplayResult {
	f.t.Helper()
	var out []*schema.ReplayResult
	var got []string
	seen := map[string]bool{}
	for _, m := range stacktest.ReadTopic(f.t, f.brokers, f.resultsTopic) {
		res, err := schema.DecodeReplayResult(m.Value, m.Headers)
		if err != nil {
			f.t.Fatalf("result at offset %d: %v", m.Offset, err)
		}
		if seen[res.GetExchange().GetId()] || len(res.Outcomes) != 1 {
			f.t.Fatalf("result at offset %d: exchange %s again, or %d outcomes", m.Offset, res.GetExchange().GetId(), len(res.Outcomes))
		}
		seen[res.GetExchange().GetId()] = true
		got = append(got, res.GetExchange().GetId())
		out = append(out, res)
	}
	slices.Sort(got)
	if !slices.Equal(got, slices.Sorted(slices.Values(ids))) {
		f.t.Fatalf("results for %d exchanges, want one for each of the %d published", len(got), len(ids))
	}
	return out
}

// wantSummary checks the counts in the replayer's summary line (logged
// when it stops).
func (f *faultRun) wantSummary(p *process, want map[string]int64) {
	f.t.Helper()
	log := p.log.String()
	summary := log[strings.LastIndex(log, "replayer summary"):]
	for key, n := range want {
		if got := summaryCount(summary, " "+key); got != n {
			f.t.Errorf("replayer summary: %s=%d, want %d:\n%s", key, got, n, summary)
		}
	}
}

// outcomeKind names what became of a request: the status of an answer,
// "paused", "reset", "timeout", or the error text. The first three are
// read from the error text and must agree with the outcome's error_kind.
func outcomeKind(o *schema.TargetOutcome) string {
	e := o.GetError()
	var kind, wantErrorKind string
	switch {
	case o.GetResponse() != nil:
		return strconv.Itoa(int(o.GetResponse().GetStatus()))
	case strings.HasPrefix(e, "not sent: target paused by the circuit breaker"):
		kind, wantErrorKind = "paused", replayer.ErrPaused
	case strings.HasSuffix(e, "connection reset by peer"):
		kind, wantErrorKind = "reset", replayer.ErrReset
	case strings.Contains(e, "Client.Timeout exceeded"):
		kind, wantErrorKind = "timeout", replayer.ErrTimeout
	default:
		return e
	}
	if o.GetErrorKind() != wantErrorKind {
		return fmt.Sprintf("%s with error_kind %q", kind, o.GetErrorKind())
	}
	return kind
}

func outcomeKinds(results []*schema.ReplayResult) []string {
	kinds := make([]string, len(results))
	for i, res := range results {
		kinds[i] = outcomeKind(res.Outcomes[0])
	}
	return kinds
}

// idsWith returns the sorted ids of the exchanges whose outcome is kind.
func idsWith(results []*schema.ReplayResult, kind string) []string {
	var ids []string
	for _, res := range results {
		if outcomeKind(res.Outcomes[0]) == kind {
			ids = append(ids, res.Exchange.Id)
		}
	}
	slices.Sort(ids)
	return ids
}

// firstError is the error text of the first outcome of kind.
func firstError(results []*schema.ReplayResult, kind string) string {
	for _, res := range results {
		if outcomeKind(res.Outcomes[0]) == kind {
			return res.Outcomes[0].GetError()
		}
	}
	return ""
}

// otherKinds lists the outcomes that are none of kinds.
func otherKinds(results []*schema.ReplayResult, kinds ...string) []string {
	var other []string
	for _, res := range results {
		if k := outcomeKind(res.Outcomes[0]); !slices.Contains(kinds, k) {
			other = append(other, res.Exchange.Id+": "+k)
		}
	}
	return other
}

// idCounter counts requests by exchange id; safe for concurrent use.
type idCounter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *idCounter) add(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[id]++
}

// ids returns the distinct ids, sorted.
func (c *idCounter) ids() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	ids := make([]string, 0, len(c.n))
	for id := range c.n {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// total is the number of requests.
func (c *idCounter) total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, k := range c.n {
		n += k
	}
	return n
}

// resetStaging is an HTTP/1.1 server written by hand so that it can
// answer a request with a TCP RST: while broken is set, it reads each
// request, counts it, and closes the connection with SO_LINGER 0;
// otherwise it answers 200 "ok" and keeps the connection.
type resetStaging struct {
	url    string
	ln     net.Listener
	broken atomic.Bool

	mu              sync.Mutex
	conns           map[net.Conn]bool
	answered, reset idCounter
}

func newResetStaging(t *testing.T) *resetStaging {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &resetStaging{url: "http://" + ln.Addr().String(), ln: ln, conns: map[net.Conn]bool{}}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns[c] = true
			s.mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.serve(c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		s.mu.Lock()
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		wg.Wait()
	})
	return s
}

func (s *resetStaging) serve(c net.Conn) {
	defer func() {
		c.Close()
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	}()
	br := bufio.NewReader(c)
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		io.Copy(io.Discard, req.Body)
		id := req.Header.Get("X-Tapline-Replay")
		if s.broken.Load() {
			s.reset.add(id)
			c.(*net.TCPConn).SetLinger(0) // Close sends RST
			return
		}
		s.answered.add(id)
		if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"); err != nil {
			return
		}
	}
}

// metricsURL waits for the replayer to log where it serves /metrics.
func (p *process) metricsURL(t *testing.T) string {
	t.Helper()
	re := regexp.MustCompile(`msg="serving metrics" url=(\S+)`)
	for range 300 {
		if m := re.FindStringSubmatch(p.log.String()); m != nil {
			return m[1]
		}
		select {
		case err := <-p.done:
			t.Fatalf("the replayer exited (%v):\n%s", err, p.log)
		case <-time.After(100 * time.Millisecond):
		}
	}
	t.Fatalf("the replayer does not say where it serves metrics:\n%s", p.log)
	return ""
}

// scrapeExchanges reads the replayer's fetched and replayed (results
// published) counters from /metrics. The replayer reads fetched first.
func scrapeExchanges(t *testing.T, url string) (fetched, replayed int64) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("scraping %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	value := func(outcome string) int64 {
		m := regexp.MustCompile(`(?m)^tapline_replay_exchanges_total\{outcome="` + outcome + `"\} (\d+)$`).FindSubmatch(body)
		if m == nil {
			t.Fatalf("metrics lack the %s exchanges:\n%s", outcome, body)
		}
		v, _ := strconv.ParseInt(string(m[1]), 10, 64)
		return v
	}
	return value("fetched"), value("replayed")
}

// procRSS is the resident set size of process pid, in bytes (Linux).
func procRSS(t *testing.T, pid int) uint64 {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("reading the replayer's memory: %v", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatalf("VmRSS %q: %v", v, err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}
