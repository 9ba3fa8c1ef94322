//go:build integration

package integration

import (
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// A Verdaccio 5 with its default configuration hashes with DES crypt:
// npm adduser there, couchnpm import verdaccio, and the user logs in to
// couchnpm with the Verdaccio password through the real npm and
// publishes. With --refuse-weak-hashes the user is refused; an imported
// weak hash past its expiry no longer logs in until an import renews it.
func TestImportVerdaccioDefaultCrypt(t *testing.T) {
	reg := startRegistry(t, registryOpts{})
	vd := startVerdaccio(t, "") // no algorithm: Verdaccio 5 uses crypt

	carol, pw := reg.user("vd-crypt"), "Crypt-pw-"+randomHex(4)
	dave, davePW := reg.user("vd-late"), "Late-pw-"+randomHex(4)
	pub := newNPMUser(t, vd.registry, "carol-vd")
	pub.mustLogin(carol, pw, carol+"@example.com") // npm adduser into Verdaccio
	pub.publish("crypt-tool", "1.0.0")
	newNPMUser(t, vd.registry, "dave-vd").mustLogin(dave, davePW, dave+"@example.com")
	vd.stop()

	lines, err := os.ReadFile(filepath.Join(vd.dir, "htpasswd"))
	if err != nil {
		t.Fatal(err)
	}
	hashes := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^([^:\n]+):([^:\n]+)`).FindAllStringSubmatch(string(lines), -1) {
		hashes[m[1]] = m[2]
	}
	for _, u := range []string{carol, dave} {
		if len(hashes[u]) != 13 || strings.HasPrefix(hashes[u], "$") {
			t.Fatalf("Verdaccio's default htpasswd line of %s is no DES crypt (%d characters)", u, len(hashes[u]))
		}
		reg.addSecret(hashes[u]) // couchnpm's log must not hold it
	}
	storage := filepath.Join(vd.dir, "storage")
	noSecrets := func(what, out string) {
		t.Helper()
		for _, s := range []string{hashes[carol], hashes[dave], pw, davePW} {
			if strings.Contains(out, s) {
				t.Fatalf("%s printed a password or hash (%s…)", what, s[:3])
			}
		}
	}

	// --refuse-weak-hashes: the old behaviour.
	out, logs, code := importCLI(t, reg, "verdaccio", storage, "--config", vd.config, "--refuse-weak-hashes")
	if code != 1 {
		t.Fatalf("import --refuse-weak-hashes: exit %d, want 1\n%s\n%s", code, out, logs)
	}
	wantLines(t, "the refusing import's summary", out,
		"users: 0 copied, 0 skipped (already here), 2 refused",
		"refused user "+carol+": DES crypt is a weak hash kind and is not imported (--refuse-weak-hashes)",
		"refused user "+dave+": DES crypt is a weak hash kind")
	noSecrets("the refusing import", out+logs)
	if res := newNPMUser(t, reg, "carol-refused").login(carol, pw); res.Err == nil {
		t.Fatalf("a refused user logs in: %s", res)
	}

	// By default: imported, with the expiry given.
	out, logs, code = importCLI(t, reg, "verdaccio", storage, "--config", vd.config, "--owner", carol, "--imported-hash-max-age", "30d")
	if code != 0 {
		t.Fatalf("import: exit %d\n%s\n%s", code, out, logs)
	}
	until := time.Now().Add(30 * 24 * time.Hour).UTC().Format("2006-01-02T")
	wantLines(t, "the import's summary", out,
		"packages: 1 copied, 0 skipped (already here), 0 refused",
		"users: 2 copied, 0 skipped (already here), 0 refused",
		"user "+carol+": DES crypt hash imported; CouchDB's PBKDF2 replaces it at the first login; a weak kind: it logs in until "+until,
		"user "+dave+": DES crypt hash imported")
	noSecrets("the import", out+logs)

	// The Verdaccio password logs in through npm (a wrong one does not),
	// becomes CouchDB's own, and publishes.
	me := newNPMUser(t, reg, "carol")
	if res := me.login(carol, "Wrong-pw-1234"); res.Err == nil {
		t.Fatalf("login with a wrong password succeeded: %s", res)
	}
	me.mustLogin(carol, pw, "")
	me.publish("crypt-tool", "1.1.0")
	var versions []string
	parseJSON(t, me.mustRunIn("", "view", "crypt-tool", "versions", "--json"), &versions)
	if strings.Join(versions, ",") != "1.0.0,1.1.0" {
		t.Errorf("npm view versions: %v", versions)
	}
	doc := userDoc(t, carol)
	if _, ok := doc["couchnpm_imported_hash"]; ok || doc["password_scheme"] != "pbkdf2" {
		t.Errorf("after the first login, the account still holds the imported hash, or CouchDB did not hash the password (scheme %v)", doc["password_scheme"])
	}
	newNPMUser(t, reg, "carol-again").mustLogin(carol, pw, "") // CouchDB's check now

	// Past its expiry, dave's imported hash logs nobody in: a 401 as for
	// a wrong password (the unit test checks the message is the same).
	doc = userDoc(t, dave)
	if doc["couchnpm_imported_hash"] != hashes[dave] || doc["couchnpm_imported_hash_expires"] == nil {
		t.Fatalf("dave's account holds no imported hash with an expiry")
	}
	doc["couchnpm_imported_hash_expires"] = time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)
	body, _ := json.Marshal(doc)
	if st, b, err := couchDo("PUT", "/_users/"+url.PathEscape("org.couchdb.user:"+dave), body, true); err != nil || st != 201 {
		t.Fatalf("expiring dave's hash: %d %v %s", st, err, b)
	}
	res := newNPMUser(t, reg, "dave").login(dave, davePW)
	if res.Err == nil {
		t.Fatalf("an expired imported hash logged in: %s", res)
	}
	if npmErrorCode(res.Stderr) != "E401" {
		t.Errorf("npm login with an expired hash: %s", res)
	}

	// The operator's remedy: import again. dave never logged in here, so
	// his hash gets a new expiry; carol's account is hers now: skipped.
	out, logs, code = importCLI(t, reg, "verdaccio", storage, "--config", vd.config, "--owner", carol)
	if code != 0 {
		t.Fatalf("second import: exit %d\n%s\n%s", code, out, logs)
	}
	wantLines(t, "the second import's summary", out,
		"users: 0 copied, 1 skipped (already here), 0 refused, 1 renewed",
		"user "+dave+": DES crypt hash imported anew")
	noSecrets("the second import", out+logs)
	newNPMUser(t, reg, "dave-renewed").mustLogin(dave, davePW, "")
	newNPMUser(t, reg, "carol-third").mustLogin(carol, pw, "")
}

// userDoc reads an account's _users document as the CouchDB admin.
func userDoc(t *testing.T, name string) map[string]any {
	t.Helper()
	st, body, err := couchDo("GET", "/_users/"+url.PathEscape("org.couchdb.user:"+name), nil, true)
	var doc map[string]any
	if err != nil || st != 200 || json.Unmarshal(body, &doc) != nil {
		t.Fatalf("_users document of %s: %d %v", name, st, err)
	}
	return doc
}
