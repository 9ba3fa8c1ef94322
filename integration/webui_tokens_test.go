//go:build integration

package integration

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// The tokens page in Chromium: log in, create a token (the password asked
// again), see it listed, use it with the real npm CLI, revoke it and npm
// no longer gets in; a token limited to other addresses is refused; with
// two-factor authentication on, creating a token needs a one-time
// password too, and so does logging in to the web UI.
func TestWebUITokensInBrowser(t *testing.T) {
	t.Parallel()
	br := newBrowser(t)
	reg := startRegistry(t, registryOpts{})
	user := reg.user("uitok") // an account of this run only: 2FA is turned on below
	const password = "Pw-ui-tokens-4f3e2d1c"
	owner := newNPMUser(t, reg, user)
	owner.mustLogin(user, password, user+"@example.com")
	if err := br.do(chromedp.EmulateViewport(1280, 900)); err != nil {
		t.Fatal(err)
	}
	text := func(sel string) string {
		t.Helper()
		s, err := get(br, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return strings.TrimSpace(s)
	}
	stranger := newNPMUser(t, reg, "stranger") // a clean npm: only the token given
	whoami := func(token string) npmResult {
		t.Helper()
		return stranger.runIn("", "whoami", fmt.Sprintf("--//127.0.0.1:%d/:_authToken=%s", reg.Port, token))
	}
	create := func(name, cidr, pw, otp string) {
		t.Helper()
		steps := []chromedp.Action[chromedp.Void]{chromedp.Navigate(reg.URL + "/-/web/tokens"), chromedp.WaitVisible(chromedp.ID("token-create")),
			chromedp.SendKeys(chromedp.ID("token-name"), name), chromedp.SendKeys(chromedp.ID("token-password"), pw)}
		if cidr != "" {
			steps = append(steps, chromedp.SendKeys(chromedp.ID("token-cidr"), cidr))
		}
		if otp != "" {
			steps = append(steps, chromedp.SendKeys(chromedp.ID("token-otp"), otp))
		}
		steps = append(steps, chromedp.Click(chromedp.ID("token-create")), chromedp.WaitVisible(chromedp.CSS("#new-token, #token-error")))
		if err := br.do(steps...); err != nil {
			t.Fatalf("create a token: %v", err)
		}
	}
	newToken := func() string {
		t.Helper()
		tok := text("#new-token")
		if !strings.HasPrefix(tok, "cnpm_") {
			t.Fatalf("no new token on the page: %q (error %q)", tok, text("body"))
		}
		reg.addSecret(tok)
		return tok
	}

	// Anonymous: the page sends the visitor to log in, and back.
	if err := br.do(chromedp.Navigate(reg.URL+"/-/web/tokens"), chromedp.WaitVisible(chromedp.ID("password")),
		chromedp.SendKeys(chromedp.ID("name"), user), chromedp.SendKeys(chromedp.ID("password"), password),
		chromedp.Click(chromedp.ID("submit")), chromedp.WaitVisible(chromedp.ID("tokens"))); err != nil {
		t.Fatalf("log in through the tokens page: %v", err)
	}
	if got := text("#tokens"); !strings.Contains(got, "web session") || !strings.Contains(got, "this session") || !strings.Contains(got, "npm login") {
		t.Errorf("the list lacks the session or npm's login token: %q", got)
	}

	// A wrong password creates nothing.
	create("nope", "", "Wrong-password-1", "")
	if got := text("#token-error"); !strings.Contains(got, "incorrect") {
		t.Errorf("wrong password: %q", got)
	}
	create("ci-deploy", "", password, "")
	tok := newToken()
	key := sha256.Sum256([]byte(tok))
	short := hex.EncodeToString(key[:])[:6]
	if got := text("#tokens"); !strings.Contains(got, short) || !strings.Contains(got, "ci-deploy") || !strings.Contains(got, "read and publish") {
		t.Errorf("the new token (%s) is not listed: %q", short, got)
	}
	shootPage(t, br, "tokens")
	if res := whoami(tok); res.Err != nil || strings.TrimSpace(res.Stdout) != user {
		t.Fatalf("npm whoami with the new token: %s", res)
	}
	// The page shows the secret once: reloaded, it is gone.
	if body, _ := get(br, chromedp.Evaluate[string](`fetch("/-/web/tokens").then(r => r.text())`, chromedp.EvalAwaitPromise)); strings.Contains(body, tok) || !strings.Contains(body, short) {
		t.Errorf("the tokens page shows the secret again (or not the key): %v", strings.Contains(body, tok))
	}

	// A token allowed only from elsewhere is refused here.
	create("far-away", "10.99.0.0/16", password, "")
	far := newToken()
	if res := whoami(far); res.Err == nil {
		t.Errorf("a token limited to 10.99.0.0/16 works from 127.0.0.1: %s", res)
	}

	// Revoke: the confirmation asks for the password; npm is then refused.
	if err := br.do(chromedp.Navigate(reg.URL+"/-/web/tokens"), chromedp.Click(chromedp.CSS(`a[aria-label="Revoke token `+short+`"]`)),
		chromedp.WaitVisible(chromedp.ID("revoke-password")), chromedp.SendKeys(chromedp.ID("revoke-password"), password),
		chromedp.Click(chromedp.ID("revoke-confirm")), chromedp.WaitVisible(chromedp.ID("revoked"))); err != nil {
		t.Fatalf("revoke: %v", err)
	}
	if got := text("#tokens"); strings.Contains(got, "ci-deploy") {
		t.Errorf("the revoked token is still listed: %q", got)
	}
	if res := whoami(tok); res.Err == nil || !strings.Contains(res.Stderr, "E401") {
		t.Errorf("npm whoami with the revoked token: %s", res)
	}

	// Two-factor authentication on: the page asks for a one-time password.
	auth, _ := enable2FA(t, owner, "auth-only", password)
	create("with-otp", "", password, "")
	if got := text("#token-error"); !strings.Contains(got, "one-time password") {
		t.Errorf("creating a token without the one-time password: %q", got)
	}
	create("with-otp", "", password, auth.fresh())
	if res := whoami(newToken()); res.Err != nil || strings.TrimSpace(res.Stdout) != user {
		t.Errorf("npm whoami with the token created with a one-time password: %s", res)
	}
	// And logging in to the web UI asks for one as well.
	if err := br.do(chromedp.Navigate(reg.URL+"/-/web/logout"), chromedp.Click(chromedp.ID("logout")), chromedp.WaitVisible(chromedp.ID("hq")),
		chromedp.Navigate(reg.URL+"/-/web/login?next=/-/web/tokens"), chromedp.WaitVisible(chromedp.ID("password")),
		chromedp.SendKeys(chromedp.ID("name"), user), chromedp.SendKeys(chromedp.ID("password"), password),
		chromedp.Click(chromedp.ID("submit")), chromedp.WaitVisible(chromedp.ID("otp"))); err != nil {
		t.Fatalf("log in without a one-time password: %v", err)
	}
	if got := text("#login-error"); !strings.Contains(got, "one-time password") {
		t.Errorf("web login without the one-time password: %q", got)
	}
	if err := br.do(chromedp.SendKeys(chromedp.ID("password"), password), chromedp.SendKeys(chromedp.ID("otp"), auth.fresh()),
		chromedp.Click(chromedp.ID("submit")), chromedp.WaitVisible(chromedp.ID("tokens"))); err != nil {
		t.Fatalf("log in with a one-time password: %v", err)
	}
	if v := br.cspViolations(); len(v) > 0 {
		t.Errorf("Content-Security-Policy violations: %v", v)
	}
}
