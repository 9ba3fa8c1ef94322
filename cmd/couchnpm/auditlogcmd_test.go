package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/couchnpm/couchnpm/auditlog"
)

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in      string
		want    time.Time
		wantErr bool
	}{
		{in: "24h", want: now.Add(-24 * time.Hour)},
		{in: "2026-01-02", want: time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)},
		{in: "2026-01-02T15:04:05Z", want: time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)},
		{in: "2026-01-02T15:04:05", want: time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)},
		{in: "yesterday", wantErr: true},
		{in: "-1h", wantErr: true},
	}
	for _, tc := range tests {
		got, err := parseSince(tc.in, now)
		if (err != nil) != tc.wantErr || (!tc.wantErr && !got.Equal(tc.want)) {
			t.Errorf("parseSince(%q) = %v, %v; want %v (error %v)", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}

// Bad arguments are refused before CouchDB is contacted (exit 2).
func TestAuditLogArguments(t *testing.T) {
	t.Setenv("COUCHDB_URL", "http://127.0.0.1:1") // nothing listens: a contact would fail with 1
	for _, args := range [][]string{
		{"--since", "soon"},
		{"--limit", "-1"},
		{"extra"},
		{"verify", "--package", "x"}, // verify checks everything
		{"--db-prefix", "Bad Prefix"},
	} {
		var stdout, stderr bytes.Buffer
		if code := auditLogMain(args, &stdout, &stderr, time.Now); code != 2 {
			t.Errorf("audit-log %v: exit %d, want 2\n%s", args, code, stderr.String())
		}
	}
}

func TestMatchesFilters(t *testing.T) {
	e := auditlog.Entry{Actor: "alice", Action: "publish", Package: "p", At: "2026-01-02T00:00:00Z"}
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if !matches(e, "p", "alice", "publish", from) || matches(e, "q", "", "", time.Time{}) ||
		matches(e, "", "bob", "", time.Time{}) || matches(e, "", "", "login", time.Time{}) ||
		matches(e, "", "", "", from.AddDate(0, 0, 2)) {
		t.Error("filters do not select as documented")
	}
	var out bytes.Buffer
	printEntries(&out, []auditlog.Entry{e}, false)
	if !strings.Contains(out.String(), "alice") || !strings.Contains(out.String(), "publish") {
		t.Errorf("table: %s", out.String())
	}
}
