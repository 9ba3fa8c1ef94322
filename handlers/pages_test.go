package handlers

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/couchnpm/couchnpm/registry"
)

// fakePages records which page was asked for, by whom.
type fakePages struct {
	calls  []string
	users  []registry.Identity
	login  []LoginPage
	tokens []TokensPage
}

func (f *fakePages) Home(w http.ResponseWriter, r *http.Request, user registry.Identity) {
	f.calls, f.users = append(f.calls, "home"), append(f.users, user)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write([]byte("<p>home</p>"))
}

func (f *fakePages) Package(w http.ResponseWriter, r *http.Request, user registry.Identity, name string) {
	f.calls, f.users = append(f.calls, "package "+name), append(f.users, user)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write([]byte("<p>package</p>"))
}

func (f *fakePages) ServeWeb(w http.ResponseWriter, r *http.Request, user registry.Identity) {
	f.calls, f.users = append(f.calls, "web "+r.URL.Path), append(f.users, user)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write([]byte("<p>web</p>"))
}

func (f *fakePages) Login(w http.ResponseWriter, r *http.Request, user registry.Identity, p LoginPage) {
	f.calls, f.users = append(f.calls, "login"), append(f.users, user)
	f.login = append(f.login, p)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(p.Status)
	_, _ = w.Write([]byte("<p>login " + p.Error + "</p>"))
}

func TestWantsHTML(t *testing.T) {
	for _, tc := range []struct {
		name, accept string
		want         bool
	}{
		{"npm install (corgi)", "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*", false},
		{"npm view", "application/json", false},
		{"anything", "*/*", false},
		{"no Accept", "", false},
		{"pnpm", "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*", false},
		{"yarn berry", "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*", false},
		{"yarn classic", "application/json", false},
		{"Firefox", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", true},
		{"Chrome", "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7", true},
		{"JSON preferred over HTML", "application/json, text/html;q=0.5", false},
		{"HTML refused", "text/html;q=0, */*", false},
		{"curl -H text/html", "text/html", true},
		{"garbage", ";;;,", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/foo", nil)
			if tc.accept != "" {
				r.Header.Set("Accept", tc.accept)
			}
			for range 2 { // parsed, then remembered
				if got := wantsHTML(r); got != tc.want {
					t.Errorf("wantsHTML(%q) = %v, want %v", tc.accept, got, tc.want)
				}
			}
		})
	}
}

// Remembered verdicts are bounded: a flood of distinct Accept values is
// answered all the same, and the map stops growing.
func TestWantsHTMLRemembersBounded(t *testing.T) {
	for i := range 2 * maxAcceptVerdicts {
		r := httptest.NewRequest("GET", "/foo", nil)
		html := i%2 == 0
		accept := fmt.Sprintf("application/json, x/y%d", i)
		if html {
			accept = fmt.Sprintf("text/html, x/y%d", i)
		}
		r.Header.Set("Accept", accept)
		if got := wantsHTML(r); got != html {
			t.Fatalf("wantsHTML(%q) = %v", accept, got)
		}
	}
	n := 0
	acceptVerdicts.Range(func(_, _ any) bool { n++; return true })
	if n > maxAcceptVerdicts {
		t.Errorf("%d verdicts kept, bound %d", n, maxAcceptVerdicts)
	}
	long := httptest.NewRequest("GET", "/foo", nil)
	long.Header.Set("Accept", "text/html, "+strings.Repeat("a", maxAcceptKept))
	if !wantsHTML(long) {
		t.Error("a long Accept naming text/html is not a browser's")
	}
	if _, kept := acceptVerdicts.Load(long.Header.Get("Accept")); kept {
		t.Error("an Accept value over maxAcceptKept was kept")
	}
}

// The clients' answers must not change when the web UI is on: same
// status, headers and bytes for every Accept header npm, pnpm and yarn
// send, on every route the pages hook into.
func TestPagesLeaveClientAnswersUnchanged(t *testing.T) {
	without := newEnv(t, zerolog.Disabled)
	pages := &fakePages{}
	with := newEnv(t, zerolog.Disabled)
	with.h = mustNew(t, Config{PublicURL: publicURL, MaxPublishBytes: 4096, Pages: pages}, fakeServices(t, with.reg, with.accounts, with.pinger), zerolog.Nop())
	without.h = mustNew(t, Config{PublicURL: publicURL, MaxPublishBytes: 4096}, fakeServices(t, without.reg, without.accounts, without.pinger), zerolog.Nop())
	accepts := []string{
		"application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*",
		"application/json",
		"*/*",
		"",
	}
	for _, path := range []string{"/", "/foo", "/@s%2fp", "/@s/p", "/nope", "/foo/1.0.0", "/-/web/search?q=foo"} {
		for _, accept := range accepts {
			var hdr []string
			if accept != "" {
				hdr = append(hdr, "Accept: "+accept)
			}
			a := without.do(t, "GET", path, nil, hdr...)
			b := with.do(t, "GET", path, nil, hdr...)
			if path == "/-/web/search?q=foo" {
				continue // a page route: checked below
			}
			a.Header().Del("X-Request-Id") // random per request
			b.Header().Del("X-Request-Id")
			if a.Code != b.Code || !bytes.Equal(a.Body.Bytes(), b.Body.Bytes()) || !reflect.DeepEqual(a.Header(), b.Header()) {
				t.Errorf("GET %s (Accept %q) changed with pages on:\n%d %v %s\n%d %v %s", path, accept, a.Code, a.Header(), a.Body, b.Code, b.Header(), b.Body)
			}
		}
	}
	for _, c := range pages.calls {
		if c != "web /-/web/search" {
			t.Errorf("a client request reached the pages: %s", c)
		}
	}
}

func TestPagesServeBrowsers(t *testing.T) {
	pages := &fakePages{}
	e := newEnv(t, zerolog.Disabled)
	e.h = mustNew(t, Config{PublicURL: publicURL, MaxPublishBytes: 4096, Pages: pages}, fakeServices(t, e.reg, e.accounts, e.pinger), zerolog.Nop())
	browser := "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
	for _, tc := range []struct{ path, want string }{
		{"/", "home"},
		{"/foo", "package foo"},
		{"/@s%2fp", "package @s/p"},
		{"/@s/p", "package @s/p"},
		{"/-/web/search?q=x", "web /-/web/search"},
	} {
		pages.calls = nil
		rec := e.do(t, "GET", tc.path, nil, browser)
		wantStatus(t, rec, http.StatusOK)
		if len(pages.calls) != 1 || pages.calls[0] != tc.want {
			t.Errorf("GET %s: pages got %v, want %s", tc.path, pages.calls, tc.want)
		}
	}
	// A browser asking for a version is sent to its page.
	for path, want := range map[string]string{
		"/foo/1.0.0":    "/-/web/package/foo/v/1.0.0",
		"/foo/latest":   "/-/web/package/foo/v/latest",
		"/@s%2fp/1.0.0": "/-/web/package/@s/p/v/1.0.0",
	} {
		rec := e.do(t, "GET", path, nil, browser)
		if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != want {
			t.Errorf("GET %s: %d to %q, want 303 to %q", path, rec.Code, rec.Header().Get("Location"), want)
		}
	}
	// The caller's identity reaches the page: a token user is that user.
	pages.calls, pages.users = nil, nil
	e.do(t, "GET", "/foo", nil, browser, "Authorization: Bearer cnpm_alice")
	if len(pages.users) != 1 || pages.users[0].Name != "alice" {
		t.Errorf("page got identity %+v, want alice", pages.users)
	}
	// Bad credentials are refused as the API refuses them.
	rec := e.do(t, "GET", "/foo", nil, browser, "Authorization: Bearer wrong")
	wantStatus(t, rec, http.StatusUnauthorized)
	// Writes never reach the pages.
	pages.calls = nil
	e.do(t, "PUT", "/foo", nil, browser)
	e.do(t, "POST", "/-/web/search", nil, browser)
	if len(pages.calls) != 0 {
		t.Errorf("writes reached the pages: %v", pages.calls)
	}
}

func (f *fakePages) Tokens(w http.ResponseWriter, r *http.Request, user registry.Identity, p TokensPage) {
	f.calls, f.users = append(f.calls, "tokens"), append(f.users, user)
	f.tokens = append(f.tokens, p)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(p.Status)
	_, _ = w.Write([]byte("<p>tokens " + p.Error + "</p>"))
}
