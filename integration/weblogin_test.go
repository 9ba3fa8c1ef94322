//go:build integration

package integration

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// npm 11's default login is the web flow: `npm login` POSTs /-/v1/login,
// prints the loginUrl ("Login at:\n<url>"; with stdin or stdout not a
// terminal it does not offer to open a browser) and polls the doneUrl
// every Retry-After seconds until it answers a token. These tests run the
// real npm in the background while headless Chromium fills in the page.
// Chromium comes from Debian's chromium package; scripts/test.sh installs
// it when missing.

// chromiumPath finds Chromium: $CHROME_PATH, then the usual names. Without
// it the web login tests skip, except under CI or when scripts/test.sh
// tried to install it (COUCHNPM_IT_REQUIRE_CHROMIUM=1), where they fail.
func chromiumPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("CHROME_PATH"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" || os.Getenv("COUCHNPM_IT_REQUIRE_CHROMIUM") == "1" {
		t.Fatal("Chromium is not installed (scripts/test.sh installs Debian's chromium package)")
	}
	t.Skip("Chromium is not installed (apt-get install chromium, or set CHROME_PATH); skipping the web login tests")
	return ""
}

// browser is one headless Chromium with a fresh profile, stopped at cleanup.
// It records the console messages of its pages (CSP violations among
// them).
type browser struct {
	t   *testing.T
	ctx context.Context

	mu       sync.Mutex
	messages []string
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	path := chromiumPath(t)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelCtx(); cancelAlloc() })
	// The first Do starts the browser; its context (no timeout) is the
	// browser's lifetime.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting Chromium (%s): %v", path, err)
	}
	b := &browser{t: t, ctx: ctx}
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.messages = append(b.messages, fmt.Sprintf("%s: %s", m.Type, m.Text))
			b.mu.Unlock()
		}
	}()
	return b
}

// do runs browser actions, bounded by a minute.
func (b *browser) do(actions ...chromedp.Action[chromedp.Void]) error {
	ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
	defer cancel()
	return chromedp.Do(ctx, actions...)
}

// get runs one browser action that returns a value, bounded by a minute.
func get[T any](b *browser, a chromedp.Action[T]) (T, error) {
	ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
	defer cancel()
	return chromedp.Run(ctx, a)
}

// cspViolations are the recorded messages that report a refused resource.
func (b *browser) cspViolations() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, m := range b.messages {
		if strings.Contains(m, "Content Security Policy") || strings.Contains(m, "Refused to") {
			out = append(out, m)
		}
	}
	return out
}

// submitLogin opens the login page, fills in its form the way a person
// does (typing) and sends it. It returns the text of #user (logged in) or
// of #error (refused), whichever the answer page has.
func (b *browser) submitLogin(loginURL, name, password, email string, create bool) (user, errText string, err error) {
	steps := []chromedp.Action[chromedp.Void]{
		chromedp.Navigate(loginURL),
		chromedp.WaitVisible(chromedp.ID("password")),
		chromedp.Clear(chromedp.ID("name")),
		chromedp.SendKeys(chromedp.ID("name"), name),
		chromedp.SendKeys(chromedp.ID("password"), password),
	}
	if email != "" {
		steps = append(steps, chromedp.SendKeys(chromedp.ID("email"), email))
	}
	if err := b.do(steps...); err != nil {
		return "", "", err
	}
	checked, err := get(b, chromedp.Evaluate[bool](`document.getElementById("create")?.checked ?? false`))
	if err != nil {
		return "", "", err
	}
	if checked != create {
		if err := b.do(chromedp.Click(chromedp.ID("create"))); err != nil {
			return "", "", err
		}
	}
	if err := b.do(chromedp.Click(chromedp.ID("submit")), chromedp.WaitVisible(chromedp.CSS("#user, #error"))); err != nil {
		return "", "", err
	}
	n, err := get(b, chromedp.Evaluate[int](`document.querySelectorAll("#user").length`))
	if err != nil {
		return "", "", err
	}
	if n > 0 {
		user, err = get(b, chromedp.Text(chromedp.ID("user")))
	} else {
		errText, err = get(b, chromedp.Text(chromedp.ID("error")))
	}
	return user, errText, err
}

// bgNPM is an npm command running in the background.
type bgNPM struct {
	cmd    *exec.Cmd
	out    *promptWriter
	stderr *syncBuffer
	exited chan struct{}
	err    error
	cancel context.CancelFunc
}

// startNPM starts npm with args in the background, its stdin not a
// terminal (/dev/null); it is killed at cleanup if still running.
func (u *npmUser) startNPM(args ...string) *bgNPM {
	u.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), npmTimeout)
	b := &bgNPM{out: &promptWriter{notify: make(chan struct{}, 1)}, stderr: &syncBuffer{}, exited: make(chan struct{}), cancel: cancel}
	b.cmd = u.command(ctx, "", args...)
	b.cmd.Stdout = b.out
	b.cmd.Stderr = b.stderr
	if err := b.cmd.Start(); err != nil {
		cancel()
		u.t.Fatal(err)
	}
	go func() { b.err = b.cmd.Wait(); close(b.exited) }()
	u.t.Cleanup(func() { cancel(); <-b.exited })
	return b
}

var loginURLRE = regexp.MustCompile(`(?m)^(?:Login at|Create your account at):\s*\n(http\S+)`)

// loginURL waits for npm to print the loginUrl.
func (b *bgNPM) loginURL(t *testing.T) string {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		if m := loginURLRE.FindStringSubmatch(b.out.String()); m != nil {
			return m[1]
		}
		select {
		case <-b.out.notify:
		case <-b.exited:
			if m := loginURLRE.FindStringSubmatch(b.out.String()); m != nil {
				return m[1]
			}
			t.Fatalf("npm exited (%v) without printing a login URL\n%s", b.err, b)
		case <-deadline:
			t.Fatalf("npm printed no login URL within 30s\n%s", b)
		}
	}
}

// wait waits up to limit for npm to exit; false when it is still running.
func (b *bgNPM) wait(limit time.Duration) bool {
	select {
	case <-b.exited:
		return true
	case <-time.After(limit):
		return false
	}
}

func (b *bgNPM) String() string {
	return fmt.Sprintf("--- npm stdout:\n%s\n--- npm stderr:\n%s", tail(b.out.String(), 4000), tail(b.stderr.String(), 6000))
}

// doneURLRE finds the doneUrl in npm's verbose log ("web auth got
// response {...}"), to register its secret with the log check.
var doneURLRE = regexp.MustCompile(`/-/v1/login/done/[A-Za-z0-9_-]+`)

// donePollRE finds an answered poll of the doneUrl in npm's verbose log
// (npm-registry-fetch logs "fetch GET 202 <url> <ms>").
var donePollRE = regexp.MustCompile(`GET 202 \S*/-/v1/login/done/`)

// webLoginSecrets registers the ids in the login and done URLs as
// secrets that must not appear in couchnpm's log.
func webLoginSecrets(t *testing.T, reg *registry, loginURL string, b *bgNPM) {
	t.Helper()
	u, err := url.Parse(loginURL)
	if err != nil {
		t.Fatal(err)
	}
	reg.addSecret(strings.TrimPrefix(u.Path, "/-/v1/login/web/"))
	deadline := time.Now().Add(10 * time.Second)
	for {
		if m := doneURLRE.FindString(b.stderr.String()); m != "" {
			reg.addSecret(strings.TrimPrefix(m, "/-/v1/login/done/"))
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("no doneUrl in npm's verbose log\n%s", b)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestWebLoginNPM(t *testing.T) {
	br := newBrowser(t)
	reg := startRegistry(t, registryOpts{})
	name := reg.user("webby")
	password := "pw-" + randomHex(8)
	reg.addSecret(password)

	// npm adduser (npm ≤ 11) asks for {create:true}: the page offers to
	// create the account, with the box ticked.
	adder := newNPMUser(t, reg, "adder")
	add := adder.startNPM("adduser", "--loglevel=verbose")
	loginURL := add.loginURL(t)
	if !strings.HasPrefix(loginURL, reg.URL+"/-/v1/login/web/") {
		t.Fatalf("login URL %q is not on the registry's public URL %s", loginURL, reg.URL)
	}
	webLoginSecrets(t, reg, loginURL, add)
	start := time.Now()
	user, errText, err := br.submitLogin(loginURL, name, password, name+"@example.com", true)
	if err != nil || user != name {
		t.Fatalf("sign-up page: user %q, error %q, %v", user, errText, err)
	}
	if !add.wait(30 * time.Second) {
		t.Fatalf("npm adduser still running 30s after the page said logged in\n%s", add)
	}
	t.Logf("npm adduser finished %v after the page was sent", time.Since(start).Round(time.Millisecond))
	if add.err != nil || !strings.Contains(add.out.String(), "Logged in on "+reg.URL+"/") {
		t.Fatalf("npm adduser: %v\n%s", add.err, add)
	}
	if tok := adder.token(); tok == "" {
		t.Fatalf("npm adduser saved no token\n%s", add)
	} else {
		reg.addSecret(tok)
	}
	adder.name = name
	if out, _, err := adder.run("whoami"); err != nil || strings.TrimSpace(out) != name {
		t.Fatalf("npm whoami after the web adduser: %q, %v", out, err)
	}

	// npm login (the default, web): a wrong password shows an error on
	// the page and npm keeps polling; the right one completes it.
	u := newNPMUser(t, reg, "web")
	login := u.startNPM("login", "--loglevel=verbose")
	loginURL = login.loginURL(t)
	webLoginSecrets(t, reg, loginURL, login)
	_, errText, err = br.submitLogin(loginURL, name, "wrong-"+password, "", false)
	if err != nil || !strings.Contains(errText, "name or password is incorrect") {
		t.Fatalf("wrong password: error text %q, %v", errText, err)
	}
	if login.wait(3 * time.Second) {
		t.Fatalf("npm login exited after a wrong password on the page (%v)\n%s", login.err, login)
	}
	start = time.Now()
	user, errText, err = br.submitLogin(loginURL, name, password, "", false)
	if err != nil || user != name {
		t.Fatalf("right password: user %q, error %q, %v", user, errText, err)
	}
	if !login.wait(30 * time.Second) {
		t.Fatalf("npm login still running 30s after the page said logged in\n%s", login)
	}
	t.Logf("npm login finished %v after the page was sent", time.Since(start).Round(time.Millisecond))
	if login.err != nil {
		t.Fatalf("npm login: %v\n%s", login.err, login)
	}
	tok := u.token()
	if tok == "" || tok == adder.token() {
		t.Fatalf("npm login saved token %q (adduser's: %v)\n%s", tok, tok == adder.token(), login)
	}
	reg.addSecret(tok)
	u.name = name
	if out, _, err := u.run("whoami"); err != nil || strings.TrimSpace(out) != name {
		t.Fatalf("npm whoami after the web login: %q, %v", out, err)
	}
	// The token works for writes too.
	u.mustRunIn(writePackage(t, "web-login-pkg-"+reg.Prefix, "1.0.0", "w"), "publish")

	// Once npm has collected the token, the page's login is gone: no form.
	if err := br.do(chromedp.Navigate(loginURL)); err != nil {
		t.Fatal(err)
	}
	body, err := get(br, chromedp.OuterHTML(chromedp.CSS("html")))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(body, "<form") {
		t.Errorf("the finished login's page still has a form:\n%s", body)
	}
	if v := br.cspViolations(); len(v) > 0 {
		t.Errorf("the browser reported resources refused on the login page: %v", v)
	}
	// The polls were answered 202 then 200, and nothing else.
	var polls []string
	for _, l := range reg.Stderr.Lines() {
		if strings.Contains(l, "/-/v1/login/done/") {
			var m map[string]any
			if json.Unmarshal([]byte(l), &m) == nil {
				polls = append(polls, fmt.Sprint(m["status"]))
			}
		}
	}
	if n := len(polls); n < 3 || polls[n-1] != "200" || strings.Count(strings.Join(polls, ","), "200") != 2 {
		t.Errorf("done polls answered %v; want 202s and one 200 per login", polls)
	}
}

// webLoginDocPath is the system database path of the pending login whose
// loginUrl is loginURL (the document id is the sha256 of the page id).
func webLoginDocPath(t *testing.T, reg *registry, loginURL string) string {
	t.Helper()
	u, err := url.Parse(loginURL)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(strings.TrimPrefix(u.Path, "/-/v1/login/web/")))
	return "/" + reg.Prefix + "-system/weblogin:" + hex.EncodeToString(sum[:])
}

// expireWebLogin moves a pending login's expiry into the past, straight in
// CouchDB.
func expireWebLogin(t *testing.T, docPath string) {
	t.Helper()
	st, b, err := couchDo("GET", docPath, nil, true)
	if err != nil || st != 200 {
		t.Fatalf("GET %s: %d %v %s", docPath, st, err, b)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	for k, v := range doc { // the document must hold no secret and no token
		if s := fmt.Sprint(v); strings.HasPrefix(s, "cnpm_") || k == "token" {
			t.Errorf("pending login document has %s=%v", k, v)
		}
	}
	doc["expires"] = time.Now().Add(-time.Minute).UTC().Format(time.RFC3339Nano)
	st, b, err = couchDo("PUT", docPath, mustJSON(doc), true)
	if err != nil || st != 201 && st != 200 {
		t.Fatalf("PUT %s: %d %v %s", docPath, st, err, b)
	}
}

func TestWebLoginExpiredAndUnknown(t *testing.T) {
	reg := startRegistry(t, registryOpts{})

	// Unknown and malformed doneUrls: 404, no token.
	for _, p := range []string{"/-/v1/login/done/" + strings.Repeat("A", 43), "/-/v1/login/done/nope"} {
		res := reg.do("GET", p, "", nil)
		if res.Status != 404 || bytes.Contains(res.Body, []byte("token")) {
			t.Errorf("GET %s: %s", p, res)
		}
	}

	// A login started by hand, then expired: the doneUrl answers 410, the
	// page says so; after that the login is gone (404).
	res := reg.do("POST", "/-/v1/login", "", []byte(`{}`))
	if res.Status != 200 {
		t.Fatalf("POST /-/v1/login: %s", res)
	}
	var urls struct{ LoginURL, DoneURL string }
	if err := json.Unmarshal(res.Body, &urls); err != nil || urls.LoginURL == "" || urls.DoneURL == "" {
		t.Fatalf("POST /-/v1/login: %v %s", err, res)
	}
	lu, _ := url.Parse(urls.LoginURL)
	du, _ := url.Parse(urls.DoneURL)
	reg.addSecret(strings.TrimPrefix(lu.Path, "/-/v1/login/web/"))
	reg.addSecret(strings.TrimPrefix(du.Path, "/-/v1/login/done/"))
	if r := reg.do("GET", du.Path, "", nil); r.Status != 202 || r.Header.Get("Retry-After") != "1" {
		t.Fatalf("pending poll: %s (Retry-After %q)", r, r.Header.Get("Retry-After"))
	}
	if r := reg.do("GET", lu.Path, "", nil); r.Status != 200 || !bytes.Contains(r.Body, []byte("<form")) ||
		r.Header.Get("X-Frame-Options") != "DENY" || !strings.Contains(r.Header.Get("Content-Security-Policy"), "default-src 'none'") {
		t.Fatalf("login page: %s %v", r, r.Header)
	}
	// The page id does not collect the token.
	if r := reg.do("GET", "/-/v1/login/done/"+strings.TrimPrefix(lu.Path, "/-/v1/login/web/"), "", nil); r.Status != 404 {
		t.Errorf("the page id used as the done id: %s", r)
	}
	expireWebLogin(t, webLoginDocPath(t, reg, urls.LoginURL))
	if r := reg.do("GET", du.Path, "", nil); r.Status != 410 || bytes.Contains(r.Body, []byte("token")) {
		t.Errorf("expired poll: %s", r)
	}
	if r := reg.do("GET", du.Path, "", nil); r.Status != 404 {
		t.Errorf("poll after expiry: %s", r)
	}
	if r := reg.do("GET", lu.Path, "", nil); r.Status != 404 || bytes.Contains(r.Body, []byte("<form")) {
		t.Errorf("page after expiry: %s", r)
	}

	// Another instance on the same CouchDB serves any step of a login (no
	// state in the process), and its first login start sweeps expired
	// logins nobody polls any more.
	res = reg.do("POST", "/-/v1/login", "", []byte(`{"create":true}`))
	var pending struct{ LoginURL, DoneURL string }
	if err := json.Unmarshal(res.Body, &pending); err != nil || res.Status != 200 {
		t.Fatalf("POST /-/v1/login: %v %s", err, res)
	}
	res = reg.do("POST", "/-/v1/login", "", []byte(`{}`))
	var abandoned struct{ LoginURL, DoneURL string }
	if err := json.Unmarshal(res.Body, &abandoned); err != nil || res.Status != 200 {
		t.Fatalf("POST /-/v1/login: %v %s", err, res)
	}
	for _, u := range []string{pending.LoginURL, pending.DoneURL, abandoned.LoginURL, abandoned.DoneURL} {
		p, _ := url.Parse(u)
		reg.addSecret(p.Path[strings.LastIndex(p.Path, "/")+1:])
	}
	abandonedDoc := webLoginDocPath(t, reg, abandoned.LoginURL)
	expireWebLogin(t, abandonedDoc)
	reg2 := startRegistry(t, registryOpts{Prefix: reg.Prefix})
	reg2.addSecret(strings.TrimPrefix(pending.LoginURL, reg.URL+"/-/v1/login/web/"))
	reg2.addSecret(strings.TrimPrefix(pending.DoneURL, reg.URL+"/-/v1/login/done/"))
	pd, _ := url.Parse(pending.DoneURL)
	pl, _ := url.Parse(pending.LoginURL)
	if r := reg2.do("GET", pd.Path, "", nil); r.Status != 202 {
		t.Errorf("poll on the other instance: %s", r)
	}
	if r := reg2.do("GET", pl.Path, "", nil); r.Status != 200 || !bytes.Contains(r.Body, []byte(`id="create" name="create" value="1" checked`)) {
		t.Errorf("adduser's page on the other instance: %s", r)
	}
	if r := reg2.do("POST", "/-/v1/login", "", []byte(`{}`)); r.Status != 200 { // sweeps
		t.Fatalf("POST /-/v1/login on the other instance: %s", r)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		st, b, err := couchDo("GET", abandonedDoc, nil, true)
		if err == nil && st == 404 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the expired, abandoned login was not swept: GET %s: %d %v %s", abandonedDoc, st, err, b)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if st, b, _ := couchDo("GET", webLoginDocPath(t, reg, pending.LoginURL), nil, true); st != 200 {
		t.Errorf("the sweep deleted a pending login: %d %s", st, b)
	}

	// The real npm, its login expired while it polls: the 4xx makes it
	// stop polling (npm-profile then treats web login as unsupported and
	// tries the legacy prompts, which fail without a terminal), and it
	// saves no token.
	u := newNPMUser(t, reg, "expiring")
	login := u.startNPM("login", "--loglevel=verbose")
	loginURL := login.loginURL(t)
	webLoginSecrets(t, reg, loginURL, login)
	// npm is polling: its verbose log shows an answered poll (202).
	eventually(t, 10*time.Second, "npm polls its doneUrl", func() (bool, string) {
		return donePollRE.MatchString(login.stderr.String()), login.String()
	})
	expireWebLogin(t, webLoginDocPath(t, reg, loginURL))
	start := time.Now()
	if !login.wait(20 * time.Second) {
		t.Fatalf("npm login still polling 20s after its login expired\n%s", login)
	}
	// npm 11.19 prints "Username:" (the legacy prompt) and, its stdin at
	// its end, exits 1 without a message.
	t.Logf("npm login exited %v after its login expired (%v); its stdout ends: %q",
		time.Since(start).Round(time.Millisecond), login.err, tail(login.out.String(), 40))
	if login.err == nil || u.token() != "" {
		t.Errorf("npm login succeeded after its login expired (token %q)\n%s", u.token(), login)
	}
}
