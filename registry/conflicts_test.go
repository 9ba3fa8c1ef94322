package registry

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// leaf builds a leaf revision of package "p": versions as "1.0.0" or
// "1.0.0=content" (content decides the integrity), each published at
// "t<version>" unless times says otherwise.
type leafSpec struct {
	rev         string
	versions    []string
	unpublished []string          // versions with a time entry and no manifest
	times       map[string]string // overrides of time entries
	tags        map[string]string
	changed     map[string]string
	maintainers []string
	deprecated  map[string]string
	access      string
}

func makeLeaf(sp leafSpec) *Packument {
	p := NewPackument("p")
	p.Rev = sp.rev
	p.Time["created"] = "2026-01-01T00:00:00.000Z"
	p.Time["modified"] = "2026-01-01T00:00:00.000Z"
	for _, v := range sp.versions {
		v, content, _ := strings.Cut(v, "=")
		if content == "" {
			content = "same"
		}
		m := map[string]any{"name": "p", "version": v, "dist": map[string]any{"integrity": "sha512-" + content + v}}
		if d, ok := sp.deprecated[v]; ok {
			m["deprecated"] = d
		}
		p.Versions[v] = mustJSON(m)
		p.Time[v] = "2026-01-02T00:00:00.000Z"
		p.Attachments[TarballName("p", v)] = Attachment{Stub: true, Digest: "md5-" + content + v}
	}
	for _, v := range sp.unpublished {
		p.Time[v] = "2026-01-02T00:00:00.000Z"
	}
	for k, t := range sp.times {
		p.Time[k] = t
	}
	for t, v := range sp.tags {
		p.DistTags[t] = v
	}
	if sp.tags == nil && len(p.Versions) > 0 {
		p.DistTags["latest"] = HighestVersion(p.SortedVersions())
	}
	for _, m := range sp.maintainers {
		p.Maintainers = append(p.Maintainers, Person{Name: m})
	}
	if sp.access != "" {
		p.Fields["access"] = mustJSON(sp.access)
	}
	if sp.changed != nil {
		p.Meta = &Meta{Changed: sp.changed}
	}
	return p
}

func TestMergeLeaves(t *testing.T) {
	tests := []struct {
		name   string
		leaves []leafSpec
		check  func(t *testing.T, m *Packument)
	}{
		{
			name: "versions published on two sides are the union",
			leaves: []leafSpec{
				{rev: "3-b", versions: []string{"1.0.0", "1.2.0"}},
				{rev: "3-a", versions: []string{"1.0.0", "1.1.0"}},
			},
			check: func(t *testing.T, m *Packument) {
				wantVersions(t, m, "1.0.0", "1.1.0", "1.2.0")
				if a := m.Attachments["p-1.1.0.tgz"]; a.FromRev != "3-a" {
					t.Errorf("1.1.0's tarball must be copied from 3-a, got %+v", a)
				}
				if a := m.Attachments["p-1.2.0.tgz"]; a.FromRev != "" {
					t.Errorf("1.2.0's tarball is the winner's, got %+v", a)
				}
			},
		},
		{
			name: "a version unpublished on one side stays unpublished and burned",
			leaves: []leafSpec{
				{rev: "3-b", versions: []string{"1.0.0", "1.1.0"}},
				{rev: "3-a", versions: []string{"1.0.0"}, unpublished: []string{"1.1.0"}},
			},
			check: func(t *testing.T, m *Packument) {
				wantVersions(t, m, "1.0.0")
				if m.Time["1.1.0"] == "" {
					t.Error("the unpublished version's time entry (its burn record) is gone")
				}
				if _, ok := m.Attachments["p-1.1.0.tgz"]; ok {
					t.Error("the unpublished version's tarball is kept")
				}
				if m.DistTags["latest"] != "1.0.0" {
					t.Errorf("latest = %q, want 1.0.0", m.DistTags["latest"])
				}
			},
		},
		{
			name: "the same version with different content keeps the earliest publish and reports the other",
			leaves: []leafSpec{
				{rev: "2-b", versions: []string{"1.0.0=bbb"}, times: map[string]string{"1.0.0": "2026-01-03T00:00:00.000Z"}},
				{rev: "2-a", versions: []string{"1.0.0=aaa"}, times: map[string]string{"1.0.0": "2026-01-02T00:00:00.000Z"}},
			},
			check: func(t *testing.T, m *Packument) {
				if got := integrityOf(m.Versions["1.0.0"]); got != "sha512-aaa1.0.0" {
					t.Errorf("kept %s, want the earlier publish", got)
				}
				if m.Meta == nil || len(m.Meta.Conflicts) != 1 {
					t.Fatalf("want one reported conflict, got %+v", m.Meta)
				}
				r := m.Meta.Conflicts[0]
				if r.Dropped != "sha512-bbb1.0.0" || r.DroppedRev != "2-b" || !strings.Contains(r.Attachment, asideMarker) {
					t.Errorf("report %+v", r)
				}
				if a := m.Attachments[r.Attachment]; a.FromRev != "2-b" || a.FromName != "p-1.0.0.tgz" {
					t.Errorf("the dropped tarball must be kept aside, copied from p-1.0.0.tgz of 2-b: %+v", a)
				}
				if a := m.Attachments["p-1.0.0.tgz"]; a.FromRev != "2-a" {
					t.Errorf("the served tarball must be the kept publish's: %+v", a)
				}
				if m.Time["1.0.0"] != "2026-01-02T00:00:00.000Z" {
					t.Errorf("time[1.0.0] = %s", m.Time["1.0.0"])
				}
			},
		},
		{
			name: "dist-tags merge by their own last change",
			leaves: []leafSpec{
				{rev: "4-b", versions: []string{"1.0.0", "2.0.0"}, tags: map[string]string{"latest": "1.0.0", "beta": "2.0.0"},
					changed: map[string]string{"dist-tags/latest": "2026-02-01T00:00:00.000Z", "dist-tags/beta": "2026-01-05T00:00:00.000Z"}},
				{rev: "4-a", versions: []string{"1.0.0", "2.0.0"}, tags: map[string]string{"latest": "2.0.0"},
					changed: map[string]string{"dist-tags/latest": "2026-01-10T00:00:00.000Z", "dist-tags/beta": "2026-01-20T00:00:00.000Z"}},
			},
			check: func(t *testing.T, m *Packument) {
				want := map[string]string{"latest": "1.0.0"} // beta was removed later than it was set
				if !reflect.DeepEqual(m.DistTags, want) {
					t.Errorf("dist-tags %v, want %v", m.DistTags, want)
				}
				if m.Meta.Changed["dist-tags/beta"] != "2026-01-20T00:00:00.000Z" {
					t.Errorf("changed %v", m.Meta.Changed)
				}
			},
		},
		{
			name: "maintainers, access and deprecations merge by their last change",
			leaves: []leafSpec{
				{rev: "5-b", versions: []string{"1.0.0"}, maintainers: []string{"alice"}, access: "public",
					deprecated: map[string]string{"1.0.0": "old"},
					changed:    map[string]string{"maintainers": "2026-01-03T00:00:00.000Z", "access": "2026-01-09T00:00:00.000Z", "deprecated/1.0.0": "2026-01-02T00:00:00.000Z"}},
				{rev: "5-a", versions: []string{"1.0.0"}, maintainers: []string{"alice", "bob"}, access: "restricted",
					changed: map[string]string{"maintainers": "2026-01-04T00:00:00.000Z", "access": "2026-01-08T00:00:00.000Z", "deprecated/1.0.0": "2026-01-07T00:00:00.000Z"}},
			},
			check: func(t *testing.T, m *Packument) {
				if len(m.Maintainers) != 2 {
					t.Errorf("maintainers %v, want alice and bob (the later change)", m.Maintainers)
				}
				if AccessOf(m) != AccessPublic {
					t.Errorf("access %s, want public (the later change)", AccessOf(m))
				}
				if d := deprecationOf(m.Versions["1.0.0"]); d != "" {
					t.Errorf("deprecation %q, want none (undeprecated later)", d)
				}
			},
		},
		{
			name: "time.modified is the latest and created the earliest",
			leaves: []leafSpec{
				{rev: "2-b", versions: []string{"1.0.0"}, times: map[string]string{"modified": "2026-03-01T00:00:00.000Z", "created": "2026-01-02T00:00:00.000Z"}},
				{rev: "2-a", versions: []string{"1.0.0"}, times: map[string]string{"modified": "2026-04-01T00:00:00.000Z"}},
			},
			check: func(t *testing.T, m *Packument) {
				if m.Time["modified"] != "2026-04-01T00:00:00.000Z" || m.Time["created"] != "2026-01-01T00:00:00.000Z" {
					t.Errorf("time %v", m.Time)
				}
			},
		},
		{
			name: "a whole-package unpublish on one side and a new version on the other",
			leaves: []leafSpec{
				{rev: "3-b", unpublished: []string{"1.0.0"}},
				{rev: "3-a", versions: []string{"1.0.0", "1.1.0"}},
			},
			check: func(t *testing.T, m *Packument) {
				wantVersions(t, m, "1.1.0")
				if m.IsTombstone() {
					t.Error("a version published after the unpublish keeps the package alive")
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			leaves := make([]*Packument, len(tc.leaves))
			for i, sp := range tc.leaves {
				leaves[i] = makeLeaf(sp)
			}
			m := MergeLeaves(leaves)
			tc.check(t, m)
			if m.Rev != leaves[0].Rev {
				t.Errorf("the merge must be written on the winner's revision %s, got %s", leaves[0].Rev, m.Rev)
			}
			// The rendered packument never shows the bookkeeping.
			out, err := Render{BaseURL: "http://r"}.Full(m, false)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(out), `"couchnpm"`) {
				t.Errorf("rendered packument shows couchnpm's bookkeeping: %s", out)
			}
		})
	}
}

func wantVersions(t *testing.T, m *Packument, want ...string) {
	t.Helper()
	if got := m.SortedVersions(); !reflect.DeepEqual(got, want) {
		t.Errorf("versions %v, want %v", got, want)
	}
}

// TestMergeLeavesConverges: resolvers on several instances see the leaves
// in any order and may merge a merge again; they must agree, and a merge
// of the written merge with a leftover loser changes nothing.
func TestMergeLeavesConverges(t *testing.T) {
	w := makeLeaf(leafSpec{rev: "3-c", versions: []string{"1.0.0", "1.3.0"}})
	a := makeLeaf(leafSpec{rev: "3-a", versions: []string{"1.0.0", "1.1.0=x"}, changed: map[string]string{"dist-tags/latest": "2026-01-05T00:00:00.000Z"}})
	b := makeLeaf(leafSpec{rev: "3-b", versions: []string{"1.0.0", "1.1.0=y", "1.2.0"}, times: map[string]string{"1.1.0": "2026-01-01T12:00:00.000Z"}})
	m1 := MergeLeaves([]*Packument{w, a, b})
	m2 := MergeLeaves([]*Packument{w, b, a})
	j1, _ := json.Marshal(m1)
	j2, _ := json.Marshal(m2)
	if string(j1) != string(j2) {
		t.Fatalf("the order of the losing leaves changed the merge:\n%s\n%s", j1, j2)
	}
	if !MergeChanges(w, m1) {
		t.Fatal("the merge adds versions: it must be written")
	}
	// Written: attachments become stubs of the new revision.
	written := *m1
	written.Rev = "4-m"
	written.Attachments = map[string]Attachment{}
	for k, att := range m1.Attachments {
		att.FromRev = ""
		written.Attachments[k] = att
	}
	for _, loser := range []*Packument{a, b} {
		again := MergeLeaves([]*Packument{&written, loser})
		if MergeChanges(&written, again) {
			ja, _ := json.Marshal(again)
			jw, _ := json.Marshal(&written)
			t.Errorf("merging the merge with %s changed it:\n%s\n%s", loser.Rev, jw, ja)
		}
	}
	if n := len(m1.Meta.Conflicts); n != 1 {
		t.Errorf("want 1 reported conflict (1.1.0), got %d", n)
	}
}

// TestStampChanges: each write records when it changed each mergeable part.
func TestStampChanges(t *testing.T) {
	p := makeLeaf(leafSpec{rev: "1-a", versions: []string{"1.0.0", "1.1.0"}, maintainers: []string{"alice"}})
	before := snapshotOf(p)
	p.DistTags["beta"] = "1.1.0"
	p.Maintainers = append(p.Maintainers, Person{Name: "bob"})
	p.Versions["1.0.0"] = withDeprecationOf(p.Versions["1.0.0"], mustJSON(map[string]any{"deprecated": "use 1.1"}))
	p.Users["carol"] = true
	p.stampChanges(before, "T")
	want := map[string]string{"dist-tags/beta": "T", "maintainers": "T", "deprecated/1.0.0": "T", "users/carol": "T"}
	if !reflect.DeepEqual(p.Meta.Changed, want) {
		t.Errorf("changed %v, want %v", p.Meta.Changed, want)
	}
	q := makeLeaf(leafSpec{rev: "1-a", versions: []string{"1.0.0"}})
	before = snapshotOf(q)
	q.stampChanges(before, "T")
	if q.Meta != nil {
		t.Errorf("nothing changed, yet %v was recorded", q.Meta)
	}
}

func TestMirrorWinner(t *testing.T) {
	old := makeLeaf(leafSpec{rev: "9-z", versions: []string{"1.0.0"}, times: map[string]string{"modified": "2026-01-01T00:00:00.000Z"}})
	newer := makeLeaf(leafSpec{rev: "2-a", versions: []string{"1.0.0", "1.1.0"}, times: map[string]string{"modified": "2026-02-01T00:00:00.000Z"}})
	if got := MirrorWinner([]*Packument{old, newer}); got != newer {
		t.Errorf("the upstream's latest modification must win, got %s", got.Rev)
	}
}
