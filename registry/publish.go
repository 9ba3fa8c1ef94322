package registry

import (
	"bytes"
	"crypto/sha1" //nolint:gosec // npm's dist.shasum is sha1 by definition
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"
)

// PublishBody is the JSON document npm sends with PUT /{package}.
type PublishBody struct {
	ID          string                     `json:"_id"`
	Name        string                     `json:"name"`
	Rev         string                     `json:"_rev,omitempty"`
	DistTags    map[string]string          `json:"dist-tags"`
	Versions    map[string]Manifest        `json:"versions"`
	Attachments map[string]Attachment      `json:"_attachments"`
	Access      *string                    `json:"access"`
	Readme      *string                    `json:"readme,omitempty"`
	Extra       map[string]json.RawMessage `json:"-"`
}

// DecodePublishBody reads a publish body. It refuses anything but a single
// JSON object (trailing data included).
func DecodePublishBody(r io.Reader) (*PublishBody, error) {
	var b PublishBody
	// Strict: one object, nothing after it, no duplicate keys (strictjson.go).
	if err := decodeStrict(r, &b); err != nil {
		return nil, err
	}
	return &b, nil
}

// decodeError turns a JSON decoding failure into a client error, keeping a
// body-size failure distinguishable.
func decodeError(err error) error {
	if strings.Contains(err.Error(), "http: request body too large") {
		return Wrap(KindTooLarge, err, "the request body is larger than this registry accepts")
	}
	return Wrap(KindInvalid, err, "the request body is not valid JSON: %s", err.Error())
}

// NewVersion is one version being published, verified against its tarball.
type NewVersion struct {
	Version    string
	Manifest   map[string]json.RawMessage
	Attachment string // attachment name in CouchDB
	Data       string // base64 tarball, as sent
	Length     int64
	Shasum     string
	Integrity  string
}

// Publication is a checked publish request, ready to merge.
type Publication struct {
	Name     string
	Versions []NewVersion
	Tags     map[string]string // tag → version, only for versions being published
	Readme   *string
	Access   string
}

// PreparePublish checks a publish body for the package named in the URL:
// names agree, each version is strict semver with a manifest that names it,
// each version has exactly its tarball, and the tarball's bytes match the
// manifest's dist.shasum and dist.integrity. Nothing here touches storage.
func PreparePublish(name string, b *PublishBody) (*Publication, error) {
	if err := checkBodyNames(name, b); err != nil {
		return nil, err
	}
	if len(b.Versions) == 0 {
		return nil, E(KindInvalid, "%s: \"versions\" must hold the manifest of each version in \"_attachments\" (%d tarballs)", errNoVersions, len(b.Attachments))
	}
	if len(b.Attachments) != len(b.Versions) {
		return nil, E(KindInvalid, "a publish must carry exactly one tarball per version (got %d versions and %d attachments)", len(b.Versions), len(b.Attachments))
	}
	byVersion := map[string]string{}
	for att := range b.Attachments {
		v, err := VersionFromTarball(name, att)
		if err != nil {
			return nil, E(KindInvalid, "attachment %q is not a tarball of %s", att, name)
		}
		byVersion[v] = att
	}
	pub := &Publication{Name: name, Tags: map[string]string{}, Readme: b.Readme}
	if b.Access != nil {
		pub.Access = *b.Access
	}
	for v, raw := range b.Versions {
		nv, err := checkVersion(name, v, raw, byVersion, b.Attachments)
		if err != nil {
			return nil, err
		}
		pub.Versions = append(pub.Versions, nv)
	}
	for tag, v := range b.DistTags {
		if _, ok := b.Versions[v]; !ok {
			return nil, E(KindInvalid, "dist-tag %q points to %q, which this publish does not contain", tag, v)
		}
		if err := ValidateTag(tag); err != nil {
			return nil, err
		}
		pub.Tags[tag] = v
	}
	return pub, nil
}

func checkVersion(name, v string, raw Manifest, byVersion map[string]string, atts map[string]Attachment) (NewVersion, error) {
	if err := ValidateVersion(v); err != nil {
		return NewVersion{}, err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return NewVersion{}, E(KindInvalid, "version %s: the manifest must be a JSON object", v)
	}
	if s, _ := stringField(m, "name"); s != name {
		return NewVersion{}, E(KindInvalid, "version %s: the manifest names package %q, not %q", v, s, name)
	}
	if s, _ := stringField(m, "version"); s != v {
		return NewVersion{}, E(KindInvalid, "version %s: the manifest says version %q", v, s)
	}
	attName, ok := byVersion[v]
	if !ok {
		return NewVersion{}, E(KindInvalid, "version %s has no tarball attachment", v)
	}
	att := atts[attName]
	if att.Data == "" {
		return NewVersion{}, E(KindInvalid, "attachment %q has no data", attName)
	}
	sha1hex, sri, n, err := digestBase64(att.Data)
	if err != nil {
		return NewVersion{}, E(KindInvalid, "attachment %q is not valid base64", attName)
	}
	if att.Length != 0 && att.Length != n {
		return NewVersion{}, E(KindInvalid, "attachment %q: length says %d bytes, data has %d", attName, att.Length, n)
	}
	var dist map[string]json.RawMessage
	if d, ok := m["dist"]; ok {
		if err := json.Unmarshal(d, &dist); err != nil {
			return NewVersion{}, E(KindInvalid, "version %s: dist must be an object", v)
		}
	}
	if dist == nil {
		dist = map[string]json.RawMessage{}
	}
	if s, ok := stringField(dist, "shasum"); ok && !strings.EqualFold(s, sha1hex) {
		return NewVersion{}, E(KindInvalid, "version %s: dist.shasum %s does not match the tarball (sha1 %s)", v, s, sha1hex)
	}
	if s, ok := stringField(dist, "integrity"); ok {
		if err := checkIntegrity(s, sri, sha1hex); err != nil {
			return NewVersion{}, E(KindInvalid, "version %s: dist.integrity does not match the tarball: %s", v, err.Error())
		}
	}
	return NewVersion{
		Version: v, Manifest: m, Attachment: TarballName(name, v), Data: att.Data,
		Length: n, Shasum: sha1hex, Integrity: sri,
	}, nil
}

// digestBase64 hashes base64 data without holding the decoded bytes.
func digestBase64(data string) (sha1hex, sri string, n int64, err error) {
	h1, h512 := sha1.New(), sha512.New() //nolint:gosec
	n, err = io.Copy(io.MultiWriter(h1, h512), base64.NewDecoder(base64.StdEncoding, strings.NewReader(data)))
	if err != nil {
		return "", "", 0, err
	}
	return hex.EncodeToString(h1.Sum(nil)), "sha512-" + base64.StdEncoding.EncodeToString(h512.Sum(nil)), n, nil
}

// checkIntegrity compares a Subresource Integrity string with the computed
// digests. Every sha512 or sha1 entry must match, and at least one must be
// present; entries of other algorithms are ignored.
func checkIntegrity(integrity, sha512sri, sha1hex string) error {
	checked := false
	for _, entry := range strings.Fields(integrity) {
		algo, digest, ok := strings.Cut(entry, "-")
		if !ok {
			return E(KindInvalid, "malformed integrity entry %q", entry)
		}
		digest, _, _ = strings.Cut(digest, "?")
		switch algo {
		case "sha512":
			if "sha512-"+digest != sha512sri {
				return E(KindInvalid, "sha512 differs (the tarball's is %s)", sha512sri)
			}
			checked = true
		case "sha1":
			raw, err := base64.StdEncoding.DecodeString(digest)
			if err != nil || hex.EncodeToString(raw) != sha1hex {
				return E(KindInvalid, "sha1 differs")
			}
			checked = true
		}
	}
	if !checked {
		return E(KindInvalid, "no sha512 or sha1 entry")
	}
	return nil
}

// rangeLikeTag matches what npm (npm-package-arg, semver.validRange) could
// read as a version or range rather than a tag: an optional v, =, ~, ^, <
// or > prefix followed by a digit or an x/X/* wildcard part (1, v1.0.0, ~1,
// x, X.1, *).
var rangeLikeTag = regexp.MustCompile(`^[vV=~^<>]*(\d|[xX*](\.|$))`)

// ValidateTag refuses tags that npm would read as versions or ranges.
func ValidateTag(tag string) error {
	if tag == "" || len(tag) > 128 || !urlSafe(tag) || ValidateVersion(tag) == nil || rangeLikeTag.MatchString(tag) {
		return E(KindInvalid, "invalid dist-tag %q: a tag must not look like a version", tag)
	}
	return nil
}

func stringField(m map[string]json.RawMessage, key string) (string, bool) {
	raw, ok := m[key]
	if !ok {
		return "", false
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// hoisted are the root fields the registry copies from the latest version,
// as the public registry does.
var hoisted = []string{"description", "keywords", "author", "license", "homepage", "repository", "bugs", "contributors", "readmeFilename"}

// MaxReadme is the size the root readme is cut to, as the public registry does.
const MaxReadme = 64 * 1024

// Merge applies a checked publication to the stored packument (nil when the
// package does not exist yet) on behalf of user, returning the document to
// write. It refuses non-maintainers and any version number that exists or
// ever existed.
func Merge(stored *Packument, pub *Publication, user Person, now time.Time) (*Packument, error) {
	return mergePublish(stored, pub, user, now, false)
}

// mergePublish is Merge; teamWriter says that user, not a maintainer, is a
// member of a team granted read-write on the package (orgs.go). Its steps:
// the document to publish into, the new version numbers checked against
// it, each version's manifest added, the tags, the times and access, and
// the root fields hoisted from latest.
func mergePublish(stored *Packument, pub *Publication, user Person, now time.Time, teamWriter bool) (*Packument, error) {
	doc, err := publishTarget(stored, pub.Name, user, teamWriter)
	if err != nil {
		return nil, err
	}
	if err := checkNewVersions(doc, pub.Versions); err != nil {
		return nil, err
	}
	stamp := now.UTC().Format("2006-01-02T15:04:05.000Z")
	readmes := map[string]string{} // version → its manifest's readme
	for _, nv := range pub.Versions {
		m, readme, ok := publishedManifest(pub.Name, nv, user, doc.Maintainers)
		if ok {
			readmes[nv.Version] = readme
		}
		doc.Versions[nv.Version] = m
		doc.Time[nv.Version] = stamp
		doc.Attachments[nv.Attachment] = Attachment{ContentType: "application/octet-stream", Data: nv.Data}
	}
	applyPublishTags(doc, pub)
	stampPublish(doc, stamp, stored == nil, pub.Access)
	latest := doc.DistTags["latest"]
	if lm, ok := doc.Versions[latest]; ok && (stored == nil || containsVersion(pub, latest)) {
		hoist(doc, lm)
		// The body's root readme, else latest's own; pub is never changed,
		// so a retried Merge gives the same document.
		readme := pub.Readme
		if s, ok := readmes[latest]; ok && readme == nil {
			readme = &s
		}
		if readme != nil {
			doc.Fields["readme"] = mustJSON(cutReadme(*readme))
		}
	}
	return doc, nil
}

// publishTarget is the document a publish of name by user goes into: a new
// one (the name must be valid for a new package) or stored, which user
// must maintain unless teamWriter. A document without maintainers gets
// user.
func publishTarget(stored *Packument, name string, user Person, teamWriter bool) (*Packument, error) {
	doc := stored
	if stored == nil {
		if err := ValidateNewName(name); err != nil {
			return nil, err
		}
		doc = NewPackument(name)
	} else if !teamWriter && !doc.HasMaintainer(user.Name) {
		// npm ≥ 7 no longer sends maintainers: the registry owns them. A
		// package whose every maintainer is gone (old data) stays locked
		// rather than claimable by the first comer.
		return nil, E(KindForbidden, "you (%s) are not a maintainer of %s", user.Name, name)
	}
	if len(doc.Maintainers) == 0 {
		doc.Maintainers = []Person{user}
	}
	return doc, nil
}

// checkNewVersions refuses a version number doc has, or had (unpublished
// versions keep their time entry), or that the publish carries twice.
// Versions are compared by SemVer precedence: build metadata does not make
// a new version (npm strips it), so 1.0.0+x is 1.0.0 again.
func checkNewVersions(doc *Packument, versions []NewVersion) error {
	for i, nv := range versions {
		for v := range doc.Versions {
			if CompareVersions(nv.Version, v) == 0 {
				return E(KindForbidden, "cannot publish over the previously published version %s%s", v, sameNumber(nv.Version, v))
			}
		}
		for v := range doc.Time { // "created"/"modified" never compare equal
			if CompareVersions(nv.Version, v) == 0 {
				return E(KindForbidden, "cannot publish over the previously published version %s%s: it was unpublished and version numbers cannot be reused", v, sameNumber(nv.Version, v))
			}
		}
		for _, other := range versions[:i] {
			if CompareVersions(nv.Version, other.Version) == 0 {
				return E(KindInvalid, "versions %s and %s of this publish are the same version (build metadata is ignored)", other.Version, nv.Version)
			}
		}
	}
	return nil
}

// publishedManifest is the manifest stored for nv of package name: the
// client's, without its readme (returned apart, ok when it had one) and
// CouchDB's fields, with the registry's _id, _npmUser, maintainers and
// dist (publishedDist).
func publishedManifest(name string, nv NewVersion, user Person, maintainers []Person) (m Manifest, readme string, ok bool) {
	fields := make(map[string]json.RawMessage, len(nv.Manifest)+4)
	for k, v := range nv.Manifest {
		fields[k] = v
	}
	if r, has := fields["readme"]; has {
		ok = json.Unmarshal(r, &readme) == nil
		delete(fields, "readme")
	}
	delete(fields, "_rev")
	delete(fields, "_attachments")
	fields["_id"] = mustJSON(name + "@" + nv.Version)
	fields["_npmUser"] = mustJSON(user)
	fields["maintainers"] = mustJSON(maintainers)
	fields["dist"] = publishedDist(fields["dist"], name, nv)
	return mustJSON(fields), readme, ok
}

// publishedDist is the dist object stored for nv: the client's, with the
// registry's checksums and tarball path, and never the client's signatures
// or attestations (those are the registry's word: a client could
// otherwise bring its own).
func publishedDist(client json.RawMessage, name string, nv NewVersion) json.RawMessage {
	var dist map[string]json.RawMessage
	_ = json.Unmarshal(client, &dist)
	if dist == nil {
		dist = map[string]json.RawMessage{}
	}
	delete(dist, "signatures")
	delete(dist, "attestations")
	dist["shasum"] = mustJSON(nv.Shasum)
	// Always the computed sha512: the client's string may carry entries
	// checkIntegrity does not verify (sha256, sha384), and npm checks the
	// strongest one.
	dist["integrity"] = mustJSON(nv.Integrity)
	// A path relative to the registry; the read path writes the public URL
	// in front of it, so a changed public URL needs no data change.
	dist["tarball"] = mustJSON(TarballPath(name, nv.Version))
	return mustJSON(dist)
}

// applyPublishTags sets the publish's tags; a package without latest gets
// the highest version published.
func applyPublishTags(doc *Packument, pub *Publication) {
	for tag, v := range pub.Tags {
		doc.DistTags[tag] = v
	}
	if _, ok := doc.DistTags["latest"]; !ok {
		doc.DistTags["latest"] = HighestVersion(versionsOf(pub))
	}
}

// stampPublish marks doc published at stamp: no longer unpublished,
// created (if new) and modified; a new package takes access from the
// publish when it names one.
func stampPublish(doc *Packument, stamp string, isNew bool, access string) {
	doc.Unpublished = nil
	if doc.Time["created"] == "" {
		doc.Time["created"] = stamp
	}
	doc.Time["modified"] = stamp
	if access != "" && isNew {
		doc.Fields["access"] = mustJSON(access)
	}
}

// cutReadme cuts r to MaxReadme bytes, never inside a multi-byte
// character.
func cutReadme(r string) string {
	if len(r) <= MaxReadme {
		return r
	}
	cut := MaxReadme
	for cut > 0 && !utf8.RuneStart(r[cut]) {
		cut--
	}
	return r[:cut]
}

func hoist(doc *Packument, manifest Manifest) {
	var m map[string]json.RawMessage
	if json.Unmarshal(manifest, &m) != nil {
		return
	}
	for _, k := range hoisted {
		if v, ok := m[k]; ok {
			doc.Fields[k] = v
		} else {
			delete(doc.Fields, k)
		}
	}
}

func versionsOf(pub *Publication) []string {
	vs := make([]string, len(pub.Versions))
	for i, nv := range pub.Versions {
		vs[i] = nv.Version
	}
	return vs
}

func containsVersion(pub *Publication, v string) bool {
	for _, nv := range pub.Versions {
		if nv.Version == v {
			return true
		}
	}
	return false
}

// TarballPath is the registry-relative path of a version's tarball, in the
// form the public registry uses (/@scope/pkg/-/pkg-1.0.0.tgz).
func TarballPath(name, version string) string {
	return "/" + name + "/-/" + TarballName(name, version)
}

func mustJSON(v any) json.RawMessage {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic(err) // only called with values that always marshal
	}
	return bytes.TrimRight(buf.Bytes(), "\n")
}

// sameNumber explains a refusal when the versions differ only in build
// metadata (npm's own wording, "cannot publish over the previously
// published version", is kept in front for people who search for it).
func sameNumber(attempted, existing string) string {
	if attempted == existing {
		return ""
	}
	return " (" + attempted + " is the same version number)"
}
