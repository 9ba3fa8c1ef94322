package registry

import (
	"context"
	"time"
)

// planned is what one attempt of a read-change-write cycle decided: the
// document to write (nil: nothing to write, the cycle is done) and how to
// tell, on a write CouchDB stored on fewer nodes than its quorum, that the
// change is in a document read back (rev is the revision written).
type planned struct {
	doc    *Packument
	landed func(p *Packument, rev string) bool
}

// writeCycle is the one read-change-write loop of the registry (Publish,
// modify, Import): under the package's write lock it reads name for
// writing, merges conflicting revisions first (mergeBeforeWrite), asks plan
// for the document to write, writes it and confirms a write short of
// quorum. On a write conflict it starts again from the winner's document,
// spreading racing writers apart, until maxPublishAttempts or the write
// budget are spent. what names the operation in errors ("publish").
//
// With absentOK, a name not stored reaches plan as a nil document;
// otherwise not found is the answer. An error from plan ends the cycle.
func (s *Service) writeCycle(ctx context.Context, name, what string, absentOK bool,
	plan func(attempt int, stored *Packument) (planned, error)) error {
	unlock, err := s.locks.lock(ctx, name)
	if err != nil {
		return err
	}
	defer unlock()
	merges, start := 0, time.Now()
	for attempt := 0; ; attempt++ {
		stored, err := s.store.GetPackumentForWrite(ctx, name) // its revision is written back
		if absentOK && IsKind(err, KindNotFound) {
			stored, err = nil, nil
		}
		if err != nil {
			return err
		}
		if stored != nil && s.mergeBeforeWrite(ctx, name, stored, &merges) {
			continue
		}
		p, err := plan(attempt, stored)
		if err != nil || p.doc == nil {
			return err
		}
		w, err := s.store.PutPackument(ctx, p.doc)
		if err == nil && !w.Quorum && p.landed != nil {
			s.confirmWrite(ctx, name, func(read *Packument) bool { return p.landed(read, w.Rev) })
		}
		if !IsKind(err, KindConflict) {
			return err
		}
		if attempt+1 >= maxPublishAttempts || time.Since(start) > s.budget {
			return Wrap(KindConflict, err, "%s of %s kept losing to concurrent writes (%d attempts in %s); retry", what, name, attempt+1, time.Since(start).Round(time.Millisecond))
		}
		if err := s.sleep(ctx, attempt); err != nil {
			return Wrap(KindUnavailable, err, "%s of %s gave up", what, name)
		}
	}
}

// versionsLanded reports whether every version of pub is in a document
// read back: the landed check of writes that add versions.
func versionsLanded(pub *Publication) func(p *Packument, rev string) bool {
	return func(p *Packument, _ string) bool {
		for _, nv := range pub.Versions {
			if _, ok := p.Versions[nv.Version]; !ok {
				return false
			}
		}
		return true
	}
}
