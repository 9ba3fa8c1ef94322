package registry

import (
	"context"
	"sync"
	"testing"
	"time"
)

// noQuorumStore answers every write as CouchDB's 202 does: stored, but on
// fewer nodes than the write quorum.
type noQuorumStore struct{ *memStore }

func (s noQuorumStore) PutPackument(ctx context.Context, p *Packument) (Written, error) {
	w, err := s.memStore.PutPackument(ctx, p)
	w.Quorum = false
	return w, err
}

// leafView is a ConflictStore over a memStore; with stale set it keeps
// showing the document as it was before the first write (the nodes read
// have not seen the write yet).
type leafView struct {
	store *memStore
	stale *Packument
}

func (v *leafView) Leaves(ctx context.Context, name string) ([]*Packument, error) {
	if v.stale != nil {
		return []*Packument{v.stale}, nil
	}
	p, err := v.store.GetPackument(ctx, name)
	if err != nil {
		return nil, err
	}
	return []*Packument{p}, nil
}

func (v *leafView) Resolve(context.Context, *Packument, bool, []string) error { return nil }

type observed struct {
	mu          sync.Mutex
	unconfirmed []string
}

func (o *observed) ConflictResolved(string, int, []VersionConflict) {}
func (o *observed) OrgMerged(string, int, []string)                 {}

func (o *observed) WriteUnconfirmed(name string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.unconfirmed = append(o.unconfirmed, name)
}

// A 202 is followed up: a write seen afterwards is confirmed silently, one
// never seen within the bound is reported, and neither fails the publish
// (the write exists on at least one node).
func TestPublishFollowsUpNoQuorum(t *testing.T) {
	for _, tc := range []struct {
		name       string
		stale      bool
		wantReport bool
	}{
		{name: "the write shows up: confirmed", stale: false, wantReport: false},
		{name: "the write never shows up in time: reported", stale: true, wantReport: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := newMemStore()
			view := &leafView{store: mem}
			if tc.stale {
				view.stale = NewPackument("foo")
			}
			obs := &observed{}
			s := newTestServiceWith(Config{Store: noQuorumStore{mem}, Conflicts: view, Observer: obs})
			s.confirmFor = 50 * time.Millisecond
			if err := s.Publish(t.Context(), aliceID, "foo", buildBody(t, "foo", nil, pubVersion{version: "1.0.0"})); err != nil {
				t.Fatalf("publish answered with a 202: %v", err)
			}
			if got := len(obs.unconfirmed) > 0; got != tc.wantReport {
				t.Errorf("reported unconfirmed: %v (%v), want %v", got, obs.unconfirmed, tc.wantReport)
			}
		})
	}
}
