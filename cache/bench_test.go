package cache

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/couchnpm/couchnpm/registry"
)

// BenchmarkWarmHit2000 is the fast path for a 2,000-version packument: the
// store hit (a copy of the document's maps) and the cached abbreviated body.
func BenchmarkWarmHit2000(b *testing.B) {
	h := newHarness(b, 1<<30, true)
	p := registry.NewPackument("big")
	for i := range 2000 {
		v := fmt.Sprintf("%d.%d.%d", i/100, (i/10)%10, i%10)
		p.Versions[v] = json.RawMessage(`{"name":"big","version":"` + v + `","description":"` + strings.Repeat("x", 2000) + `"}`)
	}
	p.Rev = "1-0123456789abcdef0123456789abcdef"
	h.db.docs["big"] = p
	h.get(b, "big")
	render := func() ([]byte, error) { return []byte(strings.Repeat("y", 300<<10)), nil }
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		q, err := h.s.GetPackument(ctx, "big")
		if err != nil {
			b.Fatal(err)
		}
		if _, _, err := h.c.Body(q, "corgi", render); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if h.db.gets.Load() != 1 {
		b.Fatal("not served from the cache")
	}
}
