package registry

import (
	"encoding/json"
	"reflect"
	"sort"
	"testing"
)

// storedFoo is a stored packument as CouchDB returns it: _rev, attachment
// stubs, relative dist.tarball paths, an unknown root field.
const storedFoo = `{
  "_id": "@s/foo", "_rev": "7-abc", "name": "@s/foo",
  "description": "a foo", "readme": "# foo", "x-custom": {"keep": [1, 2]},
  "dist-tags": {"latest": "1.0.0", "beta": "2.0.0-beta.1"},
  "maintainers": [{"name": "alice", "email": "alice@example.com"}],
  "time": {"created": "2024-01-01T00:00:00.000Z", "modified": "2024-02-01T00:00:00.000Z",
           "1.0.0": "2024-01-01T00:00:00.000Z", "2.0.0-beta.1": "2024-02-01T00:00:00.000Z"},
  "users": {"bob": true},
  "versions": {
    "1.0.0": {"name": "@s/foo", "version": "1.0.0", "description": "a foo", "readme": "old",
              "scripts": {"test": "tap", "install": "node-gyp rebuild"}, "hasInstallScript": true,
              "dependencies": {"a": "^1.0.0"}, "devDependencies": {"tap": "*"},
              "peerDependencies": {"p": "*"}, "peerDependenciesMeta": {"p": {"optional": true}},
              "optionalDependencies": {"o": "1"}, "bundleDependencies": ["a"],
              "bin": {"foo": "cli.js"}, "directories": {}, "engines": {"node": ">=18"},
              "os": ["linux"], "cpu": ["x64"], "libc": ["glibc"], "funding": "https://x",
              "deprecated": "use bar", "_hasShrinkwrap": false, "acceptDependencies": {},
              "license": "MIT", "repository": "x/y", "_npmUser": {"name": "alice"}, "gitHead": "abc",
              "dist": {"shasum": "aa", "integrity": "sha512-bb", "tarball": "/@s/foo/-/foo-1.0.0.tgz", "fileCount": 3}},
    "2.0.0-beta.1": {"name": "@s/foo", "version": "2.0.0-beta.1",
              "dist": {"shasum": "cc", "tarball": "http://old.example/whatever.tgz"}}
  },
  "_attachments": {
    "foo-1.0.0.tgz": {"content_type": "application/octet-stream", "digest": "md5-x", "length": 10, "revpos": 1, "stub": true},
    "foo-2.0.0-beta.1.tgz": {"content_type": "application/octet-stream", "digest": "md5-y", "length": 11, "revpos": 7, "stub": true}
  }
}`

func loadFoo(t *testing.T) *Packument {
	t.Helper()
	var p Packument
	if err := json.Unmarshal([]byte(storedFoo), &p); err != nil {
		t.Fatalf("Unmarshal: %v", err)
	}
	return &p
}

func decodeObject(t *testing.T, b []byte) map[string]json.RawMessage {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("not a JSON object: %v\n%s", err, b)
	}
	return m
}

func keys(m map[string]json.RawMessage) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func tarballOf(t *testing.T, manifest json.RawMessage) string {
	t.Helper()
	var m struct {
		Dist struct {
			Tarball string `json:"tarball"`
		} `json:"dist"`
	}
	if err := json.Unmarshal(manifest, &m); err != nil {
		t.Fatalf("manifest: %v", err)
	}
	return m.Dist.Tarball
}

const base = "https://npm.example.com/reg"

func TestRenderFull(t *testing.T) {
	for _, withRev := range []bool{false, true} {
		name := "without rev"
		if withRev {
			name = "with rev"
		}
		t.Run(name, func(t *testing.T) {
			p := loadFoo(t)
			b, err := Render{BaseURL: base}.Full(p, withRev)
			if err != nil {
				t.Fatalf("Full: %v", err)
			}
			out := decodeObject(t, b)
			if _, ok := out["_attachments"]; ok {
				t.Errorf("_attachments rendered")
			}
			rev, ok := out["_rev"]
			if withRev && (!ok || jsonString(t, rev) != "7-abc") {
				t.Errorf("_rev = %s, want 7-abc", rev)
			}
			if !withRev && ok {
				t.Errorf("_rev rendered without withRev: %s", rev)
			}
			if string(out["x-custom"]) == "" {
				t.Errorf("unknown root field dropped")
			} else {
				var xc map[string][]int
				if err := json.Unmarshal(out["x-custom"], &xc); err != nil || !reflect.DeepEqual(xc["keep"], []int{1, 2}) {
					t.Errorf("x-custom = %s", out["x-custom"])
				}
			}
			for _, k := range []string{"name", "dist-tags", "versions", "time", "maintainers", "readme", "description", "users"} {
				if _, ok := out[k]; !ok {
					t.Errorf("missing %q", k)
				}
			}
			var versions map[string]json.RawMessage
			if err := json.Unmarshal(out["versions"], &versions); err != nil {
				t.Fatal(err)
			}
			if got := tarballOf(t, versions["1.0.0"]); got != base+"/@s/foo/-/foo-1.0.0.tgz" {
				t.Errorf("1.0.0 dist.tarball = %q", got)
			}
			if got := tarballOf(t, versions["2.0.0-beta.1"]); got != base+"/@s/foo/-/foo-2.0.0-beta.1.tgz" {
				t.Errorf("beta dist.tarball = %q (must point at this registry)", got)
			}
			v1 := decodeObject(t, versions["1.0.0"])
			for _, k := range []string{"scripts", "readme", "gitHead", "_npmUser", "license"} {
				if _, ok := v1[k]; !ok {
					t.Errorf("full version lost %q", k)
				}
			}
			var dist map[string]json.RawMessage
			_ = json.Unmarshal(v1["dist"], &dist)
			if string(dist["fileCount"]) != "3" || jsonString(t, dist["integrity"]) != "sha512-bb" {
				t.Errorf("dist = %v", dist)
			}
			// Rendering must not change the stored document.
			if p.Rev != "7-abc" || len(p.Attachments) != 2 || tarballOf(t, p.Versions["1.0.0"]) != "/@s/foo/-/foo-1.0.0.tgz" {
				t.Errorf("Full modified its input: rev %q, %d attachments", p.Rev, len(p.Attachments))
			}
		})
	}
}

func TestRenderAbbreviated(t *testing.T) {
	p := loadFoo(t)
	b, err := Render{BaseURL: base}.Abbreviated(p)
	if err != nil {
		t.Fatalf("Abbreviated: %v", err)
	}
	out := decodeObject(t, b)
	if got, want := keys(out), []string{"dist-tags", "modified", "name", "versions"}; !reflect.DeepEqual(got, want) {
		t.Errorf("root keys = %v, want %v", got, want)
	}
	if jsonString(t, out["modified"]) != "2024-02-01T00:00:00.000Z" || jsonString(t, out["name"]) != "@s/foo" {
		t.Errorf("modified/name = %s/%s", out["modified"], out["name"])
	}
	var tags map[string]string
	if err := json.Unmarshal(out["dist-tags"], &tags); err != nil || tags["latest"] != "1.0.0" || tags["beta"] != "2.0.0-beta.1" {
		t.Errorf("dist-tags = %s", out["dist-tags"])
	}
	var versions map[string]json.RawMessage
	if err := json.Unmarshal(out["versions"], &versions); err != nil || len(versions) != 2 {
		t.Fatalf("versions = %s", out["versions"])
	}
	v1 := decodeObject(t, versions["1.0.0"])
	want := []string{
		"_hasShrinkwrap", "acceptDependencies", "bin", "bundleDependencies", "cpu", "dependencies", "deprecated",
		"devDependencies", "directories", "dist", "engines", "funding", "hasInstallScript", "libc", "name",
		"optionalDependencies", "os", "peerDependencies", "peerDependenciesMeta", "version",
	}
	if got := keys(v1); !reflect.DeepEqual(got, want) {
		t.Errorf("corgi version keys =\n %v\nwant\n %v", got, want)
	}
	if got := tarballOf(t, versions["1.0.0"]); got != base+"/@s/foo/-/foo-1.0.0.tgz" {
		t.Errorf("dist.tarball = %q", got)
	}
	if got := keys(decodeObject(t, versions["2.0.0-beta.1"])); !reflect.DeepEqual(got, []string{"dist", "name", "version"}) {
		t.Errorf("beta keys = %v", got)
	}
}

func TestRenderAbbreviatedWithoutModified(t *testing.T) {
	p := loadFoo(t)
	delete(p.Time, "modified")
	b, err := Render{}.Abbreviated(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := decodeObject(t, b)["modified"]; ok {
		t.Errorf("modified rendered though unknown: %s", b)
	}
}

func TestRenderVersion(t *testing.T) {
	p := loadFoo(t)
	b, err := Render{BaseURL: base}.Version(p, "1.0.0")
	if err != nil {
		t.Fatalf("Version: %v", err)
	}
	m := decodeObject(t, b)
	if jsonString(t, m["version"]) != "1.0.0" || jsonString(t, m["name"]) != "@s/foo" {
		t.Errorf("name/version = %s/%s", m["name"], m["version"])
	}
	if _, ok := m["scripts"]; !ok {
		t.Errorf("Version dropped fields; it renders the full manifest")
	}
	if got := tarballOf(t, b); got != base+"/@s/foo/-/foo-1.0.0.tgz" {
		t.Errorf("dist.tarball = %q", got)
	}
	if _, err := (Render{}).Version(p, "9.9.9"); err == nil {
		t.Errorf("Version of a missing version succeeded")
	}
}

func TestRenderCorruptManifestIsInternal(t *testing.T) {
	p := loadFoo(t)
	p.Versions["3.0.0"] = Manifest(`"not an object"`)
	_, err := Render{}.Full(p, false)
	wantKind(t, err, KindInternal)
	_, err = Render{}.Abbreviated(p)
	wantKind(t, err, KindInternal)
}

func TestResolveVersion(t *testing.T) {
	p := loadFoo(t)
	p.DistTags["dangling"] = "9.9.9"
	tests := []struct {
		name, spec, want string
		ok               bool
	}{
		{"exact", "1.0.0", "1.0.0", true},
		{"exact prerelease", "2.0.0-beta.1", "2.0.0-beta.1", true},
		{"latest tag", "latest", "1.0.0", true},
		{"beta tag", "beta", "2.0.0-beta.1", true},
		{"v prefix", "v1.0.0", "1.0.0", true},
		{"missing version", "1.0.1", "", false},
		{"missing tag", "next", "", false},
		{"tag pointing to a missing version", "dangling", "", false},
		{"range is not resolved", "^1.0.0", "", false},
		{"empty", "", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ResolveVersion(p, tc.spec)
			if tc.ok {
				if err != nil || got != tc.want {
					t.Fatalf("ResolveVersion(%q) = %q, %v; want %q", tc.spec, got, err, tc.want)
				}
				return
			}
			wantKind(t, err, KindNotFound)
		})
	}
}

func TestPackumentUnmarshal(t *testing.T) {
	p := loadFoo(t)
	if p.ID != "@s/foo" || p.Rev != "7-abc" || p.Name != "@s/foo" {
		t.Errorf("id/rev/name = %q/%q/%q", p.ID, p.Rev, p.Name)
	}
	if len(p.Versions) != 2 || p.DistTags["latest"] != "1.0.0" || p.Time["created"] != "2024-01-01T00:00:00.000Z" {
		t.Errorf("versions %d, tags %v, time %v", len(p.Versions), p.DistTags, p.Time)
	}
	if !p.Users["bob"] || len(p.Maintainers) != 1 || p.Maintainers[0].Email != "alice@example.com" {
		t.Errorf("users %v, maintainers %v", p.Users, p.Maintainers)
	}
	if a := p.Attachments["foo-2.0.0-beta.1.tgz"]; !a.Stub || a.Length != 11 || a.RevPos != 7 || a.Digest != "md5-y" {
		t.Errorf("attachment = %+v", a)
	}
	if got := keys(p.Fields); !reflect.DeepEqual(got, []string{"description", "readme", "x-custom"}) {
		t.Errorf("Fields keys = %v, want only the unknown root fields", got)
	}
	if p.IsTombstone() {
		t.Errorf("IsTombstone on a live package")
	}
}

func TestPackumentRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		doc  string
	}{
		{"full document", storedFoo},
		{"tombstone with time.unpublished object", `{"_id":"gone","_rev":"9-z","name":"gone","dist-tags":{},"versions":{},"maintainers":[],
			"time":{"created":"2020-01-01T00:00:00.000Z","modified":"2020-02-01T00:00:00.000Z","1.0.0":"2020-01-01T00:00:00.000Z",
			"unpublished":{"time":"2020-02-01T00:00:00.000Z","versions":["1.0.0"],"name":"alice"}}}`},
		{"users not an object", `{"_id":"u","name":"u","dist-tags":{},"versions":{},"maintainers":[],"time":{},"users":[]}`},
		{"legacy root fields of odd shapes", `{"_id":"l","name":"l","dist-tags":{"latest":"1.0.0"},"versions":{},"maintainers":[],"time":{},
			"author":"someone","repository":{"type":"git","url":"x"},"keywords":"a, b","_deleted_conflicts":["1-x"],"readmeFilename":null}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var p Packument
			if err := json.Unmarshal([]byte(tc.doc), &p); err != nil {
				t.Fatalf("Unmarshal: %v", err)
			}
			out, err := json.Marshal(&p)
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			var want, got any
			_ = json.Unmarshal([]byte(tc.doc), &want)
			_ = json.Unmarshal(out, &got)
			if !reflect.DeepEqual(want, got) {
				t.Errorf("round trip changed the document:\n in: %s\nout: %s", tc.doc, out)
			}
		})
	}
}

func TestPackumentTombstone(t *testing.T) {
	var p Packument
	doc := `{"_id":"gone","name":"gone","versions":{},"time":{"1.0.0":"2020-01-01T00:00:00.000Z","unpublished":{"time":"2020-02-01T00:00:00.000Z"}}}`
	if err := json.Unmarshal([]byte(doc), &p); err != nil {
		t.Fatal(err)
	}
	if !p.IsTombstone() {
		t.Errorf("IsTombstone = false")
	}
	if _, ok := p.Time["unpublished"]; ok {
		t.Errorf("time.unpublished kept as a time string")
	}
	if p.Time["1.0.0"] == "" {
		t.Errorf("version time lost: %v", p.Time)
	}
	var unp map[string]string
	if err := json.Unmarshal(p.Unpublished, &unp); err != nil || unp["time"] != "2020-02-01T00:00:00.000Z" {
		t.Errorf("Unpublished = %s", p.Unpublished)
	}
}

func TestPackumentUnmarshalTolerant(t *testing.T) {
	tests := []struct {
		name string
		doc  string
	}{
		{"users array", `{"_id":"a","name":"a","users":[]}`},
		{"users with a non-bool", `{"_id":"a","name":"a","users":{"bob":"yes"}}`},
		{"maintainers string", `{"_id":"a","name":"a","maintainers":"alice <a@b.c>"}`},
		{"time not an object", `{"_id":"a","name":"a","time":"2020"}`},
		{"dist-tags null", `{"_id":"a","name":"a","dist-tags":null,"versions":null}`},
		{"minimal", `{"_id":"a"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var p Packument
			if err := json.Unmarshal([]byte(tc.doc), &p); err != nil {
				t.Fatalf("Unmarshal refused old data: %v", err)
			}
			if p.ID != "a" || p.DistTags == nil || p.Versions == nil || p.Time == nil || p.Users == nil || p.Attachments == nil || p.Fields == nil {
				t.Errorf("maps not initialised: %+v", p)
			}
			if _, err := json.Marshal(&p); err != nil {
				t.Errorf("Marshal: %v", err)
			}
		})
	}
}

// Fields of unexpected shape must be kept raw. encoding/json fills a map
// or slice partially before reporting a type error, and UnmarshalJSON keeps
// that partial value, which MarshalJSON then writes over the raw one:
// {"bob":"yes"} comes back as {"bob":false}, a non-string dist-tag as "".
func TestPackumentRoundTripKeepsOddShapes(t *testing.T) {
	tests := []struct {
		name string
		doc  string
	}{
		{"users with non-bool values", `{"_id":"a","name":"a","dist-tags":{},"versions":{},"maintainers":[],"time":{},"users":{"alice":true,"bob":"yes"}}`},
		{"dist-tags with a non-string", `{"_id":"a","name":"a","dist-tags":{"latest":"1.0.0","old":1},"versions":{},"maintainers":[],"time":{}}`},
		{"maintainers with a string entry", `{"_id":"a","name":"a","dist-tags":{},"versions":{},"maintainers":[{"name":"alice"},"bob <b@c.d>"],"time":{}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var p Packument
			if err := json.Unmarshal([]byte(tc.doc), &p); err != nil {
				t.Fatalf("Unmarshal: %v", err)
			}
			out, err := json.Marshal(&p)
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			var want, got any
			_ = json.Unmarshal([]byte(tc.doc), &want)
			_ = json.Unmarshal(out, &got)
			if !reflect.DeepEqual(want, got) {
				t.Errorf("round trip changed the document:\n in: %s\nout: %s", tc.doc, out)
			}
		})
	}
}
