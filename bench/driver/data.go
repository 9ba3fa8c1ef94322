package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha1"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"time"
)

// dataset is the synthetic data loaded into every registry.
type dataset struct {
	Packages   []pkgSpec // the ordinary packages (the app depends on their latest versions)
	Big        []pkgSpec // packuments of 2,000+ versions
	Huge       pkgSpec   // one package with a very large tarball (the RSS check)
	HugeSize   int
	smallBytes int
}

type pkgSpec struct {
	Name     string
	Versions []string
	// sizes of the tarballs by version (bytes of random payload)
	Sizes map[string]int
	// Pad lengthens every manifest (bytes of description): the 2,000-version
	// packuments get enough to weigh over 5 MB.
	Pad int
}

func (p pkgSpec) Latest() string { return p.Versions[len(p.Versions)-1] }

// newDataset builds the data set: n packages of v versions; tarballs of
// 20 KB for old versions and 20 KB–5 MB (skewed towards small) for the
// latest; bigN packuments of bigV versions; one tarball of hugeSize.
func newDataset(n, v, bigN, bigV, hugeSize int) *dataset {
	const minSize, maxSize = 20 << 10, 5 << 20
	rng := rand.New(rand.NewPCG(42, 7))
	d := &dataset{HugeSize: hugeSize, smallBytes: minSize}
	for i := range n {
		p := pkgSpec{Name: fmt.Sprintf("bench-pkg-%03d", i), Sizes: map[string]int{}}
		for j := range v {
			ver := fmt.Sprintf("1.%d.0", j)
			p.Versions = append(p.Versions, ver)
			p.Sizes[ver] = minSize
		}
		// Skewed: most latest tarballs are small, a few reach 5 MB.
		u := rng.Float64()
		size := float64(minSize) * math.Pow(float64(maxSize)/float64(minSize), u*u*u)
		p.Sizes[p.Latest()] = int(size)
		d.Packages = append(d.Packages, p)
	}
	for i := range bigN {
		p := pkgSpec{Name: fmt.Sprintf("bench-big-%d", i), Sizes: map[string]int{}, Pad: 900}
		for j := range bigV {
			ver := fmt.Sprintf("%d.%d.%d", j/100, (j/10)%10, j%10)
			p.Versions = append(p.Versions, ver)
			p.Sizes[ver] = minSize
		}
		d.Big = append(d.Big, p)
	}
	d.Huge = pkgSpec{Name: "bench-huge", Versions: []string{"1.0.0"}, Sizes: map[string]int{"1.0.0": hugeSize}}
	return d
}

// tarball builds the package tarball of name@version: a package.json and
// size bytes of incompressible data, so its .tgz is about size bytes.
// The same arguments give the same bytes.
func tarball(name, version string, size int) []byte {
	seed := uint64(0)
	for _, c := range name + "@" + version {
		seed = seed*131 + uint64(c)
	}
	src := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16), byte(seed >> 24), byte(seed >> 32), byte(seed >> 40), byte(seed >> 48), byte(seed >> 56)})
	payload := make([]byte, size)
	_, _ = src.Read(payload)
	pj, _ := json.Marshal(map[string]any{"name": name, "version": version, "main": "index.js", "license": "MIT"})
	files := []struct {
		name string
		body []byte
	}{
		{"package/package.json", pj},
		{"package/index.js", []byte("module.exports = " + string(mustJSON(name+"@"+version)) + ";\n")},
		{"package/data.bin", payload},
	}
	var buf bytes.Buffer
	buf.Grow(size + 4096)
	gz, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	tw := tar.NewWriter(gz)
	for _, f := range files {
		_ = tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.body)), ModTime: time.Unix(499162500, 0), Typeflag: tar.TypeReg})
		_, _ = tw.Write(f.body)
	}
	_ = tw.Close()
	_ = gz.Close()
	return buf.Bytes()
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// manifest is a version manifest of realistic size (about 2.5 KB): npm's
// fields, devDependencies (never installed, so they need not exist) and dist.
func manifest(base, name, version string, tgz []byte, pad int) map[string]any {
	dev := map[string]string{}
	for i := range 25 {
		dev[fmt.Sprintf("some-dev-dependency-%02d", i)] = fmt.Sprintf("^%d.%d.0", i+1, i)
	}
	s1 := sha1.Sum(tgz)
	s512 := sha512.Sum512(tgz)
	file := fmt.Sprintf("%s-%s.tgz", name, version)
	return map[string]any{
		"_id": name + "@" + version, "name": name, "version": version,
		"description":     "A synthetic package of the couchnpm benchmark, with a manifest of realistic size." + strings.Repeat(" Long description.", pad/18),
		"main":            "index.js",
		"license":         "MIT",
		"keywords":        []string{"bench", "synthetic", "registry", "couchdb", "npm"},
		"scripts":         map[string]string{"test": "node --test", "build": "tsc -p .", "lint": "eslint ."},
		"repository":      map[string]string{"type": "git", "url": "git+https://git.example.com/acme/" + name + ".git"},
		"author":          map[string]string{"name": "Bench Author", "email": "bench@example.com"},
		"devDependencies": dev,
		"engines":         map[string]string{"node": ">=18"},
		"gitHead":         strings.Repeat("ab", 20),
		"_nodeVersion":    "20.11.1",
		"_npmVersion":     "10.2.4",
		"dist": map[string]any{
			"shasum":    hex.EncodeToString(s1[:]),
			"integrity": "sha512-" + base64.StdEncoding.EncodeToString(s512[:]),
			"tarball":   base + "/" + name + "/-/" + file,
		},
	}
}

// publishBody is npm's publish body for the given versions of name (the
// last one becomes latest).
func publishBody(base, name string, versions []string, sizes map[string]int, pad int) []byte {
	vs := map[string]any{}
	atts := map[string]any{}
	for _, v := range versions {
		tgz := tarball(name, v, sizes[v])
		vs[v] = manifest(base, name, v, tgz, pad)
		atts[fmt.Sprintf("%s-%s.tgz", name, v)] = map[string]any{
			"content_type": "application/octet-stream",
			"data":         base64.StdEncoding.EncodeToString(tgz),
			"length":       len(tgz),
		}
	}
	return mustJSON(map[string]any{
		"_id": name, "name": name,
		"description":  "A synthetic package of the couchnpm benchmark.",
		"dist-tags":    map[string]string{"latest": versions[len(versions)-1]},
		"versions":     vs,
		"access":       nil,
		"readme":       strings.Repeat("Synthetic readme line.\n", 40),
		"_attachments": atts,
	})
}

// describe is the data set in one paragraph of the report.
func (d *dataset) describe() string {
	return fmt.Sprintf("%d packages × %d versions (tarballs: 20 KB for old versions, 20 KB–5 MB skewed towards small for the latest), %d packument(s) of %d versions, one %d MB tarball; loaded into couchnpm and Verdaccio by HTTP PUT (npm's publish body).",
		len(d.Packages), len(d.Packages[0].Versions), len(d.Big), len(d.Big[0].Versions), d.HugeSize>>20)
}
