//go:build integration

package integration

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// claimCLI runs `couchnpm claim|unclaim args...` against r's databases, as
// an operator would (straight to CouchDB, not through r's fault proxy).
func claimCLI(t *testing.T, r *registry, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(suite.bin, append(args, "--db-prefix", r.Prefix)...)
	cmd.Env = append(envWithout(cmd.Environ(), "COUCHDB_", "COUCHNPM_"),
		"COUCHDB_URL="+suite.couchURL, "COUCHDB_USER="+suite.couchUser, "COUCHDB_PASSWORD="+suite.couchPass)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// mustFailSaying runs npm in dir, wanting it to fail with code and to show
// every one of parts to the user.
func (u *npmUser) mustFailSaying(dir, code string, parts []string, args ...string) {
	u.t.Helper()
	res := u.mustFail(dir, []string{code}, args...)
	for _, p := range parts {
		if !strings.Contains(res.Stderr, p) {
			u.t.Errorf("npm %s: the output does not say %q\n%s", strings.Join(args, " "), p, res)
		}
	}
}

// The takeover sequence of issue 9 against the default settings with an
// on-demand mirror: a user who just signed up cannot take a public name,
// so installs through the mirror keep working; an operator's claim lets a
// fork shadow the name on purpose, and unpublishing the fork brings the
// upstream's versions back.
func TestTakeoverPublicNames(t *testing.T) {
	up := newFakeUpstream(t)
	up.publish("ms", "2.1.2", nil)
	up.publish("ms", "2.1.3", nil)
	up.publish("debug", "4.3.4", map[string]string{"ms": "^2.1.1"})
	up.publish("is-odd", "3.0.1", nil)
	r := startRegistry(t, registryOpts{ExtraArgs: mirrorArgs(up, "on-demand", "--private-scopes", "@corp", "--upstream-name-check-timeout", "3s")})

	// A project installed through the mirror, with its lockfile.
	consumer := newNPMUser(t, r, "consumer")
	locked := writeProject(t, map[string]string{"debug": "^4.0.0"})
	consumer.mustRunIn(locked, "install")
	mustRequire(t, locked, "ms", "2.1.3", "upstream")

	mallory := newNPMUser(t, r, "mallory")
	mallory.mustLogin(r.user("mallory"), "pass-takeover-1", "mallory@example.com")
	refusal := func(name string) []string {
		return []string{"403", name + " exists on the upstream registry", "shadow it for everyone", "couchnpm claim " + name}
	}
	t.Run("a new user cannot publish a name the upstream has", func(t *testing.T) {
		// ms is mirrored already; is-odd only the upstream knows so far.
		mallory.mustFailSaying(writePackage(t, "ms", "99.0.0", "evil"), "E403", refusal("ms"), "publish")
		mallory.mustFailSaying(writePackage(t, "ms", "2.1.4", "evil"), "E403", refusal("ms"), "publish", "--tag", "compromised")
		mallory.mustFailSaying(writePackage(t, "is-odd", "99.0.0", "evil"), "E403", append(refusal("is-odd"), "@yourorg/is-odd"), "publish")
		// Nothing was stored, so there is nothing to unpublish.
		if res := mallory.runIn("", "unpublish", "ms", "--force"); res.Err == nil {
			t.Errorf("npm unpublish ms --force by a stranger succeeded:\n%s", res)
		}
	})
	t.Run("installs through the mirror keep working", func(t *testing.T) {
		ci := newNPMUser(t, r, "ci")
		ci.mustRunIn(locked, "ci")
		mustRequire(t, locked, "ms", "2.1.3", "upstream")
		fresh := writeProject(t, map[string]string{"debug": "4", "is-odd": "*"})
		ci.mustRunIn(fresh, "install")
		mustRequire(t, fresh, "ms", "2.1.3", "upstream")
		mustRequire(t, fresh, "is-odd", "3.0.1", "upstream")
	})
	t.Run("an upstream that cannot be asked means 503, private scopes need no check", func(t *testing.T) {
		up.setDown(true)
		defer up.setDown(false)
		mallory.mustFailSaying(writePackage(t, "brand-new-lib", "1.0.0", "new"), "E503",
			[]string{"cannot check whether brand-new-lib exists on the upstream registry"}, "publish", "--fetch-retries=0")
		mallory.mustOwnOrg("corp", r.user("mallory")) // a scope belongs to an org or a user
		mallory.mustRunIn(writePackage(t, "@corp/ms", "1.0.0", "corp"), "publish", "--access", "public")
	})
	t.Run("an upstream that does not answer costs a first publish the check timeout, then 503", func(t *testing.T) {
		up.setLatency(pkgPath("slow-name"), time.Minute)
		defer up.setLatency(pkgPath("slow-name"), 0)
		start := time.Now()
		mallory.mustFailSaying(writePackage(t, "slow-name", "1.0.0", "slow"), "E503",
			[]string{"cannot check whether slow-name exists on the upstream registry"}, "publish", "--fetch-retries=0")
		took := time.Since(start)
		t.Logf("npm publish with a silent upstream failed after %v (--upstream-name-check-timeout 3s)", took.Round(10*time.Millisecond))
		if took < 3*time.Second || took > 15*time.Second {
			t.Errorf("npm publish with a silent upstream took %v; want about the 3s check timeout", took)
		}
	})
	t.Run("a name the upstream does not know publishes", func(t *testing.T) {
		mallory.mustRunIn(writePackage(t, "brand-new-lib", "1.0.0", "new"), "publish")
		p := writeProject(t, map[string]string{"brand-new-lib": "1.0.0", "@corp/ms": "1.0.0"})
		consumer.mustRunIn(p, "install")
		mustRequire(t, p, "brand-new-lib", "1.0.0", "new")
		mustRequire(t, p, "@corp/ms", "1.0.0", "corp")
	})

	forker := newNPMUser(t, r, "forker")
	forker.mustLogin(r.user("forker"), "pass-takeover-2", "forker@example.com")
	t.Run("an operator's claim lets its owner publish a fork that shadows the upstream", func(t *testing.T) {
		if out, err := claimCLI(t, r, "claim", "ms", "--reason", "internal fork"); err == nil {
			t.Fatalf("claim without --owner succeeded:\n%s", out)
		}
		if out, err := claimCLI(t, r, "claim", "ms", "--owner", r.user("forker"), "--reason", "internal fork with a fix", "--by", "ops"); err != nil {
			t.Fatalf("couchnpm claim: %v\n%s", err, out)
		}
		out, err := claimCLI(t, r, "claim", "--list", "--json")
		var list []map[string]any
		if err != nil || json.Unmarshal([]byte(out), &list) != nil || len(list) != 1 ||
			list[0]["name"] != "ms" || list[0]["owner"] != r.user("forker") || list[0]["by"] != "ops" || list[0]["reason"] != "internal fork with a fix" {
			t.Fatalf("couchnpm claim --list --json: %v\n%s", err, out)
		}
		// The claim names who may publish: not the first comer.
		mallory.mustFailSaying(writePackage(t, "ms", "99.0.0", "evil"), "E403", []string{"claimed by an operator"}, "publish")
		forker.mustRunIn(writePackage(t, "ms", "99.0.0", "fork"), "publish")
		res := r.do("GET", "/ms", "", nil)
		if res.Status != 200 || strings.Contains(string(res.Body), "2.1.3") || strings.Contains(string(res.Body), "internal fork with a fix") {
			t.Fatalf("the fork does not shadow the upstream (or shows the claim): %s", res)
		}
		p := writeProject(t, map[string]string{"ms": "*"})
		consumer.mustRunIn(p, "install")
		mustRequire(t, p, "ms", "99.0.0", "fork")
	})
	t.Run("unpublishing the fork brings the upstream's versions back", func(t *testing.T) {
		forker.mustRunIn("", "unpublish", "ms", "--force")
		if v, st := latestOf(r, "ms"); v != "2.1.3" {
			t.Fatalf("ms after the fork's unpublish: latest %q (status %d), want the upstream's 2.1.3", v, st)
		}
		p := writeProject(t, map[string]string{"debug": "4"})
		newNPMUser(t, r, "after").mustRunIn(p, "install")
		mustRequire(t, p, "ms", "2.1.3", "upstream")
		// Unclaimed, the name is the upstream's again for everyone.
		if out, err := claimCLI(t, r, "unclaim", "ms"); err != nil {
			t.Fatalf("couchnpm unclaim: %v\n%s", err, out)
		}
		forker.mustFailSaying(writePackage(t, "ms", "99.1.0", "fork"), "E403", refusal("ms"), "publish")
		if out, err := claimCLI(t, r, "claim", "--list"); err != nil || !strings.Contains(out, "no names are claimed") {
			t.Fatalf("couchnpm claim --list after unclaim: %v\n%s", err, out)
		}
	})
	t.Run("a genuinely private name stays private after unpublish", func(t *testing.T) {
		// The upstream registers the name afterwards (dependency confusion).
		mallory.mustRunIn("", "unpublish", "brand-new-lib", "--force")
		up.publish("brand-new-lib", "9.9.9", nil)
		if res := r.do("GET", "/brand-new-lib", "", nil); res.Status != 404 {
			t.Fatalf("unpublished private name: %s, want 404 (never the upstream's)", res)
		}
		if res := r.do("GET", "/brand-new-lib/-/brand-new-lib-9.9.9.tgz", "", nil); res.Status != 404 {
			t.Fatalf("upstream tarball of an unpublished private name: %s, want 404", res)
		}
	})
}

// In follow mode, the follower keeps an unpublished fork's name current
// again: new upstream versions arrive.
func TestTakeoverFollowModeFallback(t *testing.T) {
	up := newFakeUpstream(t)
	up.publish("fork-me", "1.0.0", nil)
	r := startRegistry(t, registryOpts{ExtraArgs: mirrorArgs(up, "follow")})
	eventually(t, 30*time.Second, "follower caught up", func() (bool, string) {
		st := mirrorStatus(t, r)
		return st["state"] == "following", fmt.Sprint(st)
	})
	owner := newNPMUser(t, r, "owner")
	owner.mustLogin(r.user("owner"), "pass-takeover-3", "owner@example.com")
	owner.mustFail(writePackage(t, "fork-me", "99.0.0", "fork"), []string{"E403"}, "publish")
	if out, err := claimCLI(t, r, "claim", "fork-me", "--owner", r.user("owner"), "--reason", "fork", "--by", "ops"); err != nil {
		t.Fatalf("couchnpm claim: %v\n%s", err, out)
	}
	owner.mustRunIn(writePackage(t, "fork-me", "99.0.0", "fork"), "publish")
	up.publish("fork-me", "1.1.0", nil) // the follower leaves the name alone while the fork lives
	up.waitFollowerPast(t, up.lastSeq(), 30*time.Second)
	if v, _ := latestOf(r, "fork-me"); v != "99.0.0" {
		t.Fatalf("fork-me while the fork is published: latest %q, want 99.0.0", v)
	}
	owner.mustRunIn("", "unpublish", "fork-me", "--force")
	up.publish("fork-me", "1.2.0", nil)
	eventually(t, 15*time.Second, "upstream versions after the fork's unpublish", func() (bool, string) {
		v, st := latestOf(r, "fork-me")
		return v == "1.2.0", fmt.Sprintf("latest %q, status %d", v, st)
	})
	p := writeProject(t, map[string]string{"fork-me": "^1.0.0"})
	newNPMUser(t, r, "consumer").mustRunIn(p, "install")
	mustRequire(t, p, "fork-me", "1.2.0", "upstream")
}
