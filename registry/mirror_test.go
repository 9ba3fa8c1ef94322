package registry

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
)

// fakeMirror records what reached the upstream.
type fakeMirror struct {
	Mirror // nil; keeps the fake building if the interface grows

	mu       sync.Mutex
	private  string // scope prefix treated as private, e.g. "@corp/"
	asked    []string
	tarballs []string
}

func (m *fakeMirror) Private(name string) bool {
	return m.private != "" && strings.HasPrefix(name, m.private)
}

func (m *fakeMirror) Packument(_ context.Context, name string) (*Packument, error) {
	m.mu.Lock()
	m.asked = append(m.asked, name)
	m.mu.Unlock()
	p := NewPackument(name)
	p.Fields["x-from"] = json.RawMessage(`"upstream"`)
	return p, nil
}

func (m *fakeMirror) Tarball(_ context.Context, name, version string, head bool) (*Tarball, error) {
	m.mu.Lock()
	m.tarballs = append(m.tarballs, name+"@"+version)
	m.mu.Unlock()
	return &Tarball{Size: 1}, nil
}

// The dependency-confusion guard: only names that are not published here
// and not in a private scope ever reach the upstream.
func TestServiceMirrorGuard(t *testing.T) {
	ctx := context.Background()
	store := newMemStore()
	local := newTestServiceWith(Config{Store: store, Orgs: orgDocs("alice", "corp")})
	for _, name := range []string{"local", "@corp/lib"} {
		if err := local.Publish(ctx, aliceID, name, buildBody(t, name, nil, pubVersion{version: "1.0.0"})); err != nil {
			t.Fatal(err)
		}
	}
	gone := NewPackument("gone")
	gone.Time["1.0.0"] = "2020-01-01T00:00:00.000Z"
	gone.Unpublished = json.RawMessage(`{"time":"2020-02-01T00:00:00.000Z"}`)
	if _, err := store.PutPackument(ctx, gone); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		run        func(s *Service) error
		kind       Kind // -1: success
		upstream   []string
		upTarballs []string
	}{
		{"unknown public name goes upstream", func(s *Service) error {
			p, err := s.Packument(ctx, Identity{}, "lodash")
			if err == nil && string(p.Fields["x-from"]) != `"upstream"` {
				t.Errorf("not the mirror's document")
			}
			return err
		}, -1, []string{"lodash"}, nil},
		{"local name is served locally", func(s *Service) error {
			p, err := s.Packument(ctx, aliceID, "local")
			if err == nil && p.Fields["x-from"] != nil {
				t.Errorf("served the mirror's document for a local name")
			}
			return err
		}, -1, nil, nil},
		{"unknown private-scope name never goes upstream", func(s *Service) error {
			_, err := s.Packument(ctx, aliceID, "@corp/other")
			return err
		}, KindNotFound, nil, nil},
		{"unpublished local name never goes upstream", func(s *Service) error {
			_, err := s.Packument(ctx, aliceID, "gone")
			return err
		}, KindNotFound, nil, nil},
		{"missing version of a local name never goes upstream", func(s *Service) error {
			_, err := s.Tarball(ctx, aliceID, "local", "local-2.0.0.tgz", false)
			return err
		}, KindNotFound, nil, nil},
		{"missing version of an unpublished name never goes upstream", func(s *Service) error {
			_, err := s.Tarball(ctx, aliceID, "gone", "gone-1.0.0.tgz", true)
			return err
		}, KindNotFound, nil, nil},
		{"tarball of an unknown public name goes upstream", func(s *Service) error {
			_, err := s.Tarball(ctx, Identity{}, "lodash", "lodash-4.17.21.tgz", true)
			return err
		}, -1, nil, []string{"lodash@4.17.21"}},
		{"tarball of an unknown private-scope name stays local", func(s *Service) error {
			_, err := s.Tarball(ctx, aliceID, "@corp/other", "other-1.0.0.tgz", false)
			return err
		}, KindNotFound, nil, nil},
		{"invalid name never goes upstream", func(s *Service) error {
			_, err := s.Packument(ctx, aliceID, "%2e%2e")
			return err
		}, KindInvalid, nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := &fakeMirror{private: "@corp/"}
			s := newTestServiceWith(Config{Store: store, Mirror: m})
			err := tc.run(s)
			if tc.kind == -1 {
				if err != nil {
					t.Fatalf("err = %v", err)
				}
			} else {
				wantKind(t, err, tc.kind)
			}
			if strings.Join(m.asked, ",") != strings.Join(tc.upstream, ",") || strings.Join(m.tarballs, ",") != strings.Join(tc.upTarballs, ",") {
				t.Errorf("upstream saw packuments %v tarballs %v; want %v %v", m.asked, m.tarballs, tc.upstream, tc.upTarballs)
			}
		})
	}
}
