package replayer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tapline/tapline/internal/stream"
	"github.com/tapline/tapline/schema"
)

// The replay pipeline, one Run:
//
//	Source ─Fetch→ fetcher ─→ dispatcher ─due time, rate→ session lanes ─Workers→ targets
//	                              │                                          │
//	                              └──── batches in fetch order ──→ committer ←┘ results
//	                                                                 │
//	                                             Results.Publish, DLQ, Source.Commit
//
// The fetcher fetches batches ahead, decodes and filters them and gives
// each exchange its due time. The dispatcher (the goroutine of Run) hands
// the exchanges to their session lanes one by one, each at its due time
// (pacing) and after the rate limiter: one timer for the whole replay, so
// the schedule does not depend on how many exchanges wait, nor on the
// cost of fetching and decoding. Workers goroutines take turns on the
// lanes that have exchanges (a ready queue), each lane's exchanges one at
// a time in recorded order: at most Workers requests are in flight. The
// committer takes the batches in fetch order, waits until every exchange
// of a batch is sent, publishes its results and commits it, so an offset
// is committed only after the results of it and of everything before it
// are durable. At most Config.Prefetch batches, and about
// Config.PrefetchBytes of records, are in the pipeline at once: when
// targets are slow, fetching stops and Kafka keeps the backlog.

// pipeBatch is one fetched batch on its way through the pipeline.
type pipeBatch struct {
	recs    []stream.Record
	bytes   int64           // of recs' keys and values, for Config.PrefetchBytes
	dead    []stream.Record // undecodable, for the DLQ
	pending sync.WaitGroup  // exchanges not yet sent (or skipped)
	mu      sync.Mutex
	results []stream.Record
	skipped atomic.Bool // an exchange was not sent (cancel, failure): never commit
}

func (b *pipeBatch) addResult(rec stream.Record) {
	b.mu.Lock()
	b.results = append(b.results, rec)
	b.mu.Unlock()
}

// job is one exchange to replay.
type job struct {
	ex    *schema.Exchange
	lane  string    // session key (the exchange id with SessionParallel)
	due   time.Time // zero: at once
	batch *pipeBatch
}

// lane is the queue of one session's exchanges that are due and not yet
// sent. A lane with exchanges is in the ready queue or held by a worker,
// never both, so its exchanges go out one at a time and in order.
type lane struct {
	key   string
	queue []job
}

// run is the state of one Run.
type run struct {
	r        *Replayer
	ctx      context.Context // canceled on the caller's cancel or on a failure
	fail     func(error)     // records the first failure and cancels ctx
	inflight chan struct{}   // a token per batch in the pipeline
	bytes    atomic.Int64    // record bytes of the batches in the pipeline
	freed    chan struct{}   // signalled (capacity 1) when a batch leaves the pipeline

	// The lanes of the sessions with exchanges to send, and the ready
	// queue the Workers take them from (FIFO: sessions take turns).
	mu      sync.Mutex
	cond    *sync.Cond // signals ready or done
	lanes   map[string]*lane
	ready   []*lane
	done    bool           // no more exchanges: workers exit when ready is empty
	workers sync.WaitGroup // the worker goroutines
}

// Run replays until ctx is done or the source is exhausted (a window),
// and returns nil then. On cancel, requests in flight finish and their
// results are published, but waits for due times and the rate limit stop,
// exchanges not yet sent are not sent, and their batches are left
// uncommitted (delivered again: at least once). It returns an error when
// fetching fails, results cannot be published or offsets cannot be
// committed; what was not committed is then delivered again after a
// restart.
func (r *Replayer) Run(ctx context.Context) error {
	r.log.Info("replaying", "targets", targetList(r.cfg.Targets), "methods", r.cfg.AllowMethods)
	stopProgress := r.progress()
	defer stopProgress()
	defer func() {
		s := r.Stats()
		r.log.Info("replayer summary", "fetched", s.Fetched, "replayed", s.Replayed, "filtered", s.Filtered,
			"undecodable", s.Undecodable, "target_errors", s.TargetErrors, "paused", s.Paused,
			"middleware_dropped", s.MiddlewareDropped, "production_refused", s.ProductionRefused, "redacted_values", s.Redacted, "bodies_cut", s.BodiesCut)
	}()

	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var failOnce sync.Once
	var failure error
	p := &run{
		r: r, ctx: runCtx,
		fail: func(err error) {
			failOnce.Do(func() { failure = err; cancel(err) })
		},
		inflight: make(chan struct{}, r.cfg.Prefetch),
		freed:    make(chan struct{}, 1),
		lanes:    map[string]*lane{},
	}
	p.cond = sync.NewCond(&p.mu)
	for range r.cfg.Workers {
		p.workers.Add(1)
		go p.work()
	}
	fetched := make(chan prepared, r.cfg.Prefetch)
	batches := make(chan *pipeBatch, r.cfg.Prefetch)
	committed := make(chan struct{})
	go func() {
		defer close(committed)
		p.commitLoop(batches)
	}()
	go p.fetchLoop(fetched)
	p.dispatchLoop(fetched, batches)
	<-committed // every exchange dispatched is done
	p.mu.Lock()
	p.done = true
	p.cond.Broadcast()
	p.mu.Unlock()
	p.workers.Wait()
	return failure
}

// fetchLoop fetches and prepares batches ahead of the dispatcher, at most
// Prefetch in the pipeline, until the source ends (nil), ctx is done (nil)
// or a fetch fails (the error, after canceling the run). It closes out
// when it returns.
func (p *run) fetchLoop(out chan<- prepared) error {
	defer close(out)
	r := p.r
	for {
		select {
		case p.inflight <- struct{}{}:
		case <-p.ctx.Done():
			return nil
		}
		// Over PrefetchBytes, wait for batches to leave; there is one in
		// the pipeline then, so one always gets in, however large.
		for p.bytes.Load() >= r.cfg.PrefetchBytes {
			select {
			case <-p.freed:
			case <-p.ctx.Done():
				return nil
			}
		}
		recs, err := r.cfg.Source.Fetch(p.ctx)
		if errors.Is(err, io.EOF) {
			return nil // a window, replayed to its end
		}
		if err != nil {
			if p.ctx.Err() != nil {
				return nil
			}
			p.fail(err)
			return err
		}
		r.fetched.Add(uint64(len(recs)))
		b, jobs := r.prepare(recs)
		for _, rec := range recs {
			b.bytes += int64(len(rec.Key) + len(rec.Value))
		}
		p.bytes.Add(b.bytes)
		b.pending.Add(len(jobs))
		out <- prepared{b, jobs} // never blocks: out holds Prefetch batches
	}
}

// prepared is a batch and its exchanges to replay.
type prepared struct {
	batch *pipeBatch
	jobs  []job
}

// dispatchLoop passes the prepared batches on to the committer and hands
// their exchanges to the lanes at their due times, until in is closed or
// ctx is done. It closes batches when it returns.
func (p *run) dispatchLoop(in <-chan prepared, batches chan<- *pipeBatch) {
	defer close(batches)
	for pb := range in {
		batches <- pb.batch // never blocks: batches holds Prefetch batches
		for i, j := range pb.jobs {
			if err := p.wait(j.due); err != nil {
				pb.batch.skipped.Store(true)
				pb.batch.pending.Add(-(len(pb.jobs) - i))
				for pb := range in { // fetched, never dispatched
					pb.batch.skipped.Store(true)
					pb.batch.pending.Add(-len(pb.jobs))
					batches <- pb.batch
				}
				return
			}
			p.enqueue(j)
		}
	}
}

// wait returns when an exchange due at t may go: t has come and the rate
// limiter has a token. It returns an error when ctx is done first.
func (p *run) wait(due time.Time) error {
	if err := sleepUntil(p.ctx, due); err != nil {
		return err
	}
	if p.r.limiter != nil {
		return p.r.limiter.Wait(p.ctx)
	}
	return nil
}

// prepare decodes and filters a fetched batch and returns it with its
// exchanges to replay, in fetch order, each with its due time.
func (r *Replayer) prepare(recs []stream.Record) (*pipeBatch, []job) {
	b := &pipeBatch{recs: recs}
	var jobs []job
	for _, rec := range recs {
		ex, err := schema.DecodeExchange(rec.Value, rec.Headers)
		if err != nil {
			r.undecodable.Add(1)
			r.log.Warn("undecodable exchange record", "partition", rec.Partition, "offset", rec.Offset, "err", err)
			b.dead = append(b.dead, stream.DeadLetter(rec, fmt.Sprintf("partition %d offset %d: %v", rec.Partition, rec.Offset, err)))
			continue
		}
		if !r.allowed[ex.GetRequest().GetMethod()] || (r.cfg.Select != nil && !r.cfg.Select(ex)) {
			r.filtered.Add(1)
			continue
		}
		key := ex.SessionKey
		if r.cfg.SessionParallel {
			key = ex.Id // every exchange its own session
		}
		recorded := rec.Time
		if ns := ex.GetTimes().GetRequestFirstByteUnixNano(); ns > 0 {
			recorded = time.Unix(0, ns)
		}
		jobs = append(jobs, job{ex: ex, lane: key, due: r.pace.due(recorded), batch: b})
	}
	return b, jobs
}

// enqueue appends j to its session's lane, and puts the lane in the ready
// queue when no worker has it.
func (p *run) enqueue(j job) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if l, ok := p.lanes[j.lane]; ok {
		l.queue = append(l.queue, j)
		return
	}
	l := &lane{key: j.lane, queue: []job{j}}
	p.lanes[j.lane] = l
	p.ready = append(p.ready, l)
	p.cond.Signal()
}

// work is one of the Workers goroutines: it takes the next ready lane,
// sends its first exchange, and puts the lane back at the end of the
// ready queue if it has more (or forgets it), until the run is done.
func (p *run) work() {
	defer p.workers.Done()
	p.mu.Lock()
	for {
		for len(p.ready) == 0 && !p.done {
			p.cond.Wait()
		}
		if len(p.ready) == 0 {
			p.mu.Unlock()
			return
		}
		l := p.ready[0]
		p.ready[0] = nil
		p.ready = p.ready[1:]
		j := l.queue[0]
		l.queue[0] = job{}
		l.queue = l.queue[1:]
		p.mu.Unlock()

		p.send(j)

		p.mu.Lock()
		if len(l.queue) > 0 {
			p.ready = append(p.ready, l)
		} else {
			delete(p.lanes, l.key)
		}
	}
}

// send replays one exchange, unless the run is canceled; either way the
// exchange is done for its batch.
func (p *run) send(j job) {
	defer j.batch.pending.Done()
	if p.ctx.Err() != nil {
		j.batch.skipped.Store(true)
		return
	}
	if f := p.r.cfg.OnSchedule; f != nil && !j.due.IsZero() {
		f(time.Since(j.due))
	}
	// A request that has started finishes even after a cancel.
	rec, ok, err := p.r.replay(context.WithoutCancel(p.ctx), j.ex)
	if err != nil {
		j.batch.skipped.Store(true)
		p.fail(err)
		return
	}
	if ok {
		j.batch.addResult(rec)
	}
}

// commitLoop takes the batches in fetch order; when all of a batch's
// exchanges are done it publishes the results and commits the batch.
// After a cancel, a skipped exchange or a failure, later batches are no
// longer committed, but what was sent is still published (unless
// publishing is what failed).
func (p *run) commitLoop(batches <-chan *pipeBatch) {
	r := p.r
	canCommit, canPublish := true, true
	for b := range batches {
		b.pending.Wait()
		<-p.inflight
		p.bytes.Add(-b.bytes)
		select {
		case p.freed <- struct{}{}:
		default:
		}
		if canPublish && len(b.results) > 0 {
			if err := r.cfg.Results.Publish(context.WithoutCancel(p.ctx), b.results...); err != nil {
				p.fail(fmt.Errorf("publishing %d replay results: %w", len(b.results), err))
				canPublish, canCommit = false, false
				continue
			}
			r.replayed.Add(uint64(len(b.results)))
		}
		if !canCommit || b.skipped.Load() || p.ctx.Err() != nil {
			canCommit = false
			continue
		}
		if len(b.dead) > 0 && r.cfg.DLQ != nil {
			if err := r.cfg.DLQ.Publish(p.ctx, b.dead...); err != nil {
				p.fail(fmt.Errorf("publishing %d records to the DLQ: %w", len(b.dead), err))
				canCommit = false
				continue
			}
		}
		if err := r.cfg.Source.Commit(p.ctx, b.recs); err != nil {
			if p.ctx.Err() == nil {
				p.fail(fmt.Errorf("committing a batch of %d exchanges: %w", len(b.recs), err))
			}
			canCommit = false
		}
	}
}
