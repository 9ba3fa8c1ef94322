package registry

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"
)

// at is the n-th second after the org's creation (orgT0).
func at(n int) time.Time { return orgT0.Add(time.Duration(n) * time.Second) }

var orgT0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// baseOrg is org acme as CreateOrg writes it at orgT0 (owner alice), then
// bob as developer and team core (bob in it, granted @acme/p read-write),
// all at orgT0; legacy leaves it without any stamp (written before stamps
// existed).
func baseOrg(legacy bool) *Org {
	o := &Org{
		Name:    "acme",
		Members: map[string]string{"alice": RoleOwner, "bob": RoleDeveloper},
		Teams: map[string]*Team{
			DevelopersTeam: {Members: []string{"alice", "bob"}, Packages: map[string]string{}},
			"core":         {Members: []string{"bob"}, Packages: map[string]string{"@acme/p": PermReadWrite}},
		},
		Created: stamp(orgT0),
	}
	if !legacy {
		o.stampChanges(nil, orgT0)
	}
	return o
}

// evolve is a write of change at time t on top of o, as writeOrg makes it.
func evolve(o *Org, t time.Time, change func(o *Org)) *Org {
	c := o.clone()
	before := c.entries()
	change(c)
	c.stampChanges(before, t)
	return c
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}

// view is what a merge decides, in comparable form.
type orgView struct {
	members map[string]string
	teams   map[string][]string          // team → members
	grants  map[string]map[string]string // team → package → permission
}

func viewOf(o *Org) orgView {
	v := orgView{members: maps.Clone(o.Members), teams: map[string][]string{}, grants: map[string]map[string]string{}}
	for name, t := range o.Teams {
		ms := slices.Clone(t.Members)
		sort.Strings(ms)
		v.teams[name] = ms
		v.grants[name] = maps.Clone(t.Packages)
	}
	return v
}

func TestMergeOrgs(t *testing.T) {
	base := baseOrg(false)
	add := func(o *Org, user, role string) { must(o.setMember("acme", RoleOwner, user, role)) }
	for _, tc := range []struct {
		name    string
		leaves  []*Org
		members map[string]string
		teams   map[string][]string
		grants  map[string]map[string]string // nil: not checked
		notes   int
	}{
		{
			name: "concurrent additions both stay",
			leaves: []*Org{
				evolve(base, at(1), func(o *Org) { add(o, "carol", RoleDeveloper) }),
				evolve(base, at(2), func(o *Org) { add(o, "dave", RoleAdmin) }),
			},
			members: map[string]string{"alice": RoleOwner, "bob": RoleDeveloper, "carol": RoleDeveloper, "dave": RoleAdmin},
			teams:   map[string][]string{DevelopersTeam: {"alice", "bob", "carol", "dave"}, "core": {"bob"}},
		},
		{
			name: "a removal beats a later team addition of the removed member",
			leaves: []*Org{
				evolve(base, at(1), func(o *Org) { o.dropMember("bob") }),
				evolve(base, at(2), func(o *Org) {
					o.Teams[DevelopersTeam].remove("bob")
					o.Teams[DevelopersTeam].Members = append(o.Teams[DevelopersTeam].Members, "bob")
				}),
				evolve(base, at(3), func(o *Org) { o.Teams["core"].Packages["@acme/q"] = PermReadWrite }),
			},
			members: map[string]string{"alice": RoleOwner},
			teams:   map[string][]string{DevelopersTeam: {"alice"}, "core": {}},
			grants:  map[string]map[string]string{DevelopersTeam: {}, "core": {"@acme/p": PermReadWrite, "@acme/q": PermReadWrite}},
		},
		{
			name: "a removal beats a later role change",
			leaves: []*Org{
				evolve(base, at(1), func(o *Org) { o.dropMember("bob") }),
				evolve(base, at(5), func(o *Org) { add(o, "bob", RoleAdmin) }),
			},
			members: map[string]string{"alice": RoleOwner},
			teams:   map[string][]string{DevelopersTeam: {"alice"}, "core": {}},
		},
		{
			name: "a removal and an addition at the same instant: the removal wins",
			leaves: []*Org{
				evolve(base, at(1), func(o *Org) { o.dropMember("bob") }),
				evolve(evolve(base, at(0), func(o *Org) { o.dropMember("bob") }), at(1), func(o *Org) { add(o, "bob", RoleDeveloper) }),
			},
			members: map[string]string{"alice": RoleOwner},
			teams:   map[string][]string{DevelopersTeam: {"alice"}, "core": {}},
		},
		{
			name: "a re-addition after a removal stays, without the old team seats",
			leaves: []*Org{
				evolve(base, at(1), func(o *Org) { o.dropMember("bob") }),
				evolve(evolve(base, at(2), func(o *Org) { o.dropMember("bob") }), at(3), func(o *Org) { add(o, "bob", RoleDeveloper) }),
			},
			members: map[string]string{"alice": RoleOwner, "bob": RoleDeveloper},
			teams:   map[string][]string{DevelopersTeam: {"alice", "bob"}, "core": {}},
		},
		{
			name: "a team seat taken concurrently with a removal does not come back with a re-addition",
			leaves: []*Org{
				evolve(evolve(base, at(1), func(o *Org) { o.dropMember("bob") }), at(4), func(o *Org) { add(o, "bob", RoleDeveloper) }),
				evolve(base, at(2), func(o *Org) {
					o.Teams["extra"] = &Team{Members: []string{"bob"}, Packages: map[string]string{"@acme/p": PermReadWrite}}
				}),
			},
			members: map[string]string{"alice": RoleOwner, "bob": RoleDeveloper},
			teams:   map[string][]string{DevelopersTeam: {"alice", "bob"}, "core": {}, "extra": {}},
		},
		{
			name: "a team destroyed beats a later grant to it, and a re-created team starts empty",
			leaves: []*Org{
				evolve(evolve(base, at(1), func(o *Org) { delete(o.Teams, "core") }), at(5), func(o *Org) {
					o.Teams["core"] = &Team{Description: "again", Members: []string{}, Packages: map[string]string{}}
				}),
				evolve(base, at(2), func(o *Org) { o.Teams["core"].Packages["@acme/q"] = PermReadOnly }),
			},
			members: map[string]string{"alice": RoleOwner, "bob": RoleDeveloper},
			teams:   map[string][]string{DevelopersTeam: {"alice", "bob"}, "core": {}},
			grants:  map[string]map[string]string{DevelopersTeam: {}, "core": {}},
		},
		{
			name: "a team destroyed: a concurrent grant to it is gone",
			leaves: []*Org{
				evolve(base, at(1), func(o *Org) { delete(o.Teams, "core") }),
				evolve(base, at(2), func(o *Org) { o.Teams["core"].Packages["@acme/q"] = PermReadOnly }),
			},
			members: map[string]string{"alice": RoleOwner, "bob": RoleDeveloper},
			teams:   map[string][]string{DevelopersTeam: {"alice", "bob"}},
		},
		{
			name: "a revocation beats an older grant; the same instant leaves the narrower permission",
			leaves: []*Org{
				evolve(base, at(3), func(o *Org) { delete(o.Teams["core"].Packages, "@acme/p") }),
				evolve(base, at(2), func(o *Org) { o.Teams["core"].Packages["@acme/p"] = PermReadOnly }),
				evolve(base, at(4), func(o *Org) { o.Teams["core"].Packages["@acme/r"] = PermReadWrite }),
				evolve(base, at(4), func(o *Org) { o.Teams["core"].Packages["@acme/r"] = PermReadOnly }),
			},
			members: map[string]string{"alice": RoleOwner, "bob": RoleDeveloper},
			teams:   map[string][]string{DevelopersTeam: {"alice", "bob"}, "core": {"bob"}},
			grants:  map[string]map[string]string{DevelopersTeam: {}, "core": {"@acme/r": PermReadOnly}},
		},
		{
			name: "two owners removing each other: the most recently made owner stays, and it is noted",
			leaves: func() []*Org {
				two := evolve(base, at(1), func(o *Org) { add(o, "carol", RoleOwner) })
				return []*Org{
					evolve(two, at(2), func(o *Org) { o.dropMember("alice") }),
					evolve(two, at(3), func(o *Org) { o.dropMember("carol") }),
				}
			}(),
			members: map[string]string{"bob": RoleDeveloper, "carol": RoleOwner},
			teams:   map[string][]string{DevelopersTeam: {"bob"}, "core": {"bob"}},
			notes:   1,
		},
		{
			name:    "legacy leaves without stamps: additions on both sides stay",
			leaves:  []*Org{withMember(baseOrg(true), "carol"), withMember(baseOrg(true), "dave")},
			members: map[string]string{"alice": RoleOwner, "bob": RoleDeveloper, "carol": RoleDeveloper, "dave": RoleDeveloper},
			teams:   map[string][]string{DevelopersTeam: {"alice", "bob", "carol", "dave"}, "core": {"bob"}},
		},
		{
			name: "a legacy leaf counts as written at the org's creation: a stamped removal beats it",
			leaves: []*Org{
				baseOrg(true),
				evolve(baseOrg(true), at(1), func(o *Org) { o.dropMember("bob") }),
			},
			members: map[string]string{"alice": RoleOwner},
			teams:   map[string][]string{DevelopersTeam: {"alice"}, "core": {}},
		},
		{
			name: "two creations of one org: the earlier one is the org, the later creator gets nothing",
			leaves: []*Org{
				newOrg(orgT0, "alice"),
				evolve(newOrg(at(-5), "mallory"), at(-4), func(o *Org) { add(o, "eve", RoleOwner) }),
			},
			members: map[string]string{"mallory": RoleOwner, "eve": RoleOwner},
			teams:   map[string][]string{DevelopersTeam: {"eve", "mallory"}},
			notes:   1,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			merged, notes := MergeOrgs(tc.leaves)
			got := viewOf(merged)
			if !reflect.DeepEqual(got.members, tc.members) {
				t.Errorf("members = %v, want %v", got.members, tc.members)
			}
			if !reflect.DeepEqual(got.teams, tc.teams) {
				t.Errorf("teams = %v, want %v", got.teams, tc.teams)
			}
			if tc.grants != nil && !reflect.DeepEqual(got.grants, tc.grants) {
				t.Errorf("grants = %v, want %v", got.grants, tc.grants)
			}
			if len(notes) != tc.notes {
				t.Errorf("notes = %q, want %d", notes, tc.notes)
			}
			// Deterministic: any order of the leaves gives the same merge,
			// and merging the merge with the leaves again changes nothing
			// (resolvers on several instances converge).
			rev := slices.Clone(tc.leaves)
			slices.Reverse(rev)
			if again, _ := MergeOrgs(rev); !reflect.DeepEqual(again, merged) {
				t.Errorf("merge depends on the leaves' order:\n%+v\n%+v", viewOf(again), got)
			}
			if again, _ := MergeOrgs(append([]*Org{orgRoundTrip(t, merged)}, tc.leaves...)); !reflect.DeepEqual(viewOf(again), got) {
				t.Errorf("merging the merge again changed it: %+v, want %+v", viewOf(again), got)
			}
		})
	}
}

func withMember(o *Org, user string) *Org {
	must(o.setMember(o.Name, RoleOwner, user, RoleDeveloper))
	return o
}

func newOrg(created time.Time, owner string) *Org {
	o := &Org{Name: "acme", Members: map[string]string{owner: RoleOwner},
		Teams:   map[string]*Team{DevelopersTeam: {Members: []string{owner}, Packages: map[string]string{}}},
		Created: stamp(created)}
	o.stampChanges(nil, created)
	return o
}

// orgRoundTrip is o as stored and read back.
func orgRoundTrip(t *testing.T, o *Org) *Org {
	t.Helper()
	b, err := json.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	var back Org
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	return back.normalized()
}

// A write stamps only what it changed, and never earlier than the stamp it
// replaces (a clock behind the last writer's).
func TestOrgStampChanges(t *testing.T) {
	o := baseOrg(false)
	before := o.entries()
	must(o.setMember("acme", RoleOwner, "bob", RoleAdmin))
	got := o.stampChanges(before, orgT0.Add(-time.Hour))
	want := map[string]time.Time{orgEntryRole + "bob": orgT0.Add(time.Nanosecond)}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("stamped %v, want %v", got, want)
	}
	if !o.holds(want) || o.holds(map[string]time.Time{orgEntryRole + "bob": at(1)}) {
		t.Error("holds does not compare stamps")
	}

	// carol joins through an instance whose clock is ahead; a team seat
	// given to her next through one whose clock is behind still counts
	// after a merge with an unrelated concurrent change.
	base := baseOrg(false)
	joined := evolve(base, at(100), func(o *Org) { must(o.setMember("acme", RoleOwner, "carol", RoleDeveloper)) })
	seated := evolve(joined, at(1), func(o *Org) { o.Teams["core"].Members = append(o.Teams["core"].Members, "carol") })
	other := evolve(joined, at(2), func(o *Org) { o.Teams["core"].Packages["@acme/q"] = PermReadOnly })
	if merged, _ := MergeOrgs([]*Org{seated, other}); !merged.Teams["core"].has("carol") {
		t.Errorf("a team seat given on a slower clock was lost in a merge: %+v", merged.Teams["core"])
	}
}

// leafDocs is a state database whose org documents can have conflicting
// leaves, as a CouchDB cluster stores them: the winner lives in memDocs,
// the losers beside it. quorum queues the answers of the next writes
// (false: CouchDB's 202).
type leafDocs struct {
	*memDocs
	mu      sync.Mutex
	losers  map[string][]DocLeaf
	quorum  []bool
	deleted []string
	// afterWrite runs after each write (a concurrent writer elsewhere).
	afterWrite func()
}

func newLeafDocs() *leafDocs { return &leafDocs{memDocs: newMemDocs(), losers: map[string][]DocLeaf{}} }

func (l *leafDocs) Leaves(ctx context.Context, id string) ([]DocLeaf, error) {
	var raw json.RawMessage
	rev, err := l.Get(ctx, id, &raw)
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]DocLeaf{{Rev: rev, Body: raw}}, l.losers[id]...), nil
}

func (l *leafDocs) WriteMerge(ctx context.Context, id, rev string, v any, losers []string) (Written, error) {
	r, err := l.Put(ctx, id, rev, v)
	if err != nil {
		return Written{}, err
	}
	l.mu.Lock()
	keep := l.losers[id][:0]
	for _, leaf := range l.losers[id] {
		if slices.Contains(losers, leaf.Rev) {
			l.deleted = append(l.deleted, leaf.Rev)
		} else {
			keep = append(keep, leaf)
		}
	}
	l.losers[id] = keep
	w := Written{Rev: r, Quorum: true}
	if len(l.quorum) > 0 {
		w.Quorum, l.quorum = l.quorum[0], l.quorum[1:]
	}
	after := l.afterWrite
	l.afterWrite = nil
	l.mu.Unlock()
	if after != nil {
		after()
	}
	return w, nil
}

// conflict adds o as a losing leaf of org o.Name.
func (l *leafDocs) conflict(t *testing.T, o *Org) {
	t.Helper()
	b, err := json.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	id := orgDocPrefix + o.Name
	l.losers[id] = append(l.losers[id], DocLeaf{Rev: fmt.Sprintf("9-loser%d", len(l.losers[id])), Body: b})
}

func (l *leafDocs) stored(t *testing.T, name string) *Org {
	t.Helper()
	var o Org
	if _, err := l.Get(context.Background(), orgDocPrefix+name, &o); err != nil {
		t.Fatal(err)
	}
	return o.normalized()
}

type orgObserved struct {
	observed
	merges int
	notes  []string
}

func (o *orgObserved) OrgMerged(_ string, _ int, notes []string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.merges++
	o.notes = append(o.notes, notes...)
}

// orgLeafService: org acme (owner alice; bob a developer in team core,
// granted the restricted @acme/secret read-write) on a store whose org
// documents can conflict.
func orgLeafService(t *testing.T) (*Service, *leafDocs, *orgObserved) {
	t.Helper()
	users := newFakeUsers()
	for _, u := range []string{"alice", "bob", "carol"} {
		users.add(u, "pw", u+"@example.com")
	}
	docs := newLeafDocs()
	obs := &orgObserved{}
	s := newServiceFor(Config{Users: users, Orgs: docs, OrgLeaves: docs, Observer: obs})
	s.backoff = func(int) time.Duration { return time.Millisecond }
	s.confirmFor = 100 * time.Millisecond
	clock := orgT0
	s.now = func() time.Time { clock = clock.Add(time.Second); return clock }
	ctx := context.Background()
	if _, err := s.SetOrgMember(ctx, cmdAlice, "acme", "alice", RoleOwner); err != nil {
		t.Fatal(err)
	}
	b := buildBody(t, "@acme/secret", map[string]string{"latest": "1.0.0"}, pubVersion{version: "1.0.0"})
	access := AccessRestricted
	b.Access = &access
	must(s.Publish(ctx, cmdAlice, "@acme/secret", b))
	_, err := s.SetOrgMember(ctx, cmdAlice, "acme", "bob", RoleDeveloper)
	must(err)
	must(s.CreateTeam(ctx, cmdAlice, "acme", "core", ""))
	must(s.AddTeamMember(ctx, cmdAlice, "acme", "core", "bob"))
	must(s.GrantTeam(ctx, cmdAlice, "acme", "core", "@acme/secret", PermReadWrite))
	return s, docs, obs
}

// The winner CouchDB shows still has bob; the losing leaf removed him.
// Access is decided on the merge (bob sees nothing), the next write keeps
// the removal, writes on the winner and deletes the loser.
func TestOrgConflictRemovalHolds(t *testing.T) {
	s, docs, obs := orgLeafService(t)
	ctx := context.Background()
	bob := Identity{Name: "bob"}
	if _, err := s.Packument(ctx, bob, "@acme/secret"); err != nil {
		t.Fatalf("before the removal bob reads: %v", err)
	}
	// Another node removed bob (its revision loses CouchDB's pick).
	removed := evolve(docs.stored(t, "acme"), orgT0.Add(time.Hour), func(o *Org) { o.dropMember("bob") })
	docs.conflict(t, removed)
	// Reads decide on the merge: bob no longer sees the package...
	if _, err := s.Packument(ctx, bob, "@acme/secret"); !IsKind(err, KindNotFound) {
		t.Errorf("bob reads @acme/secret after his removal on the losing side: %v", err)
	}
	// ...and the read wrote the merge and deleted the loser.
	if len(docs.deleted) != 1 || len(docs.losers["org:acme"]) != 0 {
		t.Errorf("losers deleted %v, left %v", docs.deleted, docs.losers["org:acme"])
	}
	if _, ok := docs.stored(t, "acme").Members["bob"]; ok {
		t.Error("the stored winner still has bob")
	}
	// A conflict arriving again (a third node) merges on the write path:
	// alice adds carol on top of a winner that still holds bob.
	stale := evolve(removed, orgT0, func(*Org) {})
	stale.Members["bob"] = RoleDeveloper // as the pre-removal revision had him, stamps unchanged
	stale.Teams["core"].Members = append(stale.Teams["core"].Members, "bob")
	docs.conflict(t, stale)
	if _, err := s.SetOrgMember(ctx, cmdAlice, "acme", "carol", RoleDeveloper); err != nil {
		t.Fatal(err)
	}
	got := docs.stored(t, "acme")
	if _, ok := got.Members["bob"]; ok || got.Teams["core"].has("bob") {
		t.Errorf("bob is back after a write: %+v", got)
	}
	if _, ok := got.Members["carol"]; !ok {
		t.Errorf("carol's addition is lost: %+v", got.Members)
	}
	if len(docs.losers["org:acme"]) != 0 {
		t.Errorf("losers left after the write: %v", docs.losers["org:acme"])
	}
	if obs.merges < 2 {
		t.Errorf("%d merges reported, want at least 2", obs.merges)
	}
}

// A write CouchDB stores short of its quorum (202) is read back: a
// conflict it caused is merged and the write is found in the merge; a
// write never seen is reported.
func TestOrgWriteFollowsUpNoQuorum(t *testing.T) {
	t.Run("a concurrent change shows up beside it: merged, confirmed", func(t *testing.T) {
		s, docs, obs := orgLeafService(t)
		base := docs.stored(t, "acme")
		docs.quorum = []bool{false}
		docs.afterWrite = func() {
			// Another node revoked the grant meanwhile.
			docs.conflict(t, evolve(base, orgT0.Add(time.Hour), func(o *Org) { delete(o.Teams["core"].Packages, "@acme/secret") }))
		}
		if err := s.RemoveTeamMember(context.Background(), cmdAlice, "acme", "core", "bob"); err != nil {
			t.Fatal(err)
		}
		got := docs.stored(t, "acme")
		if got.Teams["core"].has("bob") || len(got.Teams["core"].Packages) != 0 {
			t.Errorf("merged core = %+v, want neither bob nor the grant", got.Teams["core"])
		}
		if len(docs.losers["org:acme"]) != 0 || len(obs.unconfirmed) != 0 {
			t.Errorf("losers %v, unconfirmed %v", docs.losers["org:acme"], obs.unconfirmed)
		}
	})
	t.Run("the write never shows up: reported", func(t *testing.T) {
		s, docs, obs := orgLeafService(t)
		before := docs.stored(t, "acme")
		docs.quorum = []bool{false}
		docs.afterWrite = func() {
			// The nodes read have not seen the write: they show the old revision.
			_, err := docs.Put(context.Background(), "org:acme", fmt.Sprint(docs.docs["org:acme"].rev), before)
			must(err)
		}
		if err := s.RemoveTeamMember(context.Background(), cmdAlice, "acme", "core", "bob"); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(obs.unconfirmed, []string{"org:acme"}) {
			t.Errorf("unconfirmed = %v, want org:acme", obs.unconfirmed)
		}
	})
}

// memLeaves gives memDocs (one leaf per document) the leaf access, so that
// the org tests run the path production runs.
type memLeaves struct{ *memDocs }

func (m memLeaves) Leaves(ctx context.Context, id string) ([]DocLeaf, error) {
	var raw json.RawMessage
	rev, err := m.Get(ctx, id, &raw)
	if err != nil {
		return nil, err
	}
	return []DocLeaf{{Rev: rev, Body: raw}}, nil
}

func (m memLeaves) WriteMerge(ctx context.Context, id, rev string, v any, _ []string) (Written, error) {
	r, err := m.Put(ctx, id, rev, v)
	return Written{Rev: r, Quorum: true}, err
}
