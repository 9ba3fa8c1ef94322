package main

import (
	"bytes"
	"io"
	"testing"
)

// Bad arguments exit 2 before CouchDB is contacted.
func TestOrgUsageErrors(t *testing.T) {
	t.Setenv("COUCHDB_URL", "http://127.0.0.1:1") // nothing listens: reaching it would fail with 1
	for _, args := range [][]string{
		nil,
		{"delete", "acme"},
		{"create"},
		{"create", "acme"},
		{"create", "acme", "other", "--owner", "alice"},
		{"create", "Acme", "--owner", "alice"},
		{"create", "../etc", "--owner", "alice"},
		{"create", "acme", "--owner", "Alice"},
		{"create", "acme", "--owner", "alice", "--bogus"},
		{"create", "acme", "--owner", "alice", "--db-prefix", "Bad Prefix"},
	} {
		var stderr bytes.Buffer
		if code := orgMain(args, io.Discard, &stderr); code != 2 {
			t.Errorf("org %q: exit %d, want 2\n%s", args, code, stderr.String())
		}
	}
}
