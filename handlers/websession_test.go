package handlers

import (
	"context"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/couchnpm/couchnpm/registry"
)

// sessionAccounts adds token creation (CreateToken checks the password, as
// registry.Accounts does) to the fake accounts.
type sessionAccounts struct {
	*fakeAccounts
	created []registry.TokenRequest
}

func (a *sessionAccounts) CreateToken(_ context.Context, user registry.Identity, req registry.TokenRequest, _ netip.Addr) (string, *registry.Token, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if p, ok := a.passwords[user.Name]; !ok || p != req.Password {
		return "", nil, registry.E(registry.KindUnauthorized, "name or password is incorrect")
	}
	a.created = append(a.created, req)
	tok := "cnpm_session_" + user.Name
	a.tokens[tok] = registry.Identity{Name: user.Name, ReadOnly: req.ReadOnly}
	return tok, &registry.Token{}, nil
}

func (a *sessionAccounts) ListTokens(context.Context, registry.Identity) ([]*registry.Token, error) {
	return nil, nil
}
func (a *sessionAccounts) RevokeToken(context.Context, registry.Identity, string) error { return nil }

func sessionEnv(t *testing.T) (*env, *fakePages, *sessionAccounts) {
	e := newEnv(t, zerolog.Disabled)
	acc := &sessionAccounts{fakeAccounts: e.accounts}
	pages := &fakePages{}
	svc := fakeServices(t, e.reg, acc, e.pinger)
	svc.Tokens = acc
	e.h = mustNew(t, Config{PublicURL: publicURL, MaxPublishBytes: 4096, Pages: pages}, svc, zerolog.Nop())
	return e, pages, acc
}

func cookieOf(rec interface{ Result() *http.Response }, name string) *http.Cookie {
	for _, c := range rec.Result().Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func TestWebSessionLogin(t *testing.T) {
	e, pages, acc := sessionEnv(t)
	rec := e.do(t, "GET", "/-/web/login?next=/foo", nil)
	wantStatus(t, rec, 200)
	csrf := cookieOf(rec, csrfCookie)
	if csrf == nil || !csrf.HttpOnly || csrf.SameSite != http.SameSiteLaxMode || !csrf.Secure || len(csrf.Value) != 64 {
		t.Fatalf("csrf cookie = %+v", csrf)
	}
	if p := pages.login[0]; p.CSRF != csrf.Value || p.Next != "/foo" {
		t.Fatalf("login page got %+v", p)
	}
	post := func(form url.Values, headers ...string) *http.Response {
		t.Helper()
		hdr := append([]string{"Content-Type: application/x-www-form-urlencoded", "Cookie: " + csrfCookie + "=" + csrf.Value}, headers...)
		return e.do(t, "POST", "/-/web/login", strings.NewReader(form.Encode()), hdr...).Result()
	}
	good := url.Values{"name": {"alice"}, "password": {"secret"}, "csrf": {csrf.Value}, "next": {"/foo"}}

	for _, tc := range []struct {
		name    string
		form    url.Values
		headers []string
		want    int
	}{
		{"no csrf field", url.Values{"name": {"alice"}, "password": {"secret"}}, nil, 403},
		{"wrong csrf", url.Values{"name": {"alice"}, "password": {"secret"}, "csrf": {strings.Repeat("0", 64)}}, nil, 403},
		{"cross-site", good, []string{"Sec-Fetch-Site: cross-site"}, 403},
		{"foreign origin", good, []string{"Origin: https://evil.example"}, 403},
		{"wrong password", url.Values{"name": {"alice"}, "password": {"nope"}, "csrf": {csrf.Value}}, nil, 401},
		{"unknown user", url.Values{"name": {"nobody"}, "password": {"x"}, "csrf": {csrf.Value}}, nil, 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := post(tc.form, tc.headers...)
			if res.StatusCode != tc.want {
				t.Errorf("status %d, want %d", res.StatusCode, tc.want)
			}
			for _, c := range res.Cookies() {
				if c.Name == sessionCookie && c.Value != "" {
					t.Errorf("a session was set")
				}
			}
		})
	}
	if len(acc.created) != 0 {
		t.Fatalf("tokens created for refused logins: %+v", acc.created)
	}

	res := post(good)
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/foo" {
		t.Fatalf("login: %d to %q", res.StatusCode, res.Header.Get("Location"))
	}
	var sess *http.Cookie
	for _, c := range res.Cookies() {
		if c.Name == sessionCookie {
			sess = c
		}
	}
	if sess == nil || !sess.HttpOnly || !sess.Secure || sess.SameSite != http.SameSiteLaxMode || sess.Path != "/" || sess.MaxAge <= 0 {
		t.Fatalf("session cookie = %+v", sess)
	}
	if len(acc.created) != 1 || !acc.created[0].ReadOnly || acc.created[0].Expires != sessionDays {
		t.Fatalf("session token request = %+v, want read-only with an expiry", acc.created)
	}

	// The pages see the session's user …
	browser := "Accept: text/html"
	pages.users = nil
	e.do(t, "GET", "/foo", nil, browser, "Cookie: "+sessionCookie+"="+sess.Value)
	e.do(t, "GET", "/", nil, browser, "Cookie: "+sessionCookie+"="+sess.Value)
	e.do(t, "GET", "/-/web/search?q=x", nil, browser, "Cookie: "+sessionCookie+"="+sess.Value)
	for i, u := range pages.users {
		if u.Name != "alice" {
			t.Errorf("page %d saw %+v, want alice", i, u)
		}
	}
	// … the API never does.
	rec = e.do(t, "GET", "/-/whoami", nil, "Cookie: "+sessionCookie+"="+sess.Value)
	wantStatus(t, rec, http.StatusUnauthorized)
	e.reg.readers = nil
	e.do(t, "GET", "/foo", nil, "Accept: application/json", "Cookie: "+sessionCookie+"="+sess.Value)
	if len(e.reg.readers) != 1 || !e.reg.readers[0].Anonymous() {
		t.Errorf("the packument API read as %+v with only a session cookie, want anonymous", e.reg.readers)
	}

	// A revoked session is dropped: anonymous, and the cookie is cleared.
	pages.users = nil
	delete(acc.tokens, sess.Value)
	rec = e.do(t, "GET", "/foo", nil, browser, "Cookie: "+sessionCookie+"="+sess.Value)
	if len(pages.users) != 1 || !pages.users[0].Anonymous() {
		t.Errorf("revoked session: page saw %+v", pages.users)
	}
	if c := cookieOf(rec, sessionCookie); c == nil || c.MaxAge >= 0 {
		t.Errorf("revoked session's cookie not cleared: %+v", c)
	}
}

func TestWebSessionLogout(t *testing.T) {
	e, _, acc := sessionEnv(t)
	acc.tokens["cnpm_session_alice"] = registry.Identity{Name: "alice", ReadOnly: true}
	csrf := strings.Repeat("ab", 32)
	cookies := "Cookie: " + sessionCookie + "=cnpm_session_alice; " + csrfCookie + "=" + csrf
	form := "Content-Type: application/x-www-form-urlencoded"
	rec := e.do(t, "POST", "/-/web/logout", strings.NewReader("csrf=wrong"), form, cookies)
	wantStatus(t, rec, http.StatusForbidden)
	if len(acc.loggedOut) != 0 {
		t.Fatalf("logout without the CSRF token deleted the session")
	}
	rec = e.do(t, "POST", "/-/web/logout", strings.NewReader("csrf="+csrf), form, cookies)
	wantStatus(t, rec, http.StatusSeeOther)
	if len(acc.loggedOut) != 1 || acc.loggedOut[0] != "cnpm_session_alice" {
		t.Errorf("logout deleted %v", acc.loggedOut)
	}
	if c := cookieOf(rec, sessionCookie); c == nil || c.MaxAge >= 0 {
		t.Errorf("session cookie not cleared: %+v", c)
	}
}

func TestSafeNext(t *testing.T) {
	for in, want := range map[string]string{
		"/foo": "/foo", "/@s/p?x=1": "/@s/p?x=1", "": "/", "//evil.example": "/", "/\\evil.example": "/",
		"https://evil.example/": "/", "javascript:alert(1)": "/", "/foo\r\nSet-Cookie: x": "/",
	} {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
}
