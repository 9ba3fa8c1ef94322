package registry

// Fuzz targets for the registry's parsers and rules. Each runs its seeds as
// a normal test; scripts/test.sh also fuzzes each one briefly:
//
//	go test -run '^$' -fuzz '^FuzzNames$' -fuzztime 30s ./registry/
//
// The seeds are added in code (f.Add); testdata/fuzz/<Name>/ keeps only
// the inputs fuzzing found, which replay as unit tests.

import (
	"bytes"
	"crypto/sha1" //nolint:gosec // npm's dist.shasum is sha1
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// --- names ----------------------------------------------------------------

func nameSeeds() [][]any {
	var out [][]any
	for _, s := range []struct{ name, file, version string }{
		{"foo", "foo-1.0.0.tgz", "1.0.0"},
		{"@scope/pkg", "@scope/pkg-1.0.0-beta.1.tgz", "1.0.0-beta.1"},
		{"@scope/pkg", "pkg-2.0.0+build.1.tgz", "2.0.0+build.1"},
		{"Foo", "Foo-1.0.0.tgz", "1.0.0"},
		{"..", "../../etc/passwd", "1.0.0"},
		{"%2e%2e", "..%2f..%2fetc%2fpasswd", "0.0.0"},
		{"node_modules", "node_modules-1.0.0.tgz", "1.0.0"},
		{"@/x", "@/x-1.0.0.tgz", "1.0.0"},
		{"@a/b/c", "b-1.0.0.tgz", "1.0.0"},
		{"a" + strings.Repeat("b", 214), "x.tgz", "1.0.0"},
		{"http", "http-1.0.0.tgz", "1.0.0"},
		{"@s/http", "http-1.0.0.tgz", "1.0.0"},
		{" foo", "foo-1.0.0.tgz ", "1.0.0"},
		{"fo\xffo", "fo\xffo-1.0.0.tgz", "1.0.0"},
		{"foo-1.0.0", "foo-1.0.0-1.0.0.tgz", "1.0.0"},
		{"foo~bar", "foo~bar-1.0.0.tgz", "1.0.0"},
		{"_foo", "_foo-1.0.0.tgz", "1.0.0"},
		{"foo", "foo-1.0.0.tgz/../x", "1.0.0"},
	} {
		out = append(out, []any{s.name, s.file, s.version})
	}
	return out
}

func FuzzNames(f *testing.F) {
	for _, s := range nameSeeds() {
		f.Add(s[0].(string), s[1].(string), s[2].(string))
	}
	f.Fuzz(func(t *testing.T, name, file, version string) {
		errName := ValidateName(name)
		errNew := ValidateNewName(name)
		_ = ValidateUsername(name)
		if errNew == nil && errName != nil {
			t.Fatalf("%q is a valid new name but not a valid name: %v", name, errName)
		}
		scope, pkg, ok := SplitName(name)
		if ok {
			joined := pkg
			if scope != "" {
				joined = "@" + scope + "/" + pkg
			}
			if joined != name {
				t.Fatalf("SplitName(%q) = %q, %q: joins to %q", name, scope, pkg, joined)
			}
		}
		if errName == nil {
			if !ok {
				t.Fatalf("valid name %q does not split", name)
			}
			if len(name) > MaxNameLength || !utf8.ValidString(name) {
				t.Fatalf("valid name %q: too long or not UTF-8", name)
			}
			for _, seg := range strings.Split(name, "/") {
				if seg == "" || seg == "." || seg == ".." || strings.HasPrefix(seg, ".") {
					t.Fatalf("valid name %q has a dot or empty segment", name)
				}
			}
			if strings.ContainsAny(name, "%\\\x00 ?#") || strings.Count(name, "/") > 1 {
				t.Fatalf("valid name %q has a path-significant character", name)
			}
		}
		if errNew == nil && strings.ToLower(name) != name {
			t.Fatalf("valid new name %q is not lower case", name)
		}

		_ = TarballName(name, version)
		if v, err := VersionFromTarball(name, file); err == nil {
			if ValidateVersion(v) != nil {
				t.Fatalf("VersionFromTarball(%q, %q) = invalid version %q", name, file, v)
			}
			want := TarballName(name, v)
			if file != want && file != "@"+scope+"/"+want {
				t.Fatalf("VersionFromTarball(%q, %q) = %q, but that version's file is %q", name, file, v, want)
			}
			if strings.Contains(v, "/") || strings.Contains(v, "..") {
				t.Fatalf("VersionFromTarball(%q, %q) = %q", name, file, v)
			}
		} else if !IsKind(err, KindNotFound) {
			t.Fatalf("VersionFromTarball error kind: %v", err)
		}
		if errName == nil && ValidateVersion(version) == nil {
			file := TarballName(name, version)
			if got, err := VersionFromTarball(name, file); err != nil || got != version {
				t.Fatalf("VersionFromTarball(%q, TarballName) = %q, %v; want %q", name, got, err, version)
			}
			if scope != "" {
				if got, err := VersionFromTarball(name, "@"+scope+"/"+file); err != nil || got != version {
					t.Fatalf("VersionFromTarball(%q, @scope/file) = %q, %v; want %q", name, got, err, version)
				}
			}
			if p := TarballPath(name, version); strings.Contains(p, "/../") || strings.Contains(p, "/./") {
				t.Fatalf("TarballPath(%q, %q) = %q", name, version, p)
			}
		}
	})
}

// --- versions ---------------------------------------------------------------

func versionSeeds() [][]any {
	vs := []string{"1.0.0", "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta.2", "1.0.0-beta.11",
		"1.0.0-rc.1", "1.0.0+build", "1.0.0-beta+exp.sha.5114f85", "01.0.0", "1.0", "v1.0.0", "",
		"1.0.0-99999999999999999999", "1.0.0-100000000000000000000", "1.0.0-0.3.7", "1.0.0-x-y-z.--",
		"99999999999999999999.0.0", "1.0.0-", "1.0.0+", "1.0.0-01", "1.0.0-a..b", "*", "x"}
	var out [][]any
	for i := range vs {
		out = append(out, []any{vs[i], vs[(i+1)%len(vs)], vs[(i+5)%len(vs)]})
	}
	return out
}

func sign(n int) int {
	switch {
	case n < 0:
		return -1
	case n > 0:
		return 1
	}
	return 0
}

func FuzzVersions(f *testing.F) {
	for _, s := range versionSeeds() {
		f.Add(s[0].(string), s[1].(string), s[2].(string))
	}
	f.Fuzz(func(t *testing.T, a, b, c string) {
		for _, v := range []string{a, b, c} {
			err := ValidateVersion(v)
			_ = IsPrerelease(v)
			_ = ValidateTag(v)
			if err == nil {
				if len(v) > MaxVersionLength {
					t.Fatalf("valid version %q is too long", v)
				}
				core, _, _ := strings.Cut(v, "+")
				if IsPrerelease(v) != strings.Contains(core, "-") {
					t.Fatalf("IsPrerelease(%q) = %v", v, IsPrerelease(v))
				}
				if ValidateTag(v) == nil {
					t.Fatalf("version %q accepted as a dist-tag", v)
				}
			}
			if CompareVersions(v, v) != 0 {
				t.Fatalf("CompareVersions(%q, itself) = %d", v, CompareVersions(v, v))
			}
		}
		// A total preorder on all strings (non-versions first), so also on
		// valid versions: antisymmetric and transitive.
		pairs := [][2]string{{a, b}, {b, c}, {a, c}}
		for _, p := range pairs {
			if x, y := CompareVersions(p[0], p[1]), CompareVersions(p[1], p[0]); sign(x) != -sign(y) {
				t.Fatalf("CompareVersions(%q, %q) = %d but reversed = %d", p[0], p[1], x, y)
			}
		}
		for _, tri := range [][3]string{{a, b, c}, {a, c, b}, {b, a, c}, {b, c, a}, {c, a, b}, {c, b, a}} {
			x, y, z := tri[0], tri[1], tri[2]
			if CompareVersions(x, y) <= 0 && CompareVersions(y, z) <= 0 && CompareVersions(x, z) > 0 {
				t.Fatalf("not transitive: %q <= %q <= %q but %q > %q", x, y, z, x, z)
			}
			if CompareVersions(x, y) == 0 && CompareVersions(y, z) == 0 && CompareVersions(x, z) != 0 {
				t.Fatalf("equality not transitive: %q = %q = %q", x, y, z)
			}
		}
		var valid []string
		for _, v := range []string{a, b, c} {
			if ValidateVersion(v) == nil {
				valid = append(valid, v)
			}
		}
		h := HighestVersion(valid)
		if len(valid) == 0 {
			if h != "" {
				t.Fatalf("HighestVersion(none) = %q", h)
			}
			return
		}
		if !slices.Contains(valid, h) {
			t.Fatalf("HighestVersion(%q) = %q, not one of them", valid, h)
		}
		anyRelease := slices.ContainsFunc(valid, func(v string) bool { return !IsPrerelease(v) })
		if anyRelease && IsPrerelease(h) {
			t.Fatalf("HighestVersion(%q) = prerelease %q though a release exists", valid, h)
		}
		for _, v := range valid {
			if IsPrerelease(v) == IsPrerelease(h) && CompareVersions(v, h) > 0 {
				t.Fatalf("HighestVersion(%q) = %q, but %q is higher", valid, h, v)
			}
		}
	})
}

// --- publish body, PreparePublish, Merge --------------------------------------

// publishSeeds are real publish bodies (and a stored packument to merge
// into) plus hostile variants.
func publishSeeds(tb testing.TB) [][]any {
	enc := func(v any) []byte {
		b, err := json.Marshal(v)
		if err != nil {
			tb.Fatal(err)
		}
		return b
	}
	one := enc(buildBody(tb, "foo", map[string]string{"latest": "1.0.0"}, pubVersion{version: "1.0.0", extra: map[string]any{"readme": "# foo"}}))
	two := enc(buildBody(tb, "foo", map[string]string{"latest": "1.1.0", "beta": "2.0.0-beta.1"},
		pubVersion{version: "1.1.0"}, pubVersion{version: "2.0.0-beta.1"}))
	scoped := enc(buildBody(tb, "@s/p", nil, pubVersion{version: "1.0.0", attName: "@s/p-1.0.0.tgz"}))
	tgz := makeTarball(tb, "foo", "3.0.0")
	wrongSHA := enc(buildBody(tb, "foo", nil, pubVersion{version: "3.0.0", tgz: tgz,
		dist: map[string]any{"shasum": sha1Hex(tgz), "integrity": sha512SRI(makeTarball(tb, "foo", "6.6.6"))}}))
	sha1Only := enc(buildBody(tb, "foo", nil, pubVersion{version: "3.0.0", tgz: tgz, dist: map[string]any{"integrity": sha1SRI(tgz)}}))
	noDist := enc(buildBody(tb, "foo", nil, pubVersion{version: "3.0.0", tgz: tgz, dist: map[string]any{}}))
	stored, err := json.Marshal(mustMerge(tb, "foo", one))
	if err != nil {
		tb.Fatal(err)
	}
	dupAtt := []byte(strings.Replace(string(one), `"_attachments":`, `"_attachments":{"foo-1.0.0.tgz":{"data":"AAAA"}},"_attachments":`, 1))
	return [][]any{
		{one, []byte(nil)},
		{two, stored},
		{scoped, []byte(nil)},
		{wrongSHA, []byte(nil)},
		{sha1Only, stored},
		{noDist, stored},
		{dupAtt, []byte(nil)},
		{[]byte(`{"name":"foo","versions":{"1.0.0":{"name":"foo","version":"1.0.0"}},"_attachments":{"foo-1.0.0.tgz":{"data":"AAAA","length":3}}}`), []byte(`{"_id":"foo","name":"foo","maintainers":[{"name":"alice"}],"time":{"1.0.0":"x"}}`)},
		{[]byte(`{"a":` + strings.Repeat("[", 200)), []byte(nil)},
		{[]byte(`{"name":"foo"}}`), []byte(`{}`)},
	}
}

func mustMerge(tb testing.TB, name string, body []byte) *Packument {
	b, err := DecodePublishBody(bytes.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	pub, err := PreparePublish(name, b)
	if err != nil {
		tb.Fatal(err)
	}
	doc, err := Merge(nil, pub, alice, t0)
	if err != nil {
		tb.Fatal(err)
	}
	return doc
}

// integrityMatches is an independent reading of npm's dist fields: a
// string shasum must be the sha1, every sha512/sha1 integrity entry must
// match, and at least one must be there.
func integrityMatches(manifest json.RawMessage, tgz []byte) error {
	// Keys exactly, as npm (JavaScript) reads them: "Dist" is not "dist".
	var m map[string]json.RawMessage
	var dist map[string]any
	_ = json.Unmarshal(manifest, &m)
	_ = json.Unmarshal(m["dist"], &dist)
	s1 := sha1.Sum(tgz) //nolint:gosec
	s512 := sha512.Sum512(tgz)
	if s, ok := dist["shasum"].(string); ok && !strings.EqualFold(s, hex.EncodeToString(s1[:])) {
		return fmt.Errorf("dist.shasum %q is not the tarball's sha1", s)
	}
	if s, ok := dist["integrity"].(string); ok {
		checked := false
		for _, entry := range strings.Fields(s) {
			algo, digest, _ := strings.Cut(entry, "-")
			digest, _, _ = strings.Cut(digest, "?")
			var want []byte
			switch algo {
			case "sha512":
				want = s512[:]
			case "sha1":
				want = s1[:]
			default:
				continue
			}
			got, err := base64.StdEncoding.DecodeString(digest)
			if err != nil || !bytes.Equal(got, want) {
				return fmt.Errorf("integrity entry %q does not match", entry)
			}
			checked = true
		}
		if !checked {
			return fmt.Errorf("integrity %q has no sha512/sha1 entry", s)
		}
	}
	return nil
}

func FuzzPublish(f *testing.F) {
	for _, s := range publishSeeds(f) {
		f.Add(s[0].([]byte), s[1].([]byte))
	}
	f.Fuzz(func(t *testing.T, body, storedDoc []byte) {
		_, _ = DecodePublishBody(bytes.NewReader(body))
		ub, err := DecodeUpdateBody(bytes.NewReader(body))
		if err != nil {
			if !IsKind(err, KindInvalid) {
				t.Fatalf("decode error of kind %v: %v", KindOf(err), err)
			}
			return
		}
		if CheckJSON(body) != nil {
			t.Fatalf("decoded a body CheckJSON refuses")
		}
		b := &ub.PublishBody
		name := b.Name
		if ValidateName(name) != nil {
			name = "foo"
		}
		pub, err := PreparePublish(name, b)
		if err != nil {
			return
		}
		if len(pub.Versions) != len(b.Versions) || len(b.Attachments) != len(b.Versions) {
			t.Fatalf("prepared %d versions from %d versions and %d attachments", len(pub.Versions), len(b.Versions), len(b.Attachments))
		}
		for _, nv := range pub.Versions {
			manifest, ok := b.Versions[nv.Version]
			if !ok || ValidateVersion(nv.Version) != nil {
				t.Fatalf("prepared version %q is not a valid version of the body", nv.Version)
			}
			found := false
			for att, a := range b.Attachments {
				if v, err := VersionFromTarball(name, att); err == nil && v == nv.Version && a.Data == nv.Data {
					found = true
				}
			}
			if !found {
				t.Fatalf("version %s: its data is not its own attachment's", nv.Version)
			}
			tgz, err := base64.StdEncoding.DecodeString(nv.Data)
			if err != nil {
				t.Fatalf("version %s: accepted undecodable base64: %v", nv.Version, err)
			}
			s1 := sha1.Sum(tgz) //nolint:gosec
			s512 := sha512.Sum512(tgz)
			if nv.Shasum != hex.EncodeToString(s1[:]) || nv.Integrity != "sha512-"+base64.StdEncoding.EncodeToString(s512[:]) || nv.Length != int64(len(tgz)) {
				t.Fatalf("version %s: computed digests are wrong", nv.Version)
			}
			if err := integrityMatches(manifest, tgz); err != nil {
				t.Fatalf("version %s accepted although %v", nv.Version, err)
			}
		}
		var stored *Packument
		if len(storedDoc) > 0 {
			var p Packument
			if json.Unmarshal(storedDoc, &p) != nil {
				return
			}
			p.ID, p.Name = name, name
			p.Maintainers = append(p.Maintainers, alice) // reach the merge itself
			stored = &p
		}
		doc, err := Merge(stored, pub, alice, t0)
		if err != nil {
			return
		}
		for _, nv := range pub.Versions {
			var m struct {
				Name, Version string
				Dist          struct{ Shasum, Integrity, Tarball string }
			}
			if err := json.Unmarshal(doc.Versions[nv.Version], &m); err != nil {
				t.Fatalf("merged manifest %s: %v", nv.Version, err)
			}
			if m.Name != name || m.Version != nv.Version || m.Dist.Shasum != nv.Shasum || m.Dist.Integrity != nv.Integrity || m.Dist.Tarball != TarballPath(name, nv.Version) {
				t.Fatalf("merged manifest %s = %+v", nv.Version, m)
			}
			if doc.Attachments[nv.Attachment].Data != nv.Data {
				t.Fatalf("merged attachment %s is not the verified data", nv.Attachment)
			}
		}
		if _, ok := doc.Versions[doc.DistTags["latest"]]; !ok && stored == nil {
			t.Fatalf("latest %q is not a version", doc.DistTags["latest"])
		}
		raw, err := json.Marshal(doc)
		if err != nil {
			t.Fatalf("merged document does not marshal: %v", err)
		}
		var back Packument
		if err := json.Unmarshal(raw, &back); err != nil {
			t.Fatalf("merged document does not read back: %v", err)
		}
		for _, nv := range pub.Versions {
			if _, ok := back.Versions[nv.Version]; !ok {
				t.Fatalf("version %s lost in the round trip", nv.Version)
			}
		}
	})
}

// --- the abbreviated ("corgi") document -------------------------------------

func abbreviatedSeeds() [][]any {
	return [][]any{
		{[]byte(`{"_id":"foo","_rev":"1-a","name":"foo","dist-tags":{"latest":"1.0.0"},"time":{"modified":"2024-01-01T00:00:00.000Z"},
"versions":{"1.0.0":{"name":"foo","version":"1.0.0","scripts":{"x":"y"},"readme":"r","dependencies":{"a":"1"},"dist":{"tarball":"http://evil/x.tgz","shasum":"aa"}}},
"_attachments":{"foo-1.0.0.tgz":{"stub":true}},"readme":"long"}`)},
		{[]byte(`{"name":"@s/p","versions":{"1.0.0":{"dist":null},"2.0.0":{"dist":[]},"3.0.0":{}}}`)},
		{[]byte(`{"name":"x","versions":{"1.0.0":[]}}`)},
		{[]byte(`{"name":"x","versions":[],"dist-tags":5,"maintainers":"bob"}`)},
		{[]byte(`{"name":"x\"y","versions":{"1.0.0":{"_hasShrinkwrap":false,"bin":{"a":"b"},"__proto__":{}}}}`)},
	}
}

var allowedCorgiRoot = []string{"name", "dist-tags", "versions", "modified"}

func FuzzAbbreviated(f *testing.F) {
	for _, s := range abbreviatedSeeds() {
		f.Add(s[0].([]byte))
	}
	const base = "https://npm.example.com"
	render := Render{BaseURL: base}
	f.Fuzz(func(t *testing.T, doc []byte) {
		var p Packument
		if json.Unmarshal(doc, &p) != nil {
			return
		}
		out, err := render.Abbreviated(&p)
		if err != nil {
			for v, m := range p.Versions {
				var obj map[string]json.RawMessage
				if json.Unmarshal(m, &obj) != nil || obj == nil {
					return // an unusable stored manifest may fail the render
				}
				_ = v
			}
			t.Fatalf("Abbreviated failed on well-formed versions: %v", err)
		}
		if !json.Valid(out) {
			t.Fatalf("Abbreviated output is not JSON: %s", out)
		}
		var root map[string]json.RawMessage
		if err := json.Unmarshal(out, &root); err != nil {
			t.Fatalf("Abbreviated output is not an object: %v", err)
		}
		for k := range root {
			if !slices.Contains(allowedCorgiRoot, k) {
				t.Fatalf("Abbreviated has root field %q", k)
			}
		}
		var versions map[string]map[string]json.RawMessage
		if err := json.Unmarshal(root["versions"], &versions); err != nil {
			t.Fatalf("Abbreviated versions: %v", err)
		}
		for v, m := range versions {
			for k := range m {
				if !slices.Contains(abbreviatedFields, k) {
					t.Fatalf("Abbreviated version %s has field %q", v, k)
				}
			}
			var dist map[string]json.RawMessage
			if json.Unmarshal(m["dist"], &dist) == nil && dist != nil {
				var tarball string
				if json.Unmarshal(dist["tarball"], &tarball) != nil || tarball != base+TarballPath(p.Name, v) {
					t.Fatalf("Abbreviated version %s: dist.tarball = %s", v, dist["tarball"])
				}
			}
		}
		full, err := render.Full(&p, false)
		if err != nil {
			return
		}
		var fm map[string]json.RawMessage
		if err := json.Unmarshal(full, &fm); err != nil {
			t.Fatalf("Full output is not a JSON object: %v", err)
		}
		if _, ok := fm["_attachments"]; ok {
			t.Fatalf("Full output has _attachments")
		}
		if _, ok := fm["_rev"]; ok {
			t.Fatalf("Full output without rev has _rev")
		}
	})
}

// --- the strict JSON check, against encoding/json -----------------------------

func checkJSONSeeds() [][]any {
	return [][]any{
		{[]byte(`{"a":1,"b":[true,false,null,"x",-1.5e+3,{}],"c":{"d":"\u00e9\ud83d\ude00"}}`)},
		{[]byte(`{"name":"a","NAME":"b"}`)},
		{[]byte(`{"_attachments":{"a":{"data":"x","Data":"y"}},"maintainers":[{"name":"a","nAme":"b"}]}`)},
		{[]byte(`{"versions":{"1.0.0":{"k":1,"K":2}}}`)},
		{[]byte(`{"a":"\ud800\udc00\ud800"}`)},
		{[]byte(`{"a":"\udc00","b":"\ud800\u0041","c":"\\ud800"}`)},
		{[]byte("{\"a\":\"\xff\"}")},
		{[]byte(`{"a":[[[[[[[[[[]]]]]]]]]]}`)},
		{[]byte(`{"a":1}}`)},
		{[]byte(` {"k":1,"\u212a":2} `)},
		{[]byte(`{"a":-0.0e-0,"b":1E9}`)},
	}
}

// referenceCheck is CheckJSON's rule set written against encoding/json's
// token stream and a scan of the escapes, for a differential fuzz.
func referenceCheck(data []byte) bool {
	if !json.Valid(data) || !utf8.Valid(data) || hasLoneSurrogate(data) {
		return false
	}
	if t := bytes.TrimLeft(data, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return false
	}
	type frame struct {
		obj       bool
		keys      map[string]bool
		expectKey bool
	}
	var stack []*frame
	dec := json.NewDecoder(bytes.NewReader(data))
	for {
		tok, err := dec.Token()
		if err != nil {
			return true // io.EOF: json.Valid already vouched for the rest
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.obj && top.expectKey {
			if d, ok := tok.(json.Delim); ok && d == '}' {
				stack = stack[:len(stack)-1]
				if len(stack) > 0 && stack[len(stack)-1].obj {
					stack[len(stack)-1].expectKey = true
				}
				continue
			}
			key := tok.(string)
			if top.keys[key] {
				return false
			}
			top.keys[key] = true
			top.expectKey = false
			continue
		}
		switch d, _ := tok.(json.Delim); d {
		case '{', '[':
			if len(stack)+1 > MaxJSONDepth {
				return false
			}
			stack = append(stack, &frame{obj: d == '{', keys: map[string]bool{}, expectKey: d == '{'})
		case ']':
			stack = stack[:len(stack)-1]
			if len(stack) > 0 && stack[len(stack)-1].obj {
				stack[len(stack)-1].expectKey = true
			}
		default: // a scalar value
			if top != nil && top.obj {
				top.expectKey = true
			}
		}
	}
}

// hasLoneSurrogate reports a \uD800-\uDFFF escape that is not a high
// surrogate followed by a low one, in data that json.Valid accepted (so
// every backslash is in a string and starts a well-formed escape).
func hasLoneSurrogate(data []byte) bool {
	hex4 := func(i int) rune {
		r, _ := strconv.ParseUint(string(data[i:i+4]), 16, 16)
		return rune(r)
	}
	for i := 0; i < len(data); i++ {
		if data[i] != '\\' {
			continue
		}
		i++ // the escaped byte
		if data[i] != 'u' {
			continue
		}
		r := hex4(i + 1)
		i += 4
		switch {
		case r >= 0xDC00 && r <= 0xDFFF:
			return true
		case r >= 0xD800 && r <= 0xDBFF:
			if i+6 >= len(data) || data[i+1] != '\\' || data[i+2] != 'u' {
				return true
			}
			if r2 := hex4(i + 3); r2 < 0xDC00 || r2 > 0xDFFF {
				return true
			}
			i += 6
		}
	}
	return false
}

func FuzzCheckJSON(f *testing.F) {
	for _, s := range checkJSONSeeds() {
		f.Add(s[0].([]byte))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		err := CheckJSON(data)
		if err != nil && !IsKind(err, KindInvalid) {
			t.Fatalf("CheckJSON error of kind %v", KindOf(err))
		}
		if want := referenceCheck(data); (err == nil) != want {
			t.Fatalf("CheckJSON(%q) = %v, reference says accepted=%v", data, err, want)
		}
	})
}
