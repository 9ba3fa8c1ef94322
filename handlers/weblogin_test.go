package handlers

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"

	"github.com/couchnpm/couchnpm/registry"
)

// fakeWebLogins is the web login flow over a map; pages and dones are
// fixed-length ids like the real ones.
type fakeWebLogins struct {
	mu      sync.Mutex
	signup  bool
	logins  map[string]*fakeLogin // by page id
	started []bool                // the create flags of Start calls
	err     error                 // returned by Start when set
}

type fakeLogin struct {
	done, user string
	create     bool
	expired    bool
	collected  bool
}

func newFakeWebLogins() *fakeWebLogins {
	return &fakeWebLogins{signup: true, logins: map[string]*fakeLogin{}}
}

func fakeID(prefix string, n int) string {
	s := prefix + strings.Repeat("x", 43)
	return s[:43-len(string(rune('0'+n)))] + string(rune('0'+n))
}

func (f *fakeWebLogins) Start(_ context.Context, create bool) (string, string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return "", "", f.err
	}
	f.started = append(f.started, create)
	n := len(f.started)
	page, done := fakeID("Page", n), fakeID("Done", n)
	f.logins[page] = &fakeLogin{done: done, create: create}
	return page, done, nil
}

func (f *fakeWebLogins) find(page string) (*fakeLogin, error) {
	l, ok := f.logins[page]
	if !ok || l.collected {
		return nil, registry.E(registry.KindNotFound, "no such login")
	}
	if l.expired {
		return nil, registry.ErrWebLoginExpired
	}
	return l, nil
}

func (f *fakeWebLogins) Page(_ context.Context, page string) (*registry.WebLoginPage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, err := f.find(page)
	if err != nil {
		return nil, err
	}
	return &registry.WebLoginPage{Create: l.create, SignUp: f.signup, User: l.user}, nil
}

func (f *fakeWebLogins) Submit(_ context.Context, page, name, password, email string, create bool, _ netip.Addr) (*registry.User, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, err := f.find(page)
	if err != nil {
		return nil, err
	}
	if l.user != "" {
		return nil, registry.ErrWebLoginDone
	}
	if err := registry.ValidateUsername(name); err != nil {
		return nil, err
	}
	switch {
	case name == "alice" && password == "secret":
	case name == "mallory":
		return nil, registry.ErrWebLoginCancelled
	case name == "newbie" && create && f.signup:
	case name == "newbie" && create:
		return nil, registry.E(registry.KindForbidden, "sign-up is disabled")
	default:
		return nil, registry.E(registry.KindUnauthorized, "name or password is incorrect")
	}
	l.user = name
	return &registry.User{Name: name, Email: email}, nil
}

func (f *fakeWebLogins) Collect(_ context.Context, done string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, l := range f.logins {
		if l.done != done || l.collected {
			continue
		}
		if l.expired {
			return "", registry.ErrWebLoginExpired
		}
		if l.user == "" {
			return "", nil
		}
		l.collected = true
		return "cnpm_web_" + l.user, nil
	}
	return "", registry.E(registry.KindNotFound, "no such login")
}

func newWebLoginTestEnv(t *testing.T) (*env, *fakeWebLogins) {
	t.Helper()
	e := newEnv(t, zerolog.DebugLevel)
	wl := newFakeWebLogins()
	e.h = mustNew(t, Config{PublicURL: publicURL, MaxPublishBytes: 4096, WebLogin: wl}, fakeServices(t, e.reg, e.accounts, e.pinger), zerolog.New(e.logs).Level(zerolog.DebugLevel))
	return e, wl
}

// startWebLogin POSTs /-/v1/login and returns the paths of its two URLs.
func startWebLogin(t *testing.T, e *env, body string) (loginPath, donePath string) {
	t.Helper()
	rec := e.do(t, "POST", "/-/v1/login", strings.NewReader(body), "Content-Type: application/json")
	wantStatus(t, rec, http.StatusOK)
	m := decodeJSON(t, rec)
	login, _ := m["loginUrl"].(string)
	done, _ := m["doneUrl"].(string)
	for _, u := range []string{login, done} {
		if !strings.HasPrefix(u, publicURL+"/-/v1/login/") {
			t.Fatalf("URL %q is not an absolute URL on the public URL %s", u, publicURL)
		}
	}
	lu, _ := url.Parse(login)
	du, _ := url.Parse(done)
	return lu.Path, du.Path
}

func postForm(t *testing.T, e *env, path string, form url.Values, headers ...string) (int, http.Header, string) {
	t.Helper()
	rec := e.do(t, "POST", path, strings.NewReader(form.Encode()), append([]string{"Content-Type: application/x-www-form-urlencoded"}, headers...)...)
	return rec.Code, rec.Header(), rec.Body.String()
}

func TestWebLoginStart(t *testing.T) {
	e, wl := newWebLoginTestEnv(t)
	login, done := startWebLogin(t, e, `{}`)
	if !strings.HasPrefix(login, webLoginPagePrefix) || !strings.HasPrefix(done, webLoginDonePrefix) {
		t.Errorf("paths %s, %s", login, done)
	}
	startWebLogin(t, e, `{"create":true}`)
	startWebLogin(t, e, ``)
	if len(wl.started) != 3 || wl.started[0] || !wl.started[1] || wl.started[2] {
		t.Errorf("create flags %v, want [false true false]", wl.started)
	}
	rec := e.do(t, "POST", "/-/v1/login", strings.NewReader(`{nope`), "Content-Type: application/json")
	wantStatus(t, rec, http.StatusBadRequest)

	wl.err = registry.E(registry.KindUnavailable, "CouchDB is down")
	rec = e.do(t, "POST", "/-/v1/login", strings.NewReader(`{}`), "Content-Type: application/json")
	wantStatus(t, rec, http.StatusServiceUnavailable) // not a 4xx: npm must not fall back silently
}

func TestWebLoginPageAndPoll(t *testing.T) {
	e, _ := newWebLoginTestEnv(t)
	login, done := startWebLogin(t, e, `{}`)

	rec := e.do(t, "GET", done, nil)
	wantStatus(t, rec, http.StatusAccepted)
	if rec.Header().Get("Retry-After") != "1" || strings.TrimSpace(rec.Body.String()) != "{}" {
		t.Errorf("pending poll: Retry-After %q, body %q", rec.Header().Get("Retry-After"), rec.Body.String())
	}

	rec = e.do(t, "GET", login, nil)
	wantStatus(t, rec, http.StatusOK)
	page := rec.Body.String()
	checkPageHeaders(t, rec.Header(), page)
	for _, want := range []string{`<form method="post"`, `name="name"`, `name="password"`, `type="password"`, `id="create"`, publicURL} {
		if !strings.Contains(page, want) {
			t.Errorf("login page lacks %q:\n%s", want, page)
		}
	}
	if strings.Contains(page, " checked") {
		t.Errorf("the create box is ticked for npm login")
	}
	if rec := e.do(t, "HEAD", login, nil); rec.Code != http.StatusOK || rec.Body.Len() != 0 {
		t.Errorf("HEAD: %d, %d bytes", rec.Code, rec.Body.Len())
	}

	// A wrong password: the error, the form again, the name kept, never
	// the password; npm keeps polling.
	status, h, body := postForm(t, e, login, url.Values{"name": {"alice"}, "password": {"hunter2-wrong"}})
	if status != http.StatusUnauthorized || !strings.Contains(body, "name or password is incorrect") || !strings.Contains(body, `<form`) {
		t.Fatalf("wrong password: %d\n%s", status, body)
	}
	checkPageHeaders(t, h, body)
	if !strings.Contains(body, `value="alice"`) || strings.Contains(body, "hunter2-wrong") {
		t.Errorf("the retry form should keep the name and drop the password:\n%s", body)
	}
	wantStatus(t, e.do(t, "GET", done, nil), http.StatusAccepted)

	// A cross-site POST is refused.
	status, _, _ = postForm(t, e, login, url.Values{"name": {"alice"}, "password": {"secret"}}, "Sec-Fetch-Site: cross-site")
	if status != http.StatusForbidden {
		t.Errorf("cross-site POST: %d", status)
	}

	status, _, body = postForm(t, e, login, url.Values{"name": {"alice"}, "password": {"secret"}}, "Sec-Fetch-Site: same-origin")
	if status != http.StatusOK || !strings.Contains(body, `id="user">alice<`) || strings.Contains(body, "<form") {
		t.Fatalf("right password: %d\n%s", status, body)
	}
	// The page now says so on reload; a second POST changes nothing.
	if rec := e.do(t, "GET", login, nil); !strings.Contains(rec.Body.String(), `id="user">alice<`) {
		t.Errorf("reloaded page: %s", rec.Body.String())
	}

	rec = e.do(t, "GET", done, nil)
	wantStatus(t, rec, http.StatusOK)
	if tok := decodeJSON(t, rec)["token"]; tok != "cnpm_web_alice" {
		t.Fatalf("token = %v", tok)
	}
	// Once only.
	wantStatus(t, e.do(t, "GET", done, nil), http.StatusNotFound)
	wantStatus(t, e.do(t, "GET", login, nil), http.StatusNotFound)

	// Secret ids never reach the log; passwords and tokens neither.
	logs := e.logs.String()
	for _, secret := range []string{strings.TrimPrefix(login, webLoginPagePrefix), strings.TrimPrefix(done, webLoginDonePrefix), "hunter2-wrong", "secret\"", "cnpm_web_alice"} {
		if strings.Contains(logs, secret) {
			t.Errorf("the log contains %q:\n%s", secret, logs)
		}
	}
	var redacted int
	for _, l := range e.logs.requestLines(t) {
		p, _ := l["path"].(string)
		if strings.HasPrefix(p, "/-/v1/login/") {
			if p != webLoginPagePrefix+"[redacted]" && p != webLoginDonePrefix+"[redacted]" {
				t.Errorf("logged path %q", p)
			}
			redacted++
		}
	}
	if redacted < 8 {
		t.Errorf("%d redacted request lines, want every page and poll request", redacted)
	}
}

// checkPageHeaders checks the login page's security headers, and that the
// Content-Security-Policy allows exactly the page's inline style.
func checkPageHeaders(t *testing.T, h http.Header, body string) {
	t.Helper()
	want := map[string]string{
		"Content-Type":           "text/html; charset=utf-8",
		"X-Frame-Options":        "DENY",
		"X-Content-Type-Options": "nosniff",
		"Referrer-Policy":        "no-referrer",
		"Cache-Control":          "no-store",
	}
	for k, v := range want {
		if got := h.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	csp := h.Get("Content-Security-Policy")
	for _, d := range []string{"default-src 'none'", "form-action 'self'", "frame-ancestors 'none'", "base-uri 'none'"} {
		if !strings.Contains(csp, d) {
			t.Errorf("CSP %q lacks %q", csp, d)
		}
	}
	i, j := strings.Index(body, "<style>"), strings.Index(body, "</style>")
	if i < 0 || j < i {
		t.Fatalf("no <style> in the page")
	}
	sum := sha256.Sum256([]byte(body[i+len("<style>") : j]))
	if !strings.Contains(csp, "style-src 'sha256-"+base64.StdEncoding.EncodeToString(sum[:])+"'") {
		t.Errorf("CSP %q does not allow the page's style", csp)
	}
	if strings.Contains(body, "<script") {
		t.Errorf("the page has a script")
	}
}

func TestWebLoginPageEscapes(t *testing.T) {
	e, _ := newWebLoginTestEnv(t)
	login, _ := startWebLogin(t, e, `{"create":true}`)
	evil := `"><script>alert(1)</script>`
	status, _, body := postForm(t, e, login, url.Values{"name": {evil}, "password": {"x"}, "email": {evil}, "create": {"1"}})
	if status != http.StatusBadRequest {
		t.Errorf("status %d", status)
	}
	if strings.Contains(body, "<script>") || !strings.Contains(body, "&lt;script&gt;") {
		t.Errorf("the name was not escaped:\n%s", body)
	}
}

func TestWebLoginSignUpPage(t *testing.T) {
	e, wl := newWebLoginTestEnv(t)
	login, done := startWebLogin(t, e, `{"create":true}`)
	rec := e.do(t, "GET", login, nil)
	if !strings.Contains(rec.Body.String(), `id="create" name="create" value="1" checked`) || !strings.Contains(rec.Body.String(), "Create your account") {
		t.Errorf("adduser page:\n%s", rec.Body.String())
	}
	status, _, body := postForm(t, e, login, url.Values{"name": {"newbie"}, "password": {"pw"}, "email": {"n@example.com"}, "create": {"1"}})
	if status != http.StatusOK || !strings.Contains(body, `id="user">newbie<`) {
		t.Fatalf("sign-up: %d\n%s", status, body)
	}
	wantStatus(t, e.do(t, "GET", done, nil), http.StatusOK)

	// Sign-up disabled: no create box, and a create field sent anyway is ignored.
	wl.signup = false
	login, _ = startWebLogin(t, e, `{"create":true}`)
	if body := e.do(t, "GET", login, nil).Body.String(); strings.Contains(body, `id="create"`) {
		t.Errorf("create box offered with sign-up disabled")
	}
	status, _, body = postForm(t, e, login, url.Values{"name": {"newbie"}, "password": {"pw"}, "create": {"1"}})
	if status != http.StatusUnauthorized || !strings.Contains(body, "<form") {
		t.Errorf("sign-up while disabled: %d\n%s", status, body)
	}
}

func TestWebLoginEnded(t *testing.T) {
	e, wl := newWebLoginTestEnv(t)
	login, done := startWebLogin(t, e, `{}`)
	for _, l := range wl.logins {
		l.expired = true
	}
	rec := e.do(t, "GET", done, nil)
	wantStatus(t, rec, http.StatusGone)
	if m := decodeJSON(t, rec); m["error"] == nil || m["token"] != nil {
		t.Errorf("expired poll body %v", m)
	}
	rec = e.do(t, "GET", login, nil)
	wantStatus(t, rec, http.StatusGone)
	if strings.Contains(rec.Body.String(), "<form") || !strings.Contains(rec.Body.String(), "expired") {
		t.Errorf("expired page:\n%s", rec.Body.String())
	}
	status, _, _ := postForm(t, e, login, url.Values{"name": {"alice"}, "password": {"secret"}})
	if status != http.StatusGone {
		t.Errorf("POST to an expired login: %d", status)
	}

	// Unknown ids.
	wantStatus(t, e.do(t, "GET", webLoginDonePrefix+strings.Repeat("A", 43), nil), http.StatusNotFound)
	wantStatus(t, e.do(t, "GET", webLoginPagePrefix+strings.Repeat("A", 43), nil), http.StatusNotFound)

	// Too many wrong passwords cancel the login: no form any more.
	login, _ = startWebLogin(t, e, `{}`)
	status, _, body := postForm(t, e, login, url.Values{"name": {"mallory"}, "password": {"x"}})
	if status != http.StatusUnauthorized || strings.Contains(body, "<form") || !strings.Contains(body, "cancelled") {
		t.Errorf("cancelled login: %d\n%s", status, body)
	}
}

func TestRedactWebLoginPaths(t *testing.T) {
	for in, want := range map[string]string{
		"/-/v1/login/web/abc":      "/-/v1/login/web/[redacted]",
		"/-/v1/login/done/abc/xyz": "/-/v1/login/done/[redacted]",
		"/-/v1/login":              "/-/v1/login",
	} {
		if got := redactPath(in); got != want {
			t.Errorf("redactPath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestWebLoginPageRateLimited(t *testing.T) {
	e, _ := newWebLoginTestEnv(t)
	login, done := startWebLogin(t, e, `{}`)
	var status int
	var h http.Header
	var body string
	for i := 0; i < 11; i++ {
		status, h, body = postForm(t, e, login, url.Values{"name": {"alice"}, "password": {"guess"}})
	}
	if status != http.StatusTooManyRequests || h.Get("Retry-After") == "" || !strings.Contains(body, "<form") {
		t.Fatalf("11th wrong password: %d, Retry-After %q\n%s", status, h.Get("Retry-After"), body)
	}
	// Even the right password waits now; npm keeps polling meanwhile.
	status, _, _ = postForm(t, e, login, url.Values{"name": {"alice"}, "password": {"secret"}})
	if status != http.StatusTooManyRequests {
		t.Errorf("right password while limited: %d", status)
	}
	wantStatus(t, e.do(t, "GET", done, nil), http.StatusAccepted)
}
