package registry

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"
)

// Orgs and teams (npm org, npm team, npm access grant/revoke).
//
// A scope belongs to a user (their name) or to an org. An org is one
// document of the system database ("org:<name>") holding its members with
// their roles and its teams, each team with its members and the packages
// it is granted. One document per org makes every change one atomic
// read-modify-write, retried on a conflict.
//
// Rules (the secure defaults; README "Orgs, teams and read access"):
//   - The first `npm org set <org> …` creates the org, its caller its first
//     owner, unless a user of that name exists (their scope) or a live
//     package in @<org>/ has another maintainer.
//   - Owners and admins manage members and teams; only owners make or
//     unmake owners; an org always keeps one owner. Every org has a
//     "developers" team that every new member joins.
//   - A new package under @<scope>/ needs membership of org <scope>, or,
//     when no such org exists, to be user <scope>.
//   - Teams are granted packages of their org's scope only, read-only or
//     read-write (read-write members publish like maintainers).
//   - Org rosters and team listings are visible to members and registry
//     admins only; everyone else gets the same 404 as for an unknown org.

// Org roles.
const (
	RoleOwner     = "owner"
	RoleAdmin     = "admin"
	RoleDeveloper = "developer"
)

// Team permissions on a package (npm access grant).
const (
	PermReadOnly  = "read-only"
	PermReadWrite = "read-write"
)

// DevelopersTeam is the team every org has and every new member joins.
const DevelopersTeam = "developers"

// orgDocPrefix starts the id of an org document in the system database.
const orgDocPrefix = "org:"

// maxOrgAttempts bounds the read-modify-write loop of an org change.
const maxOrgAttempts = 10

// Org is an organisation: the owner of a scope, its members and teams.
type Org struct {
	Name    string            `json:"name"`
	Members map[string]string `json:"members"` // user → role
	Teams   map[string]*Team  `json:"teams"`
	Created string            `json:"created,omitempty"`
	// Changed records when each entry last changed, a removed one too
	// (entry → RFC 3339 time; orgmerge.go): conflicting revisions merge
	// entry by entry. Documents written before it have none.
	Changed map[string]string `json:"changed,omitempty"`
}

// Team is a group of an org's members and the packages granted to it.
type Team struct {
	Description string            `json:"description,omitempty"`
	Members     []string          `json:"members"`
	Packages    map[string]string `json:"packages"` // package → PermReadOnly|PermReadWrite
}

func (t *Team) has(user string) bool {
	for _, m := range t.Members {
		if m == user {
			return true
		}
	}
	return false
}

func (t *Team) remove(user string) bool {
	for i, m := range t.Members {
		if m == user {
			t.Members = append(t.Members[:i], t.Members[i+1:]...)
			return true
		}
	}
	return false
}

// Membership is npm org set's answer.
type Membership struct {
	Org  OrgSize `json:"org"`
	User string  `json:"user"`
	Role string  `json:"role"`
}

// OrgSize names an org and counts its members.
type OrgSize struct {
	Name string `json:"name"`
	Size int    `json:"size"`
}

// ValidateOrgName checks an org (scope) or team name: lower case letters,
// digits, - _ and ., not starting with . or _, at most 50 characters.
func ValidateOrgName(what, name string) error {
	switch {
	case name == "":
		return E(KindInvalid, "%s name is empty", what)
	case len(name) > 50:
		return E(KindInvalid, "%s name %q is longer than 50 characters", what, name)
	case name[0] == '.' || name[0] == '_':
		return E(KindInvalid, "%s name %q cannot start with . or _", what, name)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return E(KindInvalid, "%s name %q may contain only lower-case letters, digits, - _ and .", what, name)
		}
	}
	return nil
}

// loadOrg returns org name and its revision; nil when there is no such
// org. With conflicting revisions it answers from their merge
// (orgmerge.go), never from CouchDB's arbitrary winner alone: a removal or
// revocation on the losing side must hold at once. It writes the merge
// (best effort, one per org at a time) so that the next read is plain.
func (s *Service) loadOrg(ctx context.Context, name string) (*Org, string, error) {
	o, rev, losers, err := s.readOrg(ctx, name, false)
	if err != nil || len(losers) == 0 {
		return o, rev, err
	}
	merged := o.clone()
	_, _, _ = s.reads.Do(orgDocPrefix+name, func() (any, error) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), readMergeBudget)
		defer cancel()
		_, err := s.orgLeaves.WriteMerge(ctx, orgDocPrefix+name, rev, merged, losers)
		return nil, err // a failure: the next read or write merges again
	})
	return o, rev, nil
}

// readOrg reads org name: the merge of its leaves when it has several, the
// revision to write on (the winner's) and the losing leaves a write
// deletes; nil when there is no such org. Without stamps set, an org
// without conflicts is read without its change stamps: access decisions
// do not need them, and they are most of a large org's bytes.
func (s *Service) readOrg(ctx context.Context, name string, stamps bool) (*Org, string, []string, error) {
	if name == "" {
		return nil, "", nil, nil
	}
	if s.orgLeaves == nil { // no leaf access (tests): the winner alone
		var o Org
		rev, err := s.orgs.Get(ctx, orgDocPrefix+name, &o)
		if IsKind(err, KindNotFound) {
			return nil, "", nil, nil
		}
		if err != nil {
			return nil, "", nil, err
		}
		return o.normalized(), rev, nil, nil
	}
	leaves, err := s.orgLeaves.Leaves(ctx, orgDocPrefix+name)
	if IsKind(err, KindNotFound) {
		return nil, "", nil, nil
	}
	if err != nil {
		return nil, "", nil, err
	}
	if len(leaves) == 1 && !stamps {
		var v orgWithoutStamps
		if err := json.Unmarshal(leaves[0].Body, &v); err != nil {
			return nil, "", nil, Wrap(KindInternal, err, "decode org %s", name)
		}
		o := Org{Name: v.Name, Members: v.Members, Teams: v.Teams, Created: v.Created}
		return o.normalized(), leaves[0].Rev, nil, nil
	}
	orgs := make([]*Org, 0, len(leaves))
	losers := make([]string, 0, len(leaves)-1)
	for i, l := range leaves {
		var o Org
		if err := json.Unmarshal(l.Body, &o); err != nil {
			return nil, "", nil, Wrap(KindInternal, err, "decode org %s (revision %s)", name, l.Rev)
		}
		orgs = append(orgs, o.normalized())
		if i > 0 {
			losers = append(losers, l.Rev)
		}
	}
	if len(orgs) == 1 {
		return orgs[0], leaves[0].Rev, nil, nil
	}
	merged, notes := MergeOrgs(orgs)
	if s.observer != nil {
		s.observer.OrgMerged(name, len(orgs), notes)
	}
	return merged.normalized(), leaves[0].Rev, losers, nil
}

// orgWithoutStamps is an org document read for an access decision: the
// decoder skips its change stamps.
type orgWithoutStamps struct {
	Name    string            `json:"name"`
	Members map[string]string `json:"members"`
	Teams   map[string]*Team  `json:"teams"`
	Created string            `json:"created,omitempty"`
}

// normalized gives o the empty maps a change writes into.
func (o *Org) normalized() *Org {
	if o.Members == nil {
		o.Members = map[string]string{}
	}
	if o.Teams == nil {
		o.Teams = map[string]*Team{}
	}
	for t, team := range o.Teams {
		if team == nil {
			delete(o.Teams, t)
			continue
		}
		if team.Packages == nil {
			team.Packages = map[string]string{}
		}
	}
	return o
}

// clone is a deep copy of o.
func (o *Org) clone() *Org {
	c := *o
	c.Members = maps.Clone(o.Members)
	c.Changed = maps.Clone(o.Changed)
	c.Teams = make(map[string]*Team, len(o.Teams))
	for name, t := range o.Teams {
		tc := *t
		tc.Members = slices.Clone(t.Members)
		tc.Packages = maps.Clone(t.Packages)
		c.Teams[name] = &tc
	}
	return &c
}

// writeOrg is the one read-change-write cycle of an org: it reads the org
// (merging conflicting revisions), lets change check and change it, stamps
// what changed, writes it on the winner's revision and deletes the losing
// leaves, confirms a write CouchDB stored on fewer nodes than its quorum
// (202), and on a write conflict starts again. change sees nil for an org
// that does not exist; an error from it ends the cycle.
func (s *Service) writeOrg(ctx context.Context, name string, change func(o *Org) error) (*Org, error) {
	for attempt := 0; attempt < maxOrgAttempts; attempt++ {
		o, rev, losers, err := s.readOrg(ctx, name, true)
		if err != nil {
			return nil, err
		}
		var before orgState
		if o != nil {
			before = o.entries()
		}
		if err := change(o); err != nil {
			return nil, err
		}
		stamped := o.stampChanges(before, s.now())
		w, err := s.putOrg(ctx, name, rev, o, losers)
		if err == nil {
			if !w.Quorum {
				s.confirmOrg(ctx, name, stamped)
			}
			return o, nil
		}
		if !IsKind(err, KindConflict) {
			return nil, err
		}
		if err := s.sleep(ctx, attempt); err != nil {
			return nil, Wrap(KindUnavailable, err, "change of org %s gave up", name)
		}
	}
	return nil, E(KindConflict, "org %s kept changing under concurrent writes; retry", name)
}

// putOrg writes o on revision rev and deletes the losing leaves.
func (s *Service) putOrg(ctx context.Context, name, rev string, o *Org, losers []string) (Written, error) {
	if s.orgLeaves == nil {
		r, err := s.orgs.Put(ctx, orgDocPrefix+name, rev, o)
		return Written{Rev: r, Quorum: true}, err
	}
	return s.orgLeaves.WriteMerge(ctx, orgDocPrefix+name, rev, o, losers)
}

// confirmOrg follows up an org write CouchDB stored on fewer nodes than
// its quorum: it reads the org back (merging whatever conflict the write
// caused) until the stamps the write made, or later ones, are in it. A
// write still unseen after confirmBound is reported; it exists on at least
// one node, and the next read or write after CouchDB's internal
// replication brings it over merges it.
func (s *Service) confirmOrg(ctx context.Context, name string, stamped map[string]time.Time) {
	bound := confirmBound
	if s.confirmFor > 0 {
		bound = s.confirmFor
	}
	deadline := time.Now().Add(bound)
	for attempt := 0; time.Now().Before(deadline); attempt++ {
		o, rev, losers, err := s.readOrg(ctx, name, true)
		if err == nil && o != nil {
			if len(losers) > 0 {
				_, _ = s.putOrg(ctx, name, rev, o, losers)
			}
			if o.holds(stamped) {
				return
			}
		}
		if s.sleep(ctx, attempt) != nil {
			break
		}
	}
	if s.observer != nil {
		s.observer.WriteUnconfirmed(orgDocPrefix + name)
	}
}

// orgOf returns the org owning package name's scope, or nil.
func (s *Service) orgOf(ctx context.Context, name string) (*Org, error) {
	scope, _, _ := SplitName(name)
	if scope == "" {
		return nil, nil
	}
	o, _, err := s.loadOrg(ctx, strings.ToLower(scope))
	return o, err
}

// permission is what a user may do with a package.
type permission int

const (
	permNone  permission = iota // the package looks absent
	permRead                    // packument, versions, tarballs, search hits
	permWrite                   // publish new versions, dist-tags
)

// packagePermission is the one access decision every read and write path
// uses: org is the org owning p's scope (nil when none), admin whether
// user is a registry admin. A maintainer writes; a member of a team
// granted p reads (read-only) or writes (read-write); anyone reads a
// public package; an admin reads a restricted one; nobody else sees it.
func packagePermission(user Identity, p *Packument, org *Org, admin bool) permission {
	perm := permNone
	if AccessOf(p) == AccessPublic {
		perm = permRead
	}
	if user.Anonymous() {
		return perm
	}
	if p.HasMaintainer(user.Name) {
		return permWrite
	}
	if org != nil {
		if scope, _, _ := SplitName(p.Name); strings.EqualFold(scope, org.Name) {
			if _, member := org.Members[user.Name]; member {
				for _, t := range org.Teams {
					if !t.has(user.Name) {
						continue
					}
					switch t.Packages[p.Name] {
					case PermReadWrite:
						return permWrite
					case PermReadOnly:
						perm = max(perm, permRead)
					}
				}
			}
		}
	}
	if admin {
		perm = max(perm, permRead)
	}
	return perm
}

// permissionOf loads what packagePermission needs and decides. Public
// packages and anonymous callers need no org lookup.
func (s *Service) permissionOf(ctx context.Context, user Identity, p *Packument) (permission, error) {
	var org *Org
	if !user.Anonymous() && !p.HasMaintainer(user.Name) {
		var err error
		if org, err = s.orgOf(ctx, p.Name); err != nil {
			return permNone, err
		}
	}
	return packagePermission(user, p, org, !user.Anonymous() && s.isAdmin(user.Name)), nil
}

// requireWriter refuses users who may not change p's versions or tags:
// maintainers and members of teams granted read-write may.
func (s *Service) requireWriter(ctx context.Context, user Identity, p *Packument) error {
	perm, err := s.permissionOf(ctx, user, p)
	if err != nil {
		return err
	}
	if perm == permNone {
		return E(KindNotFound, "not_found")
	}
	if perm < permWrite {
		return E(KindForbidden, "you (%s) are not a maintainer of %s and no team of yours is granted read-write on it", user.Name, p.Name)
	}
	return nil
}

// checkScope applies the scope rule to the first publish of name: a scope
// belongs to an org (its members publish) or, when no org has it, to the
// user of that name.
func (s *Service) checkScope(ctx context.Context, user Identity, name string) error {
	scope, _, _ := SplitName(name)
	if scope == "" {
		return nil
	}
	scope = strings.ToLower(scope)
	org, _, err := s.loadOrg(ctx, scope)
	if err != nil {
		return err
	}
	if org != nil {
		if _, ok := org.Members[user.Name]; ok {
			return nil
		}
		return E(KindForbidden, "you (%s) are not a member of the org %s: only its members publish new packages under @%s/", user.Name, scope, scope)
	}
	if scope == user.Name {
		return nil
	}
	return E(KindForbidden, "the scope @%s belongs to no org here and is not your user scope (@%s); create the org first: npm org set %s %s owner", scope, user.Name, scope, user.Name)
}

// orgVisible returns org name for user: members and registry admins see
// it; everyone else gets the 404 of an unknown org.
func (s *Service) orgVisible(ctx context.Context, user Identity, name string) (*Org, error) {
	if err := ValidateOrgName("org", name); err != nil {
		return nil, err
	}
	o, _, err := s.loadOrg(ctx, name)
	if err != nil {
		return nil, err
	}
	if o == nil || user.Anonymous() {
		return nil, errNoOrg(name)
	}
	if _, ok := o.Members[user.Name]; !ok && !s.isAdmin(user.Name) {
		return nil, errNoOrg(name)
	}
	return o, nil
}

func errNoOrg(name string) error {
	return E(KindNotFound, "no org %s (or you are not one of its members)", name)
}

// changeOrg runs a read-modify-write cycle on org name for user, who must
// be one of its owners or admins; a conflict re-reads and re-applies.
// change sees the caller's role.
func (s *Service) changeOrg(ctx context.Context, user Identity, name string, change func(o *Org, role string) error) (*Org, error) {
	if err := user.CanWrite(); err != nil {
		return nil, err
	}
	if err := ValidateOrgName("org", name); err != nil {
		return nil, err
	}
	return s.writeOrg(ctx, name, func(o *Org) error {
		if o == nil {
			return errNoOrg(name)
		}
		role, member := o.Members[user.Name]
		if !member {
			return errNoOrg(name)
		}
		if role != RoleOwner && role != RoleAdmin {
			return E(KindForbidden, "you (%s) are a %s of %s; only its owners and admins change it", user.Name, role, name)
		}
		return change(o, role)
	})
}

// createOrg makes org name with user as its first owner, unless the scope
// is taken: a user of that name, or a live package in it maintained by
// someone else. KindConflict when another request created it first.
func (s *Service) createOrg(ctx context.Context, user Identity, name string) error {
	if _, err := s.cmd.users.GetUser(ctx, name); err == nil {
		return E(KindForbidden, "%s is a user name: the scope @%s belongs to that user", name, name)
	} else if !IsKind(err, KindNotFound) {
		return err
	}
	rows, err := s.cmd.index.SearchTerm(ctx, "scope:"+name, false, maxSearchRows)
	if err != nil {
		return err
	}
	for _, r := range rows {
		mine := false
		for _, m := range r.Maintainers {
			mine = mine || m.Name == user.Name
		}
		if !mine {
			return E(KindForbidden, "the scope @%s already holds packages you do not maintain (%s); it cannot become your org", name, r.Name)
		}
	}
	return CreateOrg(ctx, s.orgs, name, user.Name, s.now())
}

// CreateOrg stores a new org name with owner as its only member and owner,
// in its developers team; KindConflict when the org exists. It checks no
// scope rule: the registry's org set does (createOrg), an operator's
// `couchnpm org create` decides.
func CreateOrg(ctx context.Context, docs StateDocs, name, owner string, now time.Time) error {
	if err := ValidateOrgName("org", name); err != nil {
		return err
	}
	if err := ValidateUsername(owner); err != nil {
		return err
	}
	o := &Org{
		Name:    name,
		Members: map[string]string{owner: RoleOwner},
		Teams:   map[string]*Team{DevelopersTeam: {Members: []string{owner}, Packages: map[string]string{}}},
		Created: stamp(now),
	}
	o.stampChanges(nil, now)
	_, err := docs.Put(ctx, orgDocPrefix+name, "", o)
	if IsKind(err, KindConflict) {
		return Wrap(KindConflict, err, "org %s exists", name)
	}
	return err
}

// SetOrgMember adds member to org with role, or changes their role (npm
// org set). The first call for an org that does not exist creates it with
// the caller as its owner.
func (s *Service) SetOrgMember(ctx context.Context, user Identity, org, member, role string) (*Membership, error) {
	role, err := checkSetMember(user, org, member, role)
	if err != nil {
		return nil, err
	}
	if err := s.ensureOrg(ctx, user, org, member, role); err != nil {
		return nil, err
	}
	if _, err := s.cmd.users.GetUser(ctx, member); err != nil {
		if IsKind(err, KindNotFound) {
			return nil, E(KindNotFound, "no user %s", member)
		}
		return nil, err
	}
	o, err := s.changeOrg(ctx, user, org, func(o *Org, callerRole string) error {
		return o.setMember(org, callerRole, member, role)
	})
	if err != nil {
		return nil, err
	}
	return &Membership{Org: OrgSize{Name: org, Size: len(o.Members)}, User: member, Role: role}, nil
}

// checkSetMember checks an npm org set request before anything is read,
// and returns the role it asks for (developer when none).
func checkSetMember(user Identity, org, member, role string) (string, error) {
	if err := user.CanWrite(); err != nil {
		return "", err
	}
	if role == "" {
		role = RoleDeveloper
	}
	if role != RoleOwner && role != RoleAdmin && role != RoleDeveloper {
		return "", E(KindInvalid, "role %q: want owner, admin or developer", role)
	}
	if err := ValidateOrgName("org", org); err != nil {
		return "", err
	}
	if err := ValidateUsername(member); err != nil {
		return "", err
	}
	return role, nil
}

// ensureOrg creates org with user as its first owner when it does not
// exist yet; a caller who names themselves must then ask to be owner.
func (s *Service) ensureOrg(ctx context.Context, user Identity, org, member, role string) error {
	existing, _, err := s.loadOrg(ctx, org)
	if err != nil || existing != nil {
		return err
	}
	if member == user.Name && role != RoleOwner {
		return E(KindInvalid, "org %s does not exist; whoever creates it is its first owner (npm org set %s %s owner)", org, org, user.Name)
	}
	if err := s.createOrg(ctx, user, org); err != nil && !IsKind(err, KindConflict) {
		return err
	}
	return nil
}

// setMember gives member role in o (named org), for a caller whose role in
// o is callerRole: only owners make or unmake owners, the last owner stays, and
// a new member joins the developers team.
func (o *Org) setMember(org, callerRole, member, role string) error {
	old, had := o.Members[member]
	if callerRole != RoleOwner && (role == RoleOwner || old == RoleOwner) {
		return E(KindForbidden, "only owners of %s make or unmake owners", org)
	}
	if old == RoleOwner && role != RoleOwner && o.owners() == 1 {
		return E(KindForbidden, "%s is the last owner of %s; make someone else owner first", member, org)
	}
	o.Members[member] = role
	if !had {
		dev := o.Teams[DevelopersTeam]
		if dev == nil {
			dev = &Team{Packages: map[string]string{}}
			o.Teams[DevelopersTeam] = dev
		}
		if !dev.has(member) {
			dev.Members = append(dev.Members, member)
		}
	}
	return nil
}

func (o *Org) owners() int {
	n := 0
	for _, r := range o.Members {
		if r == RoleOwner {
			n++
		}
	}
	return n
}

// RemoveOrgMember removes member from org and all its teams (npm org rm).
// Owners and admins remove others (admins no owners); anyone may leave,
// except the last owner.
func (s *Service) RemoveOrgMember(ctx context.Context, user Identity, org, member string) error {
	if member == user.Name {
		return s.leaveOrg(ctx, user, org)
	}
	_, err := s.changeOrg(ctx, user, org, func(o *Org, callerRole string) error {
		role, ok := o.Members[member]
		if !ok {
			return E(KindNotFound, "%s is not a member of %s", member, org)
		}
		if role == RoleOwner && callerRole != RoleOwner {
			return E(KindForbidden, "only owners of %s remove owners", org)
		}
		if role == RoleOwner && o.owners() == 1 {
			return E(KindForbidden, "%s is the last owner of %s", member, org)
		}
		o.dropMember(member)
		return nil
	})
	return err
}

func (o *Org) dropMember(member string) {
	delete(o.Members, member)
	for _, t := range o.Teams {
		t.remove(member)
	}
}

// leaveOrg lets a member of any role remove themselves.
func (s *Service) leaveOrg(ctx context.Context, user Identity, org string) error {
	if err := user.CanWrite(); err != nil {
		return err
	}
	_, err := s.writeOrg(ctx, org, func(o *Org) error {
		role, ok := o.memberRole(user.Name)
		if !ok {
			return errNoOrg(org)
		}
		if role == RoleOwner && o.owners() == 1 {
			return E(KindForbidden, "you are the last owner of %s; make someone else owner first", org)
		}
		o.dropMember(user.Name)
		return nil
	})
	return err
}

func (o *Org) memberRole(user string) (string, bool) {
	if o == nil {
		return "", false
	}
	r, ok := o.Members[user]
	return r, ok
}

// OrgMembers is org's roster, user → role (npm org ls).
func (s *Service) OrgMembers(ctx context.Context, user Identity, org string) (map[string]string, error) {
	o, err := s.orgVisible(ctx, user, org)
	if err != nil {
		return nil, err
	}
	return o.Members, nil
}

// CreateTeam adds team to org (npm team create).
func (s *Service) CreateTeam(ctx context.Context, user Identity, org, team, description string) error {
	if err := ValidateOrgName("team", team); err != nil {
		return err
	}
	_, err := s.changeOrg(ctx, user, org, func(o *Org, _ string) error {
		if _, ok := o.Teams[team]; ok {
			return E(KindConflict, "team %s:%s already exists", org, team)
		}
		o.Teams[team] = &Team{Description: description, Members: []string{}, Packages: map[string]string{}}
		return nil
	})
	return err
}

// DestroyTeam removes team from org (npm team destroy); developers stays.
func (s *Service) DestroyTeam(ctx context.Context, user Identity, org, team string) error {
	_, err := s.changeOrg(ctx, user, org, func(o *Org, _ string) error {
		if _, ok := o.Teams[team]; !ok {
			return E(KindNotFound, "no team %s:%s", org, team)
		}
		if team == DevelopersTeam {
			return E(KindForbidden, "the %s team of %s cannot be destroyed", DevelopersTeam, org)
		}
		delete(o.Teams, team)
		return nil
	})
	return err
}

// AddTeamMember puts member, who must belong to org, into team (npm team
// add).
func (s *Service) AddTeamMember(ctx context.Context, user Identity, org, team, member string) error {
	_, err := s.changeOrg(ctx, user, org, func(o *Org, _ string) error {
		t, ok := o.Teams[team]
		if !ok {
			return E(KindNotFound, "no team %s:%s", org, team)
		}
		if _, ok := o.Members[member]; !ok {
			return E(KindInvalid, "%s is not a member of %s; add them first (npm org set %s %s)", member, org, org, member)
		}
		if !t.has(member) {
			t.Members = append(t.Members, member)
		}
		return nil
	})
	return err
}

// RemoveTeamMember takes member out of team (npm team rm).
func (s *Service) RemoveTeamMember(ctx context.Context, user Identity, org, team, member string) error {
	_, err := s.changeOrg(ctx, user, org, func(o *Org, _ string) error {
		t, ok := o.Teams[team]
		if !ok {
			return E(KindNotFound, "no team %s:%s", org, team)
		}
		if !t.remove(member) {
			return E(KindNotFound, "%s is not in team %s:%s", member, org, team)
		}
		return nil
	})
	return err
}

// Teams lists org's teams as "org:team" (npm team ls <org>).
func (s *Service) Teams(ctx context.Context, user Identity, org string) ([]string, error) {
	o, err := s.orgVisible(ctx, user, org)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(o.Teams))
	for t := range o.Teams {
		out = append(out, org+":"+t)
	}
	sort.Strings(out)
	return out, nil
}

// TeamMembers lists team's members (npm team ls <org>:<team>).
func (s *Service) TeamMembers(ctx context.Context, user Identity, org, team string) ([]string, error) {
	t, err := s.visibleTeam(ctx, user, org, team)
	if err != nil {
		return nil, err
	}
	out := append([]string{}, t.Members...)
	sort.Strings(out)
	return out, nil
}

func (s *Service) visibleTeam(ctx context.Context, user Identity, org, team string) (*Team, error) {
	o, err := s.orgVisible(ctx, user, org)
	if err != nil {
		return nil, err
	}
	t, ok := o.Teams[team]
	if !ok {
		return nil, E(KindNotFound, "no team %s:%s", org, team)
	}
	return t, nil
}

// TeamPackages lists the packages granted to team with their permission
// (npm access list packages <org>:<team>).
func (s *Service) TeamPackages(ctx context.Context, user Identity, org, team string) (map[string]string, error) {
	t, err := s.visibleTeam(ctx, user, org, team)
	if err != nil {
		return nil, err
	}
	return t.Packages, nil
}

// GrantTeam gives team perm on pkg, a live package of org's scope (npm
// access grant).
func (s *Service) GrantTeam(ctx context.Context, user Identity, org, team, pkg, perm string) error {
	if perm != PermReadOnly && perm != PermReadWrite {
		return E(KindInvalid, "permissions %q: want read-only or read-write", perm)
	}
	if err := ValidateName(pkg); err != nil {
		return err
	}
	if scope, _, _ := SplitName(pkg); scope != org {
		return E(KindInvalid, "a team of %s is granted packages of @%s/ only, not %s", org, org, pkg)
	}
	_, err := s.changeOrg(ctx, user, org, func(o *Org, _ string) error {
		t, ok := o.Teams[team]
		if !ok {
			return E(KindNotFound, "no team %s:%s", org, team)
		}
		p, err := s.store.GetPackument(ctx, pkg)
		if err == nil && p.IsTombstone() {
			err = E(KindNotFound, "package %s was unpublished", pkg)
		}
		if err != nil {
			return err
		}
		t.Packages[pkg] = perm
		return nil
	})
	return err
}

// RevokeTeam takes pkg away from team (npm access revoke).
func (s *Service) RevokeTeam(ctx context.Context, user Identity, org, team, pkg string) error {
	if err := ValidateName(pkg); err != nil {
		return err
	}
	_, err := s.changeOrg(ctx, user, org, func(o *Org, _ string) error {
		t, ok := o.Teams[team]
		if !ok {
			return E(KindNotFound, "no team %s:%s", org, team)
		}
		if _, ok := t.Packages[pkg]; !ok {
			return E(KindNotFound, "team %s:%s is not granted %s", org, team, pkg)
		}
		delete(t.Packages, pkg)
		return nil
	})
	return err
}
