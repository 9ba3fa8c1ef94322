package retry

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

func TestBackoff(t *testing.T) {
	tests := []struct {
		name       string
		first, max time.Duration
		want       []time.Duration
	}{
		{"doubles up to the ceiling", time.Second, 5 * time.Second, []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second}},
		{"no ceiling", 100 * time.Millisecond, 0, []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond}},
		{"first above the ceiling", time.Minute, time.Second, []time.Duration{time.Second, time.Second}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := Backoff{First: tc.first, Max: tc.max}
			for i, want := range tc.want {
				if got := b.Next(); got != want {
					t.Fatalf("wait %d = %v, want %v", i+1, got, want)
				}
			}
			b.Reset()
			if got := b.Next(); got != tc.want[0] {
				t.Errorf("after Reset: %v, want %v", got, tc.want[0])
			}
		})
	}
}

func TestWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		if err := Wait(context.Background(), time.Hour); err != nil || time.Since(start) != time.Hour {
			t.Errorf("full wait: %v after %v", err, time.Since(start))
		}

		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		start = time.Now()
		if err := Wait(ctx, time.Hour); !errors.Is(err, context.DeadlineExceeded) || time.Since(start) != time.Minute {
			t.Errorf("cut wait: %v after %v", err, time.Since(start))
		}
		// An ended context ends even a zero wait: loops stop at once.
		if err := Wait(ctx, 0); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("zero wait on an ended context: %v", err)
		}
	})
}
