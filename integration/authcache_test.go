//go:build integration

package integration

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
	"time"
)

// authCacheLimit is how long a change made through one instance may take
// to reach another's auth cache in these tests: the staleness bound (3 s)
// plus the time npm itself takes to start and ask.
const authCacheLimit = 15 * time.Second

// TestAuthCacheAcrossInstances: two instances on one CouchDB, each with
// its auth cache warm for the same token. A revocation through one
// instance takes effect there at once and on the other within the
// staleness bound (the tokens feed); `couchnpm user disable`, run as its
// own process, reaches both through the feeds, and a token that escaped
// it is refused through _users' feed (the account entry was warm).
func TestAuthCacheAcrossInstances(t *testing.T) {
	t.Parallel()
	a := startRegistry(t, registryOpts{})
	b := startRegistry(t, registryOpts{Prefix: a.Prefix})
	for _, r := range []*registry{a, b} {
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(r.Stderr.String(), "auth cache on") {
			if time.Now().After(deadline) {
				t.Fatalf("no auth cache on an instance:\n%s", tail(r.Stderr.String(), 20))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	name := a.user("acalice")
	const password = "Pw-ac-alice-7h8j9k0l"
	alice := newNPMUser(t, a, "acalice")
	alice.mustLogin(name, password, "acalice@example.com")
	alice.publish("ac-cached", "1.0.0")

	// carriers hold one token for both instances, as two CI machines would
	carriers := func(label, token string) (onA, onB *npmUser) {
		t.Helper()
		onA, onB = withToken(t, a, label+"-a", token), withToken(t, b, label+"-b", token)
		for _, u := range []*npmUser{onA, onB, onA, onB} {
			u.mustRunIn("", "whoami") // warms the token and the account
		}
		return onA, onB
	}
	refusedAtOnce := func(u *npmUser, what string) {
		t.Helper()
		res := u.runIn("", "whoami")
		if res.Err == nil || npmErrorCode(res.Stderr) != "E401" {
			t.Fatalf("%s: npm whoami on the instance that made it: want E401 at once\n%s", what, res)
		}
	}
	refusedWithin := func(u *npmUser, what string) {
		t.Helper()
		start := time.Now()
		eventually(t, authCacheLimit, what, func() (bool, string) {
			res := u.runIn("", "whoami")
			return res.Err != nil && npmErrorCode(res.Stderr) == "E401", res.String()
		})
		t.Logf("%s: refused after %v", what, time.Since(start).Round(10*time.Millisecond))
	}

	// 1. npm logout on A
	onA, onB := carriers("ac-logout", alice.token())
	for _, u := range []*npmUser{onA, onB} {
		u.mustRunIn(t.TempDir(), "install", "ac-cached")
	}
	alice.mustRunIn("", "logout")
	refusedAtOnce(onA, "npm logout")
	refusedWithin(onB, "npm logout on A, token used on B")

	// 2. npm token revoke on A, from another session
	alice.mustLogin(name, password, "")
	revoked := withToken(t, a, "ac-session", alice.token())
	onA, onB = carriers("ac-revoke", alice.token())
	admin := newNPMUser(t, a, "acalice-admin")
	admin.mustLogin(name, password, "")
	sum := sha256.Sum256([]byte(revoked.token()))
	admin.mustRunIn("", "token", "revoke", hex.EncodeToString(sum[:])[:12])
	refusedAtOnce(onA, "npm token revoke")
	refusedWithin(onB, "npm token revoke on A, token used on B")
	if res := admin.runIn("", "whoami"); res.Err != nil {
		t.Fatalf("the revoking session's own token stopped working: %s", res)
	}

	// 3. couchnpm user disable (its own process: both instances learn of
	// it from the feeds)
	onA, onB = carriers("ac-disable", admin.token())
	if out, err := a.couchnpmUser("", "disable", name); err != nil {
		t.Fatalf("couchnpm user disable: %v\n%s", err, out)
	}
	refusedWithin(onA, "couchnpm user disable, token used on A")
	refusedWithin(onB, "couchnpm user disable, token used on B")
	// A token that escaped the revocation (written straight to CouchDB) is
	// refused: the account's warm entry was dropped by _users' feed.
	late := "cnpm_" + randomHex(32)
	lsum := sha256.Sum256([]byte(late))
	if st, body, err := couchDo("PUT", "/"+urlPathEscape(a.Prefix+"-tokens")+"/"+hex.EncodeToString(lsum[:]), mustJSON(map[string]any{
		"type": "token", "user": name, "created": time.Now().UTC(), "readonly": false,
	}), true); err != nil || st != 201 {
		t.Fatalf("inserting a token: %d %v %s", st, err, body)
	}
	for _, r := range []*registry{a, b} {
		r.addSecret(late)
		eventually(t, authCacheLimit, "a surviving token of a disabled user refused on "+r.URL, func() (bool, string) {
			h := r.do("GET", "/-/whoami", late, nil)
			return h.Status == 401 && strings.Contains(string(h.Body), "disabled"), h.String()
		})
	}
}
