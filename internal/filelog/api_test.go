package filelog

import (
	"context"

	"github.com/tapline/tapline/internal/stream"
)

// The method sets the stages plug in (replayer.Source and analyzer.Source,
// replayer.Sink and analyzer.Sink, recorder.Sink), spelled out here so
// that this package does not depend on the stages.
var (
	_ interface {
		Fetch(ctx context.Context) ([]stream.Record, error)
		Commit(ctx context.Context, recs []stream.Record) error
	} = (*Reader)(nil)
	_ interface {
		Publish(ctx context.Context, recs ...stream.Record) error
	} = (*Writer)(nil)
	_ interface {
		Enqueue(rec stream.Record) bool
		EnqueueWait(ctx context.Context, rec stream.Record) error
	} = (*Writer)(nil)
)
