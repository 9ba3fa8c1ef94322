//go:build integration

package integration

import (
	"encoding/json"
	"strings"
	"testing"
)

// Scenario a: login/adduser through the real npm CLI (legacy flow), whoami, logout.
func TestLoginWhoamiLogout(t *testing.T) {
	t.Parallel()
	reg := startRegistry(t, registryOpts{})
	const password = "Pw-alice-7f3c9a1e"

	alice := newNPMUser(t, reg, "alice")
	var againTok string // token of alice's second login
	t.Run("adduser new user", func(t *testing.T) {
		res := alice.adduser(reg.user("alice"), password, "alice@example.com")
		if res.Err != nil {
			t.Fatalf("%s", res)
		}
		if alice.token() == "" {
			t.Fatalf("no _authToken for the registry in the userconfig after npm adduser:\n%s", res)
		}
	})

	t.Run("whoami", func(t *testing.T) {
		if alice.token() == "" {
			t.Skip("not logged in")
		}
		res := alice.mustRunIn("", "whoami")
		if got := strings.TrimSpace(res.Stdout); got != reg.user("alice") {
			t.Fatalf("npm whoami printed %q, want %s\n%s", got, reg.user("alice"), res)
		}
		// Raw API too.
		h := reg.do("GET", "/-/whoami", alice.token(), nil)
		var who struct{ Username string }
		if h.Status != 200 || json.Unmarshal(h.Body, &who) != nil || who.Username != reg.user("alice") {
			t.Fatalf("GET /-/whoami with alice's token: %s, want 200 {\"username\":\"alice\"}", h)
		}
	})

	t.Run("npm login as a new user", func(t *testing.T) {
		// npm 11's `npm login` sends no email, and sign-up requires one: the
		// registry answers 400 "an e-mail address is required", which npm's
		// login rewrites as "There is no user with the username"; npm
		// adduser creates the account.
		bob := newNPMUser(t, reg, "bob")
		res := bob.login(reg.user("bob"), "Pw-bob-51c0d2e4")
		if res.Err == nil || !strings.Contains(res.Stderr, "There is no user with the username") {
			t.Fatalf("npm login of a new name without an e-mail: want npm's E400 \"no user\" failure\n%s", res)
		}
		h := reg.do("PUT", "/-/user/org.couchdb.user:"+reg.user("bob"), "", mustJSON(map[string]string{"name": reg.user("bob"), "password": "Pw-bob-51c0d2e4"}))
		if h.Status != 400 || !strings.Contains(string(h.Body), "e-mail address is required") {
			t.Errorf("sign-up PUT without an e-mail: %s, want 400 naming the e-mail", h)
		}
		bob.mustLogin(reg.user("bob"), "Pw-bob-51c0d2e4", "bob@example.com")
		if res := bob.mustRunIn("", "whoami"); strings.TrimSpace(res.Stdout) != reg.user("bob") {
			t.Fatalf("npm whoami: %s", res)
		}
	})

	t.Run("login existing user", func(t *testing.T) {
		again := newNPMUser(t, reg, "alice-again")
		res := again.login(reg.user("alice"), password)
		if res.Err != nil {
			t.Fatalf("second npm login with the right password failed:\n%s", res)
		}
		tok := again.token()
		if tok == "" {
			t.Fatalf("no _authToken after the second login:\n%s", res)
		}
		againTok = tok
		if tok == alice.token() {
			t.Logf("note: the second login returned the same token as the first")
		}
		if res := again.mustRunIn("", "whoami"); strings.TrimSpace(res.Stdout) != reg.user("alice") {
			t.Fatalf("npm whoami after the second login: %s", res)
		}
	})

	t.Run("wrong password", func(t *testing.T) {
		mallory := newNPMUser(t, reg, "mallory")
		reg.addSecret("Wrong-pw-0b9e1d77")
		res := mallory.answerPrompts([]string{"login", "--auth-type=legacy"},
			[]string{"Username:", "Password:"}, []string{reg.user("alice"), "Wrong-pw-0b9e1d77"})
		if res.Err == nil {
			t.Fatalf("npm login with a wrong password succeeded:\n%s", res)
		}
		if tok := mallory.token(); tok != "" {
			reg.addSecret(tok)
			t.Fatalf("npm login with a wrong password stored a token:\n%s", res)
		}
		code := npmErrorCode(res.Stderr)
		if code != "E401" && code != "E403" && code != "E409" {
			t.Errorf("npm login with a wrong password: error code %q, want E401 (or E403/E409)\n%s", code, res)
		}
	})

	t.Run("logout", func(t *testing.T) {
		tok := alice.token()
		if tok == "" {
			t.Skip("not logged in")
		}
		res := alice.runIn("", "logout")
		if res.Err != nil {
			t.Fatalf("%s", res)
		}
		if alice.token() != "" {
			t.Fatalf("npm logout left the token in the userconfig")
		}
		if res := alice.runIn("", "whoami"); res.Err == nil {
			t.Fatalf("npm whoami succeeded after npm logout:\n%s", res)
		}
		if h := reg.do("GET", "/-/whoami", tok, nil); h.Status != 401 {
			t.Fatalf("GET /-/whoami with the logged-out token: %s, want 401", h)
		}
		if h := reg.do("GET", "/-/whoami", "", nil); h.Status != 401 {
			t.Errorf("GET /-/whoami without a token: %s, want 401", h)
		}
		// The other session of the same user (second login) is unaffected.
		if againTok != "" && againTok != tok {
			if h := reg.do("GET", "/-/whoami", againTok, nil); h.Status != 200 {
				t.Errorf("GET /-/whoami with the token of alice's other session after logout: %s, want 200", h)
			}
		}
	})
}
