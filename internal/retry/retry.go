// Package retry is how couchnpm waits before asking again after a failure:
// an exponential Backoff and a Wait that ends when its context does. Every
// loop that retries (the mirror follower, the changes-feed followers, the
// audit writer, CouchDB start-up, write conflicts) waits through it, so
// none of them outlives a shutdown.
package retry

import (
	"context"
	"time"
)

// Backoff is an exponential backoff: Next answers First, then twice the
// last answer, up to Max; Reset starts over (after a success). The zero
// value of Max means no ceiling. A Backoff is used by one loop at a time.
type Backoff struct {
	First, Max time.Duration
	next       time.Duration
}

// Next is the wait before the next attempt.
func (b *Backoff) Next() time.Duration {
	if b.next <= 0 {
		b.next = b.First
	}
	d := b.next
	if b.Max > 0 && d > b.Max {
		d = b.Max
	}
	b.next = d * 2
	return d
}

// Reset makes the next wait First again.
func (b *Backoff) Reset() { b.next = 0 }

// Wait waits d, or less when ctx ends first: then it returns ctx's error.
func Wait(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
