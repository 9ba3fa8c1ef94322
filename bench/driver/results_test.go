package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestTargetsPerStore(t *testing.T) {
	res := &results{Store: "pouchdb", HugeMB: 50, Duration: 8 * time.Second, Runs: []wrkRun{
		{Scenario: "(a) abbreviated", Target: "couchnpm", ReqPerS: 6000},
		{Scenario: "(a) abbreviated", Target: "verdaccio", ReqPerS: 100},
		{Scenario: "(a) abbreviated", Target: "couchdb", ReqPerS: 300},
		{Scenario: "(a) abbreviated", Target: "bare", ReqPerS: 20000},
		{Scenario: "(c) tarball", Target: "couchnpm", ReqPerS: 500},
		{Scenario: "(c) tarball", Target: "verdaccio", ReqPerS: 100},
		{Scenario: "(c) tarball", Target: "couchdb", Errors: -1},
		{Scenario: "(c) tarball", Target: "bare", ReqPerS: 20000},
	}, CI: []ciRun{{Target: "couchnpm", Took: 4 * time.Second}, {Target: "verdaccio", Took: 10 * time.Second}, {Target: "floor", Took: 5 * time.Second}}}
	passes := []*pass{
		{Store: "pouchdb", Res: res, Targets: map[string]targetLine{"follower": {Status: "missed", Figure: "120/s"},
			"pullthrough-warm": {Status: "info", Figure: "566/s (the target names CouchDB 3.5)"}}},
		{Store: "couchdb", NotRun: "no release", Targets: map[string]targetLine{}},
	}
	table := targetsTable(passes)
	tests := []struct{ name, row, want string }{
		{"tarball vs Verdaccio met", "(c) tarball GET ≥ 3× Verdaccio", "met: 5.00×"},
		{"tarball vs failed raw run", "(c) tarball GET ≥ 1× the raw", "| not measured |"},
		{"abbreviated vs bare missed", "≥ 0.6× the bare server", "**missed**: 0.30×"},
		{"npm ci met", "`npm ci` of the bench app ≤", "met: 0.40×"},
		{"npm ci floor is a figure only", "the floor server ÷ Verdaccio", "| 0.50× (5000.0 ms vs 10s); couchnpm ÷ the floor: 0.80× |"},
		{"tarball vs bare is a figure only", "tarball GET ÷ the bare server", "| 0.03× (500 vs 20000 req/s) |"},
		{"scenario line", "follower ≥ 500", "**missed**: 120/s"},
		{"no scenario script", "cold pull-through", "not measured (no scenario script reported it)"},
		{"a figure without a verdict", "warm pull-through", "| 566/s (the target names CouchDB 3.5) |"},
		{"store not run", "(c) tarball GET ≥ 3× Verdaccio", "| not run |"},
		{"package page without a (g) run", "(g) warm package page", "| not measured | not run |"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, l := range strings.Split(table, "\n") {
				if strings.Contains(l, tc.row) {
					if !strings.Contains(l, tc.want) {
						t.Fatalf("row %q lacks %q:\n%s", tc.row, tc.want, l)
					}
					return
				}
			}
			t.Fatalf("no row %q in\n%s", tc.row, table)
		})
	}
}

// The (g) row of issue 11: warm package pages ≥ 5,000 req/s with p99 < 20 ms.
func TestTargetsPackagePage(t *testing.T) {
	const row = "(g) warm package page ≥ 5,000 req/s with p99 < 20 ms"
	page := func(runs ...wrkRun) *results { return &results{Store: "couchdb", Runs: runs} }
	const g = "(g) package page (warm, text/html)"
	tests := []struct {
		name string
		res  *results
		want string
	}{
		{"met", page(wrkRun{Scenario: g, Target: "couchnpm", ReqPerS: 6200, P99: 12 * time.Millisecond}), "| met: 6200 req/s, p99 12.0 ms |"},
		{"too slow", page(wrkRun{Scenario: g, Target: "couchnpm", ReqPerS: 4999, P99: 5 * time.Millisecond}), "| **missed**: 4999 req/s, p99 5.0 ms |"},
		{"p99 too long", page(wrkRun{Scenario: g, Target: "couchnpm", ReqPerS: 9000, P99: 20 * time.Millisecond}), "| **missed**: 9000 req/s, p99 20.0 ms |"},
		{"fast errors", page(wrkRun{Scenario: g, Target: "couchnpm", ReqPerS: 9000, P99: 2 * time.Millisecond, Non2xx: 40}), "| **missed**: 9000 req/s, p99 2.0 ms, 0 errors, 40 non-2xx |"},
		{"another server's run", page(wrkRun{Scenario: g, Target: "verdaccio", ReqPerS: 9000, P99: time.Millisecond}), "| not measured |"},
		{"failed run", page(wrkRun{Scenario: g, Target: "couchnpm", Errors: -1}), "| not measured |"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			table := targetsTable([]*pass{{Store: "couchdb", Res: tc.res, Targets: map[string]targetLine{}}})
			for _, l := range strings.Split(table, "\n") {
				if strings.Contains(l, row) {
					if !strings.HasSuffix(l, tc.want) {
						t.Fatalf("row %q does not end in %q:\n%s", row, tc.want, l)
					}
					return
				}
			}
			t.Fatalf("no row %q in\n%s", row, table)
		})
	}
}

func TestReadPassesScenarioOutput(t *testing.T) {
	dir := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "results"), 0o755))
	must(os.MkdirAll(filepath.Join(dir, "scenarios", "couchdb"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "results", "couchdb.json"), mustJSON(&results{Store: "couchdb"}), 0o644))
	must(os.WriteFile(filepath.Join(dir, "results", "pouchdb.notrun"), []byte("left out\n"), 0o644))
	must(os.WriteFile(filepath.Join(dir, "scenarios", "couchdb", "g-page.md"), []byte("| (g) | couchnpm | 900 |\n"), 0o644))
	must(os.WriteFile(filepath.Join(dir, "scenarios", "couchdb", "targets.tsv"), []byte("web\tmet\t900 req/s\tweb page ≥ 100 req/s\nbad line\nreplicate\tinfo\t123 docs/s\treplicate mode docs/s (a measure)\n"), 0o644))
	passes, err := readPasses(dir, []string{"pouchdb", "couchdb"})
	must(err)
	md := report(passes, time.Minute)
	for _, want := range []string{
		"## Results on PouchDB Server\n\nNot run: left out.",
		"### g-page\n\n| (g) | couchnpm | 900 |",
		"| web page ≥ 100 req/s | not run | met: 900 req/s |",
		"| replicate mode docs/s (a measure) | not run | 123 docs/s |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
}
