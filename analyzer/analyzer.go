// Package analyzer is tapline's comparison stage: replay results in, one
// pair document per exchange and target out, in Elasticsearch.
//
// Input: ReplayResult records from a Source (a Kafka consumer group
// member, or the file log). For each target outcome the production
// response is compared with the target's by a Comparer (compare.go, with
// analyzer/diff: decoded bodies, JSON paths, noise from a baseline target
// and learned per route, route templates) and a pair document is built. Output: pair documents bulk-indexed into a data
// stream with document id "<exchange id>:<target>", written with `create`
// so a redelivered result is a counted duplicate, not a second document.
// Source offsets are committed only after every document of the batch is
// indexed, a duplicate, or recorded as permanently failed (DLQ).
package analyzer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/tapline/tapline/internal/stream"
	"github.com/tapline/tapline/schema"
)

// Source delivers batches of records and takes commits; kafkaio.Consumer
// and filelog.Reader implement it. Commit acknowledges the given records
// and, per partition, everything before them. Fetch returns io.EOF when a
// finite source is exhausted.
type Source interface {
	Fetch(ctx context.Context) ([]stream.Record, error)
	Commit(ctx context.Context, recs []stream.Record) error
}

// Sink publishes records durably; used for the DLQ. kafkaio.Producer
// implements it.
type Sink interface {
	Publish(ctx context.Context, recs ...stream.Record) error
}

// Indexer stores pair documents. Index returns one outcome per document,
// in order; it retries transient failures itself and returns an error only
// when ctx ends first. *Elastic implements it.
type Indexer interface {
	Index(ctx context.Context, docs []Doc) ([]ItemOutcome, error)
}

// ItemOutcome is what happened to one document.
type ItemOutcome struct {
	Created   bool   // stored now
	Duplicate bool   // a document with this id existed already
	Error     string // permanent failure: the reason
}

// Config configures an Analyzer. Zero values are documented defaults.
type Config struct {
	Source  Source  // required
	Indexer Indexer // required
	// DLQ receives results that cannot be decoded or indexed, with the
	// reason. Default: none; they are then logged, counted and skipped.
	DLQ Sink
	// Comparer builds the pair documents. Default: NewComparer with the
	// zero CompareConfig.
	Comparer *Comparer
	// Concurrency is how many batches are indexed at once, while the next
	// one is fetched and compared; batches are still committed in fetch
	// order. Default 2 (one bulk request in flight on the node while the
	// next is built and sent, see BENCHMARKS.md).
	Concurrency int
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Analyzer compares and indexes replay results. Create it with New.
type Analyzer struct {
	cfg Config
	log *slog.Logger

	fetched, undecodable, indexed, duplicates, failed atomic.Uint64
}

// New validates cfg and returns an Analyzer.
func New(cfg Config) (*Analyzer, error) {
	if cfg.Source == nil || cfg.Indexer == nil {
		return nil, errors.New("analyzer: source and indexer are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 2
	}
	if cfg.Comparer == nil {
		c, err := NewComparer(CompareConfig{})
		if err != nil {
			return nil, err
		}
		cfg.Comparer = c
	}
	return &Analyzer{cfg: cfg, log: cfg.Logger}, nil
}

// Run analyzes until ctx is done (or a finite source is exhausted), then
// returns nil; batches not yet indexed and committed then are delivered
// again after a restart. It returns an error if a batch cannot be made
// durable (DLQ publish or commit failure); that batch and the ones after
// it are not committed.
//
// Three stages: one goroutine fetches, decodes and compares batches (the
// Comparer is used by it alone); Concurrency goroutines index them; Run's
// own goroutine waits for each batch in fetch order, sends its dead
// letters to the DLQ and commits it. At most Concurrency+2 batches are
// in the analyzer (queued for the committer, held by it, and one being
// compared).
func (a *Analyzer) Run(ctx context.Context) error {
	defer a.logSummary()
	ictx, stop := context.WithCancel(ctx)
	defer stop()
	work := make(chan *job, a.cfg.Concurrency)    // to the indexers
	ordered := make(chan *job, a.cfg.Concurrency) // to the committer, in fetch order
	var indexers sync.WaitGroup
	for range a.cfg.Concurrency {
		indexers.Add(1)
		go func() {
			defer indexers.Done()
			for j := range work {
				if len(j.docs) > 0 {
					j.outcomes, j.err = a.cfg.Indexer.Index(ictx, j.docs)
				}
				close(j.done)
			}
		}()
	}
	fetchErr := make(chan error, 1)
	go func() {
		defer close(work)
		defer close(ordered)
		fetchErr <- a.fetch(ictx, work, ordered)
	}()

	var runErr error
	for j := range ordered {
		<-j.done
		dead := a.account(j) // what was indexed is counted, committed or not
		if runErr != nil || ictx.Err() != nil {
			continue // stopping: later batches must not be committed before this one
		}
		if err := a.finish(ictx, j, dead); err != nil {
			if ctx.Err() == nil {
				runErr = err
			}
			stop()
		}
	}
	indexers.Wait()
	if runErr != nil {
		return runErr
	}
	return <-fetchErr
}

// job is one fetched batch on its way through Run.
type job struct {
	batch  []stream.Record
	docs   []Doc
	origin []int           // index into batch of each doc
	dead   []stream.Record // undecodable records, for the DLQ

	outcomes []ItemOutcome // set by the indexer, with err
	err      error
	done     chan struct{} // closed when indexed
}

// fetch fetches and compares batches and hands them on until the source
// is exhausted (nil) or ctx ends (nil) or fetching fails.
func (a *Analyzer) fetch(ctx context.Context, work, ordered chan<- *job) error {
	for {
		batch, err := a.cfg.Source.Fetch(ctx)
		if errors.Is(err, io.EOF) {
			return nil // a finite source (a file log read once), analyzed to its end
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		a.fetched.Add(uint64(len(batch)))
		j := a.prepare(batch)
		select {
		case ordered <- j:
		case <-ctx.Done():
			return nil
		}
		work <- j // the indexers take from work until it is closed
	}
}

// prepare decodes and compares a batch.
func (a *Analyzer) prepare(batch []stream.Record) *job {
	j := &job{batch: batch, done: make(chan struct{})}
	for i, rec := range batch {
		res, err := schema.DecodeReplayResult(rec.Value, rec.Headers)
		if err != nil {
			a.undecodable.Add(1)
			a.log.Warn("undecodable result record", "partition", rec.Partition, "offset", rec.Offset, "err", err)
			j.dead = append(j.dead, stream.DeadLetter(rec, fmt.Sprintf("partition %d offset %d: %v", rec.Partition, rec.Offset, err)))
			continue
		}
		for _, d := range a.cfg.Comparer.Compare(res) {
			j.docs = append(j.docs, d)
			j.origin = append(j.origin, i)
		}
	}
	return j
}

// account counts an indexed batch's outcomes and returns the records to
// dead-letter: the undecodable ones and those with a refused document.
func (a *Analyzer) account(j *job) []stream.Record {
	if j.err != nil {
		return nil
	}
	dead := j.dead
	failedRec := map[int]string{}
	for k, o := range j.outcomes {
		switch {
		case o.Created:
			a.indexed.Add(1)
		case o.Duplicate:
			a.duplicates.Add(1)
		default:
			a.failed.Add(1)
			a.log.Error("pair document refused", "exchange", j.docs[k].ExchangeID, "target", j.docs[k].Target, "err", o.Error)
			failedRec[j.origin[k]] = o.Error
		}
	}
	for i, reason := range failedRec {
		dead = append(dead, stream.DeadLetter(j.batch[i], "indexing: "+reason))
	}
	return dead
}

// finish makes an indexed batch durable: its dead letters to the DLQ,
// then the commit.
func (a *Analyzer) finish(ctx context.Context, j *job, dead []stream.Record) error {
	if j.err != nil {
		return fmt.Errorf("indexing %d pair documents: %w", len(j.docs), j.err)
	}
	if len(dead) > 0 && a.cfg.DLQ != nil {
		if err := a.cfg.DLQ.Publish(ctx, dead...); err != nil {
			return fmt.Errorf("publishing %d records to the DLQ: %w", len(dead), err)
		}
	}
	if err := a.cfg.Source.Commit(ctx, j.batch); err != nil {
		return fmt.Errorf("committing a batch of %d results: %w", len(j.batch), err)
	}
	return nil
}

func (a *Analyzer) logSummary() {
	s := a.Stats()
	a.log.Info("analyzer summary", "fetched", s.Fetched, "indexed", s.Indexed, "duplicates", s.Duplicates,
		"failed", s.Failed, "undecodable", s.Undecodable)
	for _, r := range a.cfg.Comparer.Noise().Routes {
		keys := make([]string, len(r.Keys))
		for i, k := range r.Keys {
			keys[i] = fmt.Sprintf("%s (%.0f%%)", k.Key, 100*k.Share)
		}
		a.log.Info("learned noise", "route", r.Route, "baseline_comparisons", r.Samples, "noisy", strings.Join(keys, ", "))
	}
}

// Stats is a snapshot of the analyzer's counters.
type Stats struct {
	Fetched     uint64 // result records fetched
	Undecodable uint64 // result records that could not be decoded (DLQ)
	Indexed     uint64 // pair documents created
	Duplicates  uint64 // pair documents that existed already (redelivery)
	Failed      uint64 // pair documents refused permanently (DLQ)
}

// Stats returns a snapshot of the counters; safe to call during Run.
func (a *Analyzer) Stats() Stats {
	return Stats{Fetched: a.fetched.Load(), Undecodable: a.undecodable.Load(), Indexed: a.indexed.Load(),
		Duplicates: a.duplicates.Load(), Failed: a.failed.Load()}
}

func ptr[T any](v T) *T { return &v }
