package registry

import (
	"context"
	"encoding/json"
	"sort"
	"strings"
)

// Read rule for restricted packages (npm access set status=private): only
// their maintainers, the members of teams granted them and the registry's
// admins read them (packument, versions, tarballs, dist-tags, search hits,
// listings); everyone else, logged in or not, gets the same 404 as for a
// package that does not exist. The decision is packagePermission (orgs.go).

// AccessOf is a packument's stored access level; public when unset.
// Every read of a package asks (the access rule runs on every cache hit),
// so the two values couchnpm writes are compared as bytes before any JSON
// decoding.
func AccessOf(p *Packument) string {
	raw, ok := p.Fields["access"]
	if !ok {
		return AccessPublic
	}
	switch string(raw) {
	case `"` + AccessPublic + `"`:
		return AccessPublic
	case `"` + AccessRestricted + `"`:
		return AccessRestricted
	}
	var a string // written some other way (escapes, spaces): decoded
	if json.Unmarshal(raw, &a) == nil && a == AccessRestricted {
		return AccessRestricted
	}
	return AccessPublic
}

// checkTarballRead applies checkRead to a tarball request: every download
// loads the packument (through the packument cache when it is on) and
// returns it, nil for a name not stored here (a mirrored one, public) or
// unpublished entirely (nothing left to hide; the lookup finds no private
// tarball). The packument returned is shared: read only.
func (s *Service) checkTarballRead(ctx context.Context, user Identity, name string) (*Packument, error) {
	p, err := s.store.PeekPackument(ctx, name) // read only: no copy of a cached document
	if IsKind(err, KindNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if p.IsTombstone() {
		return nil, nil
	}
	if err := s.checkRead(ctx, user, p); err != nil {
		return nil, err
	}
	return p, nil
}

// Visibility reports whether a package is public (npm access get status).
func (s *Service) Visibility(ctx context.Context, user Identity, name string) (bool, error) {
	p, err := s.Packument(ctx, user, name)
	if err != nil {
		return false, err
	}
	return AccessOf(p) == AccessPublic, nil
}

// Collaborators maps each maintainer to "read-write" and each member of a
// team granted the package to the team's permission (npm access list
// collaborators); a maintainer's own permission wins.
func (s *Service) Collaborators(ctx context.Context, user Identity, name string) (map[string]string, error) {
	p, err := s.Packument(ctx, user, name)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	org, err := s.orgOf(ctx, p.Name)
	if err != nil {
		return nil, err
	}
	if org != nil {
		for _, t := range org.Teams {
			perm, ok := t.Packages[p.Name]
			if !ok {
				continue
			}
			for _, m := range t.Members {
				if out[m] != PermReadWrite {
					out[m] = perm
				}
			}
		}
	}
	for _, m := range p.Maintainers {
		out[m.Name] = PermReadWrite
	}
	return out, nil
}

// SetAccess changes a package's access level (npm access set status=…);
// maintainers only.
func (s *Service) SetAccess(ctx context.Context, user Identity, name, access string) error {
	level, err := NormalizeAccess(access)
	if err != nil {
		return err
	}
	return s.modify(ctx, user, name, func(doc *Packument) error {
		if err := s.requireMaintainer(user, doc); err != nil {
			return err
		}
		doc.Fields["access"] = mustJSON(level)
		return nil
	})
}

// PackagesOf lists the packages owner maintains, each "read-write" (npm
// access list packages <user>). Another user's list leaves out the
// restricted packages the caller may not read, decided on the search
// view's rows (which carry maintainers and access), so that no packument
// is loaded.
func (s *Service) PackagesOf(ctx context.Context, user Identity, owner string) (map[string]string, error) {
	out := map[string]string{}
	if owner == user.Name && !user.Anonymous() {
		names, err := s.cmd.index.MaintainedBy(ctx, owner)
		if err != nil {
			return nil, err
		}
		for _, n := range names {
			out[n] = PermReadWrite
		}
		return out, nil
	}
	rows, err := s.cmd.index.SearchTerm(ctx, "maintainer:"+strings.ToLower(owner), false, maxSearchRows)
	if err != nil {
		return nil, err
	}
	f := s.newRowFilter(user)
	for _, r := range rows {
		perm, err := f.permission(ctx, r)
		if err != nil {
			return nil, err
		}
		if perm != permNone {
			out[r.Name] = PermReadWrite
		}
	}
	return out, nil
}

// rowPackument is the part of a package a search row carries that the
// access decision reads: name, maintainers, access.
func rowPackument(r SearchRow) *Packument {
	p := &Packument{Name: r.Name, Maintainers: r.Maintainers, Fields: map[string]json.RawMessage{}}
	if r.Restricted {
		p.Fields["access"] = mustJSON(AccessRestricted)
	}
	return p
}

// rowFilter decides search rows with packagePermission, loading each
// scope's org once.
type rowFilter struct {
	s    *Service
	user Identity
	orgs map[string]*Org
}

func (s *Service) newRowFilter(user Identity) *rowFilter {
	return &rowFilter{s: s, user: user, orgs: map[string]*Org{}}
}

func (f *rowFilter) permission(ctx context.Context, r SearchRow) (permission, error) {
	p := rowPackument(r)
	var org *Org
	if !f.user.Anonymous() && !p.HasMaintainer(f.user.Name) {
		scope, _, _ := SplitName(r.Name)
		scope = strings.ToLower(scope)
		o, seen := f.orgs[scope]
		if !seen && scope != "" {
			var err error
			if o, _, err = f.s.loadOrg(ctx, scope); err != nil {
				return permNone, err
			}
			f.orgs[scope] = o
		}
		org = o
	}
	return packagePermission(f.user, p, org, !f.user.Anonymous() && f.s.isAdmin(f.user.Name)), nil
}

// PackagesInScope lists the packages of @scope the caller may read, with
// the caller's permission ("read-write" for a maintainer or a read-write
// team, else "read"). No package in the scope is KindNotFound: npm then
// asks /-/user/<scope>/package instead.
func (s *Service) PackagesInScope(ctx context.Context, user Identity, scope string) (map[string]string, error) {
	scope = strings.ToLower(strings.TrimPrefix(scope, "@"))
	rows, err := s.cmd.index.SearchTerm(ctx, "scope:"+scope, false, maxSearchRows)
	if err != nil {
		return nil, err
	}
	f := s.newRowFilter(user)
	out := map[string]string{}
	for _, r := range rows {
		perm, err := f.permission(ctx, r)
		if err != nil {
			return nil, err
		}
		switch perm {
		case permWrite:
			out[r.Name] = PermReadWrite
		case permRead:
			out[r.Name] = "read"
		}
	}
	if len(out) == 0 {
		return nil, E(KindNotFound, "no packages in scope @%s", scope)
	}
	return out, nil
}

// StarredBy lists the packages who starred, leaving out restricted ones
// the caller may not read.
func (s *Service) StarredBy(ctx context.Context, user Identity, who string) ([]string, error) {
	names, err := s.cmd.index.StarredBy(ctx, who)
	if err != nil {
		return nil, err
	}
	// The view's value is only the name (npm reads it as is); star lists
	// are short, so check each package's access directly.
	kept := names[:0]
	for _, n := range names {
		p, err := s.store.GetPackument(ctx, n)
		if err == nil && s.checkRead(ctx, user, p) == nil {
			kept = append(kept, n)
		}
	}
	names = kept
	sort.Strings(names)
	return names, nil
}
