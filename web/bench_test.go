package web

import (
	"net/http/httptest"
	"testing"

	"github.com/couchnpm/couchnpm/registry"
)

// BenchmarkPackagePage is a warm package page over an in-memory registry
// with download counts and dependents on: the page's own cost, without
// CouchDB. anonymous is the common case (the page is sent from memory
// while its revision stands); signed-in renders the layout around the
// revision's cached fragments on every view.
func BenchmarkPackagePage(b *testing.B) {
	for _, bc := range []struct {
		name string
		user registry.Identity
	}{{"anonymous", registry.Identity{}}, {"signed-in", alice}} {
		b.Run(bc.name, func(b *testing.B) {
			s := newSite(&testing.T{})
			s.cfg.Downloads = fakeDownloads{"2024-03-01": 3}
			s.cfg.Dependents = &fakeDependents{}
			req := httptest.NewRequest("GET", "/widget", nil)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					rec := httptest.NewRecorder()
					s.Package(rec, req, bc.user, "widget")
					if rec.Code != 200 {
						b.Fatalf("status %d", rec.Code)
					}
				}
			})
		})
	}
}

// BenchmarkRenderReadme is the cold path: markdown and sanitizing of a
// README of about 6 kB.
func BenchmarkRenderReadme(b *testing.B) {
	src := ""
	for i := 0; i < 40; i++ {
		src += "## Section\n\nSome *text* with a [link](https://example.com/x) and `code`.\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n"
	}
	b.SetBytes(int64(len(src)))
	for i := 0; i < b.N; i++ {
		RenderReadme(src)
	}
}
