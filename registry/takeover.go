package registry

import (
	"context"
	"encoding/json"
)

// The takeover guard. A name published here shadows the upstream for
// everyone using this registry (the dependency-confusion guard), so the
// first publish of a name decides who answers for it. Rules:
//
//   - With the mirror on, the first publish of a name the upstream knows
//     (a mirrored copy, or a packument the upstream serves) is refused
//     (403), unless an operator claimed the name for the publishing user.
//     An upstream that cannot be asked refuses too (503): never a silent
//     accept.
//   - Names in a private scope, and every name with the mirror off, are
//     not checked: they never resolve upstream anyway.
//   - A package first published under a claim records the claim
//     (fieldClaim), and so does one unpublished while its name is claimed.
//     When it is unpublished entirely, its name resolves upstream again,
//     as it does for any tombstone of a name that is claimed now. Any
//     other tombstone keeps blocking the upstream: a genuinely private
//     name that was unpublished must not start resolving to whatever
//     someone registers upstream under it later.
//   - A package already published here keeps shadowing the upstream.

// fieldClaim holds, on a package first published under a claim, that
// claim. CouchDB reserves top-level names starting with "_".
const fieldClaim = "couchnpm_claim"

func (s *Service) lookupClaim(ctx context.Context, name string) (*Claim, error) {
	if s.claims == nil {
		return nil, nil
	}
	return s.claims.Lookup(ctx, name)
}

// checkNewName is the takeover guard on the first publish of name by user
// (no package stored, or a tombstone that resolves upstream). It returns
// the claim the publish relies on, if any.
func (s *Service) checkNewName(ctx context.Context, user Identity, name string) (*Claim, error) {
	if !s.upstreamAllowed(name) {
		return nil, nil
	}
	claim, err := s.lookupClaim(ctx, name)
	if err != nil {
		return nil, err
	}
	if claim != nil {
		if claim.Owner != user.Name {
			return nil, E(KindForbidden, "%s is claimed by an operator of this registry for the user %s; only %s may publish it first", name, claim.Owner, claim.Owner)
		}
		return claim, nil
	}
	known, err := s.mirror.Known(ctx, name)
	if err != nil {
		return nil, Wrap(KindUnavailable, err, "cannot check whether %s exists on the upstream registry; retry later, or ask an operator to run `couchnpm claim %s`", name, name)
	}
	if known {
		return nil, E(KindForbidden, "%s exists on the upstream registry; publishing it here would shadow it for everyone. Use a private scope (%s) or ask an operator to run `couchnpm claim %s`", name, scopedSuggestion(name), name)
	}
	return nil, nil
}

// scopedSuggestion names where a refused name could go instead.
func scopedSuggestion(name string) string {
	if scope, pkg, _ := SplitName(name); scope == "" {
		return "@yourorg/" + pkg
	}
	return "a scope of your own"
}

// fallsBackUpstream reports whether p, a tombstone, lets its name resolve
// upstream: the package was first published under a claim, or its name is
// claimed now (which is how an operator hands a name taken over before the
// guard existed back to the upstream).
func (s *Service) fallsBackUpstream(ctx context.Context, p *Packument) (bool, error) {
	if !p.IsTombstone() || !s.upstreamAllowed(p.Name) {
		return false, nil
	}
	if _, ok := p.Fields[fieldClaim]; ok {
		return true, nil
	}
	claim, err := s.lookupClaim(ctx, p.Name)
	return claim != nil, err
}

// Shadows reports whether name is published here in a way that hides the
// upstream's package: a live package, or an unpublished one that keeps its
// name private. The follower keeps every other name's mirrored copy
// current.
func (s *Service) Shadows(ctx context.Context, name string) (bool, error) {
	p, err := s.store.GetPackument(ctx, name)
	if IsKind(err, KindNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	fb, err := s.fallsBackUpstream(ctx, p)
	return !fb, err
}

// firstPublish applies the takeover guard to a publish onto stored (nil
// when the name is new) and returns what to record on the merged document:
// the claim, or nil. guarded is false when stored is a live package or a
// tombstone that keeps the name private: Merge's maintainer check decides.
func (s *Service) firstPublish(ctx context.Context, user Identity, name string, stored *Packument) (claim *Claim, guarded bool, err error) {
	if stored != nil {
		fb, err := s.fallsBackUpstream(ctx, stored)
		if err != nil || !fb {
			return nil, false, err
		}
	} else if err := ValidateNewName(name); err != nil {
		return nil, false, err // Merge would refuse it: no need to ask the upstream
	}
	claim, err = s.checkNewName(ctx, user, name)
	return claim, true, err
}

// recordClaim writes the claim a first publish relied on into doc, or
// removes an older one when the publish needed none.
func recordClaim(doc *Packument, claim *Claim) {
	if claim == nil {
		delete(doc.Fields, fieldClaim)
		return
	}
	doc.Fields[fieldClaim] = mustJSON(claim)
}

// keepClaim records on doc, when it just became a tombstone, the claim its
// name has now: the name then resolves upstream for good, even once the
// claim is withdrawn. This is how an operator hands back a name taken over
// before the guard existed: claim it, unpublish it, unclaim it.
func (s *Service) keepClaim(ctx context.Context, doc *Packument) error {
	if !doc.IsTombstone() || !s.upstreamAllowed(doc.Name) {
		return nil
	}
	if _, ok := doc.Fields[fieldClaim]; ok {
		return nil
	}
	claim, err := s.lookupClaim(ctx, doc.Name)
	if err != nil || claim == nil {
		return err
	}
	recordClaim(doc, claim)
	return nil
}

// ClaimOf returns the claim p was first published under, if any.
func ClaimOf(p *Packument) *Claim {
	raw, ok := p.Fields[fieldClaim]
	if !ok {
		return nil
	}
	var c Claim
	if json.Unmarshal(raw, &c) != nil {
		return nil
	}
	return &c
}
