//go:build integration

package integration

import (
	"strings"
	"testing"
	"time"
)

// The package page's related lists through the real binary and CouchDB:
// dependents from the dependents view (a restricted dependent only for
// whoever may read it), and for a mirrored package which versions'
// tarballs are kept in CouchDB.
func TestWebPackageDependentsAndTarballCache(t *testing.T) {
	t.Parallel()
	up := newFakeUpstream(t)
	up.publish("rel-upstream", "1.0.0", nil)
	up.publish("rel-upstream", "1.1.0", nil)
	reg := startRegistry(t, registryOpts{ExtraArgs: mirrorArgs(up, "on-demand")})
	owner := reg.user("relowner")
	bob := newNPMUser(t, reg, owner)
	bob.mustLogin(owner, "Pw-rel-owner-1a2b3c4d", owner+"@example.com")
	stranger := newNPMUser(t, reg, reg.user("relstranger"))
	stranger.mustLogin(reg.user("relstranger"), "Pw-rel-stranger-5e6f7a8b", reg.user("relstranger")+"@example.com")
	bob.mustRunIn(writePackageWith(t, "rel-base", "1.0.0", nil), "publish")
	bob.mustRunIn(writePackageWith(t, "rel-app", "1.0.0", map[string]any{"dependencies": map[string]string{"rel-base": "^1.0.0"}}), "publish")
	bob.mustRunIn(writePackageWith(t, "rel-plugin", "1.0.0", map[string]any{"peerDependencies": map[string]string{"rel-base": "*"},
		"devDependencies": map[string]string{"rel-dev-only": "*"}}), "publish")
	bob.mustOwnOrg("relorg", owner)
	bob.mustRunIn(writePackageWith(t, "@relorg/rel-secret", "1.0.0", map[string]any{"dependencies": map[string]string{"rel-base": "1"}}), "publish", "--access", "restricted")

	page := func(path, token string) string {
		t.Helper()
		res, err := reg.tryDoAccept("GET", path, token, nil, browserAccept, 30*time.Second)
		if err != nil || res.Status != 200 {
			t.Fatalf("GET %s: %v %s", path, err, res)
		}
		return string(res.Body)
	}
	anon := page("/rel-base", "")
	for _, want := range []string{`id="dependents"`, `<a href="/rel-app">rel-app</a>`, `<a href="/rel-plugin">rel-plugin</a>`} {
		if !strings.Contains(anon, want) {
			t.Errorf("rel-base's page lacks %s", want)
		}
	}
	if strings.Contains(anon, "rel-secret") {
		t.Errorf("a restricted dependent is listed to an anonymous visitor")
	}
	if strings.Contains(page("/rel-base", stranger.token()), "rel-secret") {
		t.Errorf("a restricted dependent is listed to a user who cannot read it")
	}
	if !strings.Contains(page("/rel-base", bob.token()), `<a href="/@relorg/rel-secret">@relorg/rel-secret</a>`) {
		t.Errorf("the restricted dependent is not listed to its owner")
	}
	bob.mustRunIn(writePackageWith(t, "rel-dev-only", "1.0.0", nil), "publish")
	if strings.Contains(page("/rel-dev-only", ""), `id="dependents"`) {
		t.Errorf("a dev dependency counts as a dependent")
	}

	// A mirrored package: one version fetched, so cached.
	if res := reg.do("GET", tarballPath("rel-upstream", "1.0.0"), "", nil); res.Status != 200 {
		t.Fatalf("mirrored tarball: %s", res)
	}
	got := page("/rel-upstream", "")
	for _, want := range []string{"Tarballs cached here", `1 of the 2 newest versions`, `1.0.0</a> <span class="badge cached">cached</span>`, `1.1.0</a> <span class="muted small">not cached</span>`} {
		if !strings.Contains(got, want) {
			t.Errorf("mirrored page lacks %q", want)
		}
	}
}
