//go:build integration

package integration

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"
)

// Scenario e: CouchDB goes away (the fault proxy stops) and comes back; couchnpm
// answers 503 meanwhile and serves again afterwards without being restarted.
func TestCouchDBOutage(t *testing.T) {
	t.Parallel()
	reg := startRegistry(t, registryOpts{})
	dave := newNPMUser(t, reg, "dave")
	dave.mustLogin(reg.user("dave"), "Pw-dave-6e01c3b8", "dave@example.com")
	dave.mustRunIn(writePackage(t, "sturdy", "1.0.0", "sturdy-1.0.0"), "publish")
	if h := reg.do("GET", "/sturdy", "", nil); h.Status != 200 {
		t.Fatalf("GET /sturdy before the outage: %s, want 200", h)
	}

	const downLimit = 15 * time.Second
	// Every 503 tells the client the database is unavailable, never where
	// CouchDB lives (the log line keeps the address for the operator).
	couchHost := strings.TrimPrefix(reg.Proxy.URL(), "http://")
	hidesCouch := func(what string, h httpResult) {
		t.Helper()
		if h.Status == 503 && (bytes.Contains(h.Body, []byte(couchHost)) || !bytes.Contains(h.Body, []byte("the registry's database is unavailable; retry later"))) {
			t.Errorf("%s while CouchDB is down: %s, want the plain unavailable message without %s", what, h, couchHost)
		}
	}
	reg.Proxy.Stop()
	t.Log("fault proxy stopped: CouchDB unreachable")
	for _, path := range []string{"/-/ping", "/sturdy", "/-/whoami"} {
		if path == "/-/whoami" {
			// Authenticated request: the token cannot be checked without CouchDB.
			start := time.Now()
			h, err := reg.tryDo("GET", path, dave.token(), nil, downLimit)
			if err != nil {
				t.Errorf("GET %s (with token) while CouchDB is down: %v after %v", path, err, time.Since(start).Round(time.Millisecond))
			} else if h.Status != 503 {
				t.Errorf("GET %s (with token) while CouchDB is down: %s, want 503", path, h)
			} else {
				hidesCouch("GET "+path+" (with token)", h)
			}
			continue
		}
		start := time.Now()
		h, ok := reg.waitStatus(path, "", 503, downLimit)
		if !ok {
			t.Errorf("GET %s while CouchDB is down: last answer %s, want 503 within %v", path, h, downLimit)
		} else {
			t.Logf("GET %s answered 503 after %v", path, time.Since(start).Round(time.Millisecond))
			hidesCouch("GET "+path, h)
		}
	}
	// A publish is refused with 503 too (not a 500, not a hang).
	body, _ := rawPublishBody(t, reg, "sturdy", "1.0.2", false)
	if h, err := reg.tryDo("PUT", "/sturdy", dave.token(), body, downLimit); err != nil {
		t.Errorf("PUT /sturdy while CouchDB is down: %v", err)
	} else if h.Status != 503 {
		t.Errorf("PUT /sturdy while CouchDB is down: %s, want 503", h)
	} else {
		hidesCouch("PUT /sturdy", h)
	}
	// npm sees a server error, not a hang (a fresh user: nothing cached to fall back on).
	if res := newNPMUser(t, reg, "viewer").runIn("", "view", "sturdy", "version", "--prefer-online", "--fetch-retries=0"); res.Err == nil {
		t.Errorf("npm view while CouchDB is down succeeded (stale cache?):\n%s", res)
	}

	if err := reg.Proxy.Start(); err != nil {
		t.Fatal(err)
	}
	t.Log("fault proxy started again")
	const upLimit = 60 * time.Second
	for _, path := range []string{"/sturdy", "/-/ping"} {
		if h, ok := reg.waitStatus(path, "", 200, upLimit); !ok {
			t.Fatalf("GET %s after CouchDB came back: last answer %s, want 200 within %v", path, h, upLimit)
		}
	}
	if h := reg.do("GET", "/-/whoami", dave.token(), nil); h.Status != 200 {
		t.Errorf("GET /-/whoami after CouchDB came back: %s, want 200", h)
	}

	// npm install works again, with an empty cache so everything comes from couchnpm.
	if err := os.RemoveAll(dave.cache); err != nil {
		t.Fatal(err)
	}
	proj := writeProject(t, map[string]string{"sturdy": "^1.0.0"})
	dave.mustRunIn(proj, "install")
	mustRequire(t, proj, "sturdy", "1.0.0", "sturdy-1.0.0")
	// And so does a publish.
	dave.mustRunIn(writePackage(t, "sturdy", "1.0.1", "sturdy-1.0.1"), "publish")
}
