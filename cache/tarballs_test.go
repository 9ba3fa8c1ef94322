package cache

import (
	"bytes"
	"context"
	"fmt"
	"testing"
)

func TestTarballsBoundAndEviction(t *testing.T) {
	c := NewTarballs(100, 40)
	blob := func(i int) []byte { return bytes.Repeat([]byte{byte(i)}, 30) }
	for i := range 3 {
		c.Put(fmt.Sprint(i), blob(i))
	}
	if st := c.Stats(); st.Bytes != 90 || st.Entries != 3 {
		t.Fatalf("after 3 puts: %+v", st)
	}
	if _, ok := c.Get("0"); !ok { // 0 is now the most recently used
		t.Fatal("0 missing")
	}
	c.Put("3", blob(3)) // 120 > 100: the least recently used (1) goes
	if _, ok := c.Get("1"); ok {
		t.Error("1 kept past the bound")
	}
	for _, d := range []string{"0", "2", "3"} {
		if b, ok := c.Get(d); !ok || b[0] != d[0]-'0' {
			t.Errorf("%s: %v", d, ok)
		}
	}
	if st := c.Stats(); st.Bytes != 90 || st.Entries != 3 || st.Evictions != 1 {
		t.Errorf("after eviction: %+v", st)
	}

	c.Put("big", make([]byte, 41)) // above the item limit: never kept
	c.Put("", blob(9))             // no digest: never kept
	c.Put("empty", nil)
	for _, d := range []string{"big", "", "empty"} {
		if _, ok := c.Get(d); ok {
			t.Errorf("%q kept", d)
		}
	}
	if c.Fits(41) || !c.Fits(40) || c.Fits(0) {
		t.Error("Fits")
	}
	if st := c.Stats(); st.Bytes > 100 {
		t.Errorf("over the bound: %+v", st)
	}
	// The item limit never exceeds the whole bound.
	if NewTarballs(10, 40).Fits(11) {
		t.Error("an item larger than the whole cache fits")
	}
}

// PeekPackument hands out the cached document itself (no copy, no CouchDB
// call on a hit), while GetPackument still gives each caller its own copy;
// a change still drops what Peek serves.
func TestPeekSharesTheCachedDocument(t *testing.T) {
	h := newHarness(t, 1<<20, true)
	h.db.write("a", "1.0.0")
	ctx := context.Background()
	p1, err := h.s.PeekPackument(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	p2, _ := h.s.PeekPackument(ctx, "a")
	if p1 != p2 {
		t.Error("two peeks got two copies")
	}
	if g := h.get(t, "a"); g == p1 {
		t.Error("GetPackument handed out the shared document")
	}
	if n := h.db.gets.Load(); n != 1 {
		t.Errorf("%d CouchDB reads, want 1", n)
	}
	rev := h.db.write("a", "1.1.0")
	h.change("a")
	if p3, _ := h.s.PeekPackument(ctx, "a"); p3.Rev != rev {
		t.Errorf("after a change: rev %s, want %s", p3.Rev, rev)
	}
}
