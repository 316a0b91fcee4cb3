package replayer

import (
	"context"
	"testing"
	"testing/synctest"
	"time"
)

func TestPacerDue(t *testing.T) {
	t0 := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	wall := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	cases := []struct {
		name   string
		speed  float64
		maxGap time.Duration
		in     []time.Duration // recorded offsets from t0
		want   []time.Duration // due offsets from wall; -1 = now
	}{
		{"no pacing", 0, 0, []time.Duration{0, time.Second}, []time.Duration{-1, -1}},
		{"speed 1 keeps the gaps", 1, 0, []time.Duration{0, time.Second, 3 * time.Second}, []time.Duration{0, time.Second, 3 * time.Second}},
		{"speed 2 halves them", 2, 0, []time.Duration{0, time.Second, 3 * time.Second}, []time.Duration{0, 500 * time.Millisecond, 1500 * time.Millisecond}},
		{"speed 0.5 doubles them", 0.5, 0, []time.Duration{0, time.Second}, []time.Duration{0, 2 * time.Second}},
		{"max gap cuts idle time", 1, 10 * time.Second, []time.Duration{0, time.Hour, time.Hour + time.Second}, []time.Duration{0, 10 * time.Second, 11 * time.Second}},
		{"an earlier record is due at once", 1, 0, []time.Duration{0, 2 * time.Second, time.Second, 3 * time.Second}, []time.Duration{0, 2 * time.Second, -1, 3 * time.Second}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := &pacer{speed: tc.speed, maxGap: tc.maxGap, now: func() time.Time { return wall }}
			for i, d := range tc.in {
				got := p.due(at(d))
				want := wall.Add(tc.want[i])
				if tc.want[i] < 0 {
					want = time.Time{}
				}
				if !got.Equal(want) {
					t.Errorf("record %d (+%v): due %v, want %v", i, d, got, want)
				}
			}
		})
	}
}

// TestSleepUntil runs under synctest: time is virtual, so the test checks
// exact waits without depending on the machine's speed.
func TestSleepUntil(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		if err := sleepUntil(context.Background(), start.Add(3*time.Second)); err != nil {
			t.Fatal(err)
		}
		if got := time.Since(start); got != 3*time.Second {
			t.Fatalf("slept %v, want 3s", got)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := sleepUntil(ctx, time.Now().Add(time.Hour)); err == nil {
			t.Fatal("sleep outlived its context")
		}
		if err := sleepUntil(context.Background(), time.Time{}); err != nil {
			t.Fatal(err)
		}
	})
}
