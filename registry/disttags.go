package registry

import "context"

// DistTags returns a package's tags (npm dist-tag ls).
func (s *Service) DistTags(ctx context.Context, user Identity, name string) (map[string]string, error) {
	p, err := s.Packument(ctx, user, name)
	if err != nil {
		return nil, err
	}
	return p.DistTags, nil
}

// SetDistTag points tag at an existing version (npm dist-tag add);
// maintainers and read-write teams only.
func (s *Service) SetDistTag(ctx context.Context, user Identity, name, tag, version string) error {
	if err := ValidateTag(tag); err != nil {
		return err
	}
	return s.modify(ctx, user, name, func(doc *Packument) error {
		if err := s.requireWriter(ctx, user, doc); err != nil {
			return err
		}
		if _, ok := doc.Versions[version]; !ok {
			return E(KindInvalid, "cannot tag %s@%s: no such version", name, version)
		}
		doc.DistTags[tag] = version
		return nil
	})
}

// DeleteDistTag removes a tag (npm dist-tag rm); "latest" stays while the
// package has versions, since installs resolve through it.
func (s *Service) DeleteDistTag(ctx context.Context, user Identity, name, tag string) error {
	return s.modify(ctx, user, name, func(doc *Packument) error {
		if err := s.requireWriter(ctx, user, doc); err != nil {
			return err
		}
		if _, ok := doc.DistTags[tag]; !ok {
			return E(KindNotFound, "%s has no dist-tag %q", name, tag)
		}
		if tag == "latest" && len(doc.Versions) > 0 {
			return E(KindForbidden, "the latest tag cannot be removed while %s has versions; point it elsewhere instead", name)
		}
		delete(doc.DistTags, tag)
		return nil
	})
}

// SetDistTags replaces (replace set: PUT) or merges into (POST) the tag set.
// Every tag must point to an existing version, and the result must keep
// "latest".
func (s *Service) SetDistTags(ctx context.Context, user Identity, name string, tags map[string]string, replace bool) error {
	for tag := range tags {
		if err := ValidateTag(tag); err != nil {
			return err
		}
	}
	return s.modify(ctx, user, name, func(doc *Packument) error {
		if err := s.requireWriter(ctx, user, doc); err != nil {
			return err
		}
		next := map[string]string{}
		if !replace {
			for t, v := range doc.DistTags {
				next[t] = v
			}
		}
		for t, v := range tags {
			next[t] = v
		}
		if err := checkTags(doc, next); err != nil {
			return err
		}
		doc.DistTags = next
		return nil
	})
}

// checkTags verifies that a tag set fits the package's versions.
func checkTags(doc *Packument, tags map[string]string) error {
	for t, v := range tags {
		if _, ok := doc.Versions[v]; !ok {
			return E(KindInvalid, "dist-tag %q points to %s@%s, which does not exist", t, doc.Name, v)
		}
	}
	if _, ok := tags["latest"]; !ok && len(doc.Versions) > 0 {
		return E(KindForbidden, "the latest tag cannot be removed while %s has versions", doc.Name)
	}
	return nil
}
