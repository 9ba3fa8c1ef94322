package main

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/couchnpm/couchnpm/couch"
	"github.com/couchnpm/couchnpm/internal/retry"
	"github.com/couchnpm/couchnpm/registry"
)

// conflictLog hears about every conflict the registry merges and every
// write CouchDB accepted without a quorum: it logs them, counts them for
// the metrics and keeps the latest for GET /-/conflicts/status.
type conflictLog struct {
	log         zerolog.Logger
	resolved    atomic.Int64 // documents whose conflicts were merged
	dropped     atomic.Int64 // versions published twice with different content
	unconfirmed atomic.Int64 // 202s not seen on a quorum within the bound
	mu          sync.Mutex
	recent      []conflictReport // the latest dropped versions, newest last
}

// conflictReport is one dropped version, as /-/conflicts/status shows it.
type conflictReport struct {
	Package string                   `json:"package"`
	At      time.Time                `json:"at"`
	Report  registry.VersionConflict `json:"report"`
}

const recentConflicts = 50

func (c *conflictLog) ConflictResolved(name string, leaves int, dropped []registry.VersionConflict) {
	c.resolved.Add(1)
	c.log.Info().Str("pkg", name).Int("leaves", leaves).Int("dropped_versions", len(dropped)).Msg("merged conflicting revisions")
	for _, d := range dropped {
		c.dropped.Add(1)
		c.log.Warn().Str("pkg", name).Str("version", d.Version).Str("kept", d.Kept).Str("dropped", d.Dropped).
			Str("dropped_rev", d.DroppedRev).Str("dropped_publisher", d.Publisher).Str("kept_aside_as", d.Attachment).
			Msg("the same version was published with different content on two sides; the earliest publish was kept")
		c.mu.Lock()
		c.recent = append(c.recent, conflictReport{Package: name, At: time.Now().UTC(), Report: d})
		if len(c.recent) > recentConflicts {
			c.recent = c.recent[len(c.recent)-recentConflicts:]
		}
		c.mu.Unlock()
	}
}

func (c *conflictLog) WriteUnconfirmed(name string) {
	c.unconfirmed.Add(1)
	c.log.Warn().Str("pkg", name).Msg("CouchDB accepted a write without a quorum (202) and it was not seen on a quorum in time; the conflict resolver merges it once the node that holds it syncs")
}

func (c *conflictLog) OrgMerged(org string, leaves int, notes []string) {
	c.log.Info().Str("org", org).Int("leaves", leaves).Msg("merged conflicting revisions of an org")
	for _, n := range notes {
		c.log.Warn().Str("org", org).Msg(n)
	}
}

// conflictStatus is the body of GET /-/conflicts/status.
type conflictStatus struct {
	Resolved          int64            `json:"resolved"`
	DroppedVersions   int64            `json:"dropped_versions"`
	UnconfirmedWrites int64            `json:"unconfirmed_writes"`
	OpenCount         int              `json:"open_count"`     // documents with conflicts right now (up to 100)
	Open              []string         `json:"open,omitempty"` // their names (admins only)
	Recent            []conflictReport `json:"recent,omitempty"`
}

// conflictWatch keeps the private and mirror databases free of conflicting
// revisions: on every instance, from the changes feed (style=all_docs), and
// once at start from the conflicts view.
type conflictWatch struct {
	reg     *registry.Service
	private *couch.Packuments
	mirror  *couch.Packuments
	log     *conflictLog
}

// Status reports the counters and the documents with open conflicts; the
// names only to admins (a restricted package's name is not for everyone).
func (w *conflictWatch) Status(ctx context.Context, viewer registry.Identity) (any, error) {
	open, err := w.private.Conflicted(ctx, 100)
	if err != nil {
		return nil, err
	}
	st := conflictStatus{
		Resolved: w.log.resolved.Load(), DroppedVersions: w.log.dropped.Load(),
		UnconfirmedWrites: w.log.unconfirmed.Load(), OpenCount: len(open),
	}
	if !viewer.Anonymous() && w.reg.IsAdmin(viewer.Name) {
		w.log.mu.Lock()
		st.Recent = append([]conflictReport(nil), w.log.recent...)
		w.log.mu.Unlock()
		st.Open = append([]string{}, open...)
	}
	return st, nil
}

// Run follows both databases until ctx ends.
func (w *conflictWatch) Run(ctx context.Context, bg *sync.WaitGroup) {
	for _, db := range []struct {
		store   *couch.Packuments
		resolve func(ctx context.Context, id string) error
	}{
		{w.private, func(ctx context.Context, id string) error { _, err := w.reg.ResolveConflicts(ctx, id); return err }},
		{w.mirror, w.resolveMirror},
	} {
		bg.Add(1)
		go func() {
			defer bg.Done()
			w.follow(ctx, db.store, db.resolve)
		}()
	}
}

// follow resolves what the conflicts view lists, then every document the
// feed shows with more than one leaf; it reconnects with a backoff when the
// feed breaks, and sweeps the view again after each reconnection (changes
// made while the feed was down are not replayed: it starts from now).
func (w *conflictWatch) follow(ctx context.Context, db *couch.Packuments, resolve func(context.Context, string) error) {
	l := w.log.log.With().Str("db", db.Name()).Logger()
	one := func(id string) {
		if id == "" || id[0] == '_' {
			return
		}
		rctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		if err := resolve(rctx, id); err != nil && ctx.Err() == nil {
			l.Warn().Str("pkg", id).Err(err).Msg("could not merge conflicting revisions; retried at the next change or sweep")
		}
	}
	backoff := retry.Backoff{First: time.Second, Max: 30 * time.Second}
	for ctx.Err() == nil {
		swept := false
		err := db.FollowConflicts(ctx, 5*time.Second, func(id string) {
			if id == "" {
				if !swept { // the feed is open: sweep what is already there
					swept = true
					ids, err := db.Conflicted(ctx, 1000)
					if err != nil {
						l.Warn().Err(err).Msg("could not list conflicting documents")
					}
					for _, id := range ids {
						one(id)
					}
				}
				backoff.Reset()
				return
			}
			one(id)
		})
		if ctx.Err() != nil {
			return
		}
		delay := backoff.Next()
		l.Warn().Err(err).Dur("retry_in", delay).Msg("conflict feed broke")
		if retry.Wait(ctx, delay) != nil {
			return
		}
	}
}

// resolveMirror keeps one leaf of a mirrored packument: the upstream is
// authoritative, so the leaf with its latest modification wins whole.
func (w *conflictWatch) resolveMirror(ctx context.Context, id string) error {
	leaves, err := w.mirror.Leaves(ctx, id)
	if err != nil || len(leaves) < 2 {
		return err
	}
	keep := registry.MirrorWinner(leaves)
	doc := *keep
	doc.Rev = leaves[0].Rev
	doc.Attachments = nil // skim documents: the tarballs live in their own database
	var losers []string
	for _, l := range leaves[1:] {
		losers = append(losers, l.Rev)
	}
	if err := w.mirror.Resolve(ctx, &doc, keep != leaves[0], losers); err != nil {
		return err
	}
	w.log.ConflictResolved(id, len(leaves), nil)
	return nil
}

// newConflictLog is the report of the conflicts merged on the registry's
// read and write paths and by the background resolver.
func newConflictLog(log zerolog.Logger) *conflictLog {
	return &conflictLog{log: log.With().Str("component", "conflicts").Logger()}
}

// startConflictWatch starts the background resolver on this instance; reg
// merges conflicts on its own paths, reporting to clog (newRegistry).
func startConflictWatch(ctx context.Context, cfg *config, db *couch.Client, reg *registry.Service, clog *conflictLog, bg *sync.WaitGroup) *conflictWatch {
	w := &conflictWatch{reg: reg, private: db.Packuments(couch.RolePackages), mirror: db.Packuments(couch.RoleMirror), log: clog}
	if m := cfg.Fastpath.metrics; m != nil {
		m.WatchConflicts(clog.resolved.Load, clog.dropped.Load, clog.unconfirmed.Load)
	}
	w.Run(ctx, bg)
	return w
}
