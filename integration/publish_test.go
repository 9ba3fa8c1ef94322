//go:build integration

package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Scenarios b and c: publish (unscoped and scoped), view, install, ci; new versions,
// dist-tags, republish, foreign and anonymous publish.
func TestPublishInstall(t *testing.T) {
	t.Parallel()
	reg := startRegistry(t, registryOpts{})
	alice := newNPMUser(t, reg, "alice")
	alice.mustLogin(reg.user("alice"), "Pw-alice-c41d8e02", "alice@example.com")

	const plain, scoped = "widget", "@acme/gadget"

	t.Run("publish unscoped", func(t *testing.T) {
		alice.mustRunIn(writePackage(t, plain, "1.0.0", "widget-1.0.0"), "publish")
	})
	t.Run("publish scoped", func(t *testing.T) {
		alice.mustOwnOrg("acme", reg.user("alice")) // a scope belongs to an org or a user
		alice.mustRunIn(writePackage(t, scoped, "1.0.0", "gadget-1.0.0"), "publish")
	})

	t.Run("view", func(t *testing.T) {
		res := alice.mustRunIn("", "view", plain, "version", "--prefer-online")
		if got := strings.TrimSpace(res.Stdout); got != "1.0.0" {
			t.Errorf("npm view %s version = %q, want 1.0.0\n%s", plain, got, res)
		}
		res = alice.mustRunIn("", "view", scoped, "--json", "--prefer-online")
		var v struct {
			Name     string
			Version  string
			DistTags map[string]string `json:"dist-tags"`
			Dist     struct{ Tarball, Integrity, Shasum string }
		}
		if err := json.Unmarshal([]byte(res.Stdout), &v); err != nil {
			t.Fatalf("npm view %s --json: %v\n%s", scoped, err, res)
		}
		if v.Name != scoped || v.Version != "1.0.0" || v.DistTags["latest"] != "1.0.0" {
			t.Errorf("npm view %s --json: name %q version %q dist-tags %v\n%s", scoped, v.Name, v.Version, v.DistTags, res)
		}
		if !strings.HasPrefix(v.Dist.Tarball, reg.URL+"/") {
			t.Errorf("npm view %s: dist.tarball %q does not point at the registry's public URL %s", scoped, v.Dist.Tarball, reg.URL)
		}
		if !strings.HasPrefix(v.Dist.Integrity, "sha512-") || v.Dist.Shasum == "" {
			t.Errorf("npm view %s: dist.integrity %q, dist.shasum %q", scoped, v.Dist.Integrity, v.Dist.Shasum)
		}
	})

	t.Run("install and ci", func(t *testing.T) {
		proj := writeProject(t, map[string]string{plain: "^1.0.0", scoped: "^1.0.0"})
		alice.mustRunIn(proj, "install")
		mustRequire(t, proj, plain, "1.0.0", "widget-1.0.0")
		mustRequire(t, proj, scoped, "1.0.0", "gadget-1.0.0")
		lock, err := os.ReadFile(filepath.Join(proj, "package-lock.json"))
		if err != nil {
			t.Fatalf("npm install wrote no package-lock.json: %v", err)
		}
		if !strings.Contains(string(lock), reg.URL+"/") {
			t.Errorf("package-lock.json resolves no tarball at %s:\n%s", reg.URL, lock)
		}

		// From the lockfile, with an empty cache so the tarballs come from the registry.
		if err := os.RemoveAll(filepath.Join(proj, "node_modules")); err != nil {
			t.Fatal(err)
		}
		if err := os.RemoveAll(alice.cache); err != nil {
			t.Fatal(err)
		}
		alice.mustRunIn(proj, "ci")
		mustRequire(t, proj, plain, "1.0.0", "widget-1.0.0")
		mustRequire(t, proj, scoped, "1.0.0", "gadget-1.0.0")
	})

	distTags := func(t *testing.T, name string) map[string]string {
		t.Helper()
		res := alice.mustRunIn("", "view", name, "dist-tags", "--json", "--prefer-online")
		tags := map[string]string{}
		if err := json.Unmarshal([]byte(res.Stdout), &tags); err != nil {
			t.Fatalf("npm view %s dist-tags --json: %v\n%s", name, err, res)
		}
		return tags
	}

	t.Run("second version moves latest", func(t *testing.T) {
		alice.mustRunIn(writePackage(t, plain, "1.1.0", "widget-1.1.0"), "publish")
		if tags := distTags(t, plain); tags["latest"] != "1.1.0" {
			t.Fatalf("dist-tags after publishing 1.1.0: %v, want latest 1.1.0", tags)
		}
		proj := writeProject(t, map[string]string{plain: "^1.0.0"})
		alice.mustRunIn(proj, "install")
		mustRequire(t, proj, plain, "1.1.0", "widget-1.1.0")
	})

	t.Run("publish --tag beta keeps latest", func(t *testing.T) {
		alice.mustRunIn(writePackage(t, plain, "2.0.0-beta.1", "widget-beta"), "publish", "--tag", "beta")
		tags := distTags(t, plain)
		if tags["latest"] != "1.1.0" || tags["beta"] != "2.0.0-beta.1" {
			t.Fatalf("dist-tags after publish --tag beta: %v, want latest 1.1.0, beta 2.0.0-beta.1", tags)
		}
		res := alice.mustRunIn("", "view", plain, "versions", "--json", "--prefer-online")
		var versions []string
		if err := json.Unmarshal([]byte(res.Stdout), &versions); err != nil || len(versions) != 3 {
			t.Fatalf("npm view %s versions --json: %v, want 3 versions\n%s", plain, err, res)
		}
	})

	t.Run("republish same version fails", func(t *testing.T) {
		res := alice.runIn(writePackage(t, plain, "1.1.0", "widget-1.1.0-again"), "publish")
		if res.Err == nil {
			t.Fatalf("republishing %s@1.1.0 succeeded:\n%s", plain, res)
		}
		// npm 11 itself refuses when the packument already lists the version ("You
		// cannot publish over the previously published versions", no code); otherwise
		// the server's answer shows as E403/E409.
		code := npmErrorCode(res.Stderr)
		if code != "E403" && code != "E409" && !strings.Contains(res.Stderr, "cannot publish over the previously published version") {
			t.Errorf("republishing %s@1.1.0: npm error code %q, want E403 or E409\n%s", plain, code, res)
		}
		// The server must refuse too (npm's own check is skipped by other clients).
		body, _ := rawPublishBody(t, reg, plain, "1.1.0", false)
		if h := reg.do("PUT", "/"+plain, alice.token(), body); h.Status != 403 && h.Status != 409 {
			t.Errorf("raw PUT /%s republishing 1.1.0: %s, want 403 or 409", plain, h)
		}
		// The stored 1.1.0 is untouched.
		proj := writeProject(t, map[string]string{plain: "1.1.0"})
		alice.mustRunIn(proj, "install", "--prefer-online")
		mustRequire(t, proj, plain, "1.1.0", "widget-1.1.0")
	})

	t.Run("other user cannot publish", func(t *testing.T) {
		bob := newNPMUser(t, reg, "bob")
		bob.mustLogin(reg.user("bob"), "Pw-bob-88a2f610", "bob@example.com")
		for _, name := range []string{plain, scoped} {
			res := bob.runIn(writePackage(t, name, "9.0.0", "bob-was-here"), "publish")
			if res.Err == nil {
				t.Errorf("bob published %s@9.0.0, a package of alice:\n%s", name, res)
				continue
			}
			if code := npmErrorCode(res.Stderr); code != "E403" {
				t.Errorf("bob publishing %s@9.0.0: npm error code %q, want E403\n%s", name, code, res)
			}
		}
		if tags := distTags(t, plain); tags["latest"] != "1.1.0" {
			t.Errorf("dist-tags after bob's attempt: %v, want latest 1.1.0", tags)
		}
	})

	t.Run("anonymous publish fails", func(t *testing.T) {
		anon := newNPMUser(t, reg, "anonymous")
		res := anon.runIn(writePackage(t, "anon-pkg", "1.0.0", "anon"), "publish")
		if res.Err == nil {
			t.Fatalf("publishing without login succeeded:\n%s", res)
		}
		if code := npmErrorCode(res.Stderr); code != "ENEEDAUTH" && code != "E401" {
			t.Errorf("publishing without login: npm error code %q, want ENEEDAUTH or E401\n%s", code, res)
		}
		// npm stops before sending when it has no token; check the server side directly.
		body, _ := rawPublishBody(t, reg, "anon-pkg", "1.0.0", false)
		if h := reg.do("PUT", "/anon-pkg", "", body); h.Status != 401 {
			t.Errorf("PUT /anon-pkg without a token: %s, want 401", h)
		}
		if h := reg.do("PUT", "/anon-pkg", "not-a-valid-token", body); h.Status != 401 {
			t.Errorf("PUT /anon-pkg with a made-up token: %s, want 401", h)
		}
		if h := reg.do("GET", "/anon-pkg", "", nil); h.Status != 404 {
			t.Errorf("GET /anon-pkg after the refused publishes: %s, want 404", h)
		}
	})
}
