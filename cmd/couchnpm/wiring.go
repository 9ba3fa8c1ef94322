package main

import (
	"context"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/couchnpm/couchnpm/couch"
	"github.com/couchnpm/couchnpm/designdoc"
	"github.com/couchnpm/couchnpm/handlers"
	"github.com/couchnpm/couchnpm/registry"
	"github.com/couchnpm/couchnpm/replication"
)

// followerLeaseTTL bounds how long a dead follower blocks a takeover: the
// lease is renewed every third of it, so another instance takes over within
// TTL plus one renewal period (20 s).
const followerLeaseTTL = 15 * time.Second

// followerLeaseID is the follower lease's document in the system database.
const followerLeaseID = "lease:follower"

// newRegistry builds the registry in one step from everything it reads and
// writes through: the private packages, the accounts and views of the
// command surface, orgs, the signing key, the conflict store, the tarball
// cache (tarcache.go) and, when mirroring, the upstream mirror with the
// operators' claims.
func newRegistry(cfg *config, db *couch.Client, sig *signing, m *upstreamMirror, conflicts registry.ConflictObserver, log zerolog.Logger) (*registry.Service, error) {
	rc := registry.Config{
		Store:     cfg.Fastpath.store(db, couch.RolePackages),
		Users:     db.Users(),
		Index:     db.Packuments(couch.RolePackages),
		Orgs:      db.Docs(couch.RoleSystem), // orgs and teams; the scope rule
		OrgLeaves: db.Docs(couch.RoleSystem), // their conflicting revisions, merged
		Policy:    cfg.Commands.policy,
		Conflicts: db.Packuments(couch.RolePackages),
		Observer:  conflicts,
		Signer:    sig.keyring,
		Tarballs:  cfg.Fastpath.Tarballs.build(cfg.Fastpath.metrics, log),
	}
	if m != nil { // a nil *replication.Mirror must not become a non-nil interface
		rc.Mirror = m.mirror
		rc.Attestations = m.mirror
		// The takeover guard asks the mirror, and honours operators' claims.
		rc.Claims = registry.NewClaims(db.Docs(couch.RoleSystem))
	}
	return registry.NewService(rc)
}

// upstreamMirror is the upstream mirror between its construction (before
// the registry, which resolves names through it) and its start (after: the
// follower asks the registry which names are private).
type upstreamMirror struct {
	mirror *replication.Mirror
	up     *replication.Upstream
	stats  *replication.Stats
	log    zerolog.Logger
}

// newMirror builds the upstream mirror; nil when mirroring is off. It signs
// the verified unsigned versions it mirrors with sig's key.
func newMirror(cfg *config, db *couch.Client, sig *signing, log zerolog.Logger) (*upstreamMirror, error) {
	mc := cfg.Mirror
	if mc.Mode == replication.ModeOff {
		return nil, nil
	}
	log = log.With().Str("component", "mirror").Logger()
	up, err := replication.NewUpstream(replication.UpstreamConfig{
		Registry: mc.Upstream, Changes: mc.Changes, Headers: mc.parsedHeaders,
		User: mc.UpstreamUser, Password: mc.UpstreamPass, Token: mc.UpstreamToken, Timeout: mc.Timeout,
		TarballTimeout: mc.TarballTimeout, MaxConcurrent: mc.MaxConcurrent, MaxPackumentBytes: mc.MaxPackumentBytes,
	})
	if err != nil {
		return nil, err
	}
	stats := &replication.Stats{}
	filter := replication.NewFilter(mc.allowList, mc.privateScopes)
	mirror, err := replication.NewMirror(replication.MirrorConfig{Mode: mc.Mode, MaxAge: mc.MaxAge, NameCheckTimeout: mc.NameCheckTimeout,
		Store: cfg.Fastpath.store(db, couch.RoleMirror), Tarballs: db.Docs(couch.RoleTarballs), Upstream: up,
		Filter: filter, Stats: stats, Log: log, Signer: sig.keyring})
	if err != nil {
		return nil, err
	}
	return &upstreamMirror{mirror: mirror, up: up, stats: stats, log: log}, nil
}

// startMirror starts the mirror's background work (the follower under a
// lease, or the _replicator document keeper, and the upstream's keys) and
// closes the mirror when ctx ends; nil status when mirroring is off.
func startMirror(ctx context.Context, cfg *config, db *couch.Client, m *upstreamMirror, reg *registry.Service, sig *signing, bg *sync.WaitGroup) (handlers.MirrorStatus, error) {
	if m == nil {
		return nil, nil
	}
	mc, up, log := cfg.Mirror, m.up, m.log
	m.mirror.WithPrefetch(reg) // dependencies of pulled packuments fetched ahead (never private names)
	bg.Go(func() {             // the mirror's clean-ups end with the other background work
		<-ctx.Done()
		// Pulled packuments still on their way into CouchDB are written
		// before exit.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_ = m.mirror.Drain(dctx)
		m.mirror.Close()
	})
	system := db.Docs(couch.RoleSystem)
	sig.mirror(ctx, up, system, bg, log) // signing.go

	lease := replication.NewLease(system, followerLeaseID, cfg.InstanceID, followerLeaseTTL, log)
	reporter := &replication.Reporter{Mode: mc.Mode, Upstream: up.Base(), Instance: cfg.InstanceID,
		System: system, Lease: lease, Stats: m.stats, Replication: db, ReplID: mirrorReplicationID(db)}
	log.Info().Str("mode", string(mc.Mode)).Str("upstream", up.Base()).Msg("mirror enabled")

	switch mc.Mode {
	case replication.ModeFollow:
		follower := replication.NewFollower(replication.FollowerConfig{PageSize: mc.PageSize, PollInterval: mc.PollInterval},
			up, m.mirror, db.Packuments(couch.RoleMirror), reg, db.Packuments(couch.RolePackages), system, log)
		bg.Add(1)
		go func() {
			defer bg.Done()
			lease.Run(ctx, func(ctx context.Context) { follower.Run(ctx, cfg.InstanceID) })
		}()
	case replication.ModeReplicate:
		target, err := db.DBURL(mc.ReplTarget, couch.RoleMirror)
		if err != nil {
			return nil, err
		}
		r := couch.Replication{ID: reporter.ReplID, Source: mc.UpstreamCouch, Target: target}
		bg.Add(1)
		go func() {
			defer bg.Done()
			replication.KeepReplicating(ctx, db, r, couch.RoleMirror, designdoc.ID, time.Minute, 2*time.Second, log)
		}()
	}
	return reporter, nil
}
