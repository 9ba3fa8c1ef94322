package main

import (
	"bytes"
	"strings"
	"testing"
)

// Usage errors stop before CouchDB is reached (no COUCHDB_URL is needed).
func TestImportUsageErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
	}{
		{name: "no source kind", args: nil, wantCode: 2, wantErr: "usage:"},
		{name: "unknown source kind", args: []string{"nexus", dir}, wantCode: 2, wantErr: "usage:"},
		{name: "help", args: []string{"--help"}, wantCode: 0, wantErr: "couchnpm import verdaccio STORAGE_DIR"},
		{name: "verdaccio without a folder", args: []string{"verdaccio"}, wantCode: 2, wantErr: "usage:"},
		{name: "verdaccio folder missing", args: []string{"verdaccio", dir + "/nope"}, wantCode: 2, wantErr: "no such file"},
		{name: "htpasswd missing", args: []string{"verdaccio", dir, "--htpasswd", dir + "/nope"}, wantCode: 2, wantErr: "htpasswd"},
		{name: "bad access", args: []string{"verdaccio", dir, "--access", "secret"}, wantCode: 2, wantErr: "--access must be public or restricted"},
		{name: "registry without --scope", args: []string{"registry", "http://127.0.0.1:1"}, wantCode: 2, wantErr: "needs --scope"},
		{name: "registry with a bad URL", args: []string{"registry", "ftp://x", "--scope", "@acme"}, wantCode: 2, wantErr: "http(s)"},
		{name: "unknown flag", args: []string{"verdaccio", dir, "--nope"}, wantCode: 2, wantErr: "flag provided but not defined"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := importMain(tc.args, &stdout, &stderr)
			if code != tc.wantCode || !strings.Contains(stderr.String(), tc.wantErr) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", code, stderr.String(), tc.wantCode, tc.wantErr)
			}
		})
	}
}
