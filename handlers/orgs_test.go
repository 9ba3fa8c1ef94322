package handlers

import (
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/couchnpm/couchnpm/registry"
)

// TestOrgRoutes drives the org and team endpoints in the shapes npm's
// libnpmorg, libnpmteam and libnpmaccess send and read.
func TestOrgRoutes(t *testing.T) {
	svc := newService(t, registry.Config{})
	accounts := newFakeAccounts()
	accounts.tokens["cnpm_bob"] = registry.Identity{Name: "bob"}
	h := mustNew(t, Config{PublicURL: "http://registry.test", MaxPublishBytes: 1 << 20}, realServices(svc, accounts, noTokens(t)), zerolog.Nop())
	do := func(method, path, token, body string) (int, string) {
		t.Helper()
		req := rawRequest(t, method, path, strings.NewReader(body))
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		rec := (&realEnv{h: h}).serve(req)
		return rec.Code, strings.TrimSpace(rec.Body.String())
	}
	for _, step := range []struct {
		name, method, path, token, body string
		status                          int
		want                            string // substring of the answer
	}{
		{"anonymous roster", "GET", "/-/org/acme/user", "", "", 401, `"error"`},
		{"unknown org roster", "GET", "/-/org/acme/user", "cnpm_alice", "", 404, `no org acme`},
		{"the first org set creates the org", "PUT", "/-/org/acme/user", "cnpm_alice", `{"user":"alice","role":"owner"}`, 200, `{"org":{"name":"acme","size":1},"user":"alice","role":"owner"}`},
		{"a non-member cannot add themselves", "PUT", "/-/org/acme/user", "cnpm_bob", `{"user":"bob","role":"owner"}`, 404, `no org acme`},
		{"a bad role", "PUT", "/-/org/acme/user", "cnpm_alice", `{"user":"bob","role":"king"}`, 400, `role \"king\"`},
		{"an unknown user", "PUT", "/-/org/acme/user", "cnpm_alice", `{"user":"nobody"}`, 404, `no user nobody`},
		{"a bad body", "PUT", "/-/org/acme/user", "cnpm_alice", `{"user":`, 400, `"error"`},
		{"add bob, developer by default", "PUT", "/-/org/acme/user", "cnpm_alice", `{"user":"bob"}`, 200, `"size":2},"user":"bob","role":"developer"`},
		{"roster", "GET", "/-/org/acme/user", "cnpm_bob", "", 200, `{"alice":"owner","bob":"developer"}`},
		{"a developer cannot create teams", "PUT", "/-/org/acme/team", "cnpm_bob", `{"name":"qa"}`, 403, `only its owners and admins`},
		{"team create", "PUT", "/-/org/acme/team", "cnpm_alice", `{"name":"qa","description":"testers"}`, 201, `"name":"qa"`},
		{"team create again", "PUT", "/-/org/acme/team", "cnpm_alice", `{"name":"qa"}`, 409, `already exists`},
		{"bad team name", "PUT", "/-/org/acme/team", "cnpm_alice", `{"name":"Q A"}`, 400, `team name`},
		{"team ls", "GET", "/-/org/acme/team?format=cli", "cnpm_bob", "", 200, `["acme:developers","acme:qa"]`},
		{"team add", "PUT", "/-/team/acme/qa/user", "cnpm_alice", `{"user":"bob"}`, 201, `"ok":true`},
		{"team users", "GET", "/-/team/acme/qa/user?format=cli", "cnpm_alice", "", 200, `["bob"]`},
		{"grant a package that does not exist", "PUT", "/-/team/acme/qa/package", "cnpm_alice", `{"package":"@acme/none","permissions":"read-only"}`, 404, `"error"`},
		{"grant outside the scope", "PUT", "/-/team/acme/qa/package", "cnpm_alice", `{"package":"foo","permissions":"read-only"}`, 400, `@acme/ only`},
		{"grant a bad permission", "PUT", "/-/team/acme/qa/package", "cnpm_alice", `{"package":"@acme/x","permissions":"all"}`, 400, `read-only or read-write`},
		{"team packages", "GET", "/-/team/acme/qa/package", "cnpm_bob", "", 200, `{}`},
		{"team rm", "DELETE", "/-/team/acme/qa/user", "cnpm_alice", `{"user":"bob"}`, 200, `"ok":true`},
		{"team destroy", "DELETE", "/-/team/acme/qa", "cnpm_alice", "", 200, `"ok":true`},
		{"developers stays", "DELETE", "/-/team/acme/developers", "cnpm_alice", "", 403, `cannot be destroyed`},
		{"org rm", "DELETE", "/-/org/acme/user", "cnpm_alice", `{"user":"bob"}`, 200, `"ok":true`},
		{"bob is out", "GET", "/-/org/acme/user", "cnpm_bob", "", 404, `no org acme`},
	} {
		status, body := do(step.method, step.path, step.token, step.body)
		if status != step.status || !strings.Contains(body, step.want) {
			t.Errorf("%s: %s %s = %d %s, want %d with %s", step.name, step.method, step.path, status, body, step.status, step.want)
		}
	}
}
