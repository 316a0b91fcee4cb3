package replayer

import (
	"context"
	"time"
)

// pacer turns recorded times into send times: the gaps between exchanges
// as recorded, divided by speed, with any gap longer than maxGap cut to
// maxGap. The first exchange is due when it is seen. Exchanges whose
// recorded time is earlier than one already seen (records of different
// partitions are only roughly in time order) are due at once.
//
// A pacer is used by one goroutine; the zero value with speed 0 does not
// pace.
type pacer struct {
	speed  float64
	maxGap time.Duration
	now    func() time.Time

	first, last time.Time     // recorded times: the first and the latest seen
	start       time.Time     // when the first was due
	cut         time.Duration // recorded time removed by maxGap so far
}

// due returns when the exchange recorded at t should be sent; the zero
// time means now.
func (p *pacer) due(t time.Time) time.Time {
	if p.speed <= 0 || t.IsZero() {
		return time.Time{}
	}
	if p.start.IsZero() {
		p.first, p.last, p.start = t, t, p.now()
		return p.start
	}
	if !t.After(p.last) {
		return time.Time{}
	}
	if gap := t.Sub(p.last); p.maxGap > 0 && gap > p.maxGap {
		p.cut += gap - p.maxGap
	}
	p.last = t
	return p.start.Add(time.Duration(float64(t.Sub(p.first)-p.cut) / p.speed))
}

// sleepUntil waits until t or ctx is done.
func sleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if t.IsZero() || d <= 0 {
		return ctx.Err()
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
