//go:build integration

package integration

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// requestCount reads couchnpm_http_requests_total for route, method and
// status from an instance's metrics (0 when the series does not exist).
func requestCount(t *testing.T, reg *registry, route, method string, status int) int {
	t.Helper()
	h := reg.do("GET", "/-/metrics", "", nil)
	if h.Status != 200 {
		t.Fatalf("GET /-/metrics: %s", h)
	}
	re := regexp.MustCompile(`(?m)^couchnpm_http_requests_total\{method="` + regexp.QuoteMeta(method) +
		`",route="` + regexp.QuoteMeta(route) + `",status="` + strconv.Itoa(status) + `"\} ([0-9.e+]+)$`)
	m := re.FindSubmatch(h.Body)
	if m == nil {
		return 0
	}
	f, _ := strconv.ParseFloat(string(m[1]), 64)
	return int(f)
}

// TestChainObservesEveryRequest: every request the binary answers reaches
// couchnpm_http_requests_total and the log once, also those no route
// matched (mux's 404 and 405, a refused dot segment), and npm's own 404.
func TestChainObservesEveryRequest(t *testing.T) {
	t.Parallel()
	reg := startRegistry(t, registryOpts{LogFormat: "json"})
	npm := newNPMUser(t, reg, "viewer")
	missing := "chain-missing-" + randomHex(4)

	type probe struct {
		method, path, route string
		status              int
	}
	probes := []probe{
		{"GET", "/" + missing + "/a/b/c", "unmatched", 404}, // no route
		{"PATCH", "/" + missing, "unmatched", 405},          // a route, not this method
		{"GET", "/" + missing + "/..", "unmatched", 400},    // dot segment, refused before routing
	}
	before := map[probe]int{}
	for _, p := range append(probes, probe{"GET", "", "/{pkg}", 404}) {
		before[p] = requestCount(t, reg, p.route, p.method, p.status)
	}
	logsBefore := len(reg.Stderr.Lines())
	for _, p := range probes {
		if h := reg.do(p.method, p.path, "", nil); h.Status != p.status {
			t.Errorf("%s %s: %s, want %d", p.method, p.path, h, p.status)
		}
	}
	// npm view of an unknown package: GET /<name>, a routed 404.
	if res := npm.runIn("", "view", missing); res.Err == nil || !strings.Contains(res.Stderr, "E404") {
		t.Errorf("npm view of a missing package: %s", res)
	}

	for _, p := range probes {
		if got := requestCount(t, reg, p.route, p.method, p.status); got != before[p]+1 {
			t.Errorf("%s %s: couchnpm_http_requests_total{route=%q,status=%d} went %d → %d, want +1", p.method, p.path, p.route, p.status, before[p], got)
		}
	}
	pkg404 := probe{"GET", "", "/{pkg}", 404}
	if got := requestCount(t, reg, "/{pkg}", "GET", 404); got < before[pkg404]+1 {
		t.Errorf("npm view's 404 not counted: %d → %d", before[pkg404], got)
	}
	lines := reg.Stderr.Lines()[logsBefore:]
	for _, p := range probes {
		n := 0
		for _, l := range lines {
			if logLineHasPath(l, p.path) && strings.Contains(l, `"method":"`+p.method+`"`) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%s %s: %d log lines, want 1", p.method, p.path, n)
		}
	}
}
