package registry

import (
	"context"
	"encoding/json"
	"sort"
	"strings"
)

// Read rule for restricted packages (npm access set status=private): every
// authenticated user of this registry may read them (packument, versions,
// tarballs, search hits); anonymous callers get the same 404 as for a
// package that does not exist. Only maintainers change them.

// AccessOf is a packument's stored access level; public when unset.
func AccessOf(p *Packument) string {
	var a string
	if raw, ok := p.Fields["access"]; ok && json.Unmarshal(raw, &a) == nil && a == AccessRestricted {
		return AccessRestricted
	}
	return AccessPublic
}

// checkTarballRead applies checkRead to a tarball request. Authenticated
// callers read everything, so only anonymous downloads pay for loading the
// packument. A name not stored here (a mirrored one) is public.
func (s *Service) checkTarballRead(ctx context.Context, user Identity, name string) error {
	if !user.Anonymous() {
		return nil
	}
	p, err := s.store.GetPackument(ctx, name)
	if IsKind(err, KindNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if p.IsTombstone() {
		return nil // nothing left to hide; the lookup finds no private tarball
	}
	return s.checkRead(user, p)
}

// Visibility reports whether a package is public (npm access get status).
func (s *Service) Visibility(ctx context.Context, user Identity, name string) (bool, error) {
	p, err := s.Packument(ctx, user, name)
	if err != nil {
		return false, err
	}
	return AccessOf(p) == AccessPublic, nil
}

// Collaborators maps each maintainer to "read-write" (npm access list
// collaborators); this registry has no read-only collaborators.
func (s *Service) Collaborators(ctx context.Context, user Identity, name string) (map[string]string, error) {
	p, err := s.Packument(ctx, user, name)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(p.Maintainers))
	for _, m := range p.Maintainers {
		out[m.Name] = "read-write"
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

// PackagesOf lists the packages user maintains, each "read-write" (npm
// access list packages <user>).
func (s *Service) PackagesOf(ctx context.Context, user Identity, owner string) (map[string]string, error) {
	if err := s.enabled(); err != nil {
		return nil, err
	}
	names, err := s.cmd.index.MaintainedBy(ctx, owner)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(names))
	for _, n := range names {
		out[n] = "read-write"
	}
	return out, nil
}

// PackagesInScope lists the packages of @scope with the caller's permission
// ("read-write" for a maintainer, else "read"). No package in the scope is
// KindNotFound: npm then asks /-/user/<scope>/package instead.
func (s *Service) PackagesInScope(ctx context.Context, user Identity, scope string) (map[string]string, error) {
	if err := s.enabled(); err != nil {
		return nil, err
	}
	scope = strings.ToLower(strings.TrimPrefix(scope, "@"))
	rows, err := s.cmd.index.SearchTerm(ctx, "scope:"+scope, false, maxSearchRows)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, r := range rows {
		if r.Restricted && user.Anonymous() {
			continue
		}
		perm := "read"
		for _, m := range r.Maintainers {
			if m.Name == user.Name && !user.Anonymous() {
				perm = "read-write"
			}
		}
		out[r.Name] = perm
	}
	if len(out) == 0 {
		return nil, E(KindNotFound, "no packages in scope @%s", scope)
	}
	return out, nil
}

// StarredBy lists the packages who starred, hiding restricted ones from
// anonymous callers.
func (s *Service) StarredBy(ctx context.Context, user Identity, who string) ([]string, error) {
	if err := s.enabled(); err != nil {
		return nil, err
	}
	names, err := s.cmd.index.StarredBy(ctx, who)
	if err != nil {
		return nil, err
	}
	if user.Anonymous() {
		// The view's value is only the name (npm reads it as is); star lists
		// are short, so check each package's access directly.
		kept := names[:0]
		for _, n := range names {
			p, err := s.store.GetPackument(ctx, n)
			if err == nil && s.checkRead(user, p) == nil {
				kept = append(kept, n)
			}
		}
		names = kept
	}
	sort.Strings(names)
	return names, nil
}
