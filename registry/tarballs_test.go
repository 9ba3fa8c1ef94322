package registry

import (
	"bytes"
	"context"
	"io"
	"sync"
	"testing"
)

// mapTarballs is a TarballCache without a bound.
type mapTarballs struct {
	mu   sync.Mutex
	m    map[string][]byte
	max  int64
	puts int
}

func newMapTarballs(maxItem int64) *mapTarballs {
	return &mapTarballs{m: map[string][]byte{}, max: maxItem}
}

func (c *mapTarballs) Get(d string) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.m[d]
	return b, ok
}
func (c *mapTarballs) Fits(n int64) bool { return n > 0 && n <= c.max }
func (c *mapTarballs) Put(d string, b []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m[d] = b
	c.puts++
}

// fetchTarball reads a tarball the way the handler does: the whole body.
func fetchTarball(t *testing.T, s *Service, user Identity, name, file string) (*Tarball, []byte, error) {
	t.Helper()
	tb, err := s.Tarball(context.Background(), user, name, file, false)
	if err != nil {
		return nil, nil, err
	}
	if tb.Data != nil {
		return tb, tb.Data, nil
	}
	defer tb.Body.Close()
	b, err := io.ReadAll(tb.Body)
	if err != nil {
		t.Fatal(err)
	}
	return tb, b, nil
}

func TestTarballCache(t *testing.T) {
	ctx := context.Background()
	setup := func(t *testing.T) (*Service, *memStore, *mapTarballs, []byte) {
		c := newMapTarballs(1 << 20)
		s, store := cmdServiceWith(t, Config{Tarballs: c})
		want := store.tarballs["p"]["p-1.0.0.tgz"]
		return s, store, c, want
	}

	t.Run("a miss costs one store request and fills; a hit costs none", func(t *testing.T) {
		s, store, c, want := setup(t)
		tb, got, err := fetchTarball(t, s, cmdAlice, "p", "p-1.0.0.tgz")
		if err != nil || !bytes.Equal(got, want) || tb.Data != nil {
			t.Fatalf("miss: err %v, same bytes %v, from memory %v", err, bytes.Equal(got, want), tb.Data != nil)
		}
		if store.opens != 1 || c.puts != 1 {
			t.Fatalf("miss: %d store requests, %d fills; want 1 and 1", store.opens, c.puts)
		}
		if tb.Digest != md5B64(want) || tb.Size != int64(len(want)) {
			t.Errorf("miss: digest %q size %d", tb.Digest, tb.Size)
		}
		for range 3 {
			tb, got, err = fetchTarball(t, s, cmdAlice, "p", "p-1.0.0.tgz")
			if err != nil || tb.Data == nil || !bytes.Equal(got, want) || tb.Digest != md5B64(want) || tb.Size != int64(len(want)) {
				t.Fatalf("hit: err %v, from memory %v, same bytes %v", err, tb != nil && tb.Data != nil, bytes.Equal(got, want))
			}
		}
		if store.opens != 1 {
			t.Errorf("hits asked the store: %d requests in all", store.opens)
		}
		// HEAD: the packument's stub says it all.
		h, err := s.Tarball(ctx, cmdAlice, "p", "p-1.1.0.tgz", true)
		if err != nil || h.Size != int64(len(store.tarballs["p"]["p-1.1.0.tgz"])) || h.Digest != md5B64(store.tarballs["p"]["p-1.1.0.tgz"]) || store.opens != 1 {
			t.Errorf("HEAD: %+v %v, %d store requests", h, err, store.opens)
		}
	})

	t.Run("an unpublished version is not served from memory", func(t *testing.T) {
		s, _, c, _ := setup(t)
		fetchTarball(t, s, cmdAlice, "p", "p-1.0.0.tgz")
		if c.puts != 1 {
			t.Fatal("not filled")
		}
		if err := s.modify(ctx, cmdAlice, "p", func(doc *Packument) error { removeVersion(doc, "1.0.0"); return nil }); err != nil {
			t.Fatal(err)
		}
		for _, head := range []bool{false, true} {
			_, err := s.Tarball(ctx, cmdAlice, "p", "p-1.0.0.tgz", head)
			wantKind(t, err, KindNotFound)
		}
	})

	t.Run("a package unpublished entirely is not served from memory", func(t *testing.T) {
		s, store, c, _ := setup(t)
		fetchTarball(t, s, cmdAlice, "p", "p-1.0.0.tgz")
		if c.puts != 1 {
			t.Fatal("not filled")
		}
		if err := s.Unpublish(ctx, cmdAlice, "p", store.stored(t, "p").Rev); err != nil {
			t.Fatal(err)
		}
		_, _, err := fetchTarball(t, s, cmdAlice, "p", "p-1.0.0.tgz")
		wantKind(t, err, KindNotFound)
	})

	t.Run("a restricted package stays invisible to others, even when hot", func(t *testing.T) {
		s, _, _, want := setup(t)
		fetchTarball(t, s, cmdBob, "p", "p-1.0.0.tgz") // public still: bob fills the cache
		if err := s.SetAccess(ctx, cmdAlice, "p", AccessRestricted); err != nil {
			t.Fatal(err)
		}
		for _, who := range []Identity{cmdBob, {}} {
			for _, head := range []bool{false, true} {
				_, err := s.Tarball(ctx, who, "p", "p-1.0.0.tgz", head)
				wantKind(t, err, KindNotFound)
			}
		}
		tb, got, err := fetchTarball(t, s, cmdAlice, "p", "p-1.0.0.tgz")
		if err != nil || tb.Data == nil || !bytes.Equal(got, want) {
			t.Errorf("the maintainer: %v, from memory %v", err, tb != nil && tb.Data != nil)
		}
	})

	t.Run("bytes that do not match the digest are never kept", func(t *testing.T) {
		s, store, c, want := setup(t)
		bad := bytes.Clone(want)
		bad[len(bad)-1] ^= 1
		store.tarballs["p"]["p-1.0.0.tgz"] = bad // the store's ETag is then of bad: make it lie
		s.store = lyingStore{store, md5B64(want)}
		fetchTarball(t, s, cmdAlice, "p", "p-1.0.0.tgz")
		if c.puts != 0 {
			t.Errorf("kept bytes whose md5 is not the digest")
		}
	})

	t.Run("a stream read in part is not kept", func(t *testing.T) {
		s, _, c, _ := setup(t)
		tb, err := s.Tarball(ctx, cmdAlice, "p", "p-1.0.0.tgz", false)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = tb.Body.Read(make([]byte, 10))
		tb.Body.Close()
		if c.puts != 0 {
			t.Errorf("kept a tarball read in part")
		}
	})

	t.Run("a tarball too big for the cache streams and is not kept", func(t *testing.T) {
		s, store, c, _ := setup(t)
		c.max = 10
		for range 2 {
			if tb, _, err := fetchTarball(t, s, cmdAlice, "p", "p-1.0.0.tgz"); err != nil || tb.Data != nil {
				t.Fatalf("%v, from memory %v", err, tb != nil && tb.Data != nil)
			}
		}
		if c.puts != 0 || store.opens != 2 {
			t.Errorf("%d fills, %d store requests", c.puts, store.opens)
		}
	})
}

// lyingStore answers every tarball with the given digest.
type lyingStore struct {
	*memStore
	digest string
}

func (l lyingStore) OpenTarball(ctx context.Context, name, att string) (*Tarball, error) {
	t, err := l.memStore.OpenTarball(ctx, name, att)
	if t != nil {
		t.Digest = l.digest
	}
	return t, err
}
