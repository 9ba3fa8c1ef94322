package replication

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/rs/zerolog"
)

// fakeDoc is a _replicator document as the peer keeper sees it.
type fakeDoc struct {
	Owner    string
	Scopes   []string
	TargetDB string
	Source   string
}

// fakeReplicator is a _replicator database shared by every registry on one
// CouchDB, with the write rules of couch.Client: EnsureReplication adds
// the scope (taking over a document of another owner), ReleaseReplication
// removes it and deletes the document once no scope is left.
type fakeReplicator struct {
	docs   map[string]*fakeDoc
	writes int
	couch  bool
}

type fakeRepl struct {
	ID, Source, TargetDB, Scope string
}

func (f *fakeReplicator) EnsureReplication(_ context.Context, r fakeRepl) (bool, error) {
	cur, ok := f.docs[r.ID]
	if ok && cur.Owner == PeerOwner && cur.Source == r.Source && cur.TargetDB == r.TargetDB && slices.Contains(cur.Scopes, r.Scope) {
		return false, nil
	}
	var scopes []string
	if ok && cur.Owner == PeerOwner {
		scopes = slices.Clone(cur.Scopes)
	}
	if !slices.Contains(scopes, r.Scope) {
		scopes = append(scopes, r.Scope)
		slices.Sort(scopes)
	}
	f.docs[r.ID] = &fakeDoc{Owner: PeerOwner, Scopes: scopes, TargetDB: r.TargetDB, Source: r.Source}
	f.writes++
	return true, nil
}

func (f *fakeReplicator) ReplicationState(_ context.Context, id string) (map[string]any, error) {
	if _, ok := f.docs[id]; !ok {
		return nil, fmt.Errorf("no document %s", id)
	}
	return map[string]any{"state": "running"}, nil
}

func (f *fakeReplicator) ReplicationIDs(_ context.Context, keep func(owner string, scopes []string, targetDB string) bool) ([]string, error) {
	var ids []string
	for id, d := range f.docs {
		if d.Owner != "" && keep(d.Owner, d.Scopes, d.TargetDB) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids, nil
}

func (f *fakeReplicator) ReleaseReplication(_ context.Context, id, scope string) (bool, error) {
	d, ok := f.docs[id]
	if !ok {
		return false, nil
	}
	rest := slices.DeleteFunc(slices.Clone(d.Scopes), func(s string) bool { return s == scope })
	if len(d.Scopes) > 0 && len(rest) == len(d.Scopes) {
		return false, nil
	}
	f.writes++
	if len(rest) == 0 {
		delete(f.docs, id)
		return true, nil
	}
	d.Scopes = rest
	return false, nil
}

func (f *fakeReplicator) IsCouchDB(context.Context) (bool, error) { return f.couch, nil }

// site builds the keeper of registry prefix with peers, as serve does.
func site(t *testing.T, f *fakeReplicator, prefix string, peers ...string) *Peers[fakeRepl] {
	t.Helper()
	dbs := []string{prefix, prefix + "-tokens", "_users"}
	links, err := PeerLinks(peers, dbs, "http://local:5984", func(base, db string) (string, error) { return base + "/" + db, nil })
	if err != nil {
		t.Fatal(err)
	}
	return NewPeers(links, prefix, dbs, f, func(l PeerLink) fakeRepl {
		return fakeRepl{ID: l.ID, Source: l.Source, TargetDB: l.DB, Scope: prefix}
	}, zerolog.Nop())
}

func ids(p *Peers[fakeRepl]) []string {
	var out []string
	for _, l := range p.links {
		out = append(out, l.ID)
	}
	return out
}

func TestPeersOwnership(t *testing.T) {
	tests := []struct {
		name     string
		owner    string
		scopes   []string
		targetDB string
		want     bool
	}{
		{"scoped to this registry", PeerOwner, []string{"alpha"}, "alpha", true},
		{"scoped to this registry and another (shared _users)", PeerOwner, []string{"alpha", "beta"}, "_users", true},
		{"scoped to another registry", PeerOwner, []string{"beta"}, "beta", false},
		{"scoped to another registry, target named like ours", PeerOwner, []string{"beta"}, "alpha", false},
		{"scoped with no scope left", PeerOwner, nil, "alpha", false},
		{"scope that only starts like ours", PeerOwner, []string{"alpha2"}, "alpha2", false},
		{"old form into our packages", LegacyPeerOwner, nil, "alpha", true},
		{"old form into our tokens", LegacyPeerOwner, nil, "alpha-tokens", true},
		{"old form into another registry's packages", LegacyPeerOwner, nil, "beta", false},
		{"old form into a database that only starts like ours", LegacyPeerOwner, nil, "alpha-tokens2", false},
		{"old form into our mirror (not a peer database)", LegacyPeerOwner, nil, "alpha-mirror", false},
		{"old form into the shared _users", LegacyPeerOwner, nil, "_users", false},
		{"old form, target unreadable", LegacyPeerOwner, nil, "", false},
		{"the mirror's document", "mirror", nil, "alpha-mirror", false},
		{"another tool's document", "something", []string{"alpha"}, "alpha", false},
	}
	p := site(t, &fakeReplicator{docs: map[string]*fakeDoc{}}, "alpha", "http://peer:5984")
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := p.ours(tc.owner, tc.scopes, tc.targetDB); got != tc.want {
				t.Errorf("ours(%q, %q, %q) = %v, want %v", tc.owner, tc.scopes, tc.targetDB, got, tc.want)
			}
		})
	}
}

// Two registries (prefixes alpha and beta) on one CouchDB, each with its
// own peer, plus documents of the older unscoped form: neither ensure
// removes what the other keeps.
func TestPeersEnsureKeepsOtherRegistries(t *testing.T) {
	ctx := context.Background()
	f := &fakeReplicator{docs: map[string]*fakeDoc{}, couch: true}
	alpha := site(t, f, "alpha", "http://peer-a:5984")
	beta := site(t, f, "beta", "http://peer-b:5984")
	// Old-form documents: alpha's own (a peer since removed), one of a
	// third registry (gamma, not running now), one into _users that could
	// be anyone's, and one of alpha's still wanted.
	f.docs["old-alpha-gone"] = &fakeDoc{Owner: LegacyPeerOwner, TargetDB: "alpha-tokens"}
	f.docs["old-gamma"] = &fakeDoc{Owner: LegacyPeerOwner, TargetDB: "gamma"}
	f.docs["old-users"] = &fakeDoc{Owner: LegacyPeerOwner, TargetDB: "_users"}
	f.docs[alpha.links[0].ID] = &fakeDoc{Owner: LegacyPeerOwner, TargetDB: alpha.links[0].DB, Source: alpha.links[0].Source}
	f.docs["mirror"] = &fakeDoc{Owner: "mirror", TargetDB: "alpha-mirror"}

	alpha.Ensure(ctx)
	beta.Ensure(ctx)
	alpha.Ensure(ctx) // a restart of alpha, after beta's

	for _, id := range append(ids(alpha), ids(beta)...) {
		if f.docs[id] == nil {
			t.Errorf("peer document %s is gone", id)
		}
	}
	if d := f.docs[alpha.links[0].ID]; d == nil || d.Owner != PeerOwner || !slices.Equal(d.Scopes, []string{"alpha"}) {
		t.Errorf("alpha's old-form document still wanted is not taken over: %+v", d)
	}
	if f.docs["old-alpha-gone"] != nil {
		t.Errorf("alpha's old-form document of a removed peer is still there")
	}
	for _, id := range []string{"old-gamma", "old-users", "mirror"} {
		if f.docs[id] == nil {
			t.Errorf("document %s, neither alpha's nor beta's, was removed", id)
		}
	}

	// Nothing left to do: more runs of either (other instances of the same
	// registries) write nothing.
	before := f.writes
	for range 3 {
		alpha.Ensure(ctx)
		beta.Ensure(ctx)
	}
	if f.writes != before {
		t.Errorf("ensure keeps writing: %d writes after the documents were in place", f.writes-before)
	}
}

// Two registries with the same peer share its _users document (two
// documents for one replication fail as duplicates in CouchDB): removing
// the peer from one leaves the document to the other.
func TestPeersSharedDocument(t *testing.T) {
	ctx := context.Background()
	f := &fakeReplicator{docs: map[string]*fakeDoc{}, couch: true}
	alpha := site(t, f, "alpha", "http://peer:5984")
	beta := site(t, f, "beta", "http://peer:5984")
	alpha.Ensure(ctx)
	beta.Ensure(ctx)
	if len(f.docs) != 5 {
		t.Fatalf("want 5 documents (2 each, one shared), have %d", len(f.docs))
	}
	var shared string
	for id, d := range f.docs {
		if d.TargetDB == "_users" {
			shared = id
			if !slices.Equal(d.Scopes, []string{"alpha", "beta"}) {
				t.Errorf("shared document scopes %q", d.Scopes)
			}
		}
	}

	alphaNone := site(t, f, "alpha") // alpha restarted without peers
	alphaNone.Ensure(ctx)
	for _, id := range ids(beta) {
		if f.docs[id] == nil {
			t.Errorf("beta's document %s is gone", id)
		}
	}
	for _, id := range ids(alpha) {
		if id != shared && f.docs[id] != nil {
			t.Errorf("alpha's document %s is still there", id)
		}
	}
	if d := f.docs[shared]; d == nil || !slices.Equal(d.Scopes, []string{"beta"}) {
		t.Errorf("shared document after alpha left: %+v", d)
	}
	site(t, f, "beta").Ensure(ctx)
	if len(f.docs) != 0 {
		t.Errorf("documents left after both registries dropped the peer: %d", len(f.docs))
	}
}

// PouchDB Server crashes when a running replication's document is
// deleted: nothing is removed there.
func TestPeersNoRemovalOnPouchDB(t *testing.T) {
	f := &fakeReplicator{docs: map[string]*fakeDoc{"old": {Owner: LegacyPeerOwner, TargetDB: "alpha"}}}
	site(t, f, "alpha", "http://peer:5984").Ensure(context.Background())
	if f.docs["old"] == nil {
		t.Error("a document was removed on PouchDB Server")
	}
}
