package importer

import (
	"context"
	"crypto/sha1" //nolint:gosec // npm's dist.shasum
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseHtpasswd(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []HtpasswdEntry
		wantBad []string
	}{
		{name: "Verdaccio's lines with the autocreated comment",
			in:   "alice:$2y$10$abc:autocreated 2024-01-02T03:04:05.000Z\nbob:+HODfaIBgcG..:autocreated x\n",
			want: []HtpasswdEntry{{Line: 1, Name: "alice", Hash: "$2y$10$abc"}, {Line: 2, Name: "bob", Hash: "+HODfaIBgcG.."}}},
		{name: "plain name:hash, CRLF, blanks and comments",
			in:   "# users\r\n\r\ncarol:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\r\n",
			want: []HtpasswdEntry{{Line: 3, Name: "carol", Hash: "{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g="}}},
		{name: "malformed lines are reported by number, not content",
			in:      "no-colon-secret\n:nohash\nname:\ndave:$2a$10$x\n",
			want:    []HtpasswdEntry{{Line: 4, Name: "dave", Hash: "$2a$10$x"}},
			wantBad: []string{"line 1", "line 2", "line 3"}},
		{name: "empty file", in: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, bad := ParseHtpasswd(strings.NewReader(tc.in))
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("entries %+v, want %+v", got, tc.want)
			}
			if len(bad) != len(tc.wantBad) {
				t.Fatalf("errors %v, want %v", bad, tc.wantBad)
			}
			for i, b := range bad {
				if !strings.Contains(b.Error(), tc.wantBad[i]) || strings.Contains(b.Error(), "secret") {
					t.Errorf("error %q, want %q without the line's content", b, tc.wantBad[i])
				}
			}
		})
	}
}

func TestHtpasswdFromConfig(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, yaml, want string
	}{
		{name: "relative to the config", yaml: "storage: ./storage\nauth:\n  htpasswd:\n    file: ./htpasswd\n    max_users: 1000\n", want: filepath.Join(dir, "htpasswd")},
		{name: "absolute, quoted, commented", yaml: "auth:\n  htpasswd:\n    file: \"/etc/verdaccio/htpasswd\" # users\n", want: "/etc/verdaccio/htpasswd"},
		{name: "a file key elsewhere is not it", yaml: "log:\n  file: ./log\nauth:\n  other:\n    file: ./x\n", want: ""},
		{name: "no auth section", yaml: "storage: ./storage\n", want: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, "config.yaml")
			if err := os.WriteFile(p, []byte(tc.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := HtpasswdFromConfig(p)
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func integrityOf(b []byte) (string, string) {
	s1 := sha1.Sum(b) //nolint:gosec
	s512 := sha512.Sum512(b)
	return "sha512-" + base64.StdEncoding.EncodeToString(s512[:]), hex.EncodeToString(s1[:])
}

// writeVerdaccioPackage writes a package folder as Verdaccio 5 does.
func writeVerdaccioPackage(t *testing.T, storage, name string, doc map[string]any, files map[string][]byte) {
	t.Helper()
	dir := filepath.Join(storage, filepath.FromSlash(name))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(doc)
	if err := os.WriteFile(filepath.Join(dir, "package.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	for f, data := range files {
		if err := os.WriteFile(filepath.Join(dir, f), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func versionDoc(name, version, tarballURL string, data []byte) map[string]any {
	integrity, shasum := integrityOf(data)
	return map[string]any{"name": name, "version": version,
		"dist": map[string]any{"integrity": integrity, "shasum": shasum, "tarball": tarballURL}}
}

func TestVerdaccioStorage(t *testing.T) {
	ctx := context.Background()
	storage := t.TempDir()
	tgz := []byte("tarball of @acme/lib 1.0.0")
	writeVerdaccioPackage(t, storage, "@acme/lib", map[string]any{
		"name":         "@acme/lib",
		"versions":     map[string]any{"1.0.0": versionDoc("@acme/lib", "1.0.0", "http://vd:4873/@acme/lib/-/@acme/lib-1.0.0.tgz", tgz)},
		"dist-tags":    map[string]any{"latest": "1.0.0"},
		"_attachments": map[string]any{"lib-1.0.0.tgz": map[string]any{"shasum": "x", "version": "1.0.0"}},
		"_uplinks":     map[string]any{}, "_distfiles": map[string]any{},
	}, map[string][]byte{"lib-1.0.0.tgz": tgz})
	cachedTgz := []byte("tarball of left-pad from an uplink")
	writeVerdaccioPackage(t, storage, "left-pad", map[string]any{
		"name": "left-pad",
		"versions": map[string]any{
			"1.0.0": versionDoc("left-pad", "1.0.0", "http://vd:4873/left-pad/-/left-pad-1.0.0.tgz", cachedTgz),
			"2.0.0": versionDoc("left-pad", "2.0.0", "http://vd:4873/left-pad/-/left-pad-2.0.0.tgz", cachedTgz),
		},
		"_distfiles": map[string]any{"left-pad-1.0.0.tgz": map[string]any{"url": "http://up/left-pad-1.0.0.tgz"}},
	}, map[string][]byte{"left-pad-1.0.0.tgz": cachedTgz})
	writeVerdaccioPackage(t, storage, "wrong-name", map[string]any{"name": "other"}, nil)
	// Not packages: Verdaccio's database, an empty folder, a scope's file.
	os.WriteFile(filepath.Join(storage, ".verdaccio-db.json"), []byte(`{"list":[]}`), 0o644)
	os.MkdirAll(filepath.Join(storage, "empty"), 0o755)
	os.WriteFile(filepath.Join(storage, "@acme", "stray.json"), []byte(`{}`), 0o644)

	v, err := NewVerdaccio(storage)
	if err != nil {
		t.Fatal(err)
	}
	names, err := v.Names(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"@acme/lib", "left-pad", "wrong-name"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("names %v, want %v", names, want)
	}
	p, err := v.Packument(ctx, "@acme/lib")
	if err != nil {
		t.Fatal(err)
	}
	got, err := v.Tarball(ctx, p, "1.0.0")
	if err != nil || string(got) != string(tgz) {
		t.Fatalf("tarball %q, %v", got, err)
	}
	lp, err := v.Packument(ctx, "left-pad")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Tarball(ctx, lp, "1.0.0"); !errors.Is(err, errCachedUplink) {
		t.Errorf("cached uplink version: err %v", err)
	}
	if _, err := v.Tarball(ctx, lp, "2.0.0"); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing tarball: err %v", err)
	}
	if _, err := v.Packument(ctx, "wrong-name"); err == nil || !strings.Contains(err.Error(), "names") {
		t.Errorf("package.json naming another package: err %v", err)
	}
	for _, bad := range []string{"../etc", "@acme/../../x", "a/b/c"} {
		if _, err := v.Packument(ctx, bad); err == nil {
			t.Errorf("%q: read outside the storage folder", bad)
		}
	}
	// A dist.tarball naming a path out of the folder is not followed.
	p.Attachments = nil
	p.Versions["1.0.0"], _ = json.Marshal(versionDoc("@acme/lib", "1.0.0", "http://vd/x/..%2f..%2fsecret.tgz", tgz))
	if _, err := v.Tarball(ctx, p, "1.0.0"); err == nil {
		t.Errorf("a traversing tarball name was read")
	}
}

func TestMaintainerNames(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want []string
	}{
		{name: "Verdaccio 5 keeps none", doc: `{"versions":{"1.0.0":{"contributors":[]}}}`},
		{name: "packument and versions, objects and strings, publishers, deduplicated",
			doc:  `{"maintainers":[{"name":"alice","email":"a@x"},"bob <b@x>"],"versions":{"1.0.0":{"maintainers":[{"name":"alice"}],"_npmUser":{"name":"carol"}},"0.9.0":{"_npmUser":{"name":"dave"}}}}`,
			want: []string{"alice", "bob", "dave", "carol"}},
		{name: "odd shapes are ignored", doc: `{"maintainers":"alice","versions":{"1.0.0":{"maintainers":[1,{"email":"x"}]}}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var p Packument
			if err := json.Unmarshal([]byte(tc.doc), &p); err != nil {
				t.Fatal(err)
			}
			if got := p.maintainerNames(); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}
