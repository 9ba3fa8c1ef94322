package web

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/couchnpm/couchnpm/registry"
)

type fakeDependents struct{ calls int }

func (f *fakeDependents) Dependents(_ context.Context, name string, limit int) ([]registry.Dependent, error) {
	f.calls++
	if name != "widget" {
		return nil, nil
	}
	return []registry.Dependent{{Name: "@corp/secret", Restricted: true}, {Name: "@corp/gone", Restricted: true}, {Name: "gadget"}}, nil
}

type fakeTarballs struct{ calls int }

func (f *fakeTarballs) Existing(_ context.Context, ids []string) (map[string]bool, error) {
	f.calls++
	return map[string]bool{"mirrored-thing@1.0.0": true, "not-asked@1.0.0": true}, nil
}

const mirroredDoc = `{"_id":"mirrored-thing","_rev":"3-c","name":"mirrored-thing","couchnpm_fetched":"2024-01-01T00:00:00Z",
 "dist-tags":{"latest":"1.1.0"},"time":{"1.0.0":"2024-01-01T00:00:00.000Z","1.1.0":"2024-02-01T00:00:00.000Z"},
 "versions":{"1.0.0":{"name":"mirrored-thing","version":"1.0.0","dist":{}},"1.1.0":{"name":"mirrored-thing","version":"1.1.0","dist":{}}}}`

func TestPackagePageDependents(t *testing.T) {
	s := newSite(t)
	deps := &fakeDependents{}
	s.cfg.Dependents = deps
	page := func(user registry.Identity) string {
		rec := get(t, func(w http.ResponseWriter, r *http.Request) { s.Package(w, r, user, "widget") }, "/widget")
		if rec.Code != 200 {
			t.Fatalf("status %d", rec.Code)
		}
		return rec.Body.String()
	}
	anon := page(registry.Identity{})
	if !strings.Contains(anon, `<ul class="deps" id="dependents"><li><a href="/gadget">gadget</a></li></ul>`) {
		t.Errorf("anonymous dependents list:\n%s", anon)
	}
	if strings.Contains(anon, "secret") {
		t.Errorf("a restricted dependent is shown to an anonymous visitor")
	}
	// alice may read @corp/secret (the fake's rule); @corp/gone does not
	// exist any more: the registry's read decides, not the view.
	got := page(alice)
	if !strings.Contains(got, `<a href="/@corp/secret">@corp/secret</a>`) || strings.Contains(got, "gone") || !strings.Contains(got, "Dependents (2)") {
		t.Errorf("alice's dependents list:\n%s", got)
	}
	if deps.calls != 1 {
		t.Errorf("%d view reads for two page views, want 1 (cached)", deps.calls)
	}
}

func TestMirroredPageShowsCachedTarballs(t *testing.T) {
	s := newSite(t)
	tgz := &fakeTarballs{}
	s.cfg.Tarballs = tgz
	s.reg.(*fakeRegistry).packs["mirrored-thing"] = packument(t, mirroredDoc)
	for range 2 {
		rec := get(t, func(w http.ResponseWriter, r *http.Request) { s.Package(w, r, registry.Identity{}, "mirrored-thing") }, "/mirrored-thing")
		body := rec.Body.String()
		for _, want := range []string{`1 of the 2 newest versions`, `1.0.0</a> <span class="badge cached">cached</span>`, `1.1.0</a> <span class="muted small">not cached</span>`} {
			if !strings.Contains(body, want) {
				t.Errorf("mirrored page lacks %q", want)
			}
		}
	}
	if tgz.calls != 1 {
		t.Errorf("%d cache lookups for two views, want 1", tgz.calls)
	}
	// A private package has no such list.
	rec := get(t, func(w http.ResponseWriter, r *http.Request) { s.Package(w, r, registry.Identity{}, "widget") }, "/widget")
	if strings.Contains(rec.Body.String(), "Tarballs cached here") || tgz.calls != 1 {
		t.Errorf("a private package's page looks up the tarball cache")
	}
}

func TestTTLMapServesBusyKeysStaleWhileRefreshing(t *testing.T) {
	var clock atomic.Int64 // milliseconds
	m := &ttlMap[int]{ttl: 50 * time.Millisecond, max: 10, clock: func() time.Time { return time.UnixMilli(clock.Load()) }}
	var reads atomic.Int32
	release := make(chan struct{})
	slow := func(context.Context) (int, error) {
		n := reads.Add(1)
		if n > 1 {
			<-release
		}
		return int(n), nil
	}
	ctx := context.Background()
	if v, _ := m.load(ctx, "k", slow); v != 1 {
		t.Fatalf("first load %d", v)
	}
	clock.Add(30)
	m.load(ctx, "k", slow) // fresh; marks the key busy
	clock.Add(30)
	// Stale and busy: the old value at once, one refresh behind it.
	for range 5 {
		if v, _ := m.load(ctx, "k", slow); v != 1 {
			t.Fatalf("stale busy key gave %d, want the old 1 without waiting", v)
		}
	}
	close(release)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if v, _ := m.load(ctx, "k", slow); v == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the refresh never landed")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if n := reads.Load(); n != 2 {
		t.Errorf("%d readings, want 2 (one refresh for many stale views)", n)
	}
	// A key asked for now and then is read afresh once stale.
	clock.Add(200)
	if v, _ := m.load(ctx, "k", func(context.Context) (int, error) { return 9, nil }); v != 9 {
		t.Errorf("an idle stale key gave %d, want a fresh reading", v)
	}
}

// A cold key's first burst of requests shares one reading; a request that
// gives up waiting does not fail the reading for the others.
func TestTTLMapColdKeyReadOnce(t *testing.T) {
	m := &ttlMap[int]{ttl: time.Minute, max: 10}
	var reads atomic.Int32
	release := make(chan struct{})
	slow := func(ctx context.Context) (int, error) {
		reads.Add(1)
		select {
		case <-release:
			return 7, nil
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	first, cancelFirst := context.WithCancel(context.Background())
	results := make(chan int, 20)
	go func() { v, _ := m.load(first, "k", slow); results <- v }()
	for reads.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	var wg sync.WaitGroup
	for range 19 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, _ := m.load(context.Background(), "k", slow)
			results <- v
		}()
	}
	// The request that started the reading leaves; the reading goes on.
	cancelFirst()
	time.Sleep(20 * time.Millisecond)
	close(release)
	wg.Wait()
	for range 20 {
		if v := <-results; v != 7 {
			t.Errorf("a waiting request got %d, want 7", v)
		}
	}
	if n := reads.Load(); n != 1 {
		t.Errorf("%d readings for 20 requests of a cold key, want 1", n)
	}
	// A waiter whose own request ends gets an error, not a hang.
	m2 := &ttlMap[int]{ttl: time.Minute, max: 10}
	block := make(chan struct{})
	defer close(block)
	go func() {
		_, _ = m2.load(context.Background(), "k", func(context.Context) (int, error) { <-block; return 1, nil })
	}()
	for {
		m2.mu.Lock()
		n := len(m2.loading)
		m2.mu.Unlock()
		if n == 1 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := m2.load(ctx, "k", func(context.Context) (int, error) { return 2, nil }); err == nil {
		t.Error("a waiter past its deadline got no error")
	}
}
