package web

import (
	"net/http"
	"sync"
	"testing"

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
