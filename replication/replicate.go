package replication

import (
	"context"
	"time"

	"github.com/rs/zerolog"

	"github.com/couchnpm/couchnpm/internal/retry"
)

// ReplicationKeeper creates or updates a _replicator document and removes
// upstream design documents from the mirror.
type ReplicationKeeper[R any] interface {
	EnsureReplication(ctx context.Context, r R) (bool, error)
	RemoveForeignDesignDocs(ctx context.Context, role, keep string) ([]string, error)
}

// KeepReplicating makes sure the continuous _replicator document exists and
// says what it should, now and every ensureEvery (so a deleted or edited
// document is put back), and every sweepEvery removes design documents that
// reached the mirror from upstream (only possible where the server cannot
// take a replication selector, PouchDB Server). Every instance may run it:
// the writes are idempotent and concurrent ones are resolved by MVCC.
func KeepReplicating[R any](ctx context.Context, k ReplicationKeeper[R], r R, role, keep string, ensureEvery, sweepEvery time.Duration, log zerolog.Logger) {
	var lastEnsure time.Time
	for {
		if time.Since(lastEnsure) >= ensureEvery {
			changed, err := k.EnsureReplication(ctx, r)
			switch {
			case err != nil:
				log.Warn().Err(err).Msg("cannot set up the replication")
			case changed:
				log.Info().Msg("replication document written; CouchDB's replicator takes it from here")
			}
			if err == nil {
				lastEnsure = time.Now()
			}
		}
		removed, err := k.RemoveForeignDesignDocs(ctx, role, keep)
		if err != nil {
			log.Warn().Err(err).Msg("cannot check the mirror for upstream design documents")
		}
		for _, id := range removed {
			log.Warn().Str("ddoc", id).Msg("removed an upstream design document from the mirror")
		}
		if retry.Wait(ctx, sweepEvery) != nil {
			return
		}
	}
}
