package replication

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/couchnpm/couchnpm/registry"
)

// gatedStore is a mirror database whose writes wait for a gate and fail
// while failing is set.
type gatedStore struct {
	*memPackuments
	gate    chan struct{}
	failing atomic.Int32 // writes left to fail
	puts    atomic.Int32
}

func (g *gatedStore) PutPackument(ctx context.Context, p *registry.Packument) (registry.Written, error) {
	select {
	case <-g.gate:
	case <-ctx.Done():
		return registry.Written{}, registry.Wrap(registry.KindUnavailable, ctx.Err(), "cancelled")
	}
	g.puts.Add(1)
	if g.failing.Add(-1) >= 0 {
		return registry.Written{}, registry.E(registry.KindUnavailable, "CouchDB is down")
	}
	return g.memPackuments.PutPackument(ctx, p)
}

func newGatedStore(open bool) *gatedStore {
	g := &gatedStore{memPackuments: &memPackuments{docs: map[string]*registry.Packument{}}, gate: make(chan struct{})}
	if open {
		close(g.gate)
	}
	return g
}

func newPullMirror(t *testing.T, up *countingUpstream, store PackumentStore, stats *Stats) *Mirror {
	t.Helper()
	u, err := NewUpstream(UpstreamConfig{Registry: up.srv.URL, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return newTestMirror(t, MirrorConfig{Mode: ModeOnDemand, Store: store, Upstream: u, Filter: NewFilter(nil, []string{"@corp"}), Stats: stats, Log: zerolog.Nop()})
}

// A cold read is answered once the upstream copy is read, before CouchDB
// has it; the reads that follow are served from the pending copy without
// asking the upstream again, and the write lands afterwards.
func TestPullAnswersBeforeTheWrite(t *testing.T) {
	up := newCountingUpstream(t)
	store := newGatedStore(false)
	stats := &Stats{}
	m := newPullMirror(t, up, store, stats)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	p, err := m.Packument(ctx, "cold")
	if err != nil {
		t.Fatalf("cold read with CouchDB's write held: %v", err)
	}
	if p.Name != "cold" || !strings.HasPrefix(p.Rev, "0-") {
		t.Fatalf("served %q at revision %q; want cold at a pending revision", p.Name, p.Rev)
	}
	again, err := m.Packument(ctx, "cold")
	if err != nil || again.Name != "cold" {
		t.Fatalf("second read: %v", err)
	}
	if h := up.hitsOf("cold"); h != 1 {
		t.Fatalf("the upstream was asked %d times, want 1", h)
	}
	if _, err := store.GetPackument(ctx, "cold"); !registry.IsKind(err, registry.KindNotFound) {
		t.Fatalf("stored before the write was let through: %v", err)
	}
	close(store.gate)
	if err := m.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	stored, err := store.GetPackument(ctx, "cold")
	if err != nil {
		t.Fatalf("not stored after the drain: %v", err)
	}
	if upstreamRevOf(stored) != "1-cold" {
		t.Fatalf("stored upstream revision %q", upstreamRevOf(stored))
	}
	if stats.onDemandWritten.Load() != 1 || stats.writePending.Load() != 0 {
		t.Fatalf("written %d, pending %d; want 1, 0", stats.onDemandWritten.Load(), stats.writePending.Load())
	}
}

// A write CouchDB refuses is retried with backoff; one that keeps failing
// is counted, and the next read pulls and writes the package again.
func TestPullWriteRetried(t *testing.T) {
	up := newCountingUpstream(t)
	store := newGatedStore(true)
	stats := &Stats{}
	m := newPullMirror(t, up, store, stats)
	m.writes.backoff = time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	store.failing.Store(2)
	if _, err := m.Packument(ctx, "flaky"); err != nil {
		t.Fatal(err)
	}
	if err := m.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := store.GetPackument(ctx, "flaky"); err != nil {
		t.Fatalf("a write that failed twice was not retried into CouchDB: %v", err)
	}
	if got := stats.writeRetries.Load(); got != 2 {
		t.Fatalf("%d retries counted, want 2", got)
	}

	store.failing.Store(1000)
	if _, err := m.Packument(ctx, "down"); err != nil {
		t.Fatal(err)
	}
	if err := m.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	if got := stats.writeFailed.Load(); got != 1 {
		t.Fatalf("%d failed writes counted, want 1", got)
	}
	if got := int(store.puts.Load()); got < 3+m.writes.attempts {
		t.Fatalf("%d write attempts, want %d", got, 3+m.writes.attempts)
	}
	store.failing.Store(0)
	if _, err := m.Packument(ctx, "down"); err != nil {
		t.Fatal(err)
	}
	if err := m.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	if h := up.hitsOf("down"); h != 2 {
		t.Fatalf("after a failed write the upstream was asked %d times, want 2 (the next read pulls again)", h)
	}
	if _, err := store.GetPackument(ctx, "down"); err != nil {
		t.Fatalf("the second pull was not written: %v", err)
	}
}

// A full write-behind queue makes the request write its own copy: nothing
// is dropped, the queue stays bounded.
func TestPullQueueFullWritesInline(t *testing.T) {
	up := newCountingUpstream(t)
	store := newGatedStore(false)
	stats := &Stats{}
	m := newPullMirror(t, up, store, stats)
	m.writes = newWriteBehind(writeBehindConfig{Queue: 1, Workers: 1}, m.storeOver, stats, zerolog.Nop())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// The worker takes the first and blocks at the gate; the second fills
	// the queue; the third has to write itself.
	for _, n := range []string{"q1", "q2"} {
		if _, err := m.Packument(ctx, n); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	done := make(chan error, 1)
	go func() { _, err := m.Packument(ctx, "q3"); done <- err }()
	select {
	case err := <-done:
		t.Fatalf("the third read returned (%v) with the queue full and CouchDB held", err)
	case <-time.After(200 * time.Millisecond):
	}
	close(store.gate)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := m.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	if stats.writeQueueFull.Load() != 1 || len(store.docs) != 3 {
		t.Fatalf("inline writes %d, stored %d; want 1, 3", stats.writeQueueFull.Load(), len(store.docs))
	}
}

// A pulled packument's dependencies are pulled ahead, but never a private
// scope, a name published here, or a name already stored; the queue is
// bounded and drops what does not fit.
func TestPrefetchDependencies(t *testing.T) {
	up := newCountingUpstream(t)
	up.docs["app"] = `{"_rev":"3-app","name":"app","dist-tags":{"latest":"2.0.0"},"versions":{
		"1.0.0":{"name":"app","version":"1.0.0","dependencies":{"old-dep":"^1"}},
		"2.0.0":{"name":"app","version":"2.0.0","dependencies":{"dep-a":"^1","@corp/secret":"^1","ours":"^2","stored":"^1",
			"aliased":"npm:real-name@^3","gitdep":"git+https://example.invalid/x.git","ghdep":"user/repo"},
			"optionalDependencies":{"dep-opt":"*"},"peerDependencies":{"dep-peer":">=1"}}}}`
	store := newGatedStore(true)
	store.docs["stored"] = registry.NewPackument("stored")
	stats := &Stats{}
	m := newPullMirror(t, up, store, stats).WithPrefetch(shadowsSet{"ours": true})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := m.Packument(ctx, "app"); err != nil {
		t.Fatal(err)
	}
	want := []string{"dep-a", "real-name", "dep-opt", "dep-peer"}
	deadline := time.Now().Add(5 * time.Second)
	for stats.prefetched.Load() < int64(len(want)) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if err := m.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	for _, n := range want {
		if up.hitsOf(n) != 1 {
			t.Errorf("dependency %s: %d upstream requests, want 1", n, up.hitsOf(n))
		}
		if _, err := store.GetPackument(ctx, n); err != nil {
			t.Errorf("dependency %s not stored: %v", n, err)
		}
	}
	for _, n := range []string{"@corp/secret", "ours", "stored", "old-dep", "gitdep", "ghdep", "aliased", "user/repo"} {
		if h := up.hitsOf(n); h != 0 {
			t.Errorf("%s was asked for upstream %d times; it must never be prefetched", n, h)
		}
	}
	// npm's own request for a prefetched name is served without the upstream.
	before := up.total()
	if _, err := m.Packument(ctx, "dep-a"); err != nil {
		t.Fatal(err)
	}
	if up.total() != before {
		t.Fatal("a prefetched packument was fetched again")
	}
}

func TestPrefetchBounded(t *testing.T) {
	stats := &Stats{}
	gate := make(chan struct{})
	var mu sync.Mutex
	var pulled []string
	pull := func(ctx context.Context, name string) error {
		<-gate
		mu.Lock()
		pulled = append(pulled, name)
		mu.Unlock()
		return nil
	}
	absent := func(context.Context, string) (bool, error) { return false, nil }
	pf := newPrefetcher(prefetchConfig{Queue: 3, Workers: 1}, pull, absent, NewFilter(nil, nil), shadowsSet{}, stats, zerolog.Nop())
	pf.add("first") // taken by the worker, which blocks
	time.Sleep(50 * time.Millisecond)
	for i := range 10 {
		pf.add(fmt.Sprintf("dep-%d", i))
	}
	pf.add("dep-0") // a duplicate is not queued twice
	if got := stats.prefetchDropped.Load(); got != 7 {
		t.Fatalf("%d names dropped, want 7 (queue of 3 while the only worker is busy)", got)
	}
	close(gate)
	deadline := time.Now().Add(5 * time.Second)
	for stats.prefetched.Load() < 4 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(pulled) != 4 {
		t.Fatalf("pulled %v, want first and three queued names", pulled)
	}
}

func TestLatestDependencies(t *testing.T) {
	p := registry.NewPackument("x")
	p.DistTags["latest"] = "1.0.0"
	p.Versions["1.0.0"] = []byte(`{"dependencies":{"a":"^1","@s/b":"~2","c":"npm:@s/real@1","d":"file:../d","e":"https://example.invalid/e.tgz","f":"workspace:*","g":"me/repo","h":"latest"}}`)
	got := map[string]bool{}
	for _, n := range latestDependencies(p) {
		got[n] = true
	}
	want := map[string]bool{"a": true, "@s/b": true, "@s/real": true, "h": true}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("dependencies %v, want %v", got, want)
	}
}
