package registry

import (
	"context"
	"encoding/json"
	"io"
	"reflect"
)

// UpdateBody is a PUT /{package} body. With tarballs it is a publish; without,
// it is one of npm's read-modify-write commands, which send back (part of)
// the document read with ?write=true: deprecate/undeprecate (whole document,
// versions[v].deprecated changed), star/unstar ({_id,_rev,users}), owner
// add/rm ({_id,_rev,maintainers}), unpublish of one version (document
// without that version).
type UpdateBody struct {
	PublishBody
	Maintainers []Person        `json:"maintainers"` // nil when absent
	Users       map[string]bool `json:"users"`       // nil when absent
}

// DecodeUpdateBody reads a PUT /{package} body (a single JSON object).
func DecodeUpdateBody(r io.Reader) (*UpdateBody, error) {
	var b UpdateBody
	// Strict: one object, nothing after it, no duplicate keys (strictjson.go).
	if err := decodeStrict(r, &b); err != nil {
		return nil, err
	}
	return &b, nil
}

// IsPublish reports whether the body carries tarballs (npm publish).
func (b *UpdateBody) IsPublish() bool { return len(b.Attachments) > 0 }

// Update applies a body without tarballs to package name. rev is the
// revision named in the URL (/-rev/{rev}), if any. Only these changes are
// taken from the body; every other field is ignored:
//   - users: the caller's own star, for any logged-in user;
//   - versions[v].deprecated of existing versions, maintainers only; any
//     other change to a published version is refused;
//   - versions left out: an unpublish of those versions (unpublish policy);
//   - dist-tags, maintainers only;
//   - these two only from a body of the current revision (else a conflict:
//     from an older one they would undo later publishes and tag changes);
//   - maintainers, maintainers only, and only against the current revision.
func (s *Service) Update(ctx context.Context, user Identity, name, rev string, b *UpdateBody) error {
	if err := checkBodyNames(name, &b.PublishBody); err != nil {
		return err
	}
	if rev == "" {
		rev = b.Rev
	}
	// New owners must be accounts; look them up once, outside the retries.
	owners, err := s.resolveOwners(ctx, b.Maintainers)
	if err != nil {
		return err
	}
	err = s.modify(ctx, user, name, func(doc *Packument) error {
		if err := s.applyUpdate(doc, user, rev, b, owners); err != nil {
			return err
		}
		return s.keepClaim(ctx, doc)
	})
	if IsKind(err, KindNotFound) && b.Users == nil && b.Maintainers == nil && s.store != nil {
		// No such package, and the body is neither a star nor an owner
		// change: a first publish missing its versions or its tarballs.
		// Say what is missing rather than a bare 404.
		if _, gerr := s.store.GetPackument(ctx, name); IsKind(gerr, KindNotFound) {
			if len(b.Versions) == 0 {
				return E(KindInvalid, "%s: a first publish needs \"versions\" with the manifest of each version and \"_attachments\" with its tarball", errNoVersions)
			}
			return E(KindInvalid, "a publish must carry one tarball per version in _attachments")
		}
	}
	return err
}

// errNoVersions opens the message of a publish body without versions.
const errNoVersions = "the publish body has no versions"

// checkBodyNames refuses a body whose name or _id is another package than
// the URL's, saying which field names what.
func checkBodyNames(name string, b *PublishBody) error {
	if b.Name != "" && b.Name != name {
		return E(KindInvalid, "the body's \"name\" is %q but the URL names package %q", b.Name, name)
	}
	if b.ID != "" && b.ID != name {
		return E(KindInvalid, "the body's \"_id\" is %q but the URL names package %q", b.ID, name)
	}
	return nil
}

func (s *Service) resolveOwners(ctx context.Context, list []Person) ([]Person, error) {
	if list == nil {
		return nil, nil
	}
	out := make([]Person, 0, len(list))
	seen := map[string]bool{}
	for _, m := range list {
		if seen[m.Name] {
			continue
		}
		seen[m.Name] = true
		if ValidateUsername(m.Name) != nil {
			return nil, E(KindNotFound, "cannot make %q a maintainer: no such user", m.Name)
		}
		u, err := s.cmd.users.GetUser(ctx, m.Name)
		if IsKind(err, KindNotFound) {
			return nil, E(KindNotFound, "cannot make %q a maintainer: no such user", m.Name)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, Person{Name: u.Name, Email: u.Email})
	}
	return out, nil
}

// applyUpdate applies body b, sent by user against revision rev, to doc:
// the caller's star, deprecations and removed versions, then (once
// checkUpdate allows the change) the new owners, the removals and the tag
// set. owners are b's maintainers resolved to accounts (nil: none sent).
func (s *Service) applyUpdate(doc *Packument, user Identity, rev string, b *UpdateBody, owners []Person) error {
	if b.Users != nil {
		if err := applyStars(doc, user.Name, b.Users); err != nil {
			return err
		}
	}
	c := updateChange{
		tags:   b.DistTags != nil && !reflect.DeepEqual(b.DistTags, doc.DistTags),
		owners: owners != nil && !sameNames(owners, doc.Maintainers),
	}
	if b.Versions != nil {
		var err error
		if c.deprecated, c.removed, err = applyDeprecations(doc, b.Versions); err != nil {
			return err
		}
	}
	if err := s.checkUpdate(doc, user, rev, c, len(owners)); err != nil {
		return err
	}
	if c.owners {
		doc.Maintainers = owners
	}
	for _, v := range c.removed {
		removeVersion(doc, v)
	}
	if len(c.removed) > 0 && len(doc.Versions) == 0 {
		tombstone(doc, user.Name, c.removed, s.now())
		return nil
	}
	if c.tags {
		return replaceTags(doc, b.DistTags)
	}
	return nil
}

// updateChange is what an update body changes besides stars.
type updateChange struct {
	deprecated bool     // a version's deprecation message changed
	removed    []string // versions the body leaves out
	tags       bool     // the tag set differs
	owners     bool     // the maintainers differ
}

// checkUpdate decides whether user may make change c to doc from revision
// rev; owners is the number of maintainers c leaves.
func (s *Service) checkUpdate(doc *Packument, user Identity, rev string, c updateChange, owners int) error {
	// Removing versions follows the unpublish policy, and so do the tag
	// changes npm sends along with it; everything else needs a maintainer.
	if len(c.removed) > 0 {
		if err := s.mayUnpublish(user, doc, c.removed); err != nil {
			return err
		}
	}
	// The body is a whole document read earlier: versions it leaves out
	// and its tag set mean something only against the revision it was read
	// at. From an older one they would undo what landed since (a deprecate
	// read before a concurrent publish would unpublish that version and
	// reset the tags), so they need the current revision: a conflict
	// otherwise, which the client resolves by reading again.
	if len(c.removed) > 0 || c.tags {
		if err := requireRev(doc, rev); err != nil {
			return err
		}
	}
	if c.deprecated || c.owners || (c.tags && len(c.removed) == 0) {
		if err := s.requireMaintainer(user, doc); err != nil {
			return err
		}
	}
	if !c.owners {
		return nil
	}
	if err := requireRev(doc, rev); err != nil {
		return err
	}
	if owners == 0 {
		return E(KindForbidden, "a package must keep at least one maintainer")
	}
	return nil
}

// replaceTags makes tags doc's tag set: valid names, each naming one of
// doc's versions (checkTags).
func replaceTags(doc *Packument, tags map[string]string) error {
	for t := range tags {
		if err := ValidateTag(t); err != nil {
			return err
		}
	}
	if err := checkTags(doc, tags); err != nil {
		return err
	}
	doc.DistTags = tags
	return nil
}

// applyStars applies the caller's own star; any other entry must be sent
// back unchanged.
func applyStars(doc *Packument, me string, users map[string]bool) error {
	for u := range unionKeys(doc.Users, users) {
		if u != me && doc.Users[u] != users[u] {
			return E(KindForbidden, "you may only star or unstar as yourself (the body changes the star of %q)", u)
		}
	}
	if users[me] {
		doc.Users[me] = true
	} else {
		delete(doc.Users, me)
	}
	return nil
}

// applyDeprecations takes versions[v].deprecated from the body for every
// version both sides have and reports the versions the body leaves out. A
// version the body adds, or any other change to a published version, is
// refused: published versions are immutable.
func applyDeprecations(doc *Packument, sent map[string]Manifest) (changed bool, removed []string, err error) {
	for v := range sent {
		if _, ok := doc.Versions[v]; ok {
			continue
		}
		if _, burned := doc.Time[v]; burned {
			return false, nil, E(KindForbidden, "cannot publish over the previously published version %s", v)
		}
		return false, nil, E(KindInvalid, "version %s has no tarball: publish new versions with npm publish", v)
	}
	for _, v := range doc.SortedVersions() {
		raw, ok := sent[v]
		if !ok {
			removed = append(removed, v)
			continue
		}
		next, diff, err := withDeprecation(doc.Versions[v], raw, v)
		if err != nil {
			return false, nil, err
		}
		if diff {
			doc.Versions[v] = next
			changed = true
		}
	}
	return changed, removed, nil
}

// withDeprecation compares a stored manifest with the one sent back. Only
// "deprecated" may differ (dist.tarball too: the read path rewrites it). It
// returns the stored manifest with the new deprecation ("" removes it).
func withDeprecation(stored, sent Manifest, v string) (Manifest, bool, error) {
	var a, b map[string]any
	if json.Unmarshal(stored, &a) != nil || a == nil {
		return nil, false, E(KindInternal, "stored manifest of %s is not an object", v)
	}
	if json.Unmarshal(sent, &b) != nil || b == nil {
		return nil, false, E(KindInvalid, "versions[%q] must be an object", v)
	}
	oldDep, newDep := a["deprecated"], b["deprecated"]
	if newDep != nil {
		if _, ok := newDep.(string); !ok {
			return nil, false, E(KindInvalid, "versions[%q].deprecated must be a string", v)
		}
	}
	if !reflect.DeepEqual(comparable(a), comparable(b)) {
		return nil, false, E(KindForbidden, "version %s is already published; only its \"deprecated\" field may change", v)
	}
	if newDep == "" {
		newDep = nil
	}
	if reflect.DeepEqual(oldDep, newDep) {
		return stored, false, nil
	}
	var fields map[string]json.RawMessage
	_ = json.Unmarshal(stored, &fields)
	if newDep == nil {
		delete(fields, "deprecated")
	} else {
		fields["deprecated"] = mustJSON(newDep)
	}
	return mustJSON(fields), true, nil
}

// comparable strips what may legitimately differ between the stored and
// the rendered manifest.
func comparable(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	delete(out, "deprecated")
	if dist, ok := out["dist"].(map[string]any); ok {
		d := make(map[string]any, len(dist))
		for k, v := range dist {
			d[k] = v
		}
		delete(d, "tarball")
		out["dist"] = d
	}
	return out
}

func sameNames(a, b []Person) bool {
	if len(a) != len(b) {
		return false
	}
	names := map[string]bool{}
	for _, p := range a {
		names[p.Name] = true
	}
	for _, p := range b {
		if !names[p.Name] {
			return false
		}
	}
	return true
}
