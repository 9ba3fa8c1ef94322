package registry

import (
	"context"
	"time"
)

// Unpublish removes a whole package (npm unpublish pkg --force): the
// document becomes a tombstone that keeps time (so every version number
// stays burned) and the maintainers (so they, and only they, may publish
// the name again), and records time.unpublished. rev must be the current
// revision: the caller decided on what it read.
func (s *Service) Unpublish(ctx context.Context, user Identity, name, rev string) error {
	return s.modify(ctx, user, name, func(doc *Packument) error {
		versions := doc.SortedVersions()
		if err := s.mayUnpublish(user, doc, versions); err != nil {
			return err
		}
		if err := requireRev(doc, rev); err != nil {
			return err
		}
		for _, v := range versions {
			removeVersion(doc, v)
		}
		tombstone(doc, user.Name, versions, s.now())
		return s.keepClaim(ctx, doc)
	})
}

// DeleteTarball answers the last step of npm's single-version unpublish
// (DELETE /{pkg}/-/{file}/-rev/{rev}). The version was already removed by
// the PUT before it, together with its tarball; a tarball of a live version
// cannot be deleted on its own.
func (s *Service) DeleteTarball(ctx context.Context, user Identity, name, file string) error {
	v, err := VersionFromTarball(name, file)
	if err != nil {
		return err
	}
	if err := user.CanWrite(); err != nil {
		return err
	}
	doc, err := s.store.GetPackumentForWrite(ctx, name)
	if err != nil {
		return err
	}
	if err := s.checkRead(ctx, user, doc); err != nil {
		return err
	}
	if !doc.HasMaintainer(user.Name) && !s.isAdmin(user.Name) {
		return E(KindForbidden, "you (%s) are not a maintainer of %s", user.Name, name)
	}
	if _, live := doc.Versions[v]; live {
		return E(KindForbidden, "%s@%s is published; unpublish the version (npm unpublish %s@%s) instead of deleting its tarball", name, v, name, v)
	}
	if _, ok := doc.Attachments[TarballName(name, v)]; !ok {
		return nil // already gone with its version
	}
	return s.modify(ctx, user, name, func(doc *Packument) error {
		if _, live := doc.Versions[v]; live {
			return E(KindForbidden, "%s@%s is published again", name, v)
		}
		delete(doc.Attachments, TarballName(name, v))
		return nil
	})
}

// mayUnpublish applies the unpublish policy to removing versions of doc.
// Admins may always unpublish.
func (s *Service) mayUnpublish(user Identity, doc *Packument, versions []string) error {
	if s.isAdmin(user.Name) {
		return nil
	}
	p := s.cmd.policy.Unpublish
	if p.Mode == UnpublishAdmins {
		return E(KindForbidden, "only registry administrators may unpublish on this registry")
	}
	if err := s.requireMaintainer(user, doc); err != nil {
		return err
	}
	if p.Mode == UnpublishWindow {
		now := s.now()
		for _, v := range versions {
			t, err := time.Parse(time.RFC3339Nano, doc.Time[v])
			if err != nil || now.Sub(t) > p.Window {
				return E(KindForbidden, "%s@%s was published more than %s ago and can no longer be unpublished; deprecate it instead", doc.Name, v, p.Window)
			}
		}
	}
	return nil
}

// removeVersion drops a version and its tarball; its time entry stays, so
// the number can never be published again. Tags pointing at it go, and
// latest moves to the highest remaining version.
func removeVersion(doc *Packument, v string) {
	delete(doc.Versions, v)
	delete(doc.Attachments, TarballName(doc.Name, v))
	for t, tv := range doc.DistTags {
		if tv == v {
			delete(doc.DistTags, t)
		}
	}
	if _, ok := doc.DistTags["latest"]; !ok && len(doc.Versions) > 0 {
		doc.DistTags["latest"] = HighestVersion(doc.SortedVersions())
	}
}

// tombstone turns doc into an unpublished package's record.
func tombstone(doc *Packument, user string, versions []string, now time.Time) {
	doc.Versions = map[string]Manifest{}
	doc.DistTags = map[string]string{}
	doc.Attachments = map[string]Attachment{}
	doc.Users = map[string]bool{}
	doc.Unpublished = mustJSON(map[string]any{"name": user, "time": stamp(now), "versions": versions})
	for _, k := range []string{"readme", "description", "keywords"} {
		delete(doc.Fields, k)
	}
}
