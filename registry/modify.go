package registry

import "context"

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
	return s.writeCycle(ctx, name, "change", false, func(_ int, doc *Packument) (planned, error) {
		if doc.IsTombstone() {
			return planned{}, E(KindNotFound, "package %s was unpublished", name)
		}
		// A restricted package the caller may not read stays absent for
		// writes too: a 403 would tell that it exists.
		if err := s.checkRead(ctx, user, doc); err != nil {
			return planned{}, err
		}
		before := snapshotOf(doc)
		if err := change(doc); err != nil {
			return planned{}, err
		}
		doc.Time["modified"] = stamp(s.now())
		doc.stampChanges(before, doc.Time["modified"])
		modified := doc.Time["modified"]
		return planned{doc: doc, landed: func(p *Packument, rev string) bool {
			return p.Rev == rev || p.Time["modified"] >= modified
		}}, nil
	})
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
