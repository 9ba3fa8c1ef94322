//go:build integration

package integration

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// TestUserSetPassword: an operator's `couchnpm user set-password` (the
// password on stdin) applies the sign-up policy; afterwards the real npm
// logs in with the new password and not with the old one nor with a
// password imported for the account; the account's web session ends,
// its npm token keeps working, and the audit log has the change without
// the password.
func TestUserSetPassword(t *testing.T) {
	t.Parallel()
	reg := startRegistry(t, registryOpts{})
	name := reg.user("gina")
	const oldPW, importedPW, newPW = "Gina-pw-old-4k2m", "Gina-pw-imported-7q", "Gina-pw-new-9x3v"
	reg.addSecret(importedPW)
	reg.addSecret(newPW)
	u := newNPMUser(t, reg, "gina")
	u.mustLogin(name, oldPW, "gina@example.com")

	// The account also holds a hash imported from another registry (as
	// couchnpm import leaves it until the first login) ...
	hash, err := bcrypt.GenerateFromPassword([]byte(importedPW), 10)
	if err != nil {
		t.Fatal(err)
	}
	doc := userDoc(t, name)
	doc["couchnpm_imported_hash"] = string(hash)
	body, _ := json.Marshal(doc)
	if st, b, err := couchDo("PUT", "/_users/"+url.PathEscape("org.couchdb.user:"+name), body, true); err != nil || st != 201 {
		t.Fatalf("adding an imported hash: %d %v %s", st, err, b)
	}
	// ... and a web UI session (a read-only token named so).
	session := "cnpm_" + randomHex(32)
	sum := sha256.Sum256([]byte(session))
	if st, b, err := couchDo("PUT", "/"+urlPathEscape(reg.Prefix+"-tokens")+"/"+hex.EncodeToString(sum[:]), mustJSON(map[string]any{
		"type": "token", "user": name, "created": time.Now().UTC(), "readonly": true, "name": "web session",
	}), true); err != nil || st != 201 {
		t.Fatalf("inserting a web session: %d %v %s", st, err, b)
	}
	reg.addSecret(session)
	if h := reg.do("GET", "/-/whoami", session, nil); h.Status != 200 {
		t.Fatalf("the web session before set-password: %s", h)
	}

	// A pipe is not read without --password-stdin; the policy holds.
	if out, err := reg.couchnpmUser(newPW+"\n", "set-password", name); err == nil || !strings.Contains(out, "--password-stdin") {
		t.Errorf("set-password from a pipe without --password-stdin: %v\n%s", err, out)
	}
	if out, err := reg.couchnpmUser("short\n", "set-password", name, "--password-stdin"); err == nil || !strings.Contains(out, "too short") {
		t.Errorf("set-password with a short password: %v\n%s", err, out)
	}
	if out, err := reg.couchnpmUser(newPW+"\n", "set-password", reg.user("nobody"), "--password-stdin"); err == nil || !strings.Contains(out, "no user") {
		t.Errorf("set-password of an unknown account: %v\n%s", err, out)
	}
	out, err := reg.couchnpmUser(newPW+"\n", "set-password", name, "--password-stdin")
	if err != nil {
		t.Fatalf("couchnpm user set-password: %v\n%s", err, out)
	}
	wantLines(t, "set-password's output", out,
		"set the password of "+name,
		"dropped the password imported for it: the old password no longer logs in",
		"ended 1 web sessions",
		"npm tokens stay valid (--revoke-tokens revokes them, for a leaked password)")
	if strings.Contains(out, newPW) {
		t.Errorf("set-password printed the password")
	}
	if _, ok := userDoc(t, name)["couchnpm_imported_hash"]; ok {
		t.Errorf("the imported hash is still in the account")
	}

	for _, pw := range []string{oldPW, importedPW} {
		res := newNPMUser(t, reg, "gina-old").login(name, pw)
		if res.Err == nil || npmErrorCode(res.Stderr) != "E401" {
			t.Errorf("npm login with a password from before set-password: %s", res)
		}
	}
	newNPMUser(t, reg, "gina-new").mustLogin(name, newPW, "")
	if res := u.runIn("", "whoami"); res.Err != nil || strings.TrimSpace(res.Stdout) != name {
		t.Errorf("npm whoami with the token from before set-password: %s", res)
	}
	// Heard through the feeds, within the authentication cache's bound.
	eventually(t, 10*time.Second, "the web session after set-password refused", func() (bool, string) {
		h := reg.do("GET", "/-/whoami", session, nil)
		return h.Status == 401, h.String()
	})

	// --revoke-tokens: for a leaked password.
	reg.addSecret(oldPW + "-2")
	out, err = reg.couchnpmUser(oldPW+"-2\n", "set-password", name, "--password-stdin", "--revoke-tokens")
	if err != nil || !strings.Contains(out, "revoked 2 npm tokens") { // u's and gina-new's
		t.Fatalf("couchnpm user set-password --revoke-tokens: %v\n%s", err, out)
	}
	eventually(t, 10*time.Second, "the token after --revoke-tokens refused", func() (bool, string) {
		h := reg.do("GET", "/-/whoami", u.token(), nil)
		return h.Status == 401, h.String()
	})
	if res := u.runIn("", "whoami"); res.Err == nil {
		t.Errorf("npm whoami after --revoke-tokens succeeded: %s", res)
	}

	var set []auditEntry
	for _, e := range auditEntries(t, reg) {
		if e.Action == "user.set-password" {
			set = append(set, e)
		}
		if strings.Contains(e.Reason+e.Target, newPW) {
			t.Errorf("an audit entry holds the password: %+v", e)
		}
	}
	if len(set) != 4 || set[0].Outcome != "refused" || set[2].Outcome != "ok" || set[2].Target != name {
		t.Errorf("audit entries of set-password: %+v, want refused, refused, ok, ok", set)
	}
}
