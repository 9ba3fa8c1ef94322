package main

import (
	"strings"
	"testing"
	"time"
)

const metricsBefore = `# HELP couchnpm_http_request_duration_seconds x
couchnpm_http_request_duration_seconds_bucket{method="GET",route="/{pkg}",le="0.001"} 10
couchnpm_http_request_duration_seconds_bucket{method="GET",route="/{pkg}",le="0.005"} 10
couchnpm_http_request_duration_seconds_bucket{method="GET",route="/{pkg}",le="0.05"} 10
couchnpm_http_request_duration_seconds_bucket{method="GET",route="/{pkg}",le="+Inf"} 10
couchnpm_http_request_duration_seconds_count{method="GET",route="/{pkg}"} 10
couchnpm_couchdb_request_duration_seconds_bucket{kind="db",method="GET",status="200",le="0.001"} 999
`

func TestOwnTimeQuantile(t *testing.T) {
	before, err := parseHistogram(strings.NewReader(metricsBefore))
	if err != nil {
		t.Fatal(err)
	}
	if before[0.001] != 10 || len(before) != 4 {
		t.Fatalf("parsed %v", before)
	}
	after := func(lines ...string) histogram {
		h, _ := parseHistogram(strings.NewReader(strings.Join(lines, "\n")))
		return h
	}
	b := func(le, n string) string {
		return `couchnpm_http_request_duration_seconds_bucket{method="GET",route="/{pkg}",le="` + le + `"} ` + n
	}
	o := func(le, n string) string { // another route: summed in
		return `couchnpm_http_request_duration_seconds_bucket{method="GET",route="/-/ping",le="` + le + `"} ` + n
	}
	for _, tc := range []struct {
		name  string
		after histogram
		p99   string // "" = no note
	}{
		{"no requests", before, ""},
		{"all fast", after(b("0.001", "1010"), b("0.005", "1010"), b("0.05", "1010"), b("+Inf", "1010")), "p99 ≤ 1.0 ms"},
		// 1000 new: 980 ≤ 1 ms, 995 ≤ 5 ms: p99 is in the 5 ms bucket
		{"tail", after(b("0.001", "990"), b("0.005", "1005"), b("0.05", "1010"), b("+Inf", "1010")), "p99 ≤ 5.0 ms"},
		{"over the last bound", after(b("0.001", "10"), b("0.005", "10"), b("0.05", "10"), b("+Inf", "1010")), "p99 over the largest bucket"},
		// 500 + 500 ≤ 1 ms of 1500: p99 in the 5 ms bucket, only with both
		{"routes summed", after(b("0.001", "510"), o("0.001", "500"), b("0.005", "1010"), o("0.005", "500"),
			b("0.05", "1010"), o("0.05", "500"), b("+Inf", "1010"), o("+Inf", "500")), "p99 ≤ 5.0 ms"},
	} {
		note := ownTimeNote("(g) page", "couchdb", before, tc.after, 80*time.Millisecond)
		switch {
		case tc.p99 == "" && note != "":
			t.Errorf("%s: note %q, want none", tc.name, note)
		case tc.p99 != "" && (!strings.Contains(note, tc.p99) || !strings.Contains(note, "wrk's p99 80.0 ms")):
			t.Errorf("%s: note %q, want %q and wrk's figure", tc.name, note, tc.p99)
		}
	}
}
