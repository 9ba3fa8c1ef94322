package registry

import (
	"encoding/json"
	"reflect"
	"testing"
)

// The named steps of MergeLeaves, each on its own.

func TestMergedTimes(t *testing.T) {
	tests := []struct {
		name   string
		leaves []map[string]string
		want   map[string]string
	}{
		{"one side is itself", []map[string]string{{"created": "a", "modified": "b", "1.0.0": "c"}},
			map[string]string{"created": "a", "modified": "b", "1.0.0": "c"}},
		{"earliest publish and creation, latest modification",
			[]map[string]string{{"created": "2", "modified": "2", "1.0.0": "2"}, {"created": "1", "modified": "3", "1.0.0": "3"}},
			map[string]string{"created": "1", "modified": "3", "1.0.0": "2"}},
		{"a version one side lacks is kept",
			[]map[string]string{{"modified": "1"}, {"modified": "1", "2.0.0": "5"}},
			map[string]string{"modified": "1", "2.0.0": "5"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var all []*Packument
			for _, tm := range tc.leaves {
				p := NewPackument("p")
				p.Time = tm
				all = append(all, p)
			}
			if got := mergedTimes(all); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("mergedTimes = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestUnpublishedVersions(t *testing.T) {
	tests := []struct {
		name   string
		leaves []leafSpec
		want   map[string]bool
	}{
		{"none", []leafSpec{{versions: []string{"1.0.0"}}}, map[string]bool{}},
		{"unpublished on one side counts", []leafSpec{{versions: []string{"1.0.0", "2.0.0"}}, {versions: []string{"1.0.0"}, unpublished: []string{"2.0.0"}}},
			map[string]bool{"2.0.0": true}},
		{"created and modified are no versions", []leafSpec{{}}, map[string]bool{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var all []*Packument
			for _, sp := range tc.leaves {
				all = append(all, makeLeaf(sp))
			}
			if got := unpublishedVersions(all); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("unpublishedVersions = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestMergedChangesAndPriorReports(t *testing.T) {
	a, b, c := NewPackument("p"), NewPackument("p"), NewPackument("p")
	r1 := VersionConflict{Version: "1.0.0", Kept: "k", Dropped: "d1"}
	r2 := VersionConflict{Version: "1.0.0", Kept: "k", Dropped: "d2"}
	a.Meta = &Meta{Changed: map[string]string{"access": "1", "maintainers": "5"}, Conflicts: []VersionConflict{r1}}
	b.Meta = &Meta{Changed: map[string]string{"access": "3"}, Conflicts: []VersionConflict{r1, r2}}
	// c has no record (written before the records).
	if got, want := mergedChanges([]*Packument{a, b, c}), map[string]string{"access": "3", "maintainers": "5"}; !reflect.DeepEqual(got, want) {
		t.Errorf("mergedChanges = %v, want %v", got, want)
	}
	if got, want := priorReports([]*Packument{c, a, b}), []VersionConflict{r1, r2}; !reflect.DeepEqual(got, want) {
		t.Errorf("priorReports = %v, want %v (each report once)", got, want)
	}
	if got := priorReports([]*Packument{c}); got != nil {
		t.Errorf("priorReports without records = %v", got)
	}
}

func TestEarliestCopy(t *testing.T) {
	unsigned := mustJSON(map[string]any{"version": "1.0.0", "dist": map[string]any{"integrity": "sha512-x"}})
	signed := mustJSON(map[string]any{"version": "1.0.0", "dist": map[string]any{"integrity": "sha512-x",
		"signatures": []map[string]string{{"keyid": "k", "sig": "s"}}}})
	side := func(rev, at string, m Manifest) *Packument {
		p := NewPackument("p")
		p.Rev = rev
		p.Versions["1.0.0"], p.Time["1.0.0"] = m, at
		return p
	}
	tests := []struct {
		name    string
		all     []*Packument
		wantRev string
	}{
		{"earlier publish wins", []*Packument{side("a", "2", unsigned), side("b", "1", unsigned)}, "b"},
		{"on a tie the first side", []*Packument{side("a", "1", unsigned), side("b", "1", unsigned)}, "a"},
		{"on a tie the signed copy", []*Packument{side("a", "1", unsigned), side("b", "1", signed)}, "b"},
		{"a side without the version is skipped", []*Packument{NewPackument("p"), side("b", "9", unsigned)}, "b"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := earliestCopy(tc.all, "1.0.0"); got == nil || got.Rev != tc.wantRev {
				t.Errorf("earliestCopy picked %v, want rev %s", got, tc.wantRev)
			}
		})
	}
}

func TestLastTombstone(t *testing.T) {
	tomb := func(modified, rec string) *Packument {
		p := NewPackument("p")
		p.Time["modified"] = modified
		if rec != "" {
			p.Unpublished = json.RawMessage(rec)
		}
		return p
	}
	tests := []struct {
		name string
		all  []*Packument
		want string
	}{
		{"the latest record", []*Packument{tomb("2", `"old"`), tomb("3", `"new"`)}, `"new"`},
		{"the only record, even if older", []*Packument{tomb("1", `"only"`), tomb("3", "")}, `"only"`},
		{"no record", []*Packument{tomb("1", "")}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(lastTombstone(tc.all, "3")); got != tc.want {
				t.Errorf("lastTombstone = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestLeafMergeLast(t *testing.T) {
	w, x, y := makeLeaf(leafSpec{rev: "1-w"}), makeLeaf(leafSpec{rev: "1-x", changed: map[string]string{"access": "5"}}),
		makeLeaf(leafSpec{rev: "1-y", changed: map[string]string{"access": "7", "maintainers": "1"}})
	m := newLeafMerge([]*Packument{w, y, x})
	if m.others[0] != x || m.others[1] != y {
		t.Fatalf("others not in revision order: %s %s", m.others[0].Rev, m.others[1].Rev)
	}
	for key, want := range map[string]*Packument{"access": y, "maintainers": y, "dist-tags/latest": w} {
		if got := m.last(key); got != want {
			t.Errorf("last(%q) = %s, want %s", key, got.Rev, want.Rev)
		}
	}
}
