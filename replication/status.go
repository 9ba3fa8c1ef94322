package replication

import (
	"context"
	"time"

	"github.com/couchnpm/couchnpm/registry"
)

// Status is the mirror's state as GET /-/mirror/status reports it.
type Status struct {
	Mode     Mode   `json:"mode"`
	State    string `json:"state"`
	Upstream string `json:"upstream,omitempty"`
	Instance string `json:"instance"`
	Holder   string `json:"follower_holder,omitempty"`

	Checkpoint  string     `json:"checkpoint,omitempty"`
	UpstreamSeq string     `json:"upstream_seq,omitempty"`
	LagChanges  *int64     `json:"lag_changes,omitempty"`
	LagSeconds  *float64   `json:"lag_seconds,omitempty"`
	CaughtUpAt  *time.Time `json:"caught_up_at,omitempty"`
	// PackumentsWritten is FollowerWritten + OnDemandWritten.
	PackumentsWritten int64 `json:"packuments_written"`
	// FollowerWritten counts the follower's writes, from its checkpoint:
	// every instance's, since the follower first started.
	FollowerWritten int64 `json:"follower_written"`
	// OnDemandWritten counts the packuments this instance pulled on a read
	// (a miss, or a stale copy refreshed) since it started.
	OnDemandWritten   int64      `json:"on_demand_written"`
	PackumentsDeleted int64      `json:"packuments_deleted"`
	WrittenPerSecond  float64    `json:"written_per_second,omitempty"`
	Failures          int64      `json:"failures"`
	LastFailures      []Failure  `json:"last_failures"`
	LastError         string     `json:"last_error,omitempty"`
	CheckpointUpdated *time.Time `json:"checkpoint_updated,omitempty"`

	Replication map[string]any `json:"replication,omitempty"`

	TarballCache struct {
		Hits              int64 `json:"hits"`
		Misses            int64 `json:"misses"`
		IntegrityFailures int64 `json:"integrity_failures"`
	} `json:"tarball_cache"`
	// UpstreamFetches counts this instance's upstream requests (packuments
	// and tarballs) by outcome since it started.
	UpstreamFetches UpstreamFetches `json:"upstream_fetches"`
	// PullThrough counts this instance's packuments pulled on a read:
	// written behind the answer, and dependencies prefetched.
	PullThrough PullThrough `json:"pull_through"`
}

// PullThrough are the write-behind's and the prefetch's counters.
type PullThrough struct {
	WritesQueued  int64 `json:"writes_queued"`
	WritesPending int64 `json:"writes_pending"` // queued, not written yet
	// WritesInline: the queue was full, the request wrote its copy itself.
	WritesInline  int64 `json:"writes_inline"`
	WriteRetries  int64 `json:"write_retries"`
	WritesFailed  int64 `json:"writes_failed"` // given up on; the next read pulls again
	PrefetchQueue int64 `json:"prefetch_queued"`
	// PrefetchDropped: names dropped because the prefetch queue was full.
	PrefetchDropped int64 `json:"prefetch_dropped"`
	Prefetched      int64 `json:"prefetched"`
}

// UpstreamFetches are upstream requests by outcome. Errors is the sum of
// the three causes.
type UpstreamFetches struct {
	OK       int64 `json:"ok"`
	NotFound int64 `json:"not_found"`
	Errors   int64 `json:"errors"`
	// NoAnswer: the request got no answer (connection refused or reset,
	// timeout, no free upstream slot).
	NoAnswer int64 `json:"no_answer"`
	// ErrorStatus: the upstream answered 429, 5xx or another status that
	// is neither 200 nor 404.
	ErrorStatus int64 `json:"error_status"`
	// Unusable: the upstream answered 200 with something couchnpm refused
	// (over the size bound, unreadable, another package, off-origin).
	Unusable int64 `json:"unusable"`
}

// ReplicationReader reads a _replicator replication's state.
type ReplicationReader interface {
	ReplicationState(ctx context.Context, id string) (map[string]any, error)
}

// Reporter assembles the status from the follower's checkpoint in CouchDB
// (written by whichever instance holds the lease), the lease, and this
// instance's counters: every instance reports the same mirror state.
type Reporter struct {
	Mode        Mode
	Upstream    string
	Instance    string
	System      DocStore
	Lease       *Lease
	Stats       *Stats
	Replication ReplicationReader
	ReplID      string
}

// Status reports the mirror's state now.
func (r *Reporter) Status(ctx context.Context) (*Status, error) {
	st := &Status{Mode: r.Mode, Upstream: r.Upstream, Instance: r.Instance, State: "idle", LastFailures: []Failure{}}
	if r.Stats != nil {
		st.TarballCache.Hits = r.Stats.hits.Load()
		st.TarballCache.Misses = r.Stats.misses.Load()
		st.TarballCache.IntegrityFailures = r.Stats.integrityFailures.Load()
		st.PullThrough = PullThrough{WritesQueued: r.Stats.writeQueued.Load(), WritesPending: r.Stats.writePending.Load(),
			WritesInline: r.Stats.writeQueueFull.Load(), WriteRetries: r.Stats.writeRetries.Load(), WritesFailed: r.Stats.writeFailed.Load(),
			PrefetchQueue: r.Stats.prefetchQueued.Load(), PrefetchDropped: r.Stats.prefetchDropped.Load(), Prefetched: r.Stats.prefetched.Load()}
		f := &st.UpstreamFetches
		f.OK = r.Stats.upstreamOK.Load()
		f.NotFound = r.Stats.upstreamNotFound.Load()
		f.NoAnswer = r.Stats.upstreamUnreachable.Load()
		f.ErrorStatus = r.Stats.upstreamStatus.Load()
		f.Unusable = r.Stats.upstreamUnusable.Load()
		f.Errors = f.NoAnswer + f.ErrorStatus + f.Unusable
		st.OnDemandWritten = r.Stats.onDemandWritten.Load()
	}
	defer func() { st.PackumentsWritten = st.FollowerWritten + st.OnDemandWritten }()
	switch r.Mode {
	case ModeOff:
		st.State = "off"
	case ModeOnDemand:
		st.State = "on-demand"
	case ModeFollow:
		if err := r.follower(ctx, st); err != nil {
			return nil, err
		}
	case ModeReplicate:
		state, err := r.Replication.ReplicationState(ctx, r.ReplID)
		if err != nil && !registry.IsKind(err, registry.KindNotFound) {
			return nil, err
		}
		st.Replication = state
		st.State = "starting"
		if s, ok := state["state"].(string); ok && s != "" {
			st.State = s
		}
	}
	return st, nil
}

func (r *Reporter) follower(ctx context.Context, st *Status) error {
	holder, _, err := r.Lease.Holder(ctx)
	if err != nil {
		return err
	}
	st.Holder = holder
	var cp checkpoint
	_, err = r.System.Get(ctx, checkpointID, &cp)
	if registry.IsKind(err, registry.KindNotFound) {
		st.State = "starting"
		return nil
	}
	if err != nil {
		return err
	}
	st.State = cp.State
	if holder == "" && cp.State != "stopped" {
		st.State = "no-holder"
	}
	st.Checkpoint, st.UpstreamSeq = cp.Since, cp.UpstreamSeq
	st.FollowerWritten, st.PackumentsDeleted = cp.Written, cp.Deleted
	st.Failures, st.LastError = cp.Failed, cp.LastError
	st.LastFailures = append(st.LastFailures, cp.LastFailures...)
	if !cp.Updated.IsZero() {
		st.CheckpointUpdated = &cp.Updated
	}
	if !cp.CaughtUpAt.IsZero() {
		st.CaughtUpAt = &cp.CaughtUpAt
	}
	if a, ok := seqNumber(cp.Since); ok {
		if b, ok := seqNumber(cp.UpstreamSeq); ok {
			lag := max(b-a, 0)
			st.LagChanges = &lag
		}
	}
	// Lag in time: zero while following; otherwise how long since the
	// follower last reached the end of the feed.
	var lag float64
	if cp.State != "following" && !cp.CaughtUpAt.IsZero() {
		lag = time.Since(cp.CaughtUpAt).Seconds()
	}
	if cp.State != "following" && cp.CaughtUpAt.IsZero() && !cp.StartedAt.IsZero() {
		lag = time.Since(cp.StartedAt).Seconds()
	}
	st.LagSeconds = &lag
	if !cp.StartedAt.IsZero() && cp.WrittenSinceStart > 0 {
		if d := cp.Updated.Sub(cp.StartedAt).Seconds(); d > 0 {
			st.WrittenPerSecond = float64(cp.WrittenSinceStart) / d
		}
	}
	return nil
}
