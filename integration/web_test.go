//go:build integration

package integration

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// browserAccept is what Chromium and Firefox send for a page.
const browserAccept = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"

// The web UI, driven over HTTP as a browser asks: packages published with
// the real npm appear on the home, search and package pages; a restricted
// package, its README and its tarball link appear only with credentials;
// a hostile README is neutralized; npm itself keeps getting JSON.
func TestWebPages(t *testing.T) {
	t.Parallel()
	reg := startRegistry(t, registryOpts{})
	alice := newNPMUser(t, reg, "webalice")
	alice.mustLogin("webalice", "Pw-web-alice-5d6e7f8a", "webalice@example.com")
	anon := newNPMUser(t, reg, "anonymous")

	widget := writePackageWith(t, "web-widget", "1.2.0", map[string]any{"keywords": []string{"webui", "widgets"},
		"dependencies": map[string]string{"web-dep": "^1.0.0"}})
	hostile := "# Web widget\n\n| col | val |\n|---|---|\n| a | 1 |\n\n" +
		"<script>window.pwned=1</script><img src=x onerror=\"window.pwned=2\">\n\n[click](javascript:window.pwned=3)\n"
	if err := os.WriteFile(filepath.Join(widget, "README.md"), []byte(hostile), 0o644); err != nil {
		t.Fatal(err)
	}
	alice.mustRunIn(writePackageWith(t, "web-dep", "1.0.0", nil), "publish")
	alice.mustRunIn(widget, "publish")
	alice.mustOwnOrg("acme", "webalice") // a scope belongs to an org or a user
	secret := writePackageWith(t, "@acme/web-secret", "1.0.0", map[string]any{"description": "hush hush"})
	if err := os.WriteFile(filepath.Join(secret, "README.md"), []byte("TOP-SECRET-README\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	alice.mustRunIn(secret, "publish", "--access", "restricted")

	page := func(path, token string, want int) string {
		t.Helper()
		res, err := reg.tryDoAccept("GET", path, token, nil, browserAccept, 30*time.Second)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		if res.Status != want {
			t.Fatalf("GET %s: %s, want %d", path, res, want)
		}
		if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
			t.Fatalf("GET %s: Content-Type %q, want HTML", path, ct)
		}
		if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") || strings.Contains(csp, "unsafe-inline") {
			t.Errorf("GET %s: CSP %q", path, csp)
		}
		return string(res.Body)
	}

	t.Run("anonymous visitor", func(t *testing.T) {
		home := page("/", "", 200)
		if !strings.Contains(home, `href="/web-widget"`) || strings.Contains(home, "web-secret") {
			t.Errorf("home: want web-widget listed and no restricted package:\n%s", home)
		}
		body := page("/web-widget", "", 200)
		for _, want := range []string{"<h1>Web widget</h1>", "<table>", "npm install web-widget", `href="/web-dep"`, "1.2.0", "sha512-"} {
			if !strings.Contains(body, want) {
				t.Errorf("package page lacks %q", want)
			}
		}
		for _, bad := range []string{"<script>window", "onerror", "javascript:"} {
			if strings.Contains(body, bad) {
				t.Errorf("package page keeps %q from the README", bad)
			}
		}
		found := page("/-/web/search?q=web", "", 200)
		if !strings.Contains(found, `href="/web-widget"`) || strings.Contains(found, "web-secret") {
			t.Errorf("search: %s", found)
		}
		for _, p := range []string{"/@acme/web-secret", "/@acme%2fweb-secret", "/-/web/package/@acme/web-secret/v/1.0.0"} {
			if b := page(p, "", 404); strings.Contains(b, "TOP-SECRET") || strings.Contains(b, "hush hush") {
				t.Errorf("anonymous %s shows the restricted package", p)
			}
		}
		if up := page("/-/web/user/webalice", "", 200); !strings.Contains(up, `href="/web-widget"`) || strings.Contains(up, "web-secret") {
			t.Errorf("anonymous user page: %s", up)
		}
		// The version page's tarball link is the registry's tarball URL.
		v := page("/-/web/package/web-widget/v/1.2.0", "", 200)
		m := regexp.MustCompile(`id="tarball">([^<]+)<`).FindStringSubmatch(v)
		if m == nil {
			t.Fatalf("version page has no tarball link:\n%s", v)
		}
		if res := reg.do("GET", m[1], "", nil); res.Status != 200 || len(res.Body) == 0 {
			t.Errorf("tarball link %s: %s", m[1], res)
		}
	})

	t.Run("logged in", func(t *testing.T) {
		body := page("/@acme/web-secret", alice.token(), 200)
		if !strings.Contains(body, "TOP-SECRET-README") || !strings.Contains(body, "restricted") {
			t.Errorf("restricted package page for its maintainer:\n%s", body)
		}
		if home := page("/", alice.token(), 200); !strings.Contains(home, "web-secret") {
			t.Errorf("home hides the restricted package from a logged-in user")
		}
		if up := page("/-/web/user/webalice", alice.token(), 200); !strings.Contains(up, "web-secret") {
			t.Errorf("the user page hides the restricted package from a logged-in user")
		}
		if found := page("/-/web/search?q=web", alice.token(), 200); !strings.Contains(found, "web-secret") {
			t.Errorf("search hides the restricted package from a logged-in user")
		}
	})

	t.Run("browser session", func(t *testing.T) {
		jar, _ := cookiejar.New(nil)
		client := &http.Client{Jar: jar, Timeout: 30 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		get := func(path string) (int, string) {
			t.Helper()
			req, _ := http.NewRequest("GET", reg.URL+path, nil)
			req.Header.Set("Accept", browserAccept)
			res, err := client.Do(req)
			if err != nil {
				t.Fatalf("GET %s: %v", path, err)
			}
			defer res.Body.Close()
			b, _ := io.ReadAll(res.Body)
			return res.StatusCode, string(b)
		}
		code, form := get("/-/web/login?next=/@acme/web-secret")
		m := regexp.MustCompile(`name="csrf" value="([0-9a-f]{64})"`).FindStringSubmatch(form)
		if code != 200 || m == nil {
			t.Fatalf("login form: %d %s", code, form)
		}
		login := func(password string) *http.Response {
			t.Helper()
			res, err := client.PostForm(reg.URL+"/-/web/login", url.Values{"csrf": {m[1]}, "next": {"/@acme/web-secret"},
				"name": {"webalice"}, "password": {password}})
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			return res
		}
		if res := login("wrong-password-1"); res.StatusCode != 401 {
			t.Errorf("wrong password: %d", res.StatusCode)
		}
		if code, body := get("/@acme/web-secret"); code != 404 || strings.Contains(body, "TOP-SECRET") {
			t.Fatalf("before logging in: %d", code)
		}
		res := login("Pw-web-alice-5d6e7f8a")
		if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/@acme/web-secret" {
			t.Fatalf("login: %d to %s", res.StatusCode, res.Header.Get("Location"))
		}
		for _, c := range jar.Cookies(res.Request.URL) {
			reg.addSecret(c.Value)
		}
		code, body := get("/@acme/web-secret")
		if code != 200 || !strings.Contains(body, "TOP-SECRET-README") || !strings.Contains(body, `id="whoami">webalice<`) {
			t.Fatalf("after logging in: %d %s", code, body)
		}
		// The session is a token npm token list shows (read-only: unit-tested).
		if out := alice.mustRunIn("", "token", "list").Stdout; !strings.Contains(out, "web session") {
			t.Errorf("npm token list does not show the session:\n%s", out)
		}
		// Log out: the confirmation form, then the session is gone.
		_, conf := get("/-/web/logout")
		m2 := regexp.MustCompile(`name="csrf" value="([0-9a-f]{64})"`).FindStringSubmatch(conf)
		if m2 == nil {
			t.Fatalf("logout form: %s", conf)
		}
		out, err := client.PostForm(reg.URL+"/-/web/logout", url.Values{"csrf": {m2[1]}})
		if err != nil {
			t.Fatal(err)
		}
		out.Body.Close()
		if out.StatusCode != http.StatusSeeOther {
			t.Errorf("logout: %d", out.StatusCode)
		}
		if code, body := get("/@acme/web-secret"); code != 404 || strings.Contains(body, "TOP-SECRET") {
			t.Errorf("after logging out: %d", code)
		}
	})

	t.Run("npm keeps getting JSON", func(t *testing.T) {
		res := anon.mustRunIn("", "view", "web-widget", "version")
		if strings.TrimSpace(res.Stdout) != "1.2.0" {
			t.Errorf("npm view: %s", res)
		}
		proj := writeProject(t, map[string]string{"web-widget": "^1.2.0"})
		anon.mustRunIn(proj, "install")
		mustRequire(t, proj, "web-widget", "1.2.0", "web-widget-1.2.0")
		// npm install fetched web-widget's tarball once: the download
		// count API shows it right away (before the periodic flush).
		point := reg.do("GET", "/-/downloads/point/last-day/web-widget", "", nil)
		var pt struct {
			Downloads int64
			Package   string
		}
		if err := json.Unmarshal(point.Body, &pt); err != nil || point.Status != 200 || pt.Downloads < 1 || pt.Package != "web-widget" {
			t.Errorf("downloads point: %v %s", err, point)
		}
		// The page shows it within seconds: an anonymous page is kept a
		// second, its download chart refreshed every two.
		eventually(t, 10*time.Second, "the package page shows the download", func() (bool, string) {
			body := page("/web-widget", "", 200)
			return regexp.MustCompile(`id="downloads-week">[1-9]`).MatchString(body), "no downloads on the page"
		})
		vers := reg.do("GET", "/-/downloads/versions/web-widget/last-week", "", nil)
		if !strings.Contains(string(vers.Body), `"1.2.0":`) {
			t.Errorf("downloads per version: %s", vers)
		}
		if res := reg.do("GET", "/-/downloads/point/last-day/@acme/web-secret", "", nil); res.Status != 404 {
			t.Errorf("anonymous downloads of a restricted package: %s, want 404", res)
		}
		for _, accept := range []string{"application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*", "application/json", "*/*"} {
			res, err := reg.tryDoAccept("GET", "/web-widget", "", nil, accept, 30*time.Second)
			if err != nil || res.Status != 200 || res.Body[0] != '{' || strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
				t.Errorf("Accept %q: %v %s", accept, err, res)
			}
		}
		if res := reg.do("GET", "/", "", nil); res.Status != 404 || res.Body[0] != '{' {
			t.Errorf("GET / as a client: %s, want the JSON 404", res)
		}
	})
}

// Download counts reach CouchDB within the flush interval (10 s), so
// another instance on the same databases sees them; a graceful stop
// flushes what is left.
func TestDownloadCountsAcrossInstances(t *testing.T) {
	t.Parallel()
	a := startRegistry(t, registryOpts{})
	b := startRegistry(t, registryOpts{Prefix: a.Prefix})
	pub := newNPMUser(t, a, "dlalice")
	pub.mustLogin("dlalice", "Pw-dl-alice-1a2b3c4d", "dlalice@example.com")
	pub.publish("dl-counted", "1.0.0")
	for i := 0; i < 3; i++ {
		if res := a.do("GET", "/dl-counted/-/dl-counted-1.0.0.tgz", "", nil); res.Status != 200 {
			t.Fatalf("tarball: %s", res)
		}
	}
	count := func(r *registry) int64 {
		t.Helper()
		res := r.do("GET", "/-/downloads/point/last-day/dl-counted", "", nil)
		var pt struct{ Downloads int64 }
		if err := json.Unmarshal(res.Body, &pt); err != nil || res.Status != 200 {
			t.Fatalf("point: %v %s", err, res)
		}
		return pt.Downloads
	}
	if n := count(a); n != 3 {
		t.Errorf("instance a counts %d right after the downloads, want 3", n)
	}
	start := time.Now()
	for count(b) != 3 {
		if time.Since(start) > 20*time.Second {
			t.Fatalf("instance b still sees %d after 20 s, want 3", count(b))
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("instance b saw a's downloads after %v", time.Since(start).Round(100*time.Millisecond))
	a.do("GET", "/dl-counted/-/dl-counted-1.0.0.tgz", "", nil)
	a.stop()
	// The stop flushed a's last download; b shows it within seconds (it
	// reuses a day's sums for two seconds).
	eventually(t, 10*time.Second, "b counts a's last download after a's graceful stop", func() (bool, string) {
		n := count(b)
		return n == 4, fmt.Sprintf("b counts %d, want 4", n)
	})
}
