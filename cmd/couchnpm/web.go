package main

import (
	"github.com/couchnpm/couchnpm/couch"
	"github.com/couchnpm/couchnpm/handlers"
	"github.com/couchnpm/couchnpm/registry"
	"github.com/couchnpm/couchnpm/web"
)

// wireWeb adds the web UI: pages for browsers at / and /<name>, and under
// /-/web/. It reads through reg, so the API's access rules apply.
func wireWeb(cfg *config, db *couch.Client, reg *registry.Service, mirror handlers.MirrorStatus, hc *handlers.Config) {
	wc := web.Config{PublicURL: cfg.PublicURL, Recent: db.Packuments(couch.RolePackages)}
	if mirror != nil {
		wc.Mirror = mirror
	}
	hc.Pages = web.New(wc, reg)
}
