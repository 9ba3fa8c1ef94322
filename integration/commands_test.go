//go:build integration

package integration

import (
	"strings"
	"testing"
)

// Command surface, part 1: dist-tag, deprecate/undeprecate, owner, driven
// by the real npm CLI.
func TestCommandsTagsDeprecateOwners(t *testing.T) {
	t.Parallel()
	reg := startRegistry(t, registryOpts{})
	alice := newNPMUser(t, reg, "tdoalice2")
	alice.mustLogin("tdoalice2", "Pw-tdo-alice-0c1d2e3f", "tdoalice2@example.com")
	bob := newNPMUser(t, reg, "tdobob2")
	bob.mustLogin("tdobob2", "Pw-tdo-bob-4a5b6c7d", "tdobob2@example.com")
	const pkg = "tagged"
	alice.publish(pkg, "1.0.0")
	alice.publish(pkg, "1.1.0")

	tags := func(t *testing.T) map[string]string {
		t.Helper()
		res := alice.mustRunIn("", "view", pkg, "dist-tags", "--json", "--prefer-online")
		m := map[string]string{}
		parseJSON(t, res, &m)
		return m
	}

	t.Run("dist-tag add ls rm", func(t *testing.T) {
		res := alice.mustRunIn("", "dist-tag", "add", pkg+"@1.0.0", "stable")
		if !strings.Contains(res.Stdout, "+stable: tagged@1.0.0") {
			t.Errorf("dist-tag add output:\n%s", res)
		}
		res = alice.mustRunIn("", "dist-tag", "ls", pkg)
		if !strings.Contains(res.Stdout, "stable: 1.0.0") || !strings.Contains(res.Stdout, "latest: 1.1.0") {
			t.Errorf("dist-tag ls output:\n%s", res)
		}
		if m := tags(t); m["stable"] != "1.0.0" || m["latest"] != "1.1.0" {
			t.Errorf("dist-tags after add: %v", m)
		}
		res = alice.mustRunIn("", "dist-tag", "rm", pkg, "stable")
		if !strings.Contains(res.Stdout, "-stable: tagged@1.0.0") {
			t.Errorf("dist-tag rm output:\n%s", res)
		}
		if m := tags(t); m["stable"] != "" || len(m) != 1 {
			t.Errorf("dist-tags after rm: %v, want only latest", m)
		}
	})

	t.Run("dist-tag refusals", func(t *testing.T) {
		alice.mustFail("", []string{"E400"}, "dist-tag", "add", pkg+"@9.9.9", "ghost")
		alice.mustFail("", []string{"E403"}, "dist-tag", "rm", pkg, "latest")
		bob.mustFail("", []string{"E403"}, "dist-tag", "add", pkg+"@1.0.0", "bobs")
		if h := reg.do("PUT", "/-/package/"+pkg+"/dist-tags/anon", "", []byte(`"1.0.0"`)); h.Status != 401 {
			t.Errorf("anonymous dist-tag PUT: %s, want 401", h)
		}
		if m := tags(t); len(m) != 1 || m["latest"] != "1.1.0" {
			t.Errorf("dist-tags after refused changes: %v", m)
		}
	})

	t.Run("dist-tags PUT replaces, POST merges", func(t *testing.T) {
		tok := alice.token()
		if h := reg.do("POST", "/-/package/"+pkg+"/dist-tags", tok, []byte(`{"a":"1.0.0"}`)); h.Status != 200 {
			t.Fatalf("POST dist-tags: %s", h)
		}
		if m := tags(t); m["a"] != "1.0.0" || m["latest"] != "1.1.0" {
			t.Errorf("after POST merge: %v", m)
		}
		if h := reg.do("PUT", "/-/package/"+pkg+"/dist-tags", tok, []byte(`{"b":"1.0.0"}`)); h.Status != 403 {
			t.Errorf("PUT dist-tags without latest: %s, want 403", h)
		}
		if h := reg.do("PUT", "/-/package/"+pkg+"/dist-tags", tok, []byte(`{"latest":"1.1.0","b":"1.0.0"}`)); h.Status != 200 {
			t.Fatalf("PUT dist-tags: %s", h)
		}
		if m := tags(t); len(m) != 2 || m["b"] != "1.0.0" || m["latest"] != "1.1.0" {
			t.Errorf("after PUT replace: %v, want latest and b", m)
		}
	})

	t.Run("deprecate and undeprecate", func(t *testing.T) {
		alice.mustRunIn("", "deprecate", pkg+"@1.0.0", "use 1.1 instead")
		res := alice.mustRunIn("", "view", pkg+"@1.0.0", "deprecated", "--prefer-online")
		if got := strings.TrimSpace(res.Stdout); got != "use 1.1 instead" {
			t.Errorf("deprecated after npm deprecate = %q\n%s", got, res)
		}
		proj := writeProject(t, map[string]string{pkg: "1.0.0"})
		res = alice.mustRunIn(proj, "install", "--prefer-online")
		if !strings.Contains(res.Stderr, "deprecated tagged@1.0.0: use 1.1 instead") {
			t.Errorf("npm install of a deprecated version printed no warning:\n%s", res)
		}
		bob.mustFail("", []string{"E403"}, "deprecate", pkg+"@1.1.0", "tdobob2 says no")
		alice.mustRunIn("", "undeprecate", pkg+"@1.0.0")
		res = alice.mustRunIn("", "view", pkg+"@1.0.0", "deprecated", "--prefer-online")
		if got := strings.TrimSpace(res.Stdout); got != "" {
			t.Errorf("deprecated after npm undeprecate = %q", got)
		}
		if res := alice.mustRunIn("", "view", pkg+"@1.1.0", "deprecated", "--prefer-online"); strings.TrimSpace(res.Stdout) != "" {
			t.Errorf("1.1.0 got deprecated by tdobob2's refused attempt: %s", res)
		}
	})

	t.Run("published versions are immutable", func(t *testing.T) {
		doc, h := reg.packument(pkg, alice.token())
		if h.Status != 200 {
			t.Fatalf("GET ?write=true: %s", h)
		}
		if doc["_rev"] == nil {
			t.Fatalf("GET ?write=true has no _rev: %s", h)
		}
		v := doc["versions"].(map[string]any)["1.0.0"].(map[string]any)
		v["description"] = "rewritten history"
		if h := reg.do("PUT", "/"+pkg, alice.token(), mustJSON(doc)); h.Status != 403 {
			t.Errorf("PUT changing a published version's description: %s, want 403", h)
		}
	})

	t.Run("scoped package", func(t *testing.T) {
		const scoped = "@tdo/scoped"
		alice.mustOwnOrg("tdo", "tdoalice2") // a scope belongs to an org or a user
		alice.publish(scoped, "1.0.0")
		alice.publish(scoped, "1.1.0")
		alice.mustRunIn("", "dist-tag", "add", scoped+"@1.0.0", "old")
		alice.mustRunIn("", "deprecate", scoped+"@1.0.0", "scoped and old")
		res := alice.mustRunIn("", "view", scoped+"@old", "deprecated", "--prefer-online")
		if got := strings.TrimSpace(res.Stdout); got != "scoped and old" {
			t.Errorf("view %s@old deprecated = %q\n%s", scoped, got, res)
		}
		if h := reg.do("DELETE", "/-/package/@tdo/scoped/dist-tags/old", alice.token(), nil); h.Status != 200 {
			t.Errorf("DELETE dist-tag with an unescaped scoped name: %s", h)
		}
	})

	t.Run("owner add ls rm", func(t *testing.T) {
		alice.mustRunIn("", "owner", "add", "tdobob2", pkg)
		res := alice.mustRunIn("", "owner", "ls", pkg)
		if !strings.Contains(res.Stdout, "tdoalice2 <tdoalice2@example.com>") || !strings.Contains(res.Stdout, "tdobob2 <tdobob2@example.com>") {
			t.Errorf("owner ls after add:\n%s", res)
		}
		bob.mustRunIn("", "dist-tag", "add", pkg+"@1.0.0", "bobs")
		alice.mustFail("", []string{"E404"}, "owner", "add", "nosuchuser", pkg)
		carol := newNPMUser(t, reg, "tdocarol2")
		carol.mustLogin("tdocarol2", "Pw-tdo-carol-9e8d7c6b", "tdocarol2@example.com")
		// npm wraps the server's 403 into EOWNERMUTATE.
		if res := carol.mustFail("", []string{"EOWNERMUTATE", "E403"}, "owner", "add", "tdocarol2", pkg); !strings.Contains(res.Stderr, "403") {
			t.Errorf("owner add by a non-maintainer did not fail with 403:\n%s", res)
		}
		bob.mustRunIn("", "owner", "rm", "tdobob2", pkg)
		res = alice.mustRunIn("", "owner", "ls", pkg)
		if strings.Contains(res.Stdout, "tdobob2") || !strings.Contains(res.Stdout, "tdoalice2") {
			t.Errorf("owner ls after rm:\n%s", res)
		}
		bob.mustFail("", []string{"E403"}, "dist-tag", "add", pkg+"@1.0.0", "bobs2")
	})

	t.Run("owner changes need the current revision and an owner", func(t *testing.T) {
		doc, _ := reg.packument(pkg, alice.token())
		rev := doc["_rev"].(string)
		body := map[string]any{"_id": pkg, "_rev": rev, "maintainers": []map[string]string{}}
		if h := reg.do("PUT", "/"+pkg+"/-rev/"+rev, alice.token(), mustJSON(body)); h.Status != 403 {
			t.Errorf("PUT with no maintainers: %s, want 403", h)
		}
		alice.mustRunIn("", "dist-tag", "add", pkg+"@1.0.0", "bump") // a newer revision
		body = map[string]any{"_id": pkg, "_rev": rev, "maintainers": []map[string]string{{"name": "tdoalice2"}, {"name": "tdocarol2"}}}
		if h := reg.do("PUT", "/"+pkg+"/-rev/"+rev, alice.token(), mustJSON(body)); h.Status != 409 {
			t.Errorf("PUT maintainers with a stale _rev: %s, want 409", h)
		}
		if res := alice.mustRunIn("", "owner", "ls", pkg); strings.Contains(res.Stdout, "tdocarol2") {
			t.Errorf("tdocarol2 became an owner through a stale write:\n%s", res)
		}
	})
}
