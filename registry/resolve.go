package registry

import (
	"context"
	"time"

	"github.com/couchnpm/couchnpm/internal/retry"
)

// Written is the outcome of a document write that CouchDB accepted.
type Written struct {
	Rev string
	// Quorum is false when CouchDB answered 202: the write is stored on
	// fewer nodes than the write quorum and may yet end up on a losing
	// branch. The writer must confirm it (see confirmPublish).
	Quorum bool
}

// ConflictStore reads every leaf revision of a packument and replaces the
// losing ones with a merge (CouchDB: open_revs, _bulk_docs).
type ConflictStore interface {
	// Leaves returns the live (not deleted) leaf revisions of name,
	// CouchDB's winner first, attachments as stubs.
	Leaves(ctx context.Context, name string) ([]*Packument, error)
	// Resolve writes merged on top of the winner's revision when write is
	// set (copying each attachment whose FromRev is set from that
	// revision), then deletes the losing leaves. KindConflict when the
	// winner moved meanwhile: read the leaves again.
	Resolve(ctx context.Context, merged *Packument, write bool, losers []string) error
}

// ConflictObserver hears about every resolved conflict (logs, metrics,
// status).
type ConflictObserver interface {
	ConflictResolved(name string, leaves int, dropped []VersionConflict)
	// WriteUnconfirmed reports a write CouchDB accepted without a quorum
	// (202) that could not be seen on a quorum within the bound.
	WriteUnconfirmed(name string)
	// OrgMerged reports an org read with conflicting revisions, merged
	// (orgmerge.go); notes say what the merge decided beyond the entries.
	OrgMerged(org string, leaves int, notes []string)
}

// maxResolveAttempts bounds the re-reads when another writer or resolver
// moves the winner while a merge is written.
const maxResolveAttempts = 8

// ResolveConflicts merges every leaf revision of private package name by
// the registry's rules (MergeLeaves) and makes the merge the only leaf. It
// is idempotent: resolvers on several instances converge on the same
// document. It returns the merged document (also when writing it failed,
// so that a read can still be answered from it), or the current document
// when name has no conflicts (any more).
func (s *Service) ResolveConflicts(ctx context.Context, name string) (*Packument, error) {
	return s.resolveConflicts(ctx, name, maxResolveAttempts)
}

func (s *Service) resolveConflicts(ctx context.Context, name string, attempts int) (*Packument, error) {
	if s.conflicts == nil {
		return nil, nil
	}
	var merged *Packument
	for attempt := 0; ; attempt++ {
		leaves, err := s.conflicts.Leaves(ctx, name)
		if err != nil {
			return merged, err
		}
		if len(leaves) < 2 {
			return leaves[0], nil
		}
		merged = MergeLeaves(leaves)
		losers := make([]string, 0, len(leaves)-1)
		for _, l := range leaves[1:] {
			losers = append(losers, l.Rev)
		}
		err = s.conflicts.Resolve(ctx, merged, MergeChanges(leaves[0], merged), losers)
		if err == nil {
			if s.observer != nil {
				s.observer.ConflictResolved(name, len(leaves), newReports(leaves, merged))
			}
			return merged, nil
		}
		if !IsKind(err, KindConflict) || attempt+1 >= attempts {
			return merged, err
		}
		if err := s.sleep(ctx, attempt); err != nil {
			return merged, err
		}
	}
}

// newReports lists the version conflicts merged reports that no leaf
// reported before.
func newReports(leaves []*Packument, merged *Packument) []VersionConflict {
	if merged.Meta == nil {
		return nil
	}
	var out []VersionConflict
	for _, r := range merged.Meta.Conflicts {
		known := false
		for _, l := range leaves {
			if l.Meta != nil && reported(l.Meta.Conflicts, r.Version, r.Dropped) {
				known = true
				break
			}
		}
		if !known {
			out = append(out, r)
		}
	}
	return out
}

// sleep waits the conflict backoff of attempt, or until ctx ends.
func (s *Service) sleep(ctx context.Context, attempt int) error {
	if err := retry.Wait(ctx, s.backoff(attempt)); err != nil {
		return Wrap(KindUnavailable, err, "gave up waiting for CouchDB")
	}
	return nil
}

// confirmBound is how long a write CouchDB accepted without a quorum (202)
// is checked for before it is reported as unconfirmed.
const confirmBound = 3 * time.Second

// confirmWrite follows up a 202: it merges whatever conflict the write
// caused and checks that the document now holds what the write added
// (holds reports it). A write that stays invisible within confirmBound is
// reported: it exists on at least one node, and the background resolver
// merges it once CouchDB's internal replication brings it over.
func (s *Service) confirmWrite(ctx context.Context, name string, holds func(*Packument) bool) {
	if s.conflicts == nil {
		return
	}
	bound := confirmBound
	if s.confirmFor > 0 {
		bound = s.confirmFor
	}
	deadline := time.Now().Add(bound)
	for attempt := 0; time.Now().Before(deadline); attempt++ {
		leaves, err := s.conflicts.Leaves(ctx, name)
		if err == nil && len(leaves) > 0 {
			doc := leaves[0]
			if len(leaves) > 1 {
				if merged, _ := s.ResolveConflicts(ctx, name); merged != nil {
					doc = merged
				}
			}
			if holds(doc) {
				return
			}
		}
		if s.sleep(ctx, attempt) != nil {
			break
		}
	}
	if s.observer != nil {
		s.observer.WriteUnconfirmed(name)
	}
}

// maxMergesBeforeWrite bounds the merges one write runs first.
const maxMergesBeforeWrite = 3

// mergeBeforeWrite merges the conflicts of doc, just read for a write, and
// reports whether the caller must read again. A write on top of the winner
// alone would check its rules (version numbers, maintainers) against part
// of the package. When merging keeps failing, the write goes ahead on the
// winner: it loses nothing, since the losing leaves stay until the
// background resolver merges them.
func (s *Service) mergeBeforeWrite(ctx context.Context, name string, doc *Packument, merges *int) bool {
	if len(doc.Conflicts) == 0 || s.conflicts == nil || *merges >= maxMergesBeforeWrite {
		return false
	}
	*merges++
	_, _ = s.ResolveConflicts(ctx, name) // failures: read again, or write on the winner
	return true
}

// readMergeBudget bounds the merge a read runs before it answers; what is
// left over is the background resolver's.
const readMergeBudget = 3 * time.Second

// mergeForRead answers a read of a document with conflicts: it merges the
// leaves (one merge per package at a time, shared by concurrent readers)
// and answers from the merge, written or not; from p when the leaves
// cannot be read.
func (s *Service) mergeForRead(ctx context.Context, name string, p *Packument) *Packument {
	if s.conflicts == nil {
		return p
	}
	v, _, _ := s.reads.Do(name, func() (any, error) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), readMergeBudget)
		defer cancel()
		merged, _ := s.resolveConflicts(ctx, name, 1)
		return merged, nil
	})
	if merged, ok := v.(*Packument); ok && merged != nil {
		return merged.Clone() // each reader may change its copy
	}
	return p
}

// landed reports whether every version of pub is in stored, published by
// user with the same tarball: an earlier attempt of the same publish.
func landed(stored *Packument, pub *Publication, user string) bool {
	if stored == nil {
		return false
	}
	for _, nv := range pub.Versions {
		m, ok := stored.Versions[nv.Version]
		if !ok || integrityOf(m) != nv.Integrity || publisherOf(m) != user {
			return false
		}
	}
	return true
}
