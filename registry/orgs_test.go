package registry

import (
	"context"
	"encoding/json"
	"sort"
	"strings"
	"testing"
	"time"
)

// TestPackagePermission is the table of who sees and who writes what: the
// one decision every read path (packument, version, tarball, dist-tags,
// search, listings) and the write paths use.
func TestPackagePermission(t *testing.T) {
	pkg := func(name, access string, maintainers ...string) *Packument {
		p := NewPackument(name)
		if access != "" {
			p.Fields["access"] = mustJSON(access)
		}
		for _, m := range maintainers {
			p.Maintainers = append(p.Maintainers, Person{Name: m})
		}
		return p
	}
	org := &Org{
		Name:    "acme",
		Members: map[string]string{"alice": RoleOwner, "rita": RoleDeveloper, "will": RoleDeveloper, "dora": RoleDeveloper},
		Teams: map[string]*Team{
			DevelopersTeam: {Members: []string{"alice", "rita", "will", "dora"}, Packages: map[string]string{}},
			"readers":      {Members: []string{"rita"}, Packages: map[string]string{"@acme/secret": PermReadOnly}},
			"writers":      {Members: []string{"will"}, Packages: map[string]string{"@acme/secret": PermReadWrite}},
			// A grant on a package outside the org's scope is ignored.
			"stray": {Members: []string{"dora"}, Packages: map[string]string{"@other/secret": PermReadWrite}},
		},
	}
	secret := pkg("@acme/secret", AccessRestricted, "alice")
	other := pkg("@other/secret", AccessRestricted, "olga")
	public := pkg("@acme/open", "", "alice")
	for _, tc := range []struct {
		name  string
		user  string
		p     *Packument
		org   *Org
		admin bool
		want  permission
	}{
		{name: "anonymous reads a public package", p: public, org: org, want: permRead},
		{name: "anonymous does not see a restricted package", p: secret, org: org, want: permNone},
		{name: "a fresh user does not see a restricted package", user: "mallory", p: secret, org: org, want: permNone},
		{name: "a fresh user reads a public package", user: "mallory", p: public, org: org, want: permRead},
		{name: "a maintainer writes", user: "alice", p: secret, org: org, want: permWrite},
		{name: "a read-only team member reads", user: "rita", p: secret, org: org, want: permRead},
		{name: "a read-write team member writes", user: "will", p: secret, org: org, want: permWrite},
		{name: "a member of the org without a grant does not see it", user: "dora", p: secret, org: org, want: permNone},
		{name: "a grant outside the org's scope counts for nothing", user: "dora", p: other, org: org, want: permNone},
		{name: "an admin reads a restricted package", user: "root", p: secret, org: org, admin: true, want: permRead},
		{name: "an admin does not write by being admin", user: "root", p: public, org: org, admin: true, want: permRead},
		{name: "a removed org member keeps no team grant", user: "rita", p: secret, org: &Org{Name: "acme", Members: map[string]string{}, Teams: org.Teams}, want: permNone},
		{name: "no org: a restricted package reaches its maintainers only", user: "rita", p: secret, want: permNone},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := packagePermission(Identity{Name: tc.user}, tc.p, tc.org, tc.admin); got != tc.want {
				t.Errorf("permission = %d, want %d", got, tc.want)
			}
		})
	}
}

// orgService: users alice (owner of org acme, created through SetOrgMember),
// bob, carol, mallory; alice published @acme/secret (restricted) and
// @acme/open.
func orgService(t *testing.T) (*Service, *memDocs) {
	t.Helper()
	users := newFakeUsers()
	for _, u := range []string{"alice", "bob", "carol", "mallory", "root"} {
		users.add(u, "pw", u+"@example.com")
	}
	docs := newMemDocs()
	s := newServiceFor(Config{Policy: Policy{Admins: []string{"root"}}, Users: users, Orgs: docs, OrgLeaves: memLeaves{docs}})
	ctx := context.Background()
	if _, err := s.SetOrgMember(ctx, cmdAlice, "acme", "alice", RoleOwner); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"@acme/secret", "@acme/open"} {
		b := buildBody(t, name, map[string]string{"latest": "1.0.0"}, pubVersion{version: "1.0.0"})
		if name == "@acme/secret" {
			access := AccessRestricted
			b.Access = &access
		}
		if err := s.Publish(ctx, cmdAlice, name, b); err != nil {
			t.Fatal(err)
		}
	}
	return s, docs
}

func TestOrgsScopeRule(t *testing.T) {
	s, _ := orgService(t)
	ctx := context.Background()
	mallory := Identity{Name: "mallory"}
	pub := func(user Identity, name string) error {
		return s.Publish(ctx, user, name, buildBody(t, name, map[string]string{"latest": "1.0.0"}, pubVersion{version: "1.0.0"}))
	}
	wantKind(t, pub(mallory, "@acme/evil"), KindForbidden)
	wantKind(t, pub(mallory, "@nobody/x"), KindForbidden)
	if err := pub(mallory, "@mallory/x"); err != nil {
		t.Errorf("publish in one's own user scope: %v", err)
	}
	if err := pub(mallory, "unscoped-x"); err != nil {
		t.Errorf("unscoped publish: %v", err)
	}
	// An org named like an existing user cannot be made; a scope holding
	// someone else's package cannot become an org.
	_, err := s.SetOrgMember(ctx, mallory, "bob", "mallory", RoleOwner)
	wantKind(t, err, KindForbidden)
	s.cmd.index = stubIndex{rows: map[string][]SearchRow{"scope:taken": {{Name: "@taken/x", Maintainers: []Person{{Name: "alice"}}}}}}
	_, err = s.SetOrgMember(ctx, mallory, "taken", "mallory", RoleOwner)
	wantKind(t, err, KindForbidden)
	// An org wins over a user who signs up under its name later.
	s.cmd.users.(*fakeUsers).add("acme", "pw", "acme@example.com")
	wantKind(t, pub(Identity{Name: "acme"}, "@acme/mine"), KindForbidden)
	// Membership lets bob publish under @acme/.
	if _, err := s.SetOrgMember(ctx, cmdAlice, "acme", "bob", ""); err != nil {
		t.Fatal(err)
	}
	if err := pub(cmdBob, "@acme/bobs"); err != nil {
		t.Errorf("member's publish under the org scope: %v", err)
	}
}

func TestOrgsHostileMembers(t *testing.T) {
	s, _ := orgService(t)
	ctx := context.Background()
	mallory := Identity{Name: "mallory"}
	_, err := s.SetOrgMember(ctx, mallory, "acme", "mallory", RoleOwner)
	wantKind(t, err, KindNotFound) // not a member: the org looks absent
	wantKind(t, s.AddTeamMember(ctx, mallory, "acme", DevelopersTeam, "mallory"), KindNotFound)
	wantKind(t, s.GrantTeam(ctx, mallory, "acme", DevelopersTeam, "@acme/secret", PermReadWrite), KindNotFound)
	_, err = s.OrgMembers(ctx, mallory, "acme")
	wantKind(t, err, KindNotFound)
	// A developer cannot promote themselves or grant.
	if _, err := s.SetOrgMember(ctx, cmdAlice, "acme", "mallory", RoleDeveloper); err != nil {
		t.Fatal(err)
	}
	_, err = s.SetOrgMember(ctx, mallory, "acme", "mallory", RoleAdmin)
	wantKind(t, err, KindForbidden)
	wantKind(t, s.GrantTeam(ctx, mallory, "acme", DevelopersTeam, "@acme/secret", PermReadWrite), KindForbidden)
	// An admin cannot make owners; the last owner stays.
	if _, err := s.SetOrgMember(ctx, cmdAlice, "acme", "bob", RoleAdmin); err != nil {
		t.Fatal(err)
	}
	_, err = s.SetOrgMember(ctx, cmdBob, "acme", "bob", RoleOwner)
	wantKind(t, err, KindForbidden)
	wantKind(t, s.RemoveOrgMember(ctx, cmdBob, "acme", "alice"), KindForbidden)
	wantKind(t, s.RemoveOrgMember(ctx, cmdAlice, "acme", "alice"), KindForbidden)
	_, err = s.SetOrgMember(ctx, cmdAlice, "acme", "alice", RoleAdmin) // the last owner cannot step down
	wantKind(t, err, KindForbidden)
	// Grants stay inside the org's scope.
	wantKind(t, s.GrantTeam(ctx, cmdAlice, "acme", DevelopersTeam, "unscoped-x", PermReadOnly), KindInvalid)
}

func TestOrgsGrantRevoke(t *testing.T) {
	s, _ := orgService(t)
	ctx := context.Background()
	carol := Identity{Name: "carol"}
	read := func() error { _, err := s.Packument(ctx, carol, "@acme/secret"); return err }
	wantKind(t, read(), KindNotFound)
	if _, err := s.SetOrgMember(ctx, cmdAlice, "acme", "carol", ""); err != nil {
		t.Fatal(err)
	}
	wantKind(t, read(), KindNotFound) // membership alone grants nothing
	if err := s.CreateTeam(ctx, cmdAlice, "acme", "qa", "testers"); err != nil {
		t.Fatal(err)
	}
	if err := s.AddTeamMember(ctx, cmdAlice, "acme", "qa", "carol"); err != nil {
		t.Fatal(err)
	}
	if err := s.GrantTeam(ctx, cmdAlice, "acme", "qa", "@acme/secret", PermReadOnly); err != nil {
		t.Fatal(err)
	}
	if err := read(); err != nil {
		t.Fatalf("read-only grant: %v", err)
	}
	if _, err := s.Tarball(ctx, carol, "@acme/secret", "secret-1.0.0.tgz", true); err != nil {
		t.Errorf("read-only grant, tarball: %v", err)
	}
	next := buildBody(t, "@acme/secret", map[string]string{"latest": "1.1.0"}, pubVersion{version: "1.1.0"})
	wantKind(t, s.Publish(ctx, carol, "@acme/secret", next), KindForbidden)
	wantKind(t, s.SetDistTag(ctx, carol, "@acme/secret", "beta", "1.0.0"), KindForbidden)
	collab, err := s.Collaborators(ctx, carol, "@acme/secret")
	if err != nil || collab["carol"] != PermReadOnly || collab["alice"] != PermReadWrite {
		t.Errorf("collaborators = %v, %v", collab, err)
	}
	if err := s.GrantTeam(ctx, cmdAlice, "acme", "qa", "@acme/secret", PermReadWrite); err != nil {
		t.Fatal(err)
	}
	if err := s.Publish(ctx, carol, "@acme/secret", next); err != nil {
		t.Errorf("read-write grant, publish: %v", err)
	}
	if err := s.RevokeTeam(ctx, cmdAlice, "acme", "qa", "@acme/secret"); err != nil {
		t.Fatal(err)
	}
	wantKind(t, read(), KindNotFound)
	_, err = s.Tarball(ctx, carol, "@acme/secret", "secret-1.0.0.tgz", false)
	wantKind(t, err, KindNotFound)
	_, err = s.DistTags(ctx, carol, "@acme/secret")
	wantKind(t, err, KindNotFound)
	// Writes on a package one cannot read answer 404, not 403.
	wantKind(t, s.SetAccess(ctx, carol, "@acme/secret", AccessPublic), KindNotFound)
	// The admin reads it.
	if _, err := s.Packument(ctx, Identity{Name: "root"}, "@acme/secret"); err != nil {
		t.Errorf("admin read: %v", err)
	}
}

func TestOrgsListings(t *testing.T) {
	s, docs := orgService(t)
	ctx := context.Background()
	if _, err := s.SetOrgMember(ctx, cmdAlice, "acme", "bob", RoleAdmin); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateTeam(ctx, cmdBob, "acme", "ops", ""); err != nil {
		t.Fatal(err)
	}
	teams, err := s.Teams(ctx, cmdBob, "acme")
	if err != nil || strings.Join(teams, ",") != "acme:developers,acme:ops" {
		t.Errorf("teams = %v, %v", teams, err)
	}
	members, err := s.TeamMembers(ctx, cmdAlice, "acme", DevelopersTeam)
	if err != nil || strings.Join(members, ",") != "alice,bob" {
		t.Errorf("developers = %v, %v", members, err)
	}
	roster, err := s.OrgMembers(ctx, cmdBob, "acme")
	if err != nil || roster["alice"] != RoleOwner || roster["bob"] != RoleAdmin || len(roster) != 2 {
		t.Errorf("roster = %v, %v", roster, err)
	}
	wantKind(t, s.DestroyTeam(ctx, cmdAlice, "acme", DevelopersTeam), KindForbidden)
	if err := s.DestroyTeam(ctx, cmdAlice, "acme", "ops"); err != nil {
		t.Fatal(err)
	}
	// Leaving the org drops one from every team.
	if err := s.RemoveOrgMember(ctx, cmdBob, "acme", "bob"); err != nil {
		t.Fatal(err)
	}
	var o Org
	if _, err := docs.Get(ctx, orgDocPrefix+"acme", &o); err != nil {
		t.Fatal(err)
	}
	got := append([]string{}, o.Teams[DevelopersTeam].Members...)
	sort.Strings(got)
	if strings.Join(got, ",") != "alice" || len(o.Members) != 1 {
		b, _ := json.Marshal(o)
		t.Errorf("after bob left: %s", b)
	}
}

// Concurrent changes of one org all land: each is a read-modify-write
// retried on a conflict.
func TestOrgsConcurrentChanges(t *testing.T) {
	s, _ := orgService(t)
	s.backoff = func(int) time.Duration { return 0 }
	ctx := context.Background()
	names := []string{"t1", "t2", "t3", "t4", "t5", "t6"}
	errs := make(chan error, len(names))
	for _, n := range names {
		go func() { errs <- s.CreateTeam(ctx, cmdAlice, "acme", n, "") }()
	}
	for range names {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	teams, _ := s.Teams(ctx, cmdAlice, "acme")
	if len(teams) != len(names)+1 {
		t.Errorf("teams = %v", teams)
	}
}

// Another user's package list leaves out the restricted packages the
// caller may not read; the owner's own list has them all.
func TestPackagesOfHidesRestricted(t *testing.T) {
	rows := []SearchRow{
		{Name: "open", Maintainers: []Person{{Name: "alice"}}},
		{Name: "@acme/secret", Maintainers: []Person{{Name: "alice"}}, Restricted: true},
	}
	s := newServiceFor(Config{Policy: Policy{Admins: []string{"root"}}, Index: listIndex{stubIndex: stubIndex{rows: map[string][]SearchRow{"maintainer:alice": rows}}, maintained: []string{"open", "@acme/secret"}}})
	ctx := context.Background()
	for _, tc := range []struct {
		who  Identity
		want string
	}{
		{Identity{}, "open"},
		{Identity{Name: "mallory"}, "open"},
		{Identity{Name: "root"}, "@acme/secret,open"},
		{cmdAlice, "@acme/secret,open"},
	} {
		got, err := s.PackagesOf(ctx, tc.who, "alice")
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for n := range got {
			names = append(names, n)
		}
		sort.Strings(names)
		if strings.Join(names, ",") != tc.want {
			t.Errorf("PackagesOf(alice) as %q = %v, want %s", tc.who.Name, names, tc.want)
		}
	}
}

// listIndex is stubIndex with a MaintainedBy answer.
type listIndex struct {
	stubIndex
	maintained []string
	stars      []string
}

func (x listIndex) StarredBy(context.Context, string) ([]string, error) {
	return append([]string{}, x.stars...), nil
}

func (x listIndex) MaintainedBy(context.Context, string) ([]string, error) { return x.maintained, nil }

// Star lists leave out restricted packages the caller may not read.
func TestStarredByHidesRestricted(t *testing.T) {
	s, _ := orgService(t)
	s.cmd.index = listIndex{stars: []string{"@acme/secret", "@acme/open"}}
	ctx := context.Background()
	for who, want := range map[string]string{"": "@acme/open", "mallory": "@acme/open", "alice": "@acme/open,@acme/secret", "root": "@acme/open,@acme/secret"} {
		got, err := s.StarredBy(ctx, Identity{Name: who}, "bob")
		if err != nil || strings.Join(got, ",") != want {
			t.Errorf("StarredBy as %q = %v, %v; want %s", who, got, err, want)
		}
	}
}
