package replayer

import (
	"sync"
	"time"
)

// breaker pauses a target that failed Threshold times in a row. The
// caller says what a failure is; the replayer counts no response (refused,
// reset, timed out) and a 5xx answer: a staging that answers 5xx to
// everything is down or overloaded, and pausing it spares it, while a
// success resets the count, so one failing route among healthy traffic
// rarely opens the breaker. (The 5xx answers that were sent are recorded as
// answers, not as errors.) While it is open, requests to the target are
// not sent; their outcome records that the target is paused. After Pause,
// one request is let through as a probe: a success closes the breaker, a
// failure opens it again. Safe for concurrent use.
type breaker struct {
	threshold int
	pause     time.Duration
	now       func() time.Time

	mu        sync.Mutex
	failures  int       // consecutive failures
	openUntil time.Time // zero: closed
	probing   bool      // a probe is in flight
}

// allow reports whether a request may be sent now.
func (b *breaker) allow() bool {
	if b == nil {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.openUntil.IsZero():
		return true
	case b.probing || b.now().Before(b.openUntil):
		return false
	}
	b.probing = true // half-open: this request is the probe
	return true
}

// record notes the outcome of a request that was sent; it returns true
// when this outcome opened the breaker.
func (b *breaker) record(ok bool) (opened bool) {
	if b == nil {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	wasProbe := b.probing
	b.probing = false
	if ok {
		b.failures, b.openUntil = 0, time.Time{}
		return false
	}
	b.failures++
	if wasProbe || b.failures >= b.threshold {
		b.openUntil = b.now().Add(b.pause)
		return true
	}
	return false
}
