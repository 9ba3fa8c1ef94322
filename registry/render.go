package registry

import (
	"encoding/json"
	"strings"
)

// abbreviatedFields are the version fields of the abbreviated ("corgi")
// packument: npm's documented set plus libc, which npm ≥ 10 reads for
// platform filtering.
var abbreviatedFields = []string{
	"name", "version", "deprecated", "dependencies", "acceptDependencies",
	"optionalDependencies", "devDependencies", "bundleDependencies", "bundledDependencies",
	"peerDependencies", "peerDependenciesMeta", "bin", "directories", "dist", "engines",
	"_hasShrinkwrap", "hasInstallScript", "funding", "cpu", "os", "libc",
}

// Render holds what the read path needs to turn a stored packument into what
// clients see.
type Render struct {
	BaseURL string // public URL of the registry, no trailing slash
}

// Full renders the full packument. CouchDB internals (_rev, _attachments)
// are left out unless withRev is set (npm's ?write=true read-modify-write
// flows need the revision).
func (r Render) Full(p *Packument, withRev bool) ([]byte, error) {
	out := *p
	if !withRev {
		out.Rev = ""
	}
	out.Attachments = nil
	out.Meta = nil // couchnpm's own bookkeeping
	// An odd-shaped _rev or _attachments (upstream data) stays raw in
	// Fields (Packument.UnmarshalJSON); it must not slip out that way. The
	// operator's claim record (who, why) is not the clients' business.
	_, claimed := p.Fields[fieldClaim]
	if _, ok := p.Fields["_attachments"]; ok || claimed || (!withRev && p.Fields["_rev"] != nil) {
		out.Fields = make(map[string]json.RawMessage, len(p.Fields))
		for k, v := range p.Fields {
			if k != "_attachments" && k != fieldClaim && (withRev || k != "_rev") {
				out.Fields[k] = v
			}
		}
	}
	out.Versions = make(map[string]Manifest, len(p.Versions))
	for v, m := range p.Versions {
		fixed, err := r.rewriteTarball(p.Name, v, m, nil)
		if err != nil {
			return nil, err
		}
		out.Versions[v] = fixed
	}
	return json.Marshal(&out)
}

// Abbreviated renders the install-time packument.
func (r Render) Abbreviated(p *Packument) ([]byte, error) {
	versions := make(map[string]json.RawMessage, len(p.Versions))
	for v, m := range p.Versions {
		fixed, err := r.rewriteTarball(p.Name, v, m, abbreviatedFields)
		if err != nil {
			return nil, err
		}
		versions[v] = fixed
	}
	out := map[string]any{
		"name":      p.Name,
		"dist-tags": p.DistTags,
		"versions":  versions,
	}
	if mod := p.Time["modified"]; mod != "" {
		out["modified"] = mod
	}
	return json.Marshal(out)
}

// Version renders one version's manifest.
func (r Render) Version(p *Packument, version string) ([]byte, error) {
	return r.rewriteTarball(p.Name, version, p.Versions[version], nil)
}

// rewriteTarball points dist.tarball at this registry and, when keep is not
// nil, drops every field not in keep.
func (r Render) rewriteTarball(name, version string, m Manifest, keep []string) (json.RawMessage, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(m, &fields); err != nil || fields == nil {
		return nil, Wrap(KindInternal, err, "stored manifest %s@%s is not an object", name, version)
	}
	if keep != nil {
		picked := make(map[string]json.RawMessage, len(keep))
		for _, k := range keep {
			if v, ok := fields[k]; ok {
				picked[k] = v
			}
		}
		fields = picked
	}
	var dist map[string]json.RawMessage
	if json.Unmarshal(fields["dist"], &dist) == nil && dist != nil {
		dist["tarball"] = mustJSON(r.BaseURL + TarballPath(name, version))
		// Attestations (mirrored versions) are served from here too.
		var att map[string]json.RawMessage
		if json.Unmarshal(dist["attestations"], &att) == nil && att != nil {
			if _, ok := att["url"]; ok {
				att["url"] = mustJSON(r.BaseURL + AttestationsPath(name, version))
				dist["attestations"] = mustJSON(att)
			}
		}
		fields["dist"] = mustJSON(dist)
	}
	return json.Marshal(fields)
}

// ResolveVersion finds the version a request names: an exact version (v
// prefix allowed) or, failing that, a dist-tag. A version always wins, so
// a version-like tag in old data cannot shadow a real version.
func ResolveVersion(p *Packument, spec string) (string, error) {
	if _, ok := p.Versions[spec]; ok {
		return spec, nil
	}
	if cleaned := strings.TrimPrefix(spec, "v"); cleaned != spec {
		if _, ok := p.Versions[cleaned]; ok {
			return cleaned, nil
		}
	}
	if v, ok := p.DistTags[spec]; ok {
		if _, ok := p.Versions[v]; ok {
			return v, nil
		}
	}
	return "", E(KindNotFound, "version not found: %s@%s", p.Name, spec)
}
