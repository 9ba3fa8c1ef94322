//go:build integration

package integration

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// mirrorArgs configures a registry to mirror up in mode.
func mirrorArgs(up *fakeUpstream, mode string, extra ...string) []string {
	args := []string{"--mirror", mode, "--upstream", up.URL(), "--upstream-changes", up.ChangesURL(),
		"--follow-poll", "500ms", "--upstream-timeout", "5s"}
	return append(args, extra...)
}

// mirrorStatus reads GET /-/mirror/status as anyone may see it.
func mirrorStatus(t *testing.T, r *registry) map[string]any {
	t.Helper()
	return mirrorStatusAs(t, r, "")
}

// mirrorStatusAs reads GET /-/mirror/status with token ("": anonymous);
// an admin's token shows the admin-only details (upstream, instance
// names, error texts).
func mirrorStatusAs(t *testing.T, r *registry, token string) map[string]any {
	t.Helper()
	res := r.do("GET", "/-/mirror/status", token, nil)
	if res.Status != 200 {
		t.Fatalf("mirror status: %s", res)
	}
	var st map[string]any
	if err := json.Unmarshal(res.Body, &st); err != nil {
		t.Fatalf("mirror status: %v: %s", err, res.Body)
	}
	return st
}

// eventually polls cond every 200ms until it holds or limit passes.
func eventually(t *testing.T, limit time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(limit)
	last := ""
	for {
		ok, detail := cond()
		if ok {
			return
		}
		last = detail
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true within %s (last: %s)", what, limit, last)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// latestOf reads a package's latest dist-tag through the registry.
func latestOf(r *registry, name string) (string, int) {
	res, err := r.tryDo("GET", "/"+strings.Replace(name, "/", "%2f", 1), "", nil, 10*time.Second)
	if err != nil || res.Status != 200 {
		return "", res.Status
	}
	var p struct {
		DistTags map[string]string `json:"dist-tags"`
	}
	_ = json.Unmarshal(res.Body, &p)
	return p.DistTags["latest"], res.Status
}

func num(v any) float64 {
	f, _ := v.(float64)
	return f
}

func TestMirrorFollow(t *testing.T) {
	up := newFakeUpstream(t)
	for i := range 5 {
		up.publish(fmt.Sprintf("follow-%d", i), "1.0.0", nil)
	}
	up.publish("follow-bad", "1.0.0", nil)
	up.setFail("follow-bad", 500)
	up.publish("@up/scoped", "2.0.0", nil)
	prefix := newPrefix()
	r := startRegistry(t, registryOpts{Prefix: prefix, ExtraArgs: mirrorArgs(up, "follow")})

	// Catch-up: every package but the failing one is written, and the
	// failure is reported without stopping the follower.
	eventually(t, 30*time.Second, "catch-up", func() (bool, string) {
		st := mirrorStatus(t, r)
		return st["state"] == "following" && num(st["packuments_written"]) >= 6 && num(st["failures"]) >= 1, fmt.Sprint(st)
	})
	st := mirrorStatus(t, r)
	// The same status for people, from the command line.
	out, err := exec.Command(suite.bin, "mirror", "status", "--url", r.URL).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "state:         following") || !strings.Contains(string(out), "follow-bad") ||
		!strings.Contains(string(out), "checkpoint 7 of 7, behind by 0 changes") {
		t.Fatalf("couchnpm mirror status: %v\n%s", err, out)
	}
	if !strings.Contains(fmt.Sprint(st["last_failures"]), "follow-bad") {
		t.Fatalf("status does not name the failing package: %v", st)
	}
	if st["checkpoint"] != "7" || st["upstream_seq"] != "7" || num(st["lag_changes"]) != 0 {
		t.Fatalf("checkpoint/lag: %v", st)
	}
	if hits := up.hitCount("/follow-1"); hits != 1 {
		t.Fatalf("follow-1 fetched %d times from upstream during catch-up, want 1", hits)
	}

	// A new upstream version is visible locally within 10 s.
	up.publish("follow-1", "1.1.0", nil)
	start := time.Now()
	eventually(t, 10*time.Second, "new version visible", func() (bool, string) {
		v, status := latestOf(r, "follow-1")
		return v == "1.1.0", fmt.Sprintf("latest %q, status %d", v, status)
	})
	t.Logf("new upstream version visible after %s", time.Since(start).Round(time.Millisecond))

	// An upstream deletion removes the local copy.
	up.remove("follow-2")
	eventually(t, 10*time.Second, "deletion mirrored", func() (bool, string) {
		_, status := latestOf(r, "follow-2")
		return status == 404, fmt.Sprintf("status %d", status)
	})

	// A restart resumes from the checkpoint instead of re-reading the feed.
	r.stop()
	before := len(up.sinces())
	up.publish("follow-3", "1.2.0", nil)
	r2 := startRegistry(t, registryOpts{Prefix: prefix, ExtraArgs: mirrorArgs(up, "follow")})
	eventually(t, 10*time.Second, "resume after restart", func() (bool, string) {
		v, status := latestOf(r2, "follow-3")
		return v == "1.2.0", fmt.Sprintf("latest %q, status %d", v, status)
	})
	sinces := up.sinces()[before:]
	if len(sinces) == 0 || sinces[0] == "" || sinces[0] == "0" {
		t.Fatalf("after a restart the follower asked for since=%q first; want the saved checkpoint (all: %v)", sinces[0], sinces)
	}
}

func TestMirrorInstallThroughNpmAndOffline(t *testing.T) {
	up := newFakeUpstream(t)
	up.publish("mir-leaf", "1.0.0", nil)
	up.publish("mir-root", "1.0.0", map[string]string{"mir-leaf": "^1.0.0"})
	r := startRegistry(t, registryOpts{ExtraArgs: mirrorArgs(up, "on-demand")})
	u := newNPMUser(t, r, "mirror-consumer")

	project := writeProject(t, map[string]string{"mir-root": "^1.0.0"})
	u.mustRunIn(project, "install")
	mustRequire(t, project, "mir-root", "1.0.0", "upstream")
	mustRequire(t, project, "mir-leaf", "1.0.0", "upstream")
	lock, err := os.ReadFile(filepath.Join(project, "package-lock.json"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(lock), up.URL()) {
		t.Fatalf("the lockfile points at the upstream, not at couchnpm:\n%s", lock)
	}
	if hits := up.hitCount("/mir-leaf/-/mir-leaf-1.0.0.tgz"); hits != 1 {
		t.Fatalf("upstream served the tarball %d times, want 1", hits)
	}

	// With the upstream down, everything already mirrored still installs,
	// from a cold npm cache.
	up.setDown(true)
	u2 := newNPMUser(t, r, "offline-consumer")
	project2 := writeProject(t, map[string]string{"mir-root": "^1.0.0"})
	u2.mustRunIn(project2, "install")
	mustRequire(t, project2, "mir-leaf", "1.0.0", "upstream")
	st := mirrorStatus(t, r)
	cache := st["tarball_cache"].(map[string]any)
	if num(cache["hits"]) < 2 {
		t.Fatalf("tarball cache hits = %v, want ≥ 2 after the second install: %v", cache["hits"], st)
	}

	// An uncached miss with the upstream down is a 503, never a 404.
	res := r.do("GET", "/never-seen", "", nil)
	if res.Status != 503 {
		t.Fatalf("packument of an unknown package with the upstream down: %s, want 503", res)
	}
}

func TestMirrorTarballIntegrity(t *testing.T) {
	up := newFakeUpstream(t)
	up.publish("mir-tampered", "1.0.0", nil)
	up.setTamper("mir-tampered", "1.0.0")
	up.publish("mir-uncached", "1.0.0", nil)
	r := startRegistry(t, registryOpts{ExtraArgs: mirrorArgs(up, "on-demand")})

	u := newNPMUser(t, r, "tamper-consumer")
	project := writeProject(t, map[string]string{"mir-tampered": "1.0.0"})
	res := u.runIn(project, "install")
	if res.Err == nil {
		t.Fatalf("npm install of a tampered tarball succeeded:\n%s", res)
	}
	for range 2 { // nothing was cached: each request is refused again
		// A GET that starts the download streams it and is cut short
		// when the bytes fail verification: never a complete 200.
		got, err := r.tryDo("GET", "/mir-tampered/-/mir-tampered-1.0.0.tgz", "", nil, 30*time.Second)
		if err == nil && got.Status == 200 {
			t.Fatalf("tampered tarball: a complete 200 of %d bytes", len(got.Body))
		}
		// A request that waits for the download (here a HEAD) gets 502.
		if head := r.do("HEAD", "/mir-tampered/-/mir-tampered-1.0.0.tgz", "", nil); head.Status != 502 {
			t.Fatalf("tampered tarball: HEAD %s, want 502", head)
		}
	}
	st := mirrorStatus(t, r)
	if num(st["tarball_cache"].(map[string]any)["integrity_failures"]) < 1 {
		t.Fatalf("status reports no integrity failure: %v", st)
	}
	if _, err := os.Stat(filepath.Join(project, "node_modules", "mir-tampered")); err == nil {
		t.Fatal("the tampered package was installed")
	}

	// Packument mirrored, tarball not cached, upstream down → 503.
	if v, st := latestOf(r, "mir-uncached"); v != "1.0.0" {
		t.Fatalf("mir-uncached: latest %q, status %d", v, st)
	}
	up.setDown(true)
	got := r.do("GET", "/mir-uncached/-/mir-uncached-1.0.0.tgz", "", nil)
	if got.Status != 503 {
		t.Fatalf("uncached tarball with the upstream down: %s, want 503", got)
	}
}

func TestMirrorPrivateNamesShadowUpstream(t *testing.T) {
	up := newFakeUpstream(t)
	up.publish("shadowed-pkg", "9.0.0", nil)
	up.publish("@corp/internal", "9.0.0", nil)
	r := startRegistry(t, registryOpts{ExtraArgs: mirrorArgs(up, "follow", "--private-scopes", "@corp")})
	u := newNPMUser(t, r, "owner")
	u.mustLogin(r.user("owner"), "pass-shadow-1", "owner@example.com")
	dir := writePackage(t, "shadowed-pkg", "0.0.1", "private")
	// The upstream has the name: only an operator's claim lets it be
	// published here (takeover_test.go).
	if out, err := claimCLI(t, r, "claim", "shadowed-pkg", "--owner", r.user("owner"), "--reason", "internal fork", "--by", "ops"); err != nil {
		t.Fatalf("couchnpm claim: %v\n%s", err, out)
	}
	u.mustRunIn(dir, "publish")

	// Let the follower pass over both names, then check nothing leaked.
	eventually(t, 30*time.Second, "follower caught up", func() (bool, string) {
		st := mirrorStatus(t, r)
		return st["state"] == "following", fmt.Sprint(st)
	})
	res := r.do("GET", "/shadowed-pkg", "", nil)
	if res.Status != 200 || strings.Contains(string(res.Body), "9.0.0") || !strings.Contains(string(res.Body), "0.0.1") {
		t.Fatalf("private package shadowed by upstream: %s", res)
	}
	if got := r.do("GET", "/shadowed-pkg/-/shadowed-pkg-9.0.0.tgz", "", nil); got.Status != 404 {
		t.Fatalf("upstream tarball of a private name: %s, want 404", got)
	}
	if got := r.do("GET", "/@corp%2finternal", "", nil); got.Status != 404 {
		t.Fatalf("package in a private scope resolved upstream: %s, want 404", got)
	}
	project := writeProject(t, map[string]string{"shadowed-pkg": "*"})
	u.mustRunIn(project, "install")
	mustRequire(t, project, "shadowed-pkg", "0.0.1", "private")
}

func TestMirrorFollowerLeaseTakeover(t *testing.T) {
	up := newFakeUpstream(t)
	up.publish("lease-a", "1.0.0", nil)
	prefix := sharedPrefix(t)
	// The holder's name is for admins (instance names are host names by default).
	admins := []string{"--admins", "leaseroot-" + prefix}
	a := startRegistry(t, registryOpts{Prefix: prefix, ExtraArgs: mirrorArgs(up, "follow", append(admins, "--instance-id", "instance-a")...)})
	_, admin := rawAddUser(t, a, "leaseroot")
	eventually(t, 30*time.Second, "a holds the lease", func() (bool, string) {
		st := mirrorStatusAs(t, a, admin)
		return st["follower_holder"] == "instance-a" && st["state"] == "following", fmt.Sprint(st)
	})
	b := startRegistry(t, registryOpts{Prefix: prefix, ExtraArgs: mirrorArgs(up, "follow", append(admins, "--instance-id", "instance-b")...)})
	// Only one follower: b stands by while a holds the lease. b says so
	// after its first try of the lease.
	eventually(t, 30*time.Second, "b stands by", func() (bool, string) {
		return strings.Contains(b.Stderr.String(), "standing by"), "no standing-by line in b's log"
	})
	if st := mirrorStatusAs(t, b, admin); st["follower_holder"] != "instance-a" {
		t.Fatalf("while a runs, the holder is %v", st["follower_holder"])
	}
	if strings.Contains(b.Stderr.String(), "took the lease") {
		t.Fatal("b took the lease while a held it")
	}

	// a dies without releasing the lease; b takes over within 30 s.
	a.kill()
	killed := time.Now()
	eventually(t, 30*time.Second, "b takes over", func() (bool, string) {
		st := mirrorStatusAs(t, b, admin)
		return st["follower_holder"] == "instance-b", fmt.Sprint(st["follower_holder"])
	})
	t.Logf("takeover after %s", time.Since(killed).Round(time.Second))
	up.publish("lease-a", "1.1.0", nil)
	eventually(t, 10*time.Second, "b follows", func() (bool, string) {
		v, st := latestOf(b, "lease-a")
		return v == "1.1.0", fmt.Sprintf("latest %q status %d", v, st)
	})
}

// packumentJSON is the upstream's document for name, without its _rev, as
// a CouchDB upstream would hold it.
func (u *fakeUpstream) packumentJSON(t *testing.T, name string) map[string]any {
	t.Helper()
	res, err := http.Get(u.URL() + "/" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var doc map[string]any
	if err := json.NewDecoder(res.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	delete(doc, "_rev")
	return doc
}

func mustCouch(t *testing.T, method, path string, body any, want ...int) []byte {
	t.Helper()
	var b []byte
	if body != nil {
		b = mustJSON(body)
	}
	st, resp, err := couchDo(method, path, b, true)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	for _, w := range want {
		if st == w {
			return resp
		}
	}
	t.Fatalf("%s %s: status %d: %s", method, path, st, resp)
	return nil
}

func TestMirrorReplicate(t *testing.T) {
	up := newFakeUpstream(t) // serves the tarballs
	up.publish("rep-a", "1.0.0", nil)
	up.publish("rep-b", "1.0.0", nil)
	prefix := newPrefix()
	src := prefix + "-upstream"
	mustCouch(t, "PUT", "/"+src, nil, 201, 412)
	t.Cleanup(func() {
		if !suite.ownCouch {
			couchDo("DELETE", "/"+src, nil, true)
		}
	})
	t.Cleanup(func() { // the replication lives in CouchDB, beyond couchnpm
		if suite.ownCouch {
			// PouchDB Server crashes when a running replication's
			// _replicator document is deleted; the suite's own server
			// goes away with the suite anyway.
			return
		}
		id := "/_replicator/couchnpm-" + prefix + "-mirror"
		if st, body, _ := couchDo("GET", id, nil, true); st == 200 {
			var d struct {
				Rev string `json:"_rev"`
			}
			json.Unmarshal(body, &d)
			couchDo("DELETE", id+"?rev="+d.Rev, nil, true)
		}
	})
	mustCouch(t, "PUT", "/"+src+"/rep-a", up.packumentJSON(t, "rep-a"), 201)
	// An upstream design document whose validate_doc_update blocks every
	// write in any database but the upstream's own (told apart by a role in
	// its security object): if it took effect in the mirror, nothing after
	// it would replicate.
	mustCouch(t, "PUT", "/"+src+"/_security", map[string]any{
		"admins":  map[string]any{"names": []string{}, "roles": []string{"upstream-marker"}},
		"members": map[string]any{"names": []string{}, "roles": []string{}},
	}, 200)
	mustCouch(t, "PUT", "/"+src+"/_design/evil", map[string]any{
		"validate_doc_update": "function (newDoc, oldDoc, userCtx, secObj) { " +
			"if (!(secObj && secObj.admins && secObj.admins.roles && secObj.admins.roles.indexOf('upstream-marker') >= 0)) " +
			"{ throw({forbidden: 'evil upstream validation'}); } }",
	}, 201)
	mustCouch(t, "PUT", "/"+src+"/rep-b", up.packumentJSON(t, "rep-b"), 201)

	couch, _ := url.Parse(suite.couchURL)
	source := *couch
	if suite.couchUser != "" {
		source.User = url.UserPassword(suite.couchUser, suite.couchPass)
	}
	source.Path = "/" + src
	r := startRegistry(t, registryOpts{Prefix: prefix, ExtraArgs: []string{
		"--mirror", "replicate", "--upstream", up.URL(),
		"--upstream-couchdb", source.String(), "--replication-target", suite.couchURL,
	}})
	r.addSecret(suite.couchPass)
	mirrorDB := "/" + prefix + "-mirror"

	// The documents arrive through CouchDB's replicator, not through couchnpm.
	eventually(t, 60*time.Second, "replicated", func() (bool, string) {
		st, body, _ := couchDo("GET", mirrorDB+"/rep-b", nil, true)
		return st == 200, fmt.Sprintf("status %d %s", st, body)
	})
	// CouchDB 3 never lets it in (a replication selector); on PouchDB
	// Server, which has no selectors, couchnpm removes it within seconds.
	eventually(t, 15*time.Second, "no upstream design document in the mirror", func() (bool, string) {
		st, body, _ := couchDo("GET", mirrorDB+"/_design/evil", nil, true)
		return st == 404, fmt.Sprintf("status %d %s", st, body)
	})
	// Continuous: a later upstream document follows, past the design doc
	// that would have refused it.
	up.publish("rep-c", "1.0.0", nil)
	mustCouch(t, "PUT", "/"+src+"/rep-c", up.packumentJSON(t, "rep-c"), 201)
	fetchedBefore := up.hitCount("/rep-c") // packumentJSON read it once
	eventually(t, 60*time.Second, "continuous replication", func() (bool, string) {
		st, _, _ := couchDo("GET", mirrorDB+"/rep-c", nil, true)
		return st == 200, fmt.Sprintf("status %d", st)
	})
	if hits := up.hitCount("/rep-c") - fetchedBefore; hits != 0 {
		t.Fatalf("couchnpm fetched rep-c from the upstream registry (%d times); it should arrive by replication", hits)
	}

	st := mirrorStatus(t, r)
	if st["mode"] != "replicate" || st["replication"] == nil || st["state"] == "" || st["state"] == "starting" {
		t.Fatalf("replication status: %v", st)
	}
	t.Logf("replication state: %v", st["replication"])
	// (The marker of a hidden detail says "administrators": not the password "admin".)
	if strings.Contains(strings.ReplaceAll(fmt.Sprint(st), hiddenDetail, ""), suite.couchPass) && suite.couchPass != "" {
		t.Fatal("the status shows the replication credentials")
	}

	// npm installs a replicated package; its tarball comes from the upstream
	// registry, verified.
	u := newNPMUser(t, r, "replicate-consumer")
	project := writeProject(t, map[string]string{"rep-c": "1.0.0"})
	u.mustRunIn(project, "install")
	mustRequire(t, project, "rep-c", "1.0.0", "upstream")

	// The replication took CouchDB 3's path (a selector, the scheduler's
	// state) on CouchDB, PouchDB Server's on PouchDB Server.
	checkServerPaths(t, r, pathNoScheduler, pathNoSchedulerState)
}

// TestMirrorFollowCatchUp mirrors a few hundred packages from scratch and
// reports the rate (a measurement, not a timed assertion: speed targets
// live in benchmarks).
func TestMirrorFollowCatchUp(t *testing.T) {
	const n = 300
	up := newFakeUpstream(t)
	for i := range n {
		up.publish(fmt.Sprintf("bulk-%03d", i), "1.0.0", nil)
	}
	r := startRegistry(t, registryOpts{ExtraArgs: mirrorArgs(up, "follow", "--follow-page-size", "100")})
	start := time.Now()
	eventually(t, 5*time.Minute, "catch-up", func() (bool, string) {
		st := mirrorStatus(t, r)
		return st["state"] == "following" && num(st["packuments_written"]) >= n, fmt.Sprint(st["packuments_written"])
	})
	elapsed := time.Since(start)
	st := mirrorStatus(t, r)
	t.Logf("caught up %d packuments in %s: %.0f packuments/s (status says %.0f/s)",
		n, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds(), num(st["written_per_second"]))
	if v, status := latestOf(r, "bulk-299"); v != "1.0.0" {
		t.Fatalf("bulk-299: latest %q, status %d", v, status)
	}
	if got := len(up.sinces()); got < n/100 {
		t.Fatalf("the follower read %d pages, want at least %d (page size 100)", got, n/100)
	}
}
