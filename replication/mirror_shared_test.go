package replication

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/couchnpm/couchnpm/registry"
)

// One upstream fetch serves every waiter (singleflight), and each waiter
// gets a packument of its own: one changing its copy (publish merges,
// rendering) must not change the others' nor the stored one.
func TestPullHandsEachWaiterItsOwnCopy(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 8)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-release
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"_id":"lib","_rev":"3-up","name":"lib","dist-tags":{"latest":"1.0.0"},"versions":{"1.0.0":{"name":"lib","version":"1.0.0"}}}`))
	}))
	t.Cleanup(srv.Close)
	up, err := NewUpstream(UpstreamConfig{Registry: srv.URL, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	store := &memPackuments{docs: map[string]*registry.Packument{}}
	m := newTestMirror(t, MirrorConfig{Mode: ModeOnDemand, Store: store, Upstream: up})
	t.Cleanup(m.Close)

	const waiters = 4
	got := make([]*registry.Packument, waiters)
	var wg sync.WaitGroup
	for i := range waiters {
		wg.Go(func() {
			p, err := m.pull(context.Background(), "lib", false)
			if err != nil {
				t.Error(err)
				return
			}
			got[i] = p
			p.DistTags["latest"] = "mine" // under -race: a shared map is reported
		})
	}
	<-entered
	close(release)
	wg.Wait()
	for i, p := range got {
		for j := range i {
			if p == got[j] {
				t.Errorf("waiters %d and %d got the same packument", j, i)
			}
		}
	}
	if err := m.Drain(context.Background()); err != nil { // the write-behind has stored its copy
		t.Fatal(err)
	}
	store.mu.Lock()
	defer store.mu.Unlock()
	if tag := store.docs["lib"].DistTags["latest"]; tag != "1.0.0" {
		t.Errorf("a waiter's change reached the stored packument: latest = %q", tag)
	}
}

// The clean-up of a broken download waits without its own clock: Close
// (shutdown) ends it at once and waits for it, and none starts after.
func TestMirrorCloseEndsCleanups(t *testing.T) {
	docs := &memDocStore{docs: map[string][]byte{}} // the staging document never shows up
	m := newTestMirror(t, MirrorConfig{Mode: ModeOnDemand, Tarballs: docs})
	ended := make(chan struct{})
	m.cleanup.goWith(func(ctx context.Context) {
		defer close(ended)
		m.discardBroken(ctx, "staging:lib@1.0.0:x")
	})
	start := time.Now()
	m.Close()
	select {
	case <-ended:
	default:
		t.Fatal("Close returned before the clean-up ended")
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Close waited %v: the clean-up slept past its context", took)
	}
	ran := false
	m.cleanup.goWith(func(context.Context) { ran = true })
	if ran {
		t.Error("a clean-up started after Close")
	}
}
