package registry

import (
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestPreparePublishAccepts(t *testing.T) {
	tgz := makeTarball(t, "foo", "1.0.0")
	scopedTgz := makeTarball(t, "@s/p", "1.0.0")
	tests := []struct {
		name    string
		pkg     string
		body    func() *PublishBody
		tgz     []byte
		wantAtt string
		wantTag map[string]string
	}{
		{
			name: "unscoped with shasum and sha512 integrity", pkg: "foo", tgz: tgz, wantAtt: "foo-1.0.0.tgz",
			body: func() *PublishBody {
				return buildBody(t, "foo", map[string]string{"latest": "1.0.0"}, pubVersion{version: "1.0.0", tgz: tgz})
			},
			wantTag: map[string]string{"latest": "1.0.0"},
		},
		{
			name: "scoped with npm's @scope/pkg attachment name", pkg: "@s/p", tgz: scopedTgz, wantAtt: "p-1.0.0.tgz",
			body: func() *PublishBody {
				return buildBody(t, "@s/p", map[string]string{"latest": "1.0.0"}, pubVersion{version: "1.0.0", tgz: scopedTgz})
			},
			wantTag: map[string]string{"latest": "1.0.0"},
		},
		{
			name: "scoped with the short attachment name", pkg: "@s/p", tgz: scopedTgz, wantAtt: "p-1.0.0.tgz",
			body: func() *PublishBody {
				return buildBody(t, "@s/p", nil, pubVersion{version: "1.0.0", tgz: scopedTgz, attName: "p-1.0.0.tgz"})
			},
			wantTag: map[string]string{},
		},
		{
			name: "integrity missing is accepted", pkg: "foo", tgz: tgz, wantAtt: "foo-1.0.0.tgz",
			body: func() *PublishBody {
				return buildBody(t, "foo", nil, pubVersion{version: "1.0.0", tgz: tgz, dist: map[string]any{"shasum": sha1Hex(tgz)}})
			},
			wantTag: map[string]string{},
		},
		{
			name: "no dist at all is accepted", pkg: "foo", tgz: tgz, wantAtt: "foo-1.0.0.tgz",
			body: func() *PublishBody {
				b := buildBody(t, "foo", nil, pubVersion{version: "1.0.0", tgz: tgz})
				b.Versions["1.0.0"] = Manifest(`{"name":"foo","version":"1.0.0"}`)
				return b
			},
			wantTag: map[string]string{},
		},
		{
			name: "uppercase shasum", pkg: "foo", tgz: tgz, wantAtt: "foo-1.0.0.tgz",
			body: func() *PublishBody {
				return buildBody(t, "foo", nil, pubVersion{version: "1.0.0", tgz: tgz, dist: map[string]any{"shasum": strings.ToUpper(sha1Hex(tgz))}})
			},
			wantTag: map[string]string{},
		},
		{
			name: "sha1 integrity", pkg: "foo", tgz: tgz, wantAtt: "foo-1.0.0.tgz",
			body: func() *PublishBody {
				return buildBody(t, "foo", nil, pubVersion{version: "1.0.0", tgz: tgz, dist: map[string]any{"integrity": sha1SRI(tgz)}})
			},
			wantTag: map[string]string{},
		},
		{
			name: "integrity with options and several entries", pkg: "foo", tgz: tgz, wantAtt: "foo-1.0.0.tgz",
			body: func() *PublishBody {
				return buildBody(t, "foo", nil, pubVersion{version: "1.0.0", tgz: tgz, dist: map[string]any{"integrity": sha1SRI(tgz) + " " + sha512SRI(tgz) + "?opt"}})
			},
			wantTag: map[string]string{},
		},
		{
			name: "length omitted", pkg: "foo", tgz: tgz, wantAtt: "foo-1.0.0.tgz",
			body: func() *PublishBody {
				b := buildBody(t, "foo", nil, pubVersion{version: "1.0.0", tgz: tgz})
				a := b.Attachments["foo-1.0.0.tgz"]
				a.Length = 0
				b.Attachments["foo-1.0.0.tgz"] = a
				return b
			},
			wantTag: map[string]string{},
		},
		{
			name: "empty name and _id in the body", pkg: "foo", tgz: tgz, wantAtt: "foo-1.0.0.tgz",
			body: func() *PublishBody {
				b := buildBody(t, "foo", map[string]string{"beta": "1.0.0"}, pubVersion{version: "1.0.0", tgz: tgz})
				b.Name, b.ID = "", ""
				return b
			},
			wantTag: map[string]string{"beta": "1.0.0"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pub, err := PreparePublish(tc.pkg, tc.body())
			if err != nil {
				t.Fatalf("PreparePublish: %v", err)
			}
			if pub.Name != tc.pkg {
				t.Errorf("Name = %q, want %q", pub.Name, tc.pkg)
			}
			if len(pub.Versions) != 1 {
				t.Fatalf("got %d versions, want 1", len(pub.Versions))
			}
			nv := pub.Versions[0]
			if nv.Version != "1.0.0" || nv.Attachment != tc.wantAtt {
				t.Errorf("version/attachment = %q/%q, want 1.0.0/%q", nv.Version, nv.Attachment, tc.wantAtt)
			}
			if nv.Shasum != sha1Hex(tc.tgz) {
				t.Errorf("Shasum = %q, want %q", nv.Shasum, sha1Hex(tc.tgz))
			}
			if nv.Integrity != sha512SRI(tc.tgz) {
				t.Errorf("Integrity = %q, want the computed %q", nv.Integrity, sha512SRI(tc.tgz))
			}
			if nv.Length != int64(len(tc.tgz)) {
				t.Errorf("Length = %d, want %d", nv.Length, len(tc.tgz))
			}
			if nv.Data != base64.StdEncoding.EncodeToString(tc.tgz) {
				t.Errorf("Data is not the base64 tarball as sent")
			}
			if len(pub.Tags) != len(tc.wantTag) {
				t.Errorf("Tags = %v, want %v", pub.Tags, tc.wantTag)
			}
			for k, v := range tc.wantTag {
				if pub.Tags[k] != v {
					t.Errorf("Tags = %v, want %v", pub.Tags, tc.wantTag)
				}
			}
		})
	}
}

func TestPreparePublishRefuses(t *testing.T) {
	tgz := makeTarball(t, "foo", "1.0.0")
	other := makeTarball(t, "foo", "9.9.9")
	good := func() *PublishBody {
		return buildBody(t, "foo", map[string]string{"latest": "1.0.0"}, pubVersion{version: "1.0.0", tgz: tgz})
	}
	setAtt := func(b *PublishBody, f func(*Attachment)) *PublishBody {
		a := b.Attachments["foo-1.0.0.tgz"]
		f(&a)
		b.Attachments["foo-1.0.0.tgz"] = a
		return b
	}
	tests := []struct {
		name string
		body func() *PublishBody
	}{
		{"wrong shasum", func() *PublishBody {
			return buildBody(t, "foo", nil, pubVersion{version: "1.0.0", tgz: tgz, dist: map[string]any{"shasum": sha1Hex(other), "integrity": sha512SRI(tgz)}})
		}},
		{"wrong sha512 integrity", func() *PublishBody {
			return buildBody(t, "foo", nil, pubVersion{version: "1.0.0", tgz: tgz, dist: map[string]any{"shasum": sha1Hex(tgz), "integrity": sha512SRI(other)}})
		}},
		{"wrong sha1 integrity", func() *PublishBody {
			return buildBody(t, "foo", nil, pubVersion{version: "1.0.0", tgz: tgz, dist: map[string]any{"integrity": sha1SRI(other)}})
		}},
		{"one of two integrity entries wrong", func() *PublishBody {
			return buildBody(t, "foo", nil, pubVersion{version: "1.0.0", tgz: tgz, dist: map[string]any{"integrity": sha512SRI(tgz) + " " + sha1SRI(other)}})
		}},
		{"integrity without sha512 or sha1", func() *PublishBody {
			return buildBody(t, "foo", nil, pubVersion{version: "1.0.0", tgz: tgz, dist: map[string]any{"integrity": "md5-AAAA"}})
		}},
		{"malformed integrity", func() *PublishBody {
			return buildBody(t, "foo", nil, pubVersion{version: "1.0.0", tgz: tgz, dist: map[string]any{"integrity": "garbage"}})
		}},
		{"missing attachment", func() *PublishBody {
			b := good()
			b.Attachments = map[string]Attachment{}
			return b
		}},
		{"extra attachment", func() *PublishBody {
			b := good()
			b.Attachments["foo-2.0.0.tgz"] = b.Attachments["foo-1.0.0.tgz"]
			return b
		}},
		{"attachment for another package", func() *PublishBody {
			b := good()
			b.Attachments = map[string]Attachment{"bar-1.0.0.tgz": b.Attachments["foo-1.0.0.tgz"]}
			return b
		}},
		{"attachment for another version", func() *PublishBody {
			b := good()
			b.Attachments = map[string]Attachment{"foo-2.0.0.tgz": b.Attachments["foo-1.0.0.tgz"]}
			return b
		}},
		{"attachment with a traversal name", func() *PublishBody {
			b := good()
			b.Attachments = map[string]Attachment{"../foo-1.0.0.tgz": b.Attachments["foo-1.0.0.tgz"]}
			return b
		}},
		{"body name mismatch", func() *PublishBody {
			b := good()
			b.Name = "bar"
			return b
		}},
		{"body _id mismatch", func() *PublishBody {
			b := good()
			b.ID = "bar"
			return b
		}},
		{"manifest names another package", func() *PublishBody {
			return buildBody(t, "foo", nil, pubVersion{version: "1.0.0", tgz: tgz, extra: map[string]any{"name": "bar"}})
		}},
		{"manifest without name", func() *PublishBody {
			b := good()
			b.Versions["1.0.0"] = Manifest(`{"version":"1.0.0"}`)
			return b
		}},
		{"manifest version mismatch", func() *PublishBody {
			return buildBody(t, "foo", nil, pubVersion{version: "1.0.0", tgz: tgz, extra: map[string]any{"version": "1.0.1"}})
		}},
		{"manifest is not an object", func() *PublishBody {
			b := good()
			b.Versions["1.0.0"] = Manifest(`"1.0.0"`)
			return b
		}},
		{"manifest is null", func() *PublishBody {
			b := good()
			b.Versions["1.0.0"] = Manifest(`null`)
			return b
		}},
		{"dist is not an object", func() *PublishBody {
			return buildBody(t, "foo", nil, pubVersion{version: "1.0.0", tgz: tgz, dist: map[string]any{}, extra: map[string]any{"dist": "x"}})
		}},
		{"version key not strict semver", func() *PublishBody {
			b := buildBody(t, "foo", nil, pubVersion{version: "1.0.0", tgz: tgz})
			b.Versions = map[string]Manifest{"v1.0.0": Manifest(`{"name":"foo","version":"v1.0.0"}`)}
			return b
		}},
		{"bad base64", func() *PublishBody {
			return setAtt(good(), func(a *Attachment) { a.Data = "!!!not base64!!!"; a.Length = 0 })
		}},
		{"empty attachment data", func() *PublishBody {
			return setAtt(good(), func(a *Attachment) { a.Data = ""; a.Length = 0 })
		}},
		{"length mismatch", func() *PublishBody {
			return setAtt(good(), func(a *Attachment) { a.Length++ })
		}},
		{"dist-tag pointing outside the publish", func() *PublishBody {
			b := good()
			b.DistTags = map[string]string{"latest": "2.0.0"}
			return b
		}},
		{"dist-tag that is a version", func() *PublishBody {
			b := good()
			b.DistTags = map[string]string{"1.0.0": "1.0.0"}
			return b
		}},
		{"no versions", func() *PublishBody {
			b := good()
			b.Versions = nil
			b.Attachments = nil
			return b
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pub, err := PreparePublish("foo", tc.body())
			if err == nil {
				t.Fatalf("PreparePublish accepted it: %+v", pub)
			}
			wantKind(t, err, KindInvalid)
		})
	}
}

func TestPreparePublishTwoVersions(t *testing.T) {
	b := buildBody(t, "foo", map[string]string{"latest": "1.1.0", "next": "2.0.0-rc.1"},
		pubVersion{version: "1.1.0"}, pubVersion{version: "2.0.0-rc.1"})
	pub := mustPrepare(t, "foo", b)
	got := map[string]string{}
	for _, nv := range pub.Versions {
		got[nv.Version] = nv.Attachment
	}
	if len(got) != 2 || got["1.1.0"] != "foo-1.1.0.tgz" || got["2.0.0-rc.1"] != "foo-2.0.0-rc.1.tgz" {
		t.Errorf("versions = %v", got)
	}
	if pub.Tags["latest"] != "1.1.0" || pub.Tags["next"] != "2.0.0-rc.1" {
		t.Errorf("tags = %v", pub.Tags)
	}
}

func TestPreparePublishAccess(t *testing.T) {
	b := buildBody(t, "@s/p", nil, pubVersion{version: "1.0.0"})
	access := "restricted"
	b.Access = &access
	if pub := mustPrepare(t, "@s/p", b); pub.Access != "restricted" {
		t.Errorf("Access = %q, want restricted", pub.Access)
	}
}

func TestDecodePublishBody(t *testing.T) {
	tests := []struct {
		name string
		body string
		kind Kind // -1: accepted
	}{
		{"object", `{"_id":"foo","name":"foo","versions":{"1.0.0":{"name":"foo"}},"_attachments":{},"access":null}`, -1},
		{"object with trailing whitespace", "{\"name\":\"foo\"}\n\t ", -1},
		{"malformed", `{"name":`, KindInvalid},
		{"not an object", `[1,2]`, KindInvalid},
		{"wrong field type", `{"versions":[]}`, KindInvalid},
		{"trailing document", `{"name":"foo"}{"name":"bar"}`, KindInvalid},
		{"trailing garbage", `{"name":"foo"} x`, KindInvalid},
		{"http body limit", "", KindTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var r = strings.NewReader(tc.body)
			var b *PublishBody
			var err error
			if tc.name == "http body limit" {
				b, err = DecodePublishBody(errReader{})
			} else {
				b, err = DecodePublishBody(r)
			}
			if tc.kind == -1 {
				if err != nil {
					t.Fatalf("DecodePublishBody: %v", err)
				}
				if b.Name != "foo" {
					t.Errorf("Name = %q", b.Name)
				}
				return
			}
			wantKind(t, err, tc.kind)
		})
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errTooLarge }

type tooLargeErr struct{}

func (tooLargeErr) Error() string { return "http: request body too large" }

var errTooLarge error = tooLargeErr{}

// DecodePublishBody's contract is a single JSON object, trailing data
// refused; json.Decoder.More reports false before a stray ']' or '}', so
// those slip through.
func TestDecodePublishBodyRefusesTrailingBracket(t *testing.T) {
	for _, body := range []string{`{"name":"foo"}}`, `{"name":"foo"}]`} {
		if _, err := DecodePublishBody(strings.NewReader(body)); !IsKind(err, KindInvalid) {
			t.Errorf("DecodePublishBody(%q) err = %v, want KindInvalid", body, err)
		}
	}
}

var (
	alice = Person{Name: "alice", Email: "alice@example.com"}
	bob   = Person{Name: "bob", Email: "bob@example.com"}
	t0    = time.Date(2024, 3, 1, 12, 0, 0, 123456789, time.UTC)
	t1    = t0.Add(time.Hour)
)

func TestMergeFirstPublish(t *testing.T) {
	readme := "# foo\n\nhello"
	b := buildBody(t, "foo", map[string]string{"latest": "1.0.0"}, pubVersion{version: "1.0.0", extra: map[string]any{
		"description": "a foo", "readme": readme, "license": "MIT", "scripts": map[string]string{"test": "x"},
	}})
	pub := mustPrepare(t, "foo", b)
	doc, err := Merge(nil, pub, alice, t0)
	if err != nil {
		t.Fatalf("Merge: %v", err)
	}
	stamp := "2024-03-01T12:00:00.123Z"
	if doc.ID != "foo" || doc.Name != "foo" || doc.Rev != "" {
		t.Errorf("id/name/rev = %q/%q/%q", doc.ID, doc.Name, doc.Rev)
	}
	if len(doc.Maintainers) != 1 || doc.Maintainers[0] != alice {
		t.Errorf("maintainers = %+v, want [alice]", doc.Maintainers)
	}
	for _, k := range []string{"created", "modified", "1.0.0"} {
		if doc.Time[k] != stamp {
			t.Errorf("time[%s] = %q, want %q", k, doc.Time[k], stamp)
		}
	}
	if doc.DistTags["latest"] != "1.0.0" || len(doc.DistTags) != 1 {
		t.Errorf("dist-tags = %v", doc.DistTags)
	}
	m := manifestOf(t, doc, "1.0.0")
	if _, ok := m["readme"]; ok {
		t.Errorf("readme left in the version manifest")
	}
	if jsonString(t, m["_id"]) != "foo@1.0.0" {
		t.Errorf("_id = %s", m["_id"])
	}
	var npmUser Person
	if err := json.Unmarshal(m["_npmUser"], &npmUser); err != nil || npmUser != alice {
		t.Errorf("_npmUser = %s", m["_npmUser"])
	}
	var maint []Person
	if err := json.Unmarshal(m["maintainers"], &maint); err != nil || len(maint) != 1 || maint[0] != alice {
		t.Errorf("version maintainers = %s", m["maintainers"])
	}
	if _, ok := m["scripts"]; !ok {
		t.Errorf("scripts dropped from the full manifest")
	}
	var dist map[string]string
	if err := json.Unmarshal(m["dist"], &dist); err != nil {
		t.Fatalf("dist: %v", err)
	}
	tgz := makeTarball(t, "foo", "1.0.0")
	if dist["tarball"] != "/foo/-/foo-1.0.0.tgz" {
		t.Errorf("dist.tarball = %q, want the registry-relative path", dist["tarball"])
	}
	if dist["shasum"] != sha1Hex(tgz) || dist["integrity"] != sha512SRI(tgz) {
		t.Errorf("dist = %v", dist)
	}
	if got := jsonString(t, doc.Fields["description"]); got != "a foo" {
		t.Errorf("description = %q", got)
	}
	if got := jsonString(t, doc.Fields["license"]); got != "MIT" {
		t.Errorf("license = %q", got)
	}
	if got := jsonString(t, doc.Fields["readme"]); got != readme {
		t.Errorf("readme = %q, want %q", got, readme)
	}
	att, ok := doc.Attachments["foo-1.0.0.tgz"]
	if !ok || att.Data != base64.StdEncoding.EncodeToString(tgz) || att.Stub {
		t.Errorf("attachment = %+v (ok=%v)", att, ok)
	}
	if len(doc.Attachments) != 1 {
		t.Errorf("attachments = %v", doc.Attachments)
	}
}

func TestMergeScopedFirstPublish(t *testing.T) {
	b := buildBody(t, "@s/p", nil, pubVersion{version: "1.0.0"})
	access := "public"
	b.Access = &access
	doc, err := Merge(nil, mustPrepare(t, "@s/p", b), alice, t0)
	if err != nil {
		t.Fatalf("Merge: %v", err)
	}
	var dist map[string]string
	_ = json.Unmarshal(manifestOf(t, doc, "1.0.0")["dist"], &dist)
	if dist["tarball"] != "/@s/p/-/p-1.0.0.tgz" {
		t.Errorf("dist.tarball = %q", dist["tarball"])
	}
	if _, ok := doc.Attachments["p-1.0.0.tgz"]; !ok || len(doc.Attachments) != 1 {
		t.Errorf("attachments = %v, want p-1.0.0.tgz only", doc.Attachments)
	}
	if doc.DistTags["latest"] != "1.0.0" {
		t.Errorf("latest = %q (no tags sent: the first version becomes latest)", doc.DistTags["latest"])
	}
	if got := jsonString(t, doc.Fields["access"]); got != "public" {
		t.Errorf("access = %q", got)
	}
}

func TestMergeReadmeFromBodyIsCut(t *testing.T) {
	long := strings.Repeat("r", MaxReadme+100)
	b := buildBody(t, "foo", nil, pubVersion{version: "1.0.0"})
	b.Readme = &long
	doc, err := Merge(nil, mustPrepare(t, "foo", b), alice, t0)
	if err != nil {
		t.Fatal(err)
	}
	if got := jsonString(t, doc.Fields["readme"]); len(got) != MaxReadme {
		t.Errorf("readme length = %d, want %d", len(got), MaxReadme)
	}
}

func TestMergeReadmeFromManifestIsCut(t *testing.T) {
	long := strings.Repeat("r", MaxReadme*2)
	b := buildBody(t, "foo", nil, pubVersion{version: "1.0.0", extra: map[string]any{"readme": long}})
	doc, err := Merge(nil, mustPrepare(t, "foo", b), alice, t0)
	if err != nil {
		t.Fatal(err)
	}
	if got := jsonString(t, doc.Fields["readme"]); len(got) != MaxReadme || got != long[:MaxReadme] {
		t.Errorf("readme length = %d, want %d", len(got), MaxReadme)
	}
	if _, ok := manifestOf(t, doc, "1.0.0")["readme"]; ok {
		t.Errorf("readme left in the version manifest")
	}
}

// A readme cut at MaxReadme bytes must stay valid UTF-8; cutting in the
// middle of a multi-byte character leaves a U+FFFD in the stored readme.
func TestMergeReadmeCutKeepsUTF8(t *testing.T) {
	long := "x" + strings.Repeat("é", MaxReadme) // 'é' is 2 bytes: the cut lands mid-character
	b := buildBody(t, "foo", nil, pubVersion{version: "1.0.0"})
	b.Readme = &long
	doc, err := Merge(nil, mustPrepare(t, "foo", b), alice, t0)
	if err != nil {
		t.Fatal(err)
	}
	got := jsonString(t, doc.Fields["readme"])
	if strings.ContainsRune(got, '\uFFFD') || !strings.HasPrefix(long, got) {
		t.Errorf("cut readme is not a prefix of the original (ends %q)", got[len(got)-8:])
	}
}

// publishTo prepares and merges one version into stored.
func publishTo(t *testing.T, stored *Packument, name string, user Person, now time.Time, tags map[string]string, vs ...pubVersion) (*Packument, error) {
	t.Helper()
	pub := mustPrepare(t, name, buildBody(t, name, tags, vs...))
	return Merge(stored, pub, user, now)
}

// roundTrip stores and reads back a document the way CouchDB would: JSON,
// inline attachments turned into stubs.
func roundTrip(t *testing.T, p *Packument) *Packument {
	t.Helper()
	s := newMemStore()
	if _, err := s.PutPackument(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	return s.stored(t, p.ID)
}

func TestMergeSecondVersion(t *testing.T) {
	first, err := publishTo(t, nil, "foo", alice, t0, map[string]string{"latest": "1.0.0"},
		pubVersion{version: "1.0.0", extra: map[string]any{"description": "old", "readme": "old readme", "keywords": []string{"a"}}})
	if err != nil {
		t.Fatal(err)
	}
	stored := roundTrip(t, first)
	doc, err := publishTo(t, stored, "foo", alice, t1, map[string]string{"latest": "1.1.0"},
		pubVersion{version: "1.1.0", extra: map[string]any{"description": "new", "readme": "new readme"}})
	if err != nil {
		t.Fatalf("Merge: %v", err)
	}
	if doc.DistTags["latest"] != "1.1.0" {
		t.Errorf("latest = %q, want 1.1.0", doc.DistTags["latest"])
	}
	if doc.Time["created"] != "2024-03-01T12:00:00.123Z" || doc.Time["modified"] != "2024-03-01T13:00:00.123Z" || doc.Time["1.1.0"] != "2024-03-01T13:00:00.123Z" || doc.Time["1.0.0"] != "2024-03-01T12:00:00.123Z" {
		t.Errorf("time = %v", doc.Time)
	}
	if len(doc.Versions) != 2 {
		t.Errorf("versions = %v", doc.SortedVersions())
	}
	if got := jsonString(t, doc.Fields["description"]); got != "new" {
		t.Errorf("description = %q, want the new latest's", got)
	}
	if _, ok := doc.Fields["keywords"]; ok {
		t.Errorf("keywords of the old latest still hoisted: %s", doc.Fields["keywords"])
	}
	if got := jsonString(t, doc.Fields["readme"]); got != "new readme" {
		t.Errorf("readme = %q", got)
	}
	old, ok := doc.Attachments["foo-1.0.0.tgz"]
	if !ok || !old.Stub || old.Data != "" {
		t.Errorf("existing attachment not kept as a stub: %+v (ok=%v)", old, ok)
	}
	if nw := doc.Attachments["foo-1.1.0.tgz"]; nw.Data == "" {
		t.Errorf("new attachment has no data: %+v", nw)
	}
	if doc.Rev != stored.Rev || doc.Rev == "" {
		t.Errorf("rev = %q, want the stored %q (needed for the conflict check)", doc.Rev, stored.Rev)
	}
}

func TestMergeTagBetaLeavesLatest(t *testing.T) {
	first, err := publishTo(t, nil, "foo", alice, t0, map[string]string{"latest": "1.0.0"},
		pubVersion{version: "1.0.0", extra: map[string]any{"description": "stable", "readme": "stable readme"}})
	if err != nil {
		t.Fatal(err)
	}
	doc, err := publishTo(t, roundTrip(t, first), "foo", alice, t1, map[string]string{"beta": "2.0.0-beta.1"},
		pubVersion{version: "2.0.0-beta.1", extra: map[string]any{"description": "beta", "readme": "beta readme"}})
	if err != nil {
		t.Fatalf("Merge: %v", err)
	}
	if doc.DistTags["latest"] != "1.0.0" || doc.DistTags["beta"] != "2.0.0-beta.1" {
		t.Errorf("dist-tags = %v, want latest 1.0.0 and beta 2.0.0-beta.1", doc.DistTags)
	}
	if got := jsonString(t, doc.Fields["description"]); got != "stable" {
		t.Errorf("description = %q, want latest's (stable)", got)
	}
	if got := jsonString(t, doc.Fields["readme"]); got != "stable readme" {
		t.Errorf("readme = %q, want latest's", got)
	}
	if _, ok := manifestOf(t, doc, "2.0.0-beta.1")["readme"]; ok {
		t.Errorf("readme left in the beta manifest")
	}
}

func TestMergeFirstPublishWithTagSetsLatest(t *testing.T) {
	doc, err := publishTo(t, nil, "foo", alice, t0, map[string]string{"beta": "1.0.0-beta.1"}, pubVersion{version: "1.0.0-beta.1"})
	if err != nil {
		t.Fatal(err)
	}
	if doc.DistTags["beta"] != "1.0.0-beta.1" || doc.DistTags["latest"] != "1.0.0-beta.1" {
		t.Errorf("dist-tags = %v", doc.DistTags)
	}
}

func TestMergeRefuses(t *testing.T) {
	base := func(t *testing.T) *Packument {
		doc, err := publishTo(t, nil, "foo", alice, t0, nil, pubVersion{version: "1.0.0"})
		if err != nil {
			t.Fatal(err)
		}
		return roundTrip(t, doc)
	}
	tests := []struct {
		name  string
		run   func(t *testing.T) error
		kind  Kind
		fresh bool
	}{
		{"republish existing version", func(t *testing.T) error {
			_, err := publishTo(t, base(t), "foo", alice, t1, nil, pubVersion{version: "1.0.0"})
			return err
		}, KindForbidden, false},
		{"republish existing version among new ones", func(t *testing.T) error {
			_, err := publishTo(t, base(t), "foo", alice, t1, nil, pubVersion{version: "1.0.1"}, pubVersion{version: "1.0.0"})
			return err
		}, KindForbidden, false},
		{"burned version (unpublished, still in time)", func(t *testing.T) error {
			p := base(t)
			delete(p.Versions, "1.0.0")
			p.Versions["1.0.1"] = Manifest(`{"name":"foo","version":"1.0.1"}`)
			_, err := publishTo(t, p, "foo", alice, t1, nil, pubVersion{version: "1.0.0"})
			return err
		}, KindForbidden, false},
		{"burned version of a tombstone", func(t *testing.T) error {
			p := base(t)
			p.Versions = map[string]Manifest{}
			p.Unpublished = json.RawMessage(`{"time":"2024-03-02T00:00:00.000Z","versions":["1.0.0"]}`)
			_, err := publishTo(t, p, "foo", alice, t1, nil, pubVersion{version: "1.0.0"})
			return err
		}, KindForbidden, false},
		{"non-maintainer", func(t *testing.T) error {
			_, err := publishTo(t, base(t), "foo", bob, t1, nil, pubVersion{version: "2.0.0"})
			return err
		}, KindForbidden, false},
		{"package with no maintainers stays locked", func(t *testing.T) error {
			p := base(t)
			p.Maintainers = nil
			_, err := publishTo(t, p, "foo", bob, t1, nil, pubVersion{version: "2.0.0"})
			return err
		}, KindForbidden, false},
		{"uppercase new name", func(t *testing.T) error {
			_, err := publishTo(t, nil, "Foo", alice, t0, nil, pubVersion{version: "1.0.0"})
			return err
		}, KindInvalid, true},
		{"core module new name", func(t *testing.T) error {
			_, err := publishTo(t, nil, "fs", alice, t0, nil, pubVersion{version: "1.0.0"})
			return err
		}, KindInvalid, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wantKind(t, tc.run(t), tc.kind)
		})
	}
}

func TestMergeLegacyUppercaseExistingPackage(t *testing.T) {
	// An existing legacy name keeps accepting publishes from its maintainers.
	stored := NewPackument("JSONStream")
	stored.Rev = "3-abc"
	stored.Maintainers = []Person{alice}
	stored.DistTags["latest"] = "1.0.0"
	stored.Versions["1.0.0"] = Manifest(`{"name":"JSONStream","version":"1.0.0"}`)
	stored.Time["1.0.0"] = "2015-01-01T00:00:00.000Z"
	stored.Time["created"] = "2015-01-01T00:00:00.000Z"
	doc, err := publishTo(t, stored, "JSONStream", alice, t1, map[string]string{"latest": "1.0.1"}, pubVersion{version: "1.0.1"})
	if err != nil {
		t.Fatalf("Merge: %v", err)
	}
	if doc.DistTags["latest"] != "1.0.1" || doc.Time["created"] != "2015-01-01T00:00:00.000Z" {
		t.Errorf("dist-tags %v, created %q", doc.DistTags, doc.Time["created"])
	}
}

func TestMergeSecondMaintainerKeepsMaintainers(t *testing.T) {
	stored := NewPackument("foo")
	stored.Rev = "1-a"
	stored.Maintainers = []Person{alice, bob}
	stored.Versions["1.0.0"] = Manifest(`{"name":"foo","version":"1.0.0"}`)
	stored.Time["1.0.0"] = "2020-01-01T00:00:00.000Z"
	stored.DistTags["latest"] = "1.0.0"
	doc, err := publishTo(t, stored, "foo", bob, t1, map[string]string{"latest": "1.1.0"}, pubVersion{version: "1.1.0"})
	if err != nil {
		t.Fatal(err)
	}
	if len(doc.Maintainers) != 2 {
		t.Errorf("maintainers = %+v", doc.Maintainers)
	}
	var npmUser Person
	_ = json.Unmarshal(manifestOf(t, doc, "1.1.0")["_npmUser"], &npmUser)
	if npmUser != bob {
		t.Errorf("_npmUser = %+v, want bob", npmUser)
	}
}

func TestMergeClearsTombstone(t *testing.T) {
	stored := NewPackument("foo")
	stored.Rev = "5-a"
	stored.Maintainers = []Person{alice}
	stored.Time["1.0.0"] = "2020-01-01T00:00:00.000Z"
	stored.Unpublished = json.RawMessage(`{"time":"2020-02-01T00:00:00.000Z"}`)
	doc, err := publishTo(t, stored, "foo", alice, t1, nil, pubVersion{version: "1.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	if doc.IsTombstone() || len(doc.Unpublished) != 0 {
		t.Errorf("still a tombstone: %s", doc.Unpublished)
	}
	if doc.DistTags["latest"] != "1.0.1" {
		t.Errorf("latest = %q", doc.DistTags["latest"])
	}
}

// With several versions in one publish, the root readme must be the latest
// version's. Merge takes the first manifest readme in pub.Versions order
// (map order in PreparePublish), skips the hoist when that is not latest's,
// and stores it in pub.Readme, so a retried Merge (Service.Publish on a
// conflict) hoists the wrong version's readme.
func TestMergeMultiVersionReadmeIsLatests(t *testing.T) {
	for i := 0; i < 20; i++ {
		pub := mustPrepare(t, "foo", buildBody(t, "foo", map[string]string{"latest": "1.0.0", "beta": "2.0.0-beta.1"},
			pubVersion{version: "1.0.0", extra: map[string]any{"readme": "stable readme"}},
			pubVersion{version: "2.0.0-beta.1", extra: map[string]any{"readme": "beta readme"}}))
		for attempt := 0; attempt < 2; attempt++ { // the second Merge is Service.Publish's retry
			doc, err := Merge(nil, pub, alice, t0)
			if err != nil {
				t.Fatal(err)
			}
			raw, ok := doc.Fields["readme"]
			if !ok || jsonString(t, raw) != "stable readme" {
				t.Fatalf("round %d attempt %d: readme = %s, want latest's (\"stable readme\")", i, attempt, raw)
			}
		}
		if pub.Readme != nil {
			t.Fatalf("Merge changed its input: pub.Readme = %q", *pub.Readme)
		}
	}
}

// checkIntegrity ignores sha256/sha384 entries, but Merge keeps the
// client's dist.integrity verbatim; ssri (npm) verifies with the strongest
// algorithm present, so "sha1-<right> sha384-<wrong>" is accepted here and
// then fails every install with EINTEGRITY.
func TestPublishIntegrityStrongerWrongEntry(t *testing.T) {
	tgz := makeTarball(t, "foo", "1.0.0")
	other := makeTarball(t, "foo", "6.6.6")
	s384 := sha512.Sum384(other)
	integrity := sha1SRI(tgz) + " sha384-" + base64.StdEncoding.EncodeToString(s384[:])
	b := buildBody(t, "foo", nil, pubVersion{version: "1.0.0", tgz: tgz, dist: map[string]any{"shasum": sha1Hex(tgz), "integrity": integrity}})
	pub, err := PreparePublish("foo", b)
	if err != nil {
		return // refusing it is a fine fix
	}
	doc, err := Merge(nil, pub, alice, t0)
	if err != nil {
		t.Fatal(err)
	}
	var dist map[string]string
	_ = json.Unmarshal(manifestOf(t, doc, "1.0.0")["dist"], &dist)
	if strings.Contains(dist["integrity"], "sha384-") {
		t.Errorf("stored dist.integrity %q carries an unverified (wrong) sha384", dist["integrity"])
	}
}

// SemVer precedence ignores build metadata and npm strips it
// (semver.clean), so 1.0.0+rebuild is version 1.0.0 again: publishing it
// next to 1.0.0 reuses a burned version number under another key.
func TestMergeRefusesBuildMetadataTwin(t *testing.T) {
	first, err := publishTo(t, nil, "foo", alice, t0, nil, pubVersion{version: "1.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = publishTo(t, roundTrip(t, first), "foo", alice, t1, nil, pubVersion{version: "1.0.0+rebuild"})
	if !IsKind(err, KindForbidden) && !IsKind(err, KindInvalid) {
		t.Errorf("publishing 1.0.0+rebuild over 1.0.0: err = %v, want KindForbidden (or KindInvalid)", err)
	}
}
