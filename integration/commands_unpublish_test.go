//go:build integration

package integration

import (
	"encoding/json"
	"strings"
	"testing"
)

// Command surface, part 2: unpublish (one version, whole package, burned
// version numbers) and stars, driven by the real npm CLI.
func TestCommandsUnpublishStars(t *testing.T) {
	t.Parallel()
	reg := startRegistry(t, registryOpts{})
	alice := newNPMUser(t, reg, "unpalice2")
	alice.mustLogin("unpalice2", "Pw-unp-alice-1f2e3d4c", "unpalice2@example.com")
	bob := newNPMUser(t, reg, "unpbob2")
	bob.mustLogin("unpbob2", "Pw-unp-bob-5b6a7988", "unpbob2@example.com")
	const pkg = "gone"
	for _, v := range []string{"1.0.0", "1.1.0", "2.0.0"} {
		alice.publish(pkg, v)
	}
	versions := func(t *testing.T) []string {
		t.Helper()
		res := alice.mustRunIn("", "view", pkg, "versions", "--json", "--prefer-online")
		var vs []string
		parseJSON(t, res, &vs)
		return vs
	}

	t.Run("unpublish one version", func(t *testing.T) {
		bob.mustFail("", []string{"E403"}, "unpublish", pkg+"@2.0.0")
		res := alice.mustRunIn("", "unpublish", pkg+"@1.1.0")
		if !strings.Contains(res.Stdout, "- gone@1.1.0") {
			t.Errorf("npm unpublish output:\n%s", res)
		}
		if vs := versions(t); strings.Join(vs, ",") != "1.0.0,2.0.0" {
			t.Errorf("versions after unpublishing 1.1.0: %v", vs)
		}
		if h := reg.do("GET", "/gone/-/gone-1.1.0.tgz", alice.token(), nil); h.Status != 404 {
			t.Errorf("tarball of the unpublished version: %s, want 404", h)
		}
		if h := reg.do("GET", "/gone/-/gone-1.0.0.tgz", alice.token(), nil); h.Status != 200 {
			t.Errorf("tarball of a kept version: %s, want 200", h)
		}
		// npm's last step (its 404s count as success, so check it directly).
		if h := reg.do("DELETE", "/gone/-/gone-1.1.0.tgz/-rev/9-x", alice.token(), nil); h.Status != 200 {
			t.Errorf("DELETE of the unpublished version's tarball: %s, want 200", h)
		}
		if h := reg.do("DELETE", "/gone/-/gone-1.0.0.tgz/-rev/9-x", alice.token(), nil); h.Status != 403 {
			t.Errorf("DELETE of a live version's tarball: %s, want 403", h)
		}
		res = alice.mustFail(writePackage(t, pkg, "1.1.0", "again"), []string{"E403"}, "publish", "--tag", "old")
		if !strings.Contains(res.Stderr, "cannot publish over") {
			t.Errorf("republishing an unpublished version: %s", res)
		}
	})

	t.Run("star unstar stars", func(t *testing.T) {
		res := bob.mustRunIn("", "star", pkg)
		if !strings.Contains(res.Stdout, "gone") {
			t.Errorf("npm star output:\n%s", res)
		}
		for _, u := range []*npmUser{bob, alice} {
			res = u.mustRunIn("", "stars", "unpbob2")
			if strings.TrimSpace(res.Stdout) != pkg {
				t.Errorf("npm stars unpbob2 as %s = %q, want %q\n%s", u.name, res.Stdout, pkg, res)
			}
		}
		h := reg.do("GET", `/-/_view/starredByUser?key=%22unpbob2%22`, "", nil)
		var view struct{ Rows []struct{ Key, Value string } }
		if h.Status != 200 || json.Unmarshal(h.Body, &view) != nil || len(view.Rows) != 1 || view.Rows[0].Value != pkg {
			t.Errorf("GET /-/_view/starredByUser: %s", h)
		}
		// Nobody changes another user's star.
		doc, _ := reg.packument(pkg, alice.token())
		body := map[string]any{"_id": pkg, "_rev": doc["_rev"], "users": map[string]bool{}}
		if h := reg.do("PUT", "/"+pkg, alice.token(), mustJSON(body)); h.Status != 403 {
			t.Errorf("unpalice2 removing unpbob2's star: %s, want 403", h)
		}
		bob.mustRunIn("", "unstar", pkg)
		if res := bob.runIn("", "stars"); strings.Contains(res.Stdout, pkg) {
			t.Errorf("npm stars after unstar:\n%s", res)
		}
	})

	t.Run("unpublish whole package", func(t *testing.T) {
		bob.mustFail("", []string{"E403"}, "unpublish", pkg, "--force")
		res := alice.mustRunIn("", "unpublish", pkg, "--force")
		if !strings.Contains(res.Stdout, "- gone") {
			t.Errorf("npm unpublish --force output:\n%s", res)
		}
		if h := reg.do("GET", "/"+pkg, alice.token(), nil); h.Status != 404 {
			t.Errorf("GET after a full unpublish: %s, want 404", h)
		}
		if h := reg.do("GET", "/gone/-/gone-1.0.0.tgz", alice.token(), nil); h.Status != 404 {
			t.Errorf("tarball after a full unpublish: %s, want 404", h)
		}
		alice.mustFail("", []string{"E404"}, "view", pkg, "--prefer-online")
		// The tombstone keeps the burned numbers: 2.0.0 never comes back.
		alice.mustFail(writePackage(t, pkg, "2.0.0", "again"), []string{"E403"}, "publish")
		alice.publish(pkg, "3.0.0")
		if vs := versions(t); strings.Join(vs, ",") != "3.0.0" {
			t.Errorf("versions after republishing: %v", vs)
		}
		bob.mustFail(writePackage(t, pkg, "4.0.0", "unpbob2"), []string{"E403"}, "publish")
	})
}
