package web

import (
	"net/http/httptest"
	"testing"

	"github.com/couchnpm/couchnpm/registry"
)

// BenchmarkPackagePage renders a warm package page (README already
// rendered for the revision) over an in-memory registry: the page's own
// cost, without CouchDB.
func BenchmarkPackagePage(b *testing.B) {
	s := newSite(&testing.T{})
	req := httptest.NewRequest("GET", "/widget", nil)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			rec := httptest.NewRecorder()
			s.Package(rec, req, registry.Identity{}, "widget")
			if rec.Code != 200 {
				b.Fatalf("status %d", rec.Code)
			}
		}
	})
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
