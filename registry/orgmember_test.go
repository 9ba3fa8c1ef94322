package registry

import (
	"reflect"
	"testing"
)

func TestCheckSetMember(t *testing.T) {
	alice := Identity{Name: "alice"}
	tests := []struct {
		name              string
		user              Identity
		org, member, role string
		wantRole          string
		wantKind          Kind // -1: accepted
	}{
		{"no role is developer", alice, "acme", "bob", "", RoleDeveloper, -1},
		{"admin", alice, "acme", "bob", RoleAdmin, RoleAdmin, -1},
		{"owner", alice, "acme", "bob", RoleOwner, RoleOwner, -1},
		{"unknown role", alice, "acme", "bob", "boss", "", KindInvalid},
		{"bad org name", alice, "Acme!", "bob", "", "", KindInvalid},
		{"bad member name", alice, "acme", "Bob Smith", "", "", KindInvalid},
		{"read-only token", Identity{Name: "alice", ReadOnly: true}, "acme", "bob", "", "", KindForbidden},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			role, err := checkSetMember(tc.user, tc.org, tc.member, tc.role)
			if tc.wantKind != -1 {
				wantKind(t, err, tc.wantKind)
				return
			}
			if err != nil || role != tc.wantRole {
				t.Fatalf("checkSetMember = %q, %v; want %q", role, err, tc.wantRole)
			}
		})
	}
}

func TestOrgSetMember(t *testing.T) {
	org := func() *Org {
		return &Org{Members: map[string]string{"olga": RoleOwner, "adam": RoleAdmin, "dev": RoleDeveloper},
			Teams: map[string]*Team{DevelopersTeam: {Members: []string{"olga", "adam", "dev"}, Packages: map[string]string{}}}}
	}
	tests := []struct {
		name, caller, member, role string
		wantKind                   Kind // -1: done
		wantDevs                   []string
	}{
		{"owner adds a developer, who joins the developers team", RoleOwner, "new", RoleDeveloper, -1, []string{"olga", "adam", "dev", "new"}},
		{"admin adds a developer", RoleAdmin, "new", RoleDeveloper, -1, []string{"olga", "adam", "dev", "new"}},
		{"a role change keeps the teams", RoleOwner, "dev", RoleAdmin, -1, []string{"olga", "adam", "dev"}},
		{"admin may not make owners", RoleAdmin, "dev", RoleOwner, KindForbidden, nil},
		{"admin may not unmake owners", RoleAdmin, "olga", RoleDeveloper, KindForbidden, nil},
		{"the last owner stays owner", RoleOwner, "olga", RoleAdmin, KindForbidden, nil},
		{"owner makes a second owner", RoleOwner, "adam", RoleOwner, -1, []string{"olga", "adam", "dev"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := org()
			err := o.setMember("acme", tc.caller, tc.member, tc.role)
			if tc.wantKind != -1 {
				wantKind(t, err, tc.wantKind)
				if !reflect.DeepEqual(o.Members, org().Members) {
					t.Errorf("a refused change changed the members: %v", o.Members)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if o.Members[tc.member] != tc.role {
				t.Errorf("%s's role = %q, want %q", tc.member, o.Members[tc.member], tc.role)
			}
			if got := o.Teams[DevelopersTeam].Members; !reflect.DeepEqual(got, tc.wantDevs) {
				t.Errorf("developers = %v, want %v", got, tc.wantDevs)
			}
		})
	}
	// An org without a developers team gets one for its new member.
	o := &Org{Members: map[string]string{"olga": RoleOwner}, Teams: map[string]*Team{}}
	if err := o.setMember("acme", RoleOwner, "new", RoleDeveloper); err != nil {
		t.Fatal(err)
	}
	if dev := o.Teams[DevelopersTeam]; dev == nil || !reflect.DeepEqual(dev.Members, []string{"new"}) {
		t.Errorf("developers team = %+v", dev)
	}
}
