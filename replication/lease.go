package replication

import (
	"context"
	"time"

	"github.com/rs/zerolog"

	"github.com/couchnpm/couchnpm/internal/retry"
	"github.com/couchnpm/couchnpm/registry"
)

// Lease makes one instance among several the holder of a job (the
// follower), through a document in CouchDB taken with MVCC: a write with a
// stale revision loses. A holder that stops renewing loses the lease when
// it expires.
type Lease struct {
	docs   DocStore
	id     string
	holder string
	ttl    time.Duration
	log    zerolog.Logger
	rev    string
}

type leaseDoc struct {
	Type    string    `json:"type"`
	Holder  string    `json:"holder"`
	Expires time.Time `json:"expires"`
}

// NewLease describes lease id held for ttl at a time by holder.
func NewLease(docs DocStore, id, holder string, ttl time.Duration, log zerolog.Logger) *Lease {
	return &Lease{docs: docs, id: id, holder: holder, ttl: ttl, log: log}
}

// TryAcquire takes the lease if it is free, expired or already ours, and
// extends it. It reports whether this instance holds it now.
func (l *Lease) TryAcquire(ctx context.Context) (bool, error) {
	var cur leaseDoc
	rev, err := l.docs.Get(ctx, l.id, &cur)
	switch {
	case registry.IsKind(err, registry.KindNotFound):
		rev = ""
	case err != nil:
		return false, err
	case cur.Holder != l.holder && time.Now().Before(cur.Expires):
		return false, nil
	}
	newRev, err := l.docs.Put(ctx, l.id, rev, leaseDoc{Type: "lease", Holder: l.holder, Expires: time.Now().Add(l.ttl).UTC()})
	if registry.IsKind(err, registry.KindConflict) {
		return false, nil // another instance was faster
	}
	if err != nil {
		return false, err
	}
	l.rev = newRev
	return true, nil
}

// Holder reads who holds the lease now ("" when free or expired).
func (l *Lease) Holder(ctx context.Context) (string, time.Time, error) {
	var cur leaseDoc
	_, err := l.docs.Get(ctx, l.id, &cur)
	if registry.IsKind(err, registry.KindNotFound) || (err == nil && time.Now().After(cur.Expires)) {
		return "", time.Time{}, nil
	}
	return cur.Holder, cur.Expires, err
}

// Release gives the lease up at once (on shutdown), so another instance
// takes over without waiting for the expiry.
func (l *Lease) Release(ctx context.Context) {
	if l.rev == "" {
		return
	}
	if _, err := l.docs.Put(ctx, l.id, l.rev, leaseDoc{Type: "lease", Expires: time.Now().UTC()}); err != nil {
		l.log.Warn().Str("lease", l.id).Err(err).Msg("could not release the lease")
	}
	l.rev = ""
}

// Run keeps trying to hold the lease until ctx ends, and runs job while it
// holds it. The job's context is cancelled as soon as a renewal fails.
func (l *Lease) Run(ctx context.Context, job func(ctx context.Context)) {
	every := l.ttl / 3
	standingBy := false // said once per wait, not on every try
	for ctx.Err() == nil {
		held, err := l.TryAcquire(ctx)
		if err != nil {
			l.log.Warn().Str("lease", l.id).Err(err).Msg("cannot reach the lease")
		}
		if !held {
			if err == nil && !standingBy {
				l.log.Info().Str("lease", l.id).Msg("another instance holds the lease; standing by")
				standingBy = true
			}
			_ = retry.Wait(ctx, every) // the loop checks ctx
			continue
		}
		standingBy = false
		l.log.Info().Str("lease", l.id).Str("holder", l.holder).Msg("took the lease")
		jobCtx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); job(jobCtx) }()
		for held {
			select {
			case <-ctx.Done():
				held = false
			case <-done:
				held = false
			case <-time.After(every):
				held, err = l.TryAcquire(ctx)
				if !held {
					l.log.Warn().Str("lease", l.id).Interface("error", err).Msg("lost the lease; stopping the job")
				}
			}
		}
		cancel()
		<-done
	}
	rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	l.Release(rctx)
}
