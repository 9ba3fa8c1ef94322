package main

import (
	"bytes"
	"strings"
	"testing"
)

// The operator commands share one way to read their arguments: words and
// flags in any order, serve's CouchDB settings checked, 0 after -h and 2
// with the reason on stderr after a bad flag or setting.
func TestOperatorFlagsParse(t *testing.T) {
	tests := []struct {
		name      string
		env       map[string]string
		args      []string
		wantWords []string
		wantOK    bool
		wantExit  int
		wantErr   string
	}{
		{name: "words and flags interleaved", args: []string{"a", "--owner", "x", "b", "--db-prefix", "reg"}, wantWords: []string{"a", "b"}, wantOK: true},
		{name: "help", args: []string{"-h"}, wantExit: 0, wantErr: "usage text"},
		{name: "unknown flag", args: []string{"--nope"}, wantExit: 2, wantErr: "flag provided but not defined"},
		{name: "bad URL", args: []string{"--couchdb-url", "ftp://x"}, wantExit: 2, wantErr: "COUCHDB_URL must be an http(s) URL"},
		{name: "bad prefix", args: []string{"--db-prefix", "Bad"}, wantExit: 2, wantErr: "is not a valid CouchDB database name"},
		{name: "bad environment", env: map[string]string{"COUCHNPM_COUCHDB_TIMEOUT": "soon"}, wantExit: 2, wantErr: "bad configuration: COUCHNPM_COUCHDB_TIMEOUT=\"soon\" is not a duration"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			var stderr bytes.Buffer
			fs := newOperatorFlags("couchnpm test", "usage text\n", &stderr)
			var owner string
			fs.StringVar(&owner, "owner", "", "")
			words, exit, ok := fs.parse(tc.args)
			if ok != tc.wantOK || (!ok && exit != tc.wantExit) {
				t.Fatalf("ok %v exit %d, want ok %v exit %d (stderr %q)", ok, exit, tc.wantOK, tc.wantExit, stderr.String())
			}
			if ok && (strings.Join(words, " ") != strings.Join(tc.wantWords, " ") || owner != "x" || fs.cfg.DBPrefix != "reg") {
				t.Errorf("words %q owner %q prefix %q", words, owner, fs.cfg.DBPrefix)
			}
			if !strings.Contains(stderr.String(), tc.wantErr) {
				t.Errorf("stderr %q, want it to contain %q", stderr.String(), tc.wantErr)
			}
		})
	}
}
