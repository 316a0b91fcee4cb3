package replayer

import (
	"testing"
	"time"
)

func TestBreaker(t *testing.T) {
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	b := &breaker{threshold: 3, pause: 10 * time.Second, now: func() time.Time { return now }}
	steps := []struct {
		advance    time.Duration
		wantAllow  bool
		ok         bool // outcome, when allowed
		wantOpened bool
	}{
		{0, true, false, false},
		{0, true, true, false}, // a success resets the count
		{0, true, false, false},
		{0, true, false, false},
		{0, true, false, true}, // third failure in a row: open
		{time.Second, false, false, false},
		{9 * time.Second, true, false, true}, // pause over: the probe fails, open again
		{time.Second, false, false, false},
		{10 * time.Second, true, true, false}, // the probe succeeds: closed
		{0, true, true, false},
	}
	for i, s := range steps {
		now = now.Add(s.advance)
		if got := b.allow(); got != s.wantAllow {
			t.Fatalf("step %d: allow %v, want %v", i, got, s.wantAllow)
		}
		if !s.wantAllow {
			continue
		}
		if opened := b.record(s.ok); opened != s.wantOpened {
			t.Fatalf("step %d: opened %v, want %v", i, opened, s.wantOpened)
		}
	}
	// While a probe is in flight, nothing else goes through.
	b = &breaker{threshold: 1, pause: time.Second, now: func() time.Time { return now }}
	b.allow()
	b.record(false)
	now = now.Add(2 * time.Second)
	if !b.allow() || b.allow() {
		t.Fatal("want exactly one probe after the pause")
	}
	var nilBreaker *breaker
	if !nilBreaker.allow() || nilBreaker.record(false) {
		t.Fatal("a nil breaker must not interfere")
	}
}
