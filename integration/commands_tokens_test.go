//go:build integration

package integration

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
)

var createdTokenRE = regexp.MustCompile(`Created token (cnpm_\S+)`)

// Command surface, part 3: npm token create/list/revoke, with read-only,
// CIDR and ownership enforced.
func TestCommandsTokens(t *testing.T) {
	t.Parallel()
	reg := startRegistry(t, registryOpts{})
	const password = "Pw-tok-alice-77aa88bb"
	alice := newNPMUser(t, reg, "tokalice2")
	alice.mustLogin("tokalice2", password, "tokalice2@example.com")
	bob := newNPMUser(t, reg, "tokbob2")
	bob.mustLogin("tokbob2", "Pw-tok-bob-99cc00dd", "tokbob2@example.com")
	alice.publish("tok-pkg", "1.0.0")

	create := func(t *testing.T, args ...string) string {
		t.Helper()
		res := alice.mustRunIn("", append([]string{"token", "create", "--password=" + password}, args...)...)
		m := createdTokenRE.FindStringSubmatch(res.Stdout)
		if m == nil {
			t.Fatalf("npm token create printed no token:\n%s", res)
		}
		reg.addSecret(m[1])
		return m[1]
	}

	var readOnly string
	t.Run("read-only token cannot publish", func(t *testing.T) {
		// npm 11.19 does not send --read-only; its granular-token flag is
		// what reaches the registry.
		readOnly = create(t, "--packages-and-scopes-permission=read-only", "--name=ci-read")
		ro := withToken(t, reg, "tokalice2-ro", readOnly)
		if res := ro.mustRunIn("", "whoami"); strings.TrimSpace(res.Stdout) != "tokalice2" {
			t.Errorf("whoami with the read-only token: %s", res)
		}
		proj := writeProject(t, map[string]string{"tok-pkg": "1.0.0"})
		ro.mustRunIn(proj, "install")
		ro.mustFail(writePackage(t, "tok-pkg", "2.0.0", "ro"), []string{"E403"}, "publish")
		ro.mustFail("", []string{"E403"}, "dist-tag", "add", "tok-pkg@1.0.0", "ro")
	})

	t.Run("npm 10 readonly body", func(t *testing.T) {
		h := reg.do("POST", "/-/npm/v1/tokens", alice.token(), mustJSON(map[string]any{"password": password, "readonly": true, "cidr_whitelist": []string{}}))
		var tok struct {
			Token    string
			Readonly bool
		}
		if h.Status != 200 || json.Unmarshal(h.Body, &tok) != nil || !tok.Readonly || tok.Token == "" {
			t.Fatalf("POST /-/npm/v1/tokens readonly: %s", h)
		}
		reg.addSecret(tok.Token)
		if h := reg.do("PUT", "/-/package/tok-pkg/dist-tags/ro", tok.Token, []byte(`"1.0.0"`)); h.Status != 403 {
			t.Errorf("dist-tag with an npm 10 read-only token: %s, want 403", h)
		}
		if h := reg.do("DELETE", "/-/npm/v1/tokens/token/"+tok.Token, alice.token(), nil); h.Status != 204 {
			t.Errorf("revoke by token value: %s, want 204", h)
		}
		if h := reg.do("POST", "/-/npm/v1/tokens", alice.token(), mustJSON(map[string]any{"password": password, "packages": []string{"tok-pkg"}})); h.Status != 400 {
			t.Errorf("package-limited token: %s, want 400 (not supported, never a broader token)", h)
		}
	})

	t.Run("wrong password", func(t *testing.T) {
		alice.mustFail("", []string{"E401"}, "token", "create", "--password=not-the-password")
	})

	t.Run("CIDR whitelist", func(t *testing.T) {
		tok := create(t, "--cidr=10.0.0.0/8")
		outsider := withToken(t, reg, "tokalice2-cidr", tok)
		outsider.mustFail("", []string{"E401"}, "whoami")
		if res := alice.runIn("", "token", "create", "--password="+password, "--cidr=not-a-cidr"); res.Err == nil {
			t.Errorf("token create with an invalid CIDR succeeded:\n%s", res)
		}
	})

	t.Run("list and revoke", func(t *testing.T) {
		res := alice.mustRunIn("", "token", "list", "--json")
		var list []struct {
			Key, Token, ID, Name string
			Readonly             bool
			CIDR                 []string `json:"cidr_whitelist"`
		}
		parseJSON(t, res, &list)
		// login token + read-only + CIDR token
		if len(list) != 3 {
			t.Fatalf("npm token list: %d tokens, want 3\n%s", len(list), res)
		}
		var roKey string
		for _, tk := range list {
			if tk.Readonly {
				roKey = tk.Key
				if tk.Name != "ci-read" {
					t.Errorf("read-only token name %q, want ci-read", tk.Name)
				}
			}
		}
		if roKey == "" {
			t.Fatalf("npm token list shows no read-only token:\n%s", res)
		}
		// bob cannot revoke alice's token, even knowing its key.
		if h := reg.do("DELETE", "/-/npm/v1/tokens/token/"+roKey, bob.token(), nil); h.Status != 404 {
			t.Errorf("tokbob2 revoking tokalice2's token: %s, want 404", h)
		}
		res = alice.mustRunIn("", "token", "revoke", roKey[:8])
		if !strings.Contains(res.Stdout, "Removed 1 token") {
			t.Errorf("npm token revoke output:\n%s", res)
		}
		withToken(t, reg, "tokalice2-ro-revoked", readOnly).mustFail("", []string{"E401"}, "whoami")
		if res := alice.mustRunIn("", "whoami"); strings.TrimSpace(res.Stdout) != "tokalice2" {
			t.Errorf("tokalice2's login token stopped working: %s", res)
		}
	})

	t.Run("pagination", func(t *testing.T) {
		h := reg.do("GET", "/-/npm/v1/tokens?perPage=1", alice.token(), nil)
		if h.Status != 200 || !strings.Contains(string(h.Body), `"next":"`+reg.URL+`/-/npm/v1/tokens?page=1\u0026perPage=1"`) {
			t.Errorf("first page of one token: %s, want a urls.next", h)
		}
		if h := reg.do("GET", "/-/npm/v1/tokens", "", nil); h.Status != 401 {
			t.Errorf("anonymous token list: %s, want 401", h)
		}
	})
}
