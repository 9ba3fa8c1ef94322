package replication

import (
	"context"
	"time"

	"github.com/rs/zerolog"
)

// ReplicationWriter creates or updates a _replicator document.
type ReplicationWriter[R any] interface {
	EnsureReplication(ctx context.Context, r R) (bool, error)
}

// KeepReplicating makes sure the continuous _replicator document exists and
// says what it should, now and every interval (so a deleted or edited
// document is put back). Every instance may run it: the write is
// idempotent and a concurrent one is resolved by CouchDB's MVCC.
func KeepReplicating[R any](ctx context.Context, w ReplicationWriter[R], r R, interval time.Duration, log zerolog.Logger) {
	for {
		changed, err := w.EnsureReplication(ctx, r)
		switch {
		case err != nil:
			log.Warn().Str("error", err.Error()).Msg("cannot set up the replication")
		case changed:
			log.Info().Msg("replication document written; CouchDB's replicator takes it from here")
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
	}
}
