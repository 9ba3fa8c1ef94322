package web

import (
	"encoding/json"
	"maps"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/couchnpm/couchnpm/registry"
)

// TestPagesOnlyReadThePackument renders the pages that read packuments
// (package, version, home) concurrently over the same documents, as the
// registry's SharedPackument hands out the packument cache's own copy:
// under -race any write into it is reported.
func TestPagesOnlyReadThePackument(t *testing.T) {
	s := newSite(t)
	s.cfg.Downloads = fakeDownloads{"2024-03-01": 3}
	s.cfg.Dependents = &fakeDependents{}
	pages := []struct {
		path string
		fn   func(w http.ResponseWriter, r *http.Request, user registry.Identity)
	}{
		{"/widget", func(w http.ResponseWriter, r *http.Request, u registry.Identity) { s.Package(w, r, u, "widget") }},
		{"/@corp/secret", func(w http.ResponseWriter, r *http.Request, u registry.Identity) { s.Package(w, r, u, "@corp/secret") }},
		{"/-/web/package/widget/v/1.1.0", s.ServeWeb},
		{"/", s.Home},
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				p := pages[(g+i)%len(pages)]
				user := registry.Identity{}
				if i%2 == 0 {
					user = alice
				}
				rec := get(t, func(w http.ResponseWriter, r *http.Request) { p.fn(w, r, user) }, p.path)
				if rec.Code != 200 && !(rec.Code == 404 && user.Anonymous()) {
					t.Errorf("%s as %q: %d", p.path, user.Name, rec.Code)
				}
			}
		}()
	}
	wg.Wait()
}

// The anonymous page cache never outlives what the reader may see: the
// packument read (and its access rule) runs before it on every request, so
// a package made restricted (even under the same revision) or unpublished
// is gone at once, a new revision shows at once, and a signed-in page is
// never served from it nor put into it.
func TestAnonymousPageCacheFollowsAccess(t *testing.T) {
	s := newSite(t)
	reg := s.reg.(*fakeRegistry)
	page := func(user registry.Identity) (int, string) {
		rec := get(t, func(w http.ResponseWriter, r *http.Request) { s.Package(w, r, user, "widget") }, "/widget")
		return rec.Code, rec.Body.String()
	}
	if code, body := page(registry.Identity{}); code != 200 || !strings.Contains(body, "Makes widgets") {
		t.Fatalf("anonymous: %d", code)
	}
	// Signed in: the layout names the user; the anonymous copy does not.
	if _, body := page(alice); !strings.Contains(body, "alice") || !strings.Contains(body, "Log out") {
		t.Errorf("alice's page was not rendered for alice")
	}
	if _, body := page(registry.Identity{}); strings.Contains(body, "Log out") {
		t.Errorf("an anonymous visitor got a signed-in page")
	}
	// Made restricted under the same revision: anonymous visitors get the
	// not-found page within the anonymous page's lifetime, alice the page.
	restricted := *reg.packs["widget"]
	restricted.Fields = maps.Clone(restricted.Fields)
	restricted.Fields["access"] = json.RawMessage(`"restricted"`)
	reg.packs["widget"] = &restricted
	if code, body := page(registry.Identity{}); code != 404 || strings.Contains(body, "Makes widgets") || strings.Contains(body, "Use it.") {
		t.Errorf("a package made restricted: anonymous got %d, want 404 without its description or README", code)
	}
	if code, _ := page(alice); code != 200 {
		t.Errorf("a restricted package: alice got %d, want 200", code)
	}
	// Public again, then a new revision: shown at once, not the kept copy.
	public := restricted
	public.Fields = maps.Clone(restricted.Fields)
	delete(public.Fields, "access")
	public.Fields["description"] = json.RawMessage(`"Makes better widgets"`)
	public.Rev = "3-c"
	reg.packs["widget"] = &public
	if code, body := page(registry.Identity{}); code != 200 || !strings.Contains(body, "Makes better widgets") {
		t.Errorf("a new revision: anonymous got %d, an old copy or none", code)
	}
	// Unpublished: gone at once.
	delete(reg.packs, "widget")
	if code, _ := page(registry.Identity{}); code != 404 {
		t.Errorf("an unpublished package: anonymous got %d, want 404", code)
	}
}

// An expired anonymous page is rendered by one request while the others
// are sent the old copy, for a bounded time.
func TestShortCacheOneRendererWhileStale(t *testing.T) {
	now := time.Unix(1000, 0)
	c := &shortCache{ttl: time.Second, max: 10, clock: func() time.Time { return now }}
	sends := func(what string, want string) {
		t.Helper()
		body, ok := c.fresh("k")
		switch {
		case want == "" && ok:
			t.Errorf("%s: sent %q, want this request to render", what, body)
		case want != "" && (!ok || string(body) != want):
			t.Errorf("%s: %q %v, want %q sent", what, body, ok, want)
		}
	}
	sends("cold", "")
	c.set("k", []byte("v1"))
	sends("fresh", "v1")
	now = now.Add(time.Second)
	sends("expired: the first request", "")
	sends("expired: while it renders", "v1")
	sends("expired: while it renders", "v1")
	c.set("k", []byte("v2"))
	sends("rendered anew", "v2")
	// A re-rendering that never ends is handed on after a ttl.
	now = now.Add(time.Second)
	sends("expired again: the first request", "")
	now = now.Add(time.Second - time.Millisecond)
	sends("its render still running", "v2")
	now = now.Add(time.Millisecond)
	sends("its render given up: the next request", "")
	sends("the new render running", "v2")
	// Too old to send at all: every request renders.
	now = now.Add(staleFor * time.Second)
	sends("past staleFor", "")
	sends("past staleFor", "")
}
