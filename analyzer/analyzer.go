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
	if cfg.Comparer == nil {
		c, err := NewComparer(CompareConfig{})
		if err != nil {
			return nil, err
		}
		cfg.Comparer = c
	}
	return &Analyzer{cfg: cfg, log: cfg.Logger}, nil
}

// Run analyzes until ctx is done, then returns nil after the batch in hand
// is indexed and committed. It returns an error if a batch cannot be made
// durable (DLQ publish or commit failure); that batch is redelivered after
// a restart.
func (a *Analyzer) Run(ctx context.Context) error {
	defer func() {
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
	}()
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
		if err := a.handle(ctx, batch); err != nil {
			if ctx.Err() != nil {
				return nil // cancelled while indexing: uncommitted, redelivered later
			}
			return err
		}
	}
}

func (a *Analyzer) handle(ctx context.Context, batch []stream.Record) error {
	var docs []Doc
	var origin []int // index into batch of each doc
	var dead []stream.Record
	for i, rec := range batch {
		res, err := schema.DecodeReplayResult(rec.Value, rec.Headers)
		if err != nil {
			a.undecodable.Add(1)
			a.log.Warn("undecodable result record", "partition", rec.Partition, "offset", rec.Offset, "err", err)
			dead = append(dead, stream.DeadLetter(rec, fmt.Sprintf("partition %d offset %d: %v", rec.Partition, rec.Offset, err)))
			continue
		}
		for _, d := range a.cfg.Comparer.Compare(res) {
			docs = append(docs, d)
			origin = append(origin, i)
		}
	}
	if len(docs) > 0 {
		outcomes, err := a.cfg.Indexer.Index(ctx, docs)
		if err != nil {
			return fmt.Errorf("indexing %d pair documents: %w", len(docs), err)
		}
		failedRec := map[int]string{}
		for j, o := range outcomes {
			switch {
			case o.Created:
				a.indexed.Add(1)
			case o.Duplicate:
				a.duplicates.Add(1)
			default:
				a.failed.Add(1)
				a.log.Error("pair document refused", "exchange", docs[j].ExchangeID, "target", docs[j].Target, "err", o.Error)
				failedRec[origin[j]] = o.Error
			}
		}
		for i, reason := range failedRec {
			dead = append(dead, stream.DeadLetter(batch[i], "indexing: "+reason))
		}
	}
	if len(dead) > 0 && a.cfg.DLQ != nil {
		if err := a.cfg.DLQ.Publish(ctx, dead...); err != nil {
			return fmt.Errorf("publishing %d records to the DLQ: %w", len(dead), err)
		}
	}
	if err := a.cfg.Source.Commit(ctx, batch); err != nil {
		return fmt.Errorf("committing a batch of %d results: %w", len(batch), err)
	}
	return nil
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
