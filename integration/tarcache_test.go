//go:build integration

package integration

import (
	"encoding/json"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

var couchAttachmentGETRe = regexp.MustCompile(`(?m)^couchnpm_couchdb_request_duration_seconds_count\{kind="attachment",method="GET",status="[0-9]+"\} ([0-9.e+]+)$`)

// metricSum adds up the values re captures in reg's /-/metrics.
func metricSum(t *testing.T, reg *registry, re *regexp.Regexp) float64 {
	t.Helper()
	h := reg.do("GET", "/-/metrics", "", nil)
	if h.Status != 200 {
		t.Fatalf("GET /-/metrics: %s", h)
	}
	var sum float64
	for _, m := range re.FindAllSubmatch(h.Body, -1) {
		f, _ := strconv.ParseFloat(string(m[1]), 64)
		sum += f
	}
	return sum
}

// tarballStatuses lists the statuses of the requests for the tarball path
// in reg's JSON request log.
func tarballStatuses(t *testing.T, reg *registry, path string) []int {
	t.Helper()
	var out []int
	for _, l := range reg.Stderr.Lines() {
		var line struct {
			Path   string `json:"path"`
			Status int    `json:"status"`
		}
		if json.Unmarshal([]byte(l), &line) == nil && line.Path == path && line.Status != 0 {
			out = append(out, line.Status)
		}
	}
	return out
}

// TestTarballCacheNPM drives the real npm CLI against the tarball cache: a
// cold install costs one CouchDB attachment GET, a fresh-cache install of
// the same tarball none (from memory, npm checks its integrity), npm's
// revalidation gets a 304, and a restricted or unpublished tarball is
// never served from memory.
func TestTarballCacheNPM(t *testing.T) {
	t.Parallel()
	reg := startRegistry(t, registryOpts{LogFormat: "json"})
	alice := newNPMUser(t, reg, "tcalice")
	alice.mustLogin(reg.user("tcalice"), "Pw-tc-alice-5e6f7a8b", "tcalice@example.com")
	bob := newNPMUser(t, reg, "tcbob")
	bob.mustLogin(reg.user("tcbob"), "Pw-tc-bob-9c0d1e2f", "tcbob@example.com")
	const pkg = "@tcorg/hot-tarball" // scoped: npm access set works on scoped packages only
	alice.mustOwnOrg("tcorg", reg.user("tcalice"))
	alice.publish(pkg, "1.0.0")
	alice.publish(pkg, "1.1.0")
	tgzPath := "/" + pkg + "/-/hot-tarball-1.0.0.tgz"
	couchGets := func() float64 { return metricSum(t, reg, couchAttachmentGETRe) }
	proj := writeProject(t, map[string]string{pkg: "1.0.0"})

	t.Run("cold install: one CouchDB request", func(t *testing.T) {
		before := couchGets()
		bob.mustRunIn(proj, "install")
		mustRequire(t, proj, pkg, "1.0.0", pkg+"-1.0.0")
		if n := couchGets() - before; n != 1 {
			t.Errorf("%v CouchDB attachment GETs for one cold tarball, want 1", n)
		}
	})

	t.Run("hot: a fresh npm cache installs from memory, no CouchDB request", func(t *testing.T) {
		before := couchGets()
		for _, dir := range []string{"node_modules"} {
			if err := os.RemoveAll(proj + "/" + dir); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.RemoveAll(bob.cache); err != nil {
			t.Fatal(err)
		}
		bob.mustRunIn(proj, "ci") // npm checks the lockfile's integrity
		mustRequire(t, proj, pkg, "1.0.0", pkg+"-1.0.0")
		if n := couchGets() - before; n != 0 {
			t.Errorf("%v CouchDB attachment GETs for a hot tarball, want 0", n)
		}
		h := reg.do("GET", tgzPath, "", nil)
		if h.Status != 200 || h.Header.Get("Content-Length") != strconv.Itoa(len(h.Body)) || !strings.HasPrefix(h.Header.Get("ETag"), `"`) {
			t.Errorf("GET %s: %s, Content-Length %q, ETag %q", tgzPath, h, h.Header.Get("Content-Length"), h.Header.Get("ETag"))
		}
		if c := reg.do("GET", tgzPath, "", nil); c.Status != 200 || string(c.Body) != string(h.Body) {
			t.Errorf("a second GET differs: %s", c)
		}
	})

	t.Run("npm revalidates with If-None-Match and gets 304", func(t *testing.T) {
		before := len(tarballStatuses(t, reg, tgzPath))
		if err := os.RemoveAll(proj + "/node_modules"); err != nil {
			t.Fatal(err)
		}
		bob.mustRunIn(proj, "ci", "--prefer-online") // the cache is kept: npm asks whether it is current
		mustRequire(t, proj, pkg, "1.0.0", pkg+"-1.0.0")
		got := tarballStatuses(t, reg, tgzPath)[before:]
		if len(got) == 0 || got[len(got)-1] != 304 {
			t.Errorf("npm ci --prefer-online with a warm npm cache: tarball statuses %v, want a 304", got)
		}
	})

	t.Run("restricted: invisible to others although hot", func(t *testing.T) {
		alice.mustRunIn("", "access", "set", "status=private", pkg)
		for _, tok := range []string{"", bob.token()} {
			if h := reg.do("GET", tgzPath, tok, nil); h.Status != 404 {
				t.Errorf("GET %s of a restricted package (token %v): %s, want 404", tgzPath, tok != "", h)
			}
			if h := reg.do("HEAD", tgzPath, tok, nil); h.Status != 404 {
				t.Errorf("HEAD %s of a restricted package: %s, want 404", tgzPath, h)
			}
		}
		if h := reg.do("GET", tgzPath, alice.token(), nil); h.Status != 200 {
			t.Errorf("the maintainer: %s", h)
		}
		alice.mustRunIn("", "access", "set", "status=public", pkg)
	})

	t.Run("unpublished: not served from memory", func(t *testing.T) {
		if h := reg.do("GET", tgzPath, "", nil); h.Status != 200 {
			t.Fatalf("before: %s", h)
		}
		alice.mustRunIn("", "unpublish", pkg+"@1.0.0")
		if h := reg.do("GET", tgzPath, "", nil); h.Status != 404 {
			t.Errorf("GET %s after its version was unpublished: %s, want 404", tgzPath, h)
		}
		fresh := newNPMUser(t, reg, "fresh")
		p2 := writeProject(t, map[string]string{pkg: "1.0.0"})
		fresh.mustFail(p2, []string{"ETARGET", "E404"}, "install")
	})
}
