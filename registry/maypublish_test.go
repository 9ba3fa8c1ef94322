package registry

import "testing"

func TestMayPublish(t *testing.T) {
	s := newTestServiceWith(Config{Store: newMemStore(), Orgs: orgDocs("alice", "s")})
	owned := NewPackument("foo")
	owned.Maintainers = []Person{{Name: "alice"}}
	owned.Versions["1.0.0"] = mustJSON(map[string]any{"name": "foo", "version": "1.0.0"})
	tomb := NewPackument("gone")
	tomb.Unpublished = mustJSON(map[string]any{"time": "2026-01-01T00:00:00.000Z"})
	bob := Identity{Name: "bob"}
	tests := []struct {
		name       string
		user       Identity
		pkg        string
		stored     *Packument
		wantKind   Kind // -1: allowed
		teamWriter bool
	}{
		{"a new unscoped name", bob, "new", nil, -1, false},
		{"a new name in a scope the user belongs to", aliceID, "@s/new", nil, -1, false},
		{"a new name in another's scope", bob, "@s/new", nil, KindForbidden, false},
		{"a tombstone is a new name", bob, "gone", tomb, -1, false},
		{"a maintainer", aliceID, "foo", owned, -1, false},
		{"someone else", bob, "foo", owned, KindForbidden, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			team, err := s.mayPublish(t.Context(), tc.user, tc.pkg, tc.stored)
			if tc.wantKind != -1 {
				wantKind(t, err, tc.wantKind)
				return
			}
			if err != nil || team != tc.teamWriter {
				t.Fatalf("mayPublish = %v, %v; want %v, nil", team, err, tc.teamWriter)
			}
		})
	}
}
