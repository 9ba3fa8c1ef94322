//go:build integration

package integration

import (
	"bufio"
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/couchnpm/couchnpm/couch"
)

// onCouchDB reports whether the suite's server is Apache CouchDB (GET /
// says "couchdb"), not PouchDB Server ("express-pouchdb").
func onCouchDB(t *testing.T) bool {
	t.Helper()
	st, body, err := couchDo("GET", "/", nil, false)
	var v map[string]any
	if err != nil || st != 200 || json.Unmarshal(body, &v) != nil {
		t.Fatalf("GET / on the suite's CouchDB: %d %s %v", st, body, err)
	}
	_, ok := v["couchdb"]
	return ok
}

// workaroundCounts reads couchnpm_pouchdb_workarounds_total from an
// instance's metrics, by path.
func workaroundCounts(t *testing.T, reg *registry) map[string]int {
	t.Helper()
	h := reg.do("GET", "/-/metrics", "", nil)
	if h.Status != 200 {
		t.Fatalf("GET /-/metrics: %s", h)
	}
	out := map[string]int{}
	sc := bufio.NewScanner(bytes.NewReader(h.Body))
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, `couchnpm_pouchdb_workarounds_total{path="`)
		if !ok {
			continue
		}
		path, val, _ := strings.Cut(rest, `"} `)
		n, _ := strconv.ParseFloat(val, 64)
		out[path] = int(n)
	}
	return out
}

// checkServerPaths: on Apache CouchDB no path that exists only for PouchDB
// Server ran; on PouchDB Server each of want did (so the count works).
func checkServerPaths(t *testing.T, reg *registry, want ...string) {
	t.Helper()
	counts := workaroundCounts(t, reg)
	if onCouchDB(t) {
		for path, n := range counts {
			if n > 0 {
				t.Errorf("on Apache CouchDB the PouchDB-only path %s ran %d times", path, n)
			}
		}
		return
	}
	for _, path := range want {
		if counts[path] == 0 {
			t.Errorf("on PouchDB Server the path %s never ran (counts %v): is the count wired?", path, counts)
		}
	}
}

// Promise: every code path that exists only for PouchDB Server stays
// unused on Apache CouchDB 3 — health check, revision checks, stale writes —
// while PouchDB Server takes them (docs/couchdb.md lists them).
func TestCouchDBTakesNoPouchDBPath(t *testing.T) {
	t.Parallel()
	r := startRegistry(t, registryOpts{})
	_, tok := rawAddUser(t, r, "paths")
	const pkg = "pathspkg"
	if h := r.do("PUT", "/"+pkg, tok, publishBodyWith(r, pkg, "1.0.0", markedTarball(t, pkg, "1.0.0", "a"))); !is2xx(h.Status) {
		t.Fatalf("publish: %s", h)
	}
	// A read for a write checks the cached revision with CouchDB.
	r.do("GET", "/"+pkg, tok, nil)
	h := r.do("GET", "/"+pkg+"?write=true", tok, nil)
	var doc map[string]any
	if h.Status != 200 || json.Unmarshal(h.Body, &doc) != nil {
		t.Fatalf("GET ?write=true: %s", h)
	}
	// A second version moves the revision on; the document read before is
	// now stale, and writing it back must be a conflict on either server.
	if h := r.do("PUT", "/"+pkg, tok, publishBodyWith(r, pkg, "1.1.0", markedTarball(t, pkg, "1.1.0", "b"))); !is2xx(h.Status) {
		t.Fatalf("publish 1.1.0: %s", h)
	}
	delete(doc["versions"].(map[string]any), "1.0.0") // an unpublish from an old revision
	if h := r.do("PUT", "/"+pkg+"/-rev/"+doc["_rev"].(string), tok, mustJSON(doc)); h.Status != 409 {
		t.Fatalf("a write from a stale revision: %s, want 409", h)
	}
	checkServerPaths(t, r, couch.WorkaroundNoUp)
}

// Names for files where "couch" is a variable.
const (
	pathNoScheduler      = couch.WorkaroundNoScheduler
	pathNoSchedulerState = couch.WorkaroundNoSchedulerState
)
