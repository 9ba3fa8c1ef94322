package handlers

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/couchnpm/couchnpm/cache"
	"github.com/couchnpm/couchnpm/internal/testkit"
	"github.com/couchnpm/couchnpm/metrics"
	"github.com/couchnpm/couchnpm/registry"
	"github.com/couchnpm/couchnpm/registry/registrytest"
)

// liveStore is registrytest.MemStore as a packument cache backend whose changes feed is
// always live (a heartbeat every 100ms), so that reads are cache hits.
type liveStore struct{ *registrytest.MemStore }

func (l liveStore) DeletePackument(context.Context, string, string) error { return nil }
func (l liveStore) PackumentRev(ctx context.Context, name string) (string, error) {
	p, err := l.GetPackument(ctx, name)
	if err != nil {
		return "", err
	}
	return p.Rev, nil
}
func (l liveStore) FollowChanges(ctx context.Context, hb time.Duration, on func(string)) error {
	on("")
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			on("")
		}
	}
}

// discardWriter is a ResponseWriter that keeps nothing: the benchmarks
// measure the server's work, not a recorder's.
type discardWriter struct {
	h      http.Header
	status int
	n      int
}

func (d *discardWriter) Header() http.Header { return d.h }
func (d *discardWriter) WriteHeader(s int)   { d.status = s }
func (d *discardWriter) Write(p []byte) (int, error) {
	if d.status == 0 {
		d.status = 200
	}
	d.n += len(p)
	return len(p), nil
}

// hotPathServer is the wiring of couchnpm serve (packument cache, tarball
// cache, metrics, request log) over an in-memory store holding "hot" with
// 200 versions, each with a 20 KB tarball.
func hotPathServer(b testing.TB, versions int) http.Handler {
	b.Helper()
	store := registrytest.NewMemStore()
	c := cache.New(cache.Config{MaxBytes: 1 << 30, Heartbeat: 100 * time.Millisecond, Log: zerolog.Nop()})
	cs := c.Store("bench", liveStore{store})
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	go c.Run(ctx)
	reg := newService(b, registry.Config{Store: cs, Tarballs: cache.NewTarballs(256<<20, 4<<20)})
	m := metrics.New()
	m.WatchCache(c.Stats)
	h := mustNew(b, Config{PublicURL: "http://registry.test", MaxPublishBytes: 64 << 20, Bodies: c, Observer: m},
		realServices(reg, newFakeAccounts(), noTokens(b)), zerolog.New(io.Discard))
	for i := range versions {
		v := fmt.Sprintf("1.%d.0", i)
		tgz := testkit.Tarball("hot", v)
		tgz = append(tgz, make([]byte, 20<<10-len(tgz))...) // 20 KB, as in bench/
		body := npmPublishBody(b, "hot", v, "latest", tgz)
		req, _ := http.NewRequest("PUT", "/hot", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer cnpm_alice")
		req.Header.Set("Content-Type", "application/json")
		w := &discardWriter{h: http.Header{}}
		h.ServeHTTP(w, req)
		if w.status != 201 {
			b.Fatalf("publish %s: %d", v, w.status)
		}
	}
	time.Sleep(300 * time.Millisecond) // the feed is live
	return h
}

func benchGet(b *testing.B, h http.Handler, path string, headers ...string) {
	req, _ := http.NewRequest("GET", path, nil)
	req.RemoteAddr = "127.0.0.1:1234"
	for _, kv := range headers {
		k, v, _ := strings.Cut(kv, ": ")
		req.Header.Set(k, v)
	}
	w := &discardWriter{h: http.Header{}}
	h.ServeHTTP(w, req) // warm
	if w.status != 200 {
		b.Fatalf("GET %s: %d", path, w.status)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		w := &discardWriter{h: http.Header{}}
		h.ServeHTTP(w, req)
		if w.status != 200 {
			b.Fatalf("GET %s: %d", path, w.status)
		}
	}
}

// BenchmarkHotPackument is a warm abbreviated packument GET (gzip), 200
// versions, through the whole handler chain.
func BenchmarkHotPackument(b *testing.B) {
	h := hotPathServer(b, 200)
	benchGet(b, h, "/hot", "Accept: application/vnd.npm.install-v1+json", "Accept-Encoding: gzip")
}

// BenchmarkHotTarball is a tarball GET served from the tarball cache,
// through the whole handler chain (access checked on the cached packument
// of 200 versions).
func BenchmarkHotTarball(b *testing.B) {
	h := hotPathServer(b, 200)
	benchGet(b, h, "/hot/-/hot-1.100.0.tgz")
}

// TestSharedPackumentReadOnly drives the routes that read the packument
// cache's own copy (packument, version, tarball) concurrently: under -race
// any write into the shared document is reported.
func TestSharedPackumentReadOnly(t *testing.T) {
	h := hotPathServer(t, 10)
	paths := []struct{ path, accept string }{
		{"/hot", "application/vnd.npm.install-v1+json"},
		{"/hot", "application/json"},
		{"/hot/1.3.0", ""},
		{"/hot/latest", ""},
		{"/hot/-/hot-1.3.0.tgz", ""},
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				p := paths[(g+i)%len(paths)]
				req, _ := http.NewRequest("GET", p.path, nil)
				req.RemoteAddr = "127.0.0.1:1234"
				if p.accept != "" {
					req.Header.Set("Accept", p.accept)
				}
				if i%2 == 0 {
					req.Header.Set("Authorization", "Bearer cnpm_alice") // a maintainer: the write form
				}
				w := &discardWriter{h: http.Header{}}
				h.ServeHTTP(w, req)
				if w.status != 200 {
					t.Errorf("GET %s: %d", p.path, w.status)
				}
			}
		}()
	}
	wg.Wait()
}
