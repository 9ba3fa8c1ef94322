package registry

import (
	"context"
	"encoding/json"
	"strings"
)

// Provenance through the mirror. A mirrored version the upstream published
// with attestations (dist.attestations {url, provenance}) keeps them; the
// attestation bundles are fetched from the upstream once, stored in
// CouchDB, and served at AttestationsPath, where the read path points
// dist.attestations.url. npm fetches that URL's path from the registry it
// installs from, so provenance checks keep working behind the mirror when
// the upstream cannot be reached.

// AttestationSource fetches and keeps the attestations of mirrored
// versions (see package replication).
type AttestationSource interface {
	// Attestations returns the JSON document {"attestations": [...]} of
	// name@version, whose upstream copy is at source; KindNotFound when
	// there is none.
	Attestations(ctx context.Context, name, version, source string) ([]byte, error)
}

// AttestationsPath is the registry-relative path of a version's
// attestations (the scope's slash escaped, as in packument URLs).
func AttestationsPath(name, version string) string {
	return "/-/npm/v1/attestations/" + strings.Replace(name, "/", "%2f", 1) + "@" + version
}

// ParseAttestationsSpec splits "name@version" (the name may be scoped).
func ParseAttestationsSpec(spec string) (name, version string, err error) {
	i := strings.LastIndex(spec, "@")
	if i <= 0 {
		return "", "", E(KindInvalid, "want name@version, got %q", spec)
	}
	name, version = spec[:i], spec[i+1:]
	if err := ValidateName(name); err != nil {
		return "", "", err
	}
	if err := ValidateVersion(version); err != nil {
		return "", "", err
	}
	return name, version, nil
}

// attestationsSource is where a manifest says its attestations are.
func attestationsSource(m Manifest) string {
	var v struct {
		Dist struct {
			Attestations *struct {
				URL string `json:"url"`
			} `json:"attestations"`
		} `json:"dist"`
	}
	if json.Unmarshal(m, &v) != nil || v.Dist.Attestations == nil {
		return ""
	}
	return v.Dist.Attestations.URL
}

// Attestations returns name@version's attestations as user may read them:
// only versions that came with attestations from the upstream have any.
func (s *Service) Attestations(ctx context.Context, user Identity, name, version string) ([]byte, error) {
	p, err := s.Packument(ctx, user, name)
	if err != nil {
		return nil, err
	}
	m, ok := p.Versions[version]
	if !ok {
		return nil, E(KindNotFound, "version not found: %s@%s", name, version)
	}
	src := attestationsSource(m)
	if src == "" || s.attestations == nil {
		return nil, E(KindNotFound, "%s@%s has no attestations", name, version)
	}
	return s.attestations.Attestations(ctx, name, version, src)
}
