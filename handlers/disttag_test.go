package handlers

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/couchnpm/couchnpm/registry"
	"github.com/couchnpm/couchnpm/registry/registrytest"
)

// npm dist-tag add and rm over the real registry: status, body and the
// refusals of each step the two commands share (login, tag in the URL,
// the command itself).
func TestDistTagAddAndRemove(t *testing.T) {
	const aliceTok, bobTok = "cnpm_aliceTags", "cnpm_bobTags"
	tokens := &memTokens{m: map[string]*registry.Token{
		registry.TokenKey(aliceTok): {Key: registry.TokenKey(aliceTok), User: "alice"},
		registry.TokenKey(bobTok):   {Key: registry.TokenKey(bobTok), User: "bob"},
	}}
	svc := newService(t, registry.Config{Store: registrytest.NewMemStore()})
	accounts := newAccounts(t, registry.AccountsConfig{Users: fakeUsers{}, Tokens: tokens})
	h := mustNew(t, Config{PublicURL: "http://registry.test", MaxPublishBytes: 1 << 20}, realServices(svc, accounts, accounts), zerolog.Nop())
	if err := svc.Publish(context.Background(), registry.Identity{Name: "alice"}, "foo", mustPublishBody(t, publishDoc(t, "foo", "1.0.0", fuzzTarball))); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, method, path, token, body string
		wantCode                        int
		wantBody                        string
	}{
		{"add", "PUT", "/-/package/foo/dist-tags/beta", aliceTok, `"1.0.0"`, 201, `"beta":"1.0.0"`},
		{"add without a login", "PUT", "/-/package/foo/dist-tags/beta", "", `"1.0.0"`, 401, `"error"`},
		{"add by a non-maintainer", "PUT", "/-/package/foo/dist-tags/beta", bobTok, `"1.0.0"`, 403, `"error"`},
		{"add a version that does not exist", "PUT", "/-/package/foo/dist-tags/beta", aliceTok, `"9.9.9"`, 400, `"error"`},
		{"add with a body that is no version string", "PUT", "/-/package/foo/dist-tags/beta", aliceTok, `{"v":1}`, 400, `"error"`},
		{"add with no body", "PUT", "/-/package/foo/dist-tags/beta", aliceTok, "", 400, `"error"`},
		{"remove", "DELETE", "/-/package/foo/dist-tags/beta", aliceTok, "", 200, `"ok":true`},
		{"remove without a login", "DELETE", "/-/package/foo/dist-tags/beta", "", "", 401, `"error"`},
		{"remove by a non-maintainer", "DELETE", "/-/package/foo/dist-tags/beta", bobTok, "", 403, `"error"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(tc.method, "http://registry.test"+tc.path, strings.NewReader(tc.body))
			r.RemoteAddr = "192.0.2.8:1234"
			r.Header.Set("Content-Type", "application/json")
			if tc.token != "" {
				r.Header.Set("Authorization", "Bearer "+tc.token)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			if rec.Code != tc.wantCode || !strings.Contains(rec.Body.String(), tc.wantBody) {
				t.Errorf("%s %s: %d %s, want %d with %s", tc.method, tc.path, rec.Code, rec.Body, tc.wantCode, tc.wantBody)
			}
		})
	}
}
