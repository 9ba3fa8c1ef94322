//go:build integration

package integration

import (
	"encoding/json"
	"fmt"
	"net/url"
	"testing"
	"time"
)

// The follower writes in _bulk_docs batches and skips what it has: after a
// restart from an empty checkpoint, the whole feed is read again without
// one upstream packument request, and the real npm installs what it
// mirrored.
func TestMirrorFollowBatchedSkipsUnchanged(t *testing.T) {
	const n = 150
	up := newFakeUpstream(t)
	for i := range n {
		up.publish(fmt.Sprintf("batch-%03d", i), "1.0.0", nil)
	}
	up.publish("batch-root", "1.0.0", map[string]string{"batch-007": "^1.0.0"})
	up.remove("batch-149")
	args := mirrorArgs(up, "follow", "--follow-page-size", "60")
	r := startRegistry(t, registryOpts{ExtraArgs: args})
	eventually(t, 2*time.Minute, "catch-up", func() (bool, string) {
		st := mirrorStatus(t, r)
		return st["state"] == "following" && num(st["follower_written"]) >= n, fmt.Sprint(st["follower_written"], " ", st["failures"])
	})
	if st := mirrorStatus(t, r); num(st["failures"]) != 0 {
		t.Fatalf("follower failures: %v", st["last_failures"])
	}
	if v, status := latestOf(r, "batch-149"); status != 404 {
		t.Fatalf("a package deleted upstream: latest %q, status %d, want 404", v, status)
	}
	u := newNPMUser(t, r, "batch-consumer")
	project := writeProject(t, map[string]string{"batch-root": "^1.0.0"})
	u.mustRunIn(project, "install")
	mustRequire(t, project, "batch-007", "1.0.0", "upstream")

	before := 0
	for i := range n {
		before += up.hitCount(pkgPath(fmt.Sprintf("batch-%03d", i)))
	}
	r.stop()
	var cp struct {
		Rev string `json:"_rev"`
	}
	_ = json.Unmarshal(mustCouch(t, "GET", "/"+r.Prefix+"-system/follower:checkpoint", nil, 200), &cp)
	mustCouch(t, "DELETE", "/"+r.Prefix+"-system/follower:checkpoint?rev="+url.QueryEscape(cp.Rev), nil, 200)

	r2 := startRegistry(t, registryOpts{ExtraArgs: args, Prefix: r.Prefix})
	var unchanged float64
	eventually(t, 2*time.Minute, "re-read of the feed", func() (bool, string) {
		st := mirrorStatus(t, r2)
		var c struct {
			Unchanged float64 `json:"packuments_unchanged"`
		}
		if _, body, err := couchDo("GET", "/"+r.Prefix+"-system/follower:checkpoint", nil, true); err == nil {
			_ = json.Unmarshal(body, &c) // 404 until the new follower first saves it
		}
		unchanged = c.Unchanged
		return st["state"] == "following" && unchanged >= n-1, fmt.Sprint(st["state"], " unchanged ", unchanged)
	})
	after := 0
	for i := range n {
		after += up.hitCount(pkgPath(fmt.Sprintf("batch-%03d", i)))
	}
	if after != before {
		t.Fatalf("the re-read asked the upstream for %d packuments it had stored unchanged", after-before)
	}
}

// A cold install through the mirror is answered before CouchDB has the
// packuments; they land in the background. The dependencies of a pulled
// packument's latest version are prefetched even when npm never asks for
// them (it installs an older version here), each fetched from the
// upstream once; a private scope among them is never asked for upstream.
func TestMirrorColdInstallPrefetch(t *testing.T) {
	up := newFakeUpstream(t)
	up.publish("pf-deeper", "1.0.0", nil)
	up.publish("pf-dep", "1.0.0", map[string]string{"pf-deeper": "^1.0.0"})
	up.publish("@corp/pf-secret", "1.0.0", nil)
	up.publish("pf-app", "1.0.0", nil)
	up.publish("pf-app", "2.0.0", map[string]string{"pf-dep": "^1.0.0", "@corp/pf-secret": "^1.0.0"})
	r := startRegistry(t, registryOpts{ExtraArgs: mirrorArgs(up, "on-demand", "--private-scopes", "@corp")})
	u := newNPMUser(t, r, "prefetch-consumer")
	project := writeProject(t, map[string]string{"pf-app": "1.0.0"})
	u.mustRunIn(project, "install")
	mustRequire(t, project, "pf-app", "1.0.0", "upstream")

	for _, name := range []string{"pf-app", "pf-dep", "pf-deeper"} {
		eventually(t, 30*time.Second, name+" stored in the mirror database", func() (bool, string) {
			st, body, err := couchDo("GET", "/"+r.Prefix+"-mirror/"+url.PathEscape(name), nil, true)
			return err == nil && st == 200, fmt.Sprint(st, " ", string(body))
		})
		if hits := up.hitCount(pkgPath(name)); hits != 1 {
			t.Errorf("%s: the upstream served its packument %d times, want 1", name, hits)
		}
	}
	if hits := up.hitCount(pkgPath("@corp/pf-secret")); hits != 0 {
		t.Fatalf("a private-scope dependency was asked for upstream %d times", hits)
	}
	st := mirrorStatus(t, r)
	pt, _ := st["pull_through"].(map[string]any)
	if num(pt["prefetched"]) < 2 || num(pt["writes_failed"]) != 0 {
		t.Fatalf("pull_through counters: %v; want at least 2 prefetched, no failed write", pt)
	}
	eventually(t, 10*time.Second, "no write pending", func() (bool, string) {
		pt, _ := mirrorStatus(t, r)["pull_through"].(map[string]any)
		return num(pt["writes_pending"]) == 0, fmt.Sprint(pt)
	})
	// A second install from a cold npm cache is served from CouchDB.
	u2 := newNPMUser(t, r, "prefetch-consumer-2")
	project2 := writeProject(t, map[string]string{"pf-app": "2.0.0"})
	res := u2.runIn(project2, "install")
	// @corp/pf-secret is private and not published here: the install of
	// 2.0.0 fails on it, and must not have reached the upstream for it.
	if hits := up.hitCount(pkgPath("@corp/pf-secret")); hits != 0 {
		t.Fatalf("npm's request for a private-scope name reached the upstream (%d times); install: %v", hits, res.Err)
	}
	if hits := up.hitCount(pkgPath("pf-dep")); hits != 1 {
		t.Fatalf("pf-dep fetched %d times from the upstream, want 1", hits)
	}
}
