package registry

import (
	"context"
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// importedVersion is a version as another registry serves it.
func importedVersion(t *testing.T, name, version string, tgz []byte, extra map[string]any) ImportedVersion {
	t.Helper()
	m := map[string]any{"name": name, "version": version,
		"dist": map[string]any{"shasum": sha1Hex(tgz), "integrity": sha512SRI(tgz), "tarball": "http://elsewhere.example/x.tgz"}}
	for k, v := range extra {
		m[k] = v
	}
	b, _ := json.Marshal(m)
	return ImportedVersion{Version: version, Manifest: b, Tarball: tgz, Time: "2020-01-02T03:04:05.000Z"}
}

var operatorID = Identity{Name: "ops"}

func TestServiceImport(t *testing.T) {
	ctx := context.Background()
	tgz1, tgz2 := makeTarball(t, "@acme/lib", "1.0.0"), makeTarball(t, "@acme/lib", "1.1.0")
	other := makeTarball(t, "@acme/lib", "1.0.0-other")
	pkg := func(vs ...ImportedVersion) *ImportedPackage {
		return &ImportedPackage{Name: "@acme/lib", Versions: vs, DistTags: map[string]string{"latest": "1.1.0", "stable": "1.0.0"},
			Readme: "# lib", Created: "2019-12-31T00:00:00.000Z", Maintainers: []Person{{Name: "carol"}}}
	}
	v1 := importedVersion(t, "@acme/lib", "1.0.0", tgz1, map[string]any{"deprecated": "use 1.1", "_npmUser": map[string]any{"name": "dave"}})
	v2 := importedVersion(t, "@acme/lib", "1.1.0", tgz2, nil)

	tests := []struct {
		name        string
		first       *ImportedPackage // imported before, if any
		publishHere bool             // 1.1.0 published here before, by carol
		in          *ImportedPackage
		wantCopied  string
		wantSkipped string
		wantRefused string // substring of a refusal of 1.0.0 or 1.1.0
		wantErr     string
	}{
		{name: "new package: every version copied", in: pkg(v1, v2), wantCopied: "1.0.0,1.1.0"},
		{name: "rerun: everything skipped", first: pkg(v1, v2), in: pkg(v1, v2), wantSkipped: "1.0.0,1.1.0"},
		{name: "resumed: only the missing version copied", first: pkg(v1), in: pkg(v1, v2), wantCopied: "1.1.0", wantSkipped: "1.0.0"},
		{name: "same version, other tarball: refused", first: pkg(v1),
			in:         pkg(ImportedVersion{Version: "1.0.0", Manifest: importedVersion(t, "@acme/lib", "1.0.0", other, nil).Manifest, Tarball: other}, v2),
			wantCopied: "1.1.0", wantRefused: "different tarball"},
		{name: "tarball not matching its integrity: refused",
			in:         pkg(ImportedVersion{Version: "1.0.0", Manifest: v1.Manifest, Tarball: other}, v2),
			wantCopied: "1.1.0", wantRefused: "does not match"},
		{name: "manifest naming another package: refused",
			in:         pkg(importedVersion(t, "@acme/evil", "1.0.0", tgz1, nil), v2),
			wantCopied: "1.1.0", wantRefused: "names package"},
		{name: "no maintainer: error", in: &ImportedPackage{Name: "@acme/lib", Versions: []ImportedVersion{v1}}, wantErr: "no maintainer"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			store := newMemStore()
			s := newTestService(store)
			if tc.first != nil {
				if _, err := s.Import(ctx, operatorID, tc.first); err != nil {
					t.Fatal(err)
				}
			}
			res, err := s.Import(ctx, operatorID, tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(res.Copied, ","); got != tc.wantCopied {
				t.Errorf("copied %q, want %q", got, tc.wantCopied)
			}
			if got := strings.Join(res.Skipped, ","); got != tc.wantSkipped {
				t.Errorf("skipped %q, want %q", got, tc.wantSkipped)
			}
			var refused []string
			for v, why := range res.Refused {
				refused = append(refused, v+": "+why)
			}
			if tc.wantRefused == "" && len(refused) > 0 || tc.wantRefused != "" && (len(refused) != 1 || !strings.Contains(refused[0], tc.wantRefused)) {
				t.Errorf("refused %q, want one with %q", refused, tc.wantRefused)
			}
			doc := store.stored(t, "@acme/lib")
			if doc.DistTags["latest"] != "1.1.0" && strings.Contains(tc.wantCopied+tc.wantSkipped, "1.1.0") {
				t.Errorf("dist-tags %v", doc.DistTags)
			}
			if len(doc.Maintainers) != 1 || doc.Maintainers[0].Name != "carol" {
				t.Errorf("maintainers %v, want carol", doc.Maintainers)
			}
		})
	}
}

func TestServiceImportKeepsSourceData(t *testing.T) {
	ctx := context.Background()
	store := newMemStore()
	s := newTestService(store)
	tgz1, tgz2 := makeTarball(t, "lib", "1.0.0"), makeTarball(t, "lib", "1.1.0")
	in := &ImportedPackage{Name: "lib", Versions: []ImportedVersion{
		importedVersion(t, "lib", "1.0.0", tgz1, map[string]any{"deprecated": "use 1.1", "_npmUser": map[string]any{"name": "dave"}}),
		importedVersion(t, "lib", "1.1.0", tgz2, nil),
	}, DistTags: map[string]string{"latest": "1.1.0", "stable": "1.0.0", "1.0": "1.0.0"}, Readme: "# lib readme",
		Created: "2019-12-31T00:00:00.000Z", Maintainers: []Person{{Name: "carol", Email: "c@example.com"}}}
	if _, err := s.Import(ctx, operatorID, in); err != nil {
		t.Fatal(err)
	}
	doc := store.stored(t, "lib")
	if doc.DistTags["latest"] != "1.1.0" || doc.DistTags["stable"] != "1.0.0" || len(doc.DistTags) != 2 {
		t.Errorf("dist-tags %v: want latest and stable (an invalid tag dropped)", doc.DistTags)
	}
	if doc.Time["1.0.0"] != "2020-01-02T03:04:05.000Z" || doc.Time["created"] != "2019-12-31T00:00:00.000Z" {
		t.Errorf("time %v: the source's times are kept", doc.Time)
	}
	if AccessOf(doc) != AccessPublic {
		t.Errorf("access %s, want public by default", AccessOf(doc))
	}
	if got := jsonString(t, doc.Fields["readme"]); got != "# lib readme" {
		t.Errorf("readme %q", got)
	}
	m := manifestOf(t, doc, "1.0.0")
	if got := jsonString(t, m["deprecated"]); got != "use 1.1" {
		t.Errorf("deprecated %q", got)
	}
	if !strings.Contains(string(m["_npmUser"]), `"dave"`) {
		t.Errorf("_npmUser %s: the source's publisher is kept", m["_npmUser"])
	}
	if !strings.Contains(string(m["dist"]), `"tarball":"/lib/-/lib-1.0.0.tgz"`) || strings.Contains(string(m["dist"]), "elsewhere") {
		t.Errorf("dist %s: the tarball URL is this registry's", m["dist"])
	}
	// A dist-tag moved here after the import stays on a rerun.
	if err := s.SetDistTag(ctx, Identity{Name: "carol"}, "lib", "stable", "1.1.0"); err != nil {
		t.Fatal(err)
	}
	res, err := s.Import(ctx, operatorID, in)
	if err != nil {
		t.Fatal(err)
	}
	if store.stored(t, "lib").DistTags["stable"] != "1.1.0" || res.TagsKept["stable"] != "1.1.0" {
		t.Errorf("rerun moved a tag back: %v, kept %v", store.stored(t, "lib").DistTags, res.TagsKept)
	}
}

func TestServiceImportSigns(t *testing.T) {
	ctx := context.Background()
	store := newMemStore()
	key, err := NewSigningKey(t0)
	if err != nil {
		t.Fatal(err)
	}
	s := newTestServiceWith(Config{Store: store, Signer: staticSigner{key}})
	tgz := makeTarball(t, "lib", "1.0.0")
	in := &ImportedPackage{Name: "lib", Versions: []ImportedVersion{importedVersion(t, "lib", "1.0.0", tgz, map[string]any{
		"dist": map[string]any{"integrity": sha512SRI(tgz), "signatures": []any{map[string]any{"keyid": "forged", "sig": "x"}}}})},
		Maintainers: []Person{{Name: "carol"}}}
	if _, err := s.Import(ctx, operatorID, in); err != nil {
		t.Fatal(err)
	}
	_, sigs, _ := DistOf(store.stored(t, "lib").Versions["1.0.0"])
	if len(sigs) != 1 || sigs[0].KeyID != key.KeyID {
		t.Fatalf("signatures %+v: want exactly this registry's", sigs)
	}
}

func TestCheckImportedHash(t *testing.T) {
	strong, _ := bcrypt.GenerateFromPassword([]byte("pw"), 10)
	cheap, _ := bcrypt.GenerateFromPassword([]byte("pw"), 4)
	tests := []struct {
		name, hash string
		refuseWeak bool
		wantKind   string
		wantWeak   bool
		wantErr    string
	}{
		{name: "bcrypt $2a$ cost 10", hash: string(strong), wantKind: "bcrypt"},
		{name: "bcrypt $2y$ (htpasswd -B)", hash: "$2y$" + string(strong)[4:], wantKind: "bcrypt"},
		{name: "bcrypt $2b$", hash: "$2b$" + string(strong)[4:], wantKind: "bcrypt"},
		{name: "bcrypt strong with refuse-weak", hash: string(strong), refuseWeak: true, wantKind: "bcrypt"},
		{name: "bcrypt below cost 10 is weak", hash: string(cheap), wantKind: "bcrypt (cost 4)", wantWeak: true},
		{name: "bcrypt below cost 10 refused", hash: string(cheap), refuseWeak: true, wantErr: "bcrypt (cost 4) is a weak hash kind"},
		{name: "malformed bcrypt", hash: "$2a$10$short", wantErr: "malformed bcrypt"},
		{name: "SHA-1", hash: "{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=", wantKind: "SHA-1 ({SHA})", wantWeak: true},
		{name: "SHA-1 refused", hash: "{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=", refuseWeak: true, wantErr: "SHA-1 ({SHA}) is a weak hash kind"},
		{name: "apr1", hash: "$apr1$saltsalt$LrttParrLPdxvgutaSXWJ0", wantKind: "MD5 (apr1)", wantWeak: true},
		{name: "apr1 refused", hash: "$apr1$saltsalt$LrttParrLPdxvgutaSXWJ0", refuseWeak: true, wantErr: "MD5 (apr1) is a weak"},
		{name: "malformed apr1", hash: "$apr1$x$abcdefghijklmnopqrstuv", wantErr: "malformed MD5 (apr1)"},
		{name: "MD5-crypt", hash: "$1$saltsalt$9xy1btjgzLYfb7hivXtC//", wantKind: "MD5-crypt ($1$)", wantWeak: true},
		{name: "DES crypt (Verdaccio's default)", hash: "+ayBhdASYkssU", wantKind: "DES crypt", wantWeak: true},
		{name: "DES crypt refused", hash: "+ayBhdASYkssU", refuseWeak: true, wantErr: "DES crypt is a weak hash kind"},
		{name: "SHA-crypt", hash: "$6$salt$hash", wantErr: "cannot verify either"},
		{name: "plain text", hash: "hunter2hunter2", wantErr: "plain-text passwords are never imported"},
		{name: "{PLAIN}", hash: "{PLAIN}hunter2", wantErr: "plain-text passwords are never imported"},
		{name: "empty", hash: "", wantErr: "no password hash"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			kind, err := CheckImportedHash(tc.hash, tc.refuseWeak)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if kind.Kind != tc.wantKind || kind.Weak != tc.wantWeak {
					t.Fatalf("kind %+v, want %q weak=%v", kind, tc.wantKind, tc.wantWeak)
				}
				return
			}
			if err == nil || !strings.Contains(ReasonOf(err), tc.wantErr) {
				t.Fatalf("err %v, want %q", err, tc.wantErr)
			}
			if len(tc.hash) > 6 && strings.Contains(ReasonOf(err), tc.hash[3:]) {
				t.Fatalf("the reason repeats the hash: %s", ReasonOf(err))
			}
		})
	}
}

// fakeImported is an in-memory ImportedPasswords over a UserStore that
// knows one password per user.
type fakeImported struct {
	UserStore
	passwords map[string]string
	hashes    map[string]ImportedPassword
	adopted   int
	from      netip.Addr // the client address of the last CheckPassword
}

func (f *fakeImported) CheckPassword(_ context.Context, name, password string, from netip.Addr) error {
	f.from = from
	if p, ok := f.passwords[name]; ok && p == password {
		return nil
	}
	return E(KindUnauthorized, "name or password is incorrect")
}

func (f *fakeImported) ImportedPassword(_ context.Context, name string) (ImportedPassword, error) {
	return f.hashes[name], nil
}

func (f *fakeImported) AdoptPassword(_ context.Context, name, hash, password string) error {
	if f.hashes[name].Hash != hash {
		return nil
	}
	delete(f.hashes, name)
	f.passwords[name] = password
	f.adopted++
	return nil
}

func TestImportedPasswordAdoptedAtFirstLogin(t *testing.T) {
	ctx := context.Background()
	hash, _ := bcrypt.GenerateFromPassword([]byte("verdaccio-pw"), 10)
	cheap, _ := bcrypt.GenerateFromPassword([]byte("cheap-pw"), 4)
	now := time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC)
	f := &fakeImported{passwords: map[string]string{"bob": "bob-pw", "carol": "random-unknown"},
		hashes: map[string]ImportedPassword{
			"carol": {Hash: string(hash)},
			"erin":  {Hash: string(cheap), Expires: now.Add(time.Hour)},
			"dave":  {Hash: "+ayBhdASYkssU", Expires: now.Add(time.Second)},                        // DES crypt of "secret"
			"frank": {Hash: "abNANd1rDfiNc", Expires: now},                                         // DES crypt of "secret", expired
			"gina":  {Hash: "{PLAIN}secret"},                                                       // never imported; never logs in
			"hal":   {Hash: "$apr1$saltsalt$LrttParrLPdxvgutaSXWJ0", Expires: now.Add(-time.Hour)}, // expired
		}}
	users := importingUsers{UserStore: f, imported: f, now: func() time.Time { return now }}
	steps := []struct {
		user, password string
		wantOK         bool
	}{
		{"carol", "wrong", false},
		{"carol", "verdaccio-pw", true}, // adopts it
		{"carol", "verdaccio-pw", true}, // now CouchDB's own check
		{"bob", "bob-pw", true},
		{"bob", "verdaccio-pw", false},
		{"erin", "cheap-pw", true}, // a weak kind, not expired
		{"dave", "secrets", false},
		{"dave", "secret", true},
		{"dave", "secret", true},
		{"frank", "secret", false}, // expires at now: expired
		{"gina", "secret", false},
		{"gina", "{PLAIN}secret", false},
		{"hal", "secret", false},
	}
	client := netip.MustParseAddr("192.0.2.7")
	for i, st := range steps {
		f.from = netip.Addr{}
		err := users.CheckPassword(ctx, st.user, st.password, client)
		if (err == nil) != st.wantOK {
			t.Fatalf("step %d (%s): err = %v, want ok=%v", i, st.user, err, st.wantOK)
		}
		if f.from != client {
			t.Fatalf("step %d: the store saw client %v, want %v", i, f.from, client)
		}
		if err != nil && (!IsKind(err, KindUnauthorized) || ReasonOf(err) != "name or password is incorrect") {
			t.Fatalf("step %d: kind %v %q, want unauthorized as for a wrong password", i, KindOf(err), ReasonOf(err))
		}
	}
	if f.adopted != 3 || f.hashes["carol"].Hash != "" || f.passwords["carol"] != "verdaccio-pw" || f.passwords["dave"] != "secret" {
		t.Fatalf("adopted %d times, hash left %q", f.adopted, f.hashes["carol"].Hash)
	}
	if f.hashes["frank"].Hash == "" || f.hashes["hal"].Hash == "" {
		t.Fatal("an expired hash was adopted")
	}
}

func TestCheckTarball(t *testing.T) {
	tgz := makeTarball(t, "lib", "1.0.0")
	other := makeTarball(t, "lib", "2.0.0")
	tests := []struct {
		name, integrity, shasum string
		data                    []byte
		ok                      bool
	}{
		{name: "sha512 and sha1 match", integrity: sha512SRI(tgz), shasum: sha1Hex(tgz), data: tgz, ok: true},
		{name: "sha1 integrity only (old packages)", integrity: sha1SRI(tgz), data: tgz, ok: true},
		{name: "shasum only", shasum: sha1Hex(tgz), data: tgz, ok: true},
		{name: "sha512 differs", integrity: sha512SRI(other), shasum: sha1Hex(tgz), data: tgz},
		{name: "shasum differs", integrity: sha512SRI(tgz), shasum: sha1Hex(other), data: tgz},
		{name: "neither given", data: tgz},
		{name: "only unknown algorithms", integrity: "sha256-abc", data: tgz},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckTarball(tc.integrity, tc.shasum, tc.data)
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

type staticSigner struct{ key SigningKey }

func (s staticSigner) ActiveKey(context.Context) (SigningKey, error) { return s.key, nil }

func TestServiceImportRestricted(t *testing.T) {
	store := newMemStore()
	s := newTestService(store)
	tgz := makeTarball(t, "@acme/secret", "1.0.0")
	in := &ImportedPackage{Name: "@acme/secret", Access: AccessRestricted, Maintainers: []Person{{Name: "carol"}},
		Versions: []ImportedVersion{importedVersion(t, "@acme/secret", "1.0.0", tgz, nil)}}
	if _, err := s.Import(context.Background(), operatorID, in); err != nil {
		t.Fatal(err)
	}
	if AccessOf(store.stored(t, "@acme/secret")) != AccessRestricted {
		t.Fatal("a restricted import became public")
	}
	if _, err := s.Packument(context.Background(), Identity{Name: "mallory"}, "@acme/secret"); !IsKind(err, KindNotFound) {
		t.Fatalf("a stranger reads the restricted import: %v", err)
	}
}
