package main

import (
	"context"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/couchnpm/couchnpm/couch"
	"github.com/couchnpm/couchnpm/downloads"
	"github.com/couchnpm/couchnpm/handlers"
	"github.com/couchnpm/couchnpm/registry"
	"github.com/couchnpm/couchnpm/web"
)

// downloadsFlushInterval bounds the download counts a crash loses: they
// reach CouchDB this often (and at a clean shutdown).
const downloadsFlushInterval = 10 * time.Second

// wireWeb adds the web UI (pages for browsers at / and /<name>, and under
// /-/web/; they read through reg, so the API's access rules apply) and the
// download counter, whose flush loop runs until ctx ends.
func wireWeb(ctx context.Context, cfg *config, db *couch.Client, reg *registry.Service, mirror handlers.MirrorStatus,
	hc *handlers.Config, bg *sync.WaitGroup, log zerolog.Logger) {
	// Who sees the admin-only details of the status endpoints and page.
	hc.IsAdmin = reg.IsAdmin
	wc := web.Config{PublicURL: cfg.PublicURL, Recent: db.Packuments(couch.RolePackages)}
	if mirror != nil {
		wc.Mirror = mirror
	}
	wc.Counts, wc.IsAdmin = siteCounts{db}, reg.IsAdmin
	wc.Dependents, wc.Tarballs = db.Packuments(couch.RolePackages), db.Docs(couch.RoleTarballs)
	if hc.Peers != nil {
		wc.Peers = hc.Peers
	}
	if hc.Conflicts != nil {
		wc.Conflicts = hc.Conflicts
	}
	counter := downloads.NewCounter(db.Docs(couch.RoleSystem), cfg.InstanceID, log.With().Str("component", "downloads").Logger())
	hc.Downloads = counter
	wc.Downloads = counter
	hc.Pages = web.New(wc, reg)
	bg.Add(1)
	go func() {
		defer bg.Done()
		counter.Run(ctx, downloadsFlushInterval)
	}()
}

// siteCounts reads the home and status pages' counts: two views'
// total_rows and the tarball cache's database info (the pages keep the
// answer for a few seconds).
type siteCounts struct{ db *couch.Client }

func (c siteCounts) Counts(ctx context.Context) (web.SiteCounts, error) {
	var out web.SiteCounts
	var err error
	if out.Private, err = c.db.Packuments(couch.RolePackages).LiveCount(ctx); err != nil {
		return out, err
	}
	if out.Mirrored, err = c.db.Packuments(couch.RoleMirror).LiveCount(ctx); err != nil {
		return out, err
	}
	out.CachedTarballs, out.CacheBytes, err = c.db.DBSize(ctx, couch.RoleTarballs)
	return out, err
}
