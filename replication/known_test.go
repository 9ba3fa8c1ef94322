package replication

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/couchnpm/couchnpm/registry"
)

// memPackuments is a mirror database in memory.
type memPackuments struct {
	mu   sync.Mutex
	docs map[string]*registry.Packument
}

func (m *memPackuments) GetPackument(_ context.Context, name string) (*registry.Packument, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if p, ok := m.docs[name]; ok {
		return p, nil
	}
	return nil, registry.E(registry.KindNotFound, "not_found")
}

func (m *memPackuments) GetPackumentForWrite(ctx context.Context, name string) (*registry.Packument, error) {
	return m.GetPackument(ctx, name)
}

func (m *memPackuments) PutPackument(_ context.Context, p *registry.Packument) (registry.Written, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.docs[p.ID] = p
	return registry.Written{Rev: "1-x", Quorum: true}, nil
}

func (m *memPackuments) DeletePackument(_ context.Context, name, _ string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.docs, name)
	return nil
}

// Known is the takeover guard's question: does the upstream have a name?
// A mirrored copy answers without asking; otherwise the upstream's answer
// within the check timeout decides, and anything but 200 or 404 is an
// error, never a "no".
func TestMirrorKnown(t *testing.T) {
	var hang atomic.Bool
	var asked sync.Map
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(r.URL.Path, "/")
		asked.Store(name, true)
		switch {
		case name == "slow":
			hang.Store(true)
			select {
			case <-r.Context().Done():
			case <-time.After(time.Second):
			}
			return
		case name == "broken":
			http.Error(w, "oops", http.StatusInternalServerError)
			return
		case strings.HasPrefix(name, "up-"):
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"name":"` + name + `","versions":{}}`))
			return
		}
		http.Error(w, `{"error":"not_found"}`, http.StatusNotFound)
	}))
	t.Cleanup(srv.Close)

	tests := []struct {
		name    string
		pkg     string
		allow   []string
		want    bool
		wantErr registry.Kind // -1: no error
		asks    bool          // the upstream is asked
		stored  bool          // a mirrored copy exists afterwards
	}{
		{name: "a mirrored copy is known without asking", pkg: "mirrored", want: true, wantErr: -1, stored: true},
		{name: "the upstream's 200 means known, and the copy is kept", pkg: "up-lib", want: true, wantErr: -1, asks: true, stored: true},
		{name: "the upstream's 404 means not known", pkg: "nobody-has-it", want: false, wantErr: -1, asks: true},
		{name: "an upstream 500 is an error", pkg: "broken", wantErr: registry.KindUnavailable, asks: true},
		{name: "an upstream that does not answer in time is an error", pkg: "slow", wantErr: registry.KindUnavailable, asks: true},
		{name: "a name outside the allow-list is asked about, not kept", pkg: "up-other", allow: []string{"react"}, want: true, wantErr: -1, asks: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			asked.Delete(tc.pkg)
			store := &memPackuments{docs: map[string]*registry.Packument{"mirrored": registry.NewPackument("mirrored")}}
			up, err := NewUpstream(UpstreamConfig{Registry: srv.URL, Timeout: 10 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			m := newTestMirror(t, MirrorConfig{Mode: ModeOnDemand, NameCheckTimeout: 300 * time.Millisecond,
				Store: store, Upstream: up, Filter: NewFilter(tc.allow, nil)})
			start := time.Now()
			got, err := m.Known(context.Background(), tc.pkg)
			if took := time.Since(start); took > 3*time.Second {
				t.Errorf("Known took %v; the check timeout is 300ms", took)
			}
			if tc.wantErr == -1 {
				if err != nil || got != tc.want {
					t.Fatalf("Known(%s) = %v, %v; want %v", tc.pkg, got, err, tc.want)
				}
			} else if registry.KindOf(err) != tc.wantErr {
				t.Fatalf("Known(%s) = %v, %v; want an error of kind %v", tc.pkg, got, err, tc.wantErr)
			}
			if _, ok := asked.Load(tc.pkg); ok != tc.asks {
				t.Errorf("upstream asked: %v, want %v", ok, tc.asks)
			}
			if _, err := store.GetPackument(context.Background(), tc.pkg); (err == nil) != tc.stored {
				t.Errorf("mirrored copy after Known: %v, want %v", err == nil, tc.stored)
			}
		})
	}
	if !hang.Load() {
		t.Fatal("the slow case never reached the upstream")
	}
}
