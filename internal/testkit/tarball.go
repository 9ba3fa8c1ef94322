// Package testkit builds the test data every package's tests share: npm
// package tarballs. It imports nothing of couchnpm, so that the registry
// package's own tests can use it too (registry/registrytest holds the
// fakes of registry's interfaces).
package testkit

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"time"
)

// Package describes an npm package tarball: package/package.json holds
// name, version and Manifest's fields; package/index.js holds Index, by
// default a module exporting "name@version".
type Package struct {
	Name, Version string
	Manifest      map[string]any // more package.json fields
	Index         string
}

// modTime is every entry's time, so that the same package always makes
// the same bytes (and checksums).
var modTime = time.Unix(499162500, 0)

// Tarball builds the gzip-compressed tar npm publishes.
func (p Package) Tarball() []byte {
	pkg := map[string]any{}
	for k, v := range p.Manifest {
		pkg[k] = v
	}
	pkg["name"], pkg["version"] = p.Name, p.Version
	pj, err := json.Marshal(pkg)
	if err != nil {
		panic(err) // test data that does not marshal is a bug in the test
	}
	index := p.Index
	if index == "" {
		index = fmt.Sprintf("module.exports = %q;\n", p.Name+"@"+p.Version)
	}
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, f := range []struct{ name, body string }{{"package/package.json", string(pj)}, {"package/index.js", index}} {
		hdr := &tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.body)), ModTime: modTime, Typeflag: tar.TypeReg}
		if err := tw.WriteHeader(hdr); err != nil {
			panic(err)
		}
		if _, err := tw.Write([]byte(f.body)); err != nil {
			panic(err)
		}
	}
	if err := tw.Close(); err != nil {
		panic(err)
	}
	if err := gz.Close(); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

// Tarball is Package{Name: name, Version: version}.Tarball().
func Tarball(name, version string) []byte {
	return Package{Name: name, Version: version}.Tarball()
}
