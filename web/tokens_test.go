package web

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/couchnpm/couchnpm/handlers"
	"github.com/couchnpm/couchnpm/registry"
)

func TestTokensPage(t *testing.T) {
	s := newSite(t)
	exp := time.Date(2030, 1, 2, 0, 0, 0, 0, time.UTC)
	session := &registry.Token{Key: strings.Repeat("cd", 32), Name: "web session", ReadOnly: true, Created: time.Date(2026, 5, 6, 0, 0, 0, 0, time.UTC)}
	list := []*registry.Token{session, {Key: strings.Repeat("ef", 32), Name: `<b>ci</b>`, CIDR: []string{"10.0.0.0/8"}, Expires: &exp}}
	rec := get(t, func(w http.ResponseWriter, r *http.Request) {
		s.Tokens(w, r, alice, handlers.TokensPage{CSRF: "c5rf", Tokens: list, Session: session, Created: "cnpm_SECRET", CreatedKey: list[1].Key, OTP: true})
	}, "/-/web/tokens")
	body := rec.Body.String()
	if rec.Code != 200 || rec.Header().Get("Cache-Control") != "no-store" {
		t.Errorf("status %d, Cache-Control %q", rec.Code, rec.Header().Get("Cache-Control"))
	}
	for _, want := range []string{`id="new-token">cnpm_SECRET<`, `name="csrf" value="c5rf"`, `action="/-/web/tokens/create"`, `<code>cdcdcd</code>`,
		"this session", "read-only", "read and publish", "<code>10.0.0.0/8</code>", "2030-01-02", "2026-05-06", `name="otp"`,
		`href="/-/web/tokens?revoke=` + strings.Repeat("ef", 32) + `"`, "&lt;b&gt;ci&lt;/b&gt;", `//npm.example.com/:_authToken=`} {
		if !strings.Contains(body, want) {
			t.Errorf("tokens page lacks %q", want)
		}
	}
	// The full key of another token is only in the revoke link; never a
	// secret but the new token's.
	if strings.Count(body, "cnpm_") != 2 { // the token and its copy button
		t.Errorf("secrets on the page: %d", strings.Count(body, "cnpm_"))
	}

	// The confirmation of a revoke: the key, the password, the CSRF token.
	rec = get(t, func(w http.ResponseWriter, r *http.Request) {
		s.Tokens(w, r, alice, handlers.TokensPage{Status: 401, CSRF: "c5rf", Tokens: list, Session: session, Revoke: session, Error: "name or password is incorrect"})
	}, "/-/web/tokens")
	body = rec.Body.String()
	for _, want := range []string{`action="/-/web/tokens/revoke"`, `name="key" value="` + session.Key + `"`, "you will be logged out", "name or password is incorrect", `id="revoke-password"`} {
		if !strings.Contains(body, want) {
			t.Errorf("revoke confirmation lacks %q", want)
		}
	}
	if rec.Code != 401 || strings.Contains(body, `name="otp"`) {
		t.Errorf("status %d; an OTP field without two-factor authentication: %v", rec.Code, strings.Contains(body, `name="otp"`))
	}
}
