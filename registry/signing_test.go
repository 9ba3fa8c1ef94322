package registry

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"strings"
	"testing"
	"time"
)

func TestKeyIDIsTheUnpaddedSHA256OfTheSPKI(t *testing.T) {
	// npm matches signatures to keys by keyid only; the convention
	// (docs: "SHA256:{{SHA256_PUBLIC_KEY}}") is the sha256 of the SPKI DER.
	k, _ := NewSigningKey(time.Now())
	der, err := base64.StdEncoding.DecodeString(k.Public)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(der)
	want := "SHA256:" + strings.TrimRight(base64.StdEncoding.EncodeToString(sum[:]), "=")
	if k.KeyID != want || KeyID(der) != want || len(want) != len("SHA256:")+43 {
		t.Errorf("KeyID = %s, want %s", k.KeyID, want)
	}
}

func TestSignAndVerify(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	key, err := NewSigningKey(t0)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := NewSigningKey(t0)
	const integrity = "sha512-AAAA"
	sig, err := key.Sign("@acme/x", "1.0.0", integrity)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := key.Sign("@acme/x", "1.0.0", integrity); again != sig {
		t.Errorf("signing twice gave %s and %s: want deterministic signatures (RFC 6979)", sig.Sig, again.Sig)
	}
	expired := key.PublicKey()
	exp := "2026-01-02T03:04:06.000Z"
	expired.Expires = &exp
	cases := []struct {
		name      string
		keys      []PublicKey
		pkg, ver  string
		integrity string
		published time.Time
		sig       Signature
		wantErr   bool
	}{
		{"valid", []PublicKey{key.PublicKey()}, "@acme/x", "1.0.0", integrity, t0, sig, false},
		{"valid among several keys", []PublicKey{other.PublicKey(), key.PublicKey()}, "@acme/x", "1.0.0", integrity, t0, sig, false},
		{"other integrity", []PublicKey{key.PublicKey()}, "@acme/x", "1.0.0", "sha512-BBBB", t0, sig, true},
		{"other version", []PublicKey{key.PublicKey()}, "@acme/x", "1.0.1", integrity, t0, sig, true},
		{"other package", []PublicKey{key.PublicKey()}, "@acme/y", "1.0.0", integrity, t0, sig, true},
		{"unknown key", []PublicKey{other.PublicKey()}, "@acme/x", "1.0.0", integrity, t0, sig, true},
		{"key id of another key", []PublicKey{{KeyID: key.KeyID, Key: other.Public}}, "@acme/x", "1.0.0", integrity, t0, sig, true},
		{"published before the expiry", []PublicKey{expired}, "@acme/x", "1.0.0", integrity, t0, sig, false},
		{"published at the expiry", []PublicKey{expired}, "@acme/x", "1.0.0", integrity, t0.Add(time.Second), sig, true},
		{"garbled signature", []PublicKey{key.PublicKey()}, "@acme/x", "1.0.0", integrity, t0, Signature{KeyID: key.KeyID, Sig: "!!"}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := VerifySignature(c.keys, c.pkg, c.ver, c.integrity, c.published, c.sig)
			if (err != nil) != c.wantErr {
				t.Errorf("VerifySignature = %v, want error %v", err, c.wantErr)
			}
		})
	}
}

func TestPublicKeyNeverCarriesThePrivateKey(t *testing.T) {
	key, _ := NewSigningKey(time.Now())
	b, _ := json.Marshal(key.PublicKey())
	if strings.Contains(string(b), key.Private) || key.Private == "" {
		t.Errorf("served key %s", b)
	}
	var fields map[string]any
	_ = json.Unmarshal(b, &fields)
	for _, f := range []string{"expires", "keyid", "keytype", "scheme", "key"} {
		if _, ok := fields[f]; !ok {
			t.Errorf("served key lacks %q: %s", f, b)
		}
	}
}

func TestParseSigningKeyPEM(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(ec)
	sec1, _ := x509.MarshalECPrivateKey(ec)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p384der, _ := x509.MarshalPKCS8PrivateKey(p384)
	cases := []struct {
		name    string
		pem     []byte
		wantErr bool
	}{
		{"pkcs8 P-256", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}), false},
		{"sec1 P-256", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1}), false},
		{"P-384", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p384der}), true},
		{"a public key", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pkcs8}), true},
		{"not PEM", []byte("hello"), true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			k, err := ParseSigningKeyPEM(c.pem, time.Now())
			if (err != nil) != c.wantErr {
				t.Fatalf("ParseSigningKeyPEM = %v, want error %v", err, c.wantErr)
			}
			if err == nil {
				pub, _ := x509.MarshalPKIXPublicKey(&ec.PublicKey)
				if k.KeyID != KeyID(pub) {
					t.Errorf("key id %s is not the file key's", k.KeyID)
				}
			}
		})
	}
}

func TestKeyringCreatesOnceAndRotates(t *testing.T) {
	ctx := context.Background()
	docs := newMemDocs()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	a, b := NewKeyring(docs, nil), NewKeyring(docs, nil)
	a.now = func() time.Time { return now }
	b.now = a.now
	k1, err := a.Ensure(ctx)
	if err != nil {
		t.Fatal(err)
	}
	k1b, err := b.Ensure(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if k1.KeyID != k1b.KeyID {
		t.Fatalf("two instances made two keys: %s, %s", k1.KeyID, k1b.KeyID)
	}
	old, err := a.Sign(ctx, "pkg", "1.0.0", "sha512-x")
	if err != nil || old.KeyID != k1.KeyID {
		t.Fatalf("Sign = %+v, %v", old, err)
	}
	now = now.Add(time.Hour)
	k2, err := a.Rotate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if k2.Private != "" {
		t.Error("Rotate returned the private key")
	}
	// The other instance signs with the new key at once.
	fresh, err := b.Sign(ctx, "pkg", "2.0.0", "sha512-y")
	if err != nil || fresh.KeyID != k2.KeyID {
		t.Fatalf("Sign after rotate = %+v, %v (new key %s)", fresh, err, k2.KeyID)
	}
	pub, err := b.PublicKeys(ctx)
	if err != nil || len(pub) != 2 {
		t.Fatalf("PublicKeys = %+v, %v", pub, err)
	}
	if pub[0].KeyID != k1.KeyID || pub[0].Expires == nil || pub[1].Expires != nil {
		t.Errorf("keys after rotation: %+v", pub)
	}
	if err := VerifySignature(pub, "pkg", "1.0.0", "sha512-x", now.Add(-time.Minute), old); err != nil {
		t.Errorf("a version signed before the rotation no longer verifies: %v", err)
	}
	if err := VerifySignature(pub, "pkg", "2.0.0", "sha512-y", now, fresh); err != nil {
		t.Errorf("a version signed after the rotation does not verify: %v", err)
	}
	if err := VerifySignature(pub, "pkg", "1.0.0", "sha512-x", now.Add(2*RotationGrace), old); err == nil {
		t.Error("the old key verifies a version published after its expiry")
	}
	for _, w := range docs.writes {
		if !strings.Contains(w, `"private"`) {
			t.Errorf("stored keyring without private keys: %s", w)
		}
	}
}

func TestKeyringOverride(t *testing.T) {
	ctx := context.Background()
	docs := newMemDocs()
	stored := NewKeyring(docs, nil)
	k1, _ := stored.Ensure(ctx)
	file, _ := NewSigningKey(time.Now())
	file.Source = "file"
	kr := NewKeyring(docs, &file)
	sig, err := kr.Sign(ctx, "pkg", "1.0.0", "sha512-x")
	if err != nil || sig.KeyID != file.KeyID {
		t.Fatalf("Sign = %+v, %v; want the file key %s", sig, err, file.KeyID)
	}
	pub, _ := kr.PublicKeys(ctx)
	ids := map[string]bool{}
	for _, p := range pub {
		ids[p.KeyID] = true
	}
	if !ids[k1.KeyID] || !ids[file.KeyID] {
		t.Errorf("served keys %+v: want the stored key (old signatures) and the file key", pub)
	}
}

func TestPublishSignsEachVersionAndDropsClientSignatures(t *testing.T) {
	ctx := context.Background()
	store := newMemStore()
	keyring := NewKeyring(newMemDocs(), nil)
	s := newServiceFor(Config{Store: store, Signer: keyring})
	body := buildBody(t, "signed", nil,
		pubVersion{version: "1.0.0", extra: map[string]any{}},
		pubVersion{version: "1.1.0"})
	// A publisher's own "signatures" and "attestations" must not land.
	var m map[string]any
	_ = json.Unmarshal(body.Versions["1.0.0"], &m)
	dist := m["dist"].(map[string]any)
	dist["signatures"] = []map[string]string{{"keyid": "SHA256:forged", "sig": "AAAA"}}
	dist["attestations"] = map[string]any{"url": "http://elsewhere.example/x", "provenance": map[string]any{"predicateType": "x"}}
	body.Versions["1.0.0"], _ = json.Marshal(m)
	if err := s.Publish(ctx, aliceID, "signed", body); err != nil {
		t.Fatal(err)
	}
	p := store.stored(t, "signed")
	keys, _ := keyring.PublicKeys(ctx)
	for _, v := range []string{"1.0.0", "1.1.0"} {
		integrity, sigs, _ := DistOf(p.Versions[v])
		if len(sigs) != 1 {
			t.Fatalf("%s: signatures %+v, want one", v, sigs)
		}
		published, _ := time.Parse(time.RFC3339, p.Time[v])
		if err := VerifySignature(keys, "signed", v, integrity, published, sigs[0]); err != nil {
			t.Errorf("%s: %v", v, err)
		}
		if strings.Contains(string(p.Versions[v]), "attestations") {
			t.Errorf("%s: the publisher's attestations landed: %s", v, p.Versions[v])
		}
	}

	// Keys that cannot be read fail the publish: no unsigned version lands.
	s = newServiceFor(Config{Store: store, Signer: NewKeyring(failingDocs{E(KindUnavailable, "CouchDB is down")}, nil)})
	err := s.Publish(ctx, aliceID, "signed", buildBody(t, "signed", nil, pubVersion{version: "2.0.0"}))
	if !IsKind(err, KindUnavailable) {
		t.Errorf("publish with the keys unreadable = %v, want unavailable", err)
	}
	if _, ok := store.stored(t, "signed").Versions["2.0.0"]; ok {
		t.Error("an unsigned version landed")
	}
}

func TestParseAttestationsSpec(t *testing.T) {
	cases := []struct {
		spec, name, version string
		wantErr             bool
	}{
		{"pkg@1.0.0", "pkg", "1.0.0", false},
		{"@scope/pkg@1.2.3-beta.1", "@scope/pkg", "1.2.3-beta.1", false},
		{"pkg", "", "", true},
		{"@scope/pkg", "", "", true},
		{"pkg@latest", "", "", true},
		{"../x@1.0.0", "", "", true},
		{"@1.0.0", "", "", true},
	}
	for _, c := range cases {
		t.Run(c.spec, func(t *testing.T) {
			name, version, err := ParseAttestationsSpec(c.spec)
			if (err != nil) != c.wantErr || name != c.name || version != c.version {
				t.Errorf("ParseAttestationsSpec(%q) = %q, %q, %v", c.spec, name, version, err)
			}
		})
	}
}

func TestRenderPointsAttestationsHere(t *testing.T) {
	p := NewPackument("@acme/x")
	p.Versions["1.0.0"] = json.RawMessage(`{"name":"@acme/x","version":"1.0.0","dist":{"tarball":"http://up.example/x.tgz","integrity":"sha512-x","attestations":{"url":"http://up.example/-/npm/v1/attestations/@acme%2fx@1.0.0","provenance":{"predicateType":"https://slsa.dev/provenance/v1"}},"signatures":[{"keyid":"k","sig":"s"}]}}`)
	p.Versions["1.1.0"] = json.RawMessage(`{"name":"@acme/x","version":"1.1.0","dist":{"tarball":"http://up.example/x.tgz","integrity":"sha512-y"}}`)
	r := Render{BaseURL: "http://reg.test"}
	for _, render := range []func() ([]byte, error){
		func() ([]byte, error) { return r.Full(p, false) },
		func() ([]byte, error) { return r.Abbreviated(p) },
	} {
		b, err := render()
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Versions map[string]struct {
				Dist map[string]json.RawMessage `json:"dist"`
			} `json:"versions"`
		}
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatal(err)
		}
		var att struct {
			URL        string         `json:"url"`
			Provenance map[string]any `json:"provenance"`
		}
		_ = json.Unmarshal(doc.Versions["1.0.0"].Dist["attestations"], &att)
		if att.URL != "http://reg.test/-/npm/v1/attestations/@acme%2fx@1.0.0" || att.Provenance["predicateType"] == nil {
			t.Errorf("attestations rendered as %s", doc.Versions["1.0.0"].Dist["attestations"])
		}
		if string(doc.Versions["1.0.0"].Dist["signatures"]) != `[{"keyid":"k","sig":"s"}]` {
			t.Errorf("signatures rendered as %s", doc.Versions["1.0.0"].Dist["signatures"])
		}
		if _, ok := doc.Versions["1.1.0"].Dist["attestations"]; ok {
			t.Error("a version without attestations got some")
		}
	}
}

func TestSignUnsignedAndMergePrefersSigned(t *testing.T) {
	key, _ := NewSigningKey(time.Now())
	p := NewPackument("old")
	p.Versions["1.0.0"] = json.RawMessage(`{"name":"old","version":"1.0.0","dist":{"integrity":"sha512-a","shasum":"x","tarball":"/t"}}`)
	p.Versions["1.1.0"] = json.RawMessage(`{"name":"old","version":"1.1.0","dist":{"integrity":"sha512-b","shasum":"x","tarball":"/t","signatures":[{"keyid":"SHA256:other","sig":"keep"}]}}`)
	p.Versions["0.0.1"] = json.RawMessage(`{"name":"old","version":"0.0.1","dist":{"shasum":"x","tarball":"/t"}}`)
	unsigned := p.Versions["1.0.0"]
	n, err := SignUnsigned(p, key)
	if err != nil || n != 1 {
		t.Fatalf("SignUnsigned = %d, %v; want 1 (only the unsigned version with an integrity)", n, err)
	}
	integrity, sigs, _ := DistOf(p.Versions["1.0.0"])
	if len(sigs) != 1 || VerifySignature([]PublicKey{key.PublicKey()}, "old", "1.0.0", integrity, time.Now(), sigs[0]) != nil {
		t.Errorf("1.0.0 signed as %s", p.Versions["1.0.0"])
	}
	if _, sigs, _ := DistOf(p.Versions["1.1.0"]); len(sigs) != 1 || sigs[0].Sig != "keep" {
		t.Errorf("1.1.0's signatures changed: %s", p.Versions["1.1.0"])
	}
	if !gainedSignatures(p.Versions["1.0.0"], unsigned) || gainedSignatures(unsigned, p.Versions["1.0.0"]) || gainedSignatures(p.Versions["1.1.0"], unsigned) {
		t.Error("gainedSignatures is wrong")
	}
}
