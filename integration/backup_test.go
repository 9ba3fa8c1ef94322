//go:build integration

package integration

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"reflect"
	"strings"
	"testing"
)

// backupSuffixes are the database name suffixes of one registry (see the
// README's "Backup and restore"): packages, mirror, tarball cache, tokens,
// system, audit log.
var backupSuffixes = []string{"", "-mirror", "-tarballs", "-tokens", "-system", "-audit"}

// couchURLWithAuth is the CouchDB URL of db with the admin credentials in
// it, as a replication source or target.
func couchURLWithAuth(t *testing.T, db string) string {
	t.Helper()
	u, err := url.Parse(suite.couchURL)
	if err != nil {
		t.Fatal(err)
	}
	if suite.couchUser != "" {
		u.User = url.UserPassword(suite.couchUser, suite.couchPass)
	}
	return u.String() + "/" + urlPathEscape(db)
}

// replicate runs a one-shot replication of source into target (created when
// missing), as the README's backup command does, and returns the number of
// documents written.
func replicate(t *testing.T, source, target string, extra map[string]any) int {
	t.Helper()
	body := map[string]any{
		"source":        couchURLWithAuth(t, source),
		"target":        couchURLWithAuth(t, target),
		"create_target": true,
	}
	for k, v := range extra {
		body[k] = v
	}
	st, out, err := couchDo("POST", "/_replicate", mustJSON(body), true)
	if err != nil || st >= 300 {
		t.Fatalf("POST /_replicate %s → %s: status %d, %v: %s", source, target, st, err, out)
	}
	var res struct {
		OK          bool `json:"ok"`
		DocsWritten int  `json:"docs_written"`
		History     []struct {
			DocsWritten int `json:"docs_written"`
		} `json:"history"`
	}
	if err := json.Unmarshal(out, &res); err != nil || !res.OK {
		t.Fatalf("POST /_replicate %s → %s: %s", source, target, out)
	}
	if res.DocsWritten == 0 && len(res.History) > 0 {
		res.DocsWritten = res.History[0].DocsWritten
	}
	return res.DocsWritten
}

// docCount is the number of documents of db (design documents included).
func docCount(t *testing.T, db string) int {
	t.Helper()
	st, body, err := couchDo("GET", "/"+urlPathEscape(db), nil, true)
	var info struct {
		DocCount int `json:"doc_count"`
	}
	if err != nil || st != 200 || json.Unmarshal(body, &info) != nil {
		t.Fatalf("GET /%s: status %d, %v: %s", db, st, err, body)
	}
	return info.DocCount
}

// Promise: a registry backed up by replicating its five databases (the
// README's commands) restores into fresh databases: a new couchnpm on the
// restored prefix serves the same packuments (versions, dist-tags,
// deprecations, integrity) and byte-identical tarballs, the real npm
// installs from it, and the tokens issued before the backup still work
// there (for publishing too).
func TestBackupReplicateRestore(t *testing.T) {
	t.Parallel()
	src := startRegistry(t, registryOpts{})
	alice := newNPMUser(t, src, "alice")
	aliceName := src.user("alice")
	alice.mustLogin(aliceName, "Pw-alice-"+randomHex(4), "alice@example.com")
	alice.mustRunIn(writePackage(t, "keepsafe", "1.0.0", "keepsafe-1.0.0"), "publish")
	alice.mustRunIn(writePackage(t, "keepsafe", "1.1.0", "keepsafe-1.1.0"), "publish")
	alice.mustRunIn("", "dist-tag", "add", "keepsafe@1.0.0", "stable")
	alice.mustRunIn("", "deprecate", "keepsafe@1.0.0", "use 1.1")
	tok := alice.token()
	raw := markedTarball(t, "keepsafe-raw", "2.0.0", "raw")
	if h := src.do("PUT", "/keepsafe-raw", tok, publishBodyWith(src, "keepsafe-raw", "2.0.0", raw)); !is2xx(h.Status) {
		t.Fatalf("raw publish: %s", h)
	}

	// Back up: replicate every database of the registry into a new prefix,
	// and this test's account out of _users (shared by every registry on
	// this CouchDB, so only its document: a real backup copies all of it).
	dst := newPrefix()
	if !suite.ownCouch {
		t.Cleanup(func() { dropDatabases(t, dst) })
	}
	var copied []string
	for _, sfx := range backupSuffixes {
		n := replicate(t, src.Prefix+sfx, dst+sfx, nil)
		if a, b := docCount(t, src.Prefix+sfx), docCount(t, dst+sfx); a != b {
			t.Errorf("%s has %d documents, its copy %s has %d", src.Prefix+sfx, a, dst+sfx, b)
		}
		copied = append(copied, fmt.Sprintf("%s→%s (%d docs)", src.Prefix+sfx, dst+sfx, n))
	}
	replicate(t, "_users", dst+"-users", map[string]any{"doc_ids": []string{"org.couchdb.user:" + aliceName}})
	st, body, err := couchDo("GET", "/"+dst+"-users/"+urlPathEscape("org.couchdb.user:"+aliceName), nil, true)
	if err != nil || st != 200 || !strings.Contains(string(body), `"derived_key"`) {
		t.Errorf("the _users backup lacks %s with its password hash: status %d, %v", aliceName, st, err)
	}
	t.Logf("replicated %s; _users document of %s → %s-users", strings.Join(copied, ", "), aliceName, dst)

	// Restore: a new couchnpm on the copies.
	restored := startRegistry(t, registryOpts{Prefix: dst})
	restored.addSecret(tok)

	// Same packuments, same tarballs.
	for _, name := range []string{"keepsafe", "keepsafe-raw"} {
		a, b := getPackument(t, src, name, ""), getPackument(t, restored, name, "")
		checkPackumentValid(t, b, "restored "+name)
		if !reflect.DeepEqual(a.DistTags, b.DistTags) || !reflect.DeepEqual(a.Time, b.Time) || len(a.Versions) != len(b.Versions) {
			t.Errorf("restored %s differs: dist-tags %v vs %v, time %v vs %v, %d vs %d versions", name, b.DistTags, a.DistTags, b.Time, a.Time, len(b.Versions), len(a.Versions))
		}
		for v := range a.Versions {
			ma, mb := a.manifest(v), b.manifest(v)
			if ma.Deprecated != mb.Deprecated || ma.Dist.Integrity != mb.Dist.Integrity || ma.Dist.Shasum != mb.Dist.Shasum {
				t.Errorf("restored %s@%s: deprecated %q integrity %s, the original %q %s", name, v, mb.Deprecated, mb.Dist.Integrity, ma.Deprecated, ma.Dist.Integrity)
			}
			checkTarball(t, restored, b, name, v, nil)
		}
	}
	if p := getPackument(t, restored, "keepsafe", ""); p.DistTags["stable"] != "1.0.0" || p.manifest("1.0.0").Deprecated != "use 1.1" {
		t.Errorf("restored keepsafe: dist-tags %v, 1.0.0 deprecated %q", p.DistTags, p.manifest("1.0.0").Deprecated)
	}

	// The token issued before the backup works on the restored registry.
	if h := restored.do("GET", "/-/whoami", tok, nil); h.Status != 200 || !strings.Contains(string(h.Body), aliceName) {
		t.Fatalf("GET /-/whoami with the old token on the restored registry: %s", h)
	}
	npmUser := newNPMUser(t, restored, "alice-restored")
	rc := fmt.Sprintf("//127.0.0.1:%d/:_authToken=%s\n", restored.Port, tok)
	if err := os.WriteFile(npmUser.userconfig, []byte(rc), 0o600); err != nil {
		t.Fatal(err)
	}
	if res := npmUser.mustRunIn("", "whoami"); strings.TrimSpace(res.Stdout) != aliceName {
		t.Errorf("npm whoami on the restored registry: %q, want %s", strings.TrimSpace(res.Stdout), aliceName)
	}
	proj := writeProject(t, map[string]string{"keepsafe": "^1.0.0", "keepsafe-raw": "2.0.0"})
	npmUser.mustRunIn(proj, "install")
	mustRequire(t, proj, "keepsafe", "1.1.0", "keepsafe-1.1.0")
	if v, err := requireInProject(t, proj, "keepsafe-raw"); err != nil || v["marker"] != "raw" {
		t.Errorf("require(keepsafe-raw) from the restored registry: %v, %v", v, err)
	}
	// Ownership survived: the old token publishes a new version there.
	npmUser.mustRunIn(writePackage(t, "keepsafe", "1.2.0", "keepsafe-1.2.0"), "publish")
	if p := getPackument(t, src, "keepsafe", ""); p.Versions["1.2.0"] != nil {
		t.Errorf("the publish to the restored registry reached the original databases")
	}
}
