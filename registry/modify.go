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
	ctx = WithFreshRead(ctx) // the revision read here is written back
	for attempt := 0; ; attempt++ {
		doc, err := s.store.GetPackument(ctx, name)
		if err != nil {
			return err
		}
		if doc.IsTombstone() {
			return E(KindNotFound, "package %s was unpublished", name)
		}
		if err := change(doc); err != nil {
			return err
		}
		doc.Time["modified"] = stamp(s.now())
		_, err = s.store.PutPackument(ctx, doc)
		if !IsKind(err, KindConflict) || attempt+1 >= maxPublishAttempts {
			return err
		}
		select {
		case <-ctx.Done():
			return Wrap(KindUnavailable, ctx.Err(), "change of %s gave up", name)
		case <-time.After(s.backoff(attempt)):
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
