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

// startMirror wires the upstream mirror into reg and starts its background
// work (the follower under a lease, or the _replicator document keeper).
func startMirror(ctx context.Context, cfg *config, db *couch.Client, reg *registry.Service, sig *signing, bg *sync.WaitGroup, log zerolog.Logger) (handlers.MirrorStatus, error) {
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
	mirror := replication.NewMirror(replication.MirrorConfig{Mode: mc.Mode, MaxAge: mc.MaxAge, NameCheckTimeout: mc.NameCheckTimeout},
		cfg.Fastpath.store(db, couch.RoleMirror), db.Docs(couch.RoleTarballs), up, filter, stats, log).WithPrefetch(reg)
	bg.Add(1)
	go func() { // pulled packuments still on their way into CouchDB are written before exit
		defer bg.Done()
		<-ctx.Done()
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_ = mirror.Drain(dctx)
	}()
	system := db.Docs(couch.RoleSystem)
	// The takeover guard asks the mirror, and honours operators' claims.
	reg.WithMirror(mirror).WithClaims(registry.NewClaims(system))
	sig.mirror(ctx, mirror, up, system, bg, log) // signing.go

	lease := replication.NewLease(system, "lease:follower", cfg.InstanceID, followerLeaseTTL, log)
	reporter := &replication.Reporter{Mode: mc.Mode, Upstream: up.Base(), Instance: cfg.InstanceID,
		System: system, Lease: lease, Stats: stats, Replication: db, ReplID: "couchnpm-" + db.DBName(couch.RoleMirror)}
	log.Info().Str("mode", string(mc.Mode)).Str("upstream", up.Base()).Msg("mirror enabled")

	switch mc.Mode {
	case replication.ModeFollow:
		follower := replication.NewFollower(replication.FollowerConfig{PageSize: mc.PageSize, PollInterval: mc.PollInterval},
			up, mirror, db.Packuments(couch.RoleMirror), reg, db.Packuments(couch.RolePackages), system, log)
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
