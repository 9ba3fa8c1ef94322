//go:build integration

package integration

import (
	"bytes"
	"encoding/json"
	"testing"
)

// makeTarball builds an npm package tarball whose code carries the marker
// "raw".
func makeTarball(t *testing.T, name, version string) []byte {
	t.Helper()
	return markedTarball(t, name, version, "raw")
}

// rawPublishBody builds the JSON body npm sends for `npm publish` of an unscoped
// package; with badIntegrity the dist.integrity and dist.shasum describe other bytes.
func rawPublishBody(t *testing.T, reg *registry, name, version string, badIntegrity bool) (body, tarball []byte) {
	t.Helper()
	tarball = makeTarball(t, name, version)
	digested := tarball
	if badIntegrity {
		digested = append(append([]byte{}, tarball...), "tampered"...)
	}
	return publishBodyDigests(reg, name, version, tarball, digested), tarball
}

// Scenario d: a raw HTTP publish whose integrity does not match the tarball is
// refused with 400 and stores nothing; the same body with the right digests works.
func TestRawPublishIntegrity(t *testing.T) {
	t.Parallel()
	reg := startRegistry(t, registryOpts{})
	u := newNPMUser(t, reg, "carol")
	u.mustLogin(reg.user("carol"), "Pw-carol-2d7be913", "carol@example.com")
	tok := u.token()

	t.Run("bad integrity is refused", func(t *testing.T) {
		body, _ := rawPublishBody(t, reg, "rawpkg", "1.0.0", true)
		h := reg.do("PUT", "/rawpkg", tok, body)
		if h.Status != 400 {
			t.Errorf("PUT /rawpkg with a mismatching integrity: %s, want 400", h)
		}
		if h := reg.do("GET", "/rawpkg", tok, nil); h.Status != 404 {
			t.Errorf("GET /rawpkg after the refused publish: %s, want 404 (nothing stored)", h)
		}
		if h := reg.do("GET", "/rawpkg/-/rawpkg-1.0.0.tgz", tok, nil); h.Status != 404 {
			t.Errorf("GET /rawpkg/-/rawpkg-1.0.0.tgz after the refused publish: status %d, want 404", h.Status)
		}
	})

	t.Run("matching integrity is accepted", func(t *testing.T) {
		body, tarball := rawPublishBody(t, reg, "rawpkg", "1.0.0", false)
		h := reg.do("PUT", "/rawpkg", tok, body)
		if h.Status != 200 && h.Status != 201 {
			t.Fatalf("PUT /rawpkg with correct digests: %s, want 200 or 201", h)
		}
		h = reg.do("GET", "/rawpkg", "", nil)
		var doc struct {
			Name     string
			DistTags map[string]string `json:"dist-tags"`
			Versions map[string]json.RawMessage
		}
		if h.Status != 200 || json.Unmarshal(h.Body, &doc) != nil || doc.DistTags["latest"] != "1.0.0" || doc.Versions["1.0.0"] == nil {
			t.Fatalf("GET /rawpkg after publishing: %s, want 200 with version 1.0.0 latest", h)
		}
		h = reg.do("GET", "/rawpkg/-/rawpkg-1.0.0.tgz", "", nil)
		if h.Status != 200 || !bytes.Equal(h.Body, tarball) {
			t.Fatalf("GET /rawpkg/-/rawpkg-1.0.0.tgz: status %d, %d bytes (want 200 and the %d published bytes)", h.Status, len(h.Body), len(tarball))
		}
		// The real npm installs it.
		proj := writeProject(t, map[string]string{"rawpkg": "1.0.0"})
		u.mustRunIn(proj, "install")
		v, err := requireInProject(t, proj, "rawpkg")
		if err != nil {
			t.Fatal(err)
		}
		if v["marker"] != "raw" {
			t.Fatalf("require(rawpkg) = %v", v)
		}
	})
}
