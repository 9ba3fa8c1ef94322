//go:build integration

package integration

import (
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// Command surface, part 5: deployment policies (--unpublish-policy,
// --admins, --default-access) and npm audit forwarding.
func TestCommandsPolicyAudit(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var seen []map[string][]string
	var sawAuth bool
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if r.URL.Path != "/-/npm/v1/security/advisories/bulk" {
			http.NotFound(w, r)
			return
		}
		sawAuth = sawAuth || r.Header.Get("Authorization") != ""
		var body io.Reader = r.Body
		if r.Header.Get("Content-Encoding") == "gzip" {
			gz, err := gzip.NewReader(r.Body)
			if err != nil {
				http.Error(w, err.Error(), 400)
				return
			}
			body = gz
		}
		m := map[string][]string{}
		if err := json.NewDecoder(body).Decode(&m); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		seen = append(seen, m)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{}`)
	}))
	t.Cleanup(upstream.Close)

	reg := startRegistry(t, registryOpts{ExtraArgs: []string{
		"--unpublish-policy", "admins", "--admins", "polroot2",
		"--default-access", "restricted", "--audit-upstream", upstream.URL,
	}})
	alice := newNPMUser(t, reg, "polalice2")
	alice.mustLogin("polalice2", "Pw-pol-alice-5d6e7f80", "polalice2@example.com")
	root := newNPMUser(t, reg, "polroot2")
	root.mustLogin("polroot2", "Pw-pol-root-1a2b3c4d", "polroot2@example.com")
	alice.mustOwnOrg("corp", "polalice2") // a scope belongs to an org or a user
	alice.publish("@corp/pol", "1.0.0")
	alice.publish("@corp/pol", "1.1.0")

	t.Run("default access restricted", func(t *testing.T) {
		if h := reg.do("GET", "/@corp%2fpol", "", nil); h.Status != 404 {
			t.Errorf("anonymous GET of a package published without --access: %s, want 404", h)
		}
		if res := alice.mustRunIn("", "access", "get", "status", "@corp/pol"); !strings.Contains(res.Stdout, "private") {
			t.Errorf("access get status:\n%s", res)
		}
	})

	t.Run("audit forwarded", func(t *testing.T) {
		proj := writeProject(t, map[string]string{"@corp/pol": "1.1.0"})
		alice.mustRunIn(proj, "install")
		res := alice.runWithAudit(proj, "audit")
		if res.Err != nil || !strings.Contains(res.Stdout, "found 0 vulnerabilities") {
			t.Errorf("npm audit through the forwarder:\n%s", res)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(seen) == 0 || strings.Join(seen[len(seen)-1]["@corp/pol"], ",") != "1.1.0" {
			t.Errorf("upstream saw audit bodies %v, want @corp/pol: [1.1.0]", seen)
		}
		if sawAuth {
			t.Error("the forwarder sent the caller's Authorization upstream")
		}
	})

	t.Run("unpublish by admins only", func(t *testing.T) {
		alice.mustFail("", []string{"E403"}, "unpublish", "@corp/pol@1.0.0")
		res := root.mustRunIn("", "unpublish", "@corp/pol@1.0.0")
		if !strings.Contains(res.Stdout, "- @corp/pol@1.0.0") {
			t.Errorf("admin unpublish:\n%s", res)
		}
		root.mustRunIn("", "unpublish", "@corp/pol", "--force")
		if h := reg.do("GET", "/@corp%2fpol", alice.token(), nil); h.Status != 404 {
			t.Errorf("GET after the admin's full unpublish: %s, want 404", h)
		}
	})
}

// Without an audit upstream npm audit fails clearly and npm install stays
// quiet; the window policy refuses late unpublishes.
func TestCommandsNoAuditWindow(t *testing.T) {
	t.Parallel()
	reg := startRegistry(t, registryOpts{ExtraArgs: []string{"--unpublish-policy", "window:1ms"}})
	alice := newNPMUser(t, reg, "polalice2")
	alice.mustLogin("winalice2", "Pw-win-alice-9f8e7d6c", "winalice2@example.com")
	alice.publish("late", "1.0.0")
	alice.publish("late", "1.1.0")

	t.Run("unpublish window", func(t *testing.T) {
		res := alice.mustFail("", []string{"E403"}, "unpublish", "late@1.0.0")
		if !strings.Contains(res.Stderr, "can no longer be unpublished") {
			t.Errorf("unpublish after the window:\n%s", res)
		}
	})

	t.Run("audit not configured", func(t *testing.T) {
		proj := writeProject(t, map[string]string{"late": "1.1.0"})
		res := alice.runWithAudit(proj, "install")
		if res.Err != nil {
			t.Fatalf("npm install with audit on:\n%s", res)
		}
		if strings.Contains(res.Stdout+res.Stderr, "audit") {
			t.Errorf("npm install mentions the audit failure:\n%s", res)
		}
		res = alice.runWithAudit(proj, "audit")
		if res.Err == nil || !strings.Contains(res.Stdout+res.Stderr, "auditing is not configured on this registry") {
			t.Errorf("npm audit without an upstream:\n%s", res)
		}
		// Signing does not depend on the audit upstream (signatures_test.go).
		if h := reg.do("GET", "/-/npm/v1/keys", "", nil); h.Status != 200 || !strings.Contains(string(h.Body), `"keyid":"SHA256:`) {
			t.Errorf("GET /-/npm/v1/keys: %s, want couchnpm's key", h)
		}
	})
}
