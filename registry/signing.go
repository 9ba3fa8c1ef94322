package registry

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"sort"
	"time"
)

// Registry signatures, as npm audit signatures checks them: each version
// carries dist.signatures [{keyid, sig}], sig being the base64 DER ECDSA
// P-256 signature over sha256("name@version:integrity"), and the registry
// serves the public keys at GET /-/npm/v1/keys. npm refuses a signature by
// a key whose expires is not after the version's publish time (time[v]).
//
// The keys live in the system database (document keyringDocID), which only
// the CouchDB admin reads; the private key never leaves the service: not
// served, not logged. --signing-key-file replaces the active key.

// keyringDocID is the system document holding the signing keys.
const keyringDocID = "signing-keys"

// RotationGrace is how long an old key stays valid after a rotation: a
// publish that read the keyring just before the rotation (on this or
// another instance, with some clock skew) still verifies.
const RotationGrace = time.Minute

// SigningKey is one key of the keyring.
type SigningKey struct {
	KeyID   string     `json:"keyid"`
	Public  string     `json:"public"`            // base64 SPKI DER
	Private string     `json:"private,omitempty"` // base64 PKCS#8 DER; never served
	Created time.Time  `json:"created"`
	Expires *time.Time `json:"expires,omitempty"`
	// Source says where the key came from: "generated" or "file".
	Source string `json:"source,omitempty"`
}

// PublicKey is one entry of GET /-/npm/v1/keys.
type PublicKey struct {
	Expires *string `json:"expires"`
	KeyID   string  `json:"keyid"`
	KeyType string  `json:"keytype"`
	Scheme  string  `json:"scheme"`
	Key     string  `json:"key"`
}

// Signature is one entry of dist.signatures.
type Signature struct {
	KeyID string `json:"keyid"`
	Sig   string `json:"sig"`
}

const keyScheme = "ecdsa-sha2-nistp256"

// KeyID is npm's key id: "SHA256:" and the unpadded base64 sha256 of the
// SPKI DER public key.
func KeyID(spki []byte) string {
	sum := sha256.Sum256(spki)
	return "SHA256:" + base64.RawStdEncoding.EncodeToString(sum[:])
}

// SignedMessage is what a registry signature covers.
func SignedMessage(name, version, integrity string) []byte {
	return []byte(name + "@" + version + ":" + integrity)
}

// NewSigningKey generates a P-256 key.
func NewSigningKey(now time.Time) (SigningKey, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return SigningKey{}, err
	}
	return signingKeyOf(k, now, "generated")
}

func signingKeyOf(k *ecdsa.PrivateKey, now time.Time, source string) (SigningKey, error) {
	priv, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return SigningKey{}, err
	}
	pub, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		return SigningKey{}, err
	}
	return SigningKey{KeyID: KeyID(pub), Public: base64.StdEncoding.EncodeToString(pub),
		Private: base64.StdEncoding.EncodeToString(priv), Created: now.UTC(), Source: source}, nil
}

// ParseSigningKeyPEM reads a PEM PKCS#8 (or SEC 1 "EC PRIVATE KEY") P-256
// private key, as --signing-key-file holds it.
func ParseSigningKeyPEM(data []byte, now time.Time) (SigningKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return SigningKey{}, errors.New("no PEM block found")
	}
	var k any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return SigningKey{}, errors.New("want a PEM \"PRIVATE KEY\" (PKCS#8), found " + block.Type)
	}
	if err != nil {
		return SigningKey{}, err
	}
	ec, ok := k.(*ecdsa.PrivateKey)
	if !ok || ec.Curve != elliptic.P256() {
		return SigningKey{}, errors.New("the key must be an ECDSA P-256 key")
	}
	return signingKeyOf(ec, now, "file")
}

func (k SigningKey) private() (*ecdsa.PrivateKey, error) {
	der, err := base64.StdEncoding.DecodeString(k.Private)
	if err != nil {
		return nil, err
	}
	p, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, err
	}
	ec, ok := p.(*ecdsa.PrivateKey)
	if !ok {
		return nil, errors.New("not an ECDSA key")
	}
	return ec, nil
}

// Sign signs name@version:integrity with k.
func (k SigningKey) Sign(name, version, integrity string) (Signature, error) {
	priv, err := k.private()
	if err != nil {
		return Signature{}, Wrap(KindInternal, err, "signing key %s is unreadable", k.KeyID)
	}
	sum := sha256.Sum256(SignedMessage(name, version, integrity))
	// Deterministic (RFC 6979, a nil random source): a retried publish, or
	// one version written on two cluster nodes, carries byte-identical
	// signatures, so the documents stay equal and merge cleanly.
	sig, err := priv.Sign(nil, sum[:], crypto.SHA256)
	if err != nil {
		return Signature{}, Wrap(KindInternal, err, "sign %s@%s", name, version)
	}
	return Signature{KeyID: k.KeyID, Sig: base64.StdEncoding.EncodeToString(sig)}, nil
}

// PublicKey is k as GET /-/npm/v1/keys serves it.
func (k SigningKey) PublicKey() PublicKey {
	pk := PublicKey{KeyID: k.KeyID, KeyType: keyScheme, Scheme: keyScheme, Key: k.Public}
	if k.Expires != nil {
		s := k.Expires.UTC().Format("2006-01-02T15:04:05.000Z")
		pk.Expires = &s
	}
	return pk
}

// VerifySignature checks sig against the public keys, as npm does: the key
// must be known and not expired at the publish time, and the signature
// valid. It returns nil when it verifies.
func VerifySignature(keys []PublicKey, name, version, integrity string, published time.Time, sig Signature) error {
	for _, k := range keys {
		if k.KeyID != sig.KeyID {
			continue
		}
		if k.Expires != nil {
			exp, err := time.Parse(time.RFC3339, *k.Expires)
			if err != nil || !published.Before(exp) {
				return E(KindInvalid, "%s@%s is signed by key %s, which expired %s", name, version, k.KeyID, *k.Expires)
			}
		}
		der, err := base64.StdEncoding.DecodeString(k.Key)
		if err != nil {
			return E(KindInvalid, "key %s is not base64", k.KeyID)
		}
		pub, err := x509.ParsePKIXPublicKey(der)
		if err != nil {
			return E(KindInvalid, "key %s is not a public key", k.KeyID)
		}
		ec, ok := pub.(*ecdsa.PublicKey)
		if !ok {
			return E(KindInvalid, "key %s is not an ECDSA key", k.KeyID)
		}
		raw, err := base64.StdEncoding.DecodeString(sig.Sig)
		if err != nil {
			return E(KindInvalid, "the signature of %s@%s is not base64", name, version)
		}
		sum := sha256.Sum256(SignedMessage(name, version, integrity))
		if !ecdsa.VerifyASN1(ec, sum[:], raw) {
			return E(KindInvalid, "the signature of %s@%s by key %s does not verify", name, version, k.KeyID)
		}
		return nil
	}
	return E(KindNotFound, "%s@%s is signed by key %s, which is not known", name, version, sig.KeyID)
}

// keyringDoc is the stored keyring.
type keyringDoc struct {
	Keys []SigningKey `json:"keys"`
}

// active is the newest key that has not expired.
func (d *keyringDoc) active(now time.Time) (SigningKey, bool) {
	var best SigningKey
	found := false
	for _, k := range d.Keys {
		if k.Expires != nil && !now.Before(*k.Expires) {
			continue
		}
		if k.Private == "" {
			continue
		}
		if !found || k.Created.After(best.Created) {
			best, found = k, true
		}
	}
	return best, found
}

// Keyring is the registry's signing keys, kept in the system database and
// shared by every instance on it. Each signing and each keys request reads
// the document again (one small read), so a rotation takes effect at once
// on every instance.
type Keyring struct {
	docs     StateDocs
	override *SigningKey // --signing-key-file: the active key
	now      func() time.Time
	// leaves reads the keyring with its conflicting revisions and merges
	// them (keyringmerge.go); nil: CouchDB's winner alone.
	leaves LeafDocs
}

// NewKeyring returns the keyring stored in docs; override, when set, is
// the key that signs (its public key is served beside the stored ones).
func NewKeyring(docs StateDocs, override *SigningKey) *Keyring {
	return &Keyring{docs: docs, override: override, now: time.Now}
}

// Ensure makes sure a signing key exists: without an override, the first
// start creates one (a create-only write; when another instance created it
// first, that key is used).
func (k *Keyring) Ensure(ctx context.Context) (SigningKey, error) {
	if k.override != nil {
		return *k.override, nil
	}
	for attempt := 0; attempt < 5; attempt++ {
		doc, rev, losers, err := k.readLeaves(ctx)
		if err != nil {
			return SigningKey{}, err
		}
		if a, ok := doc.active(k.now()); ok {
			return a, nil
		}
		key, err := NewSigningKey(k.now())
		if err != nil {
			return SigningKey{}, Wrap(KindInternal, err, "generate a signing key")
		}
		doc.Keys = append(doc.Keys, key)
		err = k.write(ctx, rev, &doc, losers, key.KeyID)
		if err == nil {
			return key, nil
		}
		if !IsKind(err, KindConflict) {
			return SigningKey{}, err
		}
		// Another instance wrote first: read what it wrote.
	}
	return SigningKey{}, E(KindConflict, "the signing keys kept changing while this instance read them; retry")
}

// read reads the keyring for a use (signing, serving the keys): merged
// when it has conflicting revisions, and the merge written (best effort)
// so that the next read is plain.
func (k *Keyring) read(ctx context.Context) (keyringDoc, string, error) {
	doc, rev, losers, err := k.readLeaves(ctx)
	if err == nil && len(losers) > 0 {
		if w, err := k.leaves.WriteMerge(ctx, keyringDocID, rev, &doc, losers); err == nil {
			rev = w.Rev
		}
	}
	return doc, rev, err
}

// Sign signs a version with the active key.
func (k *Keyring) Sign(ctx context.Context, name, version, integrity string) (Signature, error) {
	key, err := k.ActiveKey(ctx)
	if err != nil {
		return Signature{}, err
	}
	return key.Sign(name, version, integrity)
}

// ActiveKey returns the key that signs now (read again on every call).
func (k *Keyring) ActiveKey(ctx context.Context) (SigningKey, error) {
	if k.override != nil {
		return *k.override, nil
	}
	doc, _, err := k.read(ctx)
	if err != nil {
		return SigningKey{}, Wrap(KindUnavailable, err, "cannot read the signing keys")
	}
	if a, ok := doc.active(k.now()); ok {
		return a, nil
	}
	return k.Ensure(ctx)
}

// Keys lists every key of the keyring, private parts removed, oldest first.
func (k *Keyring) Keys(ctx context.Context) ([]SigningKey, error) {
	doc, _, err := k.read(ctx)
	if err != nil {
		return nil, err
	}
	keys := doc.Keys
	if k.override != nil {
		seen := false
		for _, s := range keys {
			seen = seen || s.KeyID == k.override.KeyID
		}
		if !seen {
			keys = append(keys, *k.override)
		}
	}
	out := make([]SigningKey, len(keys))
	for i, s := range keys {
		s.Private = ""
		out[i] = s
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
	return out, nil
}

// PublicKeys is the keyring as GET /-/npm/v1/keys serves it.
func (k *Keyring) PublicKeys(ctx context.Context) ([]PublicKey, error) {
	keys, err := k.Keys(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]PublicKey, 0, len(keys))
	for _, s := range keys {
		out = append(out, s.PublicKey())
	}
	return out, nil
}

// Rotate adds a new signing key and gives every key still valid an expiry
// RotationGrace from now: versions they signed before still verify. It
// returns the new key (private part removed).
func (k *Keyring) Rotate(ctx context.Context) (SigningKey, error) {
	for attempt := 0; attempt < 5; attempt++ {
		doc, rev, losers, err := k.readLeaves(ctx)
		if err != nil {
			return SigningKey{}, err
		}
		now := k.now().UTC()
		expires := now.Add(RotationGrace)
		for i := range doc.Keys {
			if doc.Keys[i].Expires == nil || doc.Keys[i].Expires.After(expires) {
				doc.Keys[i].Expires = &expires
			}
		}
		key, err := NewSigningKey(now)
		if err != nil {
			return SigningKey{}, Wrap(KindInternal, err, "generate a signing key")
		}
		doc.Keys = append(doc.Keys, key)
		err = k.write(ctx, rev, &doc, losers, key.KeyID)
		if err == nil {
			key.Private = ""
			return key, nil
		}
		if !IsKind(err, KindConflict) {
			return SigningKey{}, err
		}
	}
	return SigningKey{}, E(KindConflict, "the signing keys kept changing during the rotation; retry")
}

// VersionSigner gives the key that signs versions as they are published.
type VersionSigner interface {
	ActiveKey(ctx context.Context) (SigningKey, error)
}

// signVersions writes dist.signatures of the versions pub adds to doc.
func signVersions(key SigningKey, doc *Packument, pub *Publication) error {
	for _, nv := range pub.Versions {
		sig, err := key.Sign(pub.Name, nv.Version, nv.Integrity)
		if err != nil {
			return err
		}
		m, err := SetSignatures(doc.Versions[nv.Version], []Signature{sig})
		if err != nil {
			return err
		}
		doc.Versions[nv.Version] = m
	}
	return nil
}

// SetSignatures returns manifest m with dist.signatures set to sigs.
func SetSignatures(m Manifest, sigs []Signature) (Manifest, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(m, &fields); err != nil || fields == nil {
		return nil, E(KindInternal, "manifest is not an object")
	}
	var dist map[string]json.RawMessage
	if err := json.Unmarshal(fields["dist"], &dist); err != nil || dist == nil {
		return nil, E(KindInternal, "manifest has no dist object")
	}
	dist["signatures"] = mustJSON(sigs)
	fields["dist"] = mustJSON(dist)
	return mustJSON(fields), nil
}

// DistOf reads the fields of a manifest's dist the signatures concern.
func DistOf(m Manifest) (integrity string, signatures []Signature, hasSignatures bool) {
	var v struct {
		Dist struct {
			Integrity  string           `json:"integrity"`
			Signatures *json.RawMessage `json:"signatures"`
		} `json:"dist"`
	}
	if json.Unmarshal(m, &v) != nil {
		return "", nil, false
	}
	if v.Dist.Signatures != nil {
		hasSignatures = true
		_ = json.Unmarshal(*v.Dist.Signatures, &signatures)
	}
	return v.Dist.Integrity, signatures, hasSignatures
}

// SignUnsigned signs the versions of p that carry no signature (published
// before registry signatures) with key and returns how many it signed.
// Versions that have signatures keep them: the private database's
// validate_doc_update lets a version gain signatures once, never change
// them.
func SignUnsigned(p *Packument, key SigningKey) (int, error) {
	n := 0
	for v, m := range p.Versions {
		integrity, _, has := DistOf(m)
		if has || integrity == "" {
			continue
		}
		sig, err := key.Sign(p.Name, v, integrity)
		if err != nil {
			return n, err
		}
		signed, err := SetSignatures(m, []Signature{sig})
		if err != nil {
			return n, err
		}
		p.Versions[v] = signed
		n++
	}
	return n, nil
}

// gainedSignatures reports whether manifest a is b with signatures added:
// the same integrity, signatures in a and none in b.
func gainedSignatures(a, b Manifest) bool {
	ai, asigs, _ := DistOf(a)
	bi, _, bhas := DistOf(b)
	return ai == bi && len(asigs) > 0 && !bhas
}
