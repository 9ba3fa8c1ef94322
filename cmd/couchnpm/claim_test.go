package main

import (
	"bytes"
	"flag"
	"io"
	"strings"
	"testing"
)

func TestParseInterspersed(t *testing.T) {
	for _, tc := range []struct {
		args  []string
		names string
		owner string
	}{
		{[]string{"ms", "--owner", "alice"}, "ms", "alice"},
		{[]string{"--owner", "alice", "ms"}, "ms", "alice"},
		{[]string{"--owner=alice", "@acme/x", "extra"}, "@acme/x,extra", "alice"},
		{nil, "", ""},
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		owner := fs.String("owner", "", "")
		names, err := parseInterspersed(fs, tc.args)
		if err != nil || strings.Join(names, ",") != tc.names || *owner != tc.owner {
			t.Errorf("%q: names %v owner %q err %v; want %s %s", tc.args, names, *owner, err, tc.names, tc.owner)
		}
	}
}

// Bad invocations stop before CouchDB is contacted, with status 2.
func TestClaimUsageErrors(t *testing.T) {
	t.Setenv("COUCHDB_URL", "http://127.0.0.1:1") // nothing listens: reaching it would fail with 1
	for _, tc := range []struct {
		claim bool
		args  []string
	}{
		{true, nil},
		{true, []string{"a", "b", "--owner", "x", "--reason", "r"}},
		{true, []string{"--list", "ms"}},
		{true, []string{"ms", "--bogus"}},
		{false, nil},
		{false, []string{"--list"}},
		{true, []string{"ms", "--owner", "x", "--reason", "r", "--db-prefix", "Bad Prefix"}},
		{true, []string{"ms", "--reason", "r", "--by", "ops"}},
		{true, []string{"ms", "--owner", "x", "--by", "ops"}},
		{true, []string{"ms", "--owner", "x", "--reason", "r", "--by", " "}},
		{true, []string{"../etc", "--owner", "x", "--reason", "r", "--by", "ops"}},
		{false, []string{"../etc"}},
	} {
		var stderr bytes.Buffer
		if code := claimMain(tc.args, tc.claim, io.Discard, &stderr); code != 2 {
			t.Errorf("claim=%v %q: exit %d, want 2\n%s", tc.claim, tc.args, code, stderr.String())
		}
	}
}
