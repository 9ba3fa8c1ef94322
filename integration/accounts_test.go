//go:build integration

package integration

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Account policy (issue 9, point 2): the password rules and the sign-up
// settings as npm shows them, the operators' `couchnpm user` commands, and
// login limits that a stranger cannot turn into a lock-out.

// couchnpmUser runs `couchnpm user args...` against reg's databases, with
// stdin as its input; it returns the combined output and the error.
func (r *registry) couchnpmUser(stdin string, args ...string) (string, error) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	args = append(append([]string{"user"}, args...), "--db-prefix", r.Prefix)
	cmd := exec.CommandContext(ctx, suite.bin, args...)
	cmd.Env = append(envWithout(cmd.Environ(), "COUCHDB_", "COUCHNPM_"),
		"COUCHDB_URL="+suite.couchURL,
		"COUCHDB_USER="+suite.couchUser,
		"COUCHDB_PASSWORD="+suite.couchPass,
	)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// failsWith checks that an npm command failed and that npm's output shows
// the registry's message.
func failsWith(t *testing.T, res npmResult, what, message string) {
	t.Helper()
	if res.Err == nil {
		t.Errorf("%s succeeded, want a failure saying %q\n%s", what, message, res)
		return
	}
	if !strings.Contains(res.Stderr+res.Stdout, message) {
		t.Errorf("%s: npm's output lacks %q\n%s", what, message, res)
	}
}

// TestAccountsSignupPolicyNPM: npm adduser with a weak password fails and
// npm prints why; a good password signs up. A raw sign-up without an
// e-mail and the web login form's sign-up follow the same rules.
func TestAccountsSignupPolicyNPM(t *testing.T) {
	t.Parallel()
	reg := startRegistry(t, registryOpts{})
	name := reg.user("carolpolicy")

	weak := []struct{ what, password, message string }{
		{"a short password", "Short-1", "the password is too short (7 characters): use at least 10"},
		{"the user name as password", strings.ToUpper(name), "the password must not be the user name"},
		{"a password containing the user name", "x" + name + "!", "the password must not contain the user name"},
		{"a common password", "Password123!", "one of the most common passwords"},
	}
	for _, w := range weak {
		u := newNPMUser(t, reg, "carol")
		res := u.adduser(name, w.password, "carol@example.com")
		failsWith(t, res, "npm adduser with "+w.what, w.message)
		if npmErrorCode(res.Stderr) != "E400" {
			t.Errorf("npm adduser with %s: error code %q, want E400", w.what, npmErrorCode(res.Stderr))
		}
		if u.token() != "" {
			t.Errorf("npm adduser with %s stored a token", w.what)
		}
	}

	// A raw sign-up without an e-mail (what npm login sends).
	h := reg.do("PUT", "/-/user/org.couchdb.user:"+name, "", mustJSON(map[string]string{"name": name, "password": "Good-pw-73hq1"}))
	if h.Status != 400 || !bytes.Contains(h.Body, []byte("e-mail address is required")) {
		t.Errorf("sign-up PUT without an e-mail: %s, want 400 naming the e-mail", h)
	}

	// The web login form's sign-up (no browser needed to send a form).
	h = reg.do("POST", "/-/v1/login", "", []byte(`{"create":true}`))
	var start struct{ LoginURL string }
	if h.Status != 200 || json.Unmarshal(h.Body, &start) != nil || !strings.HasPrefix(start.LoginURL, reg.URL) {
		t.Fatalf("POST /-/v1/login: %s", h)
	}
	form := url.Values{"name": {name}, "password": {"qwertyuiop"}, "email": {"carol@example.com"}, "create": {"1"}}
	st, body := postForm(t, start.LoginURL, form)
	if st != 400 || !strings.Contains(body, "one of the most common passwords") {
		t.Errorf("web form sign-up with a common password: status %d, want 400 with the reason: %s", st, tail(body, 1500))
	}
	form.Set("password", "Good-pw-73hq1")
	form.Del("email")
	if st, body := postForm(t, start.LoginURL, form); st != 400 || !strings.Contains(body, "e-mail address is required") {
		t.Errorf("web form sign-up without an e-mail: status %d: %s", st, tail(body, 1500))
	}

	// A good password signs up, through npm.
	u := newNPMUser(t, reg, "carol")
	u.mustLogin(name, "Good-pw-73hq1", "carol@example.com")
	if res := u.mustRunIn("", "whoami"); strings.TrimSpace(res.Stdout) != name {
		t.Errorf("npm whoami after sign-up: %s", res)
	}
}

// postForm sends the login page's form like a browser on the same site.
func postForm(t *testing.T, pageURL string, form url.Values) (int, string) {
	t.Helper()
	req, err := http.NewRequest("POST", pageURL, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestAccountsSignupOffAndDomains: with sign-up off (the default) npm
// adduser is refused with a message, and an operator's `couchnpm user add`
// account logs in with npm; with --signup-email-domains only those domains
// sign up.
func TestAccountsSignupOffAndDomains(t *testing.T) {
	t.Parallel()
	t.Run("sign-up off", func(t *testing.T) {
		t.Parallel()
		reg := startRegistry(t, registryOpts{ExtraArgs: []string{"--allow-signup=false"}})
		name := reg.user("dora")
		const password = "Dora-pw-x81kq0"
		u := newNPMUser(t, reg, "dora")
		res := u.adduser(name, password, "dora@example.com")
		failsWith(t, res, "npm adduser with sign-up off", "sign-up is disabled on this registry")
		if code := npmErrorCode(res.Stderr); code != "E403" {
			t.Errorf("npm adduser with sign-up off: error code %q, want E403", code)
		}

		// The operator adds the account; the policy holds for operators too.
		if out, err := reg.couchnpmUser("short\n", "add", name, "--email", "dora@example.com"); err == nil || !strings.Contains(out, "too short") {
			t.Errorf("couchnpm user add with a short password: %v\n%s", err, out)
		}
		reg.addSecret(password)
		if out, err := reg.couchnpmUser(password+"\n", "add", name, "--email", "dora@example.com"); err != nil {
			t.Fatalf("couchnpm user add: %v\n%s", err, out)
		}
		u.mustLogin(name, password, "")
		if res := u.mustRunIn("", "whoami"); strings.TrimSpace(res.Stdout) != name {
			t.Errorf("npm whoami after an operator's add: %s", res)
		}
		out, err := reg.couchnpmUser("", "list", "--json")
		var list []struct {
			Name     string
			Email    string
			Disabled bool
		}
		if err != nil || json.Unmarshal([]byte(out), &list) != nil {
			t.Fatalf("couchnpm user list --json: %v\n%s", err, out)
		}
		found := false
		for _, l := range list {
			found = found || (l.Name == name && l.Email == "dora@example.com" && !l.Disabled)
		}
		if !found {
			t.Errorf("couchnpm user list --json lacks %s: %s", name, out)
		}
	})
	t.Run("e-mail domains", func(t *testing.T) {
		t.Parallel()
		reg := startRegistry(t, registryOpts{ExtraArgs: []string{"--signup-email-domains", "corp.example, example.com"}})
		name := reg.user("emil")
		u := newNPMUser(t, reg, "emil")
		res := u.adduser(name, "Emil-pw-55rt2z", "emil@evil.example")
		failsWith(t, res, "npm adduser from another domain", "sign-up is limited to e-mail addresses at corp.example, example.com")
		u.mustLogin(name, "Emil-pw-55rt2z", "emil@Corp.Example")
	})
}

// TestAccountsDisableRevokesTokens: `couchnpm user disable` revokes the
// user's tokens (npm whoami says 401) and stops npm login; a token that
// escaped the revocation is refused too; enable lets npm login again;
// delete revokes and keeps the name from being signed up again.
func TestAccountsDisableRevokesTokens(t *testing.T) {
	t.Parallel()
	reg := startRegistry(t, registryOpts{})
	name := reg.user("frank")
	const password = "Frank-pw-0z9y8x"
	u := newNPMUser(t, reg, "frank")
	u.mustLogin(name, password, "frank@example.com")
	other := newNPMUser(t, reg, "frank-laptop")
	other.mustLogin(name, password, "")
	bystander := newNPMUser(t, reg, "gina")
	bystander.mustLogin(reg.user("gina"), "Gina-pw-3k4l5m", "gina@example.com")
	tok := u.token()

	out, err := reg.couchnpmUser("", "disable", name)
	if err != nil || !strings.Contains(out, "revoked 2 tokens") {
		t.Fatalf("couchnpm user disable: %v\n%s", err, out)
	}
	// The command runs in its own process: the server's authentication
	// cache hears of it through the tokens and _users feeds, within its
	// staleness bound (3 s; README "Authentication cache").
	eventually(t, 10*time.Second, "the disabled user's token refused", func() (bool, string) {
		h := reg.do("GET", "/-/whoami", tok, nil)
		return h.Status == 401, h.String()
	})
	for _, who := range []*npmUser{u, other} {
		res := who.runIn("", "whoami")
		if res.Err == nil || npmErrorCode(res.Stderr) != "E401" {
			t.Errorf("npm whoami with a disabled user's token: want E401\n%s", res)
		}
	}
	if res := bystander.runIn("", "whoami"); res.Err != nil {
		t.Errorf("another user's token stopped working: %s", res)
	}
	again := newNPMUser(t, reg, "frank-again")
	failsWith(t, again.login(name, password), "npm login of a disabled user", "is disabled; ask an administrator")

	// A token that escaped the revocation (issued by a login in flight
	// while it ran) is refused on use: insert one straight into CouchDB.
	late := "cnpm_" + randomHex(32)
	sum := sha256.Sum256([]byte(late))
	key := hex.EncodeToString(sum[:])
	if st, body, err := couchDo("PUT", "/"+urlPathEscape(reg.Prefix+"-tokens")+"/"+key, mustJSON(map[string]any{
		"type": "token", "user": name, "created": time.Now().UTC(), "readonly": false,
	}), true); err != nil || st != 201 {
		t.Fatalf("inserting a token: %d %v %s", st, err, body)
	}
	reg.addSecret(late)
	if h := reg.do("GET", "/-/whoami", late, nil); h.Status != 401 || !bytes.Contains(h.Body, []byte("disabled")) {
		t.Errorf("GET /-/whoami with a surviving token of a disabled user: %s, want 401 saying disabled", h)
	}

	if out, err := reg.couchnpmUser("", "enable", name); err != nil {
		t.Fatalf("couchnpm user enable: %v\n%s", err, out)
	}
	if h := reg.do("GET", "/-/whoami", tok, nil); h.Status != 401 {
		t.Errorf("a revoked token works again after enable: %s", h)
	}
	again.mustLogin(name, password, "")

	out, err = reg.couchnpmUser("", "delete", name)
	if err != nil || !strings.Contains(out, "revoked 2 tokens") { // the late one and again's
		t.Fatalf("couchnpm user delete: %v\n%s", err, out)
	}
	// Heard through the feeds, within the authentication cache's bound.
	eventually(t, 10*time.Second, "the deleted user's token refused", func() (bool, string) {
		h := reg.do("GET", "/-/whoami", again.token(), nil)
		return h.Status == 401, h.String()
	})
	if res := again.runIn("", "whoami"); res.Err == nil {
		t.Errorf("npm whoami after delete succeeded:\n%s", res)
	}
	// Nobody signs up under the deleted name (its packages still name it).
	mallory := newNPMUser(t, reg, "mallory")
	failsWith(t, mallory.adduser(name, "Mallory-pw-8u7y", "m@example.com"), "npm adduser of a deleted name", "is taken")
}

// TestAccountsBruteForceNoLockout: 100 wrong passwords for a user from one
// address (127.0.0.2), then more from three others, do not keep the real user,
// at 127.0.0.1, from logging in with npm. couchnpm takes the client
// address from the connection (no X-Forwarded-For), so the test sends the
// guesses from other loopback source addresses.
func TestAccountsBruteForceNoLockout(t *testing.T) {
	t.Parallel()
	reg := startRegistry(t, registryOpts{})
	name := reg.user("hana")
	const password = "Hana-pw-6t5r4e"
	u := newNPMUser(t, reg, "hana")
	u.mustLogin(name, password, "hana@example.com")

	guess := func(from string, i int) int {
		t.Helper()
		client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
			DialContext:       (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}).DialContext,
			DisableKeepAlives: true,
		}}
		body := mustJSON(map[string]string{"name": name, "password": fmt.Sprintf("Wrong-guess-%04d", i)})
		req, _ := http.NewRequest("PUT", reg.URL+"/-/user/org.couchdb.user:"+name, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("guess from %s: %v", from, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	counts := map[int]int{}
	for i := 0; i < 100; i++ {
		counts[guess("127.0.0.2", i)]++
	}
	// couchnpm stops an address after 10 failures for a name. CouchDB
	// (3.4+) stops it after 5 of its own: couchnpm passes the client's
	// address on (X-Forwarded-For, which CouchDB believes from loopback),
	// so CouchDB's lockout also hits only the guessing address, and
	// couchnpm answers it with 429. PouchDB Server has no lockout.
	if counts[401] < 5 || counts[401] > 10 || counts[401]+counts[429] != 100 {
		t.Errorf("100 guesses from one address: %v, want 5 (CouchDB) to 10 (couchnpm) 401s, then 429s", counts)
	}
	t.Logf("100 guesses from one address: %v", counts)
	res := newNPMUser(t, reg, "hana-2").login(name, password)
	if res.Err != nil {
		t.Fatalf("npm login of the real user after 100 guesses from another address:\n%s", res)
	}

	// Three more addresses, five guesses each, none over its own limit:
	// after the name's 10th failure each check waits 250ms, doubling (to
	// 4s), but nobody is refused, and the real user logs in.
	counts = map[int]int{}
	started := time.Now()
	for a := 3; a < 6; a++ {
		for i := 0; i < 5; i++ {
			counts[guess(fmt.Sprintf("127.0.0.%d", a), i)]++
		}
	}
	guessing := time.Since(started)
	if counts[401] != 15 {
		t.Errorf("guesses from three addresses: %v, want 15×401 (slowed, not refused)", counts)
	}
	started = time.Now()
	res = newNPMUser(t, reg, "hana-3").login(name, password)
	if res.Err != nil {
		t.Fatalf("npm login of the real user after guesses from three more addresses:\n%s", res)
	}
	t.Logf("15 distributed guesses took %v; the real user's npm login then took %v",
		guessing.Round(time.Millisecond), time.Since(started).Round(time.Millisecond))
	// 0.25 + 0.5 + 1 + 2 + 4 seconds of delays for guesses 11 to 15.
	if guessing < 7*time.Second {
		t.Errorf("15 distributed guesses took %v: the name's slow-down did not apply", guessing)
	}
}
