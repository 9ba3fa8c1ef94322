package registry

import (
	"context"
	"time"
)

// modify runs a read-change-write cycle on a private package for user. On a
// write conflict it reads the winner's document and applies change again,
// as Publish does, so concurrent commands on one package all land. change
// sees a live (not unpublished) document and may refuse with an error.
func (s *Service) modify(ctx context.Context, user Identity, name string, change func(doc *Packument) error) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	if err := user.CanWrite(); err != nil {
		return err
	}
	unlock, err := s.locks.lock(ctx, name)
	if err != nil {
		return err
	}
	defer unlock()
	merges, start := 0, time.Now()
	for attempt := 0; ; attempt++ {
		doc, err := s.store.GetPackumentForWrite(ctx, name) // its revision is written back
		if err != nil {
			return err
		}
		if s.mergeBeforeWrite(ctx, name, doc, &merges) {
			continue
		}
		if doc.IsTombstone() {
			return E(KindNotFound, "package %s was unpublished", name)
		}
		// A restricted package the caller may not read stays absent for
		// writes too: a 403 would tell that it exists.
		if err := s.checkRead(ctx, user, doc); err != nil {
			return err
		}
		before := snapshotOf(doc)
		if err := change(doc); err != nil {
			return err
		}
		doc.Time["modified"] = stamp(s.now())
		doc.stampChanges(before, doc.Time["modified"])
		w, err := s.store.PutPackument(ctx, doc)
		if err == nil && !w.Quorum {
			rev := w.Rev
			s.confirmWrite(ctx, name, func(p *Packument) bool { return p.Rev == rev || p.Time["modified"] >= doc.Time["modified"] })
		}
		if !IsKind(err, KindConflict) {
			return err
		}
		if attempt+1 >= maxPublishAttempts || time.Since(start) > s.budget {
			return Wrap(KindConflict, err, "change of %s kept losing to concurrent writes (%d attempts in %s); retry", name, attempt+1, time.Since(start).Round(time.Millisecond))
		}
		if err := s.sleep(ctx, attempt); err != nil {
			return Wrap(KindUnavailable, err, "change of %s gave up", name)
		}
	}
}

// requireMaintainer refuses users who do not maintain doc.
func (s *Service) requireMaintainer(user Identity, doc *Packument) error {
	if !doc.HasMaintainer(user.Name) {
		return E(KindForbidden, "you (%s) are not a maintainer of %s", user.Name, doc.Name)
	}
	return nil
}

// requireRev refuses a change computed from an older revision of doc (a
// replacement of the whole maintainer list, an unpublish): applying it to a
// newer document could undo a change the caller never saw.
func requireRev(doc *Packument, rev string) error {
	if rev == "" {
		return E(KindConflict, "the request names no revision of %s; read it with ?write=true and retry", doc.Name)
	}
	if rev != doc.Rev {
		return E(KindConflict, "%s changed since revision %s was read; read it again and retry", doc.Name, rev)
	}
	return nil
}
