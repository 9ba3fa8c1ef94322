package testkit

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"testing"
)

func TestTarball(t *testing.T) {
	for _, tc := range []struct {
		name      string
		pkg       Package
		wantIndex string
		wantField string // a package.json field that must be there
	}{
		{"default module", Package{Name: "@s/p", Version: "1.0.0"}, `module.exports = "@s/p@1.0.0";` + "\n", "name"},
		{"own index and manifest fields", Package{Name: "p", Version: "2.0.0", Manifest: map[string]any{"main": "index.js"}, Index: "x"}, "x", "main"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.pkg.Tarball()
			if !bytes.Equal(b, tc.pkg.Tarball()) {
				t.Error("the same package makes different bytes")
			}
			gz, err := gzip.NewReader(bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			tr := tar.NewReader(gz)
			files := map[string]string{}
			for {
				h, err := tr.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(tr)
				files[h.Name] = string(body)
			}
			if files["package/index.js"] != tc.wantIndex {
				t.Errorf("index.js %q, want %q", files["package/index.js"], tc.wantIndex)
			}
			var pj map[string]any
			if err := json.Unmarshal([]byte(files["package/package.json"]), &pj); err != nil {
				t.Fatal(err)
			}
			if pj["name"] != tc.pkg.Name || pj["version"] != tc.pkg.Version || pj[tc.wantField] == nil {
				t.Errorf("package.json %v", pj)
			}
		})
	}
}
