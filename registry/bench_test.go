package registry

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// synthManifest is a version manifest of the size and shape npm publishes
// (about 2.5 KB: dependencies, scripts, dist with signatures).
func synthManifest(name, v string) Manifest {
	deps := map[string]string{}
	for i := range 10 {
		deps[fmt.Sprintf("dep-%02d", i)] = fmt.Sprintf("^%d.%d.0", i+1, i)
	}
	dev := map[string]string{}
	for i := range 15 {
		dev[fmt.Sprintf("devdep-%02d", i)] = fmt.Sprintf("~%d.0.%d", i, i)
	}
	m := map[string]any{
		"name": name, "version": v,
		"description":     "A synthetic package used to measure the registry's read and write paths with realistic manifests.",
		"main":            "index.js",
		"types":           "index.d.ts",
		"license":         "MIT",
		"keywords":        []string{"bench", "synthetic", "registry", "couchdb", "npm"},
		"scripts":         map[string]string{"test": "node --test", "build": "tsc -p .", "lint": "eslint ."},
		"repository":      map[string]string{"type": "git", "url": "git+https://git.example.com/acme/" + name + ".git"},
		"author":          map[string]string{"name": "Bench Author", "email": "bench@example.com"},
		"dependencies":    deps,
		"devDependencies": dev,
		"engines":         map[string]string{"node": ">=18"},
		"gitHead":         strings.Repeat("ab", 20),
		"_nodeVersion":    "20.11.1",
		"_npmVersion":     "10.2.4",
		"_npmUser":        map[string]string{"name": "bench", "email": "bench@example.com"},
		"maintainers":     []map[string]string{{"name": "bench", "email": "bench@example.com"}},
		"dist": map[string]any{
			"integrity":    "sha512-" + base64.StdEncoding.EncodeToString([]byte(strings.Repeat(v, 64)[:64])),
			"shasum":       strings.Repeat("0123456789", 4),
			"tarball":      "https://registry.example.com/" + name + "/-/" + name + "-" + v + ".tgz",
			"fileCount":    42,
			"unpackedSize": 123456,
			"signatures": []map[string]string{{
				"keyid": "SHA256:jl3bwswu80PjjokCgh0o2w5c2U4LhQAE57gj9cz1kzA",
				"sig":   "MEUCIQ" + strings.Repeat("x", 90),
			}},
		},
		"directories":      map[string]any{},
		"_hasShrinkwrap":   false,
		"hasInstallScript": false,
	}
	raw, _ := json.Marshal(m)
	return raw
}

// synthPackument is a packument with n versions (n = 2000: about 5 MB).
func synthPackument(name string, n int) *Packument {
	p := NewPackument(name)
	p.Rev = "2000-0123456789abcdef0123456789abcdef"
	p.Maintainers = []Person{{Name: "bench", Email: "bench@example.com"}}
	p.Fields["description"] = json.RawMessage(`"A synthetic package"`)
	p.Fields["readme"] = json.RawMessage(mustMarshal(strings.Repeat("Synthetic readme line.\n", 200)))
	t0 := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	p.Time["created"] = t0.Format(time.RFC3339Nano)
	for i := range n {
		v := fmt.Sprintf("%d.%d.%d", i/100, (i/10)%10, i%10)
		p.Versions[v] = synthManifest(name, v)
		p.Time[v] = t0.Add(time.Duration(i) * time.Hour).Format(time.RFC3339Nano)
		p.DistTags["latest"] = v
		file := name + "-" + v + ".tgz"
		p.Attachments[file] = Attachment{ContentType: "application/octet-stream", Digest: "md5-AAAAAAAAAAAAAAAAAAAAAA==", Length: 20480, RevPos: i + 1, Stub: true}
	}
	p.Time["modified"] = t0.Add(time.Duration(n) * time.Hour).Format(time.RFC3339Nano)
	return p
}

func mustMarshal(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

const benchVersions = 2000

func BenchmarkRenderAbbreviated2000(b *testing.B) {
	p := synthPackument("big-package", benchVersions)
	r := Render{BaseURL: "http://127.0.0.1:4880"}
	out, _ := r.Abbreviated(p)
	b.SetBytes(int64(len(out)))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := r.Abbreviated(p); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRenderFull2000(b *testing.B) {
	p := synthPackument("big-package", benchVersions)
	r := Render{BaseURL: "http://127.0.0.1:4880"}
	out, _ := r.Full(p, false)
	b.SetBytes(int64(len(out)))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := r.Full(p, false); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodePackument2000 is what a cache miss pays before rendering:
// decoding the stored document.
func BenchmarkDecodePackument2000(b *testing.B) {
	doc, err := json.Marshal(synthPackument("big-package", benchVersions))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		var p Packument
		if err := json.Unmarshal(doc, &p); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPublishMerge2000 publishes one new version onto a stored
// packument of 2,000: PreparePublish (validation, tarball digests) and Merge.
func BenchmarkPublishMerge2000(b *testing.B) {
	const name = "big-package"
	stored := synthPackument(name, benchVersions)
	v := "99.0.0"
	tarball := []byte(strings.Repeat("tarball bytes ", 1500)) // ~20 KB
	file := name + "-" + v + ".tgz"
	body := &PublishBody{
		ID: name, Name: name,
		DistTags:    map[string]string{"latest": v},
		Versions:    map[string]Manifest{v: synthManifest(name, v)},
		Attachments: map[string]Attachment{file: {ContentType: "application/octet-stream", Data: base64.StdEncoding.EncodeToString(tarball), Length: int64(len(tarball))}},
	}
	// The manifest must carry the tarball's real digests.
	var m map[string]any
	_ = json.Unmarshal(body.Versions[v], &m)
	delete(m, "dist")
	body.Versions[v] = mustMarshal(m)
	user := Person{Name: "bench", Email: "bench@example.com"}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	fresh := stored.Clone
	if pub, err := PreparePublish(name, body); err != nil {
		b.Fatal(err)
	} else if _, err := Merge(fresh(), pub, user, now); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		doc := fresh()
		b.StartTimer()
		pub, err := PreparePublish(name, body)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Merge(doc, pub, user, now); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPublishMergeEncode2000 adds what the write costs in couchnpm
// before CouchDB: encoding the merged document.
func BenchmarkPublishMergeEncode2000(b *testing.B) {
	stored := synthPackument("big-package", benchVersions)
	b.ReportAllocs()
	for range b.N {
		if _, err := json.Marshal(stored); err != nil {
			b.Fatal(err)
		}
	}
}

// A publish body with a 10 MB tarball (13 MB of base64) and a manifest:
// the cost of the strict decode (CheckJSON, then the struct decode).
func BenchmarkDecodePublishBody10MB(b *testing.B) {
	tgz := make([]byte, 10<<20)
	for i := range tgz {
		tgz[i] = byte(i * 7)
	}
	body := []byte(`{"_id":"foo","name":"foo","dist-tags":{"latest":"1.0.0"},` +
		`"versions":{"1.0.0":{"name":"foo","version":"1.0.0","description":"d","dependencies":{"a":"^1.0.0"},"dist":{"shasum":"x"}}},` +
		`"_attachments":{"foo-1.0.0.tgz":{"content_type":"application/octet-stream","data":"` +
		base64.StdEncoding.EncodeToString(tgz) + `","length":10485760}}}`)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodePublishBody(bytes.NewReader(body)); err != nil {
			b.Fatal(err)
		}
	}
}
