package replication

import (
	"strings"
	"testing"

	"github.com/couchnpm/couchnpm/registry"
)

// newTestMirror builds a mirror from cfg, filling what the test leaves out
// with empty in-memory stores, an allow-all filter and an upstream nothing
// listens on.
func newTestMirror(t *testing.T, cfg MirrorConfig) *Mirror {
	t.Helper()
	if cfg.Store == nil {
		cfg.Store = &memPackuments{docs: map[string]*registry.Packument{}}
	}
	if cfg.Tarballs == nil {
		cfg.Tarballs = &memDocStore{docs: map[string][]byte{}}
	}
	if cfg.Upstream == nil {
		up, err := NewUpstream(UpstreamConfig{Registry: "http://127.0.0.1:1"})
		if err != nil {
			t.Fatal(err)
		}
		cfg.Upstream = up
	}
	if cfg.Filter == nil {
		cfg.Filter = NewFilter(nil, nil)
	}
	if cfg.Stats == nil {
		cfg.Stats = &Stats{}
	}
	m, err := NewMirror(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// A mirror missing what it reads or writes through is refused when it is
// built, naming each missing part, not found out on the first request.
func TestNewMirrorRequiresDependencies(t *testing.T) {
	up, err := NewUpstream(UpstreamConfig{Registry: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	full := MirrorConfig{Mode: ModeOnDemand, Store: &memPackuments{docs: map[string]*registry.Packument{}},
		Tarballs: &memDocStore{docs: map[string][]byte{}}, Upstream: up, Filter: NewFilter(nil, nil), Stats: &Stats{}}
	tests := []struct {
		name    string
		edit    func(*MirrorConfig)
		wantErr string // "" : built
	}{
		{name: "complete config builds", edit: func(*MirrorConfig) {}},
		{name: "no signer is allowed", edit: func(c *MirrorConfig) { c.Signer = nil }},
		{name: "no store", edit: func(c *MirrorConfig) { c.Store = nil }, wantErr: "missing Store"},
		{name: "no tarballs", edit: func(c *MirrorConfig) { c.Tarballs = nil }, wantErr: "missing Tarballs"},
		{name: "no upstream", edit: func(c *MirrorConfig) { c.Upstream = nil }, wantErr: "missing Upstream"},
		{name: "no filter", edit: func(c *MirrorConfig) { c.Filter = nil }, wantErr: "missing Filter"},
		{name: "no stats", edit: func(c *MirrorConfig) { c.Stats = nil }, wantErr: "missing Stats"},
		{name: "all missing are named", edit: func(c *MirrorConfig) { *c = MirrorConfig{} },
			wantErr: "missing Store, Tarballs, Upstream, Filter, Stats"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := full
			tc.edit(&cfg)
			m, err := NewMirror(cfg)
			if tc.wantErr == "" {
				if err != nil || m == nil {
					t.Fatalf("NewMirror: %v", err)
				}
				m.Close()
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("NewMirror error = %v, want %q", err, tc.wantErr)
			}
		})
	}
}
