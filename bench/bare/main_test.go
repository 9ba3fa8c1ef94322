package main

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
)

func TestBareServesRecordedBytes(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("0.body", "GZIPPED-CORGI")
	write("1.body", "TARBALL")
	write("manifest.json", `[
	 {"path":"/left-pad","corgi":true,"file":"0.body","content_type":"application/vnd.npm.install-v1+json","content_encoding":"gzip","etag":"\"e1\""},
	 {"path":"/left-pad/-/left-pad-1.0.0.tgz","file":"1.body","content_type":"application/octet-stream"}]`)
	routes, err := load(dir)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(handler(routes))
	defer srv.Close()
	tests := []struct {
		name, path, accept, ifNoneMatch string
		wantStatus                      int
		wantLength, wantEncoding        string
	}{
		{name: "abbreviated packument", path: "/left-pad", accept: "application/vnd.npm.install-v1+json", wantStatus: 200, wantLength: "13", wantEncoding: "gzip"},
		{name: "revalidation", path: "/left-pad", accept: "application/vnd.npm.install-v1+json", ifNoneMatch: `"e1"`, wantStatus: 304},
		{name: "tarball", path: "/left-pad/-/left-pad-1.0.0.tgz", wantStatus: 200, wantLength: "7"},
		{name: "unknown path", path: "/nope", wantStatus: 404},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", srv.URL+tc.path, nil)
			req.Header.Set("Accept", tc.accept)
			req.Header.Set("Accept-Encoding", "gzip") // as npm does; keeps the client from decoding
			if tc.ifNoneMatch != "" {
				req.Header.Set("If-None-Match", tc.ifNoneMatch)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.wantStatus)
			}
			if tc.wantLength != "" && resp.Header.Get("Content-Length") != tc.wantLength {
				t.Errorf("Content-Length %q, want %q", resp.Header.Get("Content-Length"), tc.wantLength)
			}
			if resp.Header.Get("Content-Encoding") != tc.wantEncoding {
				t.Errorf("Content-Encoding %q, want %q", resp.Header.Get("Content-Encoding"), tc.wantEncoding)
			}
		})
	}
}
