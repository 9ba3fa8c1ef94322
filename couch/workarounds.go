package couch

import (
	"maps"
	"sync"
)

// Paths taken only for PouchDB Server, the stand-in a fresh machine
// installs. Each branch that exists only for it counts itself here, so the
// metrics show which ones ran and the integration suite proves that none
// runs on Apache CouchDB 3 (TestCouchDBTakesNoPouchDBPath).
const (
	WorkaroundNoUp             = "no_up_endpoint"       // Ping: no /_up, GET / instead
	WorkaroundETagNotRev       = "etag_not_revision"    // PackumentRev: the ETag is no revision, one _all_docs row instead
	WorkaroundStaleWrite403    = "stale_write_403"      // PutPackument: a stale write refused by validate_doc_update is a conflict
	WorkaroundNoScheduler      = "no_scheduler"         // no /_scheduler: replications without a selector
	WorkaroundNoSchedulerState = "no_scheduler_state"   // replication state read from the _replicator document
	WorkaroundNoNodeConfig     = "no_node_config"       // no /_node/_local/_config: the size limits not checked (serve, couchnpm doctor)
	WorkaroundDesignDocSweep   = "foreign_ddoc_removed" // an upstream design document slipped through (no selector)
	WorkaroundExistsForbidden  = "exists_forbidden"     // AppendEntries: an audit entry written already is refused by validate_doc_update, not as a conflict
)

type workarounds struct {
	mu sync.Mutex
	n  map[string]int64
}

func (w *workarounds) add(name string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.n == nil {
		w.n = map[string]int64{}
	}
	w.n[name]++
}

// Workarounds reports how often each PouchDB-only path was taken.
func (c *Client) Workarounds() map[string]int64 {
	c.wa.mu.Lock()
	defer c.wa.mu.Unlock()
	return maps.Clone(c.wa.n)
}
