package registry

import (
	"context"
	"strings"
	"time"
)

// This file wires the npm command surface (dist-tag, deprecate, owner,
// unpublish, star, access, search) into Service. The commands act on the
// private packages only; mirrored packages are read-only copies.

// Access levels of a package, stored as the packument's "access" field.
const (
	AccessPublic     = "public"
	AccessRestricted = "restricted"
)

// Unpublish policy modes.
const (
	UnpublishMaintainers = "maintainers" // any maintainer, any time
	UnpublishWindow      = "window"      // maintainers, within Window of each version's publish time
	UnpublishAdmins      = "admins"      // only registry admins
)

// UnpublishPolicy says who may remove published versions.
type UnpublishPolicy struct {
	Mode   string
	Window time.Duration
}

// ParseUnpublishPolicy reads "maintainers", "admins" or "window:72h".
func ParseUnpublishPolicy(s string) (UnpublishPolicy, error) {
	switch {
	case s == "" || s == UnpublishMaintainers:
		return UnpublishPolicy{Mode: UnpublishMaintainers}, nil
	case s == UnpublishAdmins:
		return UnpublishPolicy{Mode: UnpublishAdmins}, nil
	case strings.HasPrefix(s, UnpublishWindow+":"):
		d, err := time.ParseDuration(strings.TrimPrefix(s, UnpublishWindow+":"))
		if err != nil || d <= 0 {
			return UnpublishPolicy{}, E(KindInvalid, "unpublish policy %q: the window must be a positive duration like 72h", s)
		}
		return UnpublishPolicy{Mode: UnpublishWindow, Window: d}, nil
	}
	return UnpublishPolicy{}, E(KindInvalid, "unpublish policy %q: want maintainers, admins or window:<duration>", s)
}

// NormalizeAccess maps npm's access words onto the two stored levels
// ("private" is npm's alias for "restricted").
func NormalizeAccess(s string) (string, error) {
	switch s {
	case AccessPublic:
		return AccessPublic, nil
	case AccessRestricted, "private":
		return AccessRestricted, nil
	}
	return "", E(KindInvalid, "access %q: want public or restricted", s)
}

// Policy is what a deployment decides about the command surface.
type Policy struct {
	Unpublish     UnpublishPolicy
	Admins        []string // user names allowed to unpublish under any policy
	DefaultAccess string   // access of a new package whose publish names none
}

// PackageIndex answers the listing questions from CouchDB views, so that no
// command scans every document.
type PackageIndex interface {
	// SearchTerm returns the search view's rows for term (or every term
	// starting with it when prefix is set), at most limit rows.
	SearchTerm(ctx context.Context, term string, prefix bool, limit int) ([]SearchRow, error)
	// StarredBy lists the packages user starred.
	StarredBy(ctx context.Context, user string) ([]string, error)
	// MaintainedBy lists the packages user maintains.
	MaintainedBy(ctx context.Context, user string) ([]string, error)
}

// commands is Service's command-surface state (see Config).
type commands struct {
	policy Policy
	users  UserStore
	index  PackageIndex
}

// DefaultAccess is the access level of new packages whose publish names
// none (npm ≥ 11 sends access null unless --access is given).
func (s *Service) DefaultAccess() string { return s.cmd.policy.DefaultAccess }

// IsAdmin reports whether user is one of the registry's admins (--admins).
func (s *Service) IsAdmin(user string) bool { return s.isAdmin(user) }

func (s *Service) isAdmin(user string) bool {
	for _, a := range s.cmd.policy.Admins {
		if a == user {
			return true
		}
	}
	return false
}

// stamp is the registry's time format (npm's: milliseconds, Z).
func stamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }
