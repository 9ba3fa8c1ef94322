package registry

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"maps"
	"slices"
	"sort"
	"strings"
)

// Meta is couchnpm's own bookkeeping inside a packument document (the root
// field "couchnpm"; never rendered to clients). It holds what merging
// conflicting revisions needs and what it found (docs/conflicts.md).
type Meta struct {
	// Changed records when each mergeable part of the document last
	// changed: "dist-tags/TAG", "maintainers", "access", "deprecated/V",
	// "users/NAME" → RFC 3339 time. Conflicting revisions merge each part
	// by its own latest change.
	Changed map[string]string `json:"changed,omitempty"`
	// Conflicts are versions published with different content on two
	// sides of a conflict: the earliest publish was kept.
	Conflicts []VersionConflict `json:"conflicts,omitempty"`
}

// VersionConflict reports one version published twice with different
// content. The dropped tarball is kept aside under Attachment (an
// attachment name the tarball routes never serve).
type VersionConflict struct {
	Version    string `json:"version"`
	Kept       string `json:"kept"`    // dist.integrity of the version served
	Dropped    string `json:"dropped"` // dist.integrity of the other publish
	DroppedRev string `json:"dropped_rev"`
	Attachment string `json:"attachment,omitempty"`
	Publisher  string `json:"publisher,omitempty"` // _npmUser.name of the dropped publish
}

// Change keys of Meta.Changed.
const (
	changeTags        = "dist-tags/"
	changeMaintainers = "maintainers"
	changeAccess      = "access"
	changeDeprecated  = "deprecated/"
	changeUsers       = "users/"
)

// mergeable is the part of a packument that merges by last change: taken
// before a write so that the write can record what it changed.
type mergeable struct {
	tags        map[string]string
	maintainers string
	access      string
	deprecated  map[string]string
	users       map[string]bool
}

func snapshotOf(p *Packument) mergeable {
	if p == nil {
		return mergeable{}
	}
	m := mergeable{
		tags:        maps.Clone(p.DistTags),
		maintainers: maintainerKey(p.Maintainers),
		access:      string(p.Fields["access"]),
		deprecated:  map[string]string{},
		users:       maps.Clone(p.Users),
	}
	for v, raw := range p.Versions {
		m.deprecated[v] = deprecationOf(raw)
	}
	return m
}

func maintainerKey(ps []Person) string {
	names := make([]string, len(ps))
	for i, p := range ps {
		names[i] = p.Name + "\x00" + p.Email
	}
	sort.Strings(names)
	return strings.Join(names, "\x01")
}

func deprecationOf(m Manifest) string {
	var v struct {
		Deprecated any `json:"deprecated"`
	}
	if json.Unmarshal(m, &v) != nil {
		return ""
	}
	s, _ := v.Deprecated.(string)
	return s
}

// stampChanges records in p.Meta.Changed, at time at, every mergeable part
// that differs from before.
func (p *Packument) stampChanges(before mergeable, at string) {
	after := snapshotOf(p)
	touch := func(key string) {
		if p.Meta == nil {
			p.Meta = &Meta{}
		}
		if p.Meta.Changed == nil {
			p.Meta.Changed = map[string]string{}
		}
		p.Meta.Changed[key] = at
	}
	for t := range unionKeys(before.tags, after.tags) {
		if before.tags[t] != after.tags[t] {
			touch(changeTags + t)
		}
	}
	if before.maintainers != after.maintainers {
		touch(changeMaintainers)
	}
	if before.access != after.access {
		touch(changeAccess)
	}
	for v := range after.deprecated {
		if before.deprecated[v] != after.deprecated[v] {
			touch(changeDeprecated + v)
		}
	}
	for u := range unionKeys(before.users, after.users) {
		if before.users[u] != after.users[u] {
			touch(changeUsers + u)
		}
	}
}

func unionKeys[V any](a, b map[string]V) map[string]bool {
	out := make(map[string]bool, len(a)+len(b))
	for k := range a {
		out[k] = true
	}
	for k := range b {
		out[k] = true
	}
	return out
}

// MergeLeaves merges the leaf revisions of a private packument into one
// document, by the registry's rules (docs/conflicts.md). leaves[0] is the
// revision CouchDB chose as the winner: the result is written on top of it.
// The result is the same whatever the order of the other leaves, and
// merging a merged document with any of its inputs changes nothing, so
// several resolvers converge. Attachments the winner lacks carry the
// revision to copy them from (Attachment.FromRev).
func MergeLeaves(leaves []*Packument) *Packument {
	if len(leaves) == 0 {
		return nil
	}
	m := newLeafMerge(leaves)
	m.out.Time = mergedTimes(m.all)
	m.reports = priorReports(m.all)
	m.changed = mergedChanges(m.all)
	m.mergeVersions(unpublishedVersions(m.all))
	m.keepAsideTarballs()
	// Everything else at the root (readme, description, …) comes from the
	// most recently modified side.
	maps.Copy(m.out.Fields, m.newest().Fields)
	delete(m.out.Fields, "access") // merged below, by its own last change
	m.mergeLastChanged()
	out := m.out
	if latest, ok := out.Versions[out.DistTags["latest"]]; ok {
		hoist(out, latest)
	}
	if len(out.Versions) == 0 {
		out.Unpublished = lastTombstone(m.all, out.Time["modified"])
	}
	if len(m.changed) > 0 || len(m.reports) > 0 {
		out.Meta = &Meta{Changed: m.changed, Conflicts: m.reports}
	}
	return out
}

// leafMerge is one MergeLeaves under way: its inputs, in a fixed order,
// and what it has built so far.
type leafMerge struct {
	winner  *Packument   // CouchDB's winner: the result is written on it
	others  []*Packument // the other leaves, by revision
	all     []*Packument // winner, then others
	out     *Packument
	reports []VersionConflict // versions whose content differed
	changed map[string]string // part → its latest change time (snapshot.go)
}

// newLeafMerge orders the leaves (the winner first, the others by
// revision, so the result does not depend on the order they came in) and
// starts the result on the winner's identity.
func newLeafMerge(leaves []*Packument) *leafMerge {
	winner := leaves[0]
	others := slices.Clone(leaves[1:])
	sort.Slice(others, func(i, j int) bool { return others[i].Rev < others[j].Rev })
	out := NewPackument(winner.ID)
	out.Rev = winner.Rev
	out.Name = winner.Name
	return &leafMerge{winner: winner, others: others, all: append([]*Packument{winner}, others...), out: out}
}

// unpublishedVersions are the versions unpublished on any side: their time
// entry without a manifest is the record, and they stay unpublished.
func unpublishedVersions(all []*Packument) map[string]bool {
	unpublished := map[string]bool{}
	for _, l := range all {
		for v := range l.Time {
			if _, live := l.Versions[v]; !live && ValidateVersion(v) == nil {
				unpublished[v] = true
			}
		}
	}
	return unpublished
}

// mergedTimes is the merged time map: the earliest publish of each version
// and the package's creation, the latest modification.
func mergedTimes(all []*Packument) map[string]string {
	out := map[string]string{}
	for _, l := range all {
		for k, t := range l.Time {
			cur, ok := out[k]
			switch {
			case !ok:
				out[k] = t
			case k == "modified":
				if t > cur {
					out[k] = t
				}
			case t < cur:
				out[k] = t
			}
		}
	}
	return out
}

// priorReports are the version conflicts earlier merges recorded, each
// once.
func priorReports(all []*Packument) []VersionConflict {
	var reports []VersionConflict
	for _, l := range all {
		if l.Meta == nil {
			continue
		}
		for _, r := range l.Meta.Conflicts {
			if !reported(reports, r.Version, r.Dropped) {
				reports = append(reports, r)
			}
		}
	}
	return reports
}

// mergedChanges is each part's latest change time over all sides.
func mergedChanges(all []*Packument) map[string]string {
	changed := map[string]string{}
	for _, l := range all {
		if l.Meta == nil {
			continue
		}
		for k, t := range l.Meta.Changed {
			if t > changed[k] {
				changed[k] = t
			}
		}
	}
	return changed
}

// mergeVersions takes the union of the versions not unpublished. The same
// version with different content keeps the earliest publish; the other is
// reported and its tarball kept aside.
func (m *leafMerge) mergeVersions(unpublished map[string]bool) {
	versions := map[string]bool{}
	for _, l := range m.all {
		for v := range l.Versions {
			versions[v] = true
		}
	}
	for _, v := range slices.Sorted(maps.Keys(versions)) {
		if !unpublished[v] {
			m.mergeVersion(v)
		}
	}
}

// mergeVersion merges version v: the kept copy, its tarball, and a report
// and a tarball kept aside for each other content.
func (m *leafMerge) mergeVersion(v string) {
	kept := earliestCopy(m.all, v)
	m.out.Versions[v] = kept.Versions[v]
	att := TarballName(m.out.Name, v)
	if a, ok := kept.Attachments[att]; ok {
		m.out.Attachments[att] = fromLeaf(att, a, kept, m.winner)
	}
	keptIntegrity := integrityOf(kept.Versions[v])
	for _, l := range m.all {
		man, ok := l.Versions[v]
		if !ok || l == kept {
			continue
		}
		other := integrityOf(man)
		if other == keptIntegrity || reported(m.reports, v, other) {
			continue
		}
		r := VersionConflict{Version: v, Kept: keptIntegrity, Dropped: other, DroppedRev: l.Rev, Publisher: publisherOf(man)}
		if a, ok := l.Attachments[att]; ok {
			r.Attachment = asideName(att, other)
			aside := fromLeaf(r.Attachment, a, l, m.winner)
			aside.FromName = att
			m.out.Attachments[r.Attachment] = aside
		}
		m.reports = append(m.reports, r)
	}
}

// earliestCopy is the side whose copy of v was published first. On a tie,
// a copy that gained signatures (keys sign-existing) wins over the same
// version unsigned: the validate_doc_update lets signatures be added, never
// removed.
func earliestCopy(all []*Packument, v string) *Packument {
	var kept *Packument
	for _, l := range all {
		if _, ok := l.Versions[v]; !ok {
			continue
		}
		if kept == nil || l.Time[v] < kept.Time[v] || (l.Time[v] == kept.Time[v] && gainedSignatures(l.Versions[v], kept.Versions[v])) {
			kept = l
		}
	}
	return kept
}

// keepAsideTarballs keeps the tarballs earlier merges kept aside.
func (m *leafMerge) keepAsideTarballs() {
	for _, l := range m.all {
		for name, a := range l.Attachments {
			if _, ok := m.out.Attachments[name]; !ok && strings.Contains(name, asideMarker) {
				m.out.Attachments[name] = fromLeaf(name, a, l, m.winner)
			}
		}
	}
}

// newest is the most recently modified side (the winner on a tie).
func (m *leafMerge) newest() *Packument {
	newest := m.winner
	for _, l := range m.others {
		if l.Time["modified"] > newest.Time["modified"] {
			newest = l
		}
	}
	return newest
}

// last picks the side whose change of key is the latest; the winner when
// no side recorded one (documents written before the records).
func (m *leafMerge) last(key string) *Packument {
	best, bestAt := m.winner, changedAt(m.winner, key)
	for _, l := range m.others {
		if at := changedAt(l, key); at > bestAt {
			best, bestAt = l, at
		}
	}
	return best
}

// mergeLastChanged takes each part that changes as a whole (a dist-tag,
// the maintainers, access, a deprecation, a star) from the side that
// changed it last.
func (m *leafMerge) mergeLastChanged() {
	m.mergeDistTags()
	out := m.out
	out.Maintainers = slices.Clone(m.last(changeMaintainers).Maintainers)
	if a, ok := m.last(changeAccess).Fields["access"]; ok {
		out.Fields["access"] = a
	}
	for v := range out.Versions {
		src := m.last(changeDeprecated + v)
		if man, ok := src.Versions[v]; ok && deprecationOf(man) != deprecationOf(out.Versions[v]) {
			out.Versions[v] = withDeprecationOf(out.Versions[v], man)
		}
	}
	users := map[string]bool{}
	for _, l := range m.all {
		for u := range l.Users {
			users[u] = true
		}
	}
	for u := range users {
		if m.last(changeUsers + u).Users[u] {
			out.Users[u] = true
		}
	}
}

// mergeDistTags takes each dist-tag any side has or had from the side that
// changed it last, when it points to a live version; latest, when no side
// leaves one, is the highest version.
func (m *leafMerge) mergeDistTags() {
	out := m.out
	tags := map[string]bool{}
	for _, l := range m.all {
		for t := range l.DistTags {
			tags[t] = true
		}
	}
	for k := range m.changed {
		if t, ok := strings.CutPrefix(k, changeTags); ok {
			tags[t] = true
		}
	}
	for t := range tags {
		if v, ok := m.last(changeTags + t).DistTags[t]; ok {
			if _, live := out.Versions[v]; live {
				out.DistTags[t] = v
			}
		}
	}
	if _, ok := out.DistTags["latest"]; !ok && len(out.Versions) > 0 {
		out.DistTags["latest"] = HighestVersion(out.SortedVersions())
	}
}

// lastTombstone is the tombstone record of a package unpublished on every
// side: the latest one (modified is the merged modification time).
func lastTombstone(all []*Packument, modified string) json.RawMessage {
	var rec json.RawMessage
	for _, l := range all {
		if len(l.Unpublished) > 0 && (rec == nil || l.Time["modified"] >= modified) {
			rec = l.Unpublished
		}
	}
	return rec
}

// asideMarker is in the name of every tarball kept aside by a merge. The
// tarball routes serve only TarballName(name, version), never these.
const asideMarker = ".conflict-"

func asideName(att, integrity string) string {
	sum := sha256.Sum256([]byte(integrity))
	return att + asideMarker + hex.EncodeToString(sum[:6])
}

func reported(rs []VersionConflict, v, dropped string) bool {
	for _, r := range rs {
		if r.Version == v && (r.Dropped == dropped || r.Kept == dropped) {
			return true
		}
	}
	return false
}

// fromLeaf returns the stub of attachment name, taken from leaf l, as it
// must be written on top of winner: as is when the winner holds the same
// bytes under that name, else marked with the revision to copy it from.
func fromLeaf(name string, a Attachment, l, winner *Packument) Attachment {
	if wa, ok := winner.Attachments[name]; ok && wa.Digest == a.Digest {
		return wa
	}
	a.FromRev = l.Rev
	return a
}

func changedAt(p *Packument, key string) string {
	if p.Meta == nil {
		return ""
	}
	return p.Meta.Changed[key]
}

func integrityOf(m Manifest) string {
	var v struct {
		Dist struct {
			Integrity string `json:"integrity"`
			Shasum    string `json:"shasum"`
		} `json:"dist"`
	}
	_ = json.Unmarshal(m, &v)
	if v.Dist.Integrity != "" {
		return v.Dist.Integrity
	}
	return v.Dist.Shasum
}

func publisherOf(m Manifest) string {
	var v struct {
		User struct {
			Name string `json:"name"`
		} `json:"_npmUser"`
	}
	_ = json.Unmarshal(m, &v)
	return v.User.Name
}

// withDeprecationOf returns m with the "deprecated" field of src.
func withDeprecationOf(m, src Manifest) Manifest {
	var fields map[string]json.RawMessage
	if json.Unmarshal(m, &fields) != nil {
		return m
	}
	if d := deprecationOf(src); d != "" {
		fields["deprecated"] = mustJSON(d)
	} else {
		delete(fields, "deprecated")
	}
	return mustJSON(fields)
}

// MergeChanges reports whether merged differs from the winner it was built
// on, i.e. whether it must be written before the losing leaves go.
func MergeChanges(winner, merged *Packument) bool {
	for _, a := range merged.Attachments {
		if a.FromRev != "" {
			return true
		}
	}
	if len(winner.Attachments) != len(merged.Attachments) {
		return true
	}
	a, b := *winner, *merged
	a.Attachments, b.Attachments = nil, nil
	a.Conflicts, b.Conflicts = nil, nil
	ja, err1 := json.Marshal(&a)
	jb, err2 := json.Marshal(&b)
	return err1 != nil || err2 != nil || string(ja) != string(jb)
}

// MirrorWinner picks the leaf of a mirrored packument to keep: the
// upstream is authoritative, so the one with the latest upstream
// modification time wins whole; the others are dropped.
func MirrorWinner(leaves []*Packument) *Packument {
	best := leaves[0]
	for _, l := range leaves[1:] {
		if l.Time["modified"] > best.Time["modified"] ||
			(l.Time["modified"] == best.Time["modified"] && len(l.Versions) > len(best.Versions)) {
			best = l
		}
	}
	return best
}
