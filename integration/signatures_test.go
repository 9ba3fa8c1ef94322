//go:build integration

package integration

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Registry signatures (issue 12, point 1): couchnpm signs what it publishes,
// keeps the upstream's signatures on mirrored versions, signs mirrored
// versions the upstream left unsigned once their tarball was verified, and
// serves its keys and the upstream's at /-/npm/v1/keys; the real npm CLI's
// `npm audit signatures` checks all of it.

// upstreamSigning makes the fake upstream sign its versions, like the
// public registry, and serve its key at /-/npm/v1/keys.
type upstreamSigning struct {
	key   *ecdsa.PrivateKey
	keyID string
	pub   string // base64 SPKI DER

	mu       sync.Mutex
	unsigned map[string]bool // packages published without signatures
	attested map[string]bool // packages published with attestations
}

func newUpstreamSigning(t *testing.T) *upstreamSigning {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(der)
	return &upstreamSigning{key: k, pub: base64.StdEncoding.EncodeToString(der),
		keyID: "SHA256:" + base64.RawStdEncoding.EncodeToString(sum[:]), unsigned: map[string]bool{}, attested: map[string]bool{}}
}

// leaveUnsigned makes later publishes of name carry no signature.
func (s *upstreamSigning) leaveUnsigned(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.unsigned[name] = true
}

// attest makes later publishes of name carry dist.attestations.
func (s *upstreamSigning) attest(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.attested[name] = true
}

// attestationsBody is what the fake upstream serves as name@version's
// attestations: the shape npm reads, with a stand-in bundle.
func attestationsBody(name, version string) map[string]any {
	return map[string]any{"attestations": []map[string]any{{
		"predicateType": "https://slsa.dev/provenance/v1",
		"bundle": map[string]any{"mediaType": "application/vnd.dev.sigstore.bundle+json;version=0.2",
			"dsseEnvelope": map[string]any{"payload": base64.StdEncoding.EncodeToString([]byte(name + "@" + version)), "payloadType": "application/vnd.in-toto+json"}},
	}}}
}

// sign adds dist.signatures, as the public registry does, and
// dist.attestations to attested packages (called with the fake upstream's
// lock held).
func (s *upstreamSigning) sign(base, name, version string, dist map[string]any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.attested[name] {
		dist["attestations"] = map[string]any{
			"url":        base + "/-/npm/v1/attestations/" + strings.Replace(name, "/", "%2f", 1) + "@" + version,
			"provenance": map[string]any{"predicateType": "https://slsa.dev/provenance/v1"},
		}
	}
	if s.unsigned[name] {
		return
	}
	sum := sha256.Sum256([]byte(name + "@" + version + ":" + dist["integrity"].(string)))
	sig, err := ecdsa.SignASN1(rand.Reader, s.key, sum[:])
	if err != nil {
		panic(err)
	}
	dist["signatures"] = []map[string]string{{"keyid": s.keyID, "sig": base64.StdEncoding.EncodeToString(sig)}}
}

// serve answers the upstream's /-/npm/v1/ paths.
func (s *upstreamSigning) serve(path string) (int, any) {
	if path == "/-/npm/v1/keys" {
		return 200, map[string]any{"keys": []map[string]any{{
			"expires": nil, "keyid": s.keyID, "keytype": "ecdsa-sha2-nistp256", "scheme": "ecdsa-sha2-nistp256", "key": s.pub,
		}}}
	}
	if spec, ok := strings.CutPrefix(path, "/-/npm/v1/attestations/"); ok {
		spec = strings.Replace(spec, "%2f", "/", 1)
		i := strings.LastIndex(spec, "@")
		s.mu.Lock()
		defer s.mu.Unlock()
		if i > 0 && s.attested[spec[:i]] {
			return 200, attestationsBody(spec[:i], spec[i+1:])
		}
	}
	return 404, nil
}

// tufShim is loaded into npm (NODE_OPTIONS=--require) by auditSignatures.
// npm audit signatures first asks the sigstore TUF repository for a
// registry's keys and falls back to GET /-/npm/v1/keys when the repository
// has none for that host — always the case for couchnpm's host. The test
// machines cannot reach the TUF repository, so the shim gives that very
// answer ("no such target") without the network. Everything else —
// fetching the keys, the packuments and verifying each signature — is
// npm's own code.
const tufShim = `const Module = require('module')
const load = Module._load
Module._load = function (request) {
  const m = load.apply(this, arguments)
  if (request !== '@sigstore/tuf') return m
  return { ...m, initTUF: async () => ({
    getTarget: async (name) => {
      const e = new Error('the TUF repository has no target ' + name)
      e.code = 'TUF_FIND_TARGET_ERROR'
      throw e
    },
  }) }
}
`

// auditSignatures runs npm audit signatures in dir, reading packuments
// fresh (a tampered document must not hide behind npm's cache).
func (u *npmUser) auditSignatures(dir string) npmResult {
	u.t.Helper()
	shim := filepath.Join(u.home, "tuf-shim.js")
	if err := os.WriteFile(shim, []byte(tufShim), 0o644); err != nil {
		u.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), npmTimeout)
	defer cancel()
	args := []string{"audit", "signatures", "--prefer-online"}
	cmd := u.command(ctx, dir, args...)
	kept := cmd.Args[:0]
	for _, a := range cmd.Args {
		if a != "--no-audit" {
			kept = append(kept, a)
		}
	}
	cmd.Args = kept
	cmd.Env = append(cmd.Env, "NODE_OPTIONS=--require="+shim)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return npmResult{Args: args, Stdout: stdout.String(), Stderr: stderr.String(), Err: err}
}

// servedKeys reads GET /-/npm/v1/keys.
func servedKeys(t *testing.T, r *registry) []map[string]any {
	t.Helper()
	res := r.do("GET", "/-/npm/v1/keys", "", nil)
	if res.Status != 200 {
		t.Fatalf("GET /-/npm/v1/keys: %s", res)
	}
	var body struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(res.Body, &body); err != nil {
		t.Fatalf("GET /-/npm/v1/keys: %v: %s", err, res.Body)
	}
	return body.Keys
}

// signatureOf reads dist.signatures[0] of name@version through the registry.
func signatureOf(r *registry, name, version string) (keyid, sig string) {
	res, err := r.tryDo("GET", "/"+strings.Replace(name, "/", "%2f", 1), "", nil, 10*time.Second)
	if err != nil || res.Status != 200 {
		return "", ""
	}
	var doc struct {
		Versions map[string]struct {
			Dist struct {
				Signatures []struct{ KeyID, Sig string } `json:"signatures"`
			} `json:"dist"`
		} `json:"versions"`
	}
	if json.Unmarshal(res.Body, &doc) != nil {
		return "", ""
	}
	sigs := doc.Versions[version].Dist.Signatures
	if len(sigs) == 0 {
		return "", ""
	}
	return sigs[0].KeyID, sigs[0].Sig
}

// couchnpmKeys runs `couchnpm keys args...` against reg's databases.
func (r *registry) couchnpmKeys(args ...string) (string, error) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	args = append(append([]string{"keys"}, args...), "--db-prefix", r.Prefix)
	cmd := exec.CommandContext(ctx, suite.bin, args...)
	cmd.Env = append(envWithout(cmd.Environ(), "COUCHDB_", "COUCHNPM_"),
		"COUCHDB_URL="+suite.couchURL,
		"COUCHDB_USER="+suite.couchUser,
		"COUCHDB_PASSWORD="+suite.couchPass,
	)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// editVersion rewrites name@version's stored manifest directly in CouchDB
// (as its admin), the way someone with database access could tamper with
// it, and returns the manifest as it was.
func editVersion(t *testing.T, db, name, version string, edit func(m map[string]any)) map[string]any {
	t.Helper()
	path := "/" + db + "/" + urlPathEscape(name)
	st, body, err := couchDo("GET", path, nil, true)
	if err != nil || st != 200 {
		t.Fatalf("GET %s: %d %v %s", path, st, err, body)
	}
	var doc map[string]any
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	m := doc["versions"].(map[string]any)[version].(map[string]any)
	var before map[string]any
	_ = json.Unmarshal(mustJSON(m), &before)
	edit(m)
	st, body, err = couchDo("PUT", path, mustJSON(doc), true)
	if err != nil || st >= 300 {
		t.Fatalf("PUT %s: %d %v %s", path, st, err, body)
	}
	return before
}

// storedPrivateKeys reads the private keys of reg's keyring from CouchDB.
func storedPrivateKeys(t *testing.T, r *registry) []string {
	t.Helper()
	st, body, err := couchDo("GET", "/"+r.Prefix+"-system/signing-keys", nil, true)
	if err != nil || st != 200 {
		t.Fatalf("GET the keyring: %d %v %s", st, err, body)
	}
	var doc struct {
		Keys []struct {
			Private string `json:"private"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, k := range doc.Keys {
		if len(k.Private) < 60 {
			t.Fatalf("stored key without its private part: %s", body)
		}
		out = append(out, k.Private)
	}
	return out
}

func TestSignaturesAuditThroughMirror(t *testing.T) {
	t.Parallel()
	up := newFakeUpstream(t)
	up.signing = newUpstreamSigning(t)
	up.signing.leaveUnsigned("sigup-plain")
	up.publish("sigup-signed", "1.0.0", nil)
	up.publish("sigup-plain", "1.0.0", nil)
	reg := startRegistry(t, registryOpts{ExtraArgs: mirrorArgs(up, "on-demand")})

	// Before anything is published: couchnpm's key and the upstream's.
	keys := servedKeys(t, reg)
	ownKey := ""
	for _, k := range keys {
		for _, f := range []string{"keyid", "key", "keytype", "scheme", "expires"} {
			if _, ok := k[f]; !ok {
				t.Errorf("served key lacks %q: %v", f, k)
			}
		}
		if len(k) != 5 {
			t.Errorf("served key has other fields than npm's five (a private part?): %v", k)
		}
		if k["keyid"] != up.signing.keyID {
			ownKey, _ = k["keyid"].(string)
		}
	}
	if len(keys) != 2 || ownKey == "" {
		t.Fatalf("served keys %v: want couchnpm's and the upstream's %s", keys, up.signing.keyID)
	}
	if out, err := reg.couchnpmKeys("list"); err != nil || !strings.Contains(out, ownKey) || !strings.Contains(out, "active") {
		t.Errorf("couchnpm keys list: %v\n%s", err, out)
	}
	// The private key is kept in the system database; it must never reach
	// an answer or the log (checked at cleanup).
	for _, p := range storedPrivateKeys(t, reg) {
		reg.addSecret(p)
	}

	alice := newNPMUser(t, reg, "sigalice")
	alice.mustLogin(reg.user("sigalice"), "Pw-sig-alice-5a6b7c8d", "sigalice@example.com")
	alice.publish("sig-a", "1.0.0")
	alice.publish("sig-b", "1.0.0")
	if id, _ := signatureOf(reg, "sig-a", "1.0.0"); id != ownKey {
		t.Fatalf("sig-a@1.0.0 is signed by %q, want couchnpm's key %s", id, ownKey)
	}

	proj := writeProject(t, map[string]string{"sig-a": "1.0.0", "sig-b": "1.0.0", "sigup-signed": "1.0.0", "sigup-plain": "1.0.0"})
	alice.mustRunIn(proj, "install")
	// The mirror signs sigup-plain once its tarball was fetched and
	// verified (by the install above); sigup-signed keeps the upstream's.
	eventually(t, 20*time.Second, "the mirror signs a verified unsigned version", func() (bool, string) {
		id, _ := signatureOf(reg, "sigup-plain", "1.0.0")
		return id == ownKey, "keyid " + id
	})
	if id, _ := signatureOf(reg, "sigup-signed", "1.0.0"); id != up.signing.keyID {
		t.Errorf("sigup-signed@1.0.0 is signed by %q, want the upstream's key kept (%s)", id, up.signing.keyID)
	}

	t.Run("audit passes", func(t *testing.T) {
		res := alice.auditSignatures(proj)
		if res.Err != nil || !strings.Contains(res.Stdout, "4 packages have verified registry signatures") {
			t.Fatalf("npm audit signatures:\n%s", res)
		}
	})

	t.Run("tampered signature is reported", func(t *testing.T) {
		// The private database's validate_doc_update refuses any change
		// to a published version, even by the CouchDB admin. The mirror
		// database is written wholesale by the mirror; tamper there: a
		// valid signature, but of another version, pasted from elsewhere.
		otherKey, otherSig := signatureOf(reg, "sig-a", "1.0.0")
		if id, _ := signatureOf(reg, "sigup-plain", "1.0.0"); id != otherKey {
			t.Fatalf("sigup-plain is signed by %q, sig-a by %q", id, otherKey)
		}
		mirrorDB := reg.Prefix + "-mirror"
		before := editVersion(t, mirrorDB, "sigup-plain", "1.0.0", func(m map[string]any) {
			dist := m["dist"].(map[string]any)
			sigs := dist["signatures"].([]any)
			sigs[0].(map[string]any)["sig"] = otherSig
		})
		eventually(t, 20*time.Second, "the tampered signature is served", func() (bool, string) {
			_, sig := signatureOf(reg, "sigup-plain", "1.0.0")
			return sig == otherSig, sig
		})
		res := alice.auditSignatures(proj)
		out := res.Stdout + res.Stderr
		if res.Err == nil || !strings.Contains(out, "1 package has an invalid registry signature") || !strings.Contains(out, "sigup-plain@1.0.0") {
			t.Errorf("npm audit signatures after tampering:\n%s", res)
		}
		// Put the original back for the rotation below.
		editVersion(t, mirrorDB, "sigup-plain", "1.0.0", func(m map[string]any) {
			for k := range m {
				delete(m, k)
			}
			for k, v := range before {
				m[k] = v
			}
		})
		eventually(t, 20*time.Second, "the original signature is served again", func() (bool, string) {
			_, sig := signatureOf(reg, "sigup-plain", "1.0.0")
			return sig != otherSig, sig
		})
	})

	t.Run("private versions cannot be re-signed in the database", func(t *testing.T) {
		// What protects the private packages' signatures from someone
		// holding the CouchDB admin password: nothing of a published
		// version may change but "deprecated".
		path := "/" + reg.Prefix + "/sig-b"
		_, body, _ := couchDo("GET", path, nil, true)
		var doc map[string]any
		_ = json.Unmarshal(body, &doc)
		m := doc["versions"].(map[string]any)["1.0.0"].(map[string]any)
		m["dist"].(map[string]any)["signatures"] = []any{}
		st, body, err := couchDo("PUT", path, mustJSON(doc), true)
		if err != nil || st != 403 {
			t.Errorf("PUT of sig-b without its signature, as the CouchDB admin: %d %v %s, want 403", st, err, body)
		}
	})

	t.Run("rotation keeps old signatures valid", func(t *testing.T) {
		out, err := reg.couchnpmKeys("rotate")
		if err != nil {
			t.Fatalf("couchnpm keys rotate: %v\n%s", err, out)
		}
		newKey := ""
		for _, k := range servedKeys(t, reg) {
			switch {
			case k["keyid"] == ownKey:
				if k["expires"] == nil {
					t.Errorf("the old key has no expiry after the rotation: %v", k)
				}
			case k["keyid"] != up.signing.keyID:
				newKey, _ = k["keyid"].(string)
			}
		}
		if newKey == "" {
			t.Fatalf("no new key served after the rotation; couchnpm keys rotate said:\n%s", out)
		}
		alice.publish("sig-a", "1.1.0")
		if id, _ := signatureOf(reg, "sig-a", "1.1.0"); id != newKey {
			t.Errorf("sig-a@1.1.0 (after the rotation) is signed by %q, want the new key %s", id, newKey)
		}
		if id, _ := signatureOf(reg, "sig-b", "1.0.0"); id != ownKey {
			t.Errorf("sig-b@1.0.0 is signed by %q, want the old key %s", id, ownKey)
		}
		for _, p := range storedPrivateKeys(t, reg) {
			reg.addSecret(p)
		}
		for _, path := range []string{"/-/npm/v1/keys", "/sig-a", "/sig-a/1.1.0"} {
			res := reg.do("GET", path, "", nil)
			for _, p := range storedPrivateKeys(t, reg) {
				if strings.Contains(string(res.Body), p) || strings.Contains(string(res.Body), p[:40]) {
					t.Errorf("GET %s serves a private key", path)
				}
			}
		}
		proj2 := writeProject(t, map[string]string{"sig-a": "1.1.0", "sig-b": "1.0.0", "sigup-signed": "1.0.0", "sigup-plain": "1.0.0"})
		alice.mustRunIn(proj2, "install")
		res := alice.auditSignatures(proj2)
		if res.Err != nil || !strings.Contains(res.Stdout, "4 packages have verified registry signatures") {
			t.Errorf("npm audit signatures after the rotation:\n%s", res)
		}
	})
}

// Provenance through the mirror (issue 12, point 2): the attestations of
// mirrored versions are fetched from the upstream once, kept in CouchDB and
// served by couchnpm at the URL its packuments name, also while the
// upstream is down.
func TestAttestationsThroughMirror(t *testing.T) {
	t.Parallel()
	up := newFakeUpstream(t)
	up.signing = newUpstreamSigning(t)
	up.signing.attest("attup")
	up.signing.attest("@attscope/attup")
	up.publish("attup", "1.0.0", nil)
	up.publish("@attscope/attup", "2.0.0", nil)
	up.publish("attup-none", "1.0.0", nil)
	reg := startRegistry(t, registryOpts{ExtraArgs: mirrorArgs(up, "on-demand")})

	attestationsURL := func(name, version string) string {
		t.Helper()
		res := reg.do("GET", "/"+strings.Replace(name, "/", "%2f", 1), "", nil)
		var doc struct {
			Versions map[string]struct {
				Dist struct {
					Attestations *struct {
						URL        string         `json:"url"`
						Provenance map[string]any `json:"provenance"`
					} `json:"attestations"`
				} `json:"dist"`
			} `json:"versions"`
		}
		if res.Status != 200 || json.Unmarshal(res.Body, &doc) != nil {
			t.Fatalf("GET %s: %s", name, res)
		}
		a := doc.Versions[version].Dist.Attestations
		if a == nil {
			return ""
		}
		if a.Provenance["predicateType"] != "https://slsa.dev/provenance/v1" {
			t.Errorf("%s@%s: provenance %v, want the upstream's kept", name, version, a.Provenance)
		}
		return a.URL
	}
	cases := []struct{ name, version, upPath string }{
		{"attup", "1.0.0", "/-/npm/v1/attestations/attup@1.0.0"},
		{"@attscope/attup", "2.0.0", "/-/npm/v1/attestations/@attscope%2fattup@2.0.0"},
	}
	for _, c := range cases {
		if got, want := attestationsURL(c.name, c.version), reg.URL+c.upPath; got != want {
			t.Errorf("%s@%s: dist.attestations.url %q, want %q", c.name, c.version, got, want)
		}
	}
	if got := attestationsURL("attup-none", "1.0.0"); got != "" {
		t.Errorf("attup-none has attestations %q", got)
	}

	// Installing through the mirror keeps the attestations as well as the
	// tarball.
	alice := newNPMUser(t, reg, "attalice")
	proj := writeProject(t, map[string]string{"attup": "1.0.0", "@attscope/attup": "2.0.0"})
	alice.mustRunIn(proj, "install")
	for _, c := range cases {
		eventually(t, 20*time.Second, "the attestations of "+c.name+" are fetched", func() (bool, string) {
			n := up.hitCount(c.upPath)
			return n == 1, fmt.Sprintf("%d upstream requests", n)
		})
	}

	// The upstream goes away: couchnpm serves what it kept.
	up.setDown(true)
	for _, c := range cases {
		res := reg.do("GET", c.upPath, "", nil)
		want, _ := json.Marshal(attestationsBody(c.name, c.version))
		if res.Status != 200 || !jsonEqual(res.Body, want) {
			t.Errorf("GET %s with the upstream down: %s, want %s", c.upPath, res, want)
		}
		if n := up.hitCount(c.upPath); n != 1 {
			t.Errorf("%s: %d upstream requests, want 1 (fetched once)", c.upPath, n)
		}
	}
	for _, p := range []string{"/-/npm/v1/attestations/attup-none@1.0.0", "/-/npm/v1/attestations/attup@9.9.9", "/-/npm/v1/attestations/nosuchpkg-att@1.0.0"} {
		if res := reg.do("GET", p, "", nil); res.Status != 404 && res.Status != 503 {
			t.Errorf("GET %s: %s, want 404 (or 503 with the upstream down)", p, res)
		}
	}
	if res := reg.do("GET", "/-/npm/v1/attestations/attup", "", nil); res.Status != 400 {
		t.Errorf("GET attestations without a version: %s, want 400", res)
	}
}

// jsonEqual compares two JSON documents by value.
func jsonEqual(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return string(mustJSON(x)) == string(mustJSON(y))
}

// Versions published before registry signatures existed get signed by
// `couchnpm keys sign-existing`: the private database lets a version gain
// signatures once.
func TestSignaturesSignExisting(t *testing.T) {
	t.Parallel()
	reg := startRegistry(t, registryOpts{})
	alice := newNPMUser(t, reg, "oldalice")
	alice.mustLogin(reg.user("oldalice"), "Pw-old-alice-1a2b3c4d", "oldalice@example.com")
	alice.publish("sig-new", "1.0.0")

	// An unsigned version, written as couchnpm wrote them before
	// signatures: straight into the private database.
	tgz := makeTarballBytes("sig-old", "1.0.0", "old")
	sha1sum, sha512sum := sha1.Sum(tgz), sha512.Sum512(tgz)
	stamp := time.Now().UTC().Add(-time.Hour).Format("2006-01-02T15:04:05.000Z")
	doc := map[string]any{
		"_id": "sig-old", "name": "sig-old",
		"dist-tags":   map[string]string{"latest": "1.0.0"},
		"maintainers": []map[string]string{{"name": reg.user("oldalice"), "email": "oldalice@example.com"}},
		"time":        map[string]string{"created": stamp, "modified": stamp, "1.0.0": stamp},
		"versions": map[string]any{"1.0.0": map[string]any{
			"name": "sig-old", "version": "1.0.0", "main": "index.js", "_id": "sig-old@1.0.0",
			"dist": map[string]any{
				"tarball":   "/sig-old/-/sig-old-1.0.0.tgz",
				"shasum":    hex.EncodeToString(sha1sum[:]),
				"integrity": "sha512-" + base64.StdEncoding.EncodeToString(sha512sum[:]),
			},
		}},
		"_attachments": map[string]any{"sig-old-1.0.0.tgz": map[string]any{
			"content_type": "application/octet-stream", "data": base64.StdEncoding.EncodeToString(tgz),
		}},
	}
	if st, body, err := couchDo("PUT", "/"+reg.Prefix+"/sig-old", mustJSON(doc), true); err != nil || st >= 300 {
		t.Fatalf("PUT sig-old: %d %v %s", st, err, body)
	}
	proj := writeProject(t, map[string]string{"sig-old": "1.0.0", "sig-new": "1.0.0"})
	alice.mustRunIn(proj, "install")
	res := alice.auditSignatures(proj)
	if res.Err == nil || !strings.Contains(res.Stdout, "1 package has a missing registry signature") || !strings.Contains(res.Stdout, "sig-old@1.0.0") {
		t.Fatalf("npm audit signatures before sign-existing:\n%s", res)
	}

	out, err := reg.couchnpmKeys("sign-existing")
	if err != nil || !strings.Contains(out, "signed 1 version(s) of 1 package(s)") {
		t.Fatalf("couchnpm keys sign-existing: %v\n%s", err, out)
	}
	eventually(t, 20*time.Second, "sig-old is served signed", func() (bool, string) {
		id, _ := signatureOf(reg, "sig-old", "1.0.0")
		return id != "", id
	})
	res = alice.auditSignatures(proj)
	if res.Err != nil || !strings.Contains(res.Stdout, "2 packages have verified registry signatures") {
		t.Errorf("npm audit signatures after sign-existing:\n%s", res)
	}
	// Running it again signs nothing and changes nothing.
	if out, err := reg.couchnpmKeys("sign-existing"); err != nil || !strings.Contains(out, "signed 0 version(s) of 0 package(s)") {
		t.Errorf("couchnpm keys sign-existing, again: %v\n%s", err, out)
	}
}
