package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
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
		{name: "zero hash max age", args: []string{"verdaccio", dir, "--imported-hash-max-age", "0d"}, wantCode: 2, wantErr: "must be more than 0"},
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

func TestImportedHashMaxAgeFlag(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"90d", 90 * 24 * time.Hour, true},
		{"1d", 24 * time.Hour, true},
		{"720h", 720 * time.Hour, true},
		{"36h30m", 36*time.Hour + 30*time.Minute, true},
		{"0d", 0, false},
		{"0", 0, false},
		{"-5d", 0, false},
		{"-1h", 0, false},
		{"d", 0, false},
		{"1.5d", 0, false},
		{"+3d", 0, false},
		{"99999999d", 0, false},
		{"forever", 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			var d days
			err := d.Set(tc.in)
			if (err == nil) != tc.ok || (tc.ok && time.Duration(d) != tc.want) {
				t.Fatalf("Set(%q) = %v, %v; want %v ok=%v", tc.in, time.Duration(d), err, tc.want, tc.ok)
			}
		})
	}
	d := days(90 * 24 * time.Hour)
	if d.String() != "90d" {
		t.Fatalf("String() = %q", d.String())
	}
}
