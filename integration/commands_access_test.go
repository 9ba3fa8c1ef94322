//go:build integration

package integration

import (
	"encoding/json"
	"strings"
	"testing"
)

// Command surface, part 4: npm access (restricted packages readable by
// their maintainers only here, invisible to anonymous callers and to other
// users; orgs_test.go covers team grants) and npm search.
func TestCommandsAccessSearch(t *testing.T) {
	t.Parallel()
	reg := startRegistry(t, registryOpts{})
	alice := newNPMUser(t, reg, "accalice2")
	alice.mustLogin("accalice2", "Pw-acc-alice-3c4d5e6f", "accalice2@example.com")
	bob := newNPMUser(t, reg, "accbob2")
	bob.mustLogin("accbob2", "Pw-acc-bob-7a8b9c0d", "accbob2@example.com")
	anon := newNPMUser(t, reg, "anonymous")
	const secret = "@acme/secret"
	alice.mustOwnOrg("acme", "accalice2") // a scope belongs to an org or a user
	alice.mustRunIn(writePackageWith(t, secret, "1.0.0", map[string]any{"keywords": []string{"hidden"}}), "publish", "--access", "restricted")
	alice.mustRunIn(writePackageWith(t, "left-pad", "1.0.0", map[string]any{"keywords": []string{"pad", "string"}, "author": "Alice Smith"}), "publish")
	alice.mustRunIn(writePackageWith(t, "left-pad-extra", "1.0.0", map[string]any{"keywords": []string{"pad"}}), "publish")
	bob.mustRunIn(writePackageWith(t, "padder", "1.0.0", map[string]any{"keywords": []string{"pad"}, "description": "a left pad clone"}), "publish")
	bob.mustRunIn(writePackageWith(t, "old-pad", "1.0.0", map[string]any{"keywords": []string{"pad"}}), "publish")
	bob.mustRunIn("", "deprecate", "old-pad@1.0.0", "gone stale")

	t.Run("restricted package", func(t *testing.T) {
		res := alice.mustRunIn("", "access", "get", "status", secret)
		if !strings.Contains(res.Stdout, secret+": private") {
			t.Errorf("access get status:\n%s", res)
		}
		for _, p := range []string{"/@acme%2fsecret", "/@acme/secret", "/@acme%2fsecret/1.0.0", "/@acme/secret/-/secret-1.0.0.tgz"} {
			if h := reg.do("GET", p, "", nil); h.Status != 404 {
				t.Errorf("anonymous GET %s: %s, want 404", p, h)
			}
			if h := reg.do("GET", p, bob.token(), nil); h.Status != 404 {
				t.Errorf("GET %s as accbob2 (logged in, no grant): %s, want 404", p, h)
			}
			if h := reg.do("GET", p, alice.token(), nil); h.Status != 200 {
				t.Errorf("GET %s as accalice2 (maintainer): %s, want 200", p, h)
			}
		}
		anon.mustFail("", []string{"E404"}, "view", secret)
		bob.mustFail("", []string{"E404"}, "view", secret)
		proj := writeProject(t, map[string]string{secret: "1.0.0"})
		alice.mustRunIn(proj, "install")
		mustRequire(t, proj, secret, "1.0.0", secret+"-1.0.0")
	})

	t.Run("access set, collaborators, packages", func(t *testing.T) {
		bob.mustFail("", []string{"E404"}, "access", "set", "status=public", secret)
		res := alice.mustRunIn("", "access", "list", "collaborators", secret)
		if strings.TrimSpace(res.Stdout) != "accalice2: read-write" {
			t.Errorf("access list collaborators:\n%s", res)
		}
		res = alice.mustRunIn("", "access", "list", "packages", "accalice2", "--json")
		pkgs := map[string]string{}
		parseJSON(t, res, &pkgs)
		if len(pkgs) != 3 || pkgs[secret] != "read-write" || pkgs["left-pad"] != "read-write" {
			t.Errorf("access list packages accalice2: %v", pkgs)
		}
		res = alice.mustRunIn("", "access", "list", "packages", "@acme", "--json")
		pkgs = map[string]string{}
		parseJSON(t, res, &pkgs)
		if len(pkgs) != 1 || pkgs[secret] != "read-write" {
			t.Errorf("access list packages @acme as accalice2: %v", pkgs)
		}
		res = bob.mustRunIn("", "access", "list", "packages", "@acme", "--json")
		pkgs = map[string]string{}
		parseJSON(t, res, &pkgs)
		if len(pkgs) != 0 {
			t.Errorf("access list packages @acme as accbob2 (no grant): %v", pkgs)
		}
	})

	search := func(t *testing.T, u *npmUser, args ...string) []string {
		t.Helper()
		res := u.mustRunIn("", append([]string{"search", "--json", "--prefer-online"}, args...)...)
		var hits []struct{ Name string }
		parseJSON(t, res, &hits)
		names := make([]string, len(hits))
		for i, h := range hits {
			names[i] = h.Name
		}
		return names
	}

	t.Run("search", func(t *testing.T) {
		if got := search(t, alice, "left-pad"); len(got) < 2 || got[0] != "left-pad" || got[1] != "left-pad-extra" {
			t.Errorf("search left-pad = %v, want left-pad first, then left-pad-extra", got)
		}
		if got := strings.Join(search(t, alice, "keywords:pad", "not:deprecated"), ","); got != "left-pad,left-pad-extra,padder" {
			t.Errorf("search keywords:pad not:deprecated = %s", got)
		}
		if got := strings.Join(search(t, alice, "maintainer:accbob2"), ","); got != "old-pad,padder" {
			t.Errorf("search maintainer:accbob2 = %s", got)
		}
		if got := strings.Join(search(t, alice, "author:alice"), ","); got != "left-pad" {
			t.Errorf("search author:alice = %s", got)
		}
		if got := strings.Join(search(t, alice, "scope:acme"), ","); got != secret {
			t.Errorf("search scope:acme as accalice2 = %s, want %s", got, secret)
		}
		if got := search(t, bob, "scope:acme"); len(got) != 0 {
			t.Errorf("search scope:acme as accbob2 (no grant) = %v, want nothing", got)
		}
		if got := search(t, anon, "hidden"); len(got) != 0 {
			t.Errorf("anonymous search found a restricted package: %v", got)
		}
		if got := search(t, anon, "clone"); strings.Join(got, ",") != "padder" {
			t.Errorf("anonymous search by description word = %v", got)
		}
		res := anon.mustRunIn("", "search", "padder", "--prefer-online")
		if !strings.Contains(res.Stdout, "padder") || !strings.Contains(res.Stdout, "a left pad clone") {
			t.Errorf("npm search table output:\n%s", res)
		}
		h := reg.do("GET", "/-/v1/search?text=pad&size=2&from=1", "", nil)
		var page struct {
			Objects []struct {
				Package struct {
					Name        string
					Maintainers []struct{ Username string }
					Links       map[string]string
				}
				Score       struct{ Final float64 }
				SearchScore float64
			}
			Total int
			Time  string
		}
		if h.Status != 200 || json.Unmarshal(h.Body, &page) != nil || page.Total != 4 || len(page.Objects) != 2 || page.Time == "" {
			t.Errorf("GET /-/v1/search?text=pad&size=2&from=1: %s, want total 4 and 2 objects", h)
		} else if o := page.Objects[0]; len(o.Package.Maintainers) == 0 || o.Package.Links["npm"] == "" || o.Score.Final <= 0 {
			t.Errorf("search object misses fields: %s", h)
		}
	})

	t.Run("access set status=public", func(t *testing.T) {
		alice.mustRunIn("", "access", "set", "status=public", secret)
		if h := reg.do("GET", "/@acme%2fsecret", "", nil); h.Status != 200 {
			t.Errorf("anonymous GET after status=public: %s", h)
		}
		if got := search(t, anon, "hidden"); strings.Join(got, ",") != secret {
			t.Errorf("anonymous search after status=public = %v", got)
		}
	})
}
