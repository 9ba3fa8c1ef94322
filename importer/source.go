// Package importer copies packages and accounts from another registry (a
// Verdaccio storage folder, or any npm registry through its API) into
// couchnpm, through the registry's own write path (registry.Service.Import).
package importer

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/couchnpm/couchnpm/registry"
)

// Source is where packages come from.
type Source interface {
	// Names lists the packages to copy, sorted.
	Names(ctx context.Context) ([]string, error)
	// Packument reads one package's document.
	Packument(ctx context.Context, name string) (*Packument, error)
	// Tarball reads one version's tarball, at most maxTarball bytes.
	Tarball(ctx context.Context, p *Packument, version string) ([]byte, error)
}

// Packument is the part of a source's package document an import uses.
type Packument struct {
	Name        string                     `json:"name"`
	DistTags    map[string]string          `json:"dist-tags"`
	Versions    map[string]json.RawMessage `json:"versions"`
	Time        map[string]json.RawMessage `json:"time"`
	Readme      string                     `json:"readme"`
	Maintainers json.RawMessage            `json:"maintainers"`

	// Verdaccio's bookkeeping: tarballs published to it (file → version)
	// and tarballs it cached from an uplink (file → URL).
	Attachments map[string]struct {
		Version string `json:"version"`
	} `json:"_attachments"`
	Distfiles map[string]json.RawMessage `json:"_distfiles"`

	// Restricted is set by a source that read the package with
	// credentials it cannot be read without.
	Restricted bool `json:"-"`
}

// maxTarball bounds one tarball read into memory (the write carries it
// inline, as a publish does).
const maxTarball = 256 << 20

// dist reads a manifest's dist fields.
func dist(m json.RawMessage) (tarball, integrity, shasum string) {
	var v struct {
		Dist struct {
			Tarball   string `json:"tarball"`
			Integrity string `json:"integrity"`
			Shasum    string `json:"shasum"`
		} `json:"dist"`
	}
	_ = json.Unmarshal(m, &v)
	return v.Dist.Tarball, v.Dist.Integrity, v.Dist.Shasum
}

// timeOf returns the source's time entry key as a string ("" when absent
// or not a string).
func (p *Packument) timeOf(key string) string {
	var s string
	if raw, ok := p.Time[key]; ok && json.Unmarshal(raw, &s) == nil {
		return s
	}
	return ""
}

// maintainerNames reads the maintainers of the package and of its
// versions (objects with a name, or "name <email>" strings), and the
// versions' publishers, sorted and without duplicates.
func (p *Packument) maintainerNames() []string {
	seen := map[string]bool{}
	var out []string
	add := func(raw json.RawMessage) {
		var list []json.RawMessage
		if json.Unmarshal(raw, &list) != nil {
			var one json.RawMessage
			if json.Unmarshal(raw, &one) != nil || len(one) == 0 || one[0] != '{' {
				return
			}
			list = []json.RawMessage{one}
		}
		for _, item := range list {
			var person registry.Person
			var s string
			name := ""
			if json.Unmarshal(item, &person) == nil {
				name = person.Name
			} else if json.Unmarshal(item, &s) == nil {
				name, _, _ = strings.Cut(s, " <")
			}
			name = strings.TrimSpace(name)
			if name != "" && !seen[name] {
				seen[name] = true
				out = append(out, name)
			}
		}
	}
	add(p.Maintainers)
	for _, v := range sortedVersions(p.Versions) {
		var m struct {
			Maintainers json.RawMessage `json:"maintainers"`
			NpmUser     json.RawMessage `json:"_npmUser"`
		}
		if json.Unmarshal(p.Versions[v], &m) == nil {
			add(m.Maintainers)
			add(m.NpmUser)
		}
	}
	return out
}

func sortedVersions(vs map[string]json.RawMessage) []string {
	out := make([]string, 0, len(vs))
	for v := range vs {
		out = append(out, v)
	}
	sortVersions(out)
	return out
}

func sortVersions(vs []string) {
	sort.Slice(vs, func(i, j int) bool { return registry.CompareVersions(vs[i], vs[j]) < 0 })
}

// errf is a refusal reason.
func errf(format string, args ...any) error { return fmt.Errorf(format, args...) }
