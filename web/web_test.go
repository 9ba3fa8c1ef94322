package web

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/couchnpm/couchnpm/downloads"
	"github.com/couchnpm/couchnpm/handlers"
	"github.com/couchnpm/couchnpm/registry"
)

// fakeRegistry applies the registry's read rule: a restricted package is
// not found for anonymous callers.
type fakeRegistry struct {
	packs    map[string]*registry.Packument
	hits     []registry.SearchHit
	err      error
	onSearch func(text string)
}

func (f *fakeRegistry) SharedPackument(_ context.Context, user registry.Identity, name string) (*registry.Packument, error) {
	if f.err != nil {
		return nil, f.err
	}
	p, ok := f.packs[name]
	if !ok || (user.Anonymous() && registry.AccessOf(p) == registry.AccessRestricted) {
		return nil, registry.E(registry.KindNotFound, "not_found")
	}
	return p, nil
}

func (f *fakeRegistry) Search(_ context.Context, user registry.Identity, q registry.SearchQuery) ([]registry.SearchHit, int, error) {
	if f.onSearch != nil {
		f.onSearch(q.Text)
	}
	if f.err != nil {
		return nil, 0, f.err
	}
	var out []registry.SearchHit
	for _, h := range f.hits {
		if h.Restricted && user.Anonymous() {
			continue
		}
		out = append(out, h)
	}
	total := len(out)
	if q.From < len(out) {
		out = out[q.From:]
	} else {
		out = nil
	}
	if len(out) > q.Size {
		out = out[:q.Size]
	}
	return out, total, nil
}

// StarredBy: alice starred both packages; anonymous callers see the
// public one only.
func (f *fakeRegistry) StarredBy(_ context.Context, user registry.Identity, who string) ([]string, error) {
	if who != "alice" {
		return nil, nil
	}
	if user.Anonymous() {
		return []string{"widget"}, nil
	}
	return []string{"@corp/secret", "widget"}, nil
}

type fakeRecent []string

func (f fakeRecent) RecentlyModified(context.Context, int) ([]string, error) { return f, nil }

func packument(t *testing.T, doc string) *registry.Packument {
	t.Helper()
	var p registry.Packument
	if err := json.Unmarshal([]byte(doc), &p); err != nil {
		t.Fatal(err)
	}
	return &p
}

const publicDoc = `{"_id":"widget","_rev":"2-a","name":"widget","description":"Makes widgets",
 "readme":"# Widget\n\nUse it.\n\n<script>alert('readme')</script><img src=x onerror=alert(1)>",
 "license":"MIT","repository":{"type":"git","url":"git+https://git.example.com/w/widget.git"},
 "homepage":"javascript:alert(1)","keywords":["tools","widgets"],
 "dist-tags":{"latest":"1.1.0","next":"2.0.0-rc.1"},"maintainers":[{"name":"alice"}],
 "time":{"created":"2024-01-01T00:00:00.000Z","modified":"2024-03-01T00:00:00.000Z","1.0.0":"2024-01-01T00:00:00.000Z","1.1.0":"2024-02-01T00:00:00.000Z","2.0.0-rc.1":"2024-03-01T00:00:00.000Z"},
 "versions":{
  "1.0.0":{"name":"widget","version":"1.0.0","deprecated":"use 1.1","dist":{"integrity":"sha512-one"}},
  "1.1.0":{"name":"widget","version":"1.1.0","dependencies":{"@s/dep":"^1","//evil.example":"1","lodash":"^4"},"dist":{"integrity":"sha512-two","shasum":"abc","unpackedSize":2048,"fileCount":3}},
  "2.0.0-rc.1":{"name":"widget","version":"2.0.0-rc.1","dist":{}}},
 "_attachments":{"widget-1.1.0.tgz":{"length":1536,"stub":true}}}`

const restrictedDoc = `{"_id":"@corp/secret","_rev":"1-b","name":"@corp/secret","access":"restricted",
 "description":"secret sauce","readme":"TOP SECRET README",
 "dist-tags":{"latest":"1.0.0"},"maintainers":[{"name":"alice"}],
 "time":{"modified":"2024-03-02T00:00:00.000Z","1.0.0":"2024-03-02T00:00:00.000Z"},
 "versions":{"1.0.0":{"name":"@corp/secret","version":"1.0.0","dist":{}}}}`

func newSite(t *testing.T) *Site {
	t.Helper()
	reg := &fakeRegistry{packs: map[string]*registry.Packument{}}
	for _, d := range []string{publicDoc, restrictedDoc} {
		p := packument(t, d)
		reg.packs[p.Name] = p
	}
	reg.hits = []registry.SearchHit{
		{SearchRow: registry.SearchRow{Name: "widget", Version: "1.1.0", Description: "Makes widgets", Keywords: []string{"tools"}}},
		{SearchRow: registry.SearchRow{Name: "@corp/secret", Version: "1.0.0", Description: "secret sauce", Restricted: true}},
	}
	for i := 0; i < 45; i++ {
		reg.hits = append(reg.hits, registry.SearchHit{SearchRow: registry.SearchRow{Name: "many-" + string(rune('a'+i%26)) + strings.Repeat("x", i/26), Version: "1.0.0"}})
	}
	return New(Config{PublicURL: "https://npm.example.com", Recent: fakeRecent{"@corp/secret", "widget", "gone"}}, reg)
}

var alice = registry.Identity{Name: "alice"}

func get(t *testing.T, fn func(w http.ResponseWriter, r *http.Request), target string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	fn(rec, httptest.NewRequest("GET", target, nil))
	return rec
}

func TestPackagePage(t *testing.T) {
	s := newSite(t)
	rec := get(t, func(w http.ResponseWriter, r *http.Request) { s.Package(w, r, registry.Identity{}, "widget") }, "/widget")
	if rec.Code != 200 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	body := rec.Body.String()
	for _, want := range []string{
		`<h1 id="pkg-name">widget</h1>`, `id="latest">1.1.0<`, "Makes widgets", "<h1>Widget</h1>",
		"npm install widget", "pnpm add widget", "yarn add widget", `data-copy="npm install widget"`,
		`href="https://git.example.com/w/widget"`, `id="license">MIT<`, "1.5 kB", "sha512-two", "2.0 kB, 3 files",
		`href="/@s/dep"`, `href="/lodash"`, `href="/%2F%2Fevil.example"`, // escaped: never protocol-relative
		`href="/-/web/package/widget/v/1.0.0"`, `<span class="tag">next</span>`, "deprecated",
		`<span class="badge private">private</span>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	for _, bad := range []string{"<script>alert", "onerror", "javascript:", `href="//evil`} {
		if strings.Contains(body, bad) {
			t.Errorf("page contains %q", bad)
		}
	}
	h := rec.Header()
	if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") || strings.Contains(csp, "unsafe-inline") {
		t.Errorf("CSP = %q", csp)
	}
	if ct := h.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("Content-Type = %q", ct)
	}
	if strings.Contains(body, "<script>") || strings.Contains(body, " style=") {
		t.Errorf("inline script or style in the page (the CSP forbids them)")
	}
}

// A restricted package, its README and its listing are invisible to an
// anonymous visitor, exactly like a package that does not exist.
func TestRestrictedPackageIsInvisibleToAnonymous(t *testing.T) {
	s := newSite(t)
	anon := get(t, func(w http.ResponseWriter, r *http.Request) { s.Package(w, r, registry.Identity{}, "@corp/secret") }, "/@corp/secret")
	missing := get(t, func(w http.ResponseWriter, r *http.Request) { s.Package(w, r, registry.Identity{}, "@corp/nothing") }, "/@corp/nothing")
	if anon.Code != 404 || missing.Code != 404 {
		t.Fatalf("status %d / %d, want 404 for both", anon.Code, missing.Code)
	}
	if strings.ReplaceAll(anon.Body.String(), "secret", "nothing") != missing.Body.String() {
		t.Errorf("a restricted package's page differs from a missing one's:\n%s\n---\n%s", anon.Body, missing.Body)
	}
	for name, rec := range map[string]*httptest.ResponseRecorder{
		"home":    get(t, func(w http.ResponseWriter, r *http.Request) { s.Home(w, r, registry.Identity{}) }, "/"),
		"search":  get(t, func(w http.ResponseWriter, r *http.Request) { s.ServeWeb(w, r, registry.Identity{}) }, "/-/web/search?q=s"),
		"version": get(t, func(w http.ResponseWriter, r *http.Request) { s.ServeWeb(w, r, registry.Identity{}) }, "/-/web/package/@corp/secret/v/1.0.0"),
	} {
		if strings.Contains(rec.Body.String(), "secret sauce") || strings.Contains(rec.Body.String(), "TOP SECRET") {
			t.Errorf("%s shows the restricted package to an anonymous visitor", name)
		}
	}
	// Logged in, it is there.
	rec := get(t, func(w http.ResponseWriter, r *http.Request) { s.Package(w, r, alice, "@corp/secret") }, "/@corp/secret")
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), "TOP SECRET README") || !strings.Contains(rec.Body.String(), "restricted") {
		t.Errorf("logged in: %d %s", rec.Code, rec.Body)
	}
	if cc := rec.Header().Get("Cache-Control"); !strings.HasPrefix(cc, "private") {
		t.Errorf("a logged-in page is cacheable by shared caches: %q", cc)
	}
	home := get(t, func(w http.ResponseWriter, r *http.Request) { s.Home(w, r, alice) }, "/")
	if !strings.Contains(home.Body.String(), "secret sauce") {
		t.Errorf("home hides the restricted package from a logged-in user")
	}
	v := get(t, func(w http.ResponseWriter, r *http.Request) { s.ServeWeb(w, r, alice) }, "/-/web/package/@corp/secret/v/1.0.0")
	if v.Code != 200 || !strings.Contains(v.Body.String(), "/@corp/secret/-/secret-1.0.0.tgz") {
		t.Errorf("version page for alice: %d %s", v.Code, v.Body)
	}
}

func TestSearchPage(t *testing.T) {
	s := newSite(t)
	rec := get(t, func(w http.ResponseWriter, r *http.Request) { s.ServeWeb(w, r, registry.Identity{}) }, "/-/web/search?q=w")
	body := rec.Body.String()
	if rec.Code != 200 || !strings.Contains(body, `href="/widget"`) || !strings.Contains(body, "46 packages") {
		t.Fatalf("search: %d %s", rec.Code, body)
	}
	if !strings.Contains(body, `href="/-/web/search?page=2&amp;q=w"`) || !strings.Contains(body, "page 1 of 3") {
		t.Errorf("no pagination to page 2 in:\n%s", body)
	}
	rec = get(t, func(w http.ResponseWriter, r *http.Request) { s.ServeWeb(w, r, registry.Identity{}) }, "/-/web/search?q=w&page=3")
	if strings.Contains(rec.Body.String(), `rel="next"`) || !strings.Contains(rec.Body.String(), `rel="prev"`) {
		t.Errorf("last page links: %s", rec.Body)
	}
	if n := strings.Count(rec.Body.String(), `class="name"`); n != 6 {
		t.Errorf("last page shows %d hits, want 6", n)
	}
}

func TestVersionPage(t *testing.T) {
	s := newSite(t)
	rec := get(t, func(w http.ResponseWriter, r *http.Request) { s.ServeWeb(w, r, registry.Identity{}) }, "/-/web/package/widget/v/1.0.0")
	body := rec.Body.String()
	if rec.Code != 200 || !strings.Contains(body, "use 1.1") || !strings.Contains(body, `href="/widget/-/widget-1.0.0.tgz"`) {
		t.Fatalf("version page: %d %s", rec.Code, body)
	}
	for _, tc := range []struct {
		path string
		want int
	}{
		{"/-/web/package/widget/v/9.9.9", 404},
		{"/-/web/package/widget", 404},
		{"/-/web/package/Bad%20Name/v/1.0.0", 400},
		{"/-/web/nothing", 404},
		{"/-/web/static/style.css", 200},
		{"/-/web/static/copy.js", 200},
	} {
		rec := get(t, func(w http.ResponseWriter, r *http.Request) { s.ServeWeb(w, r, registry.Identity{}) }, tc.path)
		if rec.Code != tc.want {
			t.Errorf("GET %s = %d, want %d", tc.path, rec.Code, tc.want)
		}
	}
}

func TestOutageIsA503Page(t *testing.T) {
	s := New(Config{}, &fakeRegistry{err: registry.E(registry.KindUnavailable, "couchdb at 10.0.0.5 is down")})
	rec := get(t, func(w http.ResponseWriter, r *http.Request) { s.Package(w, r, registry.Identity{}, "widget") }, "/widget")
	if rec.Code != 503 || strings.Contains(rec.Body.String(), "10.0.0.5") {
		t.Errorf("outage: %d %s", rec.Code, rec.Body)
	}
}

func TestWebURL(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"https://git.example.com/a/b", "https://git.example.com/a/b"},
		{"git+https://git.example.com/a/b.git", "https://git.example.com/a/b"},
		{"git://git.example.com/a/b.git", "https://git.example.com/a/b"},
		{"javascript:alert(1)", ""},
		{"JavaScript:alert(1)", ""},
		{"data:text/html,x", ""},
		{"git@git.example.com:a/b.git", ""},
		{"//evil.example/x", ""},
		{"https://user:pw@git.example.com/a", ""},
		{"", ""},
	} {
		if got := webURL(tc.in); got != tc.want {
			t.Errorf("webURL(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestLoginPage(t *testing.T) {
	s := newSite(t)
	rec := get(t, func(w http.ResponseWriter, r *http.Request) {
		s.Login(w, r, registry.Identity{}, handlers.LoginPage{CSRF: "c5rf", Next: "/widget", Error: "name or password is incorrect", Status: 401, Name: "bob"})
	}, "/-/web/login")
	body := rec.Body.String()
	if rec.Code != 401 {
		t.Errorf("status %d", rec.Code)
	}
	for _, want := range []string{`name="csrf" value="c5rf"`, `name="next" value="/widget"`, `value="bob"`, "name or password is incorrect", `action="/-/web/login"`} {
		if !strings.Contains(body, want) {
			t.Errorf("login page lacks %q", want)
		}
	}
	// Every page links to the log-in form with its own address.
	rec = get(t, func(w http.ResponseWriter, r *http.Request) { s.Package(w, r, registry.Identity{}, "widget") }, "/widget?tab=x")
	if !strings.Contains(rec.Body.String(), `href="/-/web/login?next=%2fwidget%3ftab%3dx"`) {
		t.Errorf("no log-in link back to the page in:\n%s", rec.Body)
	}
}

type fakeDownloads map[string]int64 // day → downloads of every package

func (f fakeDownloads) Days(_ context.Context, _ string, from, to time.Time) ([]downloads.DayCount, error) {
	var out []downloads.DayCount
	for d := from; !d.After(to); d = d.AddDate(0, 0, 1) {
		out = append(out, downloads.DayCount{Day: d.Format(time.DateOnly), Downloads: f[d.Format(time.DateOnly)]})
	}
	return out, nil
}

func TestPackagePageDownloads(t *testing.T) {
	s := newSite(t)
	today := time.Now().UTC().Truncate(24 * time.Hour)
	s.cfg.Downloads = fakeDownloads{
		today.Format(time.DateOnly):                    4,
		today.AddDate(0, 0, -6).Format(time.DateOnly):  2, // in the week
		today.AddDate(0, 0, -7).Format(time.DateOnly):  8, // in the month only
		today.AddDate(0, 0, -30).Format(time.DateOnly): 100,
	}
	body := get(t, func(w http.ResponseWriter, r *http.Request) { s.Package(w, r, registry.Identity{}, "widget") }, "/widget").Body.String()
	for _, want := range []string{`id="downloads-week">6<`, "14 last 30 days", `class="b h100"`, `class="b h50"`, `class="b h0"`} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if n := strings.Count(body, `<span class="b `); n != 30 {
		t.Errorf("%d bars, want 30", n)
	}
}

func TestPackagePageCachedPerRevision(t *testing.T) {
	s := newSite(t)
	reg := s.reg.(*fakeRegistry)
	page := func() string {
		return get(t, func(w http.ResponseWriter, r *http.Request) { s.Package(w, r, registry.Identity{}, "widget") }, "/widget").Body.String()
	}
	page()
	p := *reg.packs["widget"]
	p.Fields = map[string]json.RawMessage{}
	for k, v := range reg.packs["widget"].Fields {
		p.Fields[k] = v
	}
	p.Fields["readme"] = json.RawMessage(`"# Changed"`)
	reg.packs["widget"] = &p
	if strings.Contains(page(), "<h1>Changed</h1>") {
		t.Errorf("the same revision was rendered again")
	}
	p.Rev = "3-b"
	if !strings.Contains(page(), "<h1>Changed</h1>") {
		t.Errorf("a new revision shows the old README")
	}
}

func TestUserPage(t *testing.T) {
	s := newSite(t)
	reg := s.reg.(*fakeRegistry)
	var asked []string
	reg.onSearch = func(q string) { asked = append(asked, q) }
	rec := get(t, func(w http.ResponseWriter, r *http.Request) { s.ServeWeb(w, r, registry.Identity{}) }, "/-/web/user/alice")
	body := rec.Body.String()
	if rec.Code != 200 || !strings.Contains(body, `<h1 id="user-name">alice</h1>`) || !strings.Contains(body, `href="/widget"`) {
		t.Fatalf("user page: %d %s", rec.Code, body)
	}
	if len(asked) != 1 || asked[0] != "maintainer:alice" {
		t.Errorf("searched %v, want maintainer:alice", asked)
	}
	if strings.Contains(body, "secret") {
		t.Errorf("the anonymous user page shows the restricted package")
	}
	rec = get(t, func(w http.ResponseWriter, r *http.Request) { s.ServeWeb(w, r, alice) }, "/-/web/user/alice")
	if !strings.Contains(rec.Body.String(), `href="/@corp/secret"`) {
		t.Errorf("logged in, the stars lack the restricted package")
	}
	if rec := get(t, func(w http.ResponseWriter, r *http.Request) { s.ServeWeb(w, r, registry.Identity{}) }, "/-/web/user/%2F%2Fevil"); rec.Code != 404 {
		t.Errorf("invalid user name: %d", rec.Code)
	}
	pkg := get(t, func(w http.ResponseWriter, r *http.Request) { s.Package(w, r, registry.Identity{}, "widget") }, "/widget").Body.String()
	if !strings.Contains(pkg, `<a href="/-/web/user/alice">alice</a>`) {
		t.Errorf("maintainers are not linked to their pages")
	}
}
