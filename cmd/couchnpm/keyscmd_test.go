package main

import (
	"bytes"
	"strings"
	"testing"
)

// The argument checks of couchnpm keys run before CouchDB is contacted.
func TestKeysCommandArguments(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want int
		msg  string
	}{
		{"no subcommand", nil, 2, "usage:"},
		{"unknown subcommand", []string{"delete"}, 2, "usage:"},
		{"two subcommands", []string{"list", "rotate"}, 2, "usage:"},
		{"help", []string{"-h"}, 0, "couchnpm keys rotate"},
		{"bad couch URL", []string{"list", "--couchdb-url", "ftp://x"}, 2, "COUCHDB_URL must be an http(s) URL"},
		{"bad prefix", []string{"rotate", "--db-prefix", "Bad"}, 2, "not a valid CouchDB database name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if got := keysMain(tc.args, &stdout, &stderr); got != tc.want {
				t.Errorf("exit %d, want %d\n%s", got, tc.want, stderr.String())
			}
			if !strings.Contains(stdout.String()+stderr.String(), tc.msg) {
				t.Errorf("output %q lacks %q", stdout.String()+stderr.String(), tc.msg)
			}
		})
	}
}
