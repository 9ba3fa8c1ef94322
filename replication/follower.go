package replication

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/couchnpm/couchnpm/internal/retry"
	"github.com/couchnpm/couchnpm/registry"
)

// PrivateLookup tells whether a name published here hides the upstream's
// package (registry.Service.Shadows).
type PrivateLookup interface {
	Shadows(ctx context.Context, name string) (bool, error)
}

// FollowerConfig tunes the follower.
type FollowerConfig struct {
	PageSize     int           // changes per page (the public feed allows up to 10000)
	PollInterval time.Duration // wait after a short page
	Workers      int           // packuments fetched at once
	// BatchDocs and BatchBytes bound one _bulk_docs write (defaults 100
	// documents, 8 MiB); a larger document is written alone.
	BatchDocs  int
	BatchBytes int
	MaxBackoff time.Duration
	// Attempts is how often a packument the upstream cannot serve now (429,
	// 5xx, a broken connection) is asked for, with backoff honouring
	// Retry-After, before the package is recorded as failed and skipped.
	Attempts int
}

// Follower keeps the mirror database in step with the upstream's paged
// changes feed: for each change it fetches the packument from the upstream
// registry and writes it, from a checkpoint kept in CouchDB. Only the
// lease holder runs it.
type Follower struct {
	cfg     FollowerConfig
	up      *Upstream
	mirror  *Mirror
	bulk    BulkStore // the mirror database, a batch per request
	private PrivateLookup
	names   NameIndex // the private database's names; nil: Shadows for each change
	system  DocStore
	log     zerolog.Logger

	mu sync.Mutex
	cp checkpoint
}

// checkpointID is the follower's state document in the system database.
const checkpointID = "follower:checkpoint"

// checkpoint is persisted after every page; any instance reads it for the
// status report.
type checkpoint struct {
	Since        string    `json:"since"`
	State        string    `json:"state"`
	UpstreamSeq  string    `json:"upstream_seq,omitempty"`
	CaughtUpAt   time.Time `json:"caught_up_at,omitzero"`
	Written      int64     `json:"packuments_written"`
	Deleted      int64     `json:"packuments_deleted"`
	Unchanged    int64     `json:"packuments_unchanged"` // changes skipped: that revision was stored already
	Failed       int64     `json:"failures"`
	LastFailures []Failure `json:"last_failures"`
	LastError    string    `json:"last_error,omitempty"`
	Holder       string    `json:"holder"`
	Updated      time.Time `json:"updated"`
	StartedAt    time.Time `json:"started_at,omitzero"`
	// WrittenSinceStart counts this run's writes, for the catch-up rate.
	WrittenSinceStart int64 `json:"written_since_start"`
}

// Failure is one package the follower could not mirror.
type Failure struct {
	Package string    `json:"package"`
	Error   string    `json:"error"`
	Time    time.Time `json:"time"`
}

const keptFailures = 10

// NewFollower builds a follower. bulk is the mirror database (the one
// mirror reads), names the private database's, used to ask private about
// only the names published here (nil: private is asked about each change).
func NewFollower(cfg FollowerConfig, up *Upstream, mirror *Mirror, bulk BulkStore, private PrivateLookup, names NameIndex, system DocStore, log zerolog.Logger) *Follower {
	if cfg.PageSize <= 0 {
		cfg.PageSize = 1000
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 2 * time.Second
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 16
	}
	if cfg.BatchDocs <= 0 {
		cfg.BatchDocs = 100
	}
	if cfg.BatchBytes <= 0 {
		cfg.BatchBytes = 8 << 20
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = time.Minute
	}
	if cfg.Attempts <= 0 {
		cfg.Attempts = 3
	}
	return &Follower{cfg: cfg, up: up, mirror: mirror, bulk: bulk, private: private, names: names, system: system, log: log}
}

// Run follows the changes feed until ctx ends. holder names this instance
// in the checkpoint.
func (f *Follower) Run(ctx context.Context, holder string) {
	rev, err := f.system.Get(ctx, checkpointID, &f.cp)
	if err != nil && !registry.IsKind(err, registry.KindNotFound) {
		f.log.Warn().Err(err).Msg("cannot read the follower checkpoint; retrying")
	}
	for err != nil && !registry.IsKind(err, registry.KindNotFound) && ctx.Err() == nil {
		_ = retry.Wait(ctx, 2*time.Second) // the loop checks ctx
		rev, err = f.system.Get(ctx, checkpointID, &f.cp)
	}
	f.cp.Holder, f.cp.StartedAt, f.cp.WrittenSinceStart = holder, time.Now().UTC(), 0
	f.log.Info().Str("since", f.cp.Since).Str("changes", f.up.cfg.Changes).Msg("follower started")
	backoff := retry.Backoff{First: time.Second, Max: f.cfg.MaxBackoff}
	lastLog := time.Now()
	for ctx.Err() == nil {
		page, err := f.up.Changes(ctx, f.cp.Since, f.cfg.PageSize)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			wait := max(RetryAfterOf(err), backoff.Next())
			f.set(func(cp *checkpoint) { cp.State, cp.LastError = "backoff", err.Error() })
			f.log.Warn().Err(err).Dur("retry_in", wait).Msg("changes feed failed; backing off")
			rev = f.save(ctx, rev)
			_ = retry.Wait(ctx, wait) // the loop checks ctx
			continue
		}
		if err := f.apply(ctx, page.Results); err != nil {
			if ctx.Err() != nil {
				break // the page was not finished: keep the old checkpoint
			}
			// CouchDB could not take the page: keep the checkpoint and
			// read the page again (what landed is skipped as unchanged).
			wait := backoff.Next()
			f.set(func(cp *checkpoint) { cp.State, cp.LastError = "backoff", err.Error() })
			f.log.Warn().Err(err).Dur("retry_in", wait).Msg("mirror database write failed; backing off")
			rev = f.save(ctx, rev)
			_ = retry.Wait(ctx, wait) // the loop checks ctx
			continue
		}
		backoff.Reset()
		if ctx.Err() != nil {
			break
		}
		short := len(page.Results) < f.cfg.PageSize
		f.set(func(cp *checkpoint) {
			if seq := seqString(page.LastSeq); seq != "" {
				cp.Since = seq
			}
			cp.LastError = ""
			cp.State = "catching-up"
			if short {
				cp.State, cp.CaughtUpAt = "following", time.Now().UTC()
			}
		})
		if short || time.Since(lastLog) > 10*time.Second {
			if seq, err := f.up.UpdateSeq(ctx); err == nil {
				f.set(func(cp *checkpoint) { cp.UpstreamSeq = seqString(seq) })
			}
		}
		rev = f.save(ctx, rev)
		if time.Since(lastLog) > 10*time.Second {
			lastLog = time.Now()
			cp := f.snapshot()
			f.log.Info().Str("since", cp.Since).Str("upstream_seq", cp.UpstreamSeq).Int64("written", cp.Written).
				Int64("failures", cp.Failed).Str("state", cp.State).Msg("follower progress")
		}
		if short {
			_ = retry.Wait(ctx, f.cfg.PollInterval) // the loop checks ctx
		}
	}
	f.set(func(cp *checkpoint) { cp.State = "stopped" })
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	f.save(sctx, rev)
	f.log.Info().Msg("follower stopped")
}

// fetch reads a packument from upstream, asking again after a temporary
// failure (429, 5xx, a broken or unreadable answer): waiting the upstream's
// Retry-After or an exponential backoff. The checkpoint moves past the
// change once the page is done, so a package given up on stays stale until
// it changes again.
func (f *Follower) fetch(ctx context.Context, name string) (*registry.Packument, error) {
	backoff := retry.Backoff{First: time.Second}
	for attempt := 1; ; attempt++ {
		p, err := f.up.Packument(ctx, name)
		f.mirror.stats.upstreamFetch(err)
		if err == nil || !registry.IsKind(err, registry.KindUnavailable) || attempt >= f.cfg.Attempts || ctx.Err() != nil {
			return p, err
		}
		d := min(max(RetryAfterOf(err), backoff.Next()), f.cfg.MaxBackoff)
		f.log.Debug().Str("pkg", name).Err(err).Dur("retry_in", d).Msg("packument fetch failed; retrying")
		_ = retry.Wait(ctx, d) // the loop checks ctx
	}
}

func (f *Follower) fail(name string, err error) {
	f.log.Warn().Str("pkg", name).Err(err).Msg("could not mirror package; skipped")
	f.set(func(cp *checkpoint) {
		cp.Failed++
		cp.LastFailures = append(cp.LastFailures, Failure{Package: name, Error: err.Error(), Time: time.Now().UTC()})
		if len(cp.LastFailures) > keptFailures {
			cp.LastFailures = cp.LastFailures[len(cp.LastFailures)-keptFailures:]
		}
	})
}

func (f *Follower) set(fn func(*checkpoint)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(&f.cp)
}

func (f *Follower) snapshot() checkpoint {
	f.mu.Lock()
	defer f.mu.Unlock()
	cp := f.cp
	cp.LastFailures = append([]Failure(nil), f.cp.LastFailures...)
	return cp
}

// save writes the checkpoint; a conflict (another holder wrote after a
// lease change) re-reads the revision and writes ours.
func (f *Follower) save(ctx context.Context, rev string) string {
	cp := f.snapshot()
	cp.Updated = time.Now().UTC()
	for range 3 {
		newRev, err := f.system.Put(ctx, checkpointID, rev, cp)
		if err == nil {
			return newRev
		}
		if !registry.IsKind(err, registry.KindConflict) {
			f.log.Warn().Err(err).Msg("cannot save the follower checkpoint")
			return rev
		}
		var cur checkpoint
		rev, _ = f.system.Get(ctx, checkpointID, &cur)
	}
	return rev
}

// seqString turns an opaque sequence (a JSON number or string) into the
// text sent back as since.
func seqString(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	t := strings.TrimSpace(string(raw))
	if t == "null" {
		return ""
	}
	return t
}

// seqNumber reads the numeric part of a sequence ("123" or CouchDB 2+'s
// "123-g1AAAA…"); ok is false for anything else.
func seqNumber(s string) (int64, bool) {
	head, _, _ := strings.Cut(s, "-")
	n, err := strconv.ParseInt(head, 10, 64)
	return n, err == nil
}
