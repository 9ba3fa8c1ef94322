package registry

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

// The named steps of Merge (mergePublish) and applyUpdate, one table each.

// pkgWith is a stored package "p" maintained by maintainers, with versions
// (each published) and unpublished versions (a time entry only).
func pkgWith(maintainers []string, versions []string, unpublished ...string) *Packument {
	p := NewPackument("p")
	p.Rev = "3-abc"
	for _, m := range maintainers {
		p.Maintainers = append(p.Maintainers, Person{Name: m})
	}
	for _, v := range versions {
		p.Versions[v] = Manifest(`{"name":"p","version":"` + v + `"}`)
		p.Time[v] = "2024-01-01T00:00:00.000Z"
	}
	for _, v := range unpublished {
		p.Time[v] = "2024-01-01T00:00:00.000Z"
	}
	if len(versions) > 0 {
		p.DistTags["latest"] = versions[len(versions)-1]
	}
	return p
}

func TestPublishTarget(t *testing.T) {
	alice := Person{Name: "alice"}
	for _, tc := range []struct {
		name            string
		stored          *Packument
		pkg             string
		teamWriter      bool
		wantKind        Kind // -1: accepted
		wantMaintainers string
	}{
		{name: "a new package is maintained by its publisher", pkg: "p", wantKind: -1, wantMaintainers: "alice"},
		{name: "a new package needs a valid new name", pkg: "http", wantKind: KindInvalid},
		{name: "a maintainer publishes", stored: pkgWith([]string{"bob", "alice"}, []string{"1.0.0"}), pkg: "p", wantKind: -1, wantMaintainers: "bob,alice"},
		{name: "anyone else is refused", stored: pkgWith([]string{"bob"}, []string{"1.0.0"}), pkg: "p", wantKind: KindForbidden},
		{name: "a team writer publishes without being a maintainer", stored: pkgWith([]string{"bob"}, []string{"1.0.0"}), pkg: "p", teamWriter: true, wantKind: -1, wantMaintainers: "bob"},
		{name: "a package without maintainers stays locked", stored: pkgWith(nil, []string{"1.0.0"}), pkg: "p", wantKind: KindForbidden},
		{name: "a team writer adopts a package without maintainers", stored: pkgWith(nil, []string{"1.0.0"}), pkg: "p", teamWriter: true, wantKind: -1, wantMaintainers: "alice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc, err := publishTarget(tc.stored, tc.pkg, alice, tc.teamWriter)
			if tc.wantKind != -1 {
				wantKind(t, err, tc.wantKind)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.stored != nil && doc != tc.stored {
				t.Error("a stored package is not published into")
			}
			var names []string
			for _, m := range doc.Maintainers {
				names = append(names, m.Name)
			}
			if got := strings.Join(names, ","); got != tc.wantMaintainers {
				t.Errorf("maintainers %s, want %s", got, tc.wantMaintainers)
			}
		})
	}
}

func TestCheckNewVersions(t *testing.T) {
	stored := pkgWith([]string{"alice"}, []string{"1.0.0"}, "0.9.0")
	for _, tc := range []struct {
		name     string
		versions []string
		wantKind Kind // -1: accepted
		reason   string
	}{
		{"new versions", []string{"1.0.1", "2.0.0-beta.1"}, -1, ""},
		{"a published version", []string{"1.0.0"}, KindForbidden, "previously published version 1.0.0"},
		{"a published version with build metadata", []string{"1.0.0+build.7"}, KindForbidden, "(1.0.0+build.7 is the same version number)"},
		{"an unpublished version", []string{"0.9.0"}, KindForbidden, "it was unpublished"},
		{"the same version twice", []string{"2.0.0", "2.0.0+x"}, KindInvalid, "are the same version"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var nvs []NewVersion
			for _, v := range tc.versions {
				nvs = append(nvs, NewVersion{Version: v})
			}
			err := checkNewVersions(stored, nvs)
			if tc.wantKind == -1 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			wantKind(t, err, tc.wantKind)
			if !strings.Contains(ReasonOf(err), tc.reason) {
				t.Errorf("reason %q does not say %q", ReasonOf(err), tc.reason)
			}
		})
	}
}

func TestPublishedManifest(t *testing.T) {
	nv := func(manifest string) NewVersion {
		var m map[string]json.RawMessage
		if err := json.Unmarshal([]byte(manifest), &m); err != nil {
			t.Fatal(err)
		}
		return NewVersion{Version: "1.0.0", Manifest: m, Shasum: "abc", Integrity: "sha512-xyz"}
	}
	for _, tc := range []struct {
		name       string
		manifest   string
		wantReadme string
		wantOK     bool
		want       map[string]string // field → JSON wanted
		gone       []string          // fields that must not be stored
		wantDist   map[string]string
	}{
		{name: "the registry's fields replace the client's",
			manifest: `{"name":"p","version":"1.0.0","_id":"evil","_npmUser":{"name":"mallory"},"maintainers":[{"name":"mallory"}],"_rev":"1-x","_attachments":{}}`,
			want:     map[string]string{"_id": `"p@1.0.0"`, "_npmUser": `{"name":"alice"}`, "maintainers": `[{"name":"alice"}]`},
			gone:     []string{"_rev", "_attachments", "readme"},
			wantDist: map[string]string{"shasum": `"abc"`, "integrity": `"sha512-xyz"`, "tarball": `"/p/-/p-1.0.0.tgz"`}},
		{name: "the readme is taken out and returned",
			manifest:   `{"name":"p","version":"1.0.0","readme":"# p"}`,
			wantReadme: "# p", wantOK: true, gone: []string{"readme"}},
		{name: "a readme that is not a string is dropped",
			manifest: `{"name":"p","version":"1.0.0","readme":42}`, gone: []string{"readme"}},
		{name: "client signatures and attestations never land; other dist fields stay",
			manifest: `{"name":"p","version":"1.0.0","dist":{"signatures":[{"sig":"forged"}],"attestations":{"url":"x"},"integrity":"sha256-weak","fileCount":3}}`,
			wantDist: map[string]string{"integrity": `"sha512-xyz"`, "fileCount": `3`, "signatures": "", "attestations": ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, readme, ok := publishedManifest("p", nv(tc.manifest), Person{Name: "alice"}, []Person{{Name: "alice"}})
			if readme != tc.wantReadme || ok != tc.wantOK {
				t.Errorf("readme %q, %v; want %q, %v", readme, ok, tc.wantReadme, tc.wantOK)
			}
			var got map[string]json.RawMessage
			if err := json.Unmarshal(m, &got); err != nil {
				t.Fatal(err)
			}
			for k, v := range tc.want {
				if string(got[k]) != v {
					t.Errorf("%s = %s, want %s", k, got[k], v)
				}
			}
			for _, k := range tc.gone {
				if _, has := got[k]; has {
					t.Errorf("%s is stored: %s", k, got[k])
				}
			}
			var dist map[string]json.RawMessage
			_ = json.Unmarshal(got["dist"], &dist)
			for k, v := range tc.wantDist {
				if string(dist[k]) != v {
					t.Errorf("dist.%s = %s, want %q", k, dist[k], v)
				}
			}
		})
	}
}

func TestApplyPublishTags(t *testing.T) {
	for _, tc := range []struct {
		name    string
		stored  *Packument
		tags    map[string]string
		publish []string
		want    map[string]string
	}{
		{"a new package without tags gets latest at its highest version", pkgWith(nil, nil), nil, []string{"1.0.0", "2.0.0", "1.5.0"}, map[string]string{"latest": "2.0.0"}},
		{"the publish's tags are set", pkgWith(nil, []string{"1.0.0"}), map[string]string{"beta": "2.0.0-beta.1"}, []string{"2.0.0-beta.1"}, map[string]string{"latest": "1.0.0", "beta": "2.0.0-beta.1"}},
		{"an existing latest stays unless the publish moves it", pkgWith(nil, []string{"1.0.0"}), nil, []string{"0.5.0"}, map[string]string{"latest": "1.0.0"}},
		{"the publish moves latest", pkgWith(nil, []string{"1.0.0"}), map[string]string{"latest": "1.1.0"}, []string{"1.1.0"}, map[string]string{"latest": "1.1.0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pub := &Publication{Name: "p", Tags: tc.tags}
			for _, v := range tc.publish {
				pub.Versions = append(pub.Versions, NewVersion{Version: v})
			}
			applyPublishTags(tc.stored, pub)
			if !equalTags(tc.stored.DistTags, tc.want) {
				t.Errorf("tags %v, want %v", tc.stored.DistTags, tc.want)
			}
		})
	}
}

func equalTags(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestStampPublish(t *testing.T) {
	const at = "2026-01-02T03:04:05.000Z"
	for _, tc := range []struct {
		name        string
		doc         *Packument
		isNew       bool
		access      string
		wantCreated string
		wantAccess  string
	}{
		{"a new package is created now, with the access asked for", pkgWith(nil, nil), true, AccessRestricted, at, `"restricted"`},
		{"a new package without an access keeps none", pkgWith(nil, nil), true, "", at, ""},
		{"an existing package keeps its creation time and access", pkgWith(nil, []string{"1.0.0"}), false, AccessRestricted, "2023-01-01T00:00:00.000Z", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !tc.isNew {
				tc.doc.Time["created"] = "2023-01-01T00:00:00.000Z"
			}
			tc.doc.Unpublished = json.RawMessage(`{"time":"x"}`)
			stampPublish(tc.doc, at, tc.isNew, tc.access)
			if tc.doc.Unpublished != nil {
				t.Error("still marked unpublished")
			}
			if tc.doc.Time["created"] != tc.wantCreated || tc.doc.Time["modified"] != at {
				t.Errorf("created %s modified %s, want %s and %s", tc.doc.Time["created"], tc.doc.Time["modified"], tc.wantCreated, at)
			}
			if got := string(tc.doc.Fields["access"]); got != tc.wantAccess {
				t.Errorf("access %s, want %s", got, tc.wantAccess)
			}
		})
	}
}

func TestCutReadme(t *testing.T) {
	long := strings.Repeat("a", MaxReadme-1) + "é" + "tail" // é straddles the limit
	for _, tc := range []struct {
		name string
		in   string
		want int // length kept
	}{
		{"short", "# hello", 7},
		{"exactly the limit", strings.Repeat("a", MaxReadme), MaxReadme},
		{"cut before a multi-byte character", long, MaxReadme - 1},
		{"cut at the limit", strings.Repeat("b", MaxReadme+10), MaxReadme},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := cutReadme(tc.in)
			if len(got) != tc.want || !utf8.ValidString(got) {
				t.Errorf("kept %d bytes (valid UTF-8: %v), want %d", len(got), utf8.ValidString(got), tc.want)
			}
		})
	}
}

func TestCheckUpdate(t *testing.T) {
	alice, bob := Identity{Name: "alice"}, Identity{Name: "bob"}
	for _, tc := range []struct {
		name     string
		policy   Policy
		user     Identity
		rev      string
		change   updateChange
		owners   int
		wantKind Kind // -1: allowed
	}{
		{name: "a star alone needs nothing", user: bob, wantKind: -1},
		{name: "a maintainer deprecates from any revision", user: alice, rev: "1-old", change: updateChange{deprecated: true}, wantKind: -1},
		{name: "a non-maintainer may not deprecate", user: bob, rev: "3-abc", change: updateChange{deprecated: true}, wantKind: KindForbidden},
		{name: "a tag change needs the current revision", user: alice, rev: "1-old", change: updateChange{tags: true}, wantKind: KindConflict},
		{name: "a tag change needs a maintainer", user: bob, rev: "3-abc", change: updateChange{tags: true}, wantKind: KindForbidden},
		{name: "removing versions needs the current revision", user: alice, rev: "", change: updateChange{removed: []string{"1.0.0"}}, wantKind: KindConflict},
		{name: "removing versions follows the unpublish policy", policy: Policy{Unpublish: UnpublishPolicy{Mode: UnpublishAdmins}, Admins: []string{"root"}},
			user: alice, rev: "3-abc", change: updateChange{removed: []string{"1.0.0"}}, wantKind: KindForbidden},
		{name: "an admin removes versions with the tag change npm sends along", policy: Policy{Unpublish: UnpublishPolicy{Mode: UnpublishAdmins}, Admins: []string{"root"}},
			user: Identity{Name: "root"}, rev: "3-abc", change: updateChange{removed: []string{"1.0.0"}, tags: true}, wantKind: -1},
		{name: "an owner change by a non-maintainer is refused before the revision is looked at", user: bob, rev: "1-old", change: updateChange{owners: true}, owners: 1, wantKind: KindForbidden},
		{name: "an owner change needs the current revision", user: alice, rev: "1-old", change: updateChange{owners: true}, owners: 1, wantKind: KindConflict},
		{name: "an owner change keeps a maintainer", user: alice, rev: "3-abc", change: updateChange{owners: true}, owners: 0, wantKind: KindForbidden},
		{name: "an owner change", user: alice, rev: "3-abc", change: updateChange{owners: true}, owners: 2, wantKind: -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestServiceWith(Config{Policy: tc.policy})
			err := s.checkUpdate(pkgWith([]string{"alice"}, []string{"1.0.0", "1.1.0"}), tc.user, tc.rev, tc.change, tc.owners)
			if tc.wantKind == -1 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			wantKind(t, err, tc.wantKind)
		})
	}
}

func TestReplaceTags(t *testing.T) {
	for _, tc := range []struct {
		name     string
		tags     map[string]string
		wantKind Kind // -1: replaced
	}{
		{"a valid set", map[string]string{"latest": "1.1.0", "old": "1.0.0"}, -1},
		{"a tag naming a missing version", map[string]string{"latest": "1.1.0", "next": "9.9.9"}, KindInvalid},
		{"no latest while versions exist", map[string]string{"old": "1.0.0"}, KindForbidden},
		{"a tag that is a version range", map[string]string{"latest": "1.1.0", "^1": "1.0.0"}, KindInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := pkgWith([]string{"alice"}, []string{"1.0.0", "1.1.0"})
			err := replaceTags(doc, tc.tags)
			if tc.wantKind != -1 {
				wantKind(t, err, tc.wantKind)
				if doc.DistTags["latest"] != "1.1.0" || len(doc.DistTags) != 1 {
					t.Errorf("refused tags changed the document: %v", doc.DistTags)
				}
				return
			}
			if err != nil || !equalTags(doc.DistTags, tc.tags) {
				t.Errorf("tags %v, %v; want %v", doc.DistTags, err, tc.tags)
			}
		})
	}
}
