package registry

import (
	"context"
	"crypto/sha1" //nolint:gosec // npm's dist.shasum is sha1 by definition
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Import: packages copied from another registry (couchnpm import). The
// operator who runs it acts as an administrator of this registry:
//
//   - The write goes through the publish merge (mergePublish), the
//     conflict merge (mergeBeforeWrite), signing and the change stamps, as
//     a publish does; the design document's validation runs on the write.
//   - The maintainer check and the scope rule (orgs.go) do not apply: the
//     operator decides which packages move. The takeover guard does not
//     apply either: an imported name becomes a private package, which
//     shadows the upstream's package of that name, as a claim would.
//   - An existing version is never changed: the same version with the same
//     tarball is skipped (so a rerun skips everything copied before), a
//     different tarball, or a version number that was unpublished here, is
//     refused.
//   - The package's maintainers are the caller's list (users of this
//     registry); a package that exists here keeps its own. A source's
//     dist-tag on a version copied now is set, as a publish sets it; one on
//     a version here already only when the package has no such tag.

// ImportedVersion is one version as another registry serves it.
type ImportedVersion struct {
	Version  string
	Manifest Manifest // the source's manifest of this version
	Tarball  []byte
	Time     string // publication time the source records; "" when unknown
}

// ImportedPackage is a package read from another registry, its tarballs
// verified by the caller (CheckTarball) and verified here again.
type ImportedPackage struct {
	Name        string
	Versions    []ImportedVersion
	DistTags    map[string]string
	Readme      string
	Created     string
	Maintainers []Person // users of this registry (the caller maps them)
	// Access of a package new here: AccessRestricted or AccessPublic
	// ("": public, as a publish without --access).
	Access string
}

// ImportResult says what an import did with each version.
type ImportResult struct {
	Copied  []string          // versions written now
	Skipped []string          // versions already here with the same tarball
	Refused map[string]string // version → why it was not copied
	// TagsKept lists the source's dist-tags that point elsewhere here: the
	// registry's own value stays.
	TagsKept map[string]string // tag → the version it points to here
	TagsSet  []string
}

// Import copies pkg into this registry on behalf of operator (see above).
// Versions that cannot be copied are refused one by one in the result; an
// error means nothing was written.
func (s *Service) Import(ctx context.Context, operator Identity, pkg *ImportedPackage) (*ImportResult, error) {
	name := pkg.Name
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	if err := operator.CanWrite(); err != nil {
		return nil, err
	}
	prepared, res := prepareImport(pkg)
	key, err := s.activeKey(ctx)
	if err != nil {
		return nil, err
	}
	var result *ImportResult
	err = s.writeCycle(ctx, name, "import", true, func(_ int, stored *Packument) (planned, error) {
		r := res.clone()
		doc, pub, err := planImport(stored, pkg, prepared, operator.Person(), s.now(), r)
		if err != nil {
			return planned{}, err
		}
		result = r
		if doc == nil {
			return planned{}, nil // nothing to write
		}
		if key != nil {
			if err := signVersions(*key, doc, pub); err != nil {
				return planned{}, err
			}
		}
		return planned{doc: doc, landed: versionsLanded(pub)}, nil
	})
	if err != nil {
		return nil, err
	}
	return result, nil
}

// importVersion is a checked version with its source's time and publisher.
type importVersion struct {
	NewVersion
	time    string
	npmUser json.RawMessage
}

// prepareImport checks each version as a publish does (names, semver, the
// tarball against dist.shasum and dist.integrity); the ones that fail are
// refused in the result.
func prepareImport(pkg *ImportedPackage) ([]importVersion, *ImportResult) {
	res := &ImportResult{Refused: map[string]string{}, TagsKept: map[string]string{}}
	var out []importVersion
	for _, iv := range pkg.Versions {
		att := TarballName(pkg.Name, iv.Version)
		data := base64.StdEncoding.EncodeToString(iv.Tarball)
		nv, err := checkVersion(pkg.Name, iv.Version, iv.Manifest, map[string]string{iv.Version: att},
			map[string]Attachment{att: {Data: data}})
		if err != nil {
			res.Refused[iv.Version] = ReasonOf(err)
			continue
		}
		v := importVersion{NewVersion: nv, time: iv.Time}
		if u, ok := nv.Manifest["_npmUser"]; ok {
			var p Person
			if json.Unmarshal(u, &p) == nil && p.Name != "" {
				v.npmUser = mustJSON(p)
			}
		}
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return CompareVersions(out[i].Version, out[j].Version) < 0 })
	return out, res
}

func (r *ImportResult) clone() *ImportResult {
	c := &ImportResult{Refused: map[string]string{}, TagsKept: map[string]string{}}
	for k, v := range r.Refused {
		c.Refused[k] = v
	}
	return c
}

// planImport computes the document to write for an import onto stored
// (nil: a new name), filling r; a nil document means nothing changes.
func planImport(stored *Packument, pkg *ImportedPackage, versions []importVersion, operator Person, now time.Time, r *ImportResult) (*Packument, *Publication, error) {
	fresh := stored == nil || stored.IsTombstone()
	pub := &Publication{Name: pkg.Name, Tags: map[string]string{}}
	pub.Versions = importable(stored, versions, r)
	laterTags := planImportTags(stored, pkg, pub, fresh, r)
	if len(pub.Versions) == 0 && len(laterTags) == 0 {
		return nil, nil, nil
	}
	before := snapshotOf(stored)
	base, err := importBase(stored, pkg, pub, fresh)
	if err != nil {
		return nil, nil, err
	}
	doc := base
	if len(pub.Versions) > 0 {
		// An administrator's write: no maintainer check (teamWriter).
		if doc, err = mergePublish(base, pub, operator, now, true); err != nil {
			return nil, nil, err
		}
	} else {
		doc.Time["modified"] = stamp(now)
	}
	keepSourceHistory(doc, versions, pub, r)
	for _, tag := range laterTags {
		doc.DistTags[tag] = pkg.DistTags[tag]
	}
	doc.stampChanges(before, doc.Time["modified"])
	return doc, pub, nil
}

// importable is the versions to copy onto stored: the ones here already
// with the same tarball are skipped, the ones that conflict refused (in r).
func importable(stored *Packument, versions []importVersion, r *ImportResult) []NewVersion {
	var out []NewVersion
	for _, nv := range versions {
		if why, skip := importConflict(stored, nv); why != "" {
			r.Refused[nv.Version] = why
		} else if skip {
			r.Skipped = append(r.Skipped, nv.Version)
		} else {
			out = append(out, nv.NewVersion)
		}
	}
	return out
}

// planImportTags decides the source's dist-tags: a tag on a version copied
// now moves (into pub.Tags), as a publish with --tag would move it; on a
// version here already, the registry's own tag stays (r.TagsKept), and a
// tag it lacks is set after the merge (returned). Tags on versions neither
// here nor copied are left out.
func planImportTags(stored *Packument, pkg *ImportedPackage, pub *Publication, fresh bool, r *ImportResult) []string {
	have := func(v string) bool {
		if containsVersion(pub, v) {
			return true
		}
		_, ok := stored.versionsOrNil()[v]
		return ok
	}
	var later []string
	for _, tag := range sortedKeys(pkg.DistTags) {
		v := pkg.DistTags[tag]
		if ValidateTag(tag) != nil || !have(v) {
			continue
		}
		copied := containsVersion(pub, v)
		if !fresh && !copied {
			if here, ok := stored.DistTags[tag]; ok {
				if here != v {
					r.TagsKept[tag] = here
				}
				continue
			}
		}
		if copied {
			pub.Tags[tag] = v
		} else {
			later = append(later, tag)
		}
		r.TagsSet = append(r.TagsSet, tag)
	}
	return later
}

// importBase is the document the import merges into: stored, or for a name
// new here (or unpublished) a fresh packument with the source's
// maintainers, access, readme and creation time.
func importBase(stored *Packument, pkg *ImportedPackage, pub *Publication, fresh bool) (*Packument, error) {
	base := stored
	if stored == nil {
		if err := ValidateNewName(pkg.Name); err != nil {
			return nil, err
		}
		base = NewPackument(pkg.Name)
	}
	if !fresh {
		return base, nil
	}
	if len(pkg.Maintainers) == 0 {
		return nil, E(KindInvalid, "%s has no maintainer who is a user of this registry", pkg.Name)
	}
	base.Maintainers = append([]Person(nil), pkg.Maintainers...)
	switch pkg.Access {
	case "", AccessPublic:
	case AccessRestricted:
		base.Fields["access"] = mustJSON(AccessRestricted)
	default:
		return nil, E(KindInvalid, "access must be %s or %s, not %q", AccessPublic, AccessRestricted, pkg.Access)
	}
	if pkg.Readme != "" {
		readme := pkg.Readme
		pub.Readme = &readme
	}
	if _, err := time.Parse(time.RFC3339, pkg.Created); err == nil && base.Time["created"] == "" {
		base.Time["created"] = pkg.Created
	}
	return base, nil
}

// keepSourceHistory gives each version copied now its source's publish
// time and publisher, and lists it as copied in r.
func keepSourceHistory(doc *Packument, versions []importVersion, pub *Publication, r *ImportResult) {
	for _, nv := range versions {
		if !containsVersion(pub, nv.Version) {
			continue
		}
		if _, err := time.Parse(time.RFC3339, nv.time); err == nil {
			doc.Time[nv.Version] = nv.time
		}
		if nv.npmUser != nil {
			var m map[string]json.RawMessage
			if json.Unmarshal(doc.Versions[nv.Version], &m) == nil {
				m["_npmUser"] = nv.npmUser // who published it at the source
				doc.Versions[nv.Version] = mustJSON(m)
			}
		}
		r.Copied = append(r.Copied, nv.Version)
	}
}

// importConflict compares an imported version with what stored has: skip
// when the same tarball is here, a reason when the version may not be
// copied.
func importConflict(stored *Packument, nv importVersion) (why string, skip bool) {
	if stored == nil {
		return "", false
	}
	for v, m := range stored.Versions {
		if CompareVersions(v, nv.Version) != 0 {
			continue
		}
		integrity, _, _ := DistOf(m)
		if v == nv.Version && integrity == nv.Integrity {
			return "", true
		}
		return fmt.Sprintf("version %s exists here with a different tarball (here %s, source %s)", v, short(integrity), short(nv.Integrity)), false
	}
	for v := range stored.Time {
		if CompareVersions(v, nv.Version) == 0 {
			return fmt.Sprintf("version %s was unpublished here and version numbers cannot be reused", v), false
		}
	}
	return "", false
}

func short(integrity string) string {
	if len(integrity) > 20 {
		return integrity[:20] + "…"
	}
	return integrity
}

func (p *Packument) versionsOrNil() map[string]Manifest {
	if p == nil {
		return nil
	}
	return p.Versions
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// CheckTarball verifies a tarball against a manifest's dist.shasum and
// dist.integrity, as a publish does; at least one of them must be given.
func CheckTarball(integrity, shasum string, data []byte) error {
	h1 := sha1.Sum(data) //nolint:gosec
	h512 := sha512.Sum512(data)
	sha1hex := hex.EncodeToString(h1[:])
	sri := "sha512-" + base64.StdEncoding.EncodeToString(h512[:])
	if integrity == "" && shasum == "" {
		return E(KindInvalid, "the manifest gives neither dist.integrity nor dist.shasum")
	}
	if shasum != "" && !strings.EqualFold(shasum, sha1hex) {
		return E(KindInvalid, "dist.shasum %s does not match the tarball (sha1 %s)", shasum, sha1hex)
	}
	if integrity != "" {
		if err := checkIntegrity(integrity, sri, sha1hex); err != nil {
			return E(KindInvalid, "dist.integrity does not match the tarball: %s", ReasonOf(err))
		}
	}
	return nil
}
