package registry

import (
	"encoding/json"
	"testing"
)

// A change to any part of a Clone leaves the original as it was.
func TestPackumentClone(t *testing.T) {
	orig := func() *Packument {
		return &Packument{
			ID: "p", Rev: "1-a", Name: "p",
			DistTags:    map[string]string{"latest": "1.0.0"},
			Versions:    map[string]Manifest{"1.0.0": Manifest(`{"version":"1.0.0"}`)},
			Time:        map[string]string{"1.0.0": "2020-01-01T00:00:00Z"},
			Unpublished: json.RawMessage(`{"x":1}`),
			Maintainers: []Person{{Name: "alice"}},
			Users:       map[string]bool{"bob": true},
			Attachments: map[string]Attachment{"p-1.0.0.tgz": {Stub: true}},
			Fields:      map[string]json.RawMessage{"readme": json.RawMessage(`"hi"`)},
			Meta:        &Meta{Changed: map[string]string{"maintainers": "t"}, Conflicts: []VersionConflict{{Version: "1.0.0"}}},
			Conflicts:   []string{"1-b"},
		}
	}
	for _, tc := range []struct {
		name   string
		change func(*Packument)
	}{
		{"dist-tags", func(p *Packument) { p.DistTags["latest"] = "2.0.0" }},
		{"versions", func(p *Packument) { p.Versions["2.0.0"] = Manifest(`{}`) }},
		{"time", func(p *Packument) { p.Time["modified"] = "now" }},
		{"unpublished", func(p *Packument) { p.Unpublished[1] = 'y' }},
		{"maintainers", func(p *Packument) { p.Maintainers[0].Name = "mallory" }},
		{"users", func(p *Packument) { p.Users["eve"] = true }},
		{"attachments", func(p *Packument) { delete(p.Attachments, "p-1.0.0.tgz") }},
		{"fields", func(p *Packument) { p.Fields["readme"] = json.RawMessage(`"changed"`) }},
		{"meta changed", func(p *Packument) { p.Meta.Changed["access"] = "t2" }},
		{"meta conflicts", func(p *Packument) { p.Meta.Conflicts[0].Kept = "sha512-x" }},
		{"conflicts", func(p *Packument) { p.Conflicts[0] = "9-z" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := orig()
			before, _ := json.Marshal(p)
			beforeMeta, _ := json.Marshal(p.Meta)
			c := p.Clone()
			tc.change(c)
			after, _ := json.Marshal(p)
			afterMeta, _ := json.Marshal(p.Meta)
			if string(before) != string(after) || string(beforeMeta) != string(afterMeta) || p.Conflicts[0] != "1-b" {
				t.Errorf("changing the clone's %s changed the original", tc.name)
			}
		})
	}
	if (*Packument)(nil).Clone() != nil {
		t.Error("nil.Clone() != nil")
	}
}
